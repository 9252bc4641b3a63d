//! Writes and reads through real gRPC on a 3-store cluster.

mod common;

use common::*;
use flotilla_proto::kvrpcpb::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_stores_bootstrap_one_region_with_three_voters_and_serve() {
    let cluster = Cluster::start(3).await;
    let first = cluster.first_region().await;
    let (_, region, _) = common::poll("a leader", || cluster.leader_of(first)).await;
    assert_eq!(
        region.peers.len(),
        3,
        "the first region starts with max-replicas voters"
    );
    for i in 0..100u32 {
        cluster
            .put(format!("k{i:03}").as_bytes(), format!("v{i}").as_bytes())
            .await;
    }
    for i in (0..100u32).step_by(7) {
        assert_eq!(
            cluster.get(format!("k{i:03}").as_bytes()).await,
            Some(format!("v{i}").into_bytes())
        );
    }
    assert_eq!(cluster.get(b"missing").await, None);
    // Every replica applied the writes.
    wait_for("all replicas applied", LONG, || async {
        cluster.stores.iter().flatten().all(|s| {
            s.context()
                .engine
                .get("default", b"k099")
                .ok()
                .flatten()
                .is_some()
        })
    })
    .await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn followers_redirect_and_serve_follower_reads() {
    let cluster = Cluster::start(3).await;
    cluster.put(b"a", b"1").await;
    let first = cluster.first_region().await;
    let (leader, ctx) = cluster.leader_context(first).await;
    let follower = (leader + 1) % 3;
    let mut kv = cluster.kv(follower).await;
    // Sent to the wrong store for the peer it names: StoreNotMatch.
    let resp = kv
        .raw_get(RawGetRequest {
            context: Some(ctx),
            key: "a".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(resp.region_error.and_then(|e| e.store_not_match).is_some());
    // Addressed to the follower's peer: NotLeader, naming the leader.
    let follower_id = cluster.store(follower).store_id();
    let region = cluster.leader_of(first).unwrap().1;
    let follower_peer = region
        .peers
        .iter()
        .find(|p| p.store_id == follower_id)
        .cloned();
    let to_follower = Context {
        peer: follower_peer,
        ..ctx
    };
    let resp = kv
        .raw_get(RawGetRequest {
            context: Some(to_follower),
            key: "a".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let not_leader = resp
        .region_error
        .and_then(|e| e.not_leader)
        .expect("NotLeader");
    assert_eq!(
        not_leader.leader.map(|p| p.id),
        ctx.peer.as_ref().map(|p| p.id)
    );
    let follower_ctx = Context {
        follower_read: true,
        ..to_follower
    };
    let resp = kv
        .raw_get(RawGetRequest {
            context: Some(follower_ctx),
            key: "a".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(resp.region_error.is_none(), "{:?}", resp.region_error);
    assert_eq!(&resp.value[..], b"1");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pd_learns_each_new_leader_from_the_heartbeats() {
    use flotilla_client::pd::{PdClient, PdClientConfig};

    let mut cluster = Cluster::start(3).await;
    let first = cluster.first_region().await;
    let pd = PdClient::connect(
        std::slice::from_ref(&cluster.pd_endpoint),
        PdClientConfig::default(),
    )
    .await
    .unwrap();
    let pd_leader = || async {
        pd.get_region(b"any key")
            .await
            .ok()
            .flatten()
            .and_then(|info| info.leader)
    };
    let (leader, _, peer) = cluster.leader_of(first).unwrap();
    wait_for("PD to learn the leader", LONG, || async {
        pd_leader().await == Some(peer)
    })
    .await;
    cluster.stop_store(leader).await;
    cluster.put(b"k", b"v").await;
    let (_, _, new_peer) = cluster.leader_of(first).unwrap();
    assert_ne!(new_peer.id, peer.id);
    wait_for("PD to learn the new leader", LONG, || async {
        pd_leader().await == Some(new_peer)
    })
    .await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_store_metric_family_is_exported() {
    let cluster = Cluster::start(1).await;
    cluster.put(b"m", b"1").await;
    assert_eq!(cluster.get(b"m").await, Some(b"1".to_vec()));
    let text = cluster.store(0).context().metrics.render();
    for family in [
        "flotilla_store_proposals_total",
        "flotilla_store_propose_duration_seconds",
        "flotilla_store_log_persist_duration_seconds",
        "flotilla_store_log_persist_batch_regions",
        "flotilla_store_log_persist_batch_entries",
        "flotilla_store_write_commit_apply_duration_seconds",
        "flotilla_store_apply_write_duration_seconds",
        "flotilla_store_raft_send_batch_messages",
        "flotilla_store_raft_messages_dropped_total",
        "flotilla_store_regions",
        "flotilla_store_leaders",
        "flotilla_store_hibernated_regions",
        "flotilla_store_unreachable_stores",
        "flotilla_store_splits_total",
        "flotilla_store_lease_reads_total",
        "flotilla_store_read_index_reads_total",
        "flotilla_store_kv_requests_total",
        "flotilla_store_kv_request_duration_seconds",
        "flotilla_store_engine_live_data_bytes",
        "flotilla_store_engine_write_stall",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} missing"
        );
    }
    let line = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    assert_eq!(line("flotilla_store_regions"), 1.0);
    assert_eq!(line("flotilla_store_leaders"), 1.0);
    assert!(line("flotilla_store_proposals_total") >= 1.0);
    assert!(line("flotilla_store_log_persist_batch_entries_count") >= 1.0);
    cluster.shutdown().await;
}
