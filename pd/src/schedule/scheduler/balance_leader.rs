//! balance-leader: even out how many regions each store leads.
//!
//! Leaders serve all reads and writes, so leader count is load. A move goes
//! from a store with more leaders to one of the region's other voters with
//! fewer, and only while the two differ by more than the tolerance
//! `max(1, leader-tolerance-ratio × mean)`. Each move lowers the source by
//! one and raises the target by one, so it needs a difference of at least
//! 2: a balanced cluster yields no operators, and leaders never flap.

use std::collections::BTreeMap;

use super::{is_balanceable, Cursors, Scheduler};
use crate::schedule::context::ScheduleContext;
use crate::schedule::operator::{OpKind, Operator};
use crate::schedule::view::{PeerRole, RegionView, StoreState};
use crate::schedule::IdSource;

/// The balance-leader scheduler.
#[derive(Clone, Debug, Default)]
pub struct BalanceLeader {
    /// Where the next scan of each store's regions starts.
    cursors: Cursors,
}

impl BalanceLeader {
    /// Registry name.
    pub const NAME: &'static str = "balance-leader";
}

impl Scheduler for BalanceLeader {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn schedule(
        &mut self,
        ctx: &mut ScheduleContext<'_>,
        _ids: &mut dyn IdSource,
    ) -> Vec<Operator> {
        let budget = ctx.room(OpKind::Leader).min(ctx.cfg.scheduler_batch_size);
        // Grouping every region by leader is O(regions), done under the
        // cluster lock that routing waits on: skip it when no transfer can
        // come of it.
        if budget == 0 || !leaders_uneven(ctx) {
            return Vec::new();
        }
        let view = ctx.view;
        let mut by_leader: BTreeMap<u64, Vec<&RegionView>> = BTreeMap::new();
        for region in view.regions.values() {
            if let Some(store) = region.leader_store() {
                by_leader.entry(store).or_default().push(region);
            }
        }
        let mut ops = Vec::new();
        while (ops.len() as u64) < budget {
            let Some(op) = self.pick(ctx, &by_leader) else {
                break;
            };
            ctx.claim(&op);
            ops.push(op);
        }
        ops
    }
}

impl BalanceLeader {
    /// One transfer from the most loaded store that has a movable region.
    fn pick(
        &mut self,
        ctx: &ScheduleContext<'_>,
        by_leader: &BTreeMap<u64, Vec<&RegionView>>,
    ) -> Option<Operator> {
        let counts: BTreeMap<u64, i64> = ctx
            .view
            .up_stores()
            .map(|s| (s.id, ctx.leader_count(s)))
            .collect();
        let min = *counts.values().min()?;
        let tolerance = leader_tolerance(ctx, &counts);
        let mut sources: Vec<(i64, u64)> = counts.iter().map(|(&id, &n)| (n, id)).collect();
        sources.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for (source_count, source) in sources {
            if source_count - min <= tolerance {
                break;
            }
            let regions = by_leader.get(&source).map_or(&[][..], Vec::as_slice);
            let below = source_count - tolerance;
            let found = self.cursors.scan(source, regions, |region| {
                if !is_balanceable(ctx, region) {
                    return None;
                }
                best_target(ctx, region, &counts, below).map(|target| (region, target))
            });
            if let Some((region, target)) = found {
                return Operator::transfer_leader(region, target, OpKind::Leader, Self::NAME).ok();
            }
        }
        None
    }
}

/// Whether the Up stores' leader counts differ by more than the
/// tolerance: the first condition of any transfer [`BalanceLeader::pick`]
/// makes.
fn leaders_uneven(ctx: &ScheduleContext<'_>) -> bool {
    let counts: BTreeMap<u64, i64> = ctx
        .view
        .up_stores()
        .map(|s| (s.id, ctx.leader_count(s)))
        .collect();
    let (Some(min), Some(max)) = (counts.values().min(), counts.values().max()) else {
        return false;
    };
    max - min > leader_tolerance(ctx, &counts)
}

/// `max(1, ratio × mean leaders per Up store)`, rounded up.
fn leader_tolerance(ctx: &ScheduleContext<'_>, counts: &BTreeMap<u64, i64>) -> i64 {
    let total: i64 = counts.values().sum();
    let mean = total as f64 / counts.len().max(1) as f64;
    ((ctx.cfg.leader_tolerance_ratio * mean).ceil() as i64).max(1)
}

/// The region's follower store with the fewest leaders, if that is below
/// `below` (source count minus tolerance).
fn best_target(
    ctx: &ScheduleContext<'_>,
    region: &RegionView,
    counts: &BTreeMap<u64, i64>,
    below: i64,
) -> Option<u64> {
    region
        .peers
        .iter()
        .filter(|p| p.role == PeerRole::Voter && region.leader != Some(p.id))
        .filter(|p| ctx.view.store_state(p.store_id) == StoreState::Up)
        .filter_map(|p| counts.get(&p.store_id).map(|&n| (n, p.store_id)))
        .filter(|&(n, _)| n < below)
        .min()
        .map(|(_, store)| store)
}
