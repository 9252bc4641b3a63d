//! Failures of a whole store: the leader's store goes away, a store comes
//! back and catches up — from the log, and by snapshot once the log it
//! needs was truncated away. (An isolated leader replaced, and a snapshot
//! made before a split that lands after it: `regressions.rs`.)

mod common;

use std::time::Duration;

use common::probe::{apply_state, snapshots};
use common::*;

fn key(i: u32) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

fn value(i: u32) -> Vec<u8> {
    format!("value-{i}").into_bytes()
}

/// Whether store `i` holds every key `0..n` (read from its RocksDB).
fn holds_all(cluster: &Cluster, i: usize, n: u32) -> bool {
    let engine = &cluster.store(i).context().engine;
    (0..n).all(|k| engine.get("default", &key(k)).ok().flatten() == Some(value(k)))
}

/// Snapshots store `i` installed (its metric).
fn snapshots_applied(cluster: &Cluster, i: usize) -> u64 {
    snapshots(cluster, i, "applied")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_leader_serves_every_acknowledged_write_and_a_restarted_store_catches_up() {
    let mut cluster = Cluster::start(3).await;
    let region = cluster.first_region().await;
    for i in 0..50 {
        cluster.put(&key(i), &value(i)).await;
    }
    let old_leader = cluster.wait_for_leader(region).await;
    cluster.stop_store(old_leader).await;
    for i in 50..100 {
        cluster.put(&key(i), &value(i)).await;
    }
    let new_leader = cluster.wait_for_leader(region).await;
    assert_ne!(new_leader, old_leader);
    for i in 0..100 {
        assert_eq!(cluster.get(&key(i)).await, Some(value(i)), "key {i} lost");
    }
    cluster.start_store(old_leader).await;
    wait_for(
        "the restarted store to catch up from the log",
        LONG,
        || async { holds_all(&cluster, old_leader, 100) },
    )
    .await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_behind_the_truncated_log_catches_up_by_snapshot() {
    let mut cluster = Cluster::start_with(3, |cfg| {
        cfg.raft.log_gc_keep_entries = 5;
        cfg.raft.log_gc_threshold_entries = 10;
        cfg.raft.log_gc_interval = Duration::from_millis(100);
    })
    .await;
    let region = cluster.first_region().await;
    cluster.put(&key(0), &value(0)).await;
    let leader = cluster.wait_for_leader(region).await;
    let lagging = (leader + 1) % 3;
    cluster.stop_store(lagging).await;
    for i in 0..200 {
        cluster.put(&key(i), &value(i)).await;
    }
    // The leader's log no longer reaches back to where the lagging store
    // stopped, so entries alone cannot bring it back.
    let stopped_at = 10;
    wait_for("the leader to truncate its log", LONG, || async {
        let leader = cluster.wait_for_leader(region).await;
        apply_state(&cluster, leader, region).truncated_index > stopped_at + 50
    })
    .await;
    cluster.start_store(lagging).await;
    // The snapshot's data are durable a moment before the peer counts it
    // applied: wait for both.
    wait_for(
        "the lagging store to catch up by snapshot",
        LONG,
        || async { holds_all(&cluster, lagging, 200) && snapshots_applied(&cluster, lagging) >= 1 },
    )
    .await;
    // Snapshot files do not outlive their use, on either side.
    wait_for("snapshot files to be collected", LONG, || async {
        cluster.stores.iter().flatten().all(|s| {
            std::fs::read_dir(s.context().snap.dir())
                .map(|d| d.count() == 0)
                .unwrap_or(false)
        })
    })
    .await;
    // It keeps replicating after the snapshot.
    cluster.put(b"after", b"snapshot").await;
    wait_for("replication after the snapshot", LONG, || async {
        cluster
            .store(lagging)
            .context()
            .engine
            .get("default", b"after")
            .ok()
            .flatten()
            .is_some()
    })
    .await;
    cluster.shutdown().await;
}

/// A snapshot racing a split: a store away while its region splits, and
/// whose log the leaders truncated meanwhile, gets the split inside a
/// snapshot of the left half. The right half's leader cannot create its
/// peer there while the old, wider range still covers it; once the left
/// half's snapshot shrinks that range, it can, and fills it by its own
/// snapshot. Ranges stay disjoint and covering, and nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_away_during_a_split_gets_both_halves_by_snapshot() {
    away_during_a_split(Leaders::Awake).await;
}

/// The same with both halves' leaders asleep when the store comes back.
/// They hibernated past the silent store's peers; the right half's peer
/// does not exist there, so nothing on that store can wake its leader. The
/// leader's store must notice the store answering again and wake it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_back_from_a_split_wakes_the_sleeping_leaders_that_left_it_behind() {
    away_during_a_split(Leaders::Asleep).await;
}

/// Whether the halves' leaders sleep when the away store returns.
#[derive(Clone, Copy, PartialEq)]
enum Leaders {
    Awake,
    Asleep,
}

async fn away_during_a_split(leaders: Leaders) {
    let mut cluster = Cluster::start_with(3, |cfg| {
        cfg.raft.log_gc_keep_entries = 5;
        cfg.raft.log_gc_threshold_entries = 10;
        cfg.raft.log_gc_interval = Duration::from_millis(100);
    })
    .await;
    let region = cluster.first_region().await;
    cluster.put(&key(0), &value(0)).await;
    let away = (cluster.wait_for_leader(region).await + 1) % 3;
    cluster.stop_store(away).await;
    cluster.split(vec![common::kv::b(key(100))]).await;
    for i in 0..200 {
        cluster.put(&key(i), &value(i)).await;
    }
    let here = (away + 1) % 3;
    wait_for(
        "both halves' leaders to truncate their logs",
        LONG,
        || async {
            let halves = cluster.regions_of(here);
            halves.len() == 2
                && halves.iter().all(|r| {
                    cluster.leader_of(r.id).is_some_and(|(i, _, _)| {
                        apply_state(&cluster, i, r.id).truncated_index > 20
                    })
                })
        },
    )
    .await;
    if leaders == Leaders::Asleep {
        wait_for("both halves' leaders to hibernate", LONG, || async {
            cluster.regions_of(here).iter().all(|r| {
                cluster
                    .leader_of(r.id)
                    .is_some_and(|(i, _, _)| cluster.store(i).router().is_hibernating(r.id))
            })
        })
        .await;
    }
    cluster.start_store(away).await;
    wait_for(
        "the store to hold both halves and every key",
        LONG,
        || async { cluster.regions_of(away).len() == 2 && holds_all(&cluster, away, 200) },
    )
    .await;
    let halves = cluster.regions_of(away);
    assert_eq!(halves[0].end_key, key(100));
    assert_eq!(halves[1].start_key, key(100));
    assert!(halves[0].start_key.is_empty() && halves[1].end_key.is_empty());
    let applied = snapshots_applied(&cluster, away);
    assert!(applied >= 2, "both halves came by snapshot ({applied})");
    // A built snapshot is kept until the follower waiting for it is sent
    // it (it was once dropped first, and rebuilt every 40 ms for seconds).
    let built: u64 = [here, (away + 2) % 3]
        .iter()
        .map(|&i| snapshots(&cluster, i, "generated"))
        .sum();
    assert!(built <= 4, "{built} snapshots built for 2 halves");
    cluster.shutdown().await;
}
