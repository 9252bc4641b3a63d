//! Raft snapshot files: a region's user data at one applied index, built
//! from a RocksDB snapshot, streamed to another store in chunks, checked,
//! and applied there in one write batch.
//!
//! A snapshot's Raft metadata (index, term, membership) travels in the Raft
//! message; its `data` is a [`SnapshotData`] naming the region and the
//! size, CRC-32 and pair count of a file that travels separately on the
//! `Snapshot` RPC. The file's layout is in [`format`](mod@format).
//!
//! The life of a snapshot:
//! 1. the leader's [`SnapManager::build`] writes `{region}_{term}_{index}.snap`
//!    in the snapshot directory (via a `.tmp` file, fsynced and renamed);
//! 2. [`SnapManager::chunks`] reads it for sending, paced by a shared
//!    [`Limiter`];
//! 3. the follower's [`SnapManager::receiver`] writes the chunks to a
//!    `.tmp` file that [`SnapWriter::finish`] checks against the announced
//!    size and checksum before renaming it;
//! 4. [`SnapManager::apply`] checks the file again, then replaces the
//!    region's range in a caller's write batch;
//! 5. [`SnapManager::gc`] removes files no region needs any more.
//!
//! A crash can leave only `.tmp` files behind (a final name appears only by
//! an atomic rename of a complete, fsynced file); [`SnapManager::new`]
//! removes them.

pub mod format;
pub mod limit;
mod manager;
mod recv;
mod send;

#[cfg(test)]
mod tests;

use std::fmt;
use std::io;
use std::path::PathBuf;

pub use flotilla_proto::raft_serverpb::SnapshotData;
pub use limit::Limiter;
pub use manager::SnapManager;
pub use recv::SnapWriter;
pub use send::SnapChunks;

/// Names one snapshot: the region and the Raft position it was taken at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SnapKey {
    /// The region.
    pub region_id: u64,
    /// Term of the entry at `index`.
    pub term: u64,
    /// The applied index the snapshot holds the state of.
    pub index: u64,
}

const SNAP_SUFFIX: &str = ".snap";
const TMP_SUFFIX: &str = ".snap.tmp";

impl SnapKey {
    /// A key.
    pub fn new(region_id: u64, term: u64, index: u64) -> SnapKey {
        SnapKey {
            region_id,
            term,
            index,
        }
    }

    /// The complete file's name: `{region_id}_{term}_{index}.snap`.
    pub fn file_name(&self) -> String {
        format!("{self}{SNAP_SUFFIX}")
    }

    /// The name of the file while it is written: `...snap.tmp`.
    pub fn tmp_file_name(&self) -> String {
        format!("{self}{TMP_SUFFIX}")
    }

    /// The key of a complete file's name; `None` for any other name,
    /// including non-canonical spellings such as `+1_02_3.snap`, so that
    /// files this code did not write are never taken for snapshots.
    pub fn from_file_name(name: &str) -> Option<SnapKey> {
        let mut parts = name.strip_suffix(SNAP_SUFFIX)?.split('_');
        let mut next = || parts.next()?.parse::<u64>().ok();
        let key = SnapKey::new(next()?, next()?, next()?);
        (key.file_name() == name).then_some(key)
    }
}

impl fmt::Display for SnapKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}_{}", self.region_id, self.term, self.index)
    }
}

/// Why a snapshot operation failed, and what the caller does about it.
#[derive(Debug, thiserror::Error)]
pub enum SnapError {
    /// A file or the snapshot directory could not be read or written.
    /// Retry later; a full or failing disk needs an operator.
    #[error("snapshot I/O on {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// RocksDB failed while reading the region for a build. Retry later.
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// A snapshot file, or the metadata describing it, is not what it
    /// claims (wrong size or checksum, bad layout, keys outside the region).
    /// The file is useless: delete it and have the snapshot sent again.
    #[error("corrupt snapshot {what}: {detail}")]
    Corrupt {
        /// Which file or record.
        what: String,
        /// What was wrong.
        detail: String,
    },
    /// The sender sent more bytes than the snapshot's metadata announced.
    /// Drop the receiver (its partial file goes with it) and refuse the
    /// transfer.
    #[error("snapshot {key} is larger than the announced {limit_bytes} bytes")]
    TooLarge {
        /// The snapshot.
        key: SnapKey,
        /// The announced size.
        limit_bytes: u64,
    },
    /// No complete file exists for this key. Build it (sender) or receive
    /// it (receiver) first.
    #[error("snapshot {0} does not exist")]
    Missing(SnapKey),
    /// This key is being built or received already. Retry later: the other
    /// transfer will most likely have produced the file.
    #[error("snapshot {0} is being built or received already")]
    Busy(SnapKey),
    /// An earlier write to this receiver failed, so its file is not
    /// trustworthy. Drop the receiver and receive the snapshot again.
    #[error("an earlier write to snapshot {0} failed")]
    Aborted(SnapKey),
}

impl SnapError {
    /// A corruption error.
    pub fn corrupt(what: impl Into<String>, detail: impl fmt::Display) -> SnapError {
        SnapError::Corrupt {
            what: what.into(),
            detail: detail.to_string(),
        }
    }

    /// Wraps an I/O error with the path it happened on.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> SnapError {
        let path = path.into();
        move |source| SnapError::Io { path, source }
    }
}

#[cfg(test)]
mod key_tests {
    use super::*;

    #[test]
    fn file_names_round_trip() {
        let key = SnapKey::new(7, 3, 42);
        assert_eq!(key.file_name(), "7_3_42.snap");
        assert_eq!(key.tmp_file_name(), "7_3_42.snap.tmp");
        assert_eq!(SnapKey::from_file_name("7_3_42.snap"), Some(key));
    }

    #[test]
    fn foreign_names_are_not_keys() {
        for name in [
            "7_3_42.snap.tmp",
            "7_3.snap",
            "7_3_42_1.snap",
            "+7_3_42.snap",
            "07_3_42.snap",
            "7_3_x.snap",
            "7_3_42",
            "18446744073709551616_1_1.snap",
            ".snap",
        ] {
            assert_eq!(SnapKey::from_file_name(name), None, "{name}");
        }
    }
}
