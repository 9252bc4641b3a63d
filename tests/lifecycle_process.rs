//! Region lifecycle against real processes, killed at the worst moments:
//! a store killed while applying a split (before its write, and after it
//! but before any new peer started) comes back with the split applied
//! exactly once — ranges disjoint and covering, no key lost; a store
//! killed while installing a snapshot (before its write, and after it but
//! before the peer moved on) comes back, catches up and holds everything.

mod common;

use std::time::{Duration, Instant};

use common::store::{leader_context, StoreProc};
use common::*;
use flotilla_proto::kvrpcpb::*;
use flotilla_proto::metapb;
use serde_json::Value;

fn key(i: usize) -> String {
    format!("key{i:03}")
}

/// Every region the store's `/regions` lists: (context, start, end) for
/// the initialized ones it leads.
fn led_regions(store: &StoreProc) -> Vec<(Context, String, String)> {
    let Some(v) = store.status_json("/regions") else {
        return Vec::new();
    };
    let list = v["regions"].as_array().cloned().unwrap_or_default();
    list.iter()
        .filter(|r| r["is_leader"] == true)
        .filter_map(|r| {
            let one = serde_json::json!({ "regions": [r] });
            let ctx = leader_context(&one)?;
            let text = |f: &str| unhex(r[f].as_str().unwrap_or(""));
            Some((ctx, text("start_key"), text("end_key")))
        })
        .collect()
}

fn unhex(s: &str) -> String {
    let bytes: Vec<u8> = (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok())
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Kills the store in the middle of applying a split at `key050`, then
/// checks what the restart finds.
async fn crash_in_split(failpoint: &str) {
    let dir = tempfile::tempdir().unwrap();
    let ports = (free_port(), free_port(), free_port());
    let _pd = Pd::start_with(&dir.path().join("pd"), ports, &["--max-replicas", "1"]);
    let store = StoreProc::start(&dir.path().join("store"), ports.0, None);
    let ctx = store.leader_context();
    let pairs = (0..100)
        .map(|i| KvPair {
            key: key(i).into(),
            value: format!("v{i}").into(),
        })
        .collect();
    let put = store
        .kv()
        .await
        .raw_batch_put(RawBatchPutRequest {
            context: Some(ctx),
            pairs,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(put.region_error.is_none(), "{:?}", put.region_error);
    let mut store = store.restart(Some(failpoint));
    let ctx = store.leader_context();
    let split = store
        .kv()
        .await
        .split_region(SplitRegionRequest {
            context: Some(ctx),
            split_keys: vec![key(50).into()],
        })
        .await;
    assert!(split.is_err(), "the store answered: {split:?}");
    assert!(
        !store.wait_exit().success(),
        "the failpoint aborts the store"
    );
    let store = store.restart(None);
    let mut regions = Vec::new();
    wait_for("both halves led again", Duration::from_secs(30), || {
        regions = led_regions(&store);
        regions.len() == 2
    });
    regions.sort_by(|a, b| a.1.cmp(&b.1));
    let ranges: Vec<(&str, &str)> = regions
        .iter()
        .map(|(_, s, e)| (s.as_str(), e.as_str()))
        .collect();
    assert_eq!(ranges, vec![("", "key050"), ("key050", "")], "split once");
    let mut kv = store.kv().await;
    for i in 0..100 {
        let (ctx, _, _) = &regions[usize::from(i >= 50)];
        let got = kv
            .raw_get(RawGetRequest {
                context: Some(*ctx),
                key: key(i).into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(got.region_error.is_none(), "{:?}", got.region_error);
        assert_eq!(got.value, format!("v{i}").into_bytes(), "{} lost", key(i));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_before_a_split_is_written_applies_it_once_on_restart() {
    crash_in_split("apply_split_before_write").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_a_split_is_written_keeps_it_whole() {
    crash_in_split("apply_split_after_write").await;
}

/// The store (index) whose status page says it leads the region.
fn leader_of(stores: &[Option<StoreProc>]) -> Option<(usize, Context)> {
    stores.iter().enumerate().find_map(|(i, s)| {
        let regions = s.as_ref()?.status_json("/regions")?;
        leader_context(&regions).map(|ctx| (i, ctx))
    })
}

/// Puts `key` through whichever store leads, retrying for 30 s.
async fn put(stores: &[Option<StoreProc>], key: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "put {key} never succeeded");
        if let Some((i, ctx)) = leader_of(stores) {
            let store = stores[i].as_ref().expect("leads, so runs");
            let req = RawPutRequest {
                context: Some(ctx),
                key: key.to_string().into(),
                value: "v".into(),
            };
            if let Ok(r) = store.kv().await.raw_put(req).await {
                if r.get_ref().region_error.is_none() {
                    return;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether a follower read of `key` through `store` finds it.
async fn follower_has(store: &StoreProc, ctx: Context, key: &str) -> bool {
    let Some(peer_id) = store
        .status_json("/regions")
        .and_then(|v: Value| v["regions"][0]["peer_id"].as_u64())
    else {
        return false;
    };
    let ctx = Context {
        follower_read: true,
        peer: Some(metapb::Peer {
            id: peer_id,
            store_id: 0,
            role: 0,
        }),
        ..ctx
    };
    let Ok(mut kv) = flotilla_proto::kvrpcpb::kv_client::KvClient::connect(format!(
        "http://127.0.0.1:{}",
        store.addr
    ))
    .await
    else {
        return false;
    };
    let req = RawGetRequest {
        context: Some(ctx),
        key: key.to_string().into(),
    };
    matches!(kv.raw_get(req).await, Ok(r) if r.get_ref().region_error.is_none() && !r.get_ref().not_found)
}

/// Kills a lagging store while it installs the snapshot that catches it
/// up, then checks that it catches up after the restart.
async fn crash_in_snapshot(failpoint: &str) {
    let dir = tempfile::tempdir().unwrap();
    // Truncate the log quickly, so a stopped store needs a snapshot.
    let config = dir.path().join("store.toml");
    std::fs::write(
        &config,
        "[raft]\nlog-gc-keep-entries = 5\nlog-gc-threshold-entries = 10\nlog-gc-interval = \"100ms\"\n",
    )
    .unwrap();
    let extra = ["--config".to_string(), config.display().to_string()];
    let ports = (free_port(), free_port(), free_port());
    let _pd = Pd::start_with(&dir.path().join("pd"), ports, &["--max-replicas", "3"]);
    let mut stores: Vec<Option<StoreProc>> = (0..3)
        .map(|i| {
            let dir = dir.path().join(format!("store-{i}"));
            Some(StoreProc::start_with(&dir, ports.0, None, &extra))
        })
        .collect();
    put(&stores, "k0000").await;
    let (leader, ctx) = leader_of(&stores).expect("a leader");
    let lagging = (leader + 1) % 3;
    let mut store = stores[lagging].take().expect("runs");
    let _ = store.child.kill();
    let _ = store.child.wait();
    let mut written = 1;
    for k in 1..100 {
        put(&stores, &format!("k{k:04}")).await;
        written += 1;
    }
    // Back with the crash point armed: keep writing (the leader keeps
    // truncating) until its snapshot arrives and the point fires.
    let mut store = store.restart(Some(failpoint));
    let deadline = Instant::now() + Duration::from_secs(60);
    while store.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "no snapshot reached the store");
        put(&stores, &format!("k{written:04}")).await;
        written += 1;
    }
    let store = store.restart(None);
    let last = format!("k{:04}", written - 1);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !follower_has(&store, ctx, &last).await {
        assert!(Instant::now() < deadline, "the store never caught up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for k in 0..written {
        let key = format!("k{k:04}");
        assert!(follower_has(&store, ctx, &key).await, "{key} missing");
    }
    let regions = store.status_json("/regions").expect("status");
    assert_eq!(regions["count"], 1, "one region, no leftovers: {regions}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_before_a_snapshot_is_written_catches_up_on_restart() {
    crash_in_snapshot("snapshot_before_persist").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_a_snapshot_is_written_keeps_it() {
    crash_in_snapshot("snapshot_after_persist").await;
}
