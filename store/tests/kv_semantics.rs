//! KV semantics over gRPC: compare-and-swap, scans (forward, reverse,
//! key-only, limits, open ends), range deletes, and the byte bound on read
//! replies.

mod common;

use bytes::Bytes;
use common::kv::*;
use common::*;
use flotilla_proto::kvrpcpb::kv_client::KvClient;
use flotilla_proto::kvrpcpb::*;
use tonic::transport::Channel;
use tonic::Code;

// ---------------------------------------------------------------------------
// Compare-and-swap, scans, range deletes
// ---------------------------------------------------------------------------

async fn cas(
    kv: &mut KvClient<Channel>,
    ctx: Context,
    key: &str,
    previous: Option<&str>,
    value: &str,
) -> RawCompareAndSwapResponse {
    let r = kv
        .raw_compare_and_swap(timed(RawCompareAndSwapRequest {
            context: Some(ctx),
            key: b(key),
            value: b(value),
            previous_value: b(previous.unwrap_or_default()),
            previous_not_exist: previous.is_none(),
        }))
        .await;
    expect_ok(&format!("cas {key} {previous:?} -> {value}"), r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compare_and_swap_over_grpc() {
    let cluster = Cluster::start(1).await;
    let first = cluster.first_region().await;
    let (i, ctx) = cluster.leader_context(first).await;
    let mut kv = cluster.kv(i).await;
    let stored = |k: &str| on_store(&cluster, i, k.as_bytes());

    // Fresh key, expected absent: swaps.
    let r = cas(&mut kv, ctx, "cas/a", None, "v1").await;
    assert!(r.succeed && r.previous_not_exist, "{r:?}");
    assert!(r.previous_value.is_empty(), "{r:?}");
    assert_eq!(stored("cas/a"), Some(b"v1".to_vec()));
    // Expected absent, but present: no swap, the current value back.
    let r = cas(&mut kv, ctx, "cas/a", None, "v2").await;
    assert!(!r.succeed && !r.previous_not_exist, "{r:?}");
    assert_eq!(&r.previous_value[..], b"v1");
    // Wrong previous value: no swap, the current value back.
    let r = cas(&mut kv, ctx, "cas/a", Some("wrong"), "v2").await;
    assert!(!r.succeed && !r.previous_not_exist, "{r:?}");
    assert_eq!(&r.previous_value[..], b"v1");
    assert_eq!(stored("cas/a"), Some(b"v1".to_vec()));
    // Right previous value: swaps.
    let r = cas(&mut kv, ctx, "cas/a", Some("v1"), "v2").await;
    assert!(r.succeed && !r.previous_not_exist, "{r:?}");
    assert_eq!(&r.previous_value[..], b"v1");
    assert_eq!(stored("cas/a"), Some(b"v2".to_vec()));
    assert_eq!(cluster.get(b"cas/a").await, Some(b"v2".to_vec()));

    // An empty previous value is a value, not absence.
    let r = cas(&mut kv, ctx, "cas/b", Some(""), "v").await;
    assert!(!r.succeed && r.previous_not_exist, "{r:?}");
    assert_eq!(stored("cas/b"), None);
    let r = cas(&mut kv, ctx, "cas/b", None, "").await;
    assert!(r.succeed && r.previous_not_exist, "{r:?}");
    assert_eq!(stored("cas/b"), Some(Vec::new()));
    let got = expect_ok(
        "get of an empty value",
        kv.raw_get(timed(RawGetRequest {
            context: Some(ctx),
            key: b("cas/b"),
        }))
        .await,
    );
    assert!(!got.not_found && got.value.is_empty(), "{got:?}");
    let r = cas(&mut kv, ctx, "cas/b", None, "v").await;
    assert!(!r.succeed && !r.previous_not_exist, "{r:?}");
    assert!(r.previous_value.is_empty(), "{r:?}");
    let r = cas(&mut kv, ctx, "cas/b", Some(""), "v").await;
    assert!(r.succeed && !r.previous_not_exist, "{r:?}");
    assert_eq!(stored("cas/b"), Some(b"v".to_vec()));

    // After a delete, absence is expected again.
    expect_ok(
        "delete",
        kv.raw_delete(timed(RawDeleteRequest {
            context: Some(ctx),
            key: b("cas/a"),
        }))
        .await,
    );
    let r = cas(&mut kv, ctx, "cas/a", Some("v2"), "v3").await;
    assert!(!r.succeed && r.previous_not_exist, "{r:?}");
    assert_eq!(stored("cas/a"), None);
    let r = cas(&mut kv, ctx, "cas/a", None, "v3").await;
    assert!(r.succeed && r.previous_not_exist, "{r:?}");
    assert_eq!(stored("cas/a"), Some(b"v3".to_vec()));

    still_serves(&cluster, "cas").await;
    cluster.shutdown().await;
}

/// Scans and returns `(key, value)` strings.
async fn scan(
    kv: &mut KvClient<Channel>,
    ctx: Context,
    start: &str,
    end: &str,
    limit: u32,
    key_only: bool,
    reverse: bool,
) -> Vec<(String, String)> {
    let r = kv
        .raw_scan(timed(RawScanRequest {
            context: Some(ctx),
            start_key: b(start),
            end_key: b(end),
            limit,
            key_only,
            reverse,
        }))
        .await;
    let what = format!("scan {start:?}..{end:?} limit {limit} reverse {reverse}");
    expect_ok(&what, r)
        .kvs
        .into_iter()
        .map(|p| {
            (
                String::from_utf8(p.key.to_vec()).unwrap(),
                String::from_utf8(p.value.to_vec()).unwrap(),
            )
        })
        .collect()
}

/// `(kNN, vNN)` for each `n`, or `(kNN, "")` when `key_only`.
fn expected(ns: impl IntoIterator<Item = u32>, key_only: bool) -> Vec<(String, String)> {
    ns.into_iter()
        .map(|n| {
            let v = if key_only {
                String::new()
            } else {
                format!("v{n:02}")
            };
            (format!("k{n:02}"), v)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scans_and_range_deletes_over_grpc() {
    let cluster = Cluster::start(1).await;
    let first = cluster.first_region().await;
    let (i, ctx) = cluster.leader_context(first).await;
    let mut kv = cluster.kv(i).await;
    let r = kv
        .raw_batch_put(timed(RawBatchPutRequest {
            context: Some(ctx),
            pairs: (0..20)
                .map(|n| pair(format!("k{n:02}"), format!("v{n:02}")))
                .collect(),
        }))
        .await;
    expect_ok("batch_put of 20 keys", r);

    // Forward: [start, end), empty end open, limits, key_only.
    assert_eq!(
        scan(&mut kv, ctx, "", "", 100, false, false).await,
        expected(0..20, false)
    );
    assert_eq!(
        scan(&mut kv, ctx, "k05", "k10", 100, false, false).await,
        expected(5..10, false)
    );
    assert_eq!(
        scan(&mut kv, ctx, "k05", "k10", 3, false, false).await,
        expected(5..8, false)
    );
    assert_eq!(
        scan(&mut kv, ctx, "k15", "", 100, false, false).await,
        expected(15..20, false)
    );
    assert_eq!(
        scan(&mut kv, ctx, "k055", "", 2, true, false).await,
        expected(6..8, true)
    );
    assert_eq!(
        scan(&mut kv, ctx, "", "k03", 100, true, false).await,
        expected(0..3, true)
    );
    assert_eq!(
        scan(&mut kv, ctx, "x", "y", 100, false, false).await,
        vec![]
    );
    assert_eq!(
        scan(&mut kv, ctx, "k20", "", 100, false, false).await,
        vec![]
    );

    // Reverse: below start, down to end inclusive; empty start is the end
    // of the key space, empty end open.
    assert_eq!(
        scan(&mut kv, ctx, "", "", 100, false, true).await,
        expected((0..20).rev(), false)
    );
    assert_eq!(
        scan(&mut kv, ctx, "", "", 3, false, true).await,
        expected([19, 18, 17], false)
    );
    assert_eq!(
        scan(&mut kv, ctx, "", "k17", 100, true, true).await,
        expected([19, 18, 17], true)
    );
    assert_eq!(
        scan(&mut kv, ctx, "k10", "k05", 100, false, true).await,
        expected((5..10).rev(), false)
    );
    assert_eq!(
        scan(&mut kv, ctx, "k10", "k05", 2, true, true).await,
        expected([9, 8], true)
    );
    assert_eq!(
        scan(&mut kv, ctx, "k03", "", 100, false, true).await,
        expected([2, 1, 0], false)
    );
    assert_eq!(
        scan(&mut kv, ctx, "k055", "k045", 100, false, true).await,
        expected([5], false)
    );
    assert_eq!(
        scan(&mut kv, ctx, "k00", "", 100, false, true).await,
        vec![]
    );

    // delete_range removes exactly [start, end); an empty end is open.
    let r = kv
        .raw_delete_range(timed(RawDeleteRangeRequest {
            context: Some(ctx),
            start_key: b("k05"),
            end_key: b("k10"),
        }))
        .await;
    expect_ok("delete_range k05..k10", r);
    let r = kv
        .raw_delete_range(timed(RawDeleteRangeRequest {
            context: Some(ctx),
            start_key: b("k18"),
            end_key: Bytes::new(),
        }))
        .await;
    expect_ok("delete_range k18..", r);
    let left: Vec<u32> = (0..5).chain(10..18).collect();
    assert_eq!(
        scan(&mut kv, ctx, "", "", 100, false, false).await,
        expected(left.iter().copied(), false)
    );
    assert_eq!(
        scan(&mut kv, ctx, "", "", 100, false, true).await,
        expected(left.iter().rev().copied(), false)
    );
    for n in 0..20 {
        let key = format!("k{n:02}");
        let want = left.contains(&n).then(|| format!("v{n:02}").into_bytes());
        assert_eq!(on_store(&cluster, i, key.as_bytes()), want, "{key}");
    }

    still_serves(&cluster, "scans").await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_replies_are_bounded_in_bytes() {
    let cluster = Cluster::start(1).await;
    let first = cluster.first_region().await;
    let (i, ctx) = cluster.leader_context(first).await;
    let mut kv = cluster
        .kv(i)
        .await
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    let big = Bytes::from(vec![7u8; 8 << 20]);
    for k in 0..5u8 {
        let resp = kv
            .raw_put(RawPutRequest {
                context: Some(ctx),
                key: vec![b'b', k].into(),
                value: big.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(resp.region_error.is_none());
    }
    // 40 MiB of values: the scan stops at 32 MiB, with whole pairs.
    let scan = kv
        .raw_scan(RawScanRequest {
            context: Some(ctx),
            start_key: "b".into(),
            end_key: "c".into(),
            limit: 100,
            key_only: false,
            reverse: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(scan.kvs.len(), 3, "three 8 MiB pairs fit under 32 MiB");
    let keys: Vec<Bytes> = (0..5u8).map(|k| vec![b'b', k].into()).collect();
    let err = kv
        .raw_batch_get(RawBatchGetRequest {
            context: Some(ctx),
            keys,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    // A made-up peer ID on the right store: the client's routing is stale.
    let mut wrong_peer = ctx;
    if let Some(p) = wrong_peer.peer.as_mut() {
        p.id += 1_000;
    }
    let resp = kv
        .raw_get(RawGetRequest {
            context: Some(wrong_peer),
            key: "b".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(resp.region_error.and_then(|e| e.region_not_found).is_some());
    cluster.shutdown().await;
}
