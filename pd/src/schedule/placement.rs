//! Label-aware replica placement.
//!
//! Stores carry location labels (`zone`, `rack`, `host`, ...), and
//! `location-labels` lists them from the widest failure domain to the
//! narrowest. The *distinct score* of a store against a region's other
//! replicas (PD's `DistinctScore`) adds, for every other replica,
//! `100^(levels-1-i)` where `i` is the first label level at which the two
//! stores differ, and nothing if they share every label. So one replica in
//! another zone outweighs any number in other hosts of the same zone: the
//! checkers spread replicas across the widest domain first, and two replicas
//! share the narrowest domain only when nothing else is possible.

use std::cmp::Reverse;

use super::context::ScheduleContext;
use super::view::{PeerView, RegionView, StoreState, StoreView};

/// Weight base between two label levels; larger than any replica count so
/// one level always dominates the next.
const LEVEL_WEIGHT: u64 = 100;

/// How isolated `candidate` is from `others` under `labels` (higher = more
/// isolated). `candidate` itself is skipped if it appears in `others`.
pub fn distinct_score(labels: &[String], others: &[&StoreView], candidate: &StoreView) -> u64 {
    let levels = labels.len();
    others
        .iter()
        .filter(|other| other.id != candidate.id)
        .map(|other| {
            match labels
                .iter()
                .position(|l| other.label(l) != candidate.label(l))
            {
                Some(level) => LEVEL_WEIGHT.saturating_pow((levels - level - 1) as u32),
                None => 0,
            }
        })
        .fold(0, u64::saturating_add)
}

/// Stores of the region's replicas other than the one on `except`.
fn other_stores<'v>(
    ctx: &ScheduleContext<'v>,
    region: &RegionView,
    except: u64,
) -> Vec<&'v StoreView> {
    region
        .peers
        .iter()
        .filter(|p| p.store_id != except)
        .filter_map(|p| ctx.view.store(p.store_id))
        .collect()
}

/// The distinct score of the replica on `store_id` against the region's
/// other replicas.
pub fn replica_score(ctx: &ScheduleContext<'_>, region: &RegionView, store_id: u64) -> u64 {
    let Some(store) = ctx.view.store(store_id) else {
        return 0;
    };
    distinct_score(
        &ctx.cfg.location_labels,
        &other_stores(ctx, region, store_id),
        store,
    )
}

/// Whether `store` may receive a new replica at all: Up, not short of
/// disk, and not already receiving `max-snapshot-count` snapshots.
pub fn can_receive(ctx: &ScheduleContext<'_>, store: &StoreView) -> bool {
    store.state == StoreState::Up
        && !store.is_low_space(ctx.cfg.low_space_ratio)
        && ctx.snapshot_room(store.id)
}

/// The best store for a new replica of `region`, optionally replacing the
/// one on `replacing`: most isolated from the replicas that stay, then the
/// least data, fewest regions, most free space, lowest id.
pub fn best_store_to_add(
    ctx: &ScheduleContext<'_>,
    region: &RegionView,
    replacing: Option<u64>,
) -> Option<u64> {
    let others = other_stores(ctx, region, replacing.unwrap_or(0));
    let labels = &ctx.cfg.location_labels;
    ctx.view
        .stores
        .values()
        .filter(|s| region.peer_on_store(s.id).is_none() && can_receive(ctx, s))
        .min_by_key(|s| {
            (
                Reverse(distinct_score(labels, &others, s)),
                ctx.region_size(s),
                ctx.region_count(s),
                Reverse(s.available_bytes),
                s.id,
            )
        })
        .map(|s| s.id)
}

/// The voter to drop when a region has too many: one that is unreachable
/// or lagging first, then the least isolated, preferring a non-leader (no
/// transfer needed), then the store with the most data.
pub fn worst_peer_to_remove(ctx: &ScheduleContext<'_>, region: &RegionView) -> Option<PeerView> {
    region
        .voters()
        .min_by_key(|p| {
            let healthy = ctx.view.store_state(p.store_id) == StoreState::Up
                && !region.is_down(p.id)
                && !region.is_pending(p.id);
            let size = ctx.view.store(p.store_id).map_or(0, |s| ctx.region_size(s));
            (
                healthy,
                replica_score(ctx, region, p.store_id),
                region.leader == Some(p.id),
                Reverse(size),
                Reverse(p.store_id),
            )
        })
        .copied()
}

/// Whether moving the replica on `source` to `target` keeps the region at
/// least as isolated (balance moves must never trade safety for space).
pub fn keeps_isolation(
    ctx: &ScheduleContext<'_>,
    region: &RegionView,
    source: u64,
    target: u64,
) -> bool {
    let (Some(src), Some(tgt)) = (ctx.view.store(source), ctx.view.store(target)) else {
        return false;
    };
    let others = other_stores(ctx, region, source);
    let labels = &ctx.cfg.location_labels;
    distinct_score(labels, &others, tgt) >= distinct_score(labels, &others, src)
}

/// A move that strictly improves isolation: the least isolated voter and a
/// store that would be more isolated in its place. Each such move raises
/// the sum of pairwise scores, so repeated moves terminate.
pub fn better_location(ctx: &ScheduleContext<'_>, region: &RegionView) -> Option<(u64, u64)> {
    if ctx.cfg.location_labels.is_empty() {
        return None;
    }
    let worst = region
        .voters()
        .map(|p| (replica_score(ctx, region, p.store_id), Reverse(p.store_id)))
        .min()?;
    let (worst_score, Reverse(worst_store)) = worst;
    let target = best_store_to_add(ctx, region, Some(worst_store))?;
    let others = other_stores(ctx, region, worst_store);
    let target_store = ctx.view.store(target)?;
    let target_score = distinct_score(&ctx.cfg.location_labels, &others, target_store);
    (target_score > worst_score).then_some((worst_store, target))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::config::ScheduleConfig;
    use crate::schedule::mock::MockCluster;

    fn labels() -> Vec<String> {
        vec!["zone".into(), "host".into()]
    }

    fn cluster() -> MockCluster {
        let mut c = MockCluster::new();
        c.add_store_with_labels(1, &[("zone", "z1"), ("host", "h1")]);
        c.add_store_with_labels(2, &[("zone", "z1"), ("host", "h2")]);
        c.add_store_with_labels(3, &[("zone", "z2"), ("host", "h1")]);
        c.add_store_with_labels(4, &[("zone", "z3"), ("host", "h1")]);
        c.add_store_with_labels(5, &[("zone", "z1"), ("host", "h1")]);
        c
    }

    #[test]
    fn distinct_score_weighs_zones_over_hosts() {
        let c = cluster();
        let s = |id| &c.view().stores[&id];
        let others = [s(1), s(3)];
        // Same zone as 1, other host (1) + other zone than 3 (100).
        assert_eq!(distinct_score(&labels(), &others, s(2)), 101);
        assert_eq!(distinct_score(&labels(), &others, s(4)), 200);
        // Identical labels to store 1 score nothing against it.
        assert_eq!(distinct_score(&labels(), &others, s(5)), 100);
        assert_eq!(distinct_score(&[], &others, s(4)), 0);
    }

    #[test]
    fn best_store_prefers_isolation_then_emptiness() {
        let mut c = cluster();
        c.add_region(1, b"", b"", &[1, 3], 1);
        let cfg = ScheduleConfig {
            location_labels: labels(),
            ..Default::default()
        };
        let ctx = ScheduleContext::idle(c.view(), &cfg, 0);
        let region = c.region(1);
        assert_eq!(best_store_to_add(&ctx, &region, None), Some(4));
        // Replacing the replica on 3 leaves only zone z1 taken: z3 and z4
        // tie on isolation and the emptier store (6) wins.
        c.add_store_with_labels(6, &[("zone", "z4"), ("host", "h1")]);
        c.add_region(2, b"", b"", &[4], 4);
        let ctx = ScheduleContext::idle(c.view(), &cfg, 0);
        assert_eq!(best_store_to_add(&ctx, &region, Some(3)), Some(6));
        let no_labels = ScheduleConfig::default();
        let ctx = ScheduleContext::idle(c.view(), &no_labels, 0);
        assert_eq!(best_store_to_add(&ctx, &region, None), Some(2));
    }

    #[test]
    fn worst_peer_is_unhealthy_then_least_isolated() {
        let mut c = cluster();
        c.add_region(1, b"", b"", &[1, 2, 3, 4], 1);
        let cfg = ScheduleConfig {
            location_labels: labels(),
            ..Default::default()
        };
        let ctx = ScheduleContext::idle(c.view(), &cfg, 0);
        let region = c.region(1);
        // 1 and 2 share zone z1; 1 leads, so 2 goes.
        assert_eq!(
            worst_peer_to_remove(&ctx, &region).map(|p| p.store_id),
            Some(2)
        );
        c.set_store_state(4, StoreState::Disconnected);
        let ctx = ScheduleContext::idle(c.view(), &cfg, 0);
        assert_eq!(
            worst_peer_to_remove(&ctx, &region).map(|p| p.store_id),
            Some(4)
        );
    }

    #[test]
    fn better_location_only_when_strictly_better() {
        let mut c = cluster();
        c.add_region(1, b"", b"", &[1, 2, 3], 1);
        let cfg = ScheduleConfig {
            location_labels: labels(),
            ..Default::default()
        };
        let ctx = ScheduleContext::idle(c.view(), &cfg, 0);
        assert_eq!(better_location(&ctx, &c.region(1)), Some((2, 4)));
        assert!(!keeps_isolation(&ctx, &c.region(1), 3, 5));
        assert!(keeps_isolation(&ctx, &c.region(1), 2, 4));
        c.add_region(2, b"", b"", &[1, 3, 4], 1);
        let ctx = ScheduleContext::idle(c.view(), &cfg, 0);
        assert_eq!(better_location(&ctx, &c.region(2)), None);
    }
}
