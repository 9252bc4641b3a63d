//! The SDK against an in-process cluster (the store's test harness: real
//! PD, real stores, Raft traffic behind filters): every call against a
//! model across many regions, the region cache's PD traffic, retries
//! through leader changes and splits, unknown outcomes, and bad input.

#[path = "../../store/tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{wait_for, Cluster, LONG};
use flotilla_client::{Config, Error, RawClient};
use flotilla_store::transport::filter::PartitionFilter;

fn key(i: usize) -> String {
    format!("k{i:05}")
}

async fn client(cluster: &Cluster) -> RawClient {
    RawClient::connect([&cluster.pd_endpoint], Config::default())
        .await
        .expect("client connects")
}

/// How many requests of `method` PD has served (from its metrics).
async fn pd_requests(cluster: &Cluster, method: &str) -> u64 {
    let (_, body) = cluster.pd_http("GET", "/metrics", "").await;
    let wanted = format!("flotilla_pd_grpc_request_duration_seconds_count{{method=\"{method}\"}}");
    body.lines()
        .find(|l| l.starts_with(&wanted))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

/// Splits the key space into regions at every `step`-th key of `0..n`.
async fn split_every(cluster: &Cluster, n: usize, step: usize) {
    for i in (step..n).step_by(step) {
        cluster.split(vec![Bytes::from(key(i))]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_call_matches_a_model_across_twenty_regions() {
    let cluster = Cluster::start(3).await;
    split_every(&cluster, 400, 20).await;
    let client = client(&cluster).await;
    let mut model = BTreeMap::new();
    let pairs: Vec<(String, String)> = (0..400)
        .filter(|i| i % 3 != 0)
        .map(|i| (key(i), format!("v{i}")))
        .collect();
    client.batch_put(pairs.clone()).await.expect("batch put");
    for (k, v) in &pairs {
        model.insert(k.clone(), v.clone());
    }
    client.put(key(3), "three").await.expect("put");
    model.insert(key(3), "three".into());
    client.delete(key(4)).await.expect("delete");
    model.remove(&key(4));
    client
        .batch_delete([key(7), key(8), key(399)])
        .await
        .expect("batch delete");
    for k in [key(7), key(8), key(399)] {
        model.remove(&k);
    }

    // Point and batch reads, in input order, duplicates included.
    assert_eq!(
        client.get(key(3)).await.unwrap().as_deref(),
        Some(&b"three"[..])
    );
    assert_eq!(client.get(key(0)).await.unwrap(), None);
    let wanted: Vec<String> = (0..400).rev().chain([3, 3]).map(key).collect();
    let got = client.batch_get(wanted.clone()).await.expect("batch get");
    for (k, v) in wanted.iter().zip(&got) {
        assert_eq!(v.as_deref(), model.get(k).map(|s| s.as_bytes()), "{k}");
    }

    // Scans cross every region boundary in order and honour the limit.
    let as_model = |pairs: Vec<flotilla_client::KvPair>| -> Vec<(String, String)> {
        pairs
            .into_iter()
            .map(|p| {
                let s = |b: Bytes| String::from_utf8(b.to_vec()).unwrap();
                (s(p.key), s(p.value))
            })
            .collect()
    };
    let all: Vec<(String, String)> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(as_model(client.scan(.., 10_000).await.unwrap()), all);
    for (start, end, limit) in [(5, 395, 1000), (17, 90, 7), (0, 400, 250), (41, 42, 5)] {
        let expect: Vec<_> = model
            .range(key(start)..key(end))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let got = client
            .scan(key(start)..key(end), limit as u32)
            .await
            .unwrap();
        assert_eq!(as_model(got), expect, "scan {start}..{end} limit {limit}");
        let expect_rev: Vec<_> = model
            .range(key(start)..key(end))
            .rev()
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let got = client
            .scan_reverse(key(start)..key(end), limit as u32)
            .await
            .unwrap();
        assert_eq!(
            as_model(got),
            expect_rev,
            "reverse {start}..{end} limit {limit}"
        );
    }
    let keys = client.scan_keys(key(100)..=key(140), 1000).await.unwrap();
    let expect: Vec<&String> = model.range(key(100)..=key(140)).map(|(k, _)| k).collect();
    assert_eq!(keys.len(), expect.len());
    let keys = client
        .scan_keys_reverse(key(100)..=key(140), 7)
        .await
        .unwrap();
    let expect: Vec<&[u8]> = model
        .range(key(100)..=key(140))
        .rev()
        .take(7)
        .map(|(k, _)| k.as_bytes())
        .collect();
    let got: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
    assert_eq!(got, expect, "reverse keys");
    let tail = client.scan_reverse(.., 3).await.unwrap();
    let expect: Vec<_> = model
        .iter()
        .rev()
        .take(3)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(as_model(tail), expect);

    // A range delete across regions, then compare-and-swap.
    client
        .delete_range(key(50)..key(250))
        .await
        .expect("delete range");
    let left = client.scan(key(50)..key(250), 100).await.unwrap();
    assert!(left.is_empty(), "left behind: {left:?}");
    let (prev, swapped) = client
        .compare_and_swap(key(3), Some("three"), "3")
        .await
        .unwrap();
    assert!(swapped && prev.as_deref() == Some(&b"three"[..]));
    let (prev, swapped) = client
        .compare_and_swap(key(3), None::<&str>, "x")
        .await
        .unwrap();
    assert!(!swapped && prev.as_deref() == Some(&b"3"[..]));
    let (prev, swapped) = client
        .compare_and_swap(key(0), None::<&str>, "new")
        .await
        .unwrap();
    assert!(swapped && prev.is_none());
    assert!(client.cached_regions() >= 20, "{}", client.cached_regions());
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cache_fills_once_and_follows_splits_without_pd() {
    let cluster = Cluster::start(1).await;
    let client = client(&cluster).await;
    // Concurrent misses for one key: one PD lookup between them.
    let before = pd_requests(&cluster, "scan_regions").await;
    let gets: Vec<_> = (0..64)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move { c.get("same").await })
        })
        .collect();
    for g in gets {
        g.await.unwrap().expect("get");
    }
    let after = pd_requests(&cluster, "scan_regions").await;
    assert_eq!(
        after - before,
        1,
        "64 concurrent misses asked PD {} times",
        after - before
    );

    // A split behind the client's back: the store's EpochNotMatch carries
    // the new regions, and the client needs no PD lookup for either side.
    client.put("a", "1").await.unwrap();
    cluster.split(vec![Bytes::from_static(b"m")]).await;
    let lookups = || async {
        pd_requests(&cluster, "scan_regions").await
            + pd_requests(&cluster, "get_region").await
            + pd_requests(&cluster, "get_prev_region").await
    };
    let before = lookups().await;
    client.put("a", "2").await.unwrap();
    client.put("z", "3").await.unwrap();
    assert_eq!(client.get("z").await.unwrap().as_deref(), Some(&b"3"[..]));
    assert_eq!(client.scan(.., 10).await.unwrap().len(), 2);
    assert_eq!(lookups().await, before, "the split cost PD lookups");
    assert_eq!(client.cached_regions(), 2);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_ride_through_leader_changes_and_a_dead_leader() {
    let mut cluster = Cluster::start(3).await;
    let client = client(&cluster).await;
    client.put("k", "0").await.unwrap();
    let region = cluster.wait_route(b"k").await.1.region_id;
    // Move the lead around: the client follows the NotLeader hints.
    for round in 1..=3 {
        let leader = cluster.wait_for_leader(region).await;
        let next = (leader + 1) % 3;
        let store_id = cluster.store_id(next);
        // PD takes the operator once a heartbeat told it the leader.
        wait_for("PD to take the transfer", LONG, || async {
            let answer = cluster
                .pd_operator("transfer-leader", region, store_id)
                .await;
            answer.0.contains("200")
        })
        .await;
        wait_for("the transfer", LONG, || async {
            cluster.leader_of(region).is_some_and(|(i, _, _)| i == next)
        })
        .await;
        client.put("k", round.to_string()).await.unwrap();
        assert_eq!(
            client.get("k").await.unwrap().as_deref(),
            Some(round.to_string().as_bytes())
        );
    }
    // Stop the leader's store: calls wait out the election and go on.
    let leader = cluster.wait_for_leader(region).await;
    cluster.stop_store(leader).await;
    // This test is the key's only writer: a put whose outcome is unknown
    // (a connection that broke under it) may simply be made again.
    loop {
        match client.put("k", "after").await {
            Ok(()) => break,
            Err(e) if e.is_undetermined() => continue,
            Err(e) => panic!("put after the leader died: {e}"),
        }
    }
    assert_eq!(
        client.get("k").await.unwrap().as_deref(),
        Some(&b"after"[..])
    );
    cluster.start_store(leader).await;
    cluster.shutdown().await;
}

/// Every write whose outcome is unknown is reported as such, never retried:
/// the fault harness (flotilla-jepsen, kill + partition) caught a put that
/// landed, was overwritten by another client, and landed again from the
/// SDK's retry, undoing the later write. Reads alone are retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_that_cannot_commit_is_undetermined() {
    let cluster = Cluster::start(3).await;
    let client = client(&cluster).await;
    client.put("k", "v").await.unwrap();
    let region = cluster.wait_route(b"k").await.1.region_id;
    let short = client.with_timeout(Duration::from_millis(600));
    let alone = RawClient::connect(
        [&cluster.pd_endpoint],
        Config::builder()
            .combine_calls(false)
            .timeout(Duration::from_millis(600))
            .build(),
    )
    .await
    .unwrap();
    let undetermined = |r: flotilla_client::Result<()>, op: &str| match r {
        Err(Error::Undetermined { operation, .. }) => assert_eq!(operation, op),
        other => panic!("{op}: expected an unknown outcome, got {other:?}"),
    };
    // Each write goes to a leader cut off a moment ago: it takes the
    // proposal, which can never commit (and no other leader can be
    // elected), until check-quorum deposes it an election timeout later.
    cut_off(&cluster, &client, region).await;
    match short.compare_and_swap("k", Some("v"), "w").await {
        Err(Error::Undetermined { operation, .. }) => assert_eq!(operation, "compare_and_swap"),
        other => panic!("expected an unknown outcome, got {other:?}"),
    }
    // Through the call combiner (the default) and alone.
    cut_off(&cluster, &client, region).await;
    undetermined(short.put("k", "w").await, "put");
    cut_off(&cluster, &client, region).await;
    undetermined(alone.put("k", "w").await, "put");
    cut_off(&cluster, &client, region).await;
    undetermined(short.delete("k").await, "delete");
    cut_off(&cluster, &client, region).await;
    undetermined(short.batch_put([("k", "x"), ("l", "y")]).await, "batch_put");
    cut_off(&cluster, &client, region).await;
    undetermined(short.batch_delete(["k", "l"]).await, "batch_delete");
    // A read is retried to its deadline instead (once the cut-off leader
    // stepped down: until then its lease still serves it).
    cut_off(&cluster, &client, region).await;
    wait_for("the cut-off leader to step down", LONG, || async {
        cluster.leader_of(region).is_none()
    })
    .await;
    let get = alone.get("k").await;
    assert!(matches!(get, Err(Error::Timeout { .. })), "got {get:?}");
    heal(&cluster);
    // Once healed, the cluster serves again.
    client.put("k", "healed").await.unwrap();
    assert_eq!(
        client.get("k").await.unwrap().as_deref(),
        Some(&b"healed"[..])
    );
    cluster.shutdown().await;
}

fn heal(cluster: &Cluster) {
    for i in 0..3 {
        cluster.store(i).filters().clear();
    }
}

/// Heals, waits for the region to be led and served, then cuts every
/// store off from every other.
async fn cut_off(cluster: &Cluster, client: &RawClient, region: u64) {
    heal(cluster);
    cluster.wait_for_leader(region).await;
    client.get("k").await.expect("a read once healed");
    for i in 0..3 {
        cluster
            .store(i)
            .filters()
            .add(Arc::new(PartitionFilter { stores: vec![] }));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn big_batches_are_cut_to_the_limits_and_bad_input_is_refused() {
    let cluster = Cluster::start(1).await;
    let client = client(&cluster).await;
    // 25,000 keys: more than two requests' worth in one region.
    let pairs: Vec<(String, Vec<u8>)> = (0..25_000).map(|i| (key(i), vec![b'x'; 16])).collect();
    client.batch_put(pairs).await.expect("big batch put");
    let got = client.batch_get((0..25_000).map(key)).await.unwrap();
    assert!(got.iter().all(|v| v.as_deref() == Some(&[b'x'; 16][..])));
    assert_eq!(client.scan_keys(.., 30_000).await.unwrap().len(), 25_000);
    client.batch_delete((0..25_000).map(key)).await.unwrap();
    assert!(client.scan(.., 10).await.unwrap().is_empty());

    let invalid = |r: Result<(), Error>| assert!(r.unwrap_err().is_invalid_argument());
    invalid(client.put("", "v").await);
    invalid(client.put("k", vec![0u8; (8 << 20) + 1]).await);
    invalid(client.put(vec![b'k'; (8 << 10) + 1], "v").await);
    invalid(client.delete("").await);
    invalid(client.batch_put([("a", "1"), ("", "2")]).await);
    invalid(client.delete_range("m".."a").await);
    invalid(client.scan("m".."a", 10).await.map(|_| ()));
    invalid(client.scan("a".."m", 0).await.map(|_| ()));
    invalid(
        client
            .compare_and_swap("", None::<&str>, "v")
            .await
            .map(|_| ()),
    );
    // Nothing of a refused batch was written.
    assert_eq!(client.get("a").await.unwrap(), None);

    // No PD there: a clear error within the deadline, not a hang.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = Config::default();
    config.pd.timeout = Duration::from_millis(500);
    let err = RawClient::connect([format!("127.0.0.1:{port}")], config)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("placement driver"), "{err}");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn follower_reads_see_the_latest_write() {
    let cluster = Cluster::start(3).await;
    let config = Config::builder().follower_reads(true).build();
    let client = RawClient::connect([&cluster.pd_endpoint], config)
        .await
        .unwrap();
    for i in 0..30 {
        client.put("k", i.to_string()).await.unwrap();
        // Reads rotate over the replicas; each must see the write.
        assert_eq!(
            client.get("k").await.unwrap().as_deref(),
            Some(i.to_string().as_bytes())
        );
    }
    cluster.shutdown().await;
}

/// Requests of `method` the stores served (from their metrics).
fn store_requests(cluster: &Cluster, method: &str) -> u64 {
    let wanted =
        format!("flotilla_store_kv_request_duration_seconds_count{{method=\"{method}\"}} ");
    (0..3)
        .map(|i| {
            let text = cluster.store(i).context().metrics.render();
            text.lines()
                .find_map(|l| l.strip_prefix(&wanted)?.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_gets_and_puts_are_combined_into_batches() {
    let cluster = Cluster::start(3).await;
    let client = client(&cluster).await;
    client.put(key(0), "warm").await.unwrap();
    // 200 callers at once, in one region: each reads its own write. They
    // run on a runtime of one thread, which starts every call (queueing it)
    // before the combiner gets its turn: a deterministic burst. (On many
    // threads a fast combiner can take each call alone as it arrives.)
    let pd = cluster.pd_endpoint.clone();
    tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let client = RawClient::connect([&pd], Config::default()).await.unwrap();
            let calls: Vec<_> = (0..200)
                .map(|i| {
                    let client = client.clone();
                    tokio::spawn(async move {
                        client.put(key(i), format!("v{i}")).await.unwrap();
                        let got = client.get(key(i)).await.unwrap();
                        assert_eq!(got.as_deref(), Some(format!("v{i}").as_bytes()));
                    })
                })
                .collect();
            for c in calls {
                c.await.unwrap();
            }
        });
    })
    .await
    .expect("the burst of calls");
    assert_eq!(store_requests(&cluster, "raw_put"), 0);
    assert_eq!(store_requests(&cluster, "raw_get"), 0);
    // Calls queue while earlier batches are in flight: fewer requests
    // than calls (each batch is one request: one region, few bytes).
    let batches = store_requests(&cluster, "raw_batch_put");
    assert!(
        (2..201).contains(&batches),
        "201 puts in {batches} requests"
    );
    assert!(store_requests(&cluster, "raw_batch_get") < 200);

    // Over 4 regions, batches are cut by region and still all land.
    split_every(&cluster, 200, 50).await;
    let calls: Vec<_> = (0..200)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move { client.put(key(i), format!("w{i}")).await })
        })
        .collect();
    for c in calls {
        c.await.unwrap().unwrap();
    }
    let all = client.scan(key(0)..key(200), 1000).await.unwrap();
    assert_eq!(all.len(), 200);
    assert!(all
        .iter()
        .enumerate()
        .all(|(i, p)| p.value == format!("w{i}").as_bytes()));
    let batches = store_requests(&cluster, "raw_batch_put");

    // Switched off, every call is its own request.
    let config = Config::builder().combine_calls(false).build();
    let lone = RawClient::connect([&cluster.pd_endpoint], config)
        .await
        .unwrap();
    let calls: Vec<_> = (0..50)
        .map(|i| {
            let lone = lone.clone();
            tokio::spawn(async move { lone.put(key(i), "again").await.unwrap() })
        })
        .collect();
    for c in calls {
        c.await.unwrap();
    }
    // (At least 50: the new regions' first requests may meet elections.)
    assert!(store_requests(&cluster, "raw_put") >= 50);
    assert_eq!(store_requests(&cluster, "raw_batch_put"), batches);

    // Gets whose values together pass the 32 MiB reply limit: a combined
    // batch of them is refused by the store, and each goes alone.
    let big = vec![b'x'; 6 << 20];
    for i in 0..6 {
        client.put(format!("big{i}"), big.clone()).await.unwrap();
    }
    let gets: Vec<_> = (0..6)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move { client.get(format!("big{i}")).await })
        })
        .collect();
    for g in gets {
        let value = g.await.unwrap().expect("a big get succeeds");
        assert_eq!(value.map(|v| v.len()), Some(6 << 20));
    }
    cluster.shutdown().await;
}
