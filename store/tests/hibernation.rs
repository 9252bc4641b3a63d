//! Hibernation: idle regions stop ticking and heartbeating on every
//! replica, wake for a request, and still notice a dead leader — while the
//! regions that only lost a follower stay asleep.

mod common;

use std::time::Duration;

use common::kv::b;
use common::{timed, wait_for, Cluster, LONG};
use flotilla_store::transport::filter::PartitionFilter;

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

/// An isolated, hibernating leader does not notice it was deposed, so it
/// must not serve a read from its own state when woken: the write the new
/// leader took is never missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deposed_sleeping_leader_serves_no_stale_read() {
    let cluster = idle_cluster().await;
    cluster.put(&key(5), b"old").await;
    wait_all_hibernating(&cluster, &[0, 1, 2]).await;
    let region = cluster.route(&key(5)).map(|(_, ctx)| ctx.region_id);
    let region = region.expect("routed");
    let (old, old_ctx) = cluster.leader_context(region).await;
    let cut = std::sync::Arc::new(PartitionFilter { stores: vec![] });
    cluster.store(old).filters().add(cut);
    // The old leader still claims the lead (it sleeps): look elsewhere.
    wait_for("a new leader elsewhere", LONG, || async {
        (0..3).filter(|&i| i != old).any(|i| {
            let regions = cluster.store(i).context().regions.read();
            regions.get(&region).is_some_and(|m| m.is_leader)
        })
    })
    .await;
    cluster.put(&key(5), b"new").await;
    let mut kv = cluster.kv(old).await;
    let resp = kv
        .raw_get(timed(flotilla_proto::kvrpcpb::RawGetRequest {
            context: Some(old_ctx),
            key: b(key(5)),
        }))
        .await;
    if let Ok(r) = resp {
        let r = r.into_inner();
        assert!(
            r.region_error.is_some() || r.value == b"new".as_slice(),
            "the deposed leader served {:?}",
            String::from_utf8_lossy(&r.value)
        );
    }
    cluster.store(old).filters().clear();
    assert_eq!(cluster.get(&key(5)).await, Some(b"new".to_vec()));
    cluster.shutdown().await;
}
