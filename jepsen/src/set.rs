//! The set workload: clients add unique elements to a set (each element
//! its own key under the set's prefix) and now and then read the whole set
//! with a scan. A set is retired after a bounded number of adds, as the
//! register workload retires keys, so reads stay small.
//!
//! What must hold (Jepsen's set-full checker, simplified to adds only):
//! - a read, during the run or at the end, contains every element whose
//!   add was acknowledged before the read was called — a miss in the final
//!   read is a **lost acknowledged write**, a miss earlier a stale read;
//! - a read contains no element whose add was not called before the read
//!   returned (a phantom).
//!
//! Elements are only ever added, so each element's presence is monotonic
//! and a scan (one linearizable read per region, not a snapshot) is judged
//! element by element.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flotilla_checker::generate::Rng;
use flotilla_client::RawClient;
use flotilla_proto::limits::MAX_SCAN_LIMIT;

use crate::analysis::{self, Anomalies, Checked};
use crate::history::{Recorder, Tally};
use crate::register::{unique_value, write_error_is_certain};
use crate::workload::prefix_end;

/// The workload's shape.
#[derive(Clone, Debug)]
pub struct SetSpec {
    /// Adds to a set before it is retired for a fresh one.
    pub adds_per_set: u64,
    /// Each operation's deadline (retries included).
    pub timeout: Duration,
}

/// The most adds a set may take: a read must fit in one scan, with room
/// for the adds racing past the retirement.
pub const MAX_ADDS_PER_SET: u64 = MAX_SCAN_LIMIT as u64 / 2;

/// One add: `ret` is `None` when its outcome is unknown.
#[derive(Clone, Debug)]
pub struct Add {
    pub set: u64,
    pub element: u64,
    pub call: u64,
    pub ret: Option<u64>,
}

/// One read of a whole set.
#[derive(Clone, Debug)]
pub struct Read {
    pub set: u64,
    pub call: u64,
    pub ret: u64,
    pub seen: BTreeSet<u64>,
    /// The read after the faults were healed.
    pub last: bool,
}

/// The sets in use and what was done to them.
pub struct Sets {
    spec: SetSpec,
    generation: AtomicU64,
    adds: AtomicU64,
    log: Mutex<(Vec<Add>, Vec<Read>)>,
}

impl Sets {
    /// Set 0, empty.
    pub fn new(spec: SetSpec) -> Sets {
        Sets {
            spec,
            generation: AtomicU64::new(0),
            adds: AtomicU64::new(0),
            log: Mutex::new((Vec::new(), Vec::new())),
        }
    }

    fn prefix(set: u64) -> String {
        format!("set-{set}/")
    }

    fn element_key(set: u64, element: u64) -> String {
        format!("{}{element:020}", Sets::prefix(set))
    }

    /// The set to add to, counting the add: the last add of a set moves
    /// the workload on to the next.
    fn next_add(&self) -> u64 {
        let set = self.generation.load(Ordering::Relaxed);
        if self.adds.fetch_add(1, Ordering::Relaxed) + 1 == self.spec.adds_per_set {
            self.adds.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::Relaxed);
        }
        set
    }

    fn log(&self) -> std::sync::MutexGuard<'_, (Vec<Add>, Vec<Read>)> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads set `set` whole; `None` if the read failed.
    async fn read(&self, kv: &RawClient, set: u64) -> Option<BTreeSet<u64>> {
        let prefix = Sets::prefix(set);
        let end = prefix_end(&prefix);
        let keys = kv
            .scan_keys(prefix.clone()..end, MAX_SCAN_LIMIT)
            .await
            .ok()?;
        Some(
            keys.iter()
                .map(|k| {
                    std::str::from_utf8(&k[prefix.len()..])
                        .ok()
                        .and_then(|e| e.parse().ok())
                        // A key no one wrote stands out as a phantom.
                        .unwrap_or(u64::MAX)
                })
                .collect(),
        )
    }
}

/// One client: adds, and one read in ten, until `stop`.
pub async fn client(
    id: u64,
    seed: u64,
    kv: RawClient,
    sets: Arc<Sets>,
    recorder: Arc<Recorder>,
    stop: Arc<AtomicBool>,
) {
    let kv = kv.with_timeout(sets.spec.timeout);
    let mut rng = Rng(seed ^ id.wrapping_mul(0x9e37_79b9));
    let mut seq = 0;
    while !stop.load(Ordering::Relaxed) {
        if rng.below(10) == 0 {
            let set = sets.generation.load(Ordering::Relaxed);
            let call = recorder.now();
            let Some(seen) = sets.read(&kv, set).await else {
                recorder.tally(id, Tally::Failed);
                continue;
            };
            let ret = recorder.now();
            recorder.tally(id, Tally::Ok);
            sets.log().1.push(Read {
                set,
                call,
                ret,
                seen,
                last: false,
            });
            continue;
        }
        seq += 1;
        let element = unique_value(id, seq);
        let set = sets.next_add();
        let call = recorder.now();
        let ret = match kv.put(Sets::element_key(set, element), "1").await {
            Ok(()) => Some(recorder.now()),
            Err(e) if write_error_is_certain(&e) => {
                recorder.tally(id, Tally::Failed);
                continue;
            }
            Err(_) => None,
        };
        recorder.tally(
            id,
            if ret.is_some() {
                Tally::Ok
            } else {
                Tally::Unknown
            },
        );
        sets.log().0.push(Add {
            set,
            element,
            call,
            ret,
        });
    }
}

/// After the faults are healed: one read of every set, retried until it
/// succeeds or `deadline` passes. Returns the sets that could not be read.
pub async fn final_reads(
    kv: &RawClient,
    sets: &Sets,
    recorder: &Recorder,
    deadline: tokio::time::Instant,
) -> Vec<String> {
    let mut unread = Vec::new();
    for set in 0..=sets.generation.load(Ordering::Relaxed) {
        loop {
            let call = recorder.now();
            if let Some(seen) = sets.read(kv, set).await {
                let ret = recorder.now();
                sets.log().1.push(Read {
                    set,
                    call,
                    ret,
                    seen,
                    last: true,
                });
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                unread.push(Sets::prefix(set));
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    unread
}

/// Checks every read against the adds; returns the account, the anomalies
/// and a description of each.
pub fn analyse(sets: &Sets) -> (Checked, Anomalies, String) {
    let started = std::time::Instant::now();
    let (adds, reads) = sets.log().clone();
    let found = check(&adds, &reads);
    let ops = adds.len() + reads.len();
    // A set with a lost add also counts as one with a wrong read.
    let wrong = found.bad_sets;
    let (checked, anomalies) = analysis::account(found.sets, ops, found.lost, wrong, started);
    (checked, anomalies, found.failures)
}

/// What the set check found.
#[derive(Debug, Default)]
pub struct SetFindings {
    /// Sets with at least one read.
    pub sets: usize,
    /// Acknowledged adds missing from a final read.
    pub lost: u64,
    /// Sets with a stale or phantom read, or a lost add.
    pub bad_sets: u64,
    /// One line per bad read.
    pub failures: String,
}

/// The check itself: every read against the adds of its set.
pub fn check(adds: &[Add], reads: &[Read]) -> SetFindings {
    let mut by_set: BTreeMap<u64, Vec<&Add>> = BTreeMap::new();
    // Each element's add's call time, per set.
    let mut called: BTreeMap<u64, HashMap<u64, u64>> = BTreeMap::new();
    for a in adds {
        by_set.entry(a.set).or_default().push(a);
        called.entry(a.set).or_default().insert(a.element, a.call);
    }
    let none = HashMap::new();
    let mut found = SetFindings::default();
    let mut bad = BTreeSet::new();
    let mut read_sets = BTreeSet::new();
    for r in reads {
        read_sets.insert(r.set);
        let adds = by_set.get(&r.set).map_or(&[][..], |v| &v[..]);
        let missing: Vec<u64> = adds
            .iter()
            .filter(|a| a.ret.is_some_and(|ret| ret < r.call) && !r.seen.contains(&a.element))
            .map(|a| a.element)
            .collect();
        let called = called.get(&r.set).unwrap_or(&none);
        let phantoms: Vec<u64> = r
            .seen
            .iter()
            .filter(|e| called.get(e).is_none_or(|call| *call > r.ret))
            .copied()
            .collect();
        if missing.is_empty() && phantoms.is_empty() {
            continue;
        }
        bad.insert(r.set);
        if r.last {
            found.lost += missing.len() as u64;
        }
        let _ = writeln!(
            found.failures,
            "set {}: the {} read at {:.3}–{:.3} s misses {} acknowledged adds {:?} and holds {} never added {:?}",
            r.set,
            if r.last { "final" } else { "running" },
            r.call as f64 / 1e9,
            r.ret as f64 / 1e9,
            missing.len(),
            &missing[..missing.len().min(5)],
            phantoms.len(),
            &phantoms[..phantoms.len().min(5)],
        );
    }
    found.sets = read_sets.len();
    found.bad_sets = bad.len() as u64;
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(element: u64, call: u64, ret: Option<u64>) -> Add {
        Add {
            set: 0,
            element,
            call,
            ret,
        }
    }

    fn read(call: u64, ret: u64, seen: &[u64], last: bool) -> Read {
        Read {
            set: 0,
            call,
            ret,
            seen: seen.iter().copied().collect(),
            last,
        }
    }

    #[test]
    fn reads_must_hold_every_add_acknowledged_before_them() {
        let adds = [add(1, 0, Some(1)), add(2, 2, Some(3)), add(3, 4, None)];
        // Add 2 overlaps the read, add 3's outcome is unknown: both may be
        // absent; add 1 may not.
        let ok = check(
            &adds,
            &[read(2, 5, &[1], false), read(9, 10, &[1, 2], true)],
        );
        assert_eq!(
            (ok.sets, ok.lost, ok.bad_sets),
            (1, 0, 0),
            "{}",
            ok.failures
        );
        let stale = check(&adds, &[read(2, 5, &[], false)]);
        assert_eq!((stale.lost, stale.bad_sets), (0, 1));
        assert!(
            stale.failures.contains("running read"),
            "{}",
            stale.failures
        );
        let lost = check(&adds, &[read(9, 10, &[1, 3], true)]);
        assert_eq!((lost.lost, lost.bad_sets), (1, 1));
        assert!(lost.failures.contains("[2]"), "{}", lost.failures);
    }

    #[test]
    fn reads_must_not_hold_elements_added_after_them_or_never() {
        let adds = [add(1, 5, Some(6))];
        let future = check(&adds, &[read(0, 4, &[1], false)]);
        assert_eq!(future.bad_sets, 1);
        let phantom = check(&adds, &[read(7, 8, &[1, 9], true)]);
        assert_eq!((phantom.lost, phantom.bad_sets), (0, 1));
        assert!(
            phantom.failures.contains("never added [9]"),
            "{}",
            phantom.failures
        );
    }

    #[test]
    fn sets_are_retired_after_their_adds() {
        let sets = Sets::new(SetSpec {
            adds_per_set: 2,
            timeout: Duration::from_secs(1),
        });
        assert_eq!(
            (sets.next_add(), sets.next_add(), sets.next_add()),
            (0, 0, 1)
        );
        assert_eq!(Sets::element_key(1, 7), "set-1/00000000000000000007");
    }
}
