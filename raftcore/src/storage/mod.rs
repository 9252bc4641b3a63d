//! How raftcore reads what the host has persisted.
//!
//! raftcore never writes storage: new entries, hard state and snapshots leave
//! in a [`Ready`](crate::Ready), the host persists them, and this read-only
//! trait lets the core read them back. [`MemStorage`] is an in-memory
//! implementation for tests and simulations; [`conformance`] is the test
//! suite every implementation must pass.

pub mod conformance;
mod mem;

pub use mem::MemStorage;

use crate::error::StorageError;
use crate::types::{ConfState, Entry, HardState, Snapshot};

/// What a peer restarts from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RaftState {
    /// The last persisted hard state.
    pub hard_state: HardState,
    /// The last persisted membership.
    pub conf_state: ConfState,
}

/// Read access to a peer's persisted log and state.
///
/// The log holds a contiguous range of entries `[first_index, last_index]`,
/// preceded by a compacted prefix whose last entry (`first_index - 1`) is
/// still known by its term. A brand-new log has `first_index == 1` and
/// `last_index == 0`.
///
/// Implementations must guarantee:
/// - `term(i)` answers for `first_index - 1 <= i <= last_index`, returns
///   [`StorageError::Compacted`] below and [`StorageError::Unavailable`]
///   above that range;
/// - `entries(low, high, max_size)` returns the entries `[low, high)` in
///   order, cut after the entry that first brings the payload total past
///   `max_size` (but never empty when `low < high`); `Compacted` if
///   `low < first_index`, `Unavailable` if `high > last_index + 1`;
/// - everything returned was durably persisted by the host (raftcore
///   counts it as such, for commit and votes);
/// - `snapshot` returns a snapshot whose index is at least `request_index`,
///   or [`StorageError::SnapshotTemporarilyUnavailable`] while one is being
///   built (the leader retries later).
pub trait Storage {
    /// The hard state and membership to restart from.
    fn initial_state(&self) -> Result<RaftState, StorageError>;
    /// Entries `[low, high)`, bounded in bytes by `max_size`.
    fn entries(&self, low: u64, high: u64, max_size: u64) -> Result<Vec<Entry>, StorageError>;
    /// The term of the entry at `index`.
    fn term(&self, index: u64) -> Result<u64, StorageError>;
    /// The index of the first entry still in the log.
    fn first_index(&self) -> Result<u64, StorageError>;
    /// The index of the last entry in the log.
    fn last_index(&self) -> Result<u64, StorageError>;
    /// A snapshot covering at least `request_index`, for peer `to`.
    fn snapshot(&self, request_index: u64, to: u64) -> Result<Snapshot, StorageError>;
}

/// Cuts `entries` after the entry that brings the running payload total past
/// `max_size`, always keeping at least one entry.
pub fn limit_size(entries: &mut Vec<Entry>, max_size: u64) {
    entries.truncate(size_limited_len(entries, max_size));
}

/// How many leading entries of `entries` fit in `max_size` payload bytes:
/// up to and including the entry that first passes it, at least one (unless
/// `entries` is empty).
pub fn size_limited_len(entries: &[Entry], max_size: u64) -> usize {
    let mut total = 0u64;
    let fit = entries
        .iter()
        .take_while(|e| {
            let first = total == 0;
            total = total.saturating_add(e.payload_size());
            first || total <= max_size
        })
        .count();
    fit.max(1).min(entries.len())
}
