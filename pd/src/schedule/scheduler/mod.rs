//! Schedulers: compare stores and propose operators that even them out.
//!
//! A scheduler is a deterministic function of the pass context (and its own
//! small state, such as where it stopped scanning last time): it iterates
//! stores and regions in id order and draws no random numbers, so the same
//! view always yields the same operators.

mod balance_leader;
mod balance_region;
mod registry;

use std::collections::BTreeMap;
use std::fmt;

pub use self::balance_leader::BalanceLeader;
pub use self::balance_region::BalanceRegion;
pub use self::registry::{RegistryError, RunReport, SchedulerRegistry, SchedulerStatus};
use super::context::ScheduleContext;
use super::operator::Operator;
use super::view::{RegionView, StoreState};
use super::IdSource;

/// Names [`SchedulerRegistry::add`] knows.
pub const KNOWN_SCHEDULERS: [&str; 2] = [BalanceLeader::NAME, BalanceRegion::NAME];

/// Builds a scheduler by its name.
pub fn create_scheduler(name: &str) -> Option<Box<dyn Scheduler>> {
    match name {
        BalanceLeader::NAME => Some(Box::new(BalanceLeader::default())),
        BalanceRegion::NAME => Some(Box::new(BalanceRegion::default())),
        _ => None,
    }
}

/// A balance policy.
///
/// An implementation must be deterministic given the context, `ids` and
/// its own state; must propose at most one operator per region, none for a
/// region [`ScheduleContext::busy_kind`] reports busy, and no more of a kind
/// than [`ScheduleContext::room`] allows; and must
/// [`claim`](ScheduleContext::claim) every operator it returns, so its later
/// picks in the same pass see the earlier ones.
pub trait Scheduler: Send + Sync + fmt::Debug {
    /// Registry name, e.g. `"balance-leader"`.
    fn name(&self) -> &str;

    /// Proposes operators for this pass.
    fn schedule(&mut self, ctx: &mut ScheduleContext<'_>, ids: &mut dyn IdSource) -> Vec<Operator>;
}

/// Whether a balance move may touch `region`: a stable configuration of
/// exactly `max-replicas` caught-up voters on Up stores, a leader, and no
/// operator. Anything else is the checkers' business first.
pub(crate) fn is_balanceable(ctx: &ScheduleContext<'_>, region: &RegionView) -> bool {
    region.leader_peer().is_some()
        && region.is_healthy()
        && !region.is_joint()
        && region.peers.len() == ctx.cfg.max_replicas
        && region.voters().count() == ctx.cfg.max_replicas
        && ctx.busy_kind(region.id).is_none()
        && region
            .peers
            .iter()
            .all(|p| ctx.view.store_state(p.store_id) == StoreState::Up)
}

/// Most regions of one source store a scheduler examines per pick. A store
/// whose regions are all blocked (busy, unhealthy, isolation) costs a
/// bounded scan, and the next pick resumes where this one stopped.
pub(crate) const MAX_REGIONS_SCANNED: usize = 512;

/// Per-store scan positions, so successive picks and passes spread over a
/// store's regions instead of retrying the same low ids.
#[derive(Clone, Debug, Default)]
pub(crate) struct Cursors {
    last_seen: BTreeMap<u64, u64>,
}

impl Cursors {
    /// Scans up to [`MAX_REGIONS_SCANNED`] of `regions` (sorted by id)
    /// after the store's cursor, wrapping around, and returns the first
    /// `try_region` accepts. The cursor stops at the last region examined.
    pub(crate) fn scan<'v, T>(
        &mut self,
        store_id: u64,
        regions: &[&'v RegionView],
        mut try_region: impl FnMut(&'v RegionView) -> Option<T>,
    ) -> Option<T> {
        let cursor = self.last_seen.get(&store_id).copied().unwrap_or(0);
        let split = regions.partition_point(|r| r.id <= cursor);
        let rotated = regions[split..].iter().chain(regions[..split].iter());
        for region in rotated.take(MAX_REGIONS_SCANNED) {
            self.last_seen.insert(store_id, region.id);
            if let Some(found) = try_region(region) {
                return Some(found);
            }
        }
        None
    }
}
