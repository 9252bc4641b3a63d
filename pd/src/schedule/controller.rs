//! The operator controller: the one place operators live while they run.
//!
//! It keeps at most one operator per region, admits new ones only within
//! the per-kind and per-store snapshot limits, advances them on region
//! heartbeats ([`OperatorController::dispatch`]) and reaps those whose
//! regions went quiet ([`OperatorController::check_timeouts`]; hibernating
//! regions send no heartbeats).

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use super::config::ScheduleConfig;
use super::context::{add_influence, StoreInfluence};
use super::operator::{OpKind, OpStatus, OpStep, Operator};
use super::view::{ClusterView, Epoch, RegionView};

/// Finished operators kept for the API by [`OperatorController::new`].
pub const DEFAULT_HISTORY_LIMIT: usize = 256;

/// Why an operator was not admitted. All are "try later or elsewhere":
/// the caller drops the operator and a later pass proposes a fresh one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AddError {
    /// Empty or already stopped.
    #[error("operator is empty or not running")]
    Invalid,
    /// PD no longer knows the region.
    #[error("region {0} not found")]
    RegionNotFound(u64),
    /// The region changed since the operator was built.
    #[error("operator built for epoch {built:?}, region is at {current:?}")]
    StaleEpoch {
        /// Epoch the operator was built against.
        built: Epoch,
        /// Epoch of the region now.
        current: Epoch,
    },
    /// The region already has an operator of equal or higher priority.
    #[error("region already has a {0:?} operator")]
    RegionBusy(OpKind),
    /// As many operators of this kind run as the config allows.
    #[error("{kind:?} operator limit {limit} reached")]
    KindLimit {
        /// Kind of the refused operator.
        kind: OpKind,
        /// Configured limit.
        limit: u64,
    },
    /// A store would receive more concurrent snapshots than allowed.
    #[error("store {store_id} already receives {limit} snapshots")]
    SnapshotLimit {
        /// Receiving store.
        store_id: u64,
        /// Configured `max-snapshot-count`.
        limit: u64,
    },
}

/// Life-cycle counters of one operator kind (the server exports them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct KindCounters {
    /// Admitted.
    pub created: u64,
    /// Refused by [`OperatorController::add`].
    pub refused: u64,
    /// Ran all steps.
    pub finished: u64,
    /// Cancelled (region changed, region removed, API).
    pub cancelled: u64,
    /// Timed out.
    pub timed_out: u64,
    /// Replaced by a higher-priority operator.
    pub replaced: u64,
}

/// Running operators by region, counters and recent history.
#[derive(Clone, Debug)]
pub struct OperatorController {
    running: BTreeMap<u64, Operator>,
    next_id: u64,
    counters: BTreeMap<OpKind, KindCounters>,
    history: VecDeque<Operator>,
    history_limit: usize,
}

impl Default for OperatorController {
    fn default() -> Self {
        OperatorController::new()
    }
}

impl OperatorController {
    /// An empty controller keeping [`DEFAULT_HISTORY_LIMIT`] finished ones.
    pub fn new() -> OperatorController {
        OperatorController::with_history_limit(DEFAULT_HISTORY_LIMIT)
    }

    /// An empty controller keeping the last `history_limit` finished ones.
    pub fn with_history_limit(history_limit: usize) -> OperatorController {
        OperatorController {
            running: BTreeMap::new(),
            next_id: 1,
            counters: OpKind::ALL
                .iter()
                .map(|k| (*k, KindCounters::default()))
                .collect(),
            history: VecDeque::new(),
            history_limit,
        }
    }

    /// Admits `op` (assigning its id, start time and timeout) or says why
    /// not. An operator of strictly higher priority replaces the region's
    /// current one.
    pub fn add(
        &mut self,
        mut op: Operator,
        view: &ClusterView,
        cfg: &ScheduleConfig,
        now_ms: u64,
    ) -> Result<u64, AddError> {
        if let Err(e) = self.admit(&op, view, cfg) {
            self.counters_mut(op.kind).refused += 1;
            return Err(e);
        }
        if let Some(mut old) = self.running.remove(&op.region_id) {
            old.end(OpStatus::Replaced, now_ms);
            self.retire(old);
        }
        op.id = self.next_id;
        self.next_id += 1;
        op.created_ms = now_ms;
        op.timeout_ms =
            u64::try_from(cfg.operator_timeout(op.kind).as_millis()).unwrap_or(u64::MAX);
        self.counters_mut(op.kind).created += 1;
        let id = op.id;
        self.running.insert(op.region_id, op);
        Ok(id)
    }

    fn admit(
        &self,
        op: &Operator,
        view: &ClusterView,
        cfg: &ScheduleConfig,
    ) -> Result<(), AddError> {
        if !op.is_running() || op.remaining_steps().is_empty() {
            return Err(AddError::Invalid);
        }
        let region = view
            .region(op.region_id)
            .ok_or(AddError::RegionNotFound(op.region_id))?;
        if region.epoch != op.region_epoch {
            return Err(AddError::StaleEpoch {
                built: op.region_epoch,
                current: region.epoch,
            });
        }
        let existing = self.running.get(&op.region_id);
        if let Some(old) = existing {
            if old.kind.priority() >= op.kind.priority() {
                return Err(AddError::RegionBusy(old.kind));
            }
        }
        if let Some(limit) = cfg.kind_limit(op.kind) {
            if self.running_count(op.kind) >= limit {
                return Err(AddError::KindLimit {
                    kind: op.kind,
                    limit,
                });
            }
        }
        let mut influence = self.influence_except(view, op.region_id);
        add_influence(op, region, &mut influence);
        for step in op.remaining_steps() {
            if let OpStep::AddLearner { store_id, .. } = step {
                let snapshots = influence.get(store_id).map_or(0, |i| i.snapshots);
                if snapshots > cfg.max_snapshot_count {
                    let limit = cfg.max_snapshot_count;
                    return Err(AddError::SnapshotLimit {
                        store_id: *store_id,
                        limit,
                    });
                }
            }
        }
        Ok(())
    }

    /// Pending effect of the running operators on each store.
    pub fn influence(&self, view: &ClusterView) -> BTreeMap<u64, StoreInfluence> {
        self.influence_except(view, 0)
    }

    fn influence_except(
        &self,
        view: &ClusterView,
        skip_region: u64,
    ) -> BTreeMap<u64, StoreInfluence> {
        let mut influence = BTreeMap::new();
        for op in self
            .running
            .values()
            .filter(|op| op.region_id != skip_region)
        {
            if let Some(region) = view.region(op.region_id) {
                add_influence(op, region, &mut influence);
            }
        }
        influence
    }

    /// Call on every region heartbeat: advances the region's operator and
    /// returns the step to put in the heartbeat response, if any.
    pub fn dispatch(&mut self, region: &RegionView, now_ms: u64) -> Option<OpStep> {
        let op = self.running.get_mut(&region.id)?;
        let step = op.check(region, now_ms);
        if !op.is_running() {
            self.take_and_retire(region.id);
        }
        step
    }

    /// Times out operators whose regions stopped heartbeating; returns
    /// their region ids.
    pub fn check_timeouts(&mut self, now_ms: u64) -> Vec<u64> {
        let expired: Vec<u64> = self
            .running
            .iter_mut()
            .filter_map(|(id, op)| op.check_timeout(now_ms).then_some(*id))
            .collect();
        for region_id in &expired {
            self.take_and_retire(*region_id);
        }
        expired
    }

    /// Cancels the region's operator (API request, region gone); returns it.
    pub fn cancel(&mut self, region_id: u64, reason: &str, now_ms: u64) -> Option<Operator> {
        let mut op = self.running.remove(&region_id)?;
        op.end(OpStatus::Cancelled(reason.into()), now_ms);
        self.retire(op.clone());
        Some(op)
    }

    /// The region's running operator.
    pub fn get(&self, region_id: u64) -> Option<&Operator> {
        self.running.get(&region_id)
    }

    /// Running operators, by region id.
    pub fn operators(&self) -> impl Iterator<Item = &Operator> {
        self.running.values()
    }

    /// Number of running operators of `kind`.
    pub fn running_count(&self, kind: OpKind) -> u64 {
        self.running.values().filter(|op| op.kind == kind).count() as u64
    }

    /// Life-cycle counters by kind.
    pub fn counters(&self) -> &BTreeMap<OpKind, KindCounters> {
        &self.counters
    }

    /// Recently stopped operators, oldest first.
    pub fn history(&self) -> impl DoubleEndedIterator<Item = &Operator> {
        self.history.iter()
    }

    fn counters_mut(&mut self, kind: OpKind) -> &mut KindCounters {
        self.counters.entry(kind).or_default()
    }

    fn take_and_retire(&mut self, region_id: u64) {
        if let Some(op) = self.running.remove(&region_id) {
            self.retire(op);
        }
    }

    fn retire(&mut self, op: Operator) {
        let counters = self.counters_mut(op.kind);
        match op.status {
            OpStatus::Running => debug_assert!(false, "retiring a running operator"),
            OpStatus::Finished => counters.finished += 1,
            OpStatus::Cancelled(_) => counters.cancelled += 1,
            OpStatus::TimedOut => counters.timed_out += 1,
            OpStatus::Replaced => counters.replaced += 1,
        }
        if self.history_limit == 0 {
            return;
        }
        if self.history.len() >= self.history_limit {
            self.history.pop_front();
        }
        self.history.push_back(op);
    }
}
