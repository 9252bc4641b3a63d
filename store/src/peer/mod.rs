//! A region's peer on this store: its raftcore node over [`PeerStorage`],
//! the proposals and reads waiting on it, and how far its entries applied.
//!
//! One file per operation: [`propose`] (client writes), [`read`]
//! (linearizable reads), [`ready`] (a round's Raft work: persist, send,
//! apply) — the region-lifecycle operations of the next issue (split,
//! membership change, destroy) get their own files beside them. Every peer
//! is made by [`Peer::new`], whatever created it (bootstrap, restart, and
//! later split or a message from a new leader).

pub mod conf_change;
pub mod destroy;
pub mod hibernate;
pub mod msg;
pub mod propose;
pub mod read;
pub mod ready;
pub mod snapshot;
pub mod split;
pub mod storage;

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use flotilla_proto::kvrpcpb::{Context, RegionError};
use flotilla_proto::metapb;
use parking_lot::Mutex;
use raftcore::{RawNode, StateRole};

use crate::apply::{ApplyProgress, ApplyTask, Proposal};
use crate::config::RaftConfig;
use crate::driver::context::{PeerContext, RegionMeta};
use crate::region_error;
use msg::{KeyCheck, PeerMsg};
use read::PendingReads;
use storage::PeerStorage;

/// Most ticks delivered at once after a stall (enough to expire any lease
/// and election timeout).
const MAX_CATCH_UP_TICKS: u64 = 1_000;

/// One region's peer.
pub struct Peer {
    me: metapb::Peer,
    node: RawNode<PeerStorage>,
    /// Proposed, not yet handed to the apply pool; by index.
    proposals: VecDeque<Proposal>,
    reads: PendingReads,
    /// Highest index handed to the apply pool.
    applying_index: u64,
    applied_index: u64,
    applied_term: u64,
    progress: ApplyProgress,
    /// The store-wide tick this peer has caught up to.
    last_tick: u64,
    /// The Ready being persisted in the current round.
    pending_ready: Option<raftcore::Ready>,
    /// Whether the apply thread is building a snapshot for followers.
    snapshot_building: bool,
    split: split::SplitState,
    /// Peers heard from that the region does not list (yet): an
    /// uninitialized peer answers its leader through this.
    peer_cache: std::collections::HashMap<u64, metapb::Peer>,
    destroy: Option<destroy::Destroy>,
    hibernate: hibernate::HibernateState,
    /// The pending peers last published (PD promotes a learner only once
    /// it is no longer listed).
    published_pending: Vec<metapb::Peer>,
}

/// Builds raftcore's configuration for peer `id` from the store's.
pub fn raft_config(cfg: &RaftConfig, id: u64, applied: u64) -> raftcore::Config {
    raftcore::Config {
        id,
        election_ticks: cfg.election_ticks,
        heartbeat_ticks: cfg.heartbeat_ticks,
        applied,
        max_size_per_msg: cfg.max_size_per_msg.as_u64(),
        max_inflight_msgs: cfg.max_inflight_msgs,
        // Uncommitted entries beyond this make proposals back off.
        max_uncommitted_size: 256 << 20,
        pre_vote: true,
        check_quorum: true,
        // A lease shorter than the election timeout by a quarter: safe
        // while clocks drift by less than that factor.
        lease_ticks: (cfg.election_ticks * 3 / 4).max(1),
        seed: id,
        ..raftcore::Config::default()
    }
}

impl Peer {
    /// Creates the peer `me` over `storage` and registers it with the
    /// apply pool. The one way a peer comes to exist.
    pub fn new(
        me: metapb::Peer,
        storage: PeerStorage,
        cfg: &RaftConfig,
        cx: &crate::driver::context::StoreContext,
    ) -> Result<Peer, raftcore::Error> {
        let apply_state = *storage.apply_state();
        let region = storage.region().clone();
        let applied = apply_state.applied_index;
        let applied_term = raftcore::Storage::term(&storage, applied).unwrap_or(0);
        let pristine = storage.is_pristine();
        let mut node = RawNode::new(&raft_config(cfg, me.id, applied), storage)?;
        if pristine {
            // No leader of this region ever heard from it: it owes no
            // lease, so it may vote for the first candidate at once (a
            // split's new region elects without waiting out a timeout).
            node.waive_startup_vote_wait();
        }
        let progress: ApplyProgress = Arc::new(Mutex::new(Default::default()));
        cx.apply_pool.schedule(ApplyTask::Register {
            region,
            apply_state,
            applied_term,
            progress: progress.clone(),
        });
        Ok(Peer {
            me,
            node,
            proposals: VecDeque::new(),
            reads: PendingReads::default(),
            applying_index: applied,
            applied_index: applied,
            applied_term,
            progress,
            last_tick: cx.current_tick(),
            pending_ready: None,
            snapshot_building: false,
            split: split::SplitState {
                // Measure once after taking the lead: the size is unknown.
                size_diff_hint: u64::MAX / 2,
                ..Default::default()
            },
            peer_cache: Default::default(),
            destroy: None,
            hibernate: Default::default(),
            published_pending: Vec::new(),
        })
    }

    /// The region as this peer knows it.
    pub fn region(&self) -> &metapb::Region {
        self.node.storage().region()
    }

    /// This peer.
    pub fn me(&self) -> &metapb::Peer {
        &self.me
    }

    /// Whether this peer leads its region.
    pub fn is_leader(&self) -> bool {
        self.node.raft().state == StateRole::Leader
    }

    /// The leader this peer knows of.
    pub fn leader(&self) -> Option<metapb::Peer> {
        let id = self.node.raft().leader_id;
        self.region().peers.iter().find(|p| p.id == id).cloned()
    }

    /// The raftcore node, for inspection.
    pub fn node(&self) -> &RawNode<PeerStorage> {
        &self.node
    }

    /// Applied index and term.
    pub fn applied(&self) -> (u64, u64) {
        (self.applied_index, self.applied_term)
    }

    /// Handles one mailbox message.
    pub fn on_msg(&mut self, cx: &mut PeerContext, msg: PeerMsg) {
        match msg {
            PeerMsg::Raft(m) => self.on_raft_message(cx, *m),
            PeerMsg::Write(cmd) => {
                self.note_activity();
                self.on_write(cx, cmd)
            }
            PeerMsg::Read(cmd) => {
                self.note_activity();
                self.on_read(cx, cmd)
            }
            PeerMsg::Applied(_) | PeerMsg::Wake => {}
            PeerMsg::SplitCheckResult(out) => self.on_split_check_result(cx, out),
            PeerMsg::Split(cmd) => self.on_split(cx, cmd),
            PeerMsg::ProposeSplit(p) => self.on_propose_split(cx, p),
            PeerMsg::Campaign => {
                if let Err(e) = self.node.campaign() {
                    tracing::debug!(region = self.region().id, error = %e, "campaign refused");
                }
            }
            PeerMsg::TransferLeader { epoch, to } => self.on_transfer_leader(epoch, to),
            PeerMsg::ChangePeer { epoch, changes } => self.on_change_peer(cx, epoch, changes),
            PeerMsg::InitFromSplit => self.init_from_split(cx),
            PeerMsg::PeersUnheard => self.on_peers_unheard(),
            PeerMsg::Unreachable { to_peer } => self.node.report_unreachable(to_peer),
            PeerMsg::SnapshotSent { to_peer, ok } => {
                let status = if ok {
                    raftcore::SnapshotStatus::Finish
                } else {
                    raftcore::SnapshotStatus::Failure
                };
                self.node.report_snapshot(to_peer, status);
            }
        }
    }

    fn on_raft_message(&mut self, cx: &mut PeerContext, m: msg::InboundRaft) {
        if self.check_stale_message(cx, &m.envelope) {
            return;
        }
        let to = m.envelope.to_peer.as_ref().map_or(0, |p| p.id);
        if to != self.me.id {
            tracing::debug!(
                region = self.region().id,
                to,
                me = self.me.id,
                "message for another peer dropped"
            );
            return;
        }
        if let Some(from) = m.envelope.from_peer {
            let member = self.region().peers.iter().any(|p| p.id == from.id);
            if !member && self.node.storage().is_initialized() {
                let theirs = m.envelope.region_epoch.unwrap_or_default();
                let mine = self.region().region_epoch.unwrap_or_default();
                if theirs.conf_ver < mine.conf_ver {
                    self.reply_tombstone(cx, &m.envelope);
                    return;
                }
            }
            self.peer_cache.insert(from.id, from);
        }
        if m.message.msg_type == raftcore::MessageType::Snapshot && !self.accepts_snapshot(cx, &m) {
            return;
        }
        if let Err(e) = self.node.step(m.message) {
            tracing::debug!(region = self.region().id, error = %e, "raft message refused");
        }
    }

    /// An uninitialized peer takes a snapshot only if its range overlaps
    /// no region this store holds (a split not yet applied here would
    /// otherwise leave two regions owning the same keys).
    fn accepts_snapshot(&self, cx: &PeerContext, m: &msg::InboundRaft) -> bool {
        if self.node.storage().is_initialized() {
            return true;
        }
        let Some(region) = m
            .message
            .snapshot
            .as_ref()
            .and_then(|s| snapshot::snapshot_data(s).ok())
            .and_then(|d| d.region)
        else {
            return false;
        };
        if cx.store.overlaps_another(&region) {
            tracing::info!(
                region = region.id,
                "snapshot overlaps a region here; dropped until that changes"
            );
            return false;
        }
        true
    }

    /// The region's split applied here while this peer waited
    /// uninitialized: start over from what the split wrote (keeping the
    /// persisted hard state, so a vote given meanwhile stands).
    fn init_from_split(&mut self, cx: &mut PeerContext) {
        if self.node.storage().is_initialized() || self.pending_ready.is_some() {
            return;
        }
        let id = self.region().id;
        let storage = match storage::PeerStorage::load(cx.store.engine.clone(), id) {
            Ok(Some(s)) if s.is_initialized() => s,
            _ => return,
        };
        match Peer::new(self.me, storage, &cx.store.cfg.raft, cx.store) {
            Ok(peer) => {
                *self = peer;
                self.publish_meta(cx);
                tracing::info!(region = id, "uninitialized peer initialized by a split");
            }
            Err(e) => tracing::error!(region = id, error = %e, "initializing from a split failed"),
        }
    }

    /// Delivers the store-wide ticks elapsed since this peer last caught
    /// up, and considers log truncation every `log-gc-interval`.
    pub fn on_ticks(&mut self, cx: &mut PeerContext, now: u64) {
        if now <= self.last_tick {
            return;
        }
        let cfg = &cx.store.cfg;
        let crossed = |interval: std::time::Duration| {
            let every = (interval.as_nanos() / cfg.raft.tick_interval.as_nanos().max(1)).max(1);
            now / every as u64 != self.last_tick / every as u64
        };
        let gc_due = crossed(cfg.raft.log_gc_interval);
        let split_check_due = crossed(cfg.split.split_check_interval);
        let heartbeat_due = crossed(cfg.heartbeat.region_interval);
        let behind = (now - self.last_tick).min(MAX_CATCH_UP_TICKS);
        for _ in 0..behind {
            self.node.tick();
        }
        self.last_tick = now;
        if gc_due {
            self.maybe_compact_log(cx);
            self.maybe_drop_built_snapshot(cx);
        }
        if split_check_due {
            self.maybe_check_split(cx);
        }
        if heartbeat_due || !self.published_pending.is_empty() {
            self.refresh_pending_peers(cx);
        }
        self.maybe_hibernate(cx, behind);
    }

    /// A PD operator step: hand leadership to `to`.
    fn on_transfer_leader(&mut self, epoch: metapb::RegionEpoch, to: metapb::Peer) {
        if !self.is_leader() || Some(epoch) != self.region().region_epoch || to.id == self.me.id {
            return;
        }
        if let Err(e) = self.node.transfer_leader(to.id) {
            tracing::debug!(region = self.region().id, error = %e, "leader transfer refused");
        }
    }

    /// Publishes this region's metadata for PD and the status pages.
    pub(super) fn publish_meta(&mut self, cx: &PeerContext) {
        let meta = self.meta();
        self.published_pending = meta.pending_peers.clone();
        cx.store.publish(meta);
    }

    /// Republishes when the pending peers changed — at once to PD, which
    /// waits for a learner to catch up before promoting it.
    pub(super) fn refresh_pending_peers(&mut self, cx: &PeerContext) {
        if self.pending_peers() != self.published_pending {
            self.publish_meta(cx);
            cx.store.note_role_change(self.region().id);
        }
    }

    /// What the store publishes about this region.
    pub fn meta(&self) -> RegionMeta {
        RegionMeta {
            region: self.region().clone(),
            peer: self.me,
            is_leader: self.is_leader(),
            leader: self.leader(),
            term: self.node.raft().term,
            approximate_size: self.split.approximate_size,
            approximate_keys: self.split.approximate_keys,
            pending_peers: self.pending_peers(),
        }
    }

    /// On the leader: the peers whose log starts past what they hold —
    /// waiting for a snapshot, or not heard from since becoming a member.
    fn pending_peers(&self) -> Vec<metapb::Peer> {
        if !self.is_leader() {
            return Vec::new();
        }
        let truncated = self.node.storage().apply_state().truncated_index;
        let progress = &self.node.raft().prs.progress;
        self.region()
            .peers
            .iter()
            .filter(|p| p.id != self.me.id)
            .filter(|p| {
                progress.get(&p.id).is_none_or(|pr| {
                    pr.matched < truncated || pr.state == raftcore::tracker::ProgressState::Snapshot
                })
            })
            .copied()
            .collect()
    }

    /// Checks that a request's context and keys fit this peer's region.
    fn check_request(
        &self,
        cx: &PeerContext,
        ctx: &Context,
        keys: &KeyCheck,
    ) -> Result<(), RegionError> {
        let region = self.region();
        if let Some(peer) = &ctx.peer {
            if peer.store_id != 0 && peer.store_id != cx.store.store_id {
                return Err(region_error::store_not_match(
                    peer.store_id,
                    cx.store.store_id,
                ));
            }
            if peer.id != 0 && peer.id != self.me.id {
                // The client knows another peer of this region on this
                // store (it was removed and re-added since): its routing
                // is stale, ask PD again.
                let mut err = region_error::region_not_found(region.id);
                err.message = format!(
                    "peer {} of region {} is not on this store (this store has peer {})",
                    peer.id, region.id, self.me.id
                );
                return Err(err);
            }
        }
        if crate::planted::on(crate::planted::Bug::SkipEpochCheck) {
            return Ok(());
        }
        let current = region.region_epoch.unwrap_or_default();
        let matches = ctx
            .region_epoch
            .is_some_and(|e| e.version == current.version);
        if !matches {
            return Err(self.epoch_not_match(cx, ctx.region_epoch.as_ref()));
        }
        let in_region = |k: &Bytes| region_error::key_in_region(k, region);
        let outside = match keys {
            KeyCheck::Keys(keys) => keys.iter().find(|k| !in_region(k)).cloned(),
            KeyCheck::RangeStart(start) => (!in_region(start)).then(|| start.clone()),
            KeyCheck::Below(upper) => {
                let above_start = upper.is_empty() || *upper > region.start_key;
                let within_end =
                    region.end_key.is_empty() || (!upper.is_empty() && *upper <= region.end_key);
                (!(above_start && within_end)).then(|| upper.clone())
            }
            KeyCheck::Range(start, end) => {
                if !in_region(start) {
                    Some(start.clone())
                } else if !region.end_key.is_empty() && (end.is_empty() || *end > region.end_key) {
                    Some(end.clone())
                } else {
                    None
                }
            }
        };
        match outside {
            Some(key) => Err(region_error::key_not_in_region(&key, region)),
            None => Ok(()),
        }
    }

    fn not_leader(&self) -> RegionError {
        region_error::not_leader(self.region().id, self.leader())
    }
}
