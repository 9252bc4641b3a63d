use crate::error::StorageError;
use crate::storage::{size_limited_len, RaftState, Storage};
use crate::types::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};

/// A [`Storage`] held in memory, for tests, simulations and benchmarks.
///
/// The host writes to it directly (it is the host's storage) through
/// [`RawNode::storage_mut`](crate::RawNode::storage_mut): `append` the
/// entries of each `Ready`, `set_hard_state`, `apply_snapshot`, and
/// `compact` behind a snapshot of its state machine.
#[derive(Clone, Debug, Default)]
pub struct MemStorage {
    hard_state: HardState,
    conf_state: ConfState,
    /// The latest snapshot; its index and term describe the compacted prefix.
    snapshot: Snapshot,
    /// Entries after `snapshot.metadata.index`, contiguous.
    entries: Vec<Entry>,
}

impl MemStorage {
    /// An empty log with no members: the state of a peer that will be
    /// created by a message from the group and fill from a snapshot.
    pub fn new() -> MemStorage {
        MemStorage::default()
    }

    /// The storage of a founding member of a new group with membership
    /// `conf_state`: a bootstrap snapshot at index 1, term 1, that carries
    /// the membership, and no entries.
    ///
    /// Why a snapshot and not an empty log: the initial membership is not in
    /// the log, so a peer added later (which starts with [`MemStorage::new`])
    /// cannot learn it by replaying entries; because the log starts after
    /// index 1, the leader sends such a peer this snapshot first. TiKV and
    /// raft-rs bootstrap groups the same way.
    pub fn with_conf_state(conf_state: ConfState) -> MemStorage {
        let metadata = SnapshotMetadata {
            conf_state: conf_state.clone(),
            index: 1,
            term: 1,
        };
        MemStorage {
            hard_state: HardState {
                term: 1,
                vote: crate::NO_PEER,
                commit: 1,
            },
            conf_state,
            snapshot: Snapshot {
                data: bytes::Bytes::new(),
                metadata,
            },
            entries: Vec::new(),
        }
    }

    /// Records the hard state.
    pub fn set_hard_state(&mut self, hs: HardState) {
        self.hard_state = hs;
    }

    /// The recorded hard state.
    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    /// Records the membership (the host calls this when it applies a
    /// configuration change).
    pub fn set_conf_state(&mut self, cs: ConfState) {
        self.conf_state = cs;
    }

    /// The recorded membership.
    pub fn conf_state(&self) -> &ConfState {
        &self.conf_state
    }

    fn offset(&self) -> u64 {
        self.snapshot.metadata.index
    }

    fn last(&self) -> u64 {
        self.offset() + self.entries.len() as u64
    }

    /// Appends entries, replacing any existing entries from the first new
    /// index on (a leader overwrote a conflicting suffix).
    ///
    /// # Panics
    /// If the entries do not start within `[first_index, last_index + 1]`
    /// or are not contiguous: the host fed them out of order.
    pub fn append(&mut self, ents: &[Entry]) {
        let Some(first) = ents.first() else { return };
        assert!(
            first.index > self.offset() && first.index <= self.last() + 1,
            "append at {} outside the log ({}, {}]",
            first.index,
            self.offset(),
            self.last() + 1
        );
        self.entries
            .truncate((first.index - self.offset() - 1) as usize);
        self.entries.extend_from_slice(ents);
    }

    /// Replaces the whole log with `snapshot` (a follower restoring from the
    /// leader's snapshot). Returns `SnapshotOutOfDate` if it is older than
    /// the current one.
    pub fn apply_snapshot(&mut self, snapshot: Snapshot) -> Result<(), StorageError> {
        if snapshot.metadata.index < self.offset() {
            return Err(StorageError::SnapshotOutOfDate);
        }
        self.hard_state.term = self.hard_state.term.max(snapshot.metadata.term);
        self.hard_state.commit = self.hard_state.commit.max(snapshot.metadata.index);
        self.conf_state = snapshot.metadata.conf_state.clone();
        self.entries.clear();
        self.snapshot = snapshot;
        Ok(())
    }

    /// Discards the log up to and including `index`, which `data` (an image
    /// of the host's state machine at `index`, with membership
    /// `conf_state`) replaces.
    pub fn compact(
        &mut self,
        index: u64,
        conf_state: ConfState,
        data: bytes::Bytes,
    ) -> Result<(), StorageError> {
        if index <= self.offset() {
            return Err(StorageError::Compacted);
        }
        if index > self.last() {
            return Err(StorageError::Unavailable);
        }
        let term = self.term(index)?;
        self.entries.drain(..(index - self.offset()) as usize);
        self.snapshot = Snapshot {
            data,
            metadata: SnapshotMetadata {
                conf_state,
                index,
                term,
            },
        };
        Ok(())
    }

    /// The latest snapshot (index 0 if none).
    pub fn latest_snapshot(&self) -> &Snapshot {
        &self.snapshot
    }
}

impl Storage for MemStorage {
    fn initial_state(&self) -> Result<RaftState, StorageError> {
        Ok(RaftState {
            hard_state: self.hard_state,
            conf_state: self.conf_state.clone(),
        })
    }

    fn entries(&self, low: u64, high: u64, max_size: u64) -> Result<Vec<Entry>, StorageError> {
        if low <= self.offset() {
            return Err(StorageError::Compacted);
        }
        if high > self.last() + 1 {
            return Err(StorageError::Unavailable);
        }
        if low >= high {
            return Ok(Vec::new());
        }
        let lo = (low - self.offset() - 1) as usize;
        let hi = (high - self.offset() - 1) as usize;
        // Copy only what the size limit keeps: copying the whole range first
        // made every one-entry append cost a copy of the log's tail (3x the
        // simulator's run time with one entry per append, tests/sim).
        let range = &self.entries[lo..hi];
        Ok(range[..size_limited_len(range, max_size)].to_vec())
    }

    fn term(&self, index: u64) -> Result<u64, StorageError> {
        if index < self.offset() {
            return Err(StorageError::Compacted);
        }
        if index == self.offset() {
            return Ok(self.snapshot.metadata.term);
        }
        match self.entries.get((index - self.offset() - 1) as usize) {
            Some(e) => Ok(e.term),
            None => Err(StorageError::Unavailable),
        }
    }

    fn first_index(&self) -> Result<u64, StorageError> {
        Ok(self.offset() + 1)
    }

    fn last_index(&self) -> Result<u64, StorageError> {
        Ok(self.last())
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> Result<Snapshot, StorageError> {
        if self.snapshot.metadata.index < request_index || self.snapshot.is_empty() {
            return Err(StorageError::SnapshotTemporarilyUnavailable);
        }
        Ok(self.snapshot.clone())
    }
}

#[cfg(test)]
mod tests {
    use crate::storage::conformance;

    #[test]
    fn mem_storage_conforms() {
        conformance::run_all(conformance::MemStorageBuilder);
    }
}
