//! balance-region: even out how much data each store holds.
//!
//! A move takes one replica from the store holding the most region size to
//! the one holding the least, while they differ by more than
//! `tolerant-size-ratio` average regions. A move of a region of size `s`
//! must also leave the source at least as large as the target
//! (`source - s >= target + s`), so every move strictly lowers the spread
//! and a balanced cluster stays put. The target must keep the region at
//! least as isolated across failure domains as the source did.

use std::collections::BTreeMap;

use super::{is_balanceable, Cursors, Scheduler};
use crate::schedule::context::ScheduleContext;
use crate::schedule::operator::{OpKind, Operator};
use crate::schedule::placement::{can_receive, keeps_isolation};
use crate::schedule::view::RegionView;
use crate::schedule::IdSource;

/// The balance-region scheduler.
#[derive(Clone, Debug, Default)]
pub struct BalanceRegion {
    /// Where the next scan of each store's regions starts.
    cursors: Cursors,
}

impl BalanceRegion {
    /// Registry name.
    pub const NAME: &'static str = "balance-region";
}

/// What one pass computes once for all its picks: the regions on each
/// store, and the size difference (bytes) below which stores count as even.
struct Pass<'v> {
    by_store: BTreeMap<u64, Vec<&'v RegionView>>,
    tolerance: i64,
}

impl Scheduler for BalanceRegion {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn schedule(&mut self, ctx: &mut ScheduleContext<'_>, ids: &mut dyn IdSource) -> Vec<Operator> {
        let budget = ctx.room(OpKind::Region).min(ctx.cfg.scheduler_batch_size);
        let tolerance = (ctx.cfg.tolerant_size_ratio * average_region_size(ctx)) as i64;
        // Listing every store's regions is O(regions), done under the
        // cluster lock that routing waits on (tens of milliseconds at
        // 100,000 regions): skip it when no move can come of it.
        if budget == 0 || !spread_exceeds(ctx, tolerance) {
            return Vec::new();
        }
        let view = ctx.view;
        let mut by_store: BTreeMap<u64, Vec<&RegionView>> = BTreeMap::new();
        for region in view.regions.values() {
            for peer in &region.peers {
                by_store.entry(peer.store_id).or_default().push(region);
            }
        }
        let pass = Pass {
            by_store,
            tolerance,
        };
        let mut ops = Vec::new();
        while (ops.len() as u64) < budget {
            let Some(op) = self.pick(ctx, &pass, ids) else {
                break;
            };
            ctx.claim(&op);
            ops.push(op);
        }
        ops
    }
}

impl BalanceRegion {
    /// One move from the largest store that has a movable region.
    fn pick(
        &mut self,
        ctx: &ScheduleContext<'_>,
        pass: &Pass<'_>,
        ids: &mut dyn IdSource,
    ) -> Option<Operator> {
        let mut sources: Vec<(i64, u64)> = ctx
            .view
            .up_stores()
            .map(|s| (ctx.region_size(s), s.id))
            .collect();
        sources.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut targets: Vec<(i64, u64)> = ctx
            .view
            .up_stores()
            .filter(|s| can_receive(ctx, s))
            .map(|s| (ctx.region_size(s), s.id))
            .collect();
        targets.sort();
        let &(min_target, _) = targets.first()?;
        for &(source_size, source) in &sources {
            if source_size - min_target <= pass.tolerance {
                break;
            }
            let regions = pass.by_store.get(&source).map_or(&[][..], Vec::as_slice);
            let found = self.cursors.scan(source, regions, |region| {
                if !is_balanceable(ctx, region) {
                    return None;
                }
                pick_target(ctx, region, source, source_size, &targets, pass.tolerance)
                    .map(|target| (region, target))
            });
            if let Some((region, target)) = found {
                let peer_id = ids.next_id()?;
                let kind = OpKind::Region;
                return Operator::move_peer(region, source, target, peer_id, kind, Self::NAME).ok();
            }
        }
        None
    }
}

/// Whether the fullest Up store is more than `tolerance` above the
/// emptiest one that may receive: the first condition of any move
/// [`BalanceRegion::pick`] makes.
fn spread_exceeds(ctx: &ScheduleContext<'_>, tolerance: i64) -> bool {
    let fullest = ctx.view.up_stores().map(|s| ctx.region_size(s)).max();
    let emptiest = ctx
        .view
        .up_stores()
        .filter(|s| can_receive(ctx, s))
        .map(|s| ctx.region_size(s))
        .min();
    match (fullest, emptiest) {
        (Some(f), Some(e)) => f.saturating_sub(e) > tolerance,
        _ => false,
    }
}

/// The smallest target (ascending `targets`) that may take the region's
/// replica from `source`.
fn pick_target(
    ctx: &ScheduleContext<'_>,
    region: &RegionView,
    source: u64,
    source_size: i64,
    targets: &[(i64, u64)],
    tolerance: i64,
) -> Option<u64> {
    let size = i64::try_from(region.effective_size_bytes()).unwrap_or(i64::MAX);
    for &(target_size, target) in targets {
        let gap = source_size - target_size;
        if gap <= tolerance || gap < size.saturating_mul(2) {
            return None;
        }
        if region.peer_on_store(target).is_none() && keeps_isolation(ctx, region, source, target) {
            return Some(target);
        }
    }
    None
}

/// Mean effective size of a replica over all stores.
fn average_region_size(ctx: &ScheduleContext<'_>) -> f64 {
    let (size, count) = ctx
        .view
        .stores
        .values()
        .fold((0u128, 0u128), |(size, n), s| {
            (
                size + u128::from(s.region_size_bytes),
                n + u128::from(s.region_count),
            )
        });
    if count == 0 {
        0.0
    } else {
        size as f64 / count as f64
    }
}
