//! Region splits: by size under load, at given keys through the API, and
//! many in a row — every store's regions stay disjoint and cover the key
//! space, data stays where it belongs, and a request with an old epoch is
//! told the new regions. (The old leader's stale read during a split:
//! `regressions.rs`.)

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::kv::b;
use common::{timed, wait_for, Cluster, LONG};
use flotilla_proto::kvrpcpb::*;
use flotilla_proto::metapb;

/// A cluster whose regions split past 32 KiB, checked every 100 ms.
async fn small_regions(n: usize) -> Cluster {
    Cluster::start_with(n, |cfg| {
        cfg.split.region_split_size = bytesize::ByteSize::kib(32);
        cfg.split.split_check_interval = Duration::from_millis(100);
    })
    .await
}

/// Panics unless `regions` (sorted by start) are disjoint and cover the
/// whole key space.
fn assert_covering(regions: &[metapb::Region], what: &str) {
    assert!(!regions.is_empty(), "{what}: no regions");
    assert!(
        regions[0].start_key.is_empty(),
        "{what}: first region starts at {:?}",
        regions[0].start_key
    );
    for pair in regions.windows(2) {
        assert_eq!(
            pair[0].end_key, pair[1].start_key,
            "{what}: regions {} and {} neither touch nor are disjoint",
            pair[0].id, pair[1].id
        );
    }
    let last = regions
        .last()
        .map(|r| r.end_key.clone())
        .unwrap_or_default();
    assert!(last.is_empty(), "{what}: last region ends at {last:?}");
}

fn key(i: usize) -> Vec<u8> {
    format!("key{i:06}").into_bytes()
}

/// Writes while regions split by size: every write lands, the regions of
/// every store end up disjoint and covering, with bumped versions.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn regions_split_by_size_under_write_load() {
    let cluster = Arc::new(small_regions(3).await);
    let written = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (cluster, written, stop) = (cluster.clone(), written.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut i = w;
            while !stop.load(Ordering::Relaxed) && i < 4_000 {
                cluster.put(&key(i), &[b'v'; 200]).await;
                written.fetch_max(i + 1, Ordering::Relaxed);
                i += 4;
            }
            i
        }));
    }
    // ~800 KiB of data in 32 KiB regions: well over 8 regions.
    wait_for("eight regions", LONG * 2, || async {
        cluster.regions_of(0).len() >= 8
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let mut ends = Vec::new();
    for w in writers {
        ends.push(w.await.unwrap());
    }
    for i in 0..3 {
        let regions = cluster.regions_of(i);
        assert_covering(&regions, &format!("store {i}"));
        assert!(regions.iter().all(|r| r.region_epoch.unwrap().version > 1));
    }
    for (w, end) in ends.into_iter().enumerate() {
        for i in (w..end).step_by(4) {
            assert_eq!(cluster.get(&key(i)).await, Some(vec![b'v'; 200]), "key {i}");
        }
    }
    // Every region has a leader, and PD knows every region.
    let regions = cluster.regions_of(0);
    for r in &regions {
        cluster.wait_for_leader(r.id).await;
    }
    let pd = cluster.pd_client().await;
    wait_for("PD to know every region", LONG, || async {
        let known = pd.scan_regions(b"", b"", 0).await.unwrap_or_default();
        known.len() >= regions.len()
    })
    .await;
    Arc::into_inner(cluster)
        .expect("writers done")
        .shutdown()
        .await;
}

/// A split through the API: both halves serve their keys, an old epoch
/// gets `EpochNotMatch` naming both, and the original region refuses the
/// new region's keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_split_at_a_key_serves_both_halves_and_refuses_old_epochs() {
    let cluster = Cluster::start(3).await;
    cluster.put(b"apple", b"1").await;
    cluster.put(b"zebra", b"2").await;
    let (i, old) = cluster.wait_route(b"apple").await;
    let mut kv = cluster.kv(i).await;
    let resp = kv
        .split_region(timed(SplitRegionRequest {
            context: Some(old),
            split_keys: vec![b("m")],
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(resp.region_error.is_none(), "{:?}", resp.region_error);
    assert_eq!(resp.regions.len(), 2);
    let (left, right) = (&resp.regions[0], &resp.regions[1]);
    assert_eq!((left.id, &left.end_key[..]), (old.region_id, &b"m"[..]));
    assert_eq!(&right.start_key[..], b"m");
    let bumped = old.region_epoch.unwrap().version + 1;
    assert_eq!(left.region_epoch.unwrap().version, bumped);
    assert_eq!(right.region_epoch.unwrap().version, bumped);

    // The old epoch is refused, with both regions in the answer.
    let stale = kv
        .raw_get(timed(RawGetRequest {
            context: Some(old),
            key: b("apple"),
        }))
        .await
        .unwrap()
        .into_inner();
    let err = stale.region_error.expect("old epoch refused");
    let current = err.epoch_not_match.expect("EpochNotMatch").current_regions;
    let ids: Vec<u64> = current.iter().map(|r| r.id).collect();
    assert!(ids.contains(&left.id) && ids.contains(&right.id), "{ids:?}");

    // With the new epoch, the left region refuses the right one's keys.
    let mut fresh = old;
    fresh.region_epoch = left.region_epoch;
    let wrong = kv
        .raw_get(timed(RawGetRequest {
            context: Some(fresh),
            key: b("zebra"),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(wrong.region_error.unwrap().key_not_in_region.is_some());

    // Both halves serve, and both take writes.
    cluster.wait_for_leader(right.id).await;
    assert_eq!(cluster.get(b"apple").await, Some(b"1".to_vec()));
    assert_eq!(cluster.get(b"zebra").await, Some(b"2".to_vec()));
    cluster.put(b"monkey", b"3").await;
    cluster.put(b"banana", b"4").await;
    assert_eq!(cluster.get(b"monkey").await, Some(b"3".to_vec()));
    for i in 0..3 {
        assert_covering(&cluster.regions_of(i), &format!("store {i}"));
    }
    cluster.shutdown().await;
}

/// Bad split requests get clear answers and change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_split_requests_are_refused() {
    let cluster = Cluster::start(1).await;
    let (i, ctx) = cluster.wait_route(b"a").await;
    let mut kv = cluster.kv(i).await;
    let split = |keys: Vec<bytes::Bytes>| SplitRegionRequest {
        context: Some(ctx),
        split_keys: keys,
    };
    let status = kv.split_region(timed(split(vec![]))).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    let status = kv
        .split_region(timed(split(vec![b("")])))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    let too_many = (0..1_001).map(|i| b(format!("k{i:05}"))).collect();
    let status = kv.split_region(timed(split(too_many))).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(cluster.regions_of(0).len(), 1);
    cluster.shutdown().await;
}

/// 1,000 splits one after the other: every store ends with 1,001 regions,
/// disjoint and covering, and PD agrees.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_splits_in_a_row_leave_ranges_disjoint_and_covering() {
    const SPLITS: usize = 1_000;
    let cluster = Cluster::start(3).await;
    let first = cluster.first_region().await;
    // Cut the first region from the top down: it keeps its leader, and
    // every cut makes one new region.
    for n in (1..=SPLITS).rev() {
        let mut done = false;
        for _ in 0..50 {
            let (i, ctx) = cluster.leader_context(first).await;
            let mut kv = cluster.kv(i).await;
            let resp = kv
                .split_region(timed(SplitRegionRequest {
                    context: Some(ctx),
                    split_keys: vec![b(key(n))],
                }))
                .await;
            if let Ok(r) = resp {
                if r.get_ref().region_error.is_none() {
                    done = true;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(done, "split {n} never succeeded");
    }
    for i in 0..3 {
        wait_for("every split applied", LONG, || async {
            cluster.regions_of(i).len() == SPLITS + 1
        })
        .await;
        assert_covering(&cluster.regions_of(i), &format!("store {i}"));
    }
    let pd = cluster.pd_client().await;
    wait_for("PD to know every region", LONG, || async {
        let known = pd.scan_regions(b"", b"", 0).await.unwrap_or_default();
        known.len() == SPLITS + 1
    })
    .await;
    let known = pd.scan_regions(b"", b"", 0).await.unwrap();
    let known: Vec<metapb::Region> = known.into_iter().filter_map(|r| r.region).collect();
    assert_covering(&known, "PD");
    cluster.put(&key(500), b"x").await;
    assert_eq!(cluster.get(&key(500)).await, Some(b"x".to_vec()));
    cluster.shutdown().await;
}

/// A split's new region elects its leader at once, not an election
/// timeout later: the candidate's vote requests that reach a store before
/// its copy of the split applies are held for the new peer, and the new
/// peers — which never acknowledged a leader — vote without waiting out
/// the startup wait every other peer keeps. With a 3 s election timeout
/// here, either half of that missing would take seconds. (It used to: a
/// stall of 1.3–1.4 s after a split in the fault harness.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_splits_new_region_elects_without_waiting_out_an_election_timeout() {
    let cluster = Cluster::start_with(3, |cfg| {
        // 150 ticks of 20 ms.
        cfg.raft.election_ticks = 150;
        cfg.raft.heartbeat_ticks = 10;
    })
    .await;
    for i in 0..20 {
        cluster.put(&key(i), b"v").await;
    }
    for round in 1..=3 {
        let at = key(round * 5);
        let started = std::time::Instant::now();
        cluster.split(vec![b(at.clone())]).await;
        let elected = wait_for("the new region's leader", LONG, || async {
            common::probe::region_starting_at(&cluster, &at).is_some()
        })
        .await;
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(1500),
            "split {round}: the new region took {took:?} to elect ({elected:?} after the split returned)"
        );
    }
}
