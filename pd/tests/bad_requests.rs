//! Bad requests over real gRPC and HTTP — out-of-range counts, bad stores,
//! absurd but accepted sizes, a failed start — get a clear error, and the
//! member keeps serving with nothing persisted.

mod common;

use std::sync::atomic::Ordering;

use common::bad_input::*;
use common::*;
use flotilla_proto::metapb;
use flotilla_proto::pdpb::*;

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
