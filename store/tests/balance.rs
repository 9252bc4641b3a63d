//! PD's schedulers move real data: regions and leaders spread over stores
//! added to a running cluster, and a store down longer than
//! `max-store-down-time` has every one of its replicas re-created
//! elsewhere.

mod common;

use std::time::Duration;

use common::kv::b;
use common::{wait_for, Cluster, LONG};
use flotilla_proto::metapb::PeerRole;
use serde_json::Value;

const REGIONS: usize = 200;
/// PD's defaults, which the test checks balance against.
const TOLERANT_SIZE_RATIO: f64 = 5.0;
const LEADER_TOLERANCE_RATIO: f64 = 0.05;

fn key(i: usize) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

/// PD's `/stores`: (store ID, state, regions, leaders, region size) of each.
async fn pd_stores(cluster: &Cluster) -> Vec<(u64, String, f64, f64, f64)> {
    let (status, body) = cluster.pd_http("GET", "/pd/api/v1/stores", "").await;
    assert!(status.contains(" 200"), "GET stores: {status} {body}");
    let v: Value = serde_json::from_str(&body).expect("stores JSON");
    v["stores"]
        .as_array()
        .expect("store list")
        .iter()
        .map(|s| {
            let n = |f: &str| s[f].as_f64().unwrap_or(0.0);
            let state = s["state"].as_str().unwrap_or("").to_string();
            let id = s["id"].as_u64().unwrap_or(0);
            (
                id,
                state,
                n("region_count"),
                n("leader_count"),
                n("region_size"),
            )
        })
        .collect()
}

/// Whether PD sees `stores` stores up, holding every replica, with region
/// sizes and leader counts within its own balance tolerances.
async fn balanced(cluster: &Cluster, stores: usize) -> bool {
    let all = pd_stores(cluster).await;
    let up: Vec<_> = all.iter().filter(|s| s.1 == "up").collect();
    if up.len() != stores {
        return false;
    }
    let regions: f64 = up.iter().map(|s| s.2).sum();
    if regions != (REGIONS * 3) as f64 {
        return false;
    }
    let spread = |f: fn(&&(u64, String, f64, f64, f64)) -> f64| {
        let vals: Vec<f64> = up.iter().map(f).collect();
        let max = vals.iter().cloned().fold(f64::MIN, f64::max);
        let min = vals.iter().cloned().fold(f64::MAX, f64::min);
        max - min
    };
    let size: f64 = up.iter().map(|s| s.4).sum();
    let size_tolerance = TOLERANT_SIZE_RATIO * size / regions;
    let mean_leaders = REGIONS as f64 / stores as f64;
    let leader_tolerance = (LEADER_TOLERANCE_RATIO * mean_leaders).ceil().max(1.0);
    spread(|s| s.4) <= size_tolerance && spread(|s| s.3) <= leader_tolerance
}

/// Whether PD knows every region with exactly 3 voters, none on `gone`.
async fn all_three_replicas_without(cluster: &Cluster, gone: u64) -> bool {
    let pd = cluster.pd_client().await;
    let Ok(regions) = pd.scan_regions(b"", b"", 0).await else {
        return false;
    };
    regions.len() == REGIONS
        && regions.iter().all(|r| {
            let peers = r.region.as_ref().map_or(&[][..], |r| &r.peers[..]);
            let voters = peers
                .iter()
                .filter(|p| p.role == PeerRole::Voter as i32)
                .count();
            voters == 3 && peers.len() == 3 && peers.iter().all(|p| p.store_id != gone)
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn regions_and_leaders_spread_to_new_stores_and_heal_after_a_store_is_down() {
    let mut cluster = Cluster::start_custom(
        3,
        |pd| {
            pd.schedule.max_store_down_time = Duration::from_secs(3);
            pd.schedule.store_disconnect_time = Duration::from_secs(1);
            pd.schedule.leader_schedule_limit = 16;
        },
        |_| {},
    )
    .await;
    cluster
        .split((1..REGIONS).map(|i| b(key(i * 10))).collect())
        .await;
    for r in 0..REGIONS {
        cluster.put(&key(r * 10 + 1), b"kept").await;
    }
    cluster.add_store().await;
    cluster.add_store().await;
    wait_for(
        "regions and leaders balanced over 5 stores",
        4 * LONG,
        || balanced(&cluster, 5),
    )
    .await;
    // Down past max-store-down-time: its replicas are re-created elsewhere.
    let gone = cluster.store_id(4);
    cluster.stop_store(4).await;
    wait_for("every region back to 3 replicas", 4 * LONG, || {
        all_three_replicas_without(&cluster, gone)
    })
    .await;
    for r in 0..REGIONS {
        assert_eq!(cluster.get(&key(r * 10 + 1)).await, Some(b"kept".to_vec()));
    }
    cluster.shutdown().await;
}
