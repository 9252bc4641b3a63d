//! The store's conversation with PD: bootstrapping the cluster's first
//! region, and heartbeats — the store's every `store-interval`, and its
//! led regions batched into one stream message, at once when leadership
//! changed and every `region-interval` otherwise.
//!
//! **Bootstrap without a single-replica window.** PD's `Bootstrap` answers
//! `NOT_ENOUGH_STORES` until `max-replicas` stores registered, then creates
//! the first region with a voter on each of them (chosen by PD, once,
//! first writer wins) and returns that same region to every caller. Each
//! store polls it; a store named in the region writes the region's initial
//! state — every founding peer starts from the same membership at
//! [`INIT_INDEX`](crate::peer::storage::INIT_INDEX) — and starts its peer.
//! No peer ever runs with fewer voters than `max-replicas`, so no write is
//! ever acknowledged by one replica alone. A store with any state for that
//! region (say, a tombstone) never recreates it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use flotilla_client::pd::{PdClient, PdError};
use flotilla_proto::{metapb, pdpb};
use rocksdb::WriteBatch;
use tokio::sync::watch;

use super::pd_tasks;
use crate::driver::context::StoreContext;
use crate::driver::handler::PeerRouter;
use crate::driver::system::CreatePeerError;
use crate::driver::system::RaftSystem;
use crate::engine::local;
use crate::peer::msg::PeerMsg;
use crate::peer::storage::{write_initial_state, PeerStorage};

/// How often a store waiting for bootstrap asks again.
const BOOTSTRAP_RETRY: Duration = Duration::from_millis(500);
/// How often changed regions are looked for.
const CHANGE_CHECK: Duration = Duration::from_millis(100);

/// Polls PD until the cluster is bootstrapped, creating this store's peer
/// of the first region if PD placed one here.
pub async fn bootstrap(
    pd: &PdClient,
    system: &RaftSystem,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), PdError> {
    let store = system.store().clone();
    if !local::region_states(&store.engine)
        .map_err(|e| PdError::Transport(e.to_string()))?
        .is_empty()
    {
        return Ok(());
    }
    loop {
        match pd.bootstrap(store.store_id).await {
            Ok((region, _)) => {
                create_first_region(system, &store, region);
                return Ok(());
            }
            Err(e) if e.is_retryable() => {
                tracing::debug!(error = %e, "cluster not bootstrapped yet");
            }
            Err(e) => return Err(e),
        }
        tokio::select! {
            _ = tokio::time::sleep(BOOTSTRAP_RETRY) => {}
            _ = shutdown.changed() => return Ok(()),
        }
    }
}

fn create_first_region(system: &RaftSystem, store: &StoreContext, region: metapb::Region) {
    let Some(me) = region
        .peers
        .iter()
        .find(|p| p.store_id == store.store_id)
        .cloned()
    else {
        tracing::info!(
            region = region.id,
            "cluster bootstrapped without a peer here"
        );
        return;
    };
    match PeerStorage::load(store.engine.clone(), region.id) {
        Ok(None) => {}
        Ok(Some(_)) => return,
        Err(e) => {
            tracing::error!(error = %e, "reading the first region's state");
            return;
        }
    }
    let mut wb = WriteBatch::default();
    write_initial_state(&mut wb, &store.engine, &region);
    if let Err(e) = store.engine.write(wb, true) {
        tracing::error!(error = %e, "writing the first region's state");
        return;
    }
    let started = PeerStorage::load(store.engine.clone(), region.id)
        .ok()
        .flatten()
        .map(|storage| system.create_peer(me, storage));
    match started {
        Some(Ok(())) => tracing::info!(region = region.id, "first region started"),
        Some(Err(CreatePeerError::Exists(_))) => {
            // Its leader's first message got here first and created the
            // peer uninitialized: it reloads itself from what was written.
            let _ = system.router().send(region.id, PeerMsg::InitFromSplit);
            tracing::info!(
                region = region.id,
                "first region's waiting peer initialized"
            );
        }
        other => tracing::error!(region = region.id, ?other, "first region did not start"),
    }
}

/// Sends store and region heartbeats until shutdown, and hands the
/// operator steps PD answers with to the regions' leaders.
pub async fn heartbeats(
    pd: PdClient,
    store: Arc<StoreContext>,
    router: Arc<PeerRouter>,
    mut shutdown: watch::Receiver<bool>,
) {
    let (sender, responses) = pd.region_heartbeat_stream(store.store_id);
    let commands = tokio::spawn(pd_tasks::follow_commands(responses, router));
    let cfg = store.cfg.heartbeat.clone();
    let mut store_tick = tokio::time::interval(cfg.store_interval);
    let mut region_tick = tokio::time::interval(cfg.region_interval);
    let mut change_tick = tokio::time::interval(CHANGE_CHECK);
    loop {
        tokio::select! {
            _ = shutdown.changed() => {
                commands.abort();
                return;
            }
            _ = store_tick.tick() => {
                if let Err(e) = pd.store_heartbeat(store_stats(&store)).await {
                    tracing::debug!(error = %e, "store heartbeat failed");
                }
            }
            _ = region_tick.tick() => {
                let all = led_regions(&store, None);
                send_regions(&sender, all);
            }
            _ = change_tick.tick() => {
                let changed: HashSet<u64> = std::mem::take(&mut *store.changed.lock())
                    .into_iter()
                    .collect();
                if !changed.is_empty() {
                    send_regions(&sender, led_regions(&store, Some(&changed)));
                }
            }
        }
    }
}

fn send_regions(
    sender: &flotilla_client::pd::RegionHeartbeatSender,
    regions: Vec<pdpb::RegionHeartbeat>,
) {
    if regions.is_empty() {
        return;
    }
    if sender.try_send(regions).is_err() {
        tracing::debug!("region heartbeat queue full; the next round resends");
    }
}

/// Heartbeats of the regions this store leads (only `only`, if given).
fn led_regions(store: &StoreContext, only: Option<&HashSet<u64>>) -> Vec<pdpb::RegionHeartbeat> {
    store
        .regions
        .read()
        .values()
        .filter(|m| m.is_leader)
        .filter(|m| only.is_none_or(|ids| ids.contains(&m.region.id)))
        .map(|m| pdpb::RegionHeartbeat {
            region: Some(m.region.clone()),
            leader: Some(m.peer),
            term: m.term,
            approximate_size: m.approximate_size,
            approximate_keys: m.approximate_keys,
            pending_peers: m.pending_peers.clone(),
            ..Default::default()
        })
        .collect()
}

fn store_stats(store: &StoreContext) -> pdpb::StoreStats {
    let regions = store.regions.read();
    let used_size = store
        .engine
        .db()
        .property_int_value("rocksdb.total-sst-files-size")
        .ok()
        .flatten()
        .unwrap_or(0);
    pdpb::StoreStats {
        store_id: store.store_id,
        used_size,
        region_count: regions.len() as u32,
        leader_count: regions.values().filter(|m| m.is_leader).count() as u32,
        is_busy: store.apply_pool.is_busy(),
        ..Default::default()
    }
}
