//! The Raft state machine: one peer's view of one group.
//!
//! [`Raft`] reacts to three inputs: a tick, a message, and a local request
//! (propose, read, transfer, hibernate). Its outputs accumulate in `msgs`,
//! `read_states` and the log, and leave through a
//! [`Ready`](crate::Ready). The role-independent parts live here; each
//! operation has its own file:
//!
//! - `election.rs`: timeouts, (pre-)campaigns and votes (thesis §3.4, §9.6);
//! - `replication.rs`: the leader's appends, heartbeats and commit (§3.5);
//! - `follower.rs`: the follower's handling of appends and snapshots;
//! - `propose.rs`: proposals and configuration changes (§4.3);
//! - `read.rs`: ReadIndex and the leader lease (§6.4);
//! - `transfer.rs`: leadership transfer (§3.10);
//! - `quiesce.rs`: hibernation of idle groups.

mod election;
mod follower;
mod propose;
mod quiesce;
mod read;
mod replication;
mod transfer;

use std::collections::VecDeque;

use bytes::Bytes;

use crate::config::{Config, ReadOnlyOption};
use crate::error::{Error, Result};
use crate::log::RaftLog;
use crate::rng::Rng;
use crate::storage::Storage;
use crate::tracker::ProgressTracker;
use crate::types::{HardState, Message, MessageType, ReadState, SoftState, StateRole, NO_PEER};

pub(crate) use read::PendingRead;
pub use replication::SnapshotStatus;

/// Test-only switches that each break one Raft rule, so the simulator can
/// prove it notices. Compiled only with the `planted-bugs` feature.
#[cfg(feature = "planted-bugs")]
#[derive(Clone, Copy, Debug, Default)]
pub struct PlantedBugs {
    /// Commit by counting replicas of an entry from a previous term
    /// (violates thesis §3.6.2).
    pub commit_previous_term: bool,
    /// Let vote responses leave before the vote is persisted (a restart
    /// then may vote twice in one term).
    pub vote_before_persist: bool,
}

/// One peer of one Raft group.
pub struct Raft<S: Storage> {
    /// This peer's ID.
    pub id: u64,
    /// The current term.
    pub term: u64,
    /// The peer voted for in `term`, or [`NO_PEER`].
    pub vote: u64,
    /// The log.
    pub raft_log: RaftLog<S>,
    /// Configuration and the leader's view of every peer.
    pub prs: ProgressTracker,
    /// This peer's role.
    pub state: StateRole,
    /// The leader of `term`, or [`NO_PEER`].
    pub leader_id: u64,
    /// Whether this peer is a learner in the current configuration.
    pub is_learner: bool,

    pub(crate) msgs: Vec<Message>,
    pub(crate) read_states: Vec<ReadState>,

    /// Ticks since start; the leader's clock for rounds and leases.
    now: u64,
    /// Ticks since the last election timeout reset (followers and
    /// candidates) or Check-Quorum round (leaders).
    election_elapsed: usize,
    heartbeat_elapsed: usize,
    randomized_election_timeout: usize,
    election_ticks: usize,
    heartbeat_ticks: usize,
    /// With leases on, no vote is granted before this tick (see
    /// [`Config::lease_ticks`]).
    no_vote_before: u64,
    /// Restarted from a term after the bootstrap term (1), so this peer may
    /// have acknowledged a leader's lease just before it went down.
    restarted_after_bootstrap: bool,

    /// Leader: the peer leadership is moving to, or [`NO_PEER`].
    pub lead_transferee: u64,
    /// Leader: index of the last configuration change appended; another may
    /// be proposed only once it is applied.
    pub pending_conf_index: u64,
    uncommitted_size: u64,
    /// Leader: the latest heartbeat round.
    round: u64,
    /// Leader: `(first round, tick)` for each tick that started a round,
    /// within the lease window.
    round_ticks: VecDeque<(u64, u64)>,
    /// Leader: rounds up to here do not count for the lease.
    lease_min_round: u64,
    pending_reads: VecDeque<PendingRead>,
    /// Leader: reads that wait for the first commit of this term.
    reads_awaiting_commit: Vec<(u64, Bytes)>,
    /// Leader: send appends (heartbeats) to everyone before the next Ready,
    /// batching all proposals (reads) that arrived since the last one.
    needs_bcast_append: bool,
    needs_bcast_heartbeat: bool,
    hibernating: bool,

    check_quorum: bool,
    pre_vote: bool,
    read_only_option: ReadOnlyOption,
    lease_ticks: usize,
    max_msg_size: u64,
    max_uncommitted_size: u64,
    disable_proposal_forwarding: bool,
    rng: Rng,

    /// Planted bugs (tests only).
    #[cfg(feature = "planted-bugs")]
    pub planted: PlantedBugs,
}

impl<S: Storage> Raft<S> {
    /// Creates a peer from `config`, restarting from what `store` holds.
    pub fn new(config: &Config, store: S) -> Result<Raft<S>> {
        config.validate()?;
        let state = store.initial_state()?;
        let raft_log = RaftLog::new(store, config.max_committed_size_per_ready)?;
        let mut r = Raft {
            id: config.id,
            term: 0,
            vote: NO_PEER,
            raft_log,
            prs: ProgressTracker::new(config.max_inflight_msgs),
            state: StateRole::Follower,
            leader_id: NO_PEER,
            is_learner: false,
            msgs: Vec::new(),
            read_states: Vec::new(),
            now: 0,
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            randomized_election_timeout: config.election_ticks,
            election_ticks: config.election_ticks,
            heartbeat_ticks: config.heartbeat_ticks,
            no_vote_before: if config.lease_ticks > 0 {
                config.election_ticks as u64
            } else {
                0
            },
            restarted_after_bootstrap: state.hard_state.term > 1,
            lead_transferee: NO_PEER,
            pending_conf_index: 0,
            uncommitted_size: 0,
            round: 0,
            round_ticks: VecDeque::new(),
            lease_min_round: 0,
            pending_reads: VecDeque::new(),
            reads_awaiting_commit: Vec::new(),
            needs_bcast_append: false,
            needs_bcast_heartbeat: false,
            hibernating: false,
            check_quorum: config.check_quorum,
            pre_vote: config.pre_vote,
            read_only_option: config.read_only_option,
            lease_ticks: config.lease_ticks,
            max_msg_size: config.max_size_per_msg,
            max_uncommitted_size: config.max_uncommitted_size,
            disable_proposal_forwarding: config.disable_proposal_forwarding,
            rng: Rng::new(config.seed),
            #[cfg(feature = "planted-bugs")]
            planted: PlantedBugs::default(),
        };
        let last = r.raft_log.last_index();
        r.prs.restore(&state.conf_state, last + 1);
        r.is_learner = r.prs.progress.get(&r.id).is_some_and(|p| p.is_learner);
        if !state.hard_state.is_empty() {
            r.load_hard_state(state.hard_state)?;
        }
        if config.applied > 0 {
            if config.applied > r.raft_log.committed {
                return Err(Error::Config(format!(
                    "applied index {} is beyond the commit index {}",
                    config.applied, r.raft_log.committed
                )));
            }
            r.raft_log.applying_to(config.applied);
            r.raft_log.applied_to(config.applied);
        }
        r.become_follower(r.term, NO_PEER);
        Ok(r)
    }

    fn load_hard_state(&mut self, hs: HardState) -> Result<()> {
        let (committed, last) = (self.raft_log.committed, self.raft_log.last_index());
        if hs.commit < committed || hs.commit > last {
            return Err(Error::Config(format!(
                "persisted commit index {} is outside the log [{committed}, {last}]",
                hs.commit
            )));
        }
        self.raft_log.committed = hs.commit;
        self.term = hs.term;
        self.vote = hs.vote;
        Ok(())
    }

    /// The state to persist.
    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.raft_log.committed,
        }
    }

    /// The volatile state.
    pub fn soft_state(&self) -> SoftState {
        SoftState {
            leader_id: (self.leader_id != NO_PEER).then_some(self.leader_id),
            role: self.state,
        }
    }

    /// Whether this peer hibernates (its timers are stopped).
    pub fn is_hibernating(&self) -> bool {
        self.hibernating
    }

    /// Queues a message; fills in `from`, and `term` unless the message is
    /// a forwarded request (term 0) or already carries one.
    fn send(&mut self, mut m: Message) {
        m.from = self.id;
        if m.term == 0 && !matches!(m.msg_type, MessageType::Propose | MessageType::ReadIndex) {
            m.term = self.term;
        }
        self.msgs.push(m);
    }

    /// Advances time by one tick.
    pub fn tick(&mut self) {
        if self.hibernating {
            return;
        }
        self.now += 1;
        match self.state {
            StateRole::Leader => self.tick_heartbeat(),
            _ => self.tick_election(),
        }
    }

    /// Resets the volatile state for `term`.
    fn reset(&mut self, term: u64) {
        if self.term != term {
            self.term = term;
            self.vote = NO_PEER;
        }
        self.leader_id = NO_PEER;
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        self.reset_randomized_election_timeout();
        self.lead_transferee = NO_PEER;
        self.prs.reset_votes();
        self.pending_conf_index = 0;
        self.uncommitted_size = 0;
        self.pending_reads.clear();
        self.reads_awaiting_commit.clear();
        self.needs_bcast_append = false;
        self.needs_bcast_heartbeat = false;
        self.round_ticks.clear();
        self.lease_min_round = self.round;
        let (next, persisted, id) = (
            self.raft_log.last_index() + 1,
            self.raft_log.persisted,
            self.id,
        );
        for (&pid, pr) in self.prs.progress.iter_mut() {
            pr.reset(next);
            if pid == id {
                pr.matched = persisted;
                pr.recent_active = true;
            }
        }
    }

    /// Becomes a follower in `term`, of `leader` (or none).
    pub(crate) fn become_follower(&mut self, term: u64, leader: u64) {
        self.reset(term);
        self.leader_id = leader;
        self.state = StateRole::Follower;
    }

    /// Processes a message from a peer.
    pub fn step(&mut self, m: Message) -> Result<()> {
        validate(self.id, &m)?;
        if self.hibernating && wakes(&m) {
            self.wake();
        }
        if m.term > self.term {
            if m.msg_type.is_vote_request() && !m.leader_transfer && self.in_lease() {
                // Thesis §4.2.3: a peer that heard from a live leader
                // recently ignores vote requests, so a partitioned peer
                // cannot depose it on rejoining.
                return Ok(());
            }
            match m.msg_type {
                // Pre-votes change no state; a granted pre-vote response
                // carries the term we would campaign in.
                MessageType::PreVote => {}
                MessageType::PreVoteResponse if !m.reject => {}
                t if t.is_from_leader() => self.become_follower(m.term, m.from),
                _ => self.become_follower(m.term, NO_PEER),
            }
        } else if m.term != 0 && m.term < self.term {
            self.handle_stale_term(&m);
            return Ok(());
        }
        match m.msg_type {
            MessageType::Vote | MessageType::PreVote => {
                self.handle_vote_request(&m);
                Ok(())
            }
            _ => match self.state {
                StateRole::Leader => self.step_leader(m),
                StateRole::Candidate | StateRole::PreCandidate => {
                    self.step_candidate(m);
                    Ok(())
                }
                StateRole::Follower => {
                    self.step_follower(m);
                    Ok(())
                }
            },
        }
    }

    /// A message from an older term. Answering a stale leader's append or
    /// heartbeat with our term makes it step down; without this, a peer
    /// with a higher term that others ignore (because of their lease) would
    /// keep the group leaderless after a partition heals. Without Pre-Vote
    /// and Check-Quorum too (thesis Figure 3.1: the reply carries
    /// currentTerm): a peer whose term ran ahead while its membership went
    /// stale sends its vote requests only to removed peers, so nothing else
    /// would ever bring the group's term up to it and it never caught up
    /// again (found by the simulator's liveness check, tests/sim,
    /// SIM_SEED=148).
    fn handle_stale_term(&mut self, m: &Message) {
        if matches!(m.msg_type, MessageType::Append | MessageType::Heartbeat) {
            self.send(Message {
                to: m.from,
                msg_type: MessageType::AppendResponse,
                ..Message::default()
            });
        } else if m.msg_type.is_vote_request() {
            // Refuse with our term (thesis Figure 3.1), so that the candidate
            // catches up. Without this, a peer whose term ran ahead but whose
            // log is behind, and whose stale membership sends its own vote
            // requests elsewhere, held the vote a joint quorum needed without
            // ever telling the candidates its term (found by the simulator's
            // liveness check, tests/sim, SIM_SEED=51481).
            let msg_type = if m.msg_type == MessageType::PreVote {
                MessageType::PreVoteResponse
            } else {
                MessageType::VoteResponse
            };
            self.send(Message {
                to: m.from,
                msg_type,
                term: self.term,
                reject: true,
                ..Message::default()
            });
        }
    }

    fn step_leader(&mut self, m: Message) -> Result<()> {
        match m.msg_type {
            MessageType::Propose => {
                // A forwarded proposal: refusals are not reported back; the
                // follower's host learns the outcome by applying the log.
                let _ = self.append_proposals(m.entries);
            }
            MessageType::ReadIndex => self.handle_read_request(m.from, m.context),
            MessageType::AppendResponse => self.handle_append_response(&m)?,
            MessageType::HeartbeatResponse => self.handle_heartbeat_response(&m)?,
            _ => {}
        }
        Ok(())
    }

    fn step_follower(&mut self, m: Message) {
        match m.msg_type {
            MessageType::Propose | MessageType::ReadIndex => self.forward_to_leader(m),
            MessageType::Append => {
                self.heard_from_leader(m.from);
                self.handle_append(&m);
            }
            MessageType::Heartbeat => {
                self.heard_from_leader(m.from);
                self.handle_heartbeat(&m);
            }
            MessageType::Snapshot => {
                self.heard_from_leader(m.from);
                self.handle_snapshot(m);
            }
            MessageType::TimeoutNow => self.handle_timeout_now(),
            MessageType::ReadIndexResponse => {
                self.read_states.push(ReadState {
                    index: m.index,
                    context: m.context,
                });
            }
            _ => {}
        }
    }

    fn heard_from_leader(&mut self, leader: u64) {
        self.election_elapsed = 0;
        self.leader_id = leader;
    }

    /// Sends a follower's request on to the leader, or drops it.
    fn forward_to_leader(&mut self, mut m: Message) {
        if self.leader_id == NO_PEER || self.disable_proposal_forwarding {
            return;
        }
        m.to = self.leader_id;
        m.term = 0;
        self.send(m);
    }

    /// The error for a request only the leader can serve.
    fn not_leader(&self) -> Error {
        Error::NotLeader {
            leader_id: (self.leader_id != NO_PEER).then_some(self.leader_id),
        }
    }
}

/// Whether a message wakes a hibernating peer: anything but the leader's
/// hibernate heartbeat and the acknowledgements of it (which would
/// otherwise wake the leader right after it hibernates).
fn wakes(m: &Message) -> bool {
    !matches!(
        (m.msg_type, m.hibernate),
        (MessageType::Heartbeat, true) | (MessageType::HeartbeatResponse, _)
    )
}

/// Rejects messages that are malformed or addressed to another peer, so
/// that nothing from the network can break the log's invariants.
fn validate(id: u64, m: &Message) -> Result<()> {
    if m.to != id {
        return Err(Error::InvalidMessage("addressed to another peer"));
    }
    if m.from == NO_PEER {
        return Err(Error::InvalidMessage("sender id 0"));
    }
    if m.term == 0 && !matches!(m.msg_type, MessageType::Propose | MessageType::ReadIndex) {
        return Err(Error::InvalidMessage("term 0 on a peer message"));
    }
    if m.msg_type == MessageType::Append {
        let mut prev_term = m.log_term;
        for (i, e) in m.entries.iter().enumerate() {
            if e.index != m.index + 1 + i as u64 {
                return Err(Error::InvalidMessage("append entries are not contiguous"));
            }
            if e.term < prev_term || e.term > m.term {
                return Err(Error::InvalidMessage("append entry terms out of order"));
            }
            prev_term = e.term;
        }
    }
    if m.msg_type == MessageType::Snapshot && m.snapshot.as_ref().is_none_or(|s| s.is_empty()) {
        return Err(Error::InvalidMessage("snapshot message without a snapshot"));
    }
    Ok(())
}
