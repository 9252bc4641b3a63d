//! The one store-wide ticker thread. Every tick it schedules the regions
//! that do not hibernate (each catches up on the ticks it missed when it
//! is handled); every heartbeat interval it probes the stores this store
//! shares regions with; and when a store goes silent for an election
//! timeout it wakes the hibernating followers whose leader is there.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

use super::context::StoreContext;
use super::handler::PeerRouter;
use super::liveness::probe;
use crate::peer::msg::PeerMsg;
use crate::transport::Transport;

/// Ticks until `stop` is set.
pub fn run(
    store: &StoreContext,
    router: &PeerRouter,
    transport: &dyn Transport,
    stop: &AtomicBool,
) {
    let cfg = &store.cfg.raft;
    let timeout = cfg.election_ticks as u64;
    let probe_every = cfg.heartbeat_ticks as u64;
    let mut silent = HashSet::new();
    let mut ticks: u64 = 0;
    while !stop.load(Ordering::Acquire) {
        std::thread::sleep(cfg.tick_interval);
        ticks += 1;
        let hibernating = router.schedule_ticking();
        store.metrics.hibernated.set(hibernating as i64);
        let now = store.current_tick();
        if ticks % probe_every == 0 {
            probe_peer_stores(store, transport, now);
        }
        let now_silent = store.liveness.unreachable(now, timeout);
        store
            .metrics
            .unreachable_stores
            .set(now_silent.len() as i64);
        // Newly silent stores at once; all of them again every timeout
        // (a follower may have fallen asleep just before).
        let wake: HashSet<u64> = if ticks % timeout == 0 {
            now_silent.clone()
        } else {
            now_silent.difference(&silent).copied().collect()
        };
        if !wake.is_empty() {
            wake_dependents_of(store, router, &wake);
        }
        let back: HashSet<u64> = silent.difference(&now_silent).copied().collect();
        if !back.is_empty() {
            wake_leaders_with_peers_on(store, router, &back);
        }
        silent = now_silent;
    }
}

/// Sends a liveness probe to every store this one shares a region with.
fn probe_peer_stores(store: &StoreContext, transport: &dyn Transport, now: u64) {
    let stores: HashSet<u64> = store
        .regions
        .read()
        .values()
        .flat_map(|m| m.region.peers.iter().map(|p| p.store_id))
        .filter(|&s| s != 0 && s != store.store_id)
        .collect();
    store.liveness.watch(&stores, now);
    for to in stores {
        transport.send(to, vec![probe(store.store_id, to)]);
    }
}

/// Wakes the hibernating leaders with a peer on one of the `stores` that
/// answer again. Such a leader went to sleep leaving that peer behind
/// (`hibernate_despite`); awake, it heartbeats the peer and catches it up.
/// The peer cannot ask by itself when it does not exist yet: a region
/// split off while its store was away is created there only by a message
/// from the new region's leader.
fn wake_leaders_with_peers_on(store: &StoreContext, router: &PeerRouter, stores: &HashSet<u64>) {
    let leaders: Vec<u64> = store
        .regions
        .read()
        .values()
        .filter(|m| m.is_leader && m.region.peers.iter().any(|p| stores.contains(&p.store_id)))
        .map(|m| m.region.id)
        .collect();
    let woken = wake(router, leaders);
    if woken > 0 {
        tracing::info!(
            ?stores,
            regions = woken,
            "stores answer again: woke the leaders that left peers there"
        );
    }
}

/// Sends `PeersUnheard` to each of `regions` that hibernates; returns how
/// many it woke.
fn wake(router: &PeerRouter, regions: Vec<u64>) -> usize {
    regions
        .into_iter()
        .filter(|&id| router.is_hibernating(id) && router.send(id, PeerMsg::PeersUnheard).is_ok())
        .count()
}

/// Wakes the hibernating followers whose leader is on one of the silent
/// `stores`, and the hibernating leaders that lost a quorum to them.
fn wake_dependents_of(store: &StoreContext, router: &PeerRouter, stores: &HashSet<u64>) {
    let orphans: Vec<u64> = store
        .regions
        .read()
        .values()
        .filter(|m| {
            if m.is_leader {
                super::liveness::lost_quorum(&m.region, stores)
            } else {
                m.leader.is_some_and(|l| stores.contains(&l.store_id))
            }
        })
        .map(|m| m.region.id)
        .collect();
    let woken = wake(router, orphans);
    if woken > 0 {
        tracing::info!(
            ?stores,
            regions = woken,
            "stores unreachable: woke the regions that depend on them"
        );
    }
}
