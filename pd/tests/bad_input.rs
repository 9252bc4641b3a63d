//! Bad input over real gRPC and HTTP: every refusal is a clear error type
//! and message, the member keeps serving, and nothing is persisted —
//! routing and stores are unchanged, also after a restart.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::bad_input::*;
use common::*;
use flotilla_proto::metapb;
use flotilla_proto::pdpb::*;

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
