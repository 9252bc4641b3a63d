//! The workloads a run can drive, behind one face: start the clients, do
//! the final reads once the faults are healed, check what was recorded.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use flotilla_client::RawClient;

use crate::analysis::{self, Anomalies, Checked};
use crate::history::Recorder;
use crate::queue::{self, Queue};
use crate::register::{self, Keys, RegisterSpec};
use crate::set::{self, SetSpec, Sets};

/// Which workload a run drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// Hot keys with get, put and CAS of unique values; each key's history
    /// checked for linearizability.
    Register,
    /// Unique adds to a set, read whole now and then: every read holds
    /// every add acknowledged before it.
    Set,
    /// The job queue: jobs enqueued and claimed by CAS, each claimed
    /// exactly once.
    Queue,
}

impl Workload {
    /// Its name in the scenario.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Register => "register",
            Workload::Set => "set",
            Workload::Queue => "queue",
        }
    }
}

/// The end of the key range holding exactly the keys under `prefix`, a
/// prefix ending in '/' ('0' follows '/').
pub(crate) fn prefix_end(prefix: &str) -> String {
    format!("{}0", prefix.trim_end_matches('/'))
}

/// A workload's sizes.
#[derive(Clone, Debug)]
pub struct Sizes {
    /// Keys in use at once (register).
    pub keys: u64,
    /// Operations on a key, or adds to a set, before it is retired.
    pub ops_per_key: u64,
    /// Each operation's deadline.
    pub timeout: Duration,
}

/// A workload's shared state while it runs.
pub enum Running {
    Register(Arc<Keys>),
    Set(Arc<Sets>),
    Queue(Arc<Queue>),
}

impl Running {
    /// The state a workload starts from.
    pub fn new(workload: Workload, sizes: &Sizes) -> Running {
        match workload {
            Workload::Register => Running::Register(Arc::new(Keys::new(RegisterSpec {
                slots: sizes.keys,
                ops_per_key: sizes.ops_per_key,
                timeout: sizes.timeout,
            }))),
            Workload::Set => Running::Set(Arc::new(Sets::new(SetSpec {
                adds_per_set: sizes.ops_per_key,
                timeout: sizes.timeout,
            }))),
            Workload::Queue => Running::Queue(Arc::new(Queue::new(sizes.timeout))),
        }
    }

    /// Starts client `id`; it runs until `stop`.
    pub fn spawn_client(
        &self,
        id: u64,
        seed: u64,
        kv: RawClient,
        recorder: Arc<Recorder>,
        stop: Arc<AtomicBool>,
    ) -> tokio::task::JoinHandle<()> {
        match self {
            Running::Register(keys) => {
                tokio::spawn(register::client(id, seed, kv, keys.clone(), recorder, stop))
            }
            Running::Set(sets) => {
                tokio::spawn(set::client(id, seed, kv, sets.clone(), recorder, stop))
            }
            Running::Queue(queue) => {
                tokio::spawn(queue::client(id, seed, kv, queue.clone(), recorder, stop))
            }
        }
    }

    /// The final reads, retried until `deadline`; returns what could not
    /// be read.
    pub async fn final_reads(
        &self,
        kv: &RawClient,
        recorder: &Recorder,
        deadline: tokio::time::Instant,
    ) -> Vec<String> {
        match self {
            Running::Register(keys) => register::final_reads(kv, keys, recorder, deadline).await,
            Running::Set(sets) => set::final_reads(kv, sets, recorder, deadline).await,
            Running::Queue(queue) => queue::final_drain(kv, queue, deadline).await,
        }
    }

    /// Checks what was recorded: the checker's account, the anomalies, and
    /// a description of each failure.
    pub fn analyse(&self, recorder: &Recorder) -> (Checked, Anomalies, String) {
        match self {
            Running::Register(_) => analysis::analyse(recorder.snapshot().0),
            Running::Set(sets) => set::analyse(sets),
            Running::Queue(queue) => queue::analyse(queue),
        }
    }
}
