//! What can go wrong, and what the caller should do about it.

use thiserror::Error;

/// Errors from a [`RawNode`](crate::RawNode) call.
///
/// Each says what the caller should do: redirect to the leader, retry later,
/// fix the request, or give up.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// This peer is not the leader and could not forward the request.
    /// Redirect to `leader_id` if known, else retry after an election.
    #[error("not the leader (leader: {leader_id:?})")]
    NotLeader {
        /// The leader this peer knows of, if any.
        leader_id: Option<u64>,
    },
    /// A leader transfer is in progress; proposals are refused until it ends
    /// (thesis §3.10). Retry shortly, probably at the new leader.
    #[error("leader transfer to {transferee} in progress")]
    TransferInProgress {
        /// The peer leadership is moving to.
        transferee: u64,
    },
    /// The leader's uncommitted log is over its configured size limit. Back
    /// off and retry.
    #[error("uncommitted log size limit reached")]
    UncommittedLimit,
    /// A configuration change is proposed but not yet applied; only one may
    /// be in flight. Retry after it applies.
    #[error("a configuration change is already pending")]
    ConfChangePending,
    /// The configuration change cannot apply to the current configuration.
    /// The request is wrong; do not retry it unchanged.
    #[error("invalid configuration change: {0}")]
    InvalidConfChange(String),
    /// Leadership can move only to a voter of the current configuration.
    #[error("peer {0} is not a voter")]
    NotVoter(u64),
    /// This peer has been removed from the group (or never belonged).
    #[error("peer {0} is not a member of the group")]
    NotMember(u64),
    /// A message came from, or refers to, a peer this group does not track.
    /// Drop the message.
    #[error("unknown peer {0}")]
    UnknownPeer(u64),
    /// A message is malformed or addressed elsewhere. Drop it.
    #[error("invalid message: {0}")]
    InvalidMessage(&'static str),
    /// The group is not idle, so it may not hibernate now.
    #[error("not quiescent: {0}")]
    NotQuiescent(&'static str),
    /// The configuration is invalid.
    #[error("invalid config: {0}")]
    Config(String),
    /// The storage failed.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
}

impl Error {
    /// Whether the same request may succeed if retried later (possibly at
    /// another peer): leadership and load conditions, not a bad request.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::NotLeader { .. }
                | Error::TransferInProgress { .. }
                | Error::UncommittedLimit
                | Error::ConfChangePending
                | Error::NotQuiescent(_)
        )
    }
}

/// Errors a [`Storage`](crate::Storage) implementation returns.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StorageError {
    /// The requested index is below the first index: compacted away.
    #[error("log compacted")]
    Compacted,
    /// The requested index is past the last index.
    #[error("log entries unavailable")]
    Unavailable,
    /// The requested snapshot is older than the one storage holds.
    #[error("snapshot out of date")]
    SnapshotOutOfDate,
    /// A snapshot is being built; ask again later.
    #[error("snapshot temporarily unavailable")]
    SnapshotTemporarilyUnavailable,
    /// Any other failure (I/O, corruption), described.
    #[error("{0}")]
    Other(String),
}

/// Shorthand for results of raftcore calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;
