//! Work the Raft side hands to the store's PD worker (an async task that
//! owns the PD client): the pollers never wait on the network.

use bytes::Bytes;
use flotilla_proto::metapb;

use crate::peer::msg::WriteCallback;

/// Queued PD work at most; more is dropped (the asker retries later).
pub const PD_TASK_CAPACITY: usize = 1_024;

/// One request for the PD worker.
pub enum PdTask {
    /// Get IDs for cutting `region` at `keys`, then have its peer propose
    /// the split (`cb`, if any, hears how it ended).
    AskSplit {
        /// The region as its leader knows it.
        region: metapb::Region,
        /// Sorted cut keys strictly inside it.
        keys: Vec<Bytes>,
        /// Who waits for the outcome.
        cb: Option<WriteCallback>,
    },
    /// Tell PD about a split this store's leader applied.
    ReportSplit {
        /// The regions after it, in key order.
        regions: Vec<metapb::Region>,
    },
}

/// The Raft side's end of the queue.
pub type PdScheduler = tokio::sync::mpsc::Sender<PdTask>;
