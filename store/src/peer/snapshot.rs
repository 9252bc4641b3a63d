//! Snapshots: building one for a follower that fell behind the truncated
//! log (on the region's apply thread, where data and applied index agree),
//! and installing one received from the leader — data, region and apply
//! state in the round's one write batch, so it lands atomically.

use flotilla_proto::raft_serverpb::SnapshotData;
use prost::Message as _;
use raftcore::Snapshot;

use super::Peer;
use crate::apply::ApplyTask;
use crate::driver::context::PeerContext;
use crate::snap::SnapKey;

/// The key of a snapshot's file.
pub fn snap_key(region_id: u64, snapshot: &Snapshot) -> SnapKey {
    SnapKey::new(region_id, snapshot.metadata.term, snapshot.metadata.index)
}

/// Decodes a snapshot's `data`.
pub fn snapshot_data(snapshot: &Snapshot) -> Result<SnapshotData, prost::DecodeError> {
    SnapshotData::decode(snapshot.data.clone())
}

impl Peer {
    /// Asks the apply thread for a snapshot if raftcore wanted one.
    pub fn maybe_request_snapshot(&mut self, cx: &mut PeerContext) {
        if !self.node.storage().take_snapshot_request() || self.snapshot_building {
            return;
        }
        self.snapshot_building = true;
        tracing::debug!(region = self.region().id, "building a snapshot");
        cx.store.apply_pool.schedule(ApplyTask::GenSnapshot {
            region_id: self.region().id,
        });
    }

    /// Offers a snapshot the apply thread built (dropping the previous
    /// one's file) and lets raftcore retry sending.
    pub(super) fn on_snapshot_built(&mut self, cx: &mut PeerContext, built: Option<Snapshot>) {
        self.snapshot_building = false;
        let Some(snapshot) = built else {
            cx.store
                .metrics
                .snapshots
                .with_label_values(&["failed"])
                .inc();
            return;
        };
        cx.store
            .metrics
            .snapshots
            .with_label_values(&["generated"])
            .inc();
        let region_id = self.region().id;
        if let Some(old) = self.node.storage().built_snapshot() {
            let old_key = snap_key(region_id, old);
            if old_key != snap_key(region_id, &snapshot) {
                let _ = cx.store.snap.delete(old_key);
            }
        }
        tracing::debug!(
            region = region_id,
            index = snapshot.metadata.index,
            "snapshot built"
        );
        self.node.storage_mut().set_snapshot(snapshot);
    }

    /// Drops the built snapshot and its file once no follower is being
    /// sent one or is waiting for one (checked every `log-gc-interval`):
    /// a later lagging follower gets a fresh one. A follower that is up
    /// and whose next entry was truncated away is about to be sent this
    /// one (on its next heartbeat response); dropping it first would
    /// start the build over, again and again.
    pub(super) fn maybe_drop_built_snapshot(&mut self, cx: &mut PeerContext) {
        let Some(built) = self.node.storage().built_snapshot() else {
            return;
        };
        let first_index = self.node.log().first_index();
        let me = self.me.id;
        let wanted = self.node.status().progress.is_some_and(|p| {
            p.iter().any(|(&id, pr)| {
                id != me
                    && (pr.state == raftcore::tracker::ProgressState::Snapshot
                        || (pr.recent_active && pr.next_idx < first_index))
            })
        });
        if wanted || self.snapshot_building {
            return;
        }
        let _ = cx.store.snap.delete(snap_key(self.region().id, built));
        self.node.storage_mut().clear_snapshot();
    }

    /// Adds a received snapshot's data and states to the round's batch.
    pub(super) fn apply_snapshot(&mut self, cx: &mut PeerContext, snapshot: &Snapshot) {
        let region_id = self.region().id;
        let key = snap_key(region_id, snapshot);
        let data = match snapshot_data(snapshot) {
            Ok(d) => d,
            // The transport checked it before delivering the message.
            Err(e) => panic!("region {region_id}: snapshot {key} data undecodable: {e}"),
        };
        if let Err(e) = cx.store.snap.apply(&cx.store.engine, key, &data, cx.wb) {
            // The file was verified when received; losing it now is local
            // corruption.
            panic!("region {region_id}: installing snapshot {key}: {e}");
        }
        let region = data.region.unwrap_or_default();
        let meta = &snapshot.metadata;
        self.node
            .storage()
            .prepare_snapshot(cx.wb, &region, meta.index, meta.term);
        *cx.must_sync = true;
        // In the round's batch, not yet written.
        crate::fail::point("snapshot_before_persist");
    }

    /// After the snapshot is durable: the peer and its apply thread
    /// continue from it.
    pub(super) fn finish_snapshot(&mut self, cx: &mut PeerContext, snapshot: &Snapshot) {
        // Durable, but the peer does not know yet.
        crate::fail::point("snapshot_after_persist");
        let region_id = self.region().id;
        let key = snap_key(region_id, snapshot);
        let region = snapshot_data(snapshot)
            .ok()
            .and_then(|d| d.region)
            .unwrap_or_default();
        let (index, term) = (snapshot.metadata.index, snapshot.metadata.term);
        self.node
            .storage_mut()
            .finish_snapshot(region.clone(), index, term);
        self.applying_index = index;
        self.applied_index = index;
        self.applied_term = term;
        self.progress.lock().applied = None;
        cx.store.apply_pool.schedule(ApplyTask::Register {
            region,
            apply_state: *self.node.storage().apply_state(),
            applied_term: term,
            progress: self.progress.clone(),
        });
        let _ = cx.store.snap.delete(key);
        tracing::debug!(region = region_id, index, term, "snapshot applied");
        cx.store
            .metrics
            .snapshots
            .with_label_values(&["applied"])
            .inc();
        self.publish_meta(cx);
        self.serve_applied_reads();
    }
}
