//! Helpers for the membership tests: a cluster with data, PD operators
//! retried until PD takes them, decommissioning, and the checks that a
//! removed replica left nothing behind.

use std::time::Duration;

use flotilla_proto::metapb;
use flotilla_store::engine::keys::{hard_state_key, region_state_key};
use flotilla_store::engine::{CF_META, CF_RAFT};

use super::kv::on_store;
use super::{Cluster, LONG};

/// Keys [`three_stores_with_data`] writes.
pub const KEYS: usize = 200;

pub fn key(i: usize) -> Vec<u8> {
    format!("key{i:04}").into_bytes()
}

pub fn value(i: usize) -> Vec<u8> {
    format!("value-{i}").into_bytes()
}

/// Three stores with [`KEYS`] keys, PD's balance schedulers off: only its
/// replica checker and the test's operators move replicas.
pub async fn three_stores_with_data() -> Cluster {
    let cluster = Cluster::start(3).await;
    cluster.disable_balance().await;
    for i in 0..KEYS {
        cluster.put(&key(i), &value(i)).await;
    }
    cluster
}

/// The region as the store leading it publishes it.
pub fn led_region(cluster: &Cluster, id: u64) -> Option<metapb::Region> {
    cluster.leader_of(id).map(|(_, r, _)| r)
}

/// The stores of `region`'s voters, sorted.
pub fn voters_on(region: &metapb::Region) -> Vec<u64> {
    let mut stores: Vec<u64> = region
        .peers
        .iter()
        .filter(|p| p.role == metapb::PeerRole::Voter as i32)
        .map(|p| p.store_id)
        .collect();
    stores.sort();
    stores
}

/// Asks PD for an operator until it takes it.
pub async fn operator(cluster: &Cluster, name: &str, region: u64, store: u64) {
    let deadline = std::time::Instant::now() + LONG;
    loop {
        let (status, body) = cluster.pd_operator(name, region, store).await;
        if status.contains(" 200") {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{name} refused: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Nothing of region `id` is left on store `i`: a tombstone, no hard
/// state, none of the [`KEYS`] keys.
pub fn assert_gone(cluster: &Cluster, i: usize, id: u64, what: &str) {
    let engine = &cluster.store(i).context().engine;
    let local: flotilla_proto::raft_serverpb::RegionLocalState = engine
        .get_msg(CF_META, &region_state_key(id))
        .unwrap()
        .expect("a tombstone");
    assert_eq!(
        local.state,
        flotilla_proto::raft_serverpb::PeerState::Tombstone as i32,
        "{what}"
    );
    assert!(
        engine.get(CF_RAFT, &hard_state_key(id)).unwrap().is_none(),
        "{what}: hard state left"
    );
    for i2 in 0..KEYS {
        assert!(
            on_store(cluster, i, &key(i2)).is_none(),
            "{what}: key {i2} left"
        );
    }
    assert!(
        !cluster.store(i).router().contains(id),
        "{what}: peer still running"
    );
}

/// Store `i` is decommissioned: PD moves its replicas away.
pub async fn decommission(cluster: &Cluster, i: usize) {
    let path = format!("/pd/api/v1/store/{}", cluster.store_id(i));
    let (status, body) = cluster.pd_http("DELETE", &path, "").await;
    assert!(
        status.contains(" 200"),
        "decommissioning store {i}: {status} {body}"
    );
}
