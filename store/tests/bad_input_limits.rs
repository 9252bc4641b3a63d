//! Bad input, limits: a request past the documented limits gets gRPC
//! `INVALID_ARGUMENT` naming the limit on every KV RPC — never a panic,
//! and nothing of it written — while requests exactly at the limits are
//! served.

mod common;

use bytes::Bytes;
use common::kv::*;
use common::*;
use flotilla_proto::kvrpcpb::*;

// ---------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_past_the_limits_are_invalid_argument_and_write_nothing() {
    let cluster = Cluster::start(1).await;
    let first = cluster.first_region().await;
    let (i, ctx) = cluster.leader_context(first).await;
    let mut kv = big_kv(&cluster, i).await;
    for v in VICTIMS {
        cluster.put(v.as_bytes(), b"alive").await;
    }
    // Keys that must not exist afterwards.
    let mut absent: Vec<Vec<u8>> = Vec::new();

    // No context, or one naming no region, on every RPC.
    let contexts = [
        ("no context", None, "no context"),
        (
            "region 0",
            Some(Context {
                region_id: 0,
                ..ctx
            }),
            "region_id 0",
        ),
    ];
    for (case, c, limit) in contexts {
        let key = b(format!("ctx/{}", case.replace(' ', "-")));
        absent.push(key.to_vec());
        let what = |rpc: &str| format!("{case}: {rpc}");
        let r = kv
            .raw_get(RawGetRequest {
                context: c,
                key: key.clone(),
            })
            .await;
        expect_invalid(&what("get"), r, limit);
        let r = kv
            .raw_batch_get(RawBatchGetRequest {
                context: c,
                keys: vec![key.clone()],
            })
            .await;
        expect_invalid(&what("batch_get"), r, limit);
        let r = kv
            .raw_put(RawPutRequest {
                context: c,
                key: key.clone(),
                value: b("v"),
            })
            .await;
        expect_invalid(&what("put"), r, limit);
        let r = kv
            .raw_batch_put(RawBatchPutRequest {
                context: c,
                pairs: vec![KvPair {
                    key: key.clone(),
                    value: b("v"),
                }],
            })
            .await;
        expect_invalid(&what("batch_put"), r, limit);
        let r = kv
            .raw_delete(RawDeleteRequest {
                context: c,
                key: b(VICTIMS[0]),
            })
            .await;
        expect_invalid(&what("delete"), r, limit);
        let r = kv
            .raw_batch_delete(RawBatchDeleteRequest {
                context: c,
                keys: vec![b(VICTIMS[0])],
            })
            .await;
        expect_invalid(&what("batch_delete"), r, limit);
        for reverse in [false, true] {
            let r = kv
                .raw_scan(RawScanRequest {
                    context: c,
                    limit: 10,
                    reverse,
                    ..Default::default()
                })
                .await;
            expect_invalid(&what("scan"), r, limit);
        }
        let r = kv
            .raw_delete_range(RawDeleteRangeRequest {
                context: c,
                start_key: b("victim/"),
                end_key: b("victim0"),
            })
            .await;
        expect_invalid(&what("delete_range"), r, limit);
        let r = kv
            .raw_compare_and_swap(RawCompareAndSwapRequest {
                context: c,
                key: key.clone(),
                value: b("v"),
                previous_not_exist: true,
                ..Default::default()
            })
            .await;
        expect_invalid(&what("cas"), r, limit);
    }
    let ctx = Some(ctx);

    // Empty keys on writes.
    let limit = "empty key";
    absent.push(Vec::new());
    absent.push(b"empty/ok".to_vec());
    let r = kv
        .raw_put(RawPutRequest {
            context: ctx,
            key: Bytes::new(),
            value: b("v"),
        })
        .await;
    expect_invalid("empty key: put", r, limit);
    let r = kv
        .raw_batch_put(RawBatchPutRequest {
            context: ctx,
            pairs: vec![pair("empty/ok", "v"), pair("", "v")],
        })
        .await;
    expect_invalid("empty key: batch_put", r, limit);
    let r = kv
        .raw_delete(RawDeleteRequest {
            context: ctx,
            key: Bytes::new(),
        })
        .await;
    expect_invalid("empty key: delete", r, limit);
    let r = kv
        .raw_batch_delete(RawBatchDeleteRequest {
            context: ctx,
            keys: vec![b(VICTIMS[0]), Bytes::new()],
        })
        .await;
    expect_invalid("empty key: batch_delete", r, limit);
    let r = kv
        .raw_compare_and_swap(RawCompareAndSwapRequest {
            context: ctx,
            key: Bytes::new(),
            value: b("v"),
            previous_not_exist: true,
            ..Default::default()
        })
        .await;
    expect_invalid("empty key: cas", r, limit);

    // A key one byte past the limit, on every RPC that takes keys.
    let limit = "8192-byte limit";
    let long = Bytes::from(vec![b'k'; MAX_KEY + 1]);
    absent.push(long.to_vec());
    absent.push(b"long/ok".to_vec());
    let r = kv
        .raw_get(RawGetRequest {
            context: ctx,
            key: long.clone(),
        })
        .await;
    expect_invalid("long key: get", r, limit);
    let r = kv
        .raw_batch_get(RawBatchGetRequest {
            context: ctx,
            keys: vec![b("long/ok"), long.clone()],
        })
        .await;
    expect_invalid("long key: batch_get", r, limit);
    let r = kv
        .raw_put(RawPutRequest {
            context: ctx,
            key: long.clone(),
            value: b("v"),
        })
        .await;
    expect_invalid("long key: put", r, limit);
    let r = kv
        .raw_batch_put(RawBatchPutRequest {
            context: ctx,
            pairs: vec![
                pair("long/ok", "v"),
                KvPair {
                    key: long.clone(),
                    value: b("v"),
                },
            ],
        })
        .await;
    expect_invalid("long key: batch_put", r, limit);
    let r = kv
        .raw_delete(RawDeleteRequest {
            context: ctx,
            key: long.clone(),
        })
        .await;
    expect_invalid("long key: delete", r, limit);
    let r = kv
        .raw_batch_delete(RawBatchDeleteRequest {
            context: ctx,
            keys: vec![b(VICTIMS[0]), long.clone()],
        })
        .await;
    expect_invalid("long key: batch_delete", r, limit);
    let r = kv
        .raw_compare_and_swap(RawCompareAndSwapRequest {
            context: ctx,
            key: long.clone(),
            value: b("v"),
            previous_not_exist: true,
            ..Default::default()
        })
        .await;
    expect_invalid("long key: cas", r, limit);
    for reverse in [false, true] {
        let (start, end) = if reverse {
            (b(""), b("victim/"))
        } else {
            (b("victim/"), b(""))
        };
        let r = kv
            .raw_scan(RawScanRequest {
                context: ctx,
                start_key: long.clone(),
                end_key: end,
                limit: 10,
                key_only: false,
                reverse,
            })
            .await;
        expect_invalid(
            &format!("long key: scan start (reverse {reverse})"),
            r,
            limit,
        );
        let r = kv
            .raw_scan(RawScanRequest {
                context: ctx,
                start_key: start,
                end_key: long.clone(),
                limit: 10,
                key_only: false,
                reverse,
            })
            .await;
        expect_invalid(&format!("long key: scan end (reverse {reverse})"), r, limit);
    }
    // Both ranges would cover the victims.
    let r = kv
        .raw_delete_range(RawDeleteRangeRequest {
            context: ctx,
            start_key: long.clone(),
            end_key: Bytes::new(),
        })
        .await;
    expect_invalid("long key: delete_range start", r, limit);
    let r = kv
        .raw_delete_range(RawDeleteRangeRequest {
            context: ctx,
            start_key: Bytes::new(),
            end_key: long.clone(),
        })
        .await;
    expect_invalid("long key: delete_range end", r, limit);

    // A value one byte past the limit.
    let limit = "8388608-byte limit";
    let huge = Bytes::from(vec![b'v'; MAX_VALUE + 1]);
    absent.push(b"huge/put".to_vec());
    absent.push(b"huge/ok".to_vec());
    absent.push(b"huge/bput".to_vec());
    absent.push(b"huge/cas".to_vec());
    let r = kv
        .raw_put(RawPutRequest {
            context: ctx,
            key: b("huge/put"),
            value: huge.clone(),
        })
        .await;
    expect_invalid("huge value: put", r, limit);
    let r = kv
        .raw_batch_put(RawBatchPutRequest {
            context: ctx,
            pairs: vec![
                pair("huge/ok", "v"),
                KvPair {
                    key: b("huge/bput"),
                    value: huge.clone(),
                },
            ],
        })
        .await;
    expect_invalid("huge value: batch_put", r, limit);
    let r = kv
        .raw_compare_and_swap(RawCompareAndSwapRequest {
            context: ctx,
            key: b("huge/cas"),
            value: huge.clone(),
            previous_not_exist: true,
            ..Default::default()
        })
        .await;
    expect_invalid("huge value: cas value", r, limit);
    // The key exists, and a swap from a too-big previous value would
    // never match; still refused outright.
    let r = kv
        .raw_compare_and_swap(RawCompareAndSwapRequest {
            context: ctx,
            key: b(VICTIMS[1]),
            value: b("swapped"),
            previous_value: huge.clone(),
            previous_not_exist: false,
        })
        .await;
    expect_invalid("huge value: cas previous_value", r, limit);
    drop(huge);

    // Too many keys.
    let limit = "10000-key limit";
    let many: Vec<Bytes> = (0..=MAX_BATCH_KEYS)
        .map(|n| b(format!("many/{n:05}")))
        .collect();
    absent.push(b"many/00000".to_vec());
    absent.push(b"many/10000".to_vec());
    let r = kv
        .raw_batch_get(RawBatchGetRequest {
            context: ctx,
            keys: many.clone(),
        })
        .await;
    expect_invalid("10,001 keys: batch_get", r, limit);
    let r = kv
        .raw_batch_put(RawBatchPutRequest {
            context: ctx,
            pairs: many
                .iter()
                .map(|k| KvPair {
                    key: k.clone(),
                    value: b("v"),
                })
                .collect(),
        })
        .await;
    expect_invalid("10,001 keys: batch_put", r, limit);
    let mut with_victim = many.clone();
    with_victim[0] = b(VICTIMS[0]);
    let r = kv
        .raw_batch_delete(RawBatchDeleteRequest {
            context: ctx,
            keys: with_victim,
        })
        .await;
    expect_invalid("10,001 keys: batch_delete", r, limit);

    // Too many bytes (each key and value within its own limit).
    let limit = "33554432-byte limit";
    let seven = Bytes::from(vec![b'v'; 7 << 20]);
    let pairs: Vec<KvPair> = (0..5)
        .map(|n| KvPair {
            key: b(format!("fat/{n}")),
            value: seven.clone(),
        })
        .collect();
    absent.extend(pairs.iter().map(|p| p.key.to_vec()));
    let r = kv
        .raw_batch_put(RawBatchPutRequest {
            context: ctx,
            pairs,
        })
        .await;
    expect_invalid("35 MiB: batch_put", r, limit);
    drop(seven);
    let count = MAX_BATCH_BYTES / MAX_KEY + 1;
    let fat_keys: Vec<Bytes> = (0..count)
        .map(|n| {
            let mut k = format!("fatkey/{n:05}/").into_bytes();
            k.resize(MAX_KEY, b'k');
            Bytes::from(k)
        })
        .collect();
    let r = kv
        .raw_batch_get(RawBatchGetRequest {
            context: ctx,
            keys: fat_keys.clone(),
        })
        .await;
    expect_invalid("32 MiB + 8 KiB of keys: batch_get", r, limit);
    let mut with_victim = fat_keys;
    with_victim[0] = b(VICTIMS[0]);
    let r = kv
        .raw_batch_delete(RawBatchDeleteRequest {
            context: ctx,
            keys: with_victim,
        })
        .await;
    expect_invalid("32 MiB + 8 KiB of keys: batch_delete", r, limit);

    // Empty batches.
    let limit = "empty batch";
    let r = kv
        .raw_batch_get(RawBatchGetRequest {
            context: ctx,
            keys: vec![],
        })
        .await;
    expect_invalid("empty batch: batch_get", r, limit);
    let r = kv
        .raw_batch_put(RawBatchPutRequest {
            context: ctx,
            pairs: vec![],
        })
        .await;
    expect_invalid("empty batch: batch_put", r, limit);
    let r = kv
        .raw_batch_delete(RawBatchDeleteRequest {
            context: ctx,
            keys: vec![],
        })
        .await;
    expect_invalid("empty batch: batch_delete", r, limit);

    // Scan limits and inverted ranges.
    for reverse in [false, true] {
        for bad in [0, MAX_SCAN_LIMIT + 1] {
            let r = kv
                .raw_scan(RawScanRequest {
                    context: ctx,
                    limit: bad,
                    reverse,
                    ..Default::default()
                })
                .await;
            expect_invalid(
                &format!("scan limit {bad} (reverse {reverse})"),
                r,
                &format!("scan limit {bad} is outside 1..=10000"),
            );
        }
    }
    let inverted = [
        ("forward, start > end", "victim/b", "victim/a", false),
        ("forward, start == end", "victim/a", "victim/a", false),
        ("reverse, end > start", "victim/a", "victim/b", true),
        ("reverse, end == start", "victim/a", "victim/a", true),
    ];
    for (case, start, end, reverse) in inverted {
        let r = kv
            .raw_scan(RawScanRequest {
                context: ctx,
                start_key: b(start),
                end_key: b(end),
                limit: 10,
                key_only: false,
                reverse,
            })
            .await;
        expect_invalid(case, r, "inverted scan range");
    }
    for (case, start, end) in [
        ("delete_range start > end", "victim/c", "victim/a"),
        ("delete_range start == end", "victim/a", "victim/a"),
    ] {
        let r = kv
            .raw_delete_range(RawDeleteRangeRequest {
                context: ctx,
                start_key: b(start),
                end_key: b(end),
            })
            .await;
        expect_invalid(case, r, "inverted delete range");
    }

    // Nothing of it was written (a later write applied, so anything
    // proposed earlier would have, too).
    still_serves(&cluster, "limits").await;
    for key in &absent {
        assert_nowhere(&cluster, key, "request past the limits");
    }
    for v in VICTIMS {
        assert_everywhere(&cluster, v.as_bytes(), b"alive", "request past the limits");
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_exactly_at_the_limits_are_served() {
    let cluster = Cluster::start(1).await;
    let first = cluster.first_region().await;
    let (i, ctx) = cluster.leader_context(first).await;
    let mut kv = big_kv(&cluster, i).await;
    let ctx = Some(ctx);

    // A key of exactly 8 KiB: written, read, scanned, swapped, deleted.
    let mut key = b"edge/key/".to_vec();
    key.resize(MAX_KEY, b'k');
    let key = Bytes::from(key);
    let r = kv
        .raw_put(RawPutRequest {
            context: ctx,
            key: key.clone(),
            value: b("8k"),
        })
        .await;
    expect_ok("8 KiB key: put", r);
    let r = kv
        .raw_get(RawGetRequest {
            context: ctx,
            key: key.clone(),
        })
        .await;
    let got = expect_ok("8 KiB key: get", r);
    assert!(!got.not_found);
    assert_eq!(&got.value[..], b"8k");
    let r = kv
        .raw_batch_get(RawBatchGetRequest {
            context: ctx,
            keys: vec![key.clone()],
        })
        .await;
    assert_eq!(
        expect_ok("8 KiB key: batch_get", r).pairs,
        vec![KvPair {
            key: key.clone(),
            value: b("8k")
        }]
    );
    let r = kv
        .raw_scan(RawScanRequest {
            context: ctx,
            start_key: key.clone(),
            end_key: Bytes::new(),
            limit: 1,
            key_only: true,
            reverse: false,
        })
        .await;
    let kvs = expect_ok("8 KiB key: scan from it", r).kvs;
    assert_eq!(kvs.len(), 1);
    assert_eq!(kvs[0].key, key);
    let r = kv
        .raw_compare_and_swap(RawCompareAndSwapRequest {
            context: ctx,
            key: key.clone(),
            value: b("8k'"),
            previous_value: b("8k"),
            previous_not_exist: false,
        })
        .await;
    assert!(expect_ok("8 KiB key: cas", r).succeed);
    assert_eq!(on_store(&cluster, i, &key), Some(b"8k'".to_vec()));
    // As the ends of ranges: a scan ending at the next 8 KiB key, and a
    // range delete from one to the other.
    let mut next = key.to_vec();
    *next.last_mut().unwrap() += 1;
    let next = Bytes::from(next);
    let r = kv
        .raw_scan(RawScanRequest {
            context: ctx,
            start_key: b("edge/"),
            end_key: next.clone(),
            limit: 10,
            key_only: false,
            reverse: false,
        })
        .await;
    let kvs = expect_ok("8 KiB key: scan up to one", r).kvs;
    assert_eq!(kvs.len(), 1);
    assert_eq!((&kvs[0].key, &kvs[0].value[..]), (&key, &b"8k'"[..]));
    let r = kv
        .raw_scan(RawScanRequest {
            context: ctx,
            start_key: next.clone(),
            end_key: key.clone(),
            limit: 10,
            key_only: true,
            reverse: true,
        })
        .await;
    let kvs = expect_ok("8 KiB key: reverse scan between two", r).kvs;
    assert_eq!(kvs.len(), 1);
    assert_eq!(kvs[0].key, key);
    let r = kv
        .raw_delete_range(RawDeleteRangeRequest {
            context: ctx,
            start_key: key.clone(),
            end_key: next.clone(),
        })
        .await;
    expect_ok("8 KiB keys: delete_range", r);
    assert_eq!(on_store(&cluster, i, &key), None);
    let r = kv
        .raw_delete(RawDeleteRequest {
            context: ctx,
            key: key.clone(),
        })
        .await;
    expect_ok("8 KiB key: delete", r);

    // A value of exactly 8 MiB: put, read back, swapped from and to.
    let big = Bytes::from(vec![b'v'; MAX_VALUE]);
    let r = kv
        .raw_put(RawPutRequest {
            context: ctx,
            key: b("edge/value"),
            value: big.clone(),
        })
        .await;
    expect_ok("8 MiB value: put", r);
    let r = kv
        .raw_get(RawGetRequest {
            context: ctx,
            key: b("edge/value"),
        })
        .await;
    let got = expect_ok("8 MiB value: get", r);
    assert_eq!(got.value.len(), MAX_VALUE);
    assert!(got.value == big, "8 MiB value read back differs");
    let other = Bytes::from(vec![b'w'; MAX_VALUE]);
    let r = kv
        .raw_compare_and_swap(RawCompareAndSwapRequest {
            context: ctx,
            key: b("edge/value"),
            value: other.clone(),
            previous_value: big.clone(),
            previous_not_exist: false,
        })
        .await;
    let cas = expect_ok("8 MiB value: cas", r);
    assert!(cas.succeed && !cas.previous_not_exist);
    assert!(cas.previous_value == big, "cas previous value differs");
    assert!(on_store(&cluster, i, b"edge/value").as_deref() == Some(&other[..]));
    drop((big, other));

    // A batch of exactly 10,000 keys.
    let keys: Vec<Bytes> = (0..MAX_BATCH_KEYS)
        .map(|n| b(format!("edge/batch/{n:05}")))
        .collect();
    let r = kv
        .raw_batch_put(RawBatchPutRequest {
            context: ctx,
            pairs: keys
                .iter()
                .map(|k| KvPair {
                    key: k.clone(),
                    value: k.clone(),
                })
                .collect(),
        })
        .await;
    expect_ok("10,000 keys: batch_put", r);
    let r = kv
        .raw_batch_get(RawBatchGetRequest {
            context: ctx,
            keys: keys.clone(),
        })
        .await;
    let pairs = expect_ok("10,000 keys: batch_get", r).pairs;
    assert_eq!(pairs.len(), MAX_BATCH_KEYS);
    assert!(pairs
        .iter()
        .zip(&keys)
        .all(|(p, k)| p.key == k && p.value == k));
    let r = kv
        .raw_scan(RawScanRequest {
            context: ctx,
            start_key: b("edge/batch/"),
            end_key: b("edge/batch0"),
            limit: MAX_SCAN_LIMIT,
            key_only: true,
            reverse: false,
        })
        .await;
    let kvs = expect_ok("scan limit 10,000", r).kvs;
    assert_eq!(kvs.len(), MAX_BATCH_KEYS);
    let r = kv
        .raw_batch_delete(RawBatchDeleteRequest {
            context: ctx,
            keys: keys.clone(),
        })
        .await;
    expect_ok("10,000 keys: batch_delete", r);
    assert_eq!(on_store(&cluster, i, &keys[0]), None);
    assert_eq!(on_store(&cluster, i, &keys[MAX_BATCH_KEYS - 1]), None);

    // A batch of exactly 32 MiB of keys and values.
    let pairs: Vec<KvPair> = (0..4)
        .map(|n| {
            let key = b(format!("edge/fat/{n}"));
            let value = Bytes::from(vec![b'0' + n as u8; MAX_VALUE - key.len()]);
            KvPair { key, value }
        })
        .collect();
    let total: usize = pairs.iter().map(|p| p.key.len() + p.value.len()).sum();
    assert_eq!(total, MAX_BATCH_BYTES);
    let r = kv
        .raw_batch_put(RawBatchPutRequest {
            context: ctx,
            pairs: pairs.clone(),
        })
        .await;
    expect_ok("32 MiB: batch_put", r);
    let r = kv
        .raw_batch_get(RawBatchGetRequest {
            context: ctx,
            keys: pairs.iter().map(|p| p.key.clone()).collect(),
        })
        .await;
    let got = expect_ok("32 MiB: batch_get", r).pairs;
    assert!(got == pairs, "32 MiB batch read back differs");

    still_serves(&cluster, "edges").await;
    cluster.shutdown().await;
}
