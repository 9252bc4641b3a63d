//! Elections: timeouts, pre-votes, votes and role changes (thesis §3.4,
//! §4.2.3, §9.6).

use super::Raft;
use crate::quorum::VoteResult;
use crate::storage::Storage;
use crate::types::{Entry, Message, MessageType, StateRole, NO_PEER};

/// Which kind of election to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Campaign {
    /// Ask whether a majority would vote, without bumping the term.
    PreElection,
    /// A real election in a new term.
    Election,
    /// A real election ordered by the leader (TimeoutNow): voters ignore
    /// their lease.
    Transfer,
}

impl<S: Storage> Raft<S> {
    pub(super) fn reset_randomized_election_timeout(&mut self) {
        self.randomized_election_timeout =
            self.rng.range(self.election_ticks, 2 * self.election_ticks);
    }

    pub(super) fn tick_election(&mut self) {
        self.election_elapsed += 1;
        if self.election_elapsed >= self.randomized_election_timeout && self.promotable() {
            self.election_elapsed = 0;
            self.hup(false);
        }
    }

    /// The leader's tick: heartbeats, plus Check-Quorum and the transfer
    /// timeout every election timeout.
    pub(super) fn tick_heartbeat(&mut self) {
        self.heartbeat_elapsed += 1;
        self.election_elapsed += 1;
        if self.election_elapsed >= self.election_ticks {
            self.election_elapsed = 0;
            if self.check_quorum {
                if !self.prs.quorum_active(self.id) {
                    // Thesis §6.2: a leader that cannot reach a quorum steps
                    // down, so clients find the real leader.
                    self.become_follower(self.term, NO_PEER);
                    return;
                }
                let id = self.id;
                for (&pid, pr) in self.prs.progress.iter_mut() {
                    pr.recent_active = pid == id;
                }
            }
            if self.lead_transferee != NO_PEER {
                self.abort_leader_transfer();
            }
        }
        if self.heartbeat_elapsed >= self.heartbeat_ticks {
            self.heartbeat_elapsed = 0;
            self.bcast_heartbeat(false);
        }
    }

    /// Whether this peer may become leader: a voter, not restoring a
    /// snapshot.
    pub fn promotable(&self) -> bool {
        self.prs.is_voter(self.id) && self.raft_log.unstable_snapshot().is_none()
    }

    /// See [`RawNode::waive_startup_vote_wait`](crate::RawNode::waive_startup_vote_wait).
    pub(crate) fn waive_startup_vote_wait(&mut self) {
        if self.leader_id == NO_PEER && self.vote == NO_PEER {
            self.no_vote_before = 0;
        }
    }

    /// Whether this peer heard from a leader recently enough (or started
    /// recently enough, with leases on) to refuse votes.
    pub(super) fn in_lease(&self) -> bool {
        let heard = self.check_quorum
            && self.leader_id != NO_PEER
            && self.election_elapsed < self.election_ticks;
        heard || self.now < self.no_vote_before
    }

    /// A campaign the host asks for ([`RawNode::campaign`](crate::RawNode::campaign)).
    pub(crate) fn host_campaign(&mut self) {
        // Thesis §6.4.1: having acknowledged a leader, this peer promised not
        // to help elect another leader for `election_ticks`, and that leader
        // may serve lease reads on the promise. An election timeout never
        // fires inside that window, but a campaign the host asks for would,
        // with this peer's own vote counting (found by the simulator's lease
        // check, tests/sim, SIM_SEED=4374). The promise outlives a restart,
        // as for votes (`no_vote_before`; SIM_SEED=7564), unless the peer
        // never left the bootstrap term, in which no leader existed.
        // Leadership transfer is the way to move a live leader.
        let heard_leader = self.leader_id != NO_PEER && self.election_elapsed < self.election_ticks;
        let restarted = self.restarted_after_bootstrap && self.now < self.no_vote_before;
        if self.lease_ticks > 0 && (heard_leader || restarted) {
            return;
        }
        self.hup(false);
    }

    /// Starts an election if allowed (the local "campaign" request and an
    /// election timeout).
    pub(crate) fn hup(&mut self, transfer: bool) {
        if self.state == StateRole::Leader || !self.promotable() {
            return;
        }
        // A configuration change committed but not applied might remove or
        // demote this peer: campaigning under the old configuration could
        // elect a leader the new one does not recognise.
        if self.raft_log.has_unapplied_conf_change() {
            return;
        }
        let kind = match (transfer, self.pre_vote) {
            (true, _) => Campaign::Transfer,
            (false, true) => Campaign::PreElection,
            (false, false) => Campaign::Election,
        };
        self.campaign(kind);
    }

    fn campaign(&mut self, kind: Campaign) {
        let (vote_type, term) = if kind == Campaign::PreElection {
            self.become_pre_candidate();
            (MessageType::PreVote, self.term + 1)
        } else {
            self.become_candidate();
            (MessageType::Vote, self.term)
        };
        if self.poll(self.id, true) == VoteResult::Won {
            // A single voter wins at once.
            if kind == Campaign::PreElection {
                self.campaign(Campaign::Election);
            } else {
                self.become_leader();
            }
            return;
        }
        let (index, log_term) = (self.raft_log.last_index(), self.raft_log.last_term());
        let voters: Vec<u64> = self
            .prs
            .config
            .voters
            .ids()
            .into_iter()
            .filter(|&id| id != self.id)
            .collect();
        for to in voters {
            self.send(Message {
                msg_type: vote_type,
                to,
                term,
                index,
                log_term,
                leader_transfer: kind == Campaign::Transfer,
                ..Message::default()
            });
        }
    }

    fn poll(&mut self, from: u64, granted: bool) -> VoteResult {
        self.prs.record_vote(from, granted);
        self.prs.tally_votes()
    }

    fn become_pre_candidate(&mut self) {
        assert_ne!(
            self.state,
            StateRole::Leader,
            "leader cannot become pre-candidate"
        );
        // Term and vote stay: a pre-election changes no persistent state.
        self.prs.reset_votes();
        self.leader_id = NO_PEER;
        self.state = StateRole::PreCandidate;
    }

    fn become_candidate(&mut self) {
        assert_ne!(
            self.state,
            StateRole::Leader,
            "leader cannot become candidate"
        );
        self.reset(self.term + 1);
        self.vote = self.id;
        self.state = StateRole::Candidate;
    }

    pub(super) fn become_leader(&mut self) {
        assert_ne!(
            self.state,
            StateRole::Follower,
            "follower cannot become leader without an election"
        );
        self.reset(self.term);
        self.leader_id = self.id;
        self.state = StateRole::Leader;
        if let Some(pr) = self.prs.progress.get_mut(&self.id) {
            pr.become_replicate();
        }
        // Entries from earlier terms may hold a configuration change not yet
        // applied: refuse new ones until everything up to here is applied.
        self.pending_conf_index = self.raft_log.last_index();
        // Thesis §6.4: an empty entry of the new term commits the previous
        // terms' entries and lets reads confirm the commit index.
        let noop = Entry {
            term: self.term,
            index: self.raft_log.last_index() + 1,
            ..Entry::default()
        };
        self.raft_log.append(&[noop]);
        self.needs_bcast_append = true;
    }

    pub(super) fn handle_vote_request(&mut self, m: &Message) {
        let resp_type = if m.msg_type == MessageType::PreVote {
            MessageType::PreVoteResponse
        } else {
            MessageType::VoteResponse
        };
        // Thesis §3.4: one vote per term, except that a vote already cast
        // for this candidate can be repeated; a pre-vote for a future term
        // binds nothing.
        let can_vote = self.vote == m.from
            || (self.vote == NO_PEER && self.leader_id == NO_PEER)
            || (m.msg_type == MessageType::PreVote && m.term > self.term);
        if can_vote && self.raft_log.is_up_to_date(m.index, m.log_term) {
            self.send(Message {
                to: m.from,
                msg_type: resp_type,
                term: m.term,
                ..Message::default()
            });
            if m.msg_type == MessageType::Vote {
                self.election_elapsed = 0;
                self.vote = m.from;
            }
        } else {
            self.send(Message {
                to: m.from,
                msg_type: resp_type,
                term: self.term,
                reject: true,
                ..Message::default()
            });
        }
    }

    pub(super) fn step_candidate(&mut self, m: Message) {
        match m.msg_type {
            MessageType::Append => {
                self.become_follower(m.term, m.from);
                self.handle_append(&m);
            }
            MessageType::Heartbeat => {
                self.become_follower(m.term, m.from);
                self.handle_heartbeat(&m);
            }
            MessageType::Snapshot => {
                self.become_follower(m.term, m.from);
                self.handle_snapshot(m);
            }
            MessageType::PreVoteResponse | MessageType::VoteResponse => {
                self.handle_vote_response(&m)
            }
            // Proposals and reads have no leader to go to; TimeoutNow is
            // for a follower.
            _ => {}
        }
    }

    fn handle_vote_response(&mut self, m: &Message) {
        let expected = match self.state {
            StateRole::PreCandidate => MessageType::PreVoteResponse,
            _ => MessageType::VoteResponse,
        };
        if m.msg_type != expected {
            return;
        }
        match self.poll(m.from, !m.reject) {
            VoteResult::Won if self.state == StateRole::PreCandidate => {
                self.campaign(Campaign::Election)
            }
            VoteResult::Won => self.become_leader(),
            VoteResult::Lost => self.become_follower(self.term, NO_PEER),
            VoteResult::Pending => {}
        }
    }

    /// TimeoutNow from the leader: campaign at once (thesis §3.10).
    pub(super) fn handle_timeout_now(&mut self) {
        if self.promotable() {
            self.hup(true);
        }
    }
}
