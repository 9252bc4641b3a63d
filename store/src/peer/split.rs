//! Splitting a region, on its leader and on every replica.
//!
//! 1. **Measure.** Every `split-check-interval`, a leader whose region took
//!    at least `region-split-size / 16` bytes of writes since its last
//!    check asks the [split checker](crate::split_check) to measure it.
//! 2. **Ask PD.** A region over the split size (or a split PD's operator
//!    or the API asked for) gets IDs from PD (`AskBatchSplit`, through the
//!    PD worker: the poller never waits on the network).
//! 3. **Propose.** The leader proposes a `BatchSplit` admin command with
//!    the epoch the IDs were asked for. From then on it serves no lease
//!    read until the split is applied here: the new regions' leaders may
//!    start taking writes as soon as *their* replicas applied it, and this
//!    leader must not answer a read of their keys from its old range.
//! 4. **Apply** (every replica, [`crate::apply::admin`]): the original
//!    region keeps the left part, each new region gets its records, and
//!    every version is bumped — one atomic write.
//! 5. **Start the new peers** through the one creation path; on the store
//!    that led the original, the new peers campaign at once (their
//!    replicas elsewhere would otherwise wait for an election timeout).
//!    The leader reports the split to PD.

use bytes::Bytes;
use flotilla_proto::kvrpcpb::RegionError;
use flotilla_proto::metapb;
use flotilla_proto::raft_cmdpb::{
    admin_request, AdminRequest, BatchSplitRequest, RaftCmdRequest, SplitRequest,
};

use super::msg::{KeyCheck, PeerMsg, ProposeSplit, SplitCmd, WriteCallback};
use super::storage::PeerStorage;
use super::Peer;
use crate::driver::context::PeerContext;
use crate::driver::system::{create_peer, CreatePeerError};
use crate::pd_task::PdTask;
use crate::region_error;
use crate::split_check::{SplitCheckOutcome, SplitCheckTask};

impl Peer {
    /// Bytes of writes after which a leader measures its region again.
    fn split_check_threshold(cx: &PeerContext) -> u64 {
        cx.store.cfg.split.region_split_size.as_u64() / 16
    }

    /// Whether the region grew enough since it was last measured.
    pub(super) fn split_check_due(&self, cx: &PeerContext) -> bool {
        self.split.size_diff_hint >= Self::split_check_threshold(cx)
    }

    /// On the split-check cadence: has the region measured if it grew.
    pub(super) fn maybe_check_split(&mut self, cx: &mut PeerContext) {
        if !self.is_leader() || self.split.check_pending {
            return;
        }
        if !self.split_check_due(cx) {
            return;
        }
        let task = SplitCheckTask {
            region: self.region().clone(),
            split_size: cx.store.cfg.split.region_split_size.as_u64(),
            force: false,
        };
        self.split.check_pending = cx.store.split_checker.schedule(task);
    }

    /// Notes how much was written since the apply last reported.
    pub(super) fn note_written(&mut self, written_total: u64) {
        if written_total < self.split.written_seen {
            // The apply side was re-registered (a snapshot): it counts anew.
            self.split.written_seen = 0;
        }
        self.split.size_diff_hint += written_total - self.split.written_seen;
        self.split.written_seen = written_total;
    }

    pub(super) fn on_split_check_result(&mut self, cx: &mut PeerContext, out: SplitCheckOutcome) {
        self.split.check_pending = false;
        if Some(out.epoch) != self.region().region_epoch {
            // Measured before a split or membership change: measure again.
            return;
        }
        self.split.approximate_size = out.size;
        self.split.approximate_keys = out.keys;
        self.publish_meta(cx);
        if out.split_keys.is_empty() {
            self.split.size_diff_hint = 0;
            return;
        }
        // The hint stays: if this split does not happen, the next check
        // tries again.
        if self.is_leader() {
            tracing::info!(
                region = self.region().id,
                size = out.size,
                keys = out.split_keys.len(),
                "region over the split size"
            );
            self.ask_split(cx, out.split_keys, None);
        }
    }

    /// A split requested by PD or the API.
    pub(super) fn on_split(&mut self, cx: &mut PeerContext, cmd: SplitCmd) {
        let SplitCmd {
            epoch,
            ctx,
            keys,
            cb,
        } = cmd;
        let checked = match &ctx {
            Some(ctx) => self.check_request(cx, ctx, &KeyCheck::Keys(keys.clone())),
            None if Some(epoch) != self.region().region_epoch => {
                Err(self.epoch_not_match(cx, Some(&epoch)))
            }
            None => Ok(()),
        };
        if let Err(e) = checked {
            reply(cb, Err(e));
            return;
        }
        if !self.is_leader() {
            reply(cb, Err(self.not_leader()));
            return;
        }
        let mut keys: Vec<Bytes> = keys
            .into_iter()
            .filter(|k| *k != self.region().start_key)
            .collect();
        keys.sort();
        keys.dedup();
        if !keys.is_empty() {
            self.ask_split(cx, keys, cb);
            return;
        }
        if ctx.is_some() {
            // Every key was the region's start: nothing to cut.
            reply(
                cb,
                Ok(super::msg::WriteResponse {
                    regions: vec![self.region().clone()],
                    ..Default::default()
                }),
            );
            return;
        }
        let task = SplitCheckTask {
            region: self.region().clone(),
            split_size: cx.store.cfg.split.region_split_size.as_u64(),
            force: true,
        };
        self.split.check_pending |= cx.store.split_checker.schedule(task);
    }

    fn ask_split(&mut self, cx: &mut PeerContext, keys: Vec<Bytes>, cb: Option<WriteCallback>) {
        let task = PdTask::AskSplit {
            region: self.region().clone(),
            keys,
            cb,
        };
        if let Err(PdTask::AskSplit { cb, .. }) = cx.store.schedule_pd(task) {
            tracing::debug!(region = self.region().id, "PD queue full; split later");
            let busy = region_error::server_is_busy("PD request queue full", 100);
            reply(cb, Err(busy));
        }
    }

    /// PD gave the IDs: propose the split.
    pub(super) fn on_propose_split(&mut self, cx: &mut PeerContext, p: ProposeSplit) {
        let ProposeSplit {
            epoch,
            keys,
            ids,
            cb,
        } = p;
        if !self.is_leader() {
            reply(cb, Err(self.not_leader()));
            return;
        }
        if Some(epoch) != self.region().region_epoch {
            reply(cb, Err(self.epoch_not_match(cx, Some(&epoch))));
            return;
        }
        if ids.len() != keys.len() {
            reply(cb, Err(region_error::stale_command()));
            return;
        }
        let requests = keys
            .into_iter()
            .zip(ids)
            .map(|(split_key, id)| SplitRequest {
                split_key,
                new_region_id: id.new_region_id,
                new_peer_ids: id.new_peer_ids,
            })
            .collect();
        let cmd = RaftCmdRequest {
            header: Some(self.cmd_header()),
            requests: Vec::new(),
            admin: Some(AdminRequest {
                cmd: Some(admin_request::Cmd::Splits(BatchSplitRequest { requests })),
            }),
        };
        let cb = cb.unwrap_or_else(|| tokio::sync::oneshot::channel().0);
        if let Some(index) = self.propose_cmd(cx, cmd, cb) {
            self.split.barrier = index;
        }
    }

    /// A split applied here: shrink this region and start the new ones.
    pub(super) fn on_split_applied(
        &mut self,
        cx: &mut PeerContext,
        regions: Vec<metapb::Region>,
        created: Vec<u64>,
    ) {
        let Some(derived) = regions.first().cloned() else {
            return;
        };
        self.node.storage_mut().set_region(derived);
        self.split.children = regions[1..].iter().map(|r| r.id).collect();
        let parts = regions.len() as u64;
        self.split.approximate_size /= parts;
        self.split.approximate_keys /= parts;
        self.split.size_diff_hint = Self::split_check_threshold(cx);
        self.publish_meta(cx);
        cx.store.note_role_change(self.region().id);
        let leads = self.is_leader();
        for new in &regions[1..] {
            self.start_split_peer(cx, new, created.contains(&new.id), leads);
        }
        if leads
            && cx
                .store
                .schedule_pd(PdTask::ReportSplit { regions })
                .is_err()
        {
            // The new regions' heartbeats tell PD as well.
            tracing::debug!(
                region = self.region().id,
                "PD queue full; split not reported"
            );
        }
    }

    fn start_split_peer(
        &self,
        cx: &mut PeerContext,
        region: &metapb::Region,
        created: bool,
        campaign: bool,
    ) {
        let store_id = cx.store.store_id;
        let Some(me) = region
            .peers
            .iter()
            .find(|p| p.store_id == store_id)
            .copied()
        else {
            return;
        };
        if !created {
            tracing::info!(
                region = region.id,
                "split target not started: it has state here"
            );
            return;
        }
        let storage = match PeerStorage::load(cx.store.engine.clone(), region.id) {
            Ok(Some(s)) => s,
            other => {
                let error = other.err().map(|e| e.to_string());
                tracing::error!(region = region.id, ?error, "split target has no state");
                return;
            }
        };
        match create_peer(cx.store, cx.router, me, storage) {
            Ok(()) => {}
            Err(CreatePeerError::Exists(_)) => {
                // A message from the new region's leader got here first.
                let _ = cx.router.send(region.id, PeerMsg::InitFromSplit);
            }
            Err(e) => {
                tracing::warn!(region = region.id, error = %e, "split target not started");
                return;
            }
        }
        // Messages its leader-to-be sent before the split applied here
        // (its vote requests, above all).
        for held in cx.store.deferred.take(region.id) {
            let _ = cx.router.send(region.id, PeerMsg::Raft(Box::new(held)));
        }
        if campaign {
            let _ = cx.router.send(region.id, PeerMsg::Campaign);
        }
    }

    /// `EpochNotMatch` for a request made with `requested`: this region
    /// and the regions its last split created here, so a client can fix
    /// its cache without asking PD.
    pub(super) fn epoch_not_match(
        &self,
        cx: &PeerContext,
        requested: Option<&metapb::RegionEpoch>,
    ) -> RegionError {
        let mut current = vec![self.region().clone()];
        let published = cx.store.regions.read();
        current.extend(
            self.split
                .children
                .iter()
                .filter_map(|id| published.get(id))
                .map(|m| m.region.clone()),
        );
        region_error::epoch_not_match(requested, current)
    }
}

/// Answers `cb`, if anyone waits.
fn reply(cb: Option<WriteCallback>, result: Result<super::msg::WriteResponse, RegionError>) {
    if let Some(cb) = cb {
        let _ = cb.send(result);
    }
}

/// A peer's split bookkeeping.
#[derive(Default)]
pub struct SplitState {
    /// Bytes written since the region was last measured (an estimate).
    pub size_diff_hint: u64,
    /// The apply side's running total of written bytes, last seen.
    pub written_seen: u64,
    /// A check is queued or running.
    pub check_pending: bool,
    /// Bytes in the region when last measured.
    pub approximate_size: u64,
    /// Keys in the region when last measured.
    pub approximate_keys: u64,
    /// Index of the last split this peer proposed: no lease read before
    /// it is applied.
    pub barrier: u64,
    /// The regions the last split applied here created.
    pub children: Vec<u64>,
}
