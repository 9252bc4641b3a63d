//! Destroying a peer: removed by a membership change, told so by a peer
//! of a newer configuration (a tombstone message), or replaced by another
//! peer of the same region on this store in a newer configuration.
//!
//! Once no entry of the region is still being applied, one synced write
//! marks the region **tombstone** (keeping its last shape, so stale
//! messages are recognised) and deletes its hard state, apply state, log,
//! and its range's data (unless another region here now owns part of the
//! range). One write batch is atomic, so a crash leaves either the live
//! peer or the tombstone with nothing behind it — never half a region; a
//! restart starts no peer for a tombstone. After the write the peer leaves
//! the router and the apply pool.

use flotilla_proto::raft_serverpb::{PeerState, RaftMessage, RegionLocalState};
use prost::Message as _;

use super::Peer;
use crate::apply::exec::region_end;
use crate::apply::ApplyTask;
use crate::driver::context::PeerContext;
use crate::engine::keys::{apply_state_key, hard_state_key, log_key, region_state_key};
use crate::engine::{CF_DEFAULT, CF_META, CF_RAFT};
use crate::region_error;

/// Where a peer is in its destruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destroy {
    /// Waiting for the region's in-flight applies.
    Pending,
    /// The tombstone is in the round's batch.
    Written,
    /// Gone from the router and the apply pool.
    Done,
}

impl Peer {
    /// Whether the peer is being (or was) destroyed: it handles nothing
    /// more.
    pub fn is_destroying(&self) -> bool {
        self.destroy.is_some()
    }

    /// Starts destroying this peer.
    pub(super) fn start_destroy(&mut self, cx: &mut PeerContext, why: &str) {
        if self.destroy.is_some() {
            return;
        }
        tracing::info!(
            region = self.region().id,
            peer = self.me.id,
            why,
            "destroying peer"
        );
        self.destroy = Some(Destroy::Pending);
        self.maybe_destroy(cx);
    }

    /// Writes the tombstone once nothing of the region is being applied.
    pub fn maybe_destroy(&mut self, cx: &mut PeerContext) {
        if self.destroy != Some(Destroy::Pending)
            || self.pending_ready.is_some()
            || self.applying_index > self.applied_index
            || self.snapshot_building
        {
            return;
        }
        let region = self.region().clone();
        let id = region.id;
        let engine = &cx.store.engine;
        let tombstone = RegionLocalState {
            state: PeerState::Tombstone as i32,
            region: Some(region.clone()),
        };
        let (meta, raft) = (engine.cf(CF_META), engine.cf(CF_RAFT));
        cx.wb
            .put_cf(meta, region_state_key(id), tombstone.encode_to_vec());
        cx.wb.delete_cf(meta, apply_state_key(id));
        cx.wb.delete_cf(raft, hard_state_key(id));
        cx.wb
            .delete_range_cf(raft, log_key(id, 0), log_key(id, u64::MAX));
        if self.node.storage().is_initialized() && !cx.store.overlaps_another(&region) {
            let end = region_end(&region);
            cx.wb
                .delete_range_cf(engine.cf(CF_DEFAULT), &region.start_key, &end);
        }
        *cx.must_sync = true;
        self.destroy = Some(Destroy::Written);
        // A pending proposal may still commit on the other replicas: its
        // outcome is unknown, not "region not found" (which says "not
        // applied, retry").
        for p in self.proposals.drain(..) {
            let _ = p.cb.send(Err(region_error::stale_command()));
        }
        let gone = region_error::region_not_found(id);
        self.fail_all_reads(gone);
        cx.store
            .apply_pool
            .schedule(ApplyTask::Unregister { region_id: id });
        if let Some(built) = self.node.storage().built_snapshot() {
            let _ = cx.store.snap.delete(super::snapshot::snap_key(id, built));
        }
    }

    /// After the tombstone is durable: leave the router.
    pub(super) fn finish_destroy(&mut self, cx: &mut PeerContext) {
        if self.destroy != Some(Destroy::Written) {
            return;
        }
        let id = self.region().id;
        cx.router.unregister(id);
        cx.store.unpublish(id);
        self.destroy = Some(Destroy::Done);
        tracing::info!(region = id, peer = self.me.id, "peer destroyed");
    }

    /// A message that may tell this peer it is stale: a tombstone from a
    /// newer configuration, or a message from a newer configuration for
    /// another peer of the region on this store. Returns true if the
    /// message was consumed.
    pub(super) fn check_stale_message(&mut self, cx: &mut PeerContext, m: &RaftMessage) -> bool {
        let to = m.to_peer.map_or(0, |p| p.id);
        let mine = self.region().region_epoch.unwrap_or_default();
        let theirs = m.region_epoch.unwrap_or_default();
        if m.is_tombstone {
            if to == self.me.id && theirs.conf_ver > mine.conf_ver {
                self.start_destroy(cx, "a newer configuration does not include it");
            }
            return true;
        }
        if to != 0 && to != self.me.id {
            // Another peer of this region on this store: whichever side
            // knows the older configuration is stale (peer IDs are not
            // ordered; an uninitialized peer's epoch is that of the
            // message that created it).
            if theirs.conf_ver > mine.conf_ver {
                self.start_destroy(cx, "a newer configuration has another peer here");
            }
            return true;
        }
        false
    }

    /// Answers a message from a peer this (initialized) region no longer
    /// has, sent under an older configuration: tell it to go away.
    pub(super) fn reply_tombstone(&self, cx: &mut PeerContext, m: &RaftMessage) {
        let Some(from) = m.from_peer else { return };
        let theirs = m.region_epoch.unwrap_or_default();
        let mine = self.region().region_epoch.unwrap_or_default();
        let known = self.region().peers.iter().any(|p| p.id == from.id);
        if known || !self.node.storage().is_initialized() || theirs.conf_ver >= mine.conf_ver {
            return;
        }
        let reply = RaftMessage {
            region_id: self.region().id,
            from_peer: Some(self.me),
            to_peer: Some(from),
            region_epoch: self.region().region_epoch,
            is_tombstone: true,
            ..Default::default()
        };
        cx.outbound.push(false, reply, false);
    }
}
