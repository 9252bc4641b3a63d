//! A group member's configuration.

use crate::error::{Error, Result};
use crate::NO_PEER;

/// How the leader confirms it still leads before answering a read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadOnlyOption {
    /// ReadIndex (thesis §6.4): one heartbeat round acknowledged by a quorum
    /// after the request arrived. Assumes nothing about clocks.
    #[default]
    Safe,
    /// Lease read (thesis §6.4.1): answer at once while the leader holds a
    /// lease, falling back to `Safe` otherwise. Assumes clocks advance at
    /// nearly the same rate everywhere (see [`Config::lease_ticks`]).
    LeaseBased,
}

/// Configuration of one peer of one group.
///
/// Times are in ticks: the host calls [`RawNode::tick`](crate::RawNode::tick)
/// at a fixed interval, and these values count those calls.
#[derive(Clone, Debug)]
pub struct Config {
    /// This peer's ID; nonzero.
    pub id: u64,
    /// A follower that hears nothing from a leader for a random number of
    /// ticks in `[election_ticks, 2 * election_ticks)` campaigns. A leader
    /// with Check-Quorum steps down after `election_ticks` without hearing
    /// from a quorum.
    pub election_ticks: usize,
    /// The leader sends heartbeats every `heartbeat_ticks`; must be below
    /// `election_ticks` (a tenth of it is typical).
    pub heartbeat_ticks: usize,
    /// The index the host's state machine has applied, when restarting.
    /// Committed entries after it are handed out again.
    pub applied: u64,
    /// Upper bound on the entry bytes in one append message (at least one
    /// entry is always sent).
    pub max_size_per_msg: u64,
    /// Upper bound on append messages in flight to one follower while
    /// replicating (the pipeline window).
    pub max_inflight_msgs: usize,
    /// Upper bound on the payload bytes of appended but not yet committed
    /// entries on the leader; proposals past it fail with
    /// [`Error::UncommittedLimit`]. 0 means no limit.
    pub max_uncommitted_size: u64,
    /// Upper bound on the bytes of committed entries in one `Ready` (at
    /// least one entry is always handed out).
    pub max_committed_size_per_ready: u64,
    /// Pre-Vote (thesis §9.6): campaign only after a pre-election shows a
    /// majority would vote, so a rejoining peer does not disrupt the group.
    pub pre_vote: bool,
    /// Check-Quorum: a leader that has not heard from a quorum for
    /// `election_ticks` steps down, and a follower that heard from its leader
    /// within `election_ticks` ignores vote requests.
    pub check_quorum: bool,
    /// How the leader confirms leadership for reads.
    pub read_only_option: ReadOnlyOption,
    /// Length of the leader lease in ticks, counted from when a heartbeat
    /// round that a quorum acknowledged was sent. Must be below
    /// `election_ticks`, and needs `check_quorum`. 0 disables leases.
    ///
    /// Clock assumption: a lease is safe while no peer's tick rate runs
    /// slower than the leader's by more than the factor
    /// `election_ticks / lease_ticks`, and while the host delivers ticks for
    /// all elapsed time (after a pause, deliver the missed ticks before
    /// serving lease reads). With leases on, a freshly started peer grants
    /// no vote for `election_ticks`, so that a lease survives follower
    /// restarts.
    pub lease_ticks: usize,
    /// Refuse proposals and reads on followers instead of forwarding them
    /// to the leader.
    pub disable_proposal_forwarding: bool,
    /// Seed for the election-timeout jitter: the only randomness here.
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            id: NO_PEER,
            election_ticks: 10,
            heartbeat_ticks: 2,
            applied: 0,
            max_size_per_msg: 1 << 20,
            max_inflight_msgs: 256,
            max_uncommitted_size: 0,
            max_committed_size_per_ready: 16 << 20,
            pre_vote: true,
            check_quorum: true,
            read_only_option: ReadOnlyOption::Safe,
            lease_ticks: 0,
            disable_proposal_forwarding: false,
            seed: 0,
        }
    }
}

impl Config {
    /// The default configuration for peer `id`, seeded with `id`.
    pub fn new(id: u64) -> Config {
        Config {
            id,
            seed: id,
            ..Config::default()
        }
    }

    /// Checks the configuration for values that cannot work.
    pub fn validate(&self) -> Result<()> {
        let bad = |why: &str| Err(Error::Config(why.to_string()));
        if self.id == NO_PEER {
            return bad("id must be nonzero");
        }
        if self.heartbeat_ticks == 0 {
            return bad("heartbeat_ticks must be positive");
        }
        if self.election_ticks <= self.heartbeat_ticks {
            return bad("election_ticks must exceed heartbeat_ticks");
        }
        if self.max_inflight_msgs == 0 {
            return bad("max_inflight_msgs must be positive");
        }
        if self.lease_ticks > 0 && !self.check_quorum {
            return bad("lease_ticks needs check_quorum");
        }
        if self.lease_ticks >= self.election_ticks {
            return bad("lease_ticks must be below election_ticks");
        }
        if self.read_only_option == ReadOnlyOption::LeaseBased && self.lease_ticks == 0 {
            return bad("LeaseBased reads need lease_ticks > 0");
        }
        Ok(())
    }
}
