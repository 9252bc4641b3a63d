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

/// Collects every client's operations.
pub struct Recorder {
    start: Instant,
    ops: Mutex<(BTreeMap<String, Vec<Op>>, OpCounts)>,
}

impl Recorder {
    /// An empty history whose time zero is now.
    pub fn new() -> Recorder {
        Recorder {
            start: Instant::now(),
            ops: Mutex::new((BTreeMap::new(), OpCounts::default())),
        }
    }

    /// Nanoseconds since the run began.
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Records one call.
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
        counts.invoked += 1;
        let op = match outcome {
            Outcome::Done(out) => {
                counts.ok += 1;
                Operation::done(client, call, ret, input, out)
            }
            Outcome::Failed => {
                counts.failed += 1;
                return;
            }
            Outcome::Unknown => {
                counts.unknown += 1;
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
