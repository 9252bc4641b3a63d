//! Routing through real gRPC: bootstrap, split reports, the epoch rules
//! for heartbeats, paging through many regions, operator steps on the
//! heartbeat stream, and routing straight after a restart.

mod common;

use std::time::{Duration, Instant};

use common::*;
use flotilla_proto::metapb;
use flotilla_proto::pdpb::{self, region_command::Step, ErrorType};

/// One member, stores 1..=3 registered, bootstrapped. Returns the first
/// region.
async fn bootstrapped() -> (TestCluster, LeaderClient, metapb::Region) {
    let c = TestCluster::start(1).await;
    let mut client = c.client().await;
    register_stores(&mut client, 1..=3).await;
    let resp = client.bootstrap(1).await;
    assert_ok(&resp);
    (c, client, resp.region.unwrap())
}

fn peers_of(r: &metapb::Region) -> Vec<u64> {
    r.peers.iter().map(|p| p.id).collect()
}

/// New peers on stores 1..=3 for a region made by a split.
fn split_peers(ids: &pdpb::SplitId) -> Vec<metapb::Peer> {
    assert_eq!(ids.new_peer_ids.len(), 3);
    ids.new_peer_ids
        .iter()
        .zip(1..=3)
        .map(|(id, store)| peer(*id, store))
        .collect()
}

/// Splits the first region at `g` and `p` through AskBatchSplit and
/// ReportBatchSplit: A `["", g)`, B `[g, p)`, and the original keeps
/// `[p, "")`. All at version 3. Returns `[A, B, original]`.
async fn split_in_three(client: &mut LeaderClient, first: &metapb::Region) -> Vec<metapb::Region> {
    let mut grpc = client.raw().await;
    let resp = grpc
        .ask_batch_split(pdpb::AskBatchSplitRequest {
            header: client.header(),
            region: Some(first.clone()),
            split_count: 2,
        })
        .await
        .unwrap()
        .into_inner();
    assert_ok(&resp);
    assert_eq!(resp.ids.len(), 2);
    let mut seen: Vec<u64> = peers_of(first);
    seen.push(first.id);
    for ids in &resp.ids {
        for id in std::iter::once(ids.new_region_id).chain(ids.new_peer_ids.iter().copied()) {
            assert!(!seen.contains(&id), "split ID {id} handed out twice");
            seen.push(id);
        }
    }
    let conf_ver = first.region_epoch.unwrap().conf_ver;
    let pieces = vec![
        region(
            resp.ids[0].new_region_id,
            b"",
            b"g",
            conf_ver,
            3,
            split_peers(&resp.ids[0]),
        ),
        region(
            resp.ids[1].new_region_id,
            b"g",
            b"p",
            conf_ver,
            3,
            split_peers(&resp.ids[1]),
        ),
        region(first.id, b"p", b"", conf_ver, 3, first.peers.clone()),
    ];
    assert_ok(&client.report_split(pieces.clone()).await);
    pieces
}

async fn route(client: &mut LeaderClient, key: &[u8]) -> pdpb::RegionInfo {
    let resp = client.get_region(key).await;
    assert_ok(&resp);
    resp.region.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_waits_for_enough_stores_and_is_idempotent() {
    let c = TestCluster::start(1).await;
    let mut client = c.client().await;
    assert!(!client.is_bootstrapped().await.bootstrapped);
    let resp = client.bootstrap(1).await;
    assert_eq!(error_type(&resp), ErrorType::StoreNotFound, "{resp:?}");

    register_stores(&mut client, 1..=2).await;
    let resp = client.bootstrap(1).await;
    assert_eq!(error_type(&resp), ErrorType::NotEnoughStores, "{resp:?}");
    assert!(error_message(&resp).contains("needs 3"), "{resp:?}");
    assert!(!client.is_bootstrapped().await.bootstrapped);
    assert_eq!(
        error_type(&client.get_region(b"a").await),
        ErrorType::RegionNotFound
    );

    register_stores(&mut client, [3]).await;
    // Three stores race to bootstrap: one wins, all see the same region.
    let mut racers = Vec::new();
    for store_id in [2, 3, 1] {
        let mut client = client.clone();
        racers.push(tokio::spawn(
            async move { client.bootstrap(store_id).await },
        ));
    }
    let mut answers = Vec::new();
    for r in racers {
        let resp = r.await.unwrap();
        assert_ok(&resp);
        answers.push(resp);
    }
    let first = answers[0].region.clone().unwrap();
    assert!(answers.iter().all(|a| a.region.as_ref() == Some(&first)));
    assert_eq!(
        answers.iter().filter(|a| !a.already_bootstrapped).count(),
        1,
        "exactly one bootstrap wins: {answers:?}"
    );
    assert!(first.start_key.is_empty() && first.end_key.is_empty());
    assert_eq!(first.peers.len(), 3);
    let mut stores: Vec<u64> = first.peers.iter().map(|p| p.store_id).collect();
    stores.sort();
    assert_eq!(stores, vec![1, 2, 3], "one voter per store");
    assert!(first
        .peers
        .iter()
        .all(|p| p.role == metapb::PeerRole::Voter as i32));
    let mut ids = peers_of(&first);
    ids.push(first.id);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "region and peer IDs are distinct");

    let again = client.bootstrap(2).await;
    assert_ok(&again);
    assert!(again.already_bootstrapped);
    assert_eq!(again.region.as_ref(), Some(&first));
    assert!(client.is_bootstrapped().await.bootstrapped);
    let routed = route(&mut client, b"any key").await;
    assert_eq!(routed.region.as_ref(), Some(&first));
    // IDs allocated later never collide with the region's.
    let next = client.alloc_id(1).await;
    assert!(next > *ids.last().unwrap());
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_reports_route_every_key_to_its_piece() {
    let (c, mut client, first) = bootstrapped().await;
    let hb = HeartbeatStream::open(&mut client, 1).await;
    hb.send(vec![heartbeat(&first, 1)]).await;
    wait_for("the first region's leader", LONG, || {
        let mut client = client.clone();
        async move { route(&mut client, b"").await.leader.is_some() }
    })
    .await;

    let pieces = split_in_three(&mut client, &first).await;
    for (key, want) in [
        (&b""[..], 0),
        (b"a", 0),
        (b"f\xff\xff", 0),
        (b"g", 1),
        (b"h", 1),
        (b"o\xff", 1),
        (b"p", 2),
        (b"zzz", 2),
        (b"\xff\xff\xff", 2),
    ] {
        let got = route(&mut client, key).await;
        assert_eq!(
            got.region.as_ref(),
            Some(&pieces[want]),
            "key {:?}",
            key.escape_ascii().to_string()
        );
    }
    // The original keeps its leader through the split; the new pieces have
    // none until they heartbeat.
    let original = client.get_region_by_id(first.id).await.region.unwrap();
    assert_eq!(original.region.unwrap().region_epoch.unwrap().version, 3);
    assert_eq!(original.leader.map(|l| l.store_id), Some(1));

    // Split B again at "k"; versions move to 4.
    let b = &pieces[1];
    let mut grpc = client.raw().await;
    let ids = grpc
        .ask_batch_split(pdpb::AskBatchSplitRequest {
            header: client.header(),
            region: Some(b.clone()),
            split_count: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_ok(&ids);
    let c_region = region(
        ids.ids[0].new_region_id,
        b"g",
        b"k",
        1,
        4,
        split_peers(&ids.ids[0]),
    );
    let b2 = region(b.id, b"k", b"p", 1, 4, b.peers.clone());
    assert_ok(
        &client
            .report_split(vec![c_region.clone(), b2.clone()])
            .await,
    );
    assert_eq!(route(&mut client, b"j").await.region, Some(c_region));
    assert_eq!(route(&mut client, b"k").await.region, Some(b2));
    assert_eq!(
        route(&mut client, b"f").await.region.as_ref(),
        Some(&pieces[0])
    );
    let all = client.all_regions(100).await;
    assert_eq!(all.len(), 4);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_heartbeats_are_rejected_and_newer_regions_replace_overlaps() {
    let (c, mut client, first) = bootstrapped().await;
    let pieces = split_in_three(&mut client, &first).await;
    let (a, b, orig) = (&pieces[0], &pieces[1], &pieces[2]);
    let mut hb = HeartbeatStream::open(&mut client, 1).await;

    // The pre-split region (version 1, the whole key space) is stale.
    hb.send(vec![heartbeat(&first, 1)]).await;
    let resp = hb.recv(Duration::from_secs(10)).await.expect("a rejection");
    assert_eq!(resp.rejected.len(), 1, "{resp:?}");
    assert_eq!(resp.rejected[0].region_id, first.id);
    let err = resp.rejected[0].error.as_ref().unwrap();
    assert_eq!(err.r#type(), ErrorType::StaleRegion, "{err:?}");
    assert!(err.message.contains("older"), "{err:?}");
    let before = client.all_regions(10).await;
    assert_eq!(before.len(), 3);
    assert_eq!(route(&mut client, b"a").await.region.as_ref(), Some(a));
    assert_eq!(route(&mut client, b"h").await.region.as_ref(), Some(b));
    assert_eq!(route(&mut client, b"q").await.region.as_ref(), Some(orig));

    // B at an older version, and an unknown region overlapping newer ones.
    let mut old_b = b.clone();
    old_b.region_epoch = Some(metapb::RegionEpoch {
        conf_ver: 1,
        version: 2,
    });
    let intruder = region(9_999, b"e", b"i", 1, 2, vec![peer(10_001, 1)]);
    hb.send(vec![heartbeat(&old_b, 1), heartbeat(&intruder, 1)])
        .await;
    let resp = hb.recv(Duration::from_secs(10)).await.expect("rejections");
    let rejected: Vec<(u64, ErrorType)> = resp
        .rejected
        .iter()
        .map(|r| (r.region_id, r.error.as_ref().unwrap().r#type()))
        .collect();
    assert_eq!(
        rejected,
        vec![
            (b.id, ErrorType::StaleRegion),
            (9_999, ErrorType::StaleRegion)
        ]
    );
    assert_eq!(client.all_regions(10).await, before, "routing changed");

    // A merged by B: A at version 5 covering ["", p) replaces B.
    let merged = region(a.id, b"", b"p", 1, 5, a.peers.clone());
    hb.send(vec![heartbeat(&merged, 1)]).await;
    wait_for("the merged region to route", LONG, || {
        let mut client = client.clone();
        let merged = merged.clone();
        async move { route(&mut client, b"h").await.region == Some(merged) }
    })
    .await;
    assert_eq!(
        error_type(&client.get_region_by_id(b.id).await),
        ErrorType::RegionNotFound
    );
    let after: Vec<u64> = client
        .all_regions(10)
        .await
        .iter()
        .map(|r| r.region.as_ref().unwrap().id)
        .collect();
    assert_eq!(after, vec![a.id, orig.id]);
    // B's last heartbeat (version 3) now overlaps a newer region: stale.
    hb.send(vec![heartbeat(b, 1)]).await;
    let resp = hb.recv(Duration::from_secs(10)).await.expect("a rejection");
    assert_eq!(resp.rejected.len(), 1, "{resp:?}");
    assert_eq!(
        resp.rejected[0].error.as_ref().unwrap().r#type(),
        ErrorType::StaleRegion
    );
    assert_eq!(route(&mut client, b"h").await.region, Some(merged));
    c.shutdown().await;
}

fn scan_key(i: usize, n: usize) -> Vec<u8> {
    if i == 0 || i == n {
        Vec::new()
    } else {
        format!("k{i:05}").into_bytes()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_regions_pages_through_2000_regions_in_order() {
    const N: usize = 2_000;
    let (c, mut client, _first) = bootstrapped().await;
    let base = client.alloc_id((N * 4) as u32).await;
    let regions: Vec<metapb::Region> = (0..N)
        .map(|i| {
            let id = base + 4 * i as u64;
            let peers = (1..=3).map(|s| peer(id + s, s)).collect();
            region(id, &scan_key(i, N), &scan_key(i + 1, N), 1, 2, peers)
        })
        .collect();
    // Batched per store, the way stores send them.
    let hb = HeartbeatStream::open(&mut client, 1).await;
    let started = Instant::now();
    for chunk in regions.chunks(500) {
        hb.send(chunk.iter().map(|r| heartbeat(r, 1)).collect())
            .await;
    }
    let last = regions.last().unwrap().clone();
    wait_for("the last region to route", LONG, || {
        let mut client = client.clone();
        let last = last.clone();
        async move {
            let resp = client.get_region(b"k99999").await;
            resp.region.and_then(|r| r.region) == Some(last)
        }
    })
    .await;
    println!("{N} region heartbeats applied in {:?}", started.elapsed());

    let started = Instant::now();
    let all = client.all_regions(7).await;
    println!(
        "paged scan of {N} regions (7 per page) in {:?}",
        started.elapsed()
    );
    let got: Vec<&metapb::Region> = all.iter().map(|r| r.region.as_ref().unwrap()).collect();
    assert_eq!(got.len(), N);
    for (i, (got, want)) in got.iter().zip(&regions).enumerate() {
        assert_eq!(*got, want, "region {i}");
    }
    assert!(all.iter().all(|r| r.leader.map(|l| l.store_id) == Some(1)));

    // One call without a limit returns everything (under the 10,000 cap).
    let one = client.scan_regions(b"", b"", 0).await;
    assert_ok(&one);
    assert_eq!(one.regions.len(), N);
    // A bounded scan starts with the region holding the start key and
    // stops before the region starting at the end key.
    let some = client.scan_regions(b"k00100x", b"k00200", 1000).await;
    assert_ok(&some);
    let ids: Vec<u64> = some
        .regions
        .iter()
        .map(|r| r.region.as_ref().unwrap().id)
        .collect();
    let want: Vec<u64> = regions[100..200].iter().map(|r| r.id).collect();
    assert_eq!(ids, want);
    let limited = client.scan_regions(b"k00100", b"", 5).await;
    assert_eq!(limited.regions.len(), 5);
    c.shutdown().await;
}

/// Operators as JSON from the HTTP API: (running, recent).
async fn operators(addr: &str) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    let resp = http_leader("GET", addr, "/pd/api/v1/operators", None).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let json = resp.json();
    let list = |k: &str| json[k].as_array().cloned().unwrap_or_default();
    (list("running"), list("recent"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_steps_reach_the_leaders_heartbeat_stream() {
    let (c, mut client, first) = bootstrapped().await;
    let http_addr = c.specs[0].http_addr();
    let mut hb1 = HeartbeatStream::open(&mut client, 1).await;
    let hb2 = HeartbeatStream::open(&mut client, 2).await;
    hb1.send(vec![heartbeat(&first, 1)]).await;
    wait_for("store 1 to lead the region", LONG, || {
        let mut client = client.clone();
        async move { route(&mut client, b"").await.leader.map(|l| l.store_id) == Some(1) }
    })
    .await;

    let body = serde_json::json!({"name": "transfer-leader", "region_id": first.id, "store_id": 2});
    let resp = http_leader("POST", &http_addr, "/pd/api/v1/operators", Some(&body)).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let op_id = resp.json()["operator"]["id"].as_u64().expect("operator id");
    let (running, _) = operators(&http_addr).await;
    assert!(
        running.iter().any(|o| o["id"].as_u64() == Some(op_id)),
        "{running:?}"
    );

    // The step arrives on store 1's stream without another heartbeat.
    let target = *first.peers.iter().find(|p| p.store_id == 2).unwrap();
    let started = Instant::now();
    let command = loop {
        let resp = hb1
            .recv(LONG.saturating_sub(started.elapsed()))
            .await
            .expect("the transfer-leader step on store 1's stream");
        if let Some(cmd) = resp.commands.into_iter().find(|c| c.operator_id == op_id) {
            break cmd;
        }
    };
    println!("transfer-leader step pushed after {:?}", started.elapsed());
    assert_eq!(command.region_id, first.id);
    assert_eq!(command.region_epoch, first.region_epoch);
    match command.step {
        Some(Step::TransferLeader(t)) => assert_eq!(t.peer, Some(target)),
        other => panic!("expected TransferLeader, got {other:?}"),
    }

    // Store 2 reports that it leads now: the operator finishes.
    hb2.send(vec![heartbeat(&first, 2)]).await;
    wait_for("the operator to finish", LONG, || {
        let addr = http_addr.clone();
        async move {
            let (running, recent) = operators(&addr).await;
            !running.iter().any(|o| o["id"].as_u64() == Some(op_id))
                && recent
                    .iter()
                    .any(|o| o["id"].as_u64() == Some(op_id) && o["status"] == "finished")
        }
    })
    .await;
    assert_eq!(route(&mut client, b"").await.leader, Some(target));
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_member_routes_at_once_from_persisted_regions() {
    let (mut c, mut client, first) = bootstrapped().await;
    let pieces = split_in_three(&mut client, &first).await;
    let hb = HeartbeatStream::open(&mut client, 1).await;
    hb.send(pieces.iter().map(|r| heartbeat(r, 1)).collect())
        .await;
    for p in &pieces {
        wait_persisted(&c, 0, p, Some(1)).await;
    }
    let stores_before: Vec<metapb::Store> = client
        .all_stores()
        .await
        .into_iter()
        .map(|s| s.store.unwrap())
        .collect();
    let last_id = client.alloc_id(1).await;
    drop(hb);

    c.stop(0).await;
    let started = Instant::now();
    c.restart(0).await;
    c.wait_leader().await;
    let serving_after = started.elapsed();
    // No heartbeat since the restart: routing comes from storage.
    for (key, want) in [(&b"a"[..], 0), (b"h", 1), (b"q", 2)] {
        let got = route(&mut client, key).await;
        assert_eq!(got.region.as_ref(), Some(&pieces[want]));
        assert_eq!(got.leader.map(|l| l.store_id), Some(1), "leader kept");
    }
    println!(
        "restarted member served after {serving_after:?}; routed from storage {:?} after restart",
        started.elapsed()
    );
    let stores_after: Vec<metapb::Store> = client
        .all_stores()
        .await
        .into_iter()
        .map(|s| s.store.unwrap())
        .collect();
    assert_eq!(stores_after, stores_before);
    assert!(client.is_bootstrapped().await.bootstrapped);
    let again = client.bootstrap(3).await;
    assert!(again.already_bootstrapped);
    assert_eq!(again.region, Some(first));
    assert!(client.alloc_id(1).await > last_id);
    c.shutdown().await;
}
