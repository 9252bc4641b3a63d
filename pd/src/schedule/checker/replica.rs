//! Replica checker: the right number of voters, on live stores, spread
//! over failure domains (PD's `ReplicaChecker`).
//!
//! Priorities, most urgent first: replace a replica on a lost store (Down or
//! Tombstone: redundancy is already gone), replace one on a decommissioned
//! store (Offline), add a missing voter, remove an extra one, and finally
//! move a replica where it would be strictly better isolated. A replica on
//! a merely Disconnected store is left alone: it is probably a blip, and
//! replacing it would cost a snapshot.

use crate::schedule::context::ScheduleContext;
use crate::schedule::operator::{OpKind, Operator};
use crate::schedule::placement::{best_store_to_add, better_location, worst_peer_to_remove};
use crate::schedule::view::{PeerRole, PeerView, RegionView, StoreState};
use crate::schedule::IdSource;

/// The repair `region` needs, if any (the region is not joint and has a
/// leader; the joint/learner checker ran first).
pub(super) fn check(
    ctx: &ScheduleContext<'_>,
    region: &RegionView,
    ids: &mut dyn IdSource,
) -> Option<Operator> {
    if region.is_joint() {
        return None;
    }
    let state = |p: &PeerView| ctx.view.store_state(p.store_id);
    if let Some(peer) = region.peers.iter().find(|p| state(p).is_lost()) {
        return replace_or_remove(
            ctx,
            region,
            peer,
            ids,
            ["replace-down-peer", "remove-down-peer"],
        );
    }
    if let Some(peer) = region
        .peers
        .iter()
        .find(|p| state(p) == StoreState::Offline)
    {
        let descs = ["replace-offline-peer", "remove-offline-peer"];
        return replace_or_remove(ctx, region, peer, ids, descs);
    }
    let voters = region.voters().count();
    if voters < ctx.cfg.max_replicas {
        let store = best_store_to_add(ctx, region, None)?;
        let peer_id = ids.next_id()?;
        return Operator::add_peer(region, store, peer_id, OpKind::Replica, "add-replica").ok();
    }
    if voters > ctx.cfg.max_replicas {
        let worst = worst_peer_to_remove(ctx, region)?;
        let desc = "remove-extra-replica";
        return Operator::remove_peer(region, worst.store_id, OpKind::Replica, desc).ok();
    }
    let (old, new) = better_location(ctx, region)?;
    let peer_id = ids.next_id()?;
    Operator::move_peer(
        region,
        old,
        new,
        peer_id,
        OpKind::Replica,
        "move-to-better-location",
    )
    .ok()
}

/// Replaces `peer` by a new replica on the best store; removes it outright
/// if it is a learner or the region has voters to spare; waits if no store
/// can take it (removing it would only lower redundancy further).
fn replace_or_remove(
    ctx: &ScheduleContext<'_>,
    region: &RegionView,
    peer: &PeerView,
    ids: &mut dyn IdSource,
    [replace_desc, remove_desc]: [&str; 2],
) -> Option<Operator> {
    let spare = region.voters().count() > ctx.cfg.max_replicas;
    if peer.role != PeerRole::Voter || spare {
        return Operator::remove_peer(region, peer.store_id, OpKind::Replica, remove_desc).ok();
    }
    let target = best_store_to_add(ctx, region, Some(peer.store_id))?;
    let peer_id = ids.next_id()?;
    Operator::move_peer(
        region,
        peer.store_id,
        target,
        peer_id,
        OpKind::Replica,
        replace_desc,
    )
    .ok()
}
