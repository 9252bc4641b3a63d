//! Linearizable reads without writing to the log (thesis §6.4): ReadIndex,
//! confirmed by a heartbeat round, and the leader lease.
//!
//! Heartbeats are numbered in rounds. A read that arrives at the leader is
//! tagged with the next round; once a quorum has acknowledged a round at
//! least that high, the leader was still leader after the read arrived, so
//! its commit index at arrival bounds every write acknowledged before the
//! read. The lease reuses the rounds: it runs `lease_ticks` from the tick at
//! which the quorum-acknowledged round was sent.

use bytes::Bytes;

use super::Raft;
use crate::config::ReadOnlyOption;
use crate::error::Result;
use crate::storage::Storage;
use crate::types::{Message, MessageType, ReadState, StateRole, NO_PEER};

/// A read waiting for its heartbeat round to be acknowledged.
#[derive(Clone, Debug)]
pub(crate) struct PendingRead {
    /// Who asked: this peer, or a follower that forwarded it.
    from: u64,
    context: Bytes,
    /// The commit index when the read arrived.
    index: u64,
    /// The round whose acknowledgement confirms it.
    round: u64,
}

impl<S: Storage> Raft<S> {
    /// A local read request.
    pub(crate) fn read_index(&mut self, context: Bytes) -> Result<()> {
        match self.state {
            StateRole::Leader => {
                self.handle_read_request(self.id, context);
                Ok(())
            }
            StateRole::Follower
                if self.leader_id != NO_PEER && !self.disable_proposal_forwarding =>
            {
                let to = self.leader_id;
                self.send(Message {
                    msg_type: MessageType::ReadIndex,
                    to,
                    context,
                    ..Message::default()
                });
                Ok(())
            }
            _ => Err(self.not_leader()),
        }
    }

    /// Whether an entry of the current term is committed: only then is the
    /// commit index known to cover every entry committed by earlier leaders.
    pub fn committed_entry_in_current_term(&self) -> bool {
        self.raft_log.term(self.raft_log.committed) == Ok(self.term)
    }

    pub(super) fn handle_read_request(&mut self, from: u64, context: Bytes) {
        if !self.committed_entry_in_current_term() {
            self.reads_awaiting_commit.push((from, context));
            return;
        }
        let index = self.raft_log.committed;
        let lease_read = self.read_only_option == ReadOnlyOption::LeaseBased && self.lease_valid();
        if self.prs.is_singleton() || lease_read {
            self.answer_read(from, index, context);
            return;
        }
        let round = self.round + 1;
        self.pending_reads.push_back(PendingRead {
            from,
            context,
            index,
            round,
        });
        self.needs_bcast_heartbeat = true;
    }

    fn answer_read(&mut self, from: u64, index: u64, context: Bytes) {
        if from == self.id {
            self.read_states.push(ReadState { index, context });
        } else {
            self.send(Message {
                msg_type: MessageType::ReadIndexResponse,
                to: from,
                index,
                context,
                ..Message::default()
            });
        }
    }

    /// Answers every pending read whose round a quorum has acknowledged.
    pub(super) fn release_confirmed_reads(&mut self) {
        if self.pending_reads.is_empty() {
            return;
        }
        let acked = self.prs.quorum_acked_round(self.id, self.round);
        while self.pending_reads.front().is_some_and(|r| r.round <= acked) {
            let r = self.pending_reads.pop_front().expect("checked");
            self.answer_read(r.from, r.index, r.context);
        }
    }

    /// Whether this leader holds a lease: a quorum acknowledged a heartbeat
    /// round sent less than `lease_ticks` ago, after the last event that
    /// voided the lease (becoming leader, waking from hibernation). A
    /// TimeoutNow voids it for the rest of the term.
    ///
    /// Safe because each acknowledging follower reset its election timer
    /// after the round was sent, and then refuses votes for `election_ticks`
    /// of its own ticks (Check-Quorum), which outlast `lease_ticks` of ours
    /// under the clock assumption in [`Config::lease_ticks`](crate::Config::lease_ticks).
    pub fn lease_valid(&self) -> bool {
        if self.state != StateRole::Leader
            || self.lease_ticks == 0
            || self.lead_transferee != NO_PEER
            || self.hibernating
            || !self.committed_entry_in_current_term()
        {
            return false;
        }
        if self.prs.is_singleton() {
            return true;
        }
        let acked = self.prs.quorum_acked_round(self.id, self.round);
        if acked <= self.lease_min_round {
            return false;
        }
        self.tick_of_round(acked)
            .is_some_and(|sent| self.now < sent + self.lease_ticks as u64)
    }

    /// Notes the tick at which the current round starts, dropping rounds too
    /// old to give a lease.
    pub(super) fn record_round_tick(&mut self) {
        if self.lease_ticks == 0 {
            return;
        }
        if self
            .round_ticks
            .back()
            .is_none_or(|&(_, tick)| tick != self.now)
        {
            self.round_ticks.push_back((self.round, self.now));
        }
        let horizon = self.lease_ticks as u64;
        while self.round_ticks.len() > 1
            && self
                .round_ticks
                .front()
                .is_some_and(|&(_, t)| t + horizon <= self.now)
        {
            self.round_ticks.pop_front();
        }
    }

    /// The tick at which `round` was sent, if still within the window.
    fn tick_of_round(&self, round: u64) -> Option<u64> {
        let i = self
            .round_ticks
            .partition_point(|&(first, _)| first <= round);
        (i > 0).then(|| self.round_ticks[i - 1].1)
    }
}
