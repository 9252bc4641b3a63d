use std::fmt;

use bytes::Bytes;

use super::entry::EscapedBytes;
use super::message::DisplayList;

/// The state a peer must persist before any message that depends on it
/// leaves, and reload on restart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HardState {
    /// The latest term this peer has seen.
    pub term: u64,
    /// The candidate this peer voted for in `term` ([`NO_PEER`](crate::NO_PEER) for none).
    pub vote: u64,
    /// The highest index known committed. Persisting it is an optimisation
    /// (it is recovered from the leader otherwise), so a change of `commit`
    /// alone does not need an fsync.
    pub commit: u64,
}

impl HardState {
    /// Whether nothing has been recorded yet (a brand-new peer).
    pub fn is_empty(&self) -> bool {
        *self == HardState::default()
    }
}

impl fmt::Display for HardState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "term={} vote={} commit={}",
            self.term, self.vote, self.commit
        )
    }
}

/// A group's membership, as persisted and as carried in snapshots.
///
/// Outside a joint configuration only `voters` and `learners` are set. In a
/// joint configuration (thesis §4.3) `voters_outgoing` holds the old voters
/// and decisions need a majority of both sets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfState {
    /// The voters of the incoming (or only) configuration.
    pub voters: Vec<u64>,
    /// Learners: receive the log, never vote.
    pub learners: Vec<u64>,
    /// The voters of the outgoing configuration; empty unless joint.
    pub voters_outgoing: Vec<u64>,
    /// Voters of the outgoing configuration that become learners when the
    /// joint configuration is left.
    pub learners_next: Vec<u64>,
    /// Leave the joint configuration automatically once it is applied.
    pub auto_leave: bool,
}

impl ConfState {
    /// A configuration with the given voters and no learners.
    pub fn with_voters(voters: impl IntoIterator<Item = u64>) -> ConfState {
        ConfState {
            voters: voters.into_iter().collect(),
            ..ConfState::default()
        }
    }

    /// Whether `id` appears anywhere in this configuration.
    pub fn contains(&self, id: u64) -> bool {
        self.voters.contains(&id)
            || self.learners.contains(&id)
            || self.voters_outgoing.contains(&id)
            || self.learners_next.contains(&id)
    }

    /// Whether this is a joint configuration.
    pub fn is_joint(&self) -> bool {
        !self.voters_outgoing.is_empty()
    }
}

impl fmt::Display for ConfState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "voters=({})", DisplayList(&self.voters))?;
        if !self.voters_outgoing.is_empty() {
            write!(f, "&&({})", DisplayList(&self.voters_outgoing))?;
        }
        if !self.learners.is_empty() {
            write!(f, " learners=({})", DisplayList(&self.learners))?;
        }
        if !self.learners_next.is_empty() {
            write!(f, " learners_next=({})", DisplayList(&self.learners_next))?;
        }
        if self.auto_leave {
            f.write_str(" autoleave")?;
        }
        Ok(())
    }
}

/// Where a snapshot sits in the log, and the membership at that point.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotMetadata {
    /// The membership as of `index`.
    pub conf_state: ConfState,
    /// The last log index the snapshot covers.
    pub index: u64,
    /// The term of the entry at `index`.
    pub term: u64,
}

impl fmt::Display for SnapshotMetadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} {}", self.term, self.index, self.conf_state)
    }
}

/// A point-in-time image of the state machine, replacing a log prefix.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The state machine's image, opaque to raftcore.
    pub data: Bytes,
    /// Where the snapshot sits in the log.
    pub metadata: SnapshotMetadata,
}

impl Snapshot {
    /// Whether this is the empty snapshot (index 0).
    pub fn is_empty(&self) -> bool {
        self.metadata.index == 0
    }
}

/// A peer's role.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum StateRole {
    /// Follows a leader (or waits for one).
    #[default]
    Follower,
    /// Asking for pre-votes, without having bumped its term (thesis §9.6).
    PreCandidate,
    /// Asking for votes in a new term.
    Candidate,
    /// Leads the group for its term.
    Leader,
}

/// Volatile state the host may want to observe; not persisted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SoftState {
    /// The known leader, if any.
    pub leader_id: Option<u64>,
    /// This peer's role.
    pub role: StateRole,
}

impl fmt::Display for SoftState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.leader_id {
            Some(id) => write!(f, "{:?} leader={id}", self.role),
            None => write!(f, "{:?} leader=none", self.role),
        }
    }
}

/// The answer to a read request: once the host has applied the log up to
/// `index`, it may serve the read identified by `context` from its state
/// machine, linearizably.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadState {
    /// The commit index at the time leadership was confirmed.
    pub index: u64,
    /// The context the caller gave to `read_index`.
    pub context: Bytes,
}

impl fmt::Display for ReadState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "index={} ctx={}",
            self.index,
            EscapedBytes(&self.context)
        )
    }
}
