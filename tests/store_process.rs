//! End to end with real processes: `flotilla store` registers with a real
//! `flotilla pd`, bootstraps, serves the KV API, keeps its identity and
//! data across a restart, stops cleanly on SIGTERM — and, killed at the
//! worst moments (after the log is synced but before the apply, between
//! apply batches), comes back with every acknowledged write and no
//! half-applied one.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::store::{leader_context, StoreProc};
use common::*;
use flotilla_proto::kvrpcpb::kv_client::KvClient;
use flotilla_proto::kvrpcpb::*;
use flotilla_proto::metapb;

fn start_pd(dir: &Path) -> (Pd, u16) {
    let ports = (free_port(), free_port(), free_port());
    let pd = Pd::start_with(&dir.join("pd"), ports, &["--max-replicas", "1"]);
    (pd, ports.0)
}

const KEYS_PER_BATCH: usize = 10;

fn batch_key(batch: usize, j: usize) -> tonic::codegen::Bytes {
    format!("batch{batch:05}-{j}").into()
}

/// Writes batches until the store dies; returns the acknowledged ones and
/// the number attempted.
async fn write_until_crash(store: &StoreProc) -> (Vec<usize>, usize) {
    let ctx = store.leader_context();
    let mut kv = store.kv().await;
    let mut acked = Vec::new();
    for batch in 0..100_000 {
        let pairs = (0..KEYS_PER_BATCH)
            .map(|j| KvPair {
                key: batch_key(batch, j),
                value: format!("v{batch}").into(),
            })
            .collect();
        let req = RawBatchPutRequest {
            context: Some(ctx),
            pairs,
        };
        match kv.raw_batch_put(req).await {
            Ok(r) if r.get_ref().region_error.is_none() => acked.push(batch),
            Ok(r) => panic!("unexpected region error {:?}", r.into_inner().region_error),
            Err(_) => return (acked, batch + 1),
        }
    }
    panic!("the failpoint never fired");
}

/// After a restart: every acknowledged batch is whole, and every batch is
/// whole or absent.
async fn check_after_restart(store: &StoreProc, acked: &[usize], attempted: usize) {
    let ctx = store.leader_context();
    let mut kv = store.kv().await;
    for batch in 0..attempted {
        let keys = (0..KEYS_PER_BATCH).map(|j| batch_key(batch, j)).collect();
        let resp = kv
            .raw_batch_get(RawBatchGetRequest {
                context: Some(ctx),
                keys,
            })
            .await
            .expect("reads after the restart")
            .into_inner();
        assert!(resp.region_error.is_none(), "{:?}", resp.region_error);
        let found = resp.pairs.len();
        assert!(
            found == 0 || found == KEYS_PER_BATCH,
            "batch {batch} half applied: {found} of {KEYS_PER_BATCH} keys"
        );
        if acked.contains(&batch) {
            assert_eq!(found, KEYS_PER_BATCH, "acknowledged batch {batch} lost");
        }
    }
}

async fn crash_at(failpoint: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (_pd, pd_port) = start_pd(dir.path());
    let store = StoreProc::start(&dir.path().join("store"), pd_port, None);
    store.leader_context();
    // Restart with the crash point armed.
    let mut store = store.restart(Some(failpoint));
    let (acked, attempted) = write_until_crash(&store).await;
    assert!(
        !store.wait_exit().success(),
        "the failpoint aborts the store"
    );
    assert!(
        !acked.is_empty(),
        "some batches were acknowledged before the crash"
    );
    let store = store.restart(None);
    check_after_restart(&store, &acked, attempted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_log_sync_before_the_apply_loses_nothing_acknowledged() {
    crash_at("apply_before_write=40").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_apply_batches_loses_nothing_acknowledged() {
    crash_at("apply_after_write=40").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_right_after_a_round_s_log_write_loses_nothing_acknowledged() {
    crash_at("after_log_persist=40").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_keeps_its_identity_and_data_across_a_clean_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (_pd, pd_port) = start_pd(dir.path());
    let mut store = StoreProc::start(&dir.path().join("store"), pd_port, None);
    let ctx = store.leader_context();
    let mut kv = store.kv().await;
    let put = kv
        .raw_put(RawPutRequest {
            context: Some(ctx),
            key: "k".into(),
            value: "v".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(put.region_error.is_none(), "{:?}", put.region_error);
    let id = store.status_json("/status").unwrap()["store_id"].as_u64();
    let (_, metrics) = http_get(store.status, "/metrics").unwrap();
    assert!(
        metrics.contains("flotilla_store_kv_requests_total{method=\"raw_put\",outcome=\"ok\"} 1")
    );
    assert!(store.terminate().success(), "SIGTERM is a clean stop");
    let store = store.restart(None);
    let ctx = store.leader_context();
    wait_for("the status page", Duration::from_secs(10), || {
        store.status_json("/status").is_some()
    });
    assert_eq!(
        store.status_json("/status").unwrap()["store_id"].as_u64(),
        id
    );
    let got = store
        .kv()
        .await
        .raw_get(RawGetRequest {
            context: Some(ctx),
            key: "k".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(&got.value[..], b"v");
}

/// The store (index) whose status page says it leads the first region.
fn leader_of(stores: &[StoreProc]) -> Option<(usize, Context)> {
    stores.iter().enumerate().find_map(|(i, s)| {
        let regions = s.status_json("/regions")?;
        leader_context(&regions).map(|ctx| (i, ctx))
    })
}

/// Puts `key` through whichever store leads, retrying until `deadline`.
async fn put_anywhere(stores: &[StoreProc], key: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "put {key} never succeeded");
        if let Some((i, ctx)) = leader_of(stores) {
            if let Ok(mut kv) =
                KvClient::connect(format!("http://127.0.0.1:{}", stores[i].addr)).await
            {
                let req = RawPutRequest {
                    context: Some(ctx),
                    key: key.to_string().into(),
                    value: "v".into(),
                };
                if let Ok(r) = kv.raw_put(req).await {
                    if r.get_ref().region_error.is_none() {
                        return;
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_store_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let ports = (free_port(), free_port(), free_port());
    let _pd = Pd::start_with(&dir.path().join("pd"), ports, &["--max-replicas", "3"]);
    let mut stores: Vec<StoreProc> = (0..3)
        .map(|i| StoreProc::start(&dir.path().join(format!("store-{i}")), ports.0, None))
        .collect();
    wait_for("a leader", Duration::from_secs(30), || {
        leader_of(&stores).is_some()
    });
    for k in 0..30 {
        put_anywhere(&stores, &format!("k{k:03}")).await;
    }
    let (old, _) = leader_of(&stores).unwrap();
    let _ = stores[old].child.kill();
    let _ = stores[old].child.wait();
    wait_for("a new leader", Duration::from_secs(30), || {
        leader_of(&stores).is_some_and(|(i, _)| i != old)
    });
    for k in 30..60 {
        put_anywhere(&stores, &format!("k{k:03}")).await;
    }
    let (leader, ctx) = leader_of(&stores).unwrap();
    let mut kv = KvClient::connect(format!("http://127.0.0.1:{}", stores[leader].addr))
        .await
        .unwrap();
    let scan = kv
        .raw_scan(RawScanRequest {
            context: Some(ctx),
            start_key: "k".into(),
            end_key: "l".into(),
            limit: 1000,
            key_only: true,
            reverse: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(scan.kvs.len(), 60, "every acknowledged write survives");
    // The killed store comes back and serves as a follower with all data.
    let restarted = stores.remove(old).restart(None);
    wait_for(
        "the restarted store's status page",
        Duration::from_secs(30),
        || restarted.status_json("/regions").is_some(),
    );
    let follower_ctx = Context {
        follower_read: true,
        peer: restarted
            .status_json("/regions")
            .and_then(|v| v["regions"][0]["peer_id"].as_u64())
            .map(|id| metapb::Peer {
                id,
                store_id: 0,
                role: 0,
            }),
        ..ctx
    };
    let mut kv = restarted.kv().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = kv
            .raw_get(RawGetRequest {
                context: Some(follower_ctx),
                key: "k059".into(),
            })
            .await;
        if let Ok(r) = got {
            let r = r.into_inner();
            if r.region_error.is_none() && !r.not_found {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the restarted store never caught up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn store_prints_its_default_config_and_refuses_bad_flags() {
    let out = Command::new(BIN)
        .args(["store", "--print-default-config"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for key in [
        "pd",
        "addr",
        "status-addr",
        "tick-interval",
        "region-split-size",
    ] {
        assert!(text.contains(key), "default config lacks {key}:\n{text}");
    }
    let out = Command::new(BIN)
        .args(["store", "--raft-tick-interval", "soon"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("tick"), "the error names the flag: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one clear line: {err}");
}
