//! Hibernation of idle regions: the store's part (raftcore's protocol is
//! in its `raft/quiesce.rs`).
//!
//! - **The leader decides.** After an election timeout with nothing to do
//!   — no proposal, read, apply, snapshot, split check or destroy in
//!   flight, and neither log nor term moving — it asks raftcore to
//!   hibernate. raftcore agrees only when every peer holds and has
//!   committed the whole log (peers on unreachable stores excepted), and
//!   its last heartbeat puts the followers to sleep too.
//! - **A hibernating peer costs nothing.** The poller leaves its slot out
//!   of the store-wide tick; a message or request (a proposal, a read, a
//!   Raft message) still reaches it and wakes it. A read on a hibernating
//!   leader takes a ReadIndex round (the lease lapsed while asleep).
//! - **A dead leader is still noticed.** A hibernating follower has no
//!   election timer; the store's liveness probes ([`crate::driver::liveness`])
//!   tell the ticker when the leader's store went silent, and only those
//!   followers are woken (`PeersUnheard`), to elect a new leader in
//!   the usual way. A sleeping leader whose quorum went silent is woken
//!   too, so that Check-Quorum steps it down. Regions that lost only a follower stay asleep: no
//!   flood of wake-ups when a store goes down.

use super::Peer;
use crate::driver::context::PeerContext;

/// What a leader tracks to decide it is idle.
#[derive(Default)]
pub struct HibernateState {
    /// Ticks since the last sign of activity.
    idle_ticks: u64,
    /// Term, last log index and applied index when last looked at.
    mark: (u64, u64, u64),
    /// A size check was asked for in this idle spell.
    measuring: bool,
}

impl Peer {
    /// Whether this peer's timers stopped (the poller then leaves it out
    /// of the store-wide tick).
    pub fn is_hibernating(&self) -> bool {
        self.node.is_hibernating() && self.destroy.is_none()
    }

    /// A client request arrived: the region is not idle.
    pub(super) fn note_activity(&mut self) {
        self.hibernate.idle_ticks = 0;
    }

    /// After `ticks` ticks: on a leader idle for an election timeout,
    /// hibernates the group.
    pub(super) fn maybe_hibernate(&mut self, cx: &mut PeerContext, ticks: u64) {
        let cfg = &cx.store.cfg.raft;
        if !cfg.hibernate_regions || !self.is_leader() || self.node.is_hibernating() {
            return;
        }
        let raft = self.node.raft();
        let mark = (raft.term, self.node.log().last_index(), self.applied_index);
        if mark != self.hibernate.mark {
            self.hibernate = HibernateState {
                mark,
                ..Default::default()
            };
            return;
        }
        if !self.has_nothing_in_flight() {
            self.hibernate.idle_ticks = 0;
            return;
        }
        self.hibernate.idle_ticks += ticks;
        if self.hibernate.idle_ticks < cfg.election_ticks as u64 {
            return;
        }
        if self.split_check_due(cx) {
            // Measure before sleeping (a new region's size is unknown; a
            // grown one may need to split). A region that stays over the
            // split size keeps retrying on the split-check cadence.
            if !self.hibernate.measuring {
                self.maybe_check_split(cx);
                self.hibernate.measuring = self.split.check_pending;
            }
            return;
        }
        // Housekeeping that otherwise waits for a tick.
        self.maybe_compact_log(cx);
        self.maybe_drop_built_snapshot(cx);
        if self.node.storage().built_snapshot().is_some() {
            return;
        }
        // PD must not keep seeing a caught-up learner as pending.
        self.refresh_pending_peers(cx);
        let silent = self.silent_peer_stores(cx);
        if crate::driver::liveness::lost_quorum(self.region(), &silent) {
            // Cut off from a quorum: stay awake, so that Check-Quorum
            // steps this leader down.
            return;
        }
        let unreachable: Vec<u64> = self
            .region()
            .peers
            .iter()
            .filter(|p| silent.contains(&p.store_id))
            .map(|p| p.id)
            .collect();
        match self.node.hibernate_despite(&unreachable) {
            Ok(()) => tracing::trace!(region = self.region().id, "hibernating"),
            Err(e) => {
                tracing::trace!(region = self.region().id, error = %e, "not hibernating yet");
            }
        }
    }

    /// Nothing the store started for this region is still under way.
    fn has_nothing_in_flight(&self) -> bool {
        self.proposals.is_empty()
            && self.reads.is_empty()
            && self.applying_index == self.applied_index
            && self.pending_ready.is_none()
            && !self.snapshot_building
            && !self.split.check_pending
            && self.destroy.is_none()
    }

    /// The other peers whose stores this store has not heard from for an
    /// The stores of the other peers that this store has not heard from
    /// for an election timeout.
    fn silent_peer_stores(&self, cx: &PeerContext) -> std::collections::HashSet<u64> {
        let now = cx.store.current_tick();
        let timeout = cx.store.cfg.raft.election_ticks as u64;
        self.region()
            .peers
            .iter()
            .filter(|p| p.id != self.me.id)
            .map(|p| p.store_id)
            .filter(|&s| cx.store.liveness.is_unreachable(s, now, timeout))
            .collect()
    }

    /// The ticker found stores this region depends on silent: a sleeping
    /// follower restarts its election timer (its leader may be gone); a
    /// sleeping leader wakes, and Check-Quorum steps it down if the quorum
    /// is indeed gone (otherwise, isolated, it would claim the lead for
    /// ever).
    pub(super) fn on_peers_unheard(&mut self) {
        if self.node.is_hibernating() {
            tracing::debug!(region = self.region().id, "stores silent: waking");
            self.node.wake();
        }
    }
}
