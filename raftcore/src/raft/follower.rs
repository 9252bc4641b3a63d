//! The follower's side of replication: accepting appends, heartbeats and
//! snapshots from the leader.

use super::Raft;
use crate::storage::Storage;
use crate::types::{Message, MessageType, Snapshot, StateRole, NO_PEER};

impl<S: Storage> Raft<S> {
    fn respond_append(&mut self, to: u64, index: u64) {
        let commit = self.raft_log.committed;
        self.send(Message {
            msg_type: MessageType::AppendResponse,
            to,
            index,
            commit,
            ..Message::default()
        });
    }

    pub(super) fn handle_append(&mut self, m: &Message) {
        let committed = self.raft_log.committed;
        if m.index < committed {
            // Everything up to our commit index already matches the leader.
            self.respond_append(m.from, committed);
            return;
        }
        if let Some(last_new) = self
            .raft_log
            .maybe_append(m.index, m.log_term, m.commit, &m.entries)
        {
            self.respond_append(m.from, last_new);
            return;
        }
        // Reject, with a hint: the largest index at or below the probe whose
        // term is not above the leader's term there. The leader can skip
        // everything after it (thesis §5.3).
        let probe = m.index.min(self.raft_log.last_index());
        let (hint_index, hint_term) = self.raft_log.find_conflict_by_term(probe, m.log_term);
        let commit = self.raft_log.committed;
        self.send(Message {
            msg_type: MessageType::AppendResponse,
            to: m.from,
            index: m.index,
            reject: true,
            reject_hint: hint_index,
            log_term: hint_term,
            commit,
            ..Message::default()
        });
    }

    pub(super) fn handle_heartbeat(&mut self, m: &Message) {
        // The leader bounds the commit index by what it knows we hold.
        let commit = m.commit.min(self.raft_log.last_index());
        self.raft_log.commit_to(commit);
        if m.hibernate && self.raft_log.committed == self.raft_log.last_index() {
            // The leader is idle and we hold all it has: stop our timers
            // too, until anything else arrives.
            self.hibernating = true;
        }
        let commit = self.raft_log.committed;
        self.send(Message {
            msg_type: MessageType::HeartbeatResponse,
            to: m.from,
            stamp: m.stamp,
            commit,
            ..Message::default()
        });
    }

    pub(super) fn handle_snapshot(&mut self, mut m: Message) {
        let snapshot = *m
            .snapshot
            .take()
            .expect("validated: snapshot messages carry one");
        let index = if self.restore(snapshot) {
            self.raft_log.last_index()
        } else {
            self.raft_log.committed
        };
        self.respond_append(m.from, index);
    }

    /// Replaces the log with `snapshot` if it is news. Returns whether it
    /// did; otherwise the snapshot is older than the commit index, or the
    /// log already holds its last entry (and the commit index moves up).
    fn restore(&mut self, snapshot: Snapshot) -> bool {
        let meta = &snapshot.metadata;
        if meta.index <= self.raft_log.committed {
            return false;
        }
        if self.state != StateRole::Follower {
            // Only a follower receives snapshots; be safe and step down.
            self.become_follower(self.term + 1, NO_PEER);
            return false;
        }
        if !meta.conf_state.contains(self.id) && self.prs.progress.contains_key(&self.id) {
            // A member offered a snapshot of a configuration without it:
            // ignore it rather than drop out of the group by accident. A
            // peer that is not a member yet (added later, starting empty)
            // must install it: the snapshot may predate the change that adds
            // the peer (the bootstrap snapshot always does), and the log
            // after it brings that change. Refusing it made the leader
            // resend the same snapshot forever.
            return false;
        }
        if self.raft_log.match_term(meta.index, meta.term) {
            self.raft_log.commit_to(meta.index);
            return false;
        }
        if self.raft_log.applied < self.raft_log.applying {
            // Committed entries handed out are not all applied yet. The host
            // would apply a membership change among them on top of the
            // snapshot's configuration, and the membership would no longer
            // follow the log (found by the simulator's configuration
            // agreement check, tests/sim, SIM_SEED=28). Let the host catch
            // up first; the leader sends the snapshot again.
            return false;
        }
        let conf_state = meta.conf_state.clone();
        let next = meta.index + 1;
        self.raft_log.restore(snapshot);
        self.prs.restore(&conf_state, next);
        self.is_learner = self
            .prs
            .progress
            .get(&self.id)
            .is_some_and(|p| p.is_learner);
        true
    }
}
