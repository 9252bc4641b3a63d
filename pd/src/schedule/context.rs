//! One scheduling pass's picture of the cluster: the view, plus what the
//! operators already in flight will do to it.
//!
//! Scores read from the view alone lag: an operator that moves a region from
//! store 1 to store 4 shows in the counts only when its steps are done. A
//! scheduler that ignored it would keep moving regions to store 4 on every
//! pass and overshoot. So, like PD's "operator influence", every score here is
//! the view's count plus the pending effect of running operators, and a
//! scheduler that proposes an operator [`claim`](ScheduleContext::claim)s it
//! so its next pick in the same pass sees it too.

use std::collections::BTreeMap;

use super::config::ScheduleConfig;
use super::controller::OperatorController;
use super::operator::{OpKind, OpStep, Operator};
use super::view::{ClusterView, RegionView, StoreView};

/// The pending effect of operators on one store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreInfluence {
    /// Replicas to arrive minus replicas to leave.
    pub region_count: i64,
    /// Bytes to arrive minus bytes to leave.
    pub region_size_bytes: i64,
    /// Leaders to arrive minus leaders to leave.
    pub leader_count: i64,
    /// Snapshots the store has yet to receive (AddLearner steps not done).
    pub snapshots: u64,
}

/// Adds the effect of `op`'s remaining steps on `region` to `into`.
/// Steps the region already shows (a learner present, a peer gone) add no
/// count: the view has them already.
pub fn add_influence(op: &Operator, region: &RegionView, into: &mut BTreeMap<u64, StoreInfluence>) {
    let size = i64::try_from(region.effective_size_bytes()).unwrap_or(i64::MAX);
    let mut leader = region.leader_store();
    for step in op.remaining_steps() {
        match step {
            OpStep::AddLearner { store_id, peer_id } => {
                let entry = into.entry(*store_id).or_default();
                entry.snapshots += 1;
                if region.peer(*peer_id).is_none() {
                    entry.region_count += 1;
                    entry.region_size_bytes = entry.region_size_bytes.saturating_add(size);
                }
            }
            OpStep::RemovePeer { peer_id, store_id } if region.peer(*peer_id).is_some() => {
                let entry = into.entry(*store_id).or_default();
                entry.region_count -= 1;
                entry.region_size_bytes = entry.region_size_bytes.saturating_sub(size);
            }
            OpStep::TransferLeader { to_store, .. } if leader != Some(*to_store) => {
                if let Some(from) = leader {
                    into.entry(from).or_default().leader_count -= 1;
                }
                into.entry(*to_store).or_default().leader_count += 1;
                leader = Some(*to_store);
            }
            _ => {}
        }
    }
}

/// Inputs of one checker or scheduler pass; see the module docs.
#[derive(Clone, Debug)]
pub struct ScheduleContext<'a> {
    /// The cluster as last reported.
    pub view: &'a ClusterView,
    /// Configuration for this pass.
    pub cfg: &'a ScheduleConfig,
    /// PD's monotonic clock.
    pub now_ms: u64,
    busy: BTreeMap<u64, OpKind>,
    running: BTreeMap<OpKind, u64>,
    influence: BTreeMap<u64, StoreInfluence>,
}

impl<'a> ScheduleContext<'a> {
    /// A pass over `view` with the operators `controller` is running.
    /// O(running operators).
    pub fn new(
        view: &'a ClusterView,
        cfg: &'a ScheduleConfig,
        controller: &OperatorController,
        now_ms: u64,
    ) -> ScheduleContext<'a> {
        let mut ctx = ScheduleContext::idle(view, cfg, now_ms);
        for op in controller.operators() {
            ctx.claim(op);
        }
        ctx
    }

    /// A pass with no operators in flight.
    pub fn idle(view: &'a ClusterView, cfg: &'a ScheduleConfig, now_ms: u64) -> Self {
        ScheduleContext {
            view,
            cfg,
            now_ms,
            busy: BTreeMap::new(),
            running: BTreeMap::new(),
            influence: BTreeMap::new(),
        }
    }

    /// Records `op` as in flight: its region is busy, it counts against its
    /// kind's limit and its effect shows in the scores.
    pub fn claim(&mut self, op: &Operator) {
        self.busy.insert(op.region_id, op.kind);
        *self.running.entry(op.kind).or_default() += 1;
        if let Some(region) = self.view.region(op.region_id) {
            add_influence(op, region, &mut self.influence);
        }
    }

    /// Kind of the operator on this region, if any.
    pub fn busy_kind(&self, region_id: u64) -> Option<OpKind> {
        self.busy.get(&region_id).copied()
    }

    /// Whether an operator of `kind` could take this region (none there,
    /// or only one of lower priority).
    pub fn region_free_for(&self, region_id: u64, kind: OpKind) -> bool {
        self.busy_kind(region_id)
            .is_none_or(|k| k.priority() < kind.priority())
    }

    /// How many more operators of `kind` the limits allow.
    pub fn room(&self, kind: OpKind) -> u64 {
        match self.cfg.kind_limit(kind) {
            Some(limit) => limit.saturating_sub(self.running.get(&kind).copied().unwrap_or(0)),
            None => u64::MAX,
        }
    }

    /// Pending effect on a store.
    pub fn influence(&self, store_id: u64) -> StoreInfluence {
        self.influence.get(&store_id).copied().unwrap_or_default()
    }

    /// Whether `store` may be sent one more snapshot.
    pub fn snapshot_room(&self, store_id: u64) -> bool {
        self.influence(store_id).snapshots < self.cfg.max_snapshot_count
    }

    /// Region count once running operators finish.
    pub fn region_count(&self, store: &StoreView) -> i64 {
        as_i64(store.region_count) + self.influence(store.id).region_count
    }

    /// Region size once running operators finish.
    pub fn region_size(&self, store: &StoreView) -> i64 {
        // Saturating: region sizes come from the network.
        as_i64(store.region_size_bytes).saturating_add(self.influence(store.id).region_size_bytes)
    }

    /// Leader count once running operators finish.
    pub fn leader_count(&self, store: &StoreView) -> i64 {
        as_i64(store.leader_count) + self.influence(store.id).leader_count
    }
}

fn as_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
