//! A peer's part of a round: take its `Ready`, put its log entries and
//! hard state into the round's shared write batch, hand committed entries
//! to the apply pool, and — once the round's batch is durable — release
//! the messages that depended on it.

use flotilla_proto::metapb;
use flotilla_proto::raft_serverpb::RaftMessage;
use raftcore::{codec, Message, MessageType};

use super::Peer;
use crate::apply::admin::ExecResult;
use crate::apply::ApplyTask;
use crate::driver::context::PeerContext;

impl Peer {
    /// Picks up what the apply pool finished since the last round.
    pub fn on_apply_progress(&mut self, cx: &mut PeerContext) {
        let (applied, snapshot, results) = {
            let mut progress = self.progress.lock();
            (
                progress.applied.take(),
                progress.snapshot.take(),
                std::mem::take(&mut progress.results),
            )
        };
        if let Some(built) = snapshot {
            self.on_snapshot_built(cx, built);
        }
        for result in results {
            match result {
                ExecResult::Split { regions, created } => {
                    self.on_split_applied(cx, regions, created)
                }
                ExecResult::ChangePeer { cc, region } => {
                    self.on_conf_change_applied(cx, cc, region)
                }
            }
        }
        let Some(result) = applied else {
            return;
        };
        let state = result.apply_state;
        if state.applied_index < self.applied_index {
            // Progress from before a snapshot this peer installed since.
            return;
        }
        let old_truncated = self.node.storage().apply_state().truncated_index;
        if state.truncated_index > old_truncated {
            self.node
                .storage()
                .delete_log_until(cx.wb, state.truncated_index);
        }
        self.node.storage_mut().set_apply_state(state);
        self.note_written(result.written_bytes);
        if state.applied_index > self.applied_index {
            self.applied_index = state.applied_index;
            self.applied_term = result.applied_term;
            self.node.advance_apply_to(state.applied_index);
        }
        self.serve_applied_reads();
    }

    /// Truncates the log behind the applied index when enough of it piled
    /// up (each replica on its own: a follower that needs truncated
    /// entries gets a snapshot instead).
    pub fn maybe_compact_log(&mut self, cx: &mut PeerContext) {
        let cfg = &cx.store.cfg.raft;
        let truncated = self.node.storage().apply_state().truncated_index;
        let Some(compact_to) = self.applied_index.checked_sub(cfg.log_gc_keep_entries) else {
            return;
        };
        if compact_to <= truncated + cfg.log_gc_threshold_entries {
            return;
        }
        let Ok(term) = raftcore::Storage::term(self.node.storage(), compact_to) else {
            return;
        };
        cx.store.apply_pool.schedule(ApplyTask::CompactLog {
            region_id: self.region().id,
            index: compact_to,
            term,
        });
    }

    /// Takes this peer's `Ready`, if it has one, into the round.
    pub fn collect_ready(&mut self, cx: &mut PeerContext) {
        if self.pending_ready.is_some() || !self.node.has_ready() {
            return;
        }
        if self.node.has_pending_snapshot() && self.applying_index > self.applied_index {
            // Older entries still applying must land before the snapshot's
            // state; their progress wakes this peer again.
            return;
        }
        let mut rd = self.node.ready();
        if let Some(ss) = rd.soft_state {
            tracing::debug!(region = self.region().id, peer = self.me.id, role = ?ss.role, leader = ?ss.leader_id, "role changed");
            if ss.role != raftcore::StateRole::Leader {
                self.fail_unconfirmed_reads(self.leader());
            }
            cx.store.note_role_change(self.region().id);
            self.publish_meta(cx);
        }
        let messages = std::mem::take(&mut rd.messages);
        self.send_messages(cx, messages, false);
        if let Some(snapshot) = &rd.snapshot {
            self.apply_snapshot(cx, snapshot);
        }
        self.node
            .storage()
            .prepare_append(cx.wb, &rd.entries, rd.hard_state);
        if rd.must_sync {
            *cx.must_sync = true;
        }
        if !rd.entries.is_empty() || rd.hard_state.is_some() {
            cx.round_stats.regions += 1;
            cx.round_stats.entries += rd.entries.len();
        }
        let committed = std::mem::take(&mut rd.committed_entries);
        self.hand_to_apply(cx, committed);
        let read_states = std::mem::take(&mut rd.read_states);
        self.on_read_states(read_states);
        self.pending_ready = Some(rd);
    }

    /// Once the round's batch is durable: make the entries visible, send
    /// the messages that waited for the persist, and advance the node.
    pub fn after_persist(&mut self, cx: &mut PeerContext) {
        self.finish_destroy(cx);
        let Some(mut rd) = self.pending_ready.take() else {
            return;
        };
        if let Some(snapshot) = rd.snapshot.take() {
            self.finish_snapshot(cx, &snapshot);
        }
        self.node
            .storage_mut()
            .finish_append(&rd.entries, rd.hard_state);
        let messages = std::mem::take(&mut rd.persisted_messages);
        self.send_messages(cx, messages, true);
        self.node.advance(rd);
        if self.node.has_ready() {
            cx.rewake.push(self.region().id);
        }
    }

    fn hand_to_apply(&mut self, cx: &mut PeerContext, entries: Vec<raftcore::Entry>) {
        let Some(last) = entries.last().map(|e| e.index) else {
            return;
        };
        let mut proposals = Vec::new();
        while self.proposals.front().is_some_and(|p| p.index <= last) {
            if let Some(p) = self.proposals.pop_front() {
                proposals.push(p);
            }
        }
        self.applying_index = last;
        cx.store.apply_pool.schedule(ApplyTask::Apply {
            region_id: self.region().id,
            entries,
            proposals,
        });
    }

    fn send_messages(&self, cx: &mut PeerContext, messages: Vec<Message>, after_persist: bool) {
        for m in messages {
            let known = self.region().peers.iter().find(|p| p.id == m.to);
            let Some(to) = known.or_else(|| self.peer_cache.get(&m.to)).cloned() else {
                tracing::debug!(
                    region = self.region().id,
                    to = m.to,
                    "message to an unknown peer dropped"
                );
                continue;
            };
            let is_snapshot = m.msg_type == MessageType::Snapshot;
            cx.store.metrics.messages_sent.inc(m.msg_type);
            let envelope = self.envelope(&m, to);
            cx.outbound.push(after_persist, envelope, is_snapshot);
        }
    }

    fn envelope(&self, m: &Message, to: metapb::Peer) -> RaftMessage {
        let region = self.region();
        let mut buf = Vec::new();
        codec::encode_message(m, &mut buf);
        RaftMessage {
            region_id: region.id,
            from_peer: Some(self.me),
            to_peer: Some(to),
            region_epoch: region.region_epoch,
            message: buf.into(),
            start_key: region.start_key.clone(),
            end_key: region.end_key.clone(),
            is_tombstone: false,
            is_store_heartbeat: false,
        }
    }
}
