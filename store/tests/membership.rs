//! Membership changes carried out from PD operators: a replica moves to a
//! new store (added as a learner, filled by a snapshot, promoted), the old
//! one is removed and leaves nothing behind. (A replica removed while its
//! store was away, and that store coming back: `regressions.rs`.)

mod common;

use std::time::Duration;

use common::kv::on_store;
use common::membership::*;
use common::{wait_for, LONG};

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
