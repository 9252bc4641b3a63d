//! Membership changes carried out from PD operators: a replica moves to a
//! new store (added as a learner, filled by a snapshot, promoted), the old
//! one is removed and leaves nothing behind — also when it was away during
//! its removal and comes back.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::kv::on_store;
use common::{wait_for, Cluster, LONG};
use flotilla_proto::metapb;
use flotilla_store::engine::keys::{hard_state_key, region_state_key};
use flotilla_store::engine::{CF_META, CF_RAFT};
use flotilla_store::transport::filter::PartitionFilter;

const KEYS: usize = 200;

fn key(i: usize) -> Vec<u8> {
    format!("key{i:04}").into_bytes()
}

fn value(i: usize) -> Vec<u8> {
    format!("value-{i}").into_bytes()
}

/// Three stores with data, PD's balance schedulers off: only its replica
/// checker and the test's operators move replicas.
async fn three_stores_with_data() -> Cluster {
    let cluster = Cluster::start(3).await;
    for name in ["balance-leader", "balance-region"] {
        let path = format!("/pd/api/v1/schedulers/{name}");
        let (status, body) = cluster.pd_http("DELETE", &path, "").await;
        assert!(status.contains(" 200"), "removing {name}: {status} {body}");
    }
    for i in 0..KEYS {
        cluster.put(&key(i), &value(i)).await;
    }
    cluster
}

/// The region as the store leading it publishes it.
fn led_region(cluster: &Cluster, id: u64) -> Option<metapb::Region> {
    cluster.leader_of(id).map(|(_, r, _)| r)
}

fn voters_on(region: &metapb::Region) -> Vec<u64> {
    let mut stores: Vec<u64> = region
        .peers
        .iter()
        .filter(|p| p.role == metapb::PeerRole::Voter as i32)
        .map(|p| p.store_id)
        .collect();
    stores.sort();
    stores
}

async fn operator(cluster: &Cluster, name: &str, region: u64, store: u64) {
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
/// state, none of the keys.
fn assert_gone(cluster: &Cluster, i: usize, id: u64, what: &str) {
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
async fn decommission(cluster: &Cluster, i: usize) {
    let path = format!("/pd/api/v1/store/{}", cluster.store_id(i));
    let (status, body) = cluster.pd_http("DELETE", &path, "").await;
    assert!(
        status.contains(" 200"),
        "decommissioning store {i}: {status} {body}"
    );
}

/// A store is decommissioned: PD's replica checker adds a replica on the
/// new store (a learner filled by a snapshot, then promoted) and removes
/// the old one, which leaves nothing behind — also across a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_moves_to_a_new_store_and_the_old_one_leaves_nothing() {
    let mut cluster = three_stores_with_data().await;
    let region = cluster.first_region().await;
    let fourth = cluster.add_store().await;
    let new_store = cluster.store_id(fourth);
    let old_store = cluster.store_id(0);
    decommission(&cluster, 0).await;
    wait_for("the replica to move to the new store", LONG, || async {
        led_region(&cluster, region).is_some_and(|r| {
            voters_on(&r).contains(&new_store) && !r.peers.iter().any(|p| p.store_id == old_store)
        })
    })
    .await;
    assert!((0..KEYS).all(|i| on_store(&cluster, fourth, &key(i)) == Some(value(i))));
    let metrics = &cluster.store(fourth).context().metrics;
    let applied = metrics.snapshots.with_label_values(&["applied"]).get();
    assert!(applied >= 1, "the new replica was filled by a snapshot");
    wait_for("the old replica to be destroyed", LONG, || async {
        !cluster.store(0).router().contains(region)
    })
    .await;
    assert_gone(&cluster, 0, region, "after removal");
    assert_eq!(
        led_region(&cluster, region).expect("a leader").peers.len(),
        3
    );

    // A restart does not bring the old replica back.
    cluster.stop_store(0).await;
    cluster.start_store(0).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_gone(&cluster, 0, region, "after a restart");
    for i in (0..KEYS).step_by(17) {
        assert_eq!(cluster.get(&key(i)).await, Some(value(i)));
    }
    cluster.shutdown().await;
}

/// A replica removed while its store was cut off (PD swaps it out through
/// a joint configuration) learns it when it is back — the others answer
/// its messages with a tombstone — and destroys itself; restarting it in
/// between changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_removed_while_away_destroys_itself_when_back() {
    let mut cluster = three_stores_with_data().await;
    let region = cluster.first_region().await;
    let fourth = cluster.add_store().await;
    let new_store = cluster.store_id(fourth);
    // Keep the lead off store 2, then cut store 2 off and decommission it.
    if cluster.wait_for_leader(region).await == 2 {
        operator(&cluster, "transfer-leader", region, cluster.store_id(0)).await;
        wait_for("the lead to move", LONG, || async {
            cluster.leader_of(region).is_some_and(|(i, _, _)| i != 2)
        })
        .await;
    }
    let cut_off = cluster.store_id(2);
    cluster
        .store(2)
        .filters()
        .add(Arc::new(PartitionFilter { stores: Vec::new() }));
    decommission(&cluster, 2).await;
    wait_for("the replica to move without store 2", LONG, || async {
        led_region(&cluster, region).is_some_and(|r| {
            voters_on(&r).contains(&new_store) && !r.peers.iter().any(|p| p.store_id == cut_off)
        })
    })
    .await;
    assert!(
        cluster.store(2).router().contains(region),
        "the cut-off replica cannot know yet"
    );
    // Restart it (its peer comes back from disk) and let it talk.
    cluster.stop_store(2).await;
    cluster.start_store(2).await;
    wait_for("the removed replica to destroy itself", LONG, || async {
        !cluster.store(2).router().contains(region)
    })
    .await;
    assert_gone(&cluster, 2, region, "after coming back");
    cluster.put(b"after", b"removal").await;
    assert_eq!(cluster.get(b"after").await, Some(b"removal".to_vec()));
    cluster.shutdown().await;
}
