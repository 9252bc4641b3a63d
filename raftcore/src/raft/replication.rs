//! The leader's side of log replication (thesis §3.5): appends, snapshots,
//! heartbeats, acknowledgements and the commit index.

use super::Raft;
use crate::error::{Error, Result, StorageError};
use crate::storage::Storage;
use crate::tracker::{Progress, ProgressState};
use crate::types::{Message, MessageType, StateRole};

/// Whether a snapshot sent to a follower was installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotStatus {
    /// The follower received and installed the snapshot.
    Finish,
    /// Sending or installing failed; the leader will try again.
    Failure,
}

impl<S: Storage> Raft<S> {
    /// Sends any deferred broadcasts: all proposals (reads) that arrived
    /// since the last `Ready` leave as one append (heartbeat) per follower.
    pub(crate) fn flush_broadcasts(&mut self) {
        if self.state != StateRole::Leader {
            self.needs_bcast_append = false;
            self.needs_bcast_heartbeat = false;
            return;
        }
        if std::mem::take(&mut self.needs_bcast_append) {
            self.bcast_append();
        }
        if std::mem::take(&mut self.needs_bcast_heartbeat) {
            self.bcast_heartbeat(false);
        }
    }

    /// Whether deferred broadcasts are waiting.
    pub(crate) fn has_deferred_broadcasts(&self) -> bool {
        self.state == StateRole::Leader && (self.needs_bcast_append || self.needs_bcast_heartbeat)
    }

    fn other_peers(&self) -> Vec<u64> {
        self.prs
            .progress
            .keys()
            .copied()
            .filter(|&id| id != self.id)
            .collect()
    }

    /// Sends new entries (or at least the commit index) to every follower.
    pub(super) fn bcast_append(&mut self) {
        for to in self.other_peers() {
            self.maybe_send_append(to, true);
        }
    }

    /// Sends an append to `to` if its progress allows; with
    /// `send_if_empty`, even one without entries (to carry the commit index
    /// or probe). Returns whether a message was sent.
    pub(super) fn maybe_send_append(&mut self, to: u64, send_if_empty: bool) -> bool {
        let Some(pr) = self.prs.progress.get(&to) else {
            return false;
        };
        if pr.is_paused() {
            return false;
        }
        let next = pr.next_idx;
        let prev_term = self.raft_log.term(next - 1);
        let entries = self.raft_log.entries(next, self.max_msg_size);
        let (log_term, entries) = match (prev_term, entries) {
            (Ok(t), Ok(e)) => (t, e),
            (Err(StorageError::Compacted), _) | (_, Err(StorageError::Compacted)) => {
                return self.maybe_send_snapshot(to)
            }
            // Storage cannot serve it now; the next heartbeat response retries.
            _ => return false,
        };
        if entries.is_empty() && !send_if_empty {
            return false;
        }
        let last = entries.last().map(|e| e.index);
        let pr = self.prs.progress.get_mut(&to).expect("checked above");
        match (pr.state, last) {
            (ProgressState::Replicate, Some(last)) => pr.sent_entries(last),
            (ProgressState::Probe, _) => pr.probe_sent = true,
            _ => {}
        }
        let commit = self.raft_log.committed;
        self.send(Message {
            msg_type: MessageType::Append,
            to,
            index: next - 1,
            log_term,
            entries,
            commit,
            ..Message::default()
        });
        true
    }

    /// Sends a snapshot to a follower whose next entry was compacted away.
    fn maybe_send_snapshot(&mut self, to: u64) -> bool {
        if !self.prs.progress.get(&to).is_some_and(|p| p.recent_active) {
            // Do not build snapshots for a peer that may be down.
            return false;
        }
        let request_index = self.raft_log.first_index() - 1;
        let snapshot = match self.raft_log.snapshot(request_index, to) {
            Ok(s) if !s.is_empty() => s,
            // Being built, or unavailable: retried on a later heartbeat.
            _ => return false,
        };
        let pr = self.prs.progress.get_mut(&to).expect("checked above");
        pr.become_snapshot(snapshot.metadata.index);
        self.send(Message {
            msg_type: MessageType::Snapshot,
            to,
            snapshot: Some(Box::new(snapshot)),
            ..Message::default()
        });
        true
    }

    /// Sends a heartbeat of a new round to every follower.
    pub(super) fn bcast_heartbeat(&mut self, hibernate: bool) {
        self.round += 1;
        self.record_round_tick();
        let committed = self.raft_log.committed;
        let last = self.raft_log.last_index();
        for to in self.other_peers() {
            let matched = self.prs.progress[&to].matched;
            self.send(Message {
                msg_type: MessageType::Heartbeat,
                to,
                // Never claim more is committed than the follower is known to
                // hold: its log past `matched` may still diverge.
                commit: matched.min(committed),
                stamp: self.round,
                // Only a follower holding the whole log may sleep: one left
                // behind (hibernating despite it) must keep its election
                // timer, so that it wakes the group and catches up — the
                // capped commit would make it look up to date.
                hibernate: hibernate && matched == last,
                ..Message::default()
            });
        }
    }

    /// Advances the commit index to what a quorum has matched, if that
    /// entry is of this term. Returns whether it advanced.
    pub(super) fn maybe_commit(&mut self) -> bool {
        let index = self.prs.committed_index().min(self.raft_log.last_index());
        #[cfg(feature = "planted-bugs")]
        let check_term = !self.planted.commit_previous_term;
        #[cfg(not(feature = "planted-bugs"))]
        let check_term = true;
        if !self.raft_log.maybe_commit(index, self.term, check_term) {
            return false;
        }
        // Followers learn the new commit index with the next broadcast.
        self.needs_bcast_append = true;
        if !self.reads_awaiting_commit.is_empty() && self.committed_entry_in_current_term() {
            for (from, ctx) in std::mem::take(&mut self.reads_awaiting_commit) {
                self.handle_read_request(from, ctx);
            }
        }
        true
    }

    /// The progress of the peer a response came from, updated with what
    /// any response tells: the peer is alive, and its commit index.
    fn responder_progress(&mut self, m: &Message) -> Result<&mut Progress> {
        let pr = self
            .prs
            .progress
            .get_mut(&m.from)
            .ok_or(Error::UnknownPeer(m.from))?;
        pr.recent_active = true;
        pr.commit = pr.commit.max(m.commit);
        Ok(pr)
    }

    pub(super) fn handle_append_response(&mut self, m: &Message) -> Result<()> {
        let last_index = self.raft_log.last_index();
        let pr = self.responder_progress(m)?;
        if m.reject {
            // Fast backtracking (thesis §5.3 end): skip every entry whose
            // term shows it cannot match the follower's hint.
            let hint = if m.log_term > 0 {
                self.raft_log
                    .find_conflict_by_term(m.reject_hint, m.log_term)
                    .0
            } else {
                m.reject_hint
            };
            let pr = self.prs.progress.get_mut(&m.from).expect("checked above");
            if pr.maybe_decr_to(m.index, hint) {
                if pr.state == ProgressState::Replicate {
                    pr.become_probe();
                }
                self.maybe_send_append(m.from, true);
            }
            return Ok(());
        }
        let was_paused = pr.is_paused();
        if !(pr.maybe_update(m.index)
            || (pr.matched == m.index && pr.state == ProgressState::Probe))
        {
            return Ok(());
        }
        match pr.state {
            ProgressState::Probe => pr.become_replicate(),
            ProgressState::Snapshot if pr.matched >= pr.pending_snapshot => {
                pr.become_probe();
                pr.become_replicate();
            }
            ProgressState::Replicate => pr.ins.free_to(m.index),
            ProgressState::Snapshot => {}
        }
        let matched = pr.matched;
        if !self.maybe_commit() && was_paused {
            self.maybe_send_append(m.from, false);
        }
        // Fill the pipeline while the window allows.
        while self.maybe_send_append(m.from, false) {}
        if m.from == self.lead_transferee && matched == last_index {
            self.send_timeout_now(m.from);
        }
        Ok(())
    }

    pub(super) fn handle_heartbeat_response(&mut self, m: &Message) -> Result<()> {
        let last_index = self.raft_log.last_index();
        let pr = self.responder_progress(m)?;
        pr.probe_sent = false;
        pr.acked_round = pr.acked_round.max(m.stamp);
        if pr.state == ProgressState::Replicate && pr.ins.full() {
            // Appends may have been lost: make room for one, whose gap the
            // follower will reject, which restarts probing from its match.
            pr.ins.free_first_one();
        }
        if pr.matched < last_index {
            self.maybe_send_append(m.from, true);
        }
        self.release_confirmed_reads();
        Ok(())
    }

    /// After the host persisted entries: the leader's own log now counts
    /// toward the commit quorum.
    pub(crate) fn on_persisted(&mut self) {
        if self.state != StateRole::Leader {
            return;
        }
        let persisted = self.raft_log.persisted;
        let Some(pr) = self.prs.progress.get_mut(&self.id) else {
            return;
        };
        if pr.maybe_update(persisted) {
            self.maybe_commit();
        }
    }

    /// The transport could not reach `to`: stop pipelining to it.
    pub(crate) fn report_unreachable(&mut self, to: u64) {
        if let Some(pr) = self.prs.progress.get_mut(&to) {
            if pr.state == ProgressState::Replicate {
                pr.become_probe();
            }
        }
    }

    /// The outcome of sending a snapshot to `to`.
    pub(crate) fn report_snapshot(&mut self, to: u64, status: SnapshotStatus) {
        let Some(pr) = self.prs.progress.get_mut(&to) else {
            return;
        };
        if pr.state != ProgressState::Snapshot {
            return;
        }
        if status == SnapshotStatus::Failure {
            pr.pending_snapshot = 0;
        }
        pr.become_probe();
        // Wait for the next heartbeat response before probing again.
        pr.probe_sent = true;
    }
}
