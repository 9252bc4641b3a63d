//! The apply pool: a few threads that apply committed entries to the state
//! machine (the `default` column family), off the Raft pollers.
//!
//! Each region is bound to one apply thread (by ID), so its entries apply
//! in log order. A thread takes whatever tasks are queued, applies them all
//! into **one** write batch together with each region's new apply state,
//! and writes it without fsync: after a crash, entries past the persisted
//! applied index are applied again from the (synced) log, and since data
//! and apply state always land in the same batch, the replay starts
//! exactly where the persisted state ends. Then it answers the proposals
//! and tells each region's peer how far it got.

pub mod admin;
pub mod conf_change;
pub mod exec;
mod worker;

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Sender, TrySendError};
use flotilla_proto::metapb;
use flotilla_proto::raft_serverpb::RaftApplyState;
use parking_lot::{Condvar, Mutex, RwLock};
use raftcore::{Entry, Snapshot};

use crate::engine::Engine;
use crate::metrics::StoreMetrics;
use crate::peer::msg::{ApplyResult, WriteCallback};
use crate::snap::SnapManager;

/// What the apply thread has for a region's peer, shared between the
/// apply thread (writer) and the peer (reader). Only the newest value
/// matters, so it is a cell rather than a queue that could fill up.
#[derive(Default)]
pub struct Progress {
    /// How far the region applied.
    pub applied: Option<ApplyResult>,
    /// A snapshot built on request (`Some(None)`: building failed).
    pub snapshot: Option<Option<Snapshot>>,
    /// Admin commands applied since the peer last looked, in order.
    pub results: Vec<admin::ExecResult>,
}

/// A region's [`Progress`] cell.
pub type ApplyProgress = Arc<Mutex<Progress>>;

/// Wakes a region's peer after its progress changed.
pub type Wake = Arc<dyn Fn(u64) + Send + Sync>;

/// A proposal waiting for its entry to apply.
pub struct Proposal {
    /// The entry's index.
    pub index: u64,
    /// The term it was proposed in: an entry at `index` of another term
    /// means the proposal was lost (`StaleCommand`).
    pub term: u64,
    /// Who waits.
    pub cb: WriteCallback,
}

/// Work for the apply pool.
pub enum ApplyTask {
    /// Start applying for a region from `apply_state` (a new peer, or one
    /// that just installed a snapshot).
    Register {
        /// The region (its range and epoch bound the commands).
        region: metapb::Region,
        /// Where applying resumes.
        apply_state: RaftApplyState,
        /// Term of the entry at the applied index.
        applied_term: u64,
        /// Where progress is published.
        progress: ApplyProgress,
    },
    /// Apply committed entries (in order, following the previous ones).
    Apply {
        /// The region.
        region_id: u64,
        /// The entries.
        entries: Vec<Entry>,
        /// Proposals for some of them, by index.
        proposals: Vec<Proposal>,
    },
    /// The log was truncated up to `index` (of `term`): record it in the
    /// apply state.
    CompactLog {
        /// The region.
        region_id: u64,
        /// Last truncated index.
        index: u64,
        /// Its term.
        term: u64,
    },
    /// Build a snapshot of the region as applied so far, for followers
    /// (on a builder thread; the region's later tasks wait for it).
    GenSnapshot {
        /// The region.
        region_id: u64,
    },
    /// Stop applying for a region (it is being destroyed or re-registered).
    Unregister {
        /// The region.
        region_id: u64,
    },
}

impl ApplyTask {
    fn region_id(&self) -> u64 {
        match self {
            ApplyTask::Register { region, .. } => region.id,
            ApplyTask::Apply { region_id, .. }
            | ApplyTask::CompactLog { region_id, .. }
            | ApplyTask::GenSnapshot { region_id }
            | ApplyTask::Unregister { region_id } => *region_id,
        }
    }
}

/// The pool's threads and their queues.
pub struct ApplyPool {
    /// Emptied by [`ApplyPool::stop`], which closes the queues.
    senders: RwLock<Vec<Sender<ApplyTask>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    capacity: usize,
    gate: Arc<Gate>,
}

/// Holds the apply threads still while closed: a fault-test hook for a
/// slow apply (production never closes it).
#[derive(Default)]
pub struct Gate {
    closed: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    fn set_closed(&self, closed: bool) {
        *self.closed.lock() = closed;
        self.opened.notify_all();
    }

    fn wait_open(&self) {
        let mut closed = self.closed.lock();
        while *closed {
            self.opened.wait(&mut closed);
        }
    }
}

impl ApplyPool {
    /// Starts `threads` apply threads, each with a queue of `capacity`
    /// tasks.
    pub fn start(
        engine: Engine,
        snap: SnapManager,
        threads: usize,
        capacity: usize,
        wake: Wake,
        metrics: Arc<StoreMetrics>,
    ) -> ApplyPool {
        let mut senders = Vec::new();
        let mut handles = Vec::new();
        let gate = Arc::new(Gate::default());
        for i in 0..threads.max(1) {
            let (tx, rx) = crossbeam_channel::bounded(capacity);
            let worker = worker::Worker::new(
                engine.clone(),
                snap.clone(),
                wake.clone(),
                metrics.clone(),
                gate.clone(),
            );
            let handle = std::thread::Builder::new()
                .name(format!("apply-{i}"))
                .spawn(move || worker.run(rx))
                .expect("spawn apply thread");
            senders.push(tx);
            handles.push(handle);
        }
        ApplyPool {
            senders: RwLock::new(senders),
            threads: Mutex::new(handles),
            capacity,
            gate,
        }
    }

    /// Fault tests only: stops applying (tasks queue up) until
    /// [`resume`](Self::resume) — a store whose apply lags its log.
    pub fn pause(&self) {
        self.gate.set_closed(true);
    }

    /// Fault tests only: applies again after [`pause`](Self::pause).
    pub fn resume(&self) {
        self.gate.set_closed(false);
    }

    /// Queues a task on its region's thread, blocking while that queue is
    /// full (back-pressure on the pollers, which in turn fills mailboxes
    /// and turns clients away with `ServerIsBusy`).
    /// After [`stop`](Self::stop) the task is dropped (its callbacks with
    /// it: callers see the store going away).
    pub fn schedule(&self, task: ApplyTask) {
        let senders = self.senders.read();
        if senders.is_empty() {
            return;
        }
        let sender = senders[(task.region_id() % senders.len() as u64) as usize].clone();
        drop(senders);
        match sender.try_send(task) {
            Ok(()) => {}
            Err(TrySendError::Full(task)) => {
                let _ = sender.send(task);
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Whether any queue is more than half full: new client requests are
    /// turned away until it drains.
    pub fn is_busy(&self) -> bool {
        self.senders
            .read()
            .iter()
            .any(|s| s.len() * 2 > self.capacity)
    }

    /// Tasks waiting, over all threads.
    pub fn queued(&self) -> usize {
        self.senders.read().iter().map(|s| s.len()).sum()
    }

    /// Stops the threads after they finish what is queued.
    pub fn stop(&self) {
        // Closing the queues ends the threads' loops.
        self.gate.set_closed(false);
        self.senders.write().clear();
        for h in std::mem::take(&mut *self.threads.lock()) {
            let _ = h.join();
        }
    }
}

impl Drop for ApplyPool {
    fn drop(&mut self) {
        self.stop();
    }
}
