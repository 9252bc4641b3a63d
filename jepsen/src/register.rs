//! The register workload: a few hot keys, each client doing gets, puts and
//! compare-and-swaps with values no one else writes, keys retired after a
//! bounded number of operations (as Jepsen's independent generator does),
//! so each key's history stays small enough to check fast.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use flotilla_checker::generate::Rng;
use flotilla_checker::model::{RegisterOp, RegisterOut};
use flotilla_client::{Error, RawClient};

use crate::history::{Outcome, Recorder};

/// The workload's shape.
#[derive(Clone, Debug)]
pub struct RegisterSpec {
    /// Keys in use at once.
    pub slots: u64,
    /// Operations on a key before it is retired for a fresh one.
    pub ops_per_key: u64,
    /// Each operation's deadline (retries included).
    pub timeout: Duration,
}

/// The keys in use: slot `s` holds key `reg-s-g` until `ops_per_key`
/// operations were made on it, then `reg-s-(g+1)`.
pub struct Keys {
    spec: RegisterSpec,
    generation: Vec<AtomicU64>,
    done: Vec<AtomicU64>,
}

impl Keys {
    /// The first generation of every slot.
    pub fn new(spec: RegisterSpec) -> Keys {
        Keys {
            generation: (0..spec.slots).map(|_| AtomicU64::new(0)).collect(),
            done: (0..spec.slots).map(|_| AtomicU64::new(0)).collect(),
            spec,
        }
    }

    fn key(slot: u64, generation: u64) -> String {
        format!("reg-{slot}-{generation}")
    }

    /// The key of `slot` now.
    fn current(&self, slot: u64) -> String {
        Keys::key(slot, self.generation[slot as usize].load(Ordering::Relaxed))
    }

    /// Counts an operation on `slot`; the last one of a key moves the slot
    /// to the next generation.
    fn count(&self, slot: u64) {
        let s = slot as usize;
        if self.done[s].fetch_add(1, Ordering::Relaxed) + 1 == self.spec.ops_per_key {
            self.done[s].store(0, Ordering::Relaxed);
            self.generation[s].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Every key used so far.
    pub fn all(&self) -> Vec<String> {
        let mut keys = Vec::new();
        for (slot, g) in self.generation.iter().enumerate() {
            for generation in 0..=g.load(Ordering::Relaxed) {
                keys.push(Keys::key(slot as u64, generation));
            }
        }
        keys
    }
}

/// A value only this client writes: its id in the high bits, a sequence
/// number in the low ones.
pub fn unique_value(client: u64, seq: u64) -> u64 {
    (client << 40) | seq
}

/// Reads a stored value; a value that does not parse is recorded as one no
/// one wrote, so the checker flags it.
fn parse_value(bytes: &[u8]) -> u64 {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(u64::MAX)
}

/// One client: operations until `stop`, each recorded.
pub async fn client(
    id: u64,
    seed: u64,
    kv: RawClient,
    keys: Arc<Keys>,
    recorder: Arc<Recorder>,
    stop: Arc<AtomicBool>,
) {
    let kv = kv.with_timeout(keys.spec.timeout);
    let mut rng = Rng(seed ^ id.wrapping_mul(0x9e37_79b9));
    let mut seq = 0;
    // The last value this client read of each key: what its CAS expects.
    let mut last_read: std::collections::HashMap<String, u64> = Default::default();
    while !stop.load(Ordering::Relaxed) {
        let slot = rng.below(keys.spec.slots);
        let key = keys.current(slot);
        let roll = rng.below(10);
        let call = recorder.now();
        let expected = last_read.get(&key).copied();
        let (input, outcome) = match (roll, expected) {
            (0..=4, _) => {
                let outcome = match kv.get(key.as_bytes()).await {
                    Ok(v) => {
                        let v = v.map(|b| parse_value(&b));
                        if let Some(v) = v {
                            last_read.insert(key.clone(), v);
                        }
                        Outcome::Done(RegisterOut::Read(v))
                    }
                    Err(_) => Outcome::Failed,
                };
                (RegisterOp::Get, outcome)
            }
            (5..=7, _) | (_, None) => {
                seq += 1;
                let v = unique_value(id, seq);
                let outcome = match kv.put(key.as_bytes(), v.to_string()).await {
                    Ok(()) => Outcome::Done(RegisterOut::Written),
                    Err(e) => write_error(&e),
                };
                (RegisterOp::Put(v), outcome)
            }
            (_, Some(from)) => {
                seq += 1;
                let to = unique_value(id, seq);
                let outcome = match kv
                    .compare_and_swap(key.as_bytes(), Some(from.to_string()), to.to_string())
                    .await
                {
                    Ok((_, swapped)) => Outcome::Done(RegisterOut::Cas(swapped)),
                    Err(e) => write_error(&e),
                };
                (RegisterOp::Cas { from, to }, outcome)
            }
        };
        recorder.record(&key, id, call, input, outcome);
        keys.count(slot);
    }
}

/// A write that failed: refused as malformed (nothing was sent), or
/// otherwise unknown. A put that timed out may have applied on an earlier
/// attempt, so only the refusal is certain.
fn write_error(e: &Error) -> Outcome {
    if write_error_is_certain(e) {
        Outcome::Failed
    } else {
        Outcome::Unknown
    }
}

/// Whether a failed write certainly did nothing.
pub fn write_error_is_certain(e: &Error) -> bool {
    e.is_invalid_argument()
}

/// The client id of the final reads (workload clients count from 1).
pub const FINAL_READER: u64 = 0;

/// After the faults are healed: one read of every key, retried until it
/// succeeds or `deadline` passes, each recorded. Returns the keys that could
/// not be read.
pub async fn final_reads(
    kv: &RawClient,
    keys: &Keys,
    recorder: &Recorder,
    deadline: tokio::time::Instant,
) -> Vec<String> {
    let mut unread = Vec::new();
    for key in keys.all() {
        loop {
            let call = recorder.now();
            match kv.get(key.as_bytes()).await {
                Ok(v) => {
                    let out = RegisterOut::Read(v.map(|b| parse_value(&b)));
                    recorder.record(
                        &key,
                        FINAL_READER,
                        call,
                        RegisterOp::Get,
                        Outcome::Done(out),
                    );
                    break;
                }
                Err(_) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(_) => {
                    unread.push(key.clone());
                    break;
                }
            }
        }
    }
    unread
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_retired_after_their_operations() {
        let keys = Keys::new(RegisterSpec {
            slots: 2,
            ops_per_key: 3,
            timeout: Duration::from_secs(1),
        });
        assert_eq!(keys.current(1), "reg-1-0");
        for _ in 0..3 {
            keys.count(1);
        }
        assert_eq!(keys.current(1), "reg-1-1");
        assert_eq!(keys.current(0), "reg-0-0");
        assert_eq!(keys.all(), vec!["reg-0-0", "reg-1-0", "reg-1-1"]);
    }

    #[test]
    fn values_are_unique_per_client_and_unreadable_ones_stand_out() {
        assert_ne!(unique_value(1, 5), unique_value(2, 5));
        assert_eq!(parse_value(b"42"), 42);
        assert_eq!(parse_value(b"garbage"), u64::MAX);
    }
}
