//! Bad input over real gRPC and HTTP: every refusal is a clear error type
//! and message, the member keeps serving, and nothing is persisted —
//! routing and stores are unchanged, also after a restart.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use flotilla_proto::metapb;
use flotilla_proto::pdpb::*;

/// Panics in server threads (tokio workers, the Raft loop): tokio would
/// otherwise swallow a panicking task. Panics of the test threads
/// themselves (failed assertions) are not counted, so one failing test
/// does not fail the others.
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            let name = thread.name().unwrap_or("");
            if name.starts_with("tokio-") || name == "pd-raft" || name.is_empty() {
                PANICS.fetch_add(1, Ordering::SeqCst);
            }
            default(info);
        }));
    });
}

/// One member, stores 1..=3, bootstrapped and split into A `["", g)`,
/// B `[g, p)` and the first region `[p, "")`, all led from store 1.
async fn fixture() -> (TestCluster, LeaderClient, Vec<metapb::Region>) {
    count_panics();
    let c = TestCluster::start(1).await;
    let mut client = c.client().await;
    register_stores(&mut client, 1..=3).await;
    let first = client.bootstrap(1).await.region.unwrap();
    let base = client.alloc_id(8).await;
    let peers = |id: u64| (1..=3).map(|s| peer(id + s, s)).collect::<Vec<_>>();
    let pieces = vec![
        region(base, b"", b"g", 1, 3, peers(base)),
        region(base + 4, b"g", b"p", 1, 3, peers(base + 4)),
        region(first.id, b"p", b"", 1, 3, first.peers.clone()),
    ];
    assert_ok(&client.report_split(pieces.clone()).await);
    let hb = HeartbeatStream::open(&mut client, 1).await;
    hb.send(pieces.iter().map(|r| heartbeat(r, 1)).collect())
        .await;
    // Persisted (in batches, shortly after): what a restart must bring back.
    for p in &pieces {
        wait_persisted(&c, 0, p, Some(1)).await;
    }
    (c, client, pieces)
}

/// What must not change: every region (with leader) and every store record.
#[derive(Debug, PartialEq)]
struct State {
    regions: Vec<RegionInfo>,
    stores: Vec<metapb::Store>,
}

async fn state(client: &mut LeaderClient) -> State {
    State {
        regions: client.all_regions(100).await,
        stores: client
            .all_stores()
            .await
            .into_iter()
            .map(|s| s.store.unwrap())
            .collect(),
    }
}

/// Restarts the member and checks the state it comes back with.
async fn assert_state_survives_restart(
    c: &mut TestCluster,
    client: &mut LeaderClient,
    want: &State,
) {
    // Region changes are persisted in batches from what the leader holds
    // in memory; the caller checked that is unchanged, so no refused input
    // can be waiting to be written.
    c.stop(0).await;
    c.restart(0).await;
    c.wait_leader().await;
    assert_eq!(&state(client).await, want, "state changed across a restart");
}

#[track_caller]
fn assert_err<T: HasHeader>(resp: &T, want: ErrorType, what: &str) {
    let got = error_type(resp);
    let msg = error_message(resp);
    assert_eq!(got, want, "{what}: got {got:?} ({msg})");
    assert!(!msg.is_empty(), "{what}: {want:?} without a message");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_cluster_id_is_refused_on_every_call() {
    let (mut c, mut client, pieces) = fixture().await;
    let before = state(&mut client).await;
    let mut grpc = client.raw().await;
    for cluster_id in [client.cluster_id + 1, 0] {
        // A missing header counts as cluster ID 0.
        let header = (cluster_id != 0).then_some(RequestHeader { cluster_id });
        let h = || header;
        let what = |call: &str| format!("{call} with cluster ID {cluster_id}");
        let mismatch = ErrorType::ClusterIdMismatch;
        macro_rules! call {
            ($method:ident, $req:expr) => {
                grpc.$method($req).await.unwrap().into_inner()
            };
        }
        let r = call!(
            bootstrap,
            BootstrapRequest {
                header: h(),
                store_id: 1
            }
        );
        assert_err(&r, mismatch, &what("Bootstrap"));
        assert!(r
            .header
            .unwrap()
            .error
            .unwrap()
            .message
            .contains("mismatch"));
        let r = call!(is_bootstrapped, IsBootstrappedRequest { header: h() });
        assert_err(&r, mismatch, &what("IsBootstrapped"));
        let r = call!(
            alloc_id,
            AllocIdRequest {
                header: h(),
                count: 1
            }
        );
        assert_err(&r, mismatch, &what("AllocId"));
        let mut s = store(9);
        s.address = "127.0.0.1:29999".into();
        let r = call!(
            put_store,
            PutStoreRequest {
                header: h(),
                store: Some(s)
            }
        );
        assert_err(&r, mismatch, &what("PutStore"));
        let r = call!(
            get_store,
            GetStoreRequest {
                header: h(),
                store_id: 1
            }
        );
        assert_err(&r, mismatch, &what("GetStore"));
        let r = call!(
            get_all_stores,
            GetAllStoresRequest {
                header: h(),
                exclude_tombstone_stores: false
            }
        );
        assert_err(&r, mismatch, &what("GetAllStores"));
        let stats = StoreStats {
            store_id: 1,
            ..Default::default()
        };
        let r = call!(
            store_heartbeat,
            StoreHeartbeatRequest {
                header: h(),
                stats: Some(stats)
            }
        );
        assert_err(&r, mismatch, &what("StoreHeartbeat"));
        let r = call!(
            get_region,
            GetRegionRequest {
                header: h(),
                region_key: "a".into()
            }
        );
        assert_err(&r, mismatch, &what("GetRegion"));
        let r = call!(
            get_region_by_id,
            GetRegionByIdRequest {
                header: h(),
                region_id: pieces[0].id
            }
        );
        assert_err(&r, mismatch, &what("GetRegionById"));
        let r = call!(
            scan_regions,
            ScanRegionsRequest {
                header: h(),
                limit: 10,
                ..Default::default()
            }
        );
        assert_err(&r, mismatch, &what("ScanRegions"));
        let r = call!(
            ask_batch_split,
            AskBatchSplitRequest {
                header: h(),
                region: Some(pieces[1].clone()),
                split_count: 1
            }
        );
        assert_err(&r, mismatch, &what("AskBatchSplit"));
        // A split that would be valid for the right cluster.
        let mut left = pieces[1].clone();
        left.end_key = "k".into();
        left.region_epoch = Some(metapb::RegionEpoch {
            conf_ver: 1,
            version: 9,
        });
        let mut right = region(
            5_000,
            b"k",
            b"p",
            1,
            9,
            (1..=3).map(|s| peer(5_000 + s, s)).collect(),
        );
        right.region_epoch = left.region_epoch;
        let r = call!(
            report_batch_split,
            ReportBatchSplitRequest {
                header: h(),
                regions: vec![left.clone(), right]
            }
        );
        assert_err(&r, mismatch, &what("ReportBatchSplit"));

        // The streams answer with the error, then end.
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let mut tso = grpc
            .tso(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        tx.send(TsoRequest {
            header: h(),
            count: 1,
        })
        .await
        .unwrap();
        let r = tso.message().await.unwrap().expect("a Tso answer");
        assert_err(&r, mismatch, &what("Tso"));
        assert!(tso.message().await.unwrap().is_none(), "Tso stream ends");
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let mut hb = grpc
            .region_heartbeat(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        tx.send(RegionHeartbeatRequest {
            header: h(),
            store_id: 1,
            regions: vec![heartbeat(&left, 1)],
        })
        .await
        .unwrap();
        let r = hb.message().await.unwrap().expect("a heartbeat answer");
        assert_err(&r, mismatch, &what("RegionHeartbeat"));
        assert!(
            hb.message().await.unwrap().is_none(),
            "heartbeat stream ends"
        );

        // GetMembers needs no cluster ID: it is how a caller learns it.
        let r = call!(get_members, GetMembersRequest { header: h() });
        assert_ok(&r);
        assert_eq!(r.header.unwrap().cluster_id, client.cluster_id);
    }
    assert_eq!(state(&mut client).await, before);
    assert_state_survives_restart(&mut c, &mut client, &before).await;
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "something panicked");
    c.shutdown().await;
}

/// Sends each heartbeat alone on store 1's stream; returns the rejection.
async fn rejection(hb: &mut HeartbeatStream, h: RegionHeartbeat) -> Error {
    let id = h.region.as_ref().map_or(0, |r| r.id);
    hb.send(vec![h]).await;
    let resp = hb
        .recv(Duration::from_secs(10))
        .await
        .expect("a rejection on the heartbeat stream");
    assert_eq!(resp.rejected.len(), 1, "{resp:?}");
    assert_eq!(resp.rejected[0].region_id, id);
    resp.rejected[0].error.clone().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_regions_are_refused_and_change_nothing() {
    let (mut c, mut client, pieces) = fixture().await;
    let before = state(&mut client).await;
    let mut hb = HeartbeatStream::open(&mut client, 1).await;
    // Each variant is a *newer* region over A and B: accepted, it would
    // replace them.
    let good = || {
        region(
            7_000,
            b"",
            b"p",
            1,
            10,
            (1..=3).map(|s| peer(7_000 + s, s)).collect(),
        )
    };
    let invalid = ErrorType::InvalidArgument;
    let mut cases: Vec<(&str, RegionHeartbeat, ErrorType, &str)> = Vec::new();
    let mut r = good();
    r.start_key = "z".into();
    r.end_key = "a".into();
    cases.push(("inverted range", heartbeat(&r, 1), invalid, "inverted"));
    let mut r = good();
    r.start_key = "m".into();
    r.end_key = "m".into();
    cases.push(("empty range", heartbeat(&r, 1), invalid, "inverted"));
    let mut h = heartbeat(&good(), 1);
    h.approximate_size = u64::MAX;
    cases.push(("u64::MAX approximate size", h, invalid, "beyond"));
    let mut h = heartbeat(&good(), 1);
    h.approximate_keys = u64::MAX;
    cases.push(("u64::MAX approximate keys", h, invalid, "beyond"));
    let mut h = heartbeat(&good(), 1);
    h.region.as_mut().unwrap().peers.clear();
    cases.push(("no peers", h, invalid, "peers"));
    let mut r = good();
    r.peers[2].id = r.peers[1].id;
    cases.push(("duplicate peer IDs", heartbeat(&r, 1), invalid, "twice"));
    let mut r = good();
    r.peers[2].store_id = 2;
    cases.push(("two peers on one store", heartbeat(&r, 2), invalid, "twice"));
    let mut r = good();
    r.peers[1].id = 0;
    cases.push(("peer ID 0", heartbeat(&r, 1), invalid, "0"));
    let mut h = heartbeat(&good(), 1);
    h.leader = Some(peer(99_999, 1));
    cases.push(("leader not among peers", h, invalid, "not one of its peers"));
    let mut h = heartbeat(&good(), 1);
    h.leader = None;
    cases.push(("no leader", h, invalid, "leader"));
    cases.push((
        "leader on another store",
        heartbeat(&good(), 2),
        invalid,
        "leader",
    ));
    let mut r = good();
    r.peers[2] = peer(7_003, 99);
    cases.push((
        "peer on an unknown store",
        heartbeat(&r, 1),
        ErrorType::StoreNotFound,
        "99",
    ));
    let mut r = good();
    r.id = 0;
    cases.push(("region ID 0", heartbeat(&r, 1), invalid, "0"));
    let mut r = good();
    r.region_epoch = None;
    cases.push(("no epoch", heartbeat(&r, 1), invalid, "epoch"));
    let mut r = good();
    r.end_key = vec![b'p'; (64 << 10) + 1].into();
    r.start_key = "".into();
    cases.push(("a 64 KiB key", heartbeat(&r, 1), invalid, "longer"));
    let mut r = good();
    r.peers[1].role = 42;
    cases.push(("unknown peer role", heartbeat(&r, 1), invalid, "role"));
    let mut h = heartbeat(&good(), 1);
    h.pending_peers = vec![peer(12_345, 2)];
    cases.push(("pending peer not a member", h, invalid, "not a member"));
    let mut h = heartbeat(&good(), 1);
    h.region = None;
    cases.push(("no region", h, invalid, "missing"));
    for (what, h, want, needle) in cases {
        let err = rejection(&mut hb, h).await;
        assert_eq!(err.r#type(), want, "{what}: {err:?}");
        assert!(
            err.message.contains(needle),
            "{what}: {:?} lacks {needle:?}",
            err.message
        );
    }
    assert_eq!(state(&mut client).await, before);

    // A batch from a store PD does not know is refused as a whole.
    let mut stranger = HeartbeatStream::open(&mut client, 99).await;
    let mut r = good();
    r.peers[0] = peer(7_001, 99);
    stranger.send(vec![heartbeat(&r, 99)]).await;
    let resp = stranger
        .recv(Duration::from_secs(10))
        .await
        .expect("an answer");
    assert_err(&resp, ErrorType::StoreNotFound, "heartbeat from store 99");
    assert!(
        stranger.recv(Duration::from_secs(10)).await.is_none(),
        "stream ends"
    );

    // Split reports: one region, non-adjacent pieces, an inverted piece,
    // a piece on an unknown store.
    let a = &pieces[0];
    let piece = |id: u64, s: &[u8], e: &[u8]| {
        region(
            id,
            s,
            e,
            1,
            4,
            (1..=3).map(|st| peer(id + st, st)).collect(),
        )
    };
    let bad_reports: Vec<(&str, Vec<metapb::Region>, ErrorType)> = vec![
        ("a single region", vec![piece(a.id, b"", b"g")], invalid),
        (
            "a gap",
            vec![piece(a.id, b"", b"c"), piece(8_000, b"d", b"g")],
            invalid,
        ),
        (
            "an inverted piece",
            vec![piece(a.id, b"", b"c"), piece(8_000, b"f", b"c")],
            invalid,
        ),
        (
            "an unbounded first piece",
            vec![piece(a.id, b"", b""), piece(8_000, b"", b"g")],
            invalid,
        ),
        (
            "a piece on store 99",
            {
                let mut p = piece(8_000, b"c", b"g");
                p.peers[0].store_id = 99;
                vec![piece(a.id, b"", b"c"), p]
            },
            ErrorType::StoreNotFound,
        ),
    ];
    for (what, regions, want) in bad_reports {
        let r = client.report_split(regions).await;
        assert_err(&r, want, what);
    }
    assert_eq!(state(&mut client).await, before);

    // A report whose first piece is fine and whose second is stale must
    // not apply the first piece alone.
    let mut stale_b = pieces[1].clone();
    stale_b.region_epoch = Some(metapb::RegionEpoch {
        conf_ver: 1,
        version: 2,
    });
    stale_b.start_key = "f".into();
    let r = client
        .report_split(vec![piece(8_000, b"", b"f"), stale_b])
        .await;
    assert_err(&r, ErrorType::StaleRegion, "a report with a stale piece");
    assert_eq!(
        state(&mut client).await,
        before,
        "a refused split report changed routing"
    );

    // AskBatchSplit: bad counts, an unknown region, a stale one.
    let mut grpc = client.raw().await;
    for (what, region, count, want) in [
        ("count 0", pieces[1].clone(), 0, invalid),
        ("count 1001", pieces[1].clone(), 1001, invalid),
        (
            "unknown region",
            piece(9_999, b"x", b"y"),
            1,
            ErrorType::RegionNotFound,
        ),
        (
            "stale region",
            {
                let mut r = pieces[1].clone();
                r.region_epoch = Some(metapb::RegionEpoch {
                    conf_ver: 1,
                    version: 1,
                });
                r
            },
            1,
            ErrorType::StaleRegion,
        ),
    ] {
        let r = grpc
            .ask_batch_split(AskBatchSplitRequest {
                header: client.header(),
                region: Some(region),
                split_count: count,
            })
            .await
            .unwrap()
            .into_inner();
        assert_err(&r, want, what);
        assert!(r.ids.is_empty());
    }

    // Still serving, and the stream still works for good heartbeats.
    let mut newer = pieces[2].clone();
    newer.region_epoch = Some(metapb::RegionEpoch {
        conf_ver: 1,
        version: 3,
    });
    hb.send(vec![heartbeat(&newer, 1)]).await;
    client.alloc_id(1).await;
    assert_eq!(state(&mut client).await, before);
    assert_state_survives_restart(&mut c, &mut client, &before).await;
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "something panicked");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_requests_and_bad_stores_are_refused() {
    let (mut c, mut client, pieces) = fixture().await;
    let before = state(&mut client).await;
    let invalid = ErrorType::InvalidArgument;
    let mut grpc = client.raw().await;
    let h = client.header();

    for count in [10_001, u32::MAX] {
        let r = grpc
            .alloc_id(AllocIdRequest { header: h, count })
            .await
            .unwrap()
            .into_inner();
        assert_err(&r, invalid, &format!("AllocId({count})"));
        assert_eq!(r.id, 0);
    }
    let first = client.alloc_id(10_000).await;
    for count in [(1 << 18) + 1, u32::MAX] {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let mut tso = grpc
            .tso(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        tx.send(TsoRequest { header: h, count }).await.unwrap();
        let r = tso.message().await.unwrap().expect("a Tso answer");
        assert_err(&r, invalid, &format!("Tso({count})"));
        assert!(r.timestamp.is_none());
    }
    assert_eq!(client.tso(&[1 << 18]).await.len(), 1);
    for (start, end) in [("b", "a"), ("b", "b")] {
        let r = client
            .scan_regions(start.as_bytes(), end.as_bytes(), 10)
            .await;
        assert_err(&r, invalid, &format!("ScanRegions [{start}, {end})"));
        assert!(r.regions.is_empty());
    }
    let r = client.get_region_by_id(123_456_789).await;
    assert_err(&r, ErrorType::RegionNotFound, "GetRegionById(unknown)");

    // Stores: bad addresses and labels, duplicates, missing fields.
    let with_address = |a: &str| {
        let mut s = store(9);
        s.address = a.to_string();
        s
    };
    let long = format!("{}:80", "h".repeat(300));
    for address in [
        "",
        "nohost",
        "127.0.0.1",
        "127.0.0.1:0",
        "127.0.0.1:65536",
        "127.0.0.1:port",
        ":2000",
        "127.0.0.1:-1",
        long.as_str(),
        "http://127.0.0.1:20160",
        "127.0.0.1:+80",
        "bad host:80",
        "host\n:80",
    ] {
        let r = client.put_store(with_address(address)).await;
        assert_err(&r, invalid, &format!("PutStore address {address:?}"));
        assert!(
            error_message(&r).contains("address"),
            "{}",
            error_message(&r)
        );
    }
    let label = |k: &str, v: &str| metapb::StoreLabel {
        key: k.into(),
        value: v.into(),
    };
    let bad_labels: Vec<(&str, Vec<metapb::StoreLabel>)> = vec![
        ("empty key", vec![label("", "z1")]),
        ("empty value", vec![label("zone", "")]),
        ("'=' in a key", vec![label("zo=ne", "z1")]),
        ("',' in a value", vec![label("zone", "z1,z2")]),
        (
            "a key twice",
            vec![label("zone", "z1"), label("zone", "z2")],
        ),
        (
            "17 labels",
            (0..17).map(|i| label(&format!("k{i}"), "v")).collect(),
        ),
        ("a 129-byte value", vec![label("zone", &"v".repeat(129))]),
    ];
    for (what, labels) in bad_labels {
        let mut s = store(9);
        s.labels = labels;
        let r = client.put_store(s).await;
        assert_err(&r, invalid, &format!("PutStore with {what}"));
        assert!(
            error_message(&r).contains("label"),
            "{what}: {}",
            error_message(&r)
        );
    }
    let mut dup = store(9);
    dup.address = store(1).address;
    assert_err(
        &client.put_store(dup).await,
        ErrorType::DuplicatedAddress,
        "PutStore with store 1's address",
    );
    assert_err(&client.put_store(store(0)).await, invalid, "PutStore id 0");
    let r = grpc
        .put_store(PutStoreRequest {
            header: h,
            store: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_err(&r, invalid, "PutStore without a store");

    let beat = |stats: Option<StoreStats>| StoreHeartbeatRequest { header: h, stats };
    let r = grpc.store_heartbeat(beat(None)).await.unwrap().into_inner();
    assert_err(&r, invalid, "StoreHeartbeat without stats");
    let r = grpc
        .store_heartbeat(beat(Some(StoreStats {
            store_id: 99,
            ..Default::default()
        })))
        .await
        .unwrap()
        .into_inner();
    assert_err(&r, ErrorType::StoreNotFound, "StoreHeartbeat from store 99");
    let r = grpc
        .store_heartbeat(beat(Some(StoreStats {
            store_id: 1,
            capacity: 10,
            available: 11,
            ..Default::default()
        })))
        .await
        .unwrap()
        .into_inner();
    assert_err(&r, invalid, "StoreHeartbeat with available > capacity");
    let r = grpc
        .get_store(GetStoreRequest {
            header: h,
            store_id: 99,
        })
        .await
        .unwrap()
        .into_inner();
    assert_err(&r, ErrorType::StoreNotFound, "GetStore(99)");

    // HTTP: bad operators, config, members.
    let addr = c.specs[0].http_addr();
    let post = |path: &'static str, body: serde_json::Value| {
        let addr = addr.clone();
        async move { http_leader("POST", &addr, path, Some(&body)).await }
    };
    let config_before = http_leader("GET", &addr, "/pd/api/v1/config", None)
        .await
        .json();
    for (what, path, body) in [
        (
            "unknown operator",
            "/pd/api/v1/operators",
            serde_json::json!({"name": "teleport", "region_id": pieces[0].id, "store_id": 2}),
        ),
        (
            "transfer to a store without a peer",
            "/pd/api/v1/operators",
            serde_json::json!({"name": "transfer-leader", "region_id": pieces[0].id, "store_id": 9}),
        ),
        (
            "transfer without a store",
            "/pd/api/v1/operators",
            serde_json::json!({"name": "transfer-leader", "region_id": pieces[0].id}),
        ),
        (
            "max-replicas 0",
            "/pd/api/v1/config",
            serde_json::json!({"max-replicas": 0}),
        ),
        (
            "unknown config key",
            "/pd/api/v1/config",
            serde_json::json!({"max-replicaz": 5}),
        ),
        (
            "config not an object",
            "/pd/api/v1/config",
            serde_json::json!([1, 2]),
        ),
        (
            "member without a name",
            "/pd/api/v1/members",
            serde_json::json!({"name": "", "peer_url": "127.0.0.1:1"}),
        ),
        (
            "member that exists",
            "/pd/api/v1/members",
            serde_json::json!({"name": "pd-0", "peer_url": "127.0.0.1:1"}),
        ),
    ] {
        let resp = post(path, body).await;
        assert!(
            (400..500).contains(&resp.status),
            "{what}: {} {}",
            resp.status,
            resp.body
        );
        assert!(!resp.body.is_empty(), "{what}: no explanation");
    }
    let resp = http_leader("POST", &addr, "/pd/api/v1/operators", None).await;
    assert!(
        (400..500).contains(&resp.status),
        "operator without a body: {}",
        resp.status
    );
    let resp = http_leader("DELETE", &addr, "/pd/api/v1/members/nobody", None).await;
    assert_eq!(resp.status, 400, "{}", resp.body);
    let resp = http_leader("DELETE", &addr, "/pd/api/v1/members/pd-0", None).await;
    assert_eq!(resp.status, 400, "removing the last member: {}", resp.body);
    let resp = http_leader("GET", &addr, "/pd/api/v1/region/id/123456789", None).await;
    assert_eq!(resp.status, 404, "{}", resp.body);
    let resp = http_leader("GET", &addr, "/pd/api/v1/store/abc", None).await;
    assert_eq!(resp.status, 400, "{}", resp.body);
    let resp = http_leader("DELETE", &addr, "/pd/api/v1/store/99", None).await;
    assert_eq!(resp.status, 404, "{}", resp.body);
    let operators = http_leader("GET", &addr, "/pd/api/v1/operators", None)
        .await
        .json();
    let admin: Vec<_> = ["running", "recent"]
        .iter()
        .flat_map(|k| operators[k].as_array().cloned().unwrap_or_default())
        .filter(|op| op["kind"] == "admin")
        .collect();
    assert!(
        admin.is_empty(),
        "a refused operator was admitted: {admin:?}"
    );
    assert_eq!(
        http_leader("GET", &addr, "/pd/api/v1/config", None)
            .await
            .json(),
        config_before
    );

    assert!(client.alloc_id(1).await >= first + 10_000, "IDs went back");
    assert_eq!(state(&mut client).await, before);
    assert_state_survives_restart(&mut c, &mut client, &before).await;
    assert_eq!(
        http_leader("GET", &addr, "/pd/api/v1/config", None)
            .await
            .json(),
        config_before
    );
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "something panicked");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_but_accepted_sizes_do_not_overflow() {
    // Each region at the largest accepted size (1 PiB): 16,400 of them sum
    // past u64::MAX on every store.
    const N: usize = 16_400;
    let (c, mut client, _pieces) = fixture().await;
    let mut bases = Vec::new();
    for _ in 0..N.div_ceil(2500) {
        bases.push(client.alloc_id(10_000).await);
    }
    let key = |i: usize| {
        if i == N {
            Vec::new()
        } else {
            format!("s{i:06}").into_bytes()
        }
    };
    let hb = HeartbeatStream::open(&mut client, 1).await;
    let mut last = None;
    for chunk in (0..N).collect::<Vec<_>>().chunks(1000) {
        let batch = chunk
            .iter()
            .map(|&i| {
                let id = bases[i / 2500] + 4 * (i % 2500) as u64;
                let r = region(
                    id,
                    &key(i),
                    &key(i + 1),
                    1,
                    10,
                    (1..=3).map(|s| peer(id + s, s)).collect(),
                );
                let mut h = heartbeat(&r, 1);
                h.approximate_size = 1 << 50;
                h.approximate_keys = 1 << 40;
                last = Some(r);
                h
            })
            .collect();
        hb.send(batch).await;
    }
    let last = last.unwrap();
    wait_for("the last region to route", LONG, || {
        let mut client = client.clone();
        let last = last.clone();
        async move {
            client
                .get_region(b"zzz")
                .await
                .region
                .and_then(|r| r.region)
                == Some(last)
        }
    })
    .await;
    // Scheduling passes run over these numbers: balance-leader moves
    // leaders off store 1 (which leads everything).
    let addr = c.specs[0].http_addr();
    wait_for("a scheduling pass to propose operators", LONG, || {
        let addr = addr.clone();
        async move {
            let ops = http_leader("GET", &addr, "/pd/api/v1/operators", None)
                .await
                .json();
            ops["running"]
                .as_array()
                .is_some_and(|r| r.iter().any(|op| op["desc"] == "balance-leader"))
        }
    })
    .await;
    let stores = http_leader("GET", &c.specs[0].http_addr(), "/pd/api/v1/stores", None).await;
    assert_eq!(stores.status, 200, "{}", stores.body);
    let metrics = http("GET", &c.specs[0].http_addr(), "/metrics", None)
        .await
        .unwrap();
    assert_eq!(metrics.status, 200);
    client.alloc_id(1).await;
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "something panicked");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_that_fails_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let p = free_ports(3);
    let spec = MemberSpec {
        name: "pd-0".into(),
        client: p[0],
        peer: p[1],
        http: p[2],
    };
    let cfg = test_config(dir.path(), &spec, "");
    // The HTTP port is taken.
    let squatter = std::net::TcpListener::bind(spec.http_addr()).unwrap();
    let err = match flotilla_pd::server::PdServer::start(cfg.clone()).await {
        Ok(_) => panic!("started on a port in use"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains(&spec.http_addr()), "{err}");
    drop(squatter);
    // Nothing of the failed attempt (a Raft loop holding the RocksDB lock)
    // is left to stop the next one on the same data directory.
    let server = flotilla_pd::server::PdServer::start(cfg)
        .await
        .unwrap_or_else(|e| panic!("restart after a failed start: {e:#}"));
    server.stop().await;
}
