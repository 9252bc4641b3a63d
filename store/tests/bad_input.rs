//! Bad input on every KV RPC: a request the store cannot serve for its
//! region gets a typed `RegionError`, a request past the limits gets gRPC
//! `INVALID_ARGUMENT` naming the limit — never a panic, and nothing of it
//! is written on any store. Also the exact limits (accepted), and the
//! semantics of compare-and-swap, scans and range deletes over gRPC.

mod common;

use std::fmt::Debug;

use bytes::Bytes;
use common::*;
use flotilla_proto::kvrpcpb::kv_client::KvClient;
use flotilla_proto::kvrpcpb::*;
use flotilla_proto::metapb;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// The documented limits (kvrpcpb.proto), spelled out independently of
/// the store's constants.
const MAX_KEY: usize = 8 << 10;
const MAX_VALUE: usize = 8 << 20;
const MAX_BATCH_KEYS: usize = 10_000;
const MAX_BATCH_BYTES: usize = 32 << 20;
const MAX_SCAN_LIMIT: u32 = 10_000;

fn b(s: impl AsRef<[u8]>) -> Bytes {
    Bytes::copy_from_slice(s.as_ref())
}

fn pair(k: impl AsRef<[u8]>, v: impl AsRef<[u8]>) -> KvPair {
    KvPair {
        key: b(k),
        value: b(v),
    }
}

/// A KV client of store `i` that can carry the biggest legal requests.
async fn big_kv(cluster: &Cluster, i: usize) -> KvClient<Channel> {
    cluster
        .kv(i)
        .await
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20)
}

/// What store `i` holds for `key` in its RocksDB.
fn on_store(cluster: &Cluster, i: usize, key: &[u8]) -> Option<Vec<u8>> {
    cluster
        .store(i)
        .context()
        .engine
        .get("default", key)
        .expect("engine read")
}

/// No running store holds `key`.
fn assert_nowhere(cluster: &Cluster, key: &[u8], what: &str) {
    for (i, s) in cluster.stores.iter().enumerate() {
        if s.is_some() {
            assert_eq!(
                on_store(cluster, i, key).map(|v| v.len()),
                None,
                "{what}: key {:?} was written on store {i}",
                String::from_utf8_lossy(&key[..key.len().min(40)])
            );
        }
    }
}

/// Every running store holds `key` = `value`.
fn assert_everywhere(cluster: &Cluster, key: &[u8], value: &[u8], what: &str) {
    for (i, s) in cluster.stores.iter().enumerate() {
        if s.is_some() {
            assert_eq!(
                on_store(cluster, i, key).as_deref(),
                Some(value),
                "{what}: key {:?} changed on store {i}",
                String::from_utf8_lossy(key)
            );
        }
    }
}

/// Waits until every running store holds `key` = `value`.
async fn wait_everywhere(cluster: &Cluster, key: &[u8], value: &[u8]) {
    wait_for("every replica applied", LONG, || async {
        cluster
            .stores
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_some())
            .all(|(i, _)| on_store(cluster, i, key).as_deref() == Some(value))
    })
    .await;
}

/// Responses that carry a region error.
trait HasRegionError: Debug {
    fn region_error(&self) -> Option<&RegionError>;
}

macro_rules! has_region_error {
    ($($t:ty),*) => {$(
        impl HasRegionError for $t {
            fn region_error(&self) -> Option<&RegionError> {
                self.region_error.as_ref()
            }
        }
    )*};
}

has_region_error!(
    RawGetResponse,
    RawBatchGetResponse,
    RawPutResponse,
    RawBatchPutResponse,
    RawDeleteResponse,
    RawBatchDeleteResponse,
    RawScanResponse,
    RawDeleteRangeResponse,
    RawCompareAndSwapResponse
);

/// The region error of a response that must have one.
fn expect_region_error<T: HasRegionError>(
    what: &str,
    r: Result<tonic::Response<T>, Status>,
) -> RegionError {
    match r {
        Ok(r) => r
            .get_ref()
            .region_error()
            .cloned()
            .unwrap_or_else(|| panic!("{what}: served, expected a region error: {r:?}")),
        Err(s) => panic!("{what}: gRPC error {s:?}, expected a region error"),
    }
}

/// A response that must have succeeded.
fn expect_ok<T: HasRegionError>(what: &str, r: Result<tonic::Response<T>, Status>) -> T {
    match r {
        Ok(r) => {
            let r = r.into_inner();
            assert!(r.region_error().is_none(), "{what}: region error {r:?}");
            r
        }
        Err(s) => panic!("{what}: gRPC error {s:?}"),
    }
}

/// A request that must have failed with INVALID_ARGUMENT naming `limit`.
fn expect_invalid<T: Debug>(what: &str, r: Result<tonic::Response<T>, Status>, limit: &str) {
    match r {
        Ok(r) => panic!(
            "{what}: accepted, expected INVALID_ARGUMENT: {:?}",
            r.get_ref()
        ),
        Err(s) => {
            assert_eq!(s.code(), Code::InvalidArgument, "{what}: {s:?}");
            assert!(
                s.message().contains(limit),
                "{what}: message {:?} does not name {limit:?}",
                s.message()
            );
        }
    }
}

/// A normal write and read still work (the store survived everything).
async fn still_serves(cluster: &Cluster, tag: &str) {
    let key = format!("{tag}/alive");
    cluster.put(key.as_bytes(), b"yes").await;
    assert_eq!(cluster.get(key.as_bytes()).await, Some(b"yes".to_vec()));
}

// ---------------------------------------------------------------------------
// Region errors
// ---------------------------------------------------------------------------

/// Keys the refused deletes aim at; written before, must survive.
const VICTIMS: [&str; 3] = ["victim/a", "victim/b", "victim/c"];

/// The keys the refused writes of case `tag` would create.
fn refused_write_keys(tag: &str) -> Vec<String> {
    ["put", "bput1", "bput2", "cas"]
        .iter()
        .map(|k| format!("{tag}/{k}"))
        .collect()
}

/// Sends every kind of RPC with `ctx`; each must be refused with a region
/// error, returned with the RPC's name. Writes name the keys of
/// [`refused_write_keys`]; deletes aim at the [`VICTIMS`].
async fn every_rpc_refused(
    kv: &mut KvClient<Channel>,
    ctx: Context,
    tag: &str,
) -> Vec<(&'static str, RegionError)> {
    let ctx = Some(ctx);
    let k = |s: &str| b(format!("{tag}/{s}"));
    let victims: Vec<Bytes> = VICTIMS.iter().map(b).collect();
    let mut out = Vec::new();
    let r = kv
        .raw_get(timed(RawGetRequest {
            context: ctx,
            key: b(VICTIMS[0]),
        }))
        .await;
    out.push(("RawGet", expect_region_error(tag, r)));
    let r = kv
        .raw_batch_get(timed(RawBatchGetRequest {
            context: ctx,
            keys: victims.clone(),
        }))
        .await;
    out.push(("RawBatchGet", expect_region_error(tag, r)));
    let r = kv
        .raw_put(timed(RawPutRequest {
            context: ctx,
            key: k("put"),
            value: b("x"),
        }))
        .await;
    out.push(("RawPut", expect_region_error(tag, r)));
    let r = kv
        .raw_batch_put(timed(RawBatchPutRequest {
            context: ctx,
            pairs: vec![
                pair(format!("{tag}/bput1"), "x"),
                pair(format!("{tag}/bput2"), "x"),
            ],
        }))
        .await;
    out.push(("RawBatchPut", expect_region_error(tag, r)));
    let r = kv
        .raw_delete(timed(RawDeleteRequest {
            context: ctx,
            key: b(VICTIMS[0]),
        }))
        .await;
    out.push(("RawDelete", expect_region_error(tag, r)));
    let r = kv
        .raw_batch_delete(timed(RawBatchDeleteRequest {
            context: ctx,
            keys: victims.clone(),
        }))
        .await;
    out.push(("RawBatchDelete", expect_region_error(tag, r)));
    let r = kv
        .raw_scan(timed(RawScanRequest {
            context: ctx,
            start_key: b("victim/"),
            end_key: b("victim0"),
            limit: 10,
            key_only: false,
            reverse: false,
        }))
        .await;
    out.push(("RawScan", expect_region_error(tag, r)));
    let r = kv
        .raw_scan(timed(RawScanRequest {
            context: ctx,
            start_key: Bytes::new(),
            end_key: Bytes::new(),
            limit: 10,
            key_only: true,
            reverse: true,
        }))
        .await;
    out.push(("RawScan (reverse)", expect_region_error(tag, r)));
    let r = kv
        .raw_delete_range(timed(RawDeleteRangeRequest {
            context: ctx,
            start_key: b("victim/"),
            end_key: b("victim0"),
        }))
        .await;
    out.push(("RawDeleteRange", expect_region_error(tag, r)));
    let r = kv
        .raw_compare_and_swap(timed(RawCompareAndSwapRequest {
            context: ctx,
            key: k("cas"),
            value: b("x"),
            previous_value: Bytes::new(),
            previous_not_exist: true,
        }))
        .await;
    out.push(("RawCompareAndSwap", expect_region_error(tag, r)));
    out
}

/// Nothing of case `tag` was written, and the victims are intact.
fn assert_nothing_written(cluster: &Cluster, tag: &str) {
    for key in refused_write_keys(tag) {
        assert_nowhere(cluster, key.as_bytes(), tag);
    }
    for v in VICTIMS {
        assert_everywhere(cluster, v.as_bytes(), b"alive", tag);
    }
}

/// Which kinds of error are set (a region error carries exactly one).
fn kinds(e: &RegionError) -> Vec<&'static str> {
    let mut k = Vec::new();
    if e.not_leader.is_some() {
        k.push("not_leader");
    }
    if e.region_not_found.is_some() {
        k.push("region_not_found");
    }
    if e.epoch_not_match.is_some() {
        k.push("epoch_not_match");
    }
    if e.key_not_in_region.is_some() {
        k.push("key_not_in_region");
    }
    if e.server_is_busy.is_some() {
        k.push("server_is_busy");
    }
    if e.stale_command.is_some() {
        k.push("stale_command");
    }
    if e.raft_entry_too_large.is_some() {
        k.push("raft_entry_too_large");
    }
    if e.store_not_match.is_some() {
        k.push("store_not_match");
    }
    k
}

fn assert_kind(case: &str, rpc: &str, e: &RegionError, kind: &str) {
    assert_eq!(kinds(e), vec![kind], "{case}, {rpc}: {e:?}");
    assert!(!e.message.is_empty(), "{case}, {rpc}: no message");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn misrouted_requests_get_typed_region_errors_and_write_nothing() {
    let cluster = Cluster::start(3).await;
    for v in VICTIMS {
        cluster.put(v.as_bytes(), b"alive").await;
    }
    for v in VICTIMS {
        wait_everywhere(&cluster, v.as_bytes(), b"alive").await;
    }
    let first = cluster.first_region().await;
    let (leader, ctx) = cluster.leader_context(first).await;
    let (_, region, leader_peer) = cluster.leader_of(first).expect("leader");
    assert!(
        region.start_key.is_empty() && region.end_key.is_empty(),
        "the first region covers the whole key space: {region:?}"
    );
    let epoch = region.region_epoch.expect("epoch");
    let follower = (leader + 1) % 3;
    let follower_store = cluster.store(follower).store_id();
    let follower_peer = *region
        .peers
        .iter()
        .find(|p| p.store_id == follower_store)
        .expect("a peer on the follower's store");
    let mut to_leader = cluster.kv(leader).await;
    let mut to_follower = cluster.kv(follower).await;

    // No such region on the store.
    let missing = first + 1_000;
    let case = "unknown region";
    let bad = Context {
        region_id: missing,
        ..ctx
    };
    for (rpc, e) in every_rpc_refused(&mut to_leader, bad, "unknown").await {
        assert_kind(case, rpc, &e, "region_not_found");
        assert_eq!(e.region_not_found.unwrap().region_id, missing, "{case}");
    }
    assert_nothing_written(&cluster, "unknown");

    // Stale (or future) epochs, and none at all.
    let epochs = [
        (
            "epoch-older",
            Some(metapb::RegionEpoch {
                version: epoch.version.wrapping_sub(1),
                ..epoch
            }),
        ),
        (
            "epoch-newer",
            Some(metapb::RegionEpoch {
                version: epoch.version + 1,
                ..epoch
            }),
        ),
        ("epoch-none", None),
    ];
    for (tag, e) in epochs {
        let bad = Context {
            region_epoch: e,
            ..ctx
        };
        for (rpc, err) in every_rpc_refused(&mut to_leader, bad, tag).await {
            assert_kind(tag, rpc, &err, "epoch_not_match");
            let current = err.epoch_not_match.unwrap().current_regions;
            let now = current
                .iter()
                .find(|r| r.id == first)
                .unwrap_or_else(|| panic!("{tag}, {rpc}: region {first} not in {current:?}"));
            assert_eq!(now.region_epoch, Some(epoch), "{tag}, {rpc}: current epoch");
            assert_eq!(now, &region, "{tag}, {rpc}: current region");
        }
        assert_nothing_written(&cluster, tag);
    }

    // A peer on another store: the follower's peer, sent to the leader's
    // store; and the leader's peer, sent to the follower's store.
    let leader_store = cluster.store(leader).store_id();
    let cases = [
        (
            "store-follower-peer",
            &mut to_leader,
            follower_peer,
            follower_store,
            leader_store,
        ),
        (
            "store-leader-peer",
            &mut to_follower,
            leader_peer,
            leader_store,
            follower_store,
        ),
    ];
    for (tag, kv, peer, requested, actual) in cases {
        let bad = Context {
            peer: Some(peer),
            ..ctx
        };
        for (rpc, e) in every_rpc_refused(kv, bad, tag).await {
            assert_kind(tag, rpc, &e, "store_not_match");
            let m = e.store_not_match.unwrap();
            assert_eq!(
                (m.request_store_id, m.actual_store_id),
                (requested, actual),
                "{tag}, {rpc}"
            );
        }
        assert_nothing_written(&cluster, tag);
    }

    // Addressed to a follower's own peer: NotLeader, naming the leader.
    let tag = "follower";
    let bad = Context {
        peer: Some(follower_peer),
        ..ctx
    };
    for (rpc, e) in every_rpc_refused(&mut to_follower, bad, tag).await {
        assert_kind(tag, rpc, &e, "not_leader");
        let nl = e.not_leader.unwrap();
        assert_eq!(nl.region_id, first, "{tag}, {rpc}");
        assert_eq!(nl.leader, Some(leader_peer), "{tag}, {rpc}");
    }
    assert_nothing_written(&cluster, tag);

    // A write after all of them that every replica applies: anything
    // proposed before it would be applied by now, too.
    cluster.put(b"barrier", b"1").await;
    wait_everywhere(&cluster, b"barrier", b"1").await;
    for tag in [
        "unknown",
        "epoch-older",
        "epoch-newer",
        "epoch-none",
        "store-follower-peer",
        "store-leader-peer",
        "follower",
    ] {
        assert_nothing_written(&cluster, tag);
    }
    still_serves(&cluster, "region-errors").await;
    cluster.shutdown().await;
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_data_directory_of_another_cluster_is_refused() {
    let mut a = Cluster::start(1).await;
    a.put(b"k", b"v").await;
    a.stop_store(0).await;
    let b = Cluster::start(1).await;
    let dir_of_a = a.dir.path().join("store-0");
    let cfg = store_config(&dir_of_a, &b.pd_endpoint);
    let err = flotilla_store::server::Store::start(cfg)
        .await
        .err()
        .expect("a store of cluster A does not join cluster B");
    assert!(
        matches!(err, flotilla_store::server::StartError::WrongCluster { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("belongs to cluster"), "{err}");
    b.shutdown().await;
    a.shutdown().await;
}
