//! Hibernation: idle regions stop ticking and heartbeating on every
//! replica, wake for a request, and still notice a dead leader — while the
//! regions that only lost a follower stay asleep. (A deposed sleeping
//! leader serves no stale read: `regressions.rs`.)

mod common;

use std::time::Duration;

use common::kv::b;
use common::{wait_for, Cluster, LONG};

/// Regions in the tests' clusters.
const REGIONS: usize = 24;

fn key(i: usize) -> Vec<u8> {
    format!("key{i:04}").into_bytes()
}

/// Three stores, PD's balance schedulers off (their leader transfers
/// would keep waking regions), the key space cut into [`REGIONS`].
async fn idle_cluster() -> Cluster {
    let cluster = Cluster::start(3).await;
    for name in ["balance-leader", "balance-region"] {
        let path = format!("/pd/api/v1/schedulers/{name}");
        let (status, body) = cluster.pd_http("DELETE", &path, "").await;
        assert!(status.contains(" 200"), "removing {name}: {status} {body}");
    }
    cluster
        .split((1..REGIONS).map(|i| b(key(i * 10))).collect())
        .await;
    for i in 0..3 {
        wait_for("every store to hold every region", LONG, || async {
            cluster.regions_of(i).len() == REGIONS
        })
        .await;
    }
    cluster
}

fn metric(cluster: &Cluster, i: usize, family: &str) -> i64 {
    cluster
        .store(i)
        .context()
        .metrics
        .render()
        .lines()
        .filter(|l| l.starts_with(family) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as i64
}

fn hibernating(cluster: &Cluster, i: usize) -> i64 {
    metric(cluster, i, "flotilla_store_hibernated_regions")
}

fn raft_messages_sent(cluster: &Cluster, stores: &[usize]) -> i64 {
    stores
        .iter()
        .map(|&i| metric(cluster, i, "flotilla_store_raft_messages_sent_total"))
        .sum()
}

async fn wait_all_hibernating(cluster: &Cluster, stores: &[usize]) {
    for &i in stores {
        wait_for("every region on the store to hibernate", LONG, || async {
            hibernating(cluster, i) == REGIONS as i64
        })
        .await;
    }
}

/// Every replica of every idle region hibernates and sends nothing; a
/// write or read wakes its region and is served; it hibernates again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_regions_sleep_and_wake_for_requests() {
    let cluster = idle_cluster().await;
    wait_all_hibernating(&cluster, &[0, 1, 2]).await;
    let sent = raft_messages_sent(&cluster, &[0, 1, 2]);
    // 25 ticks: an awake cluster would send hundreds of heartbeats.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        raft_messages_sent(&cluster, &[0, 1, 2]),
        sent,
        "hibernating regions sent Raft messages"
    );
    cluster.put(&key(55), b"woken").await;
    assert_eq!(cluster.get(&key(55)).await, Some(b"woken".to_vec()));
    assert!(raft_messages_sent(&cluster, &[0, 1, 2]) > sent);
    // Every replica holds the write, and the region sleeps again.
    wait_all_hibernating(&cluster, &[0, 1, 2]).await;
    for i in 0..3 {
        assert_eq!(
            common::kv::on_store(&cluster, i, &key(55)),
            Some(b"woken".to_vec())
        );
    }
    // A read alone wakes a hibernating leader too (its lease lapsed, so
    // it confirms leadership with a ReadIndex round).
    assert_eq!(cluster.get(&key(55)).await, Some(b"woken".to_vec()));
    cluster.shutdown().await;
}

/// A store dies: the regions it led elect new leaders from hibernation,
/// every region serves, and everything — including the regions that only
/// lost a follower there — goes back to sleep.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_leaders_sleeping_followers_elect_and_the_rest_stay_asleep() {
    let mut cluster = idle_cluster().await;
    wait_all_hibernating(&cluster, &[0, 1, 2]).await;
    let led_by = |i: usize| {
        cluster
            .store(i)
            .context()
            .regions
            .read()
            .values()
            .filter(|m| m.is_leader)
            .count()
    };
    let dead = (0..3).max_by_key(|&i| led_by(i)).expect("three stores");
    assert!(led_by(dead) > 0, "the dead store leads something");
    cluster.stop_store(dead).await;
    let alive: Vec<usize> = (0..3).filter(|&i| i != dead).collect();
    for n in (0..REGIONS).map(|r| r * 10 + 5) {
        cluster.put(&key(n), b"after").await;
    }
    wait_all_hibernating(&cluster, &alive).await;
    let sent = raft_messages_sent(&cluster, &alive);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        raft_messages_sent(&cluster, &alive),
        sent,
        "regions with a dead follower kept sending"
    );
    for n in (0..REGIONS).map(|r| r * 10 + 5) {
        assert_eq!(cluster.get(&key(n)).await, Some(b"after".to_vec()));
    }
    cluster.shutdown().await;
}
