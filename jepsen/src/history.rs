//! The history of a run, as the clients saw it: every operation with its
//! call and return times on this process's monotonic clock (never a node's
//! clock: a fault may skew those), per key.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use flotilla_checker::model::{RegisterOp, RegisterOut};
use flotilla_checker::Operation;

/// A register operation of the history.
pub type Op = Operation<RegisterOp<u64>, RegisterOut<u64>>;

/// What happened to one call, as the client library reported it.
pub enum Outcome {
    /// It returned this.
    Done(RegisterOut<u64>),
    /// It failed and certainly did nothing (a read that failed; a request
    /// refused before it was sent): left out of the history.
    Failed,
    /// It may have taken effect, or not, or may still: a write whose answer
    /// was lost.
    Unknown,
}

/// How a call ended, for the counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tally {
    /// It returned.
    Ok,
    /// It failed and did nothing.
    Failed,
    /// Its outcome is unknown.
    Unknown,
}

/// Counts of outcomes, for the summary.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct OpCounts {
    /// Calls made.
    pub invoked: u64,
    /// Calls that returned.
    pub ok: u64,
    /// Calls that failed and did nothing.
    pub failed: u64,
    /// Calls whose outcome is unknown.
    pub unknown: u64,
}

impl OpCounts {
    fn add(&mut self, tally: Tally) {
        self.invoked += 1;
        match tally {
            Tally::Ok => self.ok += 1,
            Tally::Failed => self.failed += 1,
            Tally::Unknown => self.unknown += 1,
        }
    }
}

/// Collects every client's operations.
pub struct Recorder {
    start: Instant,
    ops: Mutex<(BTreeMap<String, Vec<Op>>, OpCounts)>,
    /// When each client's calls returned successfully, in order: how fast
    /// the cluster served everyone again after a fault.
    served: Mutex<BTreeMap<u64, Vec<u64>>>,
}

impl Recorder {
    /// An empty history whose time zero is now.
    pub fn new() -> Recorder {
        Recorder {
            start: Instant::now(),
            ops: Mutex::new((BTreeMap::new(), OpCounts::default())),
            served: Mutex::default(),
        }
    }

    /// Nanoseconds since the run began.
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Counts one call of a workload that keeps its own history (the set
    /// and queue workloads).
    pub fn tally(&self, client: u64, tally: Tally) {
        let mut guard = self.ops.lock().unwrap_or_else(|e| e.into_inner());
        guard.1.add(tally);
        drop(guard);
        if tally == Tally::Ok {
            self.served(client, self.now());
        }
    }

    fn served(&self, client: u64, at: u64) {
        let mut served = self.served.lock().unwrap_or_else(|e| e.into_inner());
        served.entry(client).or_default().push(at);
    }

    /// The longest any of `clients` went without a successful call
    /// between `from` and `to` (nanoseconds).
    pub fn longest_wait(&self, clients: &[u64], from: u64, to: u64) -> u64 {
        let served = self.served.lock().unwrap_or_else(|e| e.into_inner());
        let mut longest = 0;
        for c in clients {
            let times = served.get(c).map_or(&[][..], |v| &v[..]);
            let start = times.partition_point(|r| *r < from);
            let mut prev = from;
            for t in times[start..].iter().take_while(|t| **t <= to) {
                longest = longest.max(t - prev);
                prev = *t;
            }
            longest = longest.max(to.saturating_sub(prev));
        }
        longest
    }

    /// How long after `t` every one of `clients` had a call return
    /// successfully (a call that was already running at `t` counts), or
    /// `None` if one has not yet.
    pub fn everyone_served_after(&self, clients: &[u64], t: u64) -> Option<u64> {
        let served = self.served.lock().unwrap_or_else(|e| e.into_inner());
        let mut latest = t;
        for c in clients {
            let times = served.get(c)?;
            let first = times.get(times.partition_point(|r| *r < t))?;
            latest = latest.max(*first);
        }
        Some(latest - t)
    }

    /// Records one register call.
    pub fn record(
        &self,
        key: &str,
        client: u64,
        call: u64,
        input: RegisterOp<u64>,
        outcome: Outcome,
    ) {
        let ret = self.now();
        let mut guard = self.ops.lock().unwrap_or_else(|e| e.into_inner());
        let (ops, counts) = &mut *guard;
        let op = match outcome {
            Outcome::Done(out) => {
                counts.add(Tally::Ok);
                self.served(client, ret);
                Operation::done(client, call, ret, input, out)
            }
            Outcome::Failed => {
                counts.add(Tally::Failed);
                return;
            }
            Outcome::Unknown => {
                counts.add(Tally::Unknown);
                Operation::unknown(client, call, input)
            }
        };
        ops.entry(key.to_string()).or_default().push(op);
    }

    /// The history so far, per key, and the counts.
    pub fn snapshot(&self) -> (BTreeMap<String, Vec<Op>>, OpCounts) {
        let guard = self.ops.lock().unwrap_or_else(|e| e.into_inner());
        guard.clone()
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recorder whose clients were served at these times.
    fn served(times: &[(u64, &[u64])]) -> Recorder {
        let r = Recorder::new();
        *r.served.lock().unwrap() = times.iter().map(|(c, t)| (*c, t.to_vec())).collect();
        r
    }

    #[test]
    fn recovery_waits_for_every_client() {
        let r = served(&[(1, &[10, 50, 70]), (2, &[20, 90])]);
        assert_eq!(r.everyone_served_after(&[1, 2], 40), Some(50));
        assert_eq!(r.everyone_served_after(&[1], 40), Some(10));
        assert_eq!(r.everyone_served_after(&[1, 2], 95), None);
        assert_eq!(r.everyone_served_after(&[3], 0), None);
    }

    #[test]
    fn the_longest_wait_counts_from_the_window_start() {
        let r = served(&[(1, &[10, 50, 70]), (2, &[20, 90])]);
        // Client 2: 0 → 20 → 90; client 1: 0 → 10 → 50 → 70 → 100.
        assert_eq!(r.longest_wait(&[1, 2], 0, 100), 70);
        assert_eq!(r.longest_wait(&[1], 0, 100), 40);
        assert_eq!(r.longest_wait(&[1], 60, 65), 5);
    }
}
