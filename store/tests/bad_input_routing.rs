//! Bad input, routing: a request the store cannot serve for its region
//! (unknown region, stale or missing epoch, wrong store, follower) gets a
//! typed `RegionError` on every KV RPC, and nothing of it is written on any
//! store; a data directory of another cluster is refused at start.

mod common;

use bytes::Bytes;
use common::kv::*;
use common::*;
use flotilla_proto::kvrpcpb::kv_client::KvClient;
use flotilla_proto::kvrpcpb::*;
use flotilla_proto::metapb;
use tonic::transport::Channel;

// ---------------------------------------------------------------------------
// Region errors
// ---------------------------------------------------------------------------

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
    let (_, region, leader_peer) = common::poll("a leader", || cluster.leader_of(first)).await;
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
