//! Regression scenarios: the production bugs of other systems listed in
//! RELIABILITY.md §3, replayed on the in-process cluster (real PD, real
//! stores on RocksDB, gRPC on loopback) with the Raft transport's filter
//! chain as the fault injector. One test per scenario, each linking its
//! source bug and stating what it asserts.
//!
//! Where a test keeps a [`LeaderJournal`] (who led which region in which
//! term: invariant I3), its faults heal through [`Switch`]es rather than
//! `FilterChain::clear`, so that the journal's tap — first in every chain —
//! keeps recording.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::faults::{isolate, Counter, Frozen};
use common::journal::LeaderJournal;
use common::kv::{b, on_store};
use common::probe::*;
use common::{poll, timed, wait_for, Cluster, LONG};
use flotilla_proto::kvrpcpb::*;
use flotilla_proto::raft_serverpb::SnapshotData;
use flotilla_proto::{metapb, pdpb};
use flotilla_store::config::StoreConfig;
use flotilla_store::driver::context::RegionMeta;
use flotilla_store::peer::msg::{InboundRaft, PeerMsg};
use flotilla_store::transport::filter::{
    Direction, DropFilter, HoldFilter, PartitionFilter, Switch,
};
use parking_lot::Mutex;
use prost::Message as _;
use raftcore::MessageType;

/// One scenario at a time: each runs a cluster whose elections and
/// leases are timed in tens of milliseconds, and several at once on two
/// cores starve each other's tickers (a scenario then misses the moment
/// it sets up, e.g. a peer still uninitialized when cut off).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long a group with a live quorum may take to elect a leader here
/// (election timeouts are 200–400 ms; the rest is slack for a loaded
/// 2-core machine). A stuck election (etcd #9586) never ends, so any bound
/// catches it.
const ELECTION_DEADLINE: Duration = Duration::from_secs(10);

fn key(i: usize) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

fn value(i: usize) -> Vec<u8> {
    format!("value-{i}").into_bytes()
}

/// Store timings without hibernation: every leader heartbeats all the
/// time, so leadership and terms move only when a test moves them.
fn awake(cfg: &mut StoreConfig) {
    cfg.raft.hibernate_regions = false;
}

/// One put through store `i`'s peer of `region`: whether it was
/// acknowledged.
async fn put_via(cluster: &Cluster, i: usize, region: u64, key: &[u8], value: &[u8]) -> bool {
    let Some(m) = meta(cluster, i, region) else {
        return false;
    };
    let mut kv = cluster.kv(i).await;
    let put = kv.raw_put(timed(RawPutRequest {
        context: Some(context_of(&m)),
        key: b(key),
        value: b(value),
    }));
    matches!(
        tokio::time::timeout(Duration::from_secs(6), put).await,
        Ok(Ok(r)) if r.get_ref().region_error.is_none()
    )
}

// ---------------------------------------------------------------------
// 1. Stale read from an old leader cut off by a partition.
// ---------------------------------------------------------------------

/// How the old leader stands when the partition cuts it off.
#[derive(Clone, Copy, Debug, PartialEq)]
enum OldLeader {
    /// Serving lease reads, then frozen (as by SIGSTOP) with its lease
    /// still valid, and thawed once the majority moved on.
    Leased,
    /// Hibernating: its lease lapsed while asleep, yet it still believes
    /// it leads, and nothing wakes it before the read.
    Asleep,
}

/// What one read answered.
#[derive(Debug)]
enum Answer {
    /// Served: the value (or none).
    Value(Option<Vec<u8>>),
    /// Turned away with a region error (not leader, epoch, ...).
    Refused,
    /// No answer (timeout, connection).
    Failed(String),
}

/// One read of `k` from store `i` with `ctx`.
async fn read_once(cluster: &Cluster, i: usize, ctx: Context) -> Answer {
    let mut kv = cluster.kv(i).await;
    let read = kv.raw_get(timed(RawGetRequest {
        context: Some(ctx),
        key: b("k"),
    }));
    match tokio::time::timeout(Duration::from_secs(6), read).await {
        Ok(Ok(r)) => {
            let r = r.into_inner();
            match r.region_error {
                Some(_) => Answer::Refused,
                None => Answer::Value((!r.not_found).then(|| r.value.to_vec())),
            }
        }
        Ok(Err(status)) => Answer::Failed(status.to_string()),
        Err(_) => Answer::Failed("client timeout".into()),
    }
}

async fn no_stale_read_from_a_cut_off_leader(how: OldLeader) {
    let cluster = Cluster::start(3).await;
    cluster.disable_balance().await;
    let region = cluster.first_region().await;
    cluster.put(b"k", b"old").await;
    if how == OldLeader::Asleep {
        wait_for("the region to hibernate on every store", LONG, || async {
            (0..3).all(|i| cluster.store(i).router().is_hibernating(region))
        })
        .await;
    }
    let (old, old_ctx) = cluster.leader_context(region).await;
    let frozen = if how == OldLeader::Leased {
        let lease_reads = || cluster.store(old).context().metrics.lease_reads.get();
        let before = lease_reads();
        wait_for("the old leader to serve lease reads", LONG, || async {
            matches!(read_once(&cluster, old, old_ctx).await, Answer::Value(Some(v)) if v == b"old")
                && lease_reads() >= before + 3
        })
        .await;
        Some(Frozen::new(&cluster, old, region).await)
    } else {
        None
    };
    cluster
        .store(old)
        .filters()
        .add(Arc::new(PartitionFilter { stores: Vec::new() }));
    // The old leader still claims the lead (frozen or asleep, it cannot
    // know better): write through another store.
    wait_for("the new leader to take the write", LONG, || async {
        let Some(i) = (0..3).find(|&i| i != old && leads(&cluster, i, region)) else {
            return false;
        };
        put_via(&cluster, i, region, b"k", b"new").await
    })
    .await;
    // Only now does the old leader see a read (and, frozen, run again).
    let read = read_once(&cluster, old, old_ctx);
    let answer = match frozen {
        Some(frozen) => {
            let (answer, ()) = tokio::join!(read, async {
                wait_for("the read to reach the frozen leader", LONG, || async {
                    frozen.pending() > 0
                })
                .await;
                frozen.thaw();
            });
            answer
        }
        None => read.await,
    };
    match &answer {
        Answer::Refused => {}
        Answer::Value(Some(v)) if v == b"new" => {}
        Answer::Value(v) => panic!(
            "{how:?}: the cut-off old leader served {:?} after \"new\" was acknowledged",
            v.as_deref().map(String::from_utf8_lossy)
        ),
        Answer::Failed(e) => panic!("{how:?}: the cut-off old leader never answered: {e}"),
    }
    cluster.store(old).filters().clear();
    assert_eq!(cluster.get(b"k").await, Some(b"new".to_vec()));
    wait_for("the old leader to catch up", LONG, || async {
        on_store(&cluster, old, b"k").as_deref() == Some(b"new".as_slice())
    })
    .await;
    cluster.shutdown().await;
}

/// Stale read from an old leader whose lease ran past a partition
/// (raft-rs #234, <https://github.com/tikv/raft-rs/issues/234>, asks
/// whether a lease can outlive leadership; openraft #1749,
/// <https://github.com/databendlabs/openraft/pull/1749>, served stale lease
/// reads after losing it). The leader serves lease reads, then freezes
/// (its peer is not handled at all, as under SIGSTOP: RELIABILITY.md §4.4
/// P5) with a valid lease, and is cut off; the majority elects a new leader
/// that overwrites the key. Thawed, the old leader gets a read: it must
/// refuse it (or serve the new value), never the overwritten one — the
/// ticks it missed must expire its lease and step it down (Check-Quorum)
/// before any request is looked at. A peer that handles requests before
/// catching up its clock, or a lease that outlives an election timeout,
/// fails this.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn regress_raft_rs_234_no_stale_lease_read_from_a_cut_off_leader() {
    let _serial = SERIAL.lock().await;
    no_stale_read_from_a_cut_off_leader(OldLeader::Leased).await;
}

/// The same with the old leader hibernating when cut off (it does not
/// notice it was deposed until a request wakes it): woken by a read after
/// the overwrite was acknowledged, it must not answer from its own state —
/// its lease lapsed while it slept — but refuse, or confirm leadership,
/// which it cannot. A hibernating leader that kept (or revived) its lease
/// on waking fails this. (Moved here from `hibernation.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn regress_raft_rs_234_no_stale_read_from_a_deposed_sleeping_leader() {
    let _serial = SERIAL.lock().await;
    no_stale_read_from_a_cut_off_leader(OldLeader::Asleep).await;
}

// ---------------------------------------------------------------------
// 2. Stale read during a split.
// ---------------------------------------------------------------------

/// The region starting at "m", split off `region`, if a store other than
/// `old` leads it: that store and a request context.
fn led_elsewhere(cluster: &Cluster, old: usize, region: u64) -> Option<(usize, Context)> {
    (0..3).filter(|&i| i != old).find_map(|i| {
        let regions = cluster.store(i).context().regions.read();
        let m = regions.values().find(|m| {
            m.is_leader && m.region.id != region && m.region.start_key == b"m".as_slice()
        })?;
        Some((i, context_of(m)))
    })
}

/// Stale read during a split (TiKV's
/// `test_node_stale_read_during_splitting_left_derive`,
/// <https://github.com/tikv/tikv/blob/master/tests/failpoints/cases/test_stale_read.rs>):
/// the old leader is slow to apply its own split (its apply pool paused)
/// while the followers apply it, and the new region, led by one of them,
/// takes a write. The old leader's lease is still valid, yet it must not
/// answer a read of the new region's key from its old range: until its
/// split applied, it reads through ReadIndex and the apply, and then the
/// epoch has moved on. A leader that keeps serving lease reads between
/// proposing a split and applying it fails this. (Moved here from
/// `split.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn regress_tikv_stale_read_during_split_old_leader_serves_no_key_of_the_new_region() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start(3).await;
    cluster.disable_balance().await;
    cluster.put(b"z", b"old").await;
    let region = cluster.first_region().await;
    let (old, old_ctx) = cluster.leader_context(region).await;
    cluster.store(old).context().apply_pool.pause();
    // The split's answer waits for the old leader's apply: in the background.
    let mut kv = cluster.kv(old).await;
    let split = tokio::spawn(async move {
        kv.split_region(SplitRegionRequest {
            context: Some(old_ctx),
            split_keys: vec![b("m")],
        })
        .await
    });
    // The new region, led on another store, takes a write of "z".
    wait_for("the new region led on another store", LONG, || async {
        led_elsewhere(&cluster, old, region).is_some()
    })
    .await;
    let (i, ctx) = led_elsewhere(&cluster, old, region).expect("found");
    let put = cluster
        .kv(i)
        .await
        .raw_put(timed(RawPutRequest {
            context: Some(ctx),
            key: b("z"),
            value: b("new"),
        }))
        .await
        .expect("put answered")
        .into_inner();
    assert!(put.region_error.is_none(), "{:?}", put.region_error);
    // Ask the old leader, under its still-valid lease and old epoch.
    let mut kv = cluster.kv(old).await;
    let mut read = tokio::spawn(async move {
        kv.raw_get(timed(RawGetRequest {
            context: Some(old_ctx),
            key: b("z"),
        }))
        .await
    });
    let not_stale = |answer: Result<tonic::Response<RawGetResponse>, tonic::Status>| {
        if let Ok(r) = answer {
            let r = r.into_inner();
            assert!(
                r.region_error.is_some() || r.value == b"new".as_slice(),
                "stale read from the old leader: {:?}",
                String::from_utf8_lossy(&r.value)
            );
        }
    };
    // While its apply is held, the old leader must not answer from its
    // state (it may only turn the read away).
    let early = tokio::time::timeout(Duration::from_millis(300), &mut read).await;
    cluster.store(old).context().apply_pool.resume();
    match early {
        Ok(answer) => not_stale(answer.expect("read task")),
        Err(_) => not_stale(read.await.expect("read task")),
    }
    let split = split.await.expect("split task").expect("split answered");
    assert!(split.get_ref().region_error.is_none());
    assert_eq!(cluster.get(b"z").await, Some(b"new".to_vec()));
    cluster.shutdown().await;
}

// ---------------------------------------------------------------------
// 3. Two leaders in one term after a split.
// ---------------------------------------------------------------------

/// Keys on both sides of the split at "m" used by the #9579 tests: `a00`
/// and up on the left, `z00` and up on the right.
fn side(left: bool, i: usize) -> Vec<u8> {
    format!("{}{i:02}", if left { 'a' } else { 'z' }).into_bytes()
}

/// Puts `value` at the first `n` keys of both sides.
async fn put_both_sides(cluster: &Cluster, n: usize, value: &[u8]) {
    for i in 0..n {
        cluster.put(&side(true, i), value).await;
        cluster.put(&side(false, i), value).await;
    }
}

/// Whether store `i` holds `value` at the first `n` keys of one side.
fn side_holds(cluster: &Cluster, i: usize, left: bool, n: usize, value: &[u8]) -> bool {
    (0..n).all(|k| on_store(cluster, i, &side(left, k)).as_deref() == Some(value))
}

/// Splits the cluster's first region at "m" and waits for the right half
/// to have a leader that PD knows of; returns its ID.
async fn split_at_m(cluster: &Cluster) -> u64 {
    cluster.split(vec![b("m")]).await;
    let right = poll("the right half's leader", || {
        region_starting_at(cluster, b"m")
    })
    .await
    .id;
    wait_for("PD to know the right half", LONG, || async {
        let path = format!("/pd/api/v1/region/id/{right}");
        cluster.pd_http("GET", &path, "").await.0.contains(" 200")
    })
    .await;
    right
}

/// Two leaders of one term after a split (TiKV #9579,
/// <https://github.com/tikv/tikv/issues/9579>): region A has peers on
/// stores 1-3, store 3 is cut off; A splits (B is born with a voter on
/// store 3 that store 3 never creates from the split, since it misses it),
/// then A drops its store-3 replica and PD adds one on store 4. When store 3
/// is back, its A replica learns it was removed and destroys itself, and
/// B's leader creates B's store-3 peer from its messages — an uninitialized
/// voter, until a snapshot fills it. The journal of every store's leaders
/// (published roles and terms sampled every 2 ms, and every message only a
/// leader sends) must show at most one leader per region and term
/// throughout, both halves must end up with three replicas holding every
/// acknowledged write, and store 3 must hold B and not A. A vote of the
/// uninitialized peer forgotten, or its peer created from a stale message
/// with a fresh vote, breaks the journal's invariant.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn regress_tikv_9579_no_two_leaders_in_a_term_when_a_cut_off_store_misses_a_split_and_a_removal(
) {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start_with(4, awake).await;
    cluster.disable_balance().await;
    let a = cluster.first_region().await;
    put_both_sides(&cluster, 20, b"1").await;
    let journal = LeaderJournal::start(&cluster);
    let (leader, region_a, _) = cluster.leader_of(a).expect("a leader");
    let index_of = |store_id: u64| (0..4).find(|&i| cluster.store_id(i) == store_id);
    let members: Vec<usize> = region_a
        .peers
        .iter()
        .filter_map(|p| index_of(p.store_id))
        .collect();
    let cut_off = *members.iter().find(|&&i| i != leader).expect("a follower");
    let spare = (0..4)
        .find(|i| !members.contains(i))
        .expect("a fourth store");
    let cut = isolate(&cluster, cut_off);
    // PD knows B (and so B's replica on the cut-off store) before it places
    // A's replacement: the two free stores do not look alike.
    let bid = split_at_m(&cluster).await;
    common::membership::operator(&cluster, "remove-peer", a, cluster.store_id(cut_off)).await;
    wait_for(
        "A to move from the cut-off store to the spare",
        LONG,
        || async {
            cluster.leader_of(a).is_some_and(|(_, r, _)| {
                peer_on(&r, cluster.store_id(cut_off)).is_none()
                    && common::membership::voters_on(&r).contains(&cluster.store_id(spare))
                    && r.peers.len() == 3
            })
        },
    )
    .await;
    put_both_sides(&cluster, 20, b"2").await;
    cut.set(false);
    wait_for(
        "the cut-off store to drop A and hold B with every write",
        LONG,
        || async {
            let regions = cluster.regions_of(cut_off);
            regions.len() == 1
                && regions[0].id == bid
                && side_holds(&cluster, cut_off, false, 20, b"2")
        },
    )
    .await;
    wait_for(
        "the spare store to hold A with every write",
        LONG,
        || async { side_holds(&cluster, spare, true, 20, b"2") },
    )
    .await;
    for i in 0..20 {
        for k in [side(true, i), side(false, i)] {
            assert_eq!(cluster.get(&k).await, Some(b"2".to_vec()));
        }
    }
    for r in [a, bid] {
        assert!(
            !journal.terms(r).is_empty(),
            "region {r}'s leaders recorded"
        );
    }
    journal.assert_one_leader_per_term("split and removal with a cut-off store");
    cluster.shutdown().await;
}

/// The vote of an uninitialized voter across a restart (TiKV #3572 and
/// #8381, the cases #9579 builds on:
/// <https://github.com/tikv/tikv/issues/3572>,
/// <https://github.com/tikv/tikv/issues/8381>). The #9579 set-up leaves B
/// with an uninitialized voter on store 3 (its snapshots held back). B's
/// leader is cut off, and its other peer wins the next term with store 3's
/// vote. Store 3 restarts before its peer of B holds any data; that peer,
/// which has no region state yet, is not reloaded, and the next message for
/// it — a vote request from the old leader, back, for the same term —
/// creates it anew. It must remember the vote it gave in that term (its
/// hard state was persisted): two leaders of B in one term break
/// invariant I3.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "flaky set-up, not yet root-caused: in about 1 run of 4 of the whole file, store 3's peer of B is initialized (or never follows B's leader uninitialized) before the scenario can cut it off; it passed every run alone"]
async fn regress_tikv_3572_a_restarted_uninitialized_voter_votes_once_per_term() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::start_with(3, awake).await;
    cluster.disable_balance().await;
    let a = cluster.first_region().await;
    put_both_sides(&cluster, 10, b"1").await;
    let journal = LeaderJournal::start(&cluster);
    let s3 = (cluster.wait_for_leader(a).await + 1) % 3;
    let bid = leave_an_uninitialized_voter(&cluster, a, s3).await;
    let b_leader = poll("B's leader", || cluster.leader_of(bid).map(|(i, _, _)| i)).await;
    let b_other = 3 - s3 - b_leader;
    // B's leader is cut off: the other peer wins the next term with the
    // uninitialized peer's vote.
    let cut_leader = isolate(&cluster, b_leader);
    wait_for(
        "B's other peer to win with store 3's vote",
        LONG,
        || async { leads(&cluster, b_other, bid) },
    )
    .await;
    let term2 = meta(&cluster, b_other, bid).expect("B").term;
    assert!(
        meta(&cluster, s3, bid).is_some_and(|m| m.region.peers.is_empty()),
        "store 3's peer of B is still uninitialized"
    );
    // That peer is restarted (not reloaded: it has no region state), and
    // the old leader, back, asks for votes while the winner is cut off.
    let cut_other = isolate(&cluster, b_other);
    journal.forget(s3);
    cluster.restart_store(s3).await;
    journal.watch(&cluster, s3);
    cluster
        .store(s3)
        .filters()
        .add(Arc::new(no_snapshots_of(bid)));
    cut_leader.set(false);
    wait_for("B's old leader to lead again", LONG, || async {
        leads(&cluster, b_leader, bid)
    })
    .await;
    journal.assert_one_leader_per_term("a restarted uninitialized voter");
    let term3 = meta(&cluster, b_leader, bid).expect("B").term;
    assert!(term3 > term2, "B led in term {term2}, then in {term3}");
    // Everything heals: B's peer on store 3 gets its snapshot.
    cut_other.set(false);
    cluster.store(s3).filters().clear();
    journal.forget(s3);
    journal.watch(&cluster, s3);
    wait_for("store 3 to hold B's data", LONG, || async {
        side_holds(&cluster, s3, false, 10, b"1")
    })
    .await;
    journal.assert_one_leader_per_term("after healing");
    drop(journal);
    cluster.shutdown().await;
}

/// Drops the snapshots of `region` a store receives.
fn no_snapshots_of(region: u64) -> DropFilter {
    DropFilter {
        region_id: Some(region),
        types: vec![MessageType::Snapshot],
        direction: Some(Direction::Inbound),
    }
}

/// The #9579 set-up on three stores: store `s3` is cut off while region
/// `a` splits at "m" and drops its replica there (PD adds one back, a
/// learner waiting for `s3`); back, `s3` destroys its peer of `a`, and the
/// right half B's leader creates B's peer there from its messages — kept
/// uninitialized, as B's snapshots to `s3` are dropped. Returns B's ID once
/// that peer follows B's leader.
async fn leave_an_uninitialized_voter(cluster: &Cluster, a: u64, s3: usize) -> u64 {
    let cut = isolate(cluster, s3);
    let bid = split_at_m(cluster).await;
    let old_a3 = meta(cluster, s3, a).expect("A on store 3").peer;
    common::membership::operator(cluster, "remove-peer", a, cluster.store_id(s3)).await;
    wait_for("A's store-3 peer to be removed", LONG, || async {
        cluster
            .leader_of(a)
            .is_some_and(|(_, r, _)| !r.peers.iter().any(|p| p.id == old_a3.id))
    })
    .await;
    cluster
        .store(s3)
        .filters()
        .add(Arc::new(no_snapshots_of(bid)));
    cut.set(false);
    wait_for(
        "B's uninitialized peer on store 3 to follow its leader",
        LONG,
        || async {
            let leader_term = cluster
                .leader_of(bid)
                .and_then(|(i, _, _)| meta(cluster, i, bid))
                .map(|m| m.term);
            meta(cluster, s3, bid).is_some_and(|m| {
                m.region.peers.is_empty() && Some(m.term) == leader_term && m.term > 0
            })
        },
    )
    .await;
    bid
}

// ---------------------------------------------------------------------
// 4. Pre-Vote + Check-Quorum elections that never end.
// ---------------------------------------------------------------------

/// Whether store `i` holds `key(k)` = `value(k)` for every `k` in `keys`.
fn holds_all(cluster: &Cluster, i: usize, keys: std::ops::Range<usize>) -> bool {
    keys.into_iter()
        .all(|k| on_store(cluster, i, &key(k)) == Some(value(k)))
}

/// No leader with Pre-Vote and Check-Quorum after the leader is cut off
/// (etcd #9586, <https://github.com/etcd-io/etcd/issues/9586>; the fix's
/// test is etcd's `TestPreVoteWithCheckQuorum`): three stores, the
/// leader's store cut off both ways; the two followers both campaign, and
/// one of them must be elected within [`ELECTION_DEADLINE`] and take
/// writes the cut-off store does not get. Healed, the old leader (now with
/// the smaller term) rejoins: within the deadline all three follow one
/// leader in one term, the old leader catches up, every write is readable,
/// and no term had two leaders. A pre-candidate that keeps honouring its
/// old leader's lease (the #9586 bug), or a rejoining peer refused for
/// ever, fails this. (Moved here from `recovery.rs`, with the deadline and
/// the journal added.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn regress_etcd_9586_an_isolated_leader_is_replaced_within_a_deadline_and_rejoins() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start(3).await;
    let region = cluster.first_region().await;
    for i in 0..20 {
        cluster.put(&key(i), &value(i)).await;
    }
    let journal = LeaderJournal::start(&cluster);
    let old = cluster.wait_for_leader(region).await;
    let cut = isolate(&cluster, old);
    wait_for("another store to lead", ELECTION_DEADLINE, || async {
        (0..3).any(|i| i != old && leads(&cluster, i, region))
    })
    .await;
    for i in 20..60 {
        cluster.put(&key(i), &value(i)).await;
    }
    assert!(
        !holds_all(&cluster, old, 0..60),
        "the isolated store received nothing"
    );
    cut.set(false);
    wait_for(
        "all three to follow one leader in one term",
        ELECTION_DEADLINE,
        || async { agree_on_one_leader(&cluster, region) },
    )
    .await;
    wait_for("the old leader to catch up", LONG, || async {
        holds_all(&cluster, old, 0..60)
    })
    .await;
    for i in 0..60 {
        assert_eq!(cluster.get(&key(i)).await, Some(value(i)));
    }
    journal.assert_one_leader_per_term("leader cut off and back");
    cluster.shutdown().await;
}

/// A peer with a smaller term rejoins just as the leader dies (etcd #8243,
/// <https://github.com/etcd-io/etcd/issues/8243>, one of the #9586
/// family): peer C is cut off at term t while A and B move on to term
/// T > t (two leader transfers); then C comes back and the leader's store
/// stops, leaving A (term T, longer log) and C (term t) — both votes are
/// needed. A leader must be elected within [`ELECTION_DEADLINE`] with every
/// acknowledged write. The #8243 bug — granted pre-votes stamped with the
/// voter's own, stale term (which the candidate drops as stale), while the
/// lower-term pre-votes are dropped without an answer that would carry the
/// higher term back — leaves the pair leaderless for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn regress_etcd_8243_a_rejoining_peer_with_a_smaller_term_helps_elect_a_leader() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::start_with(3, awake).await;
    cluster.disable_balance().await;
    let region = cluster.first_region().await;
    let journal = LeaderJournal::start(&cluster);
    let first = cluster.wait_for_leader(region).await;
    let c = (first + 1) % 3;
    let other = 3 - first - c;
    let cut = isolate(&cluster, c);
    for i in 0..10 {
        cluster.put(&key(i), &value(i)).await;
    }
    // Two transfers between the connected pair: two new terms.
    for to in [other, first] {
        common::membership::operator(&cluster, "transfer-leader", region, cluster.store_id(to))
            .await;
        wait_for("the transfer", LONG, || async {
            leads(&cluster, to, region)
        })
        .await;
    }
    for i in 10..20 {
        cluster.put(&key(i), &value(i)).await;
    }
    let term = meta(&cluster, first, region).expect("leader").term;
    let c_term = meta(&cluster, c, region).expect("C").term;
    assert!(c_term + 2 <= term, "C's term {c_term}, the group's {term}");
    cut.set(false);
    cluster.stop_store(first).await;
    wait_for("a leader of the two left", ELECTION_DEADLINE, || async {
        leads(&cluster, other, region) || leads(&cluster, c, region)
    })
    .await;
    for i in 0..20 {
        assert_eq!(cluster.get(&key(i)).await, Some(value(i)), "key {i}");
    }
    journal.assert_one_leader_per_term("a smaller term rejoining");
    cluster.shutdown().await;
}

/// A peer whose term ran ahead rejoins (the other half of the #9586
/// family, <https://github.com/etcd-io/etcd/issues/9586>: Pre-Vote keeps
/// a cut-off peer's term still, but a leader transfer's `TimeoutNow` does
/// not). Peer C, cut off from everything but `TimeoutNow`, is asked to take
/// the lead: it campaigns in term T+1 and loses (its vote requests are
/// dropped), while A keeps leading in term T. Healed, C answers A's
/// heartbeats with its higher term; the others ignore C's votes while in
/// A's lease. The group must converge within [`ELECTION_DEADLINE`] on one
/// leader in one term (at least C's) and take writes, with one leader per
/// term throughout. A peer that ignores lower-term heartbeats in silence
/// (etcd before its fix) keeps C out, and its vote requests keep failing:
/// a group that needs C never converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn regress_etcd_9586_a_rejoining_peer_with_a_larger_term_is_taken_back() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start_with(3, awake).await;
    cluster.disable_balance().await;
    let region = cluster.first_region().await;
    for i in 0..10 {
        cluster.put(&key(i), &value(i)).await;
    }
    let journal = LeaderJournal::start(&cluster);
    let leader = cluster.wait_for_leader(region).await;
    let c = (leader + 1) % 3;
    let everything_but_timeout_now: Vec<MessageType> = MessageType::ALL
        .into_iter()
        .filter(|&t| t != MessageType::TimeoutNow)
        .collect();
    let mute = Switch::new(DropFilter {
        direction: Some(Direction::Outbound),
        ..Default::default()
    });
    let deaf = Switch::new(DropFilter {
        types: everything_but_timeout_now,
        direction: Some(Direction::Inbound),
        ..Default::default()
    });
    cluster.store(c).filters().add(mute.clone());
    cluster.store(c).filters().add(deaf.clone());
    let term = meta(&cluster, leader, region).expect("leader").term;
    let c_peer = meta(&cluster, c, region).expect("C").peer;
    wait_for("C's term to run ahead", LONG, || async {
        // The leader sends TimeoutNow only to an up-to-date transferee;
        // ask again until one got through (C campaigns on it).
        let epoch = meta(&cluster, leader, region).and_then(|m| m.region.region_epoch);
        let ask = PeerMsg::TransferLeader {
            epoch: epoch.unwrap_or_default(),
            to: c_peer,
        };
        let _ = cluster.store(leader).router().send(region, ask);
        tokio::time::sleep(Duration::from_millis(100)).await;
        meta(&cluster, c, region).is_some_and(|m| m.term > term)
    })
    .await;
    let c_term = meta(&cluster, c, region).expect("C").term;
    assert!(
        leads(&cluster, leader, region) && meta(&cluster, leader, region).expect("A").term < c_term,
        "the leader kept leading in its older term while C ran ahead to {c_term}"
    );
    mute.set(false);
    deaf.set(false);
    wait_for(
        "one leader in one term, at least C's",
        ELECTION_DEADLINE,
        || async {
            agree_on_one_leader(&cluster, region)
                && meta(&cluster, c, region).is_some_and(|m| m.term >= c_term)
        },
    )
    .await;
    cluster.put(b"after", b"rejoin").await;
    wait_for("C to take writes again", LONG, || async {
        on_store(&cluster, c, b"after").is_some()
    })
    .await;
    journal.assert_one_leader_per_term("a larger term rejoining");
    cluster.shutdown().await;
}

// ---------------------------------------------------------------------
// 5. A leader transfer racing a membership change.
// ---------------------------------------------------------------------

/// Whether `region` has settled: exactly one store leads it, its region
/// has three voters (none of them `gone`) and no learner, and every store
/// holds a peer of it with that same epoch and peer list.
fn settled(cluster: &Cluster, region: u64, gone: u64) -> bool {
    let metas: Vec<RegionMeta> = (0..3).filter_map(|i| meta(cluster, i, region)).collect();
    let leaders: Vec<&RegionMeta> = metas.iter().filter(|m| m.is_leader).collect();
    let [leader] = leaders[..] else {
        return false;
    };
    let r = &leader.region;
    let voters = r
        .peers
        .iter()
        .filter(|p| p.role == metapb::PeerRole::Voter as i32)
        .count();
    metas.len() == 3
        && voters == 3
        && r.peers.len() == 3
        && !r.peers.iter().any(|p| p.id == gone)
        && leader.pending_peers.is_empty()
        && metas
            .iter()
            .all(|m| m.region.region_epoch == r.region_epoch && m.region.peers == r.peers)
}

/// Hands `region`'s leader, in one go, a change removing its first
/// follower and a transfer of the lead to that follower (`round` 0) or to
/// the other one (`round` 1); returns the removed peer's ID.
async fn remove_and_transfer_at_once(cluster: &Cluster, region: u64, round: usize) -> u64 {
    let (l, m) = poll("a leader", || {
        (0..3).find_map(|i| {
            meta(cluster, i, region)
                .filter(|m| m.is_leader)
                .map(|m| (i, m))
        })
    })
    .await;
    let followers: Vec<metapb::Peer> = m
        .region
        .peers
        .iter()
        .filter(|p| p.id != m.peer.id)
        .copied()
        .collect();
    let (removed, transferee) = (followers[0], followers[round]);
    let epoch = m.region.region_epoch.expect("epoch");
    let remove = PeerMsg::ChangePeer {
        epoch,
        changes: vec![pdpb::ChangePeer {
            change_type: pdpb::ConfChangeType::RemoveNode as i32,
            peer: Some(removed),
        }],
    };
    let transfer = PeerMsg::TransferLeader {
        epoch,
        to: transferee,
    };
    let router = cluster.store(l).router();
    assert!(router.send(region, remove).is_ok() && router.send(region, transfer).is_ok());
    removed.id
}

/// A leader transfer racing a membership change (RELIABILITY.md §4.4 T3
/// and T4 at once; the liveness side is etcd #12359,
/// <https://github.com/etcd-io/etcd/issues/12359>). Under a steady stream
/// of writes, the leader is handed, in one go, a change removing a
/// follower and a transfer of the lead — first to that very follower
/// (which may win, then apply its own removal as leader), then to the
/// other follower while removing the first. Each time the region must
/// settle within [`LONG`] to one leader and one membership on every store
/// (PD's replica checker adds the third replica back), with one leader per
/// term throughout; at the end every acknowledged write is readable and on
/// every store. A transferee that leads on after applying its own removal,
/// a lost entry of the old leader's term, or a membership that differs
/// between replicas fails this.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn regress_a_leader_transfer_racing_a_membership_change_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let cluster = Arc::new(Cluster::start(3).await);
    cluster.disable_balance().await;
    let region = cluster.first_region().await;
    let journal = LeaderJournal::start(&cluster);
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (cluster, acked, stop) = (cluster.clone(), acked.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                cluster.put(&key(n), &value(n)).await;
                acked.lock().push(n);
                n += 1;
            }
        })
    };
    wait_for("some writes", LONG, || async { acked.lock().len() >= 20 }).await;
    for round in 0..2 {
        let removed = remove_and_transfer_at_once(&cluster, region, round).await;
        wait_for("the region to settle", LONG, || async {
            settled(&cluster, region, removed)
        })
        .await;
    }
    let before = acked.lock().len();
    wait_for("writes after the races", LONG, || async {
        acked.lock().len() >= before + 10
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    writer.await.expect("writer");
    let acked = std::mem::take(&mut *acked.lock());
    for &n in &acked {
        assert_eq!(
            cluster.get(&key(n)).await,
            Some(value(n)),
            "acknowledged key {n}"
        );
    }
    wait_for(
        "every store to hold every acknowledged write",
        LONG,
        || async {
            (0..3).all(|i| {
                acked
                    .iter()
                    .all(|&n| on_store(&cluster, i, &key(n)) == Some(value(n)))
            })
        },
    )
    .await;
    journal.assert_one_leader_per_term("transfers racing removals");
    drop(journal);
    Arc::into_inner(cluster)
        .expect("writer done")
        .shutdown()
        .await;
}

// ---------------------------------------------------------------------
// 6. A fresh cluster acknowledging writes with a single replica.
// ---------------------------------------------------------------------

/// How many `bootstrap` calls PD has answered (its gRPC latency count).
async fn bootstrap_calls(cluster: &Cluster) -> u64 {
    let (_, body) = cluster.pd_http("GET", "/metrics", "").await;
    let prefix = "flotilla_pd_grpc_request_duration_seconds_count{method=\"bootstrap\"} ";
    body.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// A fresh cluster acknowledges writes while it has a single replica (TiDB
/// #10657, <https://github.com/pingcap/tidb/issues/10657>: PD bootstrapped
/// the first region on one store and added the others later, so losing
/// that store lost acknowledged writes). Our bootstrap waits for
/// `max-replicas` stores and creates the first region with a voter on each:
/// with one store of three, that store's bootstrap requests are refused
/// (it holds no region and can acknowledge nothing); once three stores
/// registered, every replica of the first region lists three voters from
/// the first moment any store publishes it. Writes made the moment a leader
/// exists then survive losing the store that acknowledged them. A
/// bootstrap that starts with fewer voters than `max-replicas` fails this.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn regress_tidb_10657_a_fresh_cluster_acknowledges_no_write_with_a_single_replica() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::launch(1, |pd| pd.schedule.max_replicas = 3, |_| {}).await;
    let holds_a_region = || !cluster.store(0).context().regions.read().is_empty();
    wait_for(
        "the lone store to ask PD to bootstrap twice",
        LONG,
        || async { holds_a_region() || bootstrap_calls(&cluster).await >= 2 },
    )
    .await;
    assert!(
        !holds_a_region(),
        "one store of three bootstrapped a region"
    );
    let early = cluster
        .kv(0)
        .await
        .raw_put(timed(RawPutRequest {
            context: Some(Context {
                region_id: 2,
                ..Default::default()
            }),
            key: b("early"),
            value: b("write"),
        }))
        .await;
    if let Ok(r) = early {
        assert!(r.get_ref().region_error.is_some(), "acknowledged: {r:?}");
    }
    cluster.add_store().await;
    cluster.add_store().await;
    // From the first sighting on, every published copy of the region has
    // three voters (a peer created by its leader's message before its own
    // store wrote the region has no range nor peers yet, and holds nothing).
    let leader = poll("the first region's leader", || {
        for i in 0..3 {
            let regions = cluster.store(i).context().regions.read();
            for m in regions.values().filter(|m| !m.region.peers.is_empty()) {
                assert_eq!(
                    common::membership::voters_on(&m.region).len(),
                    3,
                    "store {i} published the first region with {:?}",
                    m.region.peers
                );
            }
        }
        (0..3).find(|&i| {
            cluster
                .store(i)
                .context()
                .regions
                .read()
                .values()
                .any(|m| m.is_leader)
        })
    })
    .await;
    let region = cluster.first_region().await;
    for i in 0..20 {
        cluster.put(&key(i), &value(i)).await;
    }
    // Lose the store that acknowledged them (the first leader, most
    // likely still leading).
    let acknowledged = cluster.leader_of(region).map_or(leader, |(i, _, _)| i);
    cluster.stop_store(acknowledged).await;
    for i in 0..20 {
        assert_eq!(cluster.get(&key(i)).await, Some(value(i)), "key {i}");
    }
    cluster.shutdown().await;
}

// ---------------------------------------------------------------------
// 7. A snapshot racing a split.
// ---------------------------------------------------------------------

/// A snapshot racing a split (RELIABILITY.md §4.4 T1; the store-side
/// metadata bug it guards is TiKV #9495,
/// <https://github.com/tikv/tikv/pull/9495>): a store fell behind the
/// truncated log, so its leader sends it a snapshot of the whole region —
/// and the region splits while that snapshot is on its way (held at the
/// receiver, then delivered once both halves took writes elsewhere). The
/// behind store installs a snapshot of the old, wider range and must then
/// apply the split from the log (the new half's peer cannot be created
/// there before, as its range is still covered). Every store must end with
/// the same two disjoint, covering regions and every acknowledged write.
/// A store that creates the new half's peer over the still-wide range, or
/// loses the writes made after the snapshot, fails this. (The neighbour
/// case, a store away during the split that gets both halves by post-split
/// snapshots, is `recovery.rs`'s `a_store_away_during_a_split_...`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn regress_a_snapshot_made_before_a_split_lands_after_it() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start_with(3, |cfg| {
        awake(cfg);
        cfg.raft.log_gc_keep_entries = 5;
        cfg.raft.log_gc_threshold_entries = 10;
        cfg.raft.log_gc_interval = Duration::from_millis(100);
    })
    .await;
    cluster.disable_balance().await;
    let region = cluster.first_region().await;
    cluster.put(&key(0), &value(0)).await;
    let journal = LeaderJournal::start(&cluster);
    let leader = cluster.wait_for_leader(region).await;
    let behind = (leader + 1) % 3;
    let (hold, snapshot) = hold_a_whole_range_snapshot(&cluster, leader, behind, region).await;
    // (A store slow to bootstrap may have got the first region by a
    // snapshot already.)
    let installed_before = snapshots(&cluster, behind, "applied");
    // The split, and writes on both sides of it, while the snapshot waits.
    cluster.split(vec![b(key(100))]).await;
    for i in (0..3).filter(|&i| i != behind) {
        wait_for("the split applied", LONG, || async {
            cluster.regions_of(i).len() == 2
        })
        .await;
    }
    for i in [50, 150] {
        cluster.put(&key(i), b"after the split").await;
    }
    // The new half's leader reaches the behind store (a heartbeat every
    // 40 ms) before the old snapshot lands there.
    let new_half = poll("the new half", || {
        region_starting_at(&cluster, &key(100)).map(|r| r.id)
    })
    .await;
    let heard = Counter::new(new_half, Vec::new(), Direction::Inbound);
    cluster.store(behind).filters().add(heard.clone());
    wait_for(
        "the new half's leader to reach the behind store",
        LONG,
        || async { heard.get() >= 10 },
    )
    .await;
    // Invariant I4 (a): no two regions of a store share a key — here, the
    // new half must not have been filled over the stale, wider range.
    let before = cluster.regions_of(behind);
    assert!(
        disjoint(&before),
        "overlapping regions on the behind store: {before:?}"
    );
    assert!(
        before.len() == 1 && snapshots(&cluster, behind, "applied") == installed_before,
        "the behind store still has the unsplit region, and no snapshot installed: {before:?}"
    );
    // Deliver the first snapshot, made before the split, straight to the
    // region's peer; the hold keeps catching the leader's resends until
    // it is installed.
    let message = raftcore::codec::decode_message(&snapshot.message).expect("decodes");
    let inbound = InboundRaft {
        envelope: snapshot,
        message,
    };
    let delivered = cluster
        .store(behind)
        .router()
        .send(region, PeerMsg::Raft(Box::new(inbound)));
    assert!(delivered.is_ok(), "the behind store's peer takes it");
    wait_for("the snapshot to be installed", LONG, || async {
        snapshots(&cluster, behind, "applied") > installed_before
    })
    .await;
    hold.release();
    let expected = |i: usize| match i {
        50 | 150 => b"after the split".to_vec(),
        _ => value(i),
    };
    wait_for(
        "the behind store to hold both halves and every write",
        LONG,
        || async {
            cluster.regions_of(behind).len() == 2
                && (0..200).all(|i| on_store(&cluster, behind, &key(i)) == Some(expected(i)))
        },
    )
    .await;
    assert_same_halves_everywhere(&cluster, leader, &key(100), expected).await;
    journal.assert_one_leader_per_term("a snapshot racing a split");
    cluster.shutdown().await;
}

/// Cuts store `behind` off while 200 writes go in and the leader truncates
/// its log past it, then lets it back with its snapshots of `region` held:
/// returns the hold and the first snapshot message held (of the whole key
/// space: the region has not split).
async fn hold_a_whole_range_snapshot(
    cluster: &Cluster,
    leader: usize,
    behind: usize,
    region: u64,
) -> (Arc<HoldFilter>, flotilla_proto::raft_serverpb::RaftMessage) {
    let cut = isolate(cluster, behind);
    for i in 0..200 {
        cluster.put(&key(i), &value(i)).await;
    }
    wait_for(
        "the leader to truncate past the behind store",
        LONG,
        || async { apply_state(cluster, leader, region).truncated_index > 50 },
    )
    .await;
    let hold = HoldFilter::new(DropFilter {
        region_id: Some(region),
        types: vec![MessageType::Snapshot],
        direction: Some(Direction::Inbound),
    });
    cluster.store(behind).filters().add(hold.clone());
    cut.set(false);
    wait_for("a snapshot to reach the behind store", LONG, || async {
        !hold.held().is_empty()
    })
    .await;
    let snapshot = hold.held().remove(0);
    let announced = raftcore::codec::decode_message(&snapshot.message)
        .ok()
        .and_then(|m| m.snapshot)
        .and_then(|s| SnapshotData::decode(s.data.clone()).ok())
        .and_then(|d| d.region)
        .expect("a snapshot of a region");
    assert!(
        announced.start_key.is_empty() && announced.end_key.is_empty(),
        "the snapshot covers the whole key space"
    );
    (hold, snapshot)
}

/// Every store holds two regions split at `split`, with the epochs store
/// `reference` has, and `key(k)` = `expected(k)` for the 200 keys; reads
/// through the leaders agree.
async fn assert_same_halves_everywhere(
    cluster: &Cluster,
    reference: usize,
    split: &[u8],
    expected: impl Fn(usize) -> Vec<u8>,
) {
    let epochs = |i: usize| -> Vec<_> {
        cluster
            .regions_of(i)
            .iter()
            .map(|r| r.region_epoch)
            .collect()
    };
    for i in 0..3 {
        let regions = cluster.regions_of(i);
        assert_eq!(regions.len(), 2, "store {i}");
        assert!(regions[0].start_key.is_empty() && regions[1].end_key.is_empty());
        assert_eq!(regions[0].end_key, split, "store {i}");
        assert_eq!(regions[1].start_key, split, "store {i}");
        wait_for("the same epochs everywhere", LONG, || async {
            epochs(i) == epochs(reference)
        })
        .await;
        for k in 0..200 {
            let held = on_store(cluster, i, &key(k));
            assert_eq!(held, Some(expected(k)), "store {i}, key {k}");
        }
    }
    for k in (0..200).step_by(7) {
        assert_eq!(cluster.get(&key(k)).await, Some(expected(k)));
    }
}

// ---------------------------------------------------------------------
// 8. A removed peer that comes back.
// ---------------------------------------------------------------------

/// A replica removed while its store was away comes back (etcd #21178,
/// <https://github.com/etcd-io/etcd/issues/21178>, a member removed and
/// re-added): the store is cut off and decommissioned, and restarted (its
/// peer comes back from disk, still cut off) before PD swaps its replica
/// out through a joint configuration. Back, the peer learns from the others
/// (a tombstone answer to its messages) that it was removed and destroys
/// itself, leaving no hard state, log or data; the group keeps serving. A
/// removed peer that lives on from its stale state fails this. (Moved here
/// from `membership.rs`. The restart now comes before the swap completes:
/// once it has, PD turns the drained store into a tombstone, which may no
/// longer start — the old order raced with that.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn regress_etcd_21178_a_replica_removed_while_away_destroys_itself_when_back() {
    let _serial = SERIAL.lock().await;
    use common::membership::*;
    let mut cluster = three_stores_with_data().await;
    let region = cluster.first_region().await;
    let fourth = cluster.add_store().await;
    let new_store = cluster.store_id(fourth);
    // Keep the lead off store 2, then cut store 2 off and decommission it.
    if cluster.wait_for_leader(region).await == 2 {
        operator(&cluster, "transfer-leader", region, cluster.store_id(0)).await;
        wait_for("the lead to move", LONG, || async {
            cluster.leader_of(region).is_some_and(|(i, _, _)| i != 2)
        })
        .await;
    }
    let cut_off = cluster.store_id(2);
    // The swap waits for the new replica's snapshot: held until store 2
    // restarted.
    let no_snapshot = Switch::new(DropFilter {
        types: vec![MessageType::Snapshot],
        direction: Some(Direction::Inbound),
        ..Default::default()
    });
    cluster.store(fourth).filters().add(no_snapshot.clone());
    isolate(&cluster, 2);
    decommission(&cluster, 2).await;
    cluster.restart_store(2).await;
    let cut = isolate(&cluster, 2);
    no_snapshot.set(false);
    wait_for("the replica to move without store 2", LONG, || async {
        led_region(&cluster, region).is_some_and(|r| {
            voters_on(&r).contains(&new_store) && !r.peers.iter().any(|p| p.store_id == cut_off)
        })
    })
    .await;
    assert!(
        cluster.store(2).router().contains(region),
        "the cut-off replica cannot know yet"
    );
    cut.set(false);
    wait_for("the removed replica to destroy itself", LONG, || async {
        !cluster.store(2).router().contains(region)
    })
    .await;
    assert_gone(&cluster, 2, region, "after coming back");
    cluster.put(b"after", b"removal").await;
    assert_eq!(cluster.get(b"after").await, Some(b"removal".to_vec()));
    cluster.shutdown().await;
}

/// Heals store `away` (cut off by `cut`) so that its stale peer of
/// `region` speaks first: the leader's messages for the region's new peer
/// there (which would also tell the old one it is stale) are held back
/// until the old peer asked for votes and, told it was removed, destroyed
/// itself. Returns the switch that holds them back, still on.
async fn come_back_speaking_first(
    cluster: &Cluster,
    away: usize,
    region: u64,
    cut: Arc<Switch>,
) -> Arc<Switch> {
    let leader_traffic = Switch::new(DropFilter {
        region_id: Some(region),
        types: vec![
            MessageType::Append,
            MessageType::Heartbeat,
            MessageType::Snapshot,
        ],
        direction: Some(Direction::Inbound),
    });
    let campaigns = Counter::new(
        region,
        vec![MessageType::PreVote, MessageType::Vote],
        Direction::Outbound,
    );
    cluster.store(away).filters().add(leader_traffic.clone());
    cluster.store(away).filters().add(campaigns.clone());
    cut.set(false);
    wait_for(
        "the old peer to ask for votes, and learn it was removed",
        LONG,
        || async { campaigns.get() > 0 && !cluster.store(away).router().contains(region) },
    )
    .await;
    leader_traffic
}

/// The rest of etcd #21178 (<https://github.com/etcd-io/etcd/issues/21178>:
/// a member removed and added again panicked the fresh learner with
/// "tocommit out of range"): a replica is removed while its store is cut
/// off, and PD's replica checker adds the region back on that same store
/// (the only one free) as a new peer. When the store is back, its old peer
/// must not disrupt the group — the leader keeps its term (the old peer's
/// vote requests, from a configuration that no longer has it, are answered
/// with a tombstone) — and must not resurrect: it destroys itself, and the
/// new peer there is created, filled by a snapshot, promoted, and holds
/// every write, also after a restart of that store. A removed peer that
/// deposes the leader, lives on beside (or instead of) the new one, or a
/// new peer that cannot catch up fails this.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn regress_etcd_21178_a_store_whose_replica_was_removed_while_away_is_added_back() {
    let _serial = SERIAL.lock().await;
    // Longer elections: the leader's term is asserted unchanged, so a
    // scheduling stall on this 2-core machine must not look like one.
    let mut cluster = Cluster::start_with(3, |cfg| {
        awake(cfg);
        cfg.raft.election_ticks = 30;
    })
    .await;
    cluster.disable_balance().await;
    let region = cluster.first_region().await;
    for i in 0..50 {
        cluster.put(&key(i), &value(i)).await;
    }
    let away = 2;
    if cluster.wait_for_leader(region).await == away {
        common::membership::operator(&cluster, "transfer-leader", region, cluster.store_id(0))
            .await;
        wait_for("the lead to move", LONG, || async {
            leads(&cluster, 0, region)
        })
        .await;
    }
    let journal = LeaderJournal::start(&cluster);
    let old_peer = meta(&cluster, away, region).expect("a replica away").peer;
    let cut = isolate(&cluster, away);
    common::membership::operator(&cluster, "remove-peer", region, cluster.store_id(away)).await;
    wait_for("the removal", LONG, || async {
        cluster
            .leader_of(region)
            .is_some_and(|(_, r, _)| !r.peers.iter().any(|p| p.id == old_peer.id))
    })
    .await;
    for i in 50..100 {
        cluster.put(&key(i), &value(i)).await;
    }
    let (leader, before, _) = cluster.leader_of(region).expect("a leader");
    let term = meta(&cluster, leader, region).expect("leader").term;
    let leader_traffic = come_back_speaking_first(&cluster, away, region, cut).await;
    leader_traffic.set(false);
    wait_for(
        "the store away to hold a new, caught-up voter",
        LONG,
        || async {
            let Some(m) = meta(&cluster, away, region) else {
                return false;
            };
            m.peer.id != old_peer.id
                && m.peer.role == metapb::PeerRole::Voter as i32
                && holds_all(&cluster, away, 0..100)
                && cluster.leader_of(region).is_some_and(|(_, r, _)| {
                    r.peers.len() == 3 && r.peers.iter().any(|p| p.id == m.peer.id)
                })
        },
    )
    .await;
    let (leader_after, after, _) = cluster.leader_of(region).expect("a leader");
    assert_eq!(
        (
            leader_after,
            meta(&cluster, leader_after, region).expect("leader").term
        ),
        (leader, term),
        "the removed peer's return changed the leader or its term"
    );
    assert!(
        after.region_epoch.expect("epoch").conf_ver > before.region_epoch.expect("epoch").conf_ver
    );
    assert!(!journal
        .terms(region)
        .values()
        .flatten()
        .any(|&p| p == old_peer.id));
    // A restart brings back the new peer, not the old one.
    journal.forget(away);
    cluster.restart_store(away).await;
    let new_peer = poll("the peer after a restart", || meta(&cluster, away, region))
        .await
        .peer;
    assert_ne!(new_peer.id, old_peer.id, "the removed peer was resurrected");
    cluster.put(b"after", b"re-add").await;
    wait_for("the re-added replica to replicate", LONG, || async {
        on_store(&cluster, away, b"after").is_some()
    })
    .await;
    journal.assert_one_leader_per_term("a removed peer back");
    cluster.shutdown().await;
}

/// The self-test of these scenarios: with a bug planted in the store (the
/// test-only `planted-bugs` build switch, on for the store's tests, and
/// `FLOTILLA_PLANTED_BUG` naming the bug), the scenario written to catch
/// it must fail. Runs `test` alone in a child process of this binary, up to
/// three times: whether the planted stale read happens depends on timing
/// (about one run in several passes anyway), so "caught" means caught in
/// one of three runs.
fn caught_with_planted_bug(test: &str, bug: &str) {
    let exe = std::env::current_exe().expect("this test binary");
    let mut last = String::new();
    for _ in 0..3 {
        let out = std::process::Command::new(&exe)
            .args(["--exact", test, "--test-threads=1"])
            .env(flotilla_store::planted::VAR, bug)
            .output()
            .expect("running the scenario");
        last = String::from_utf8_lossy(&out.stdout).to_string();
        if !out.status.success() && last.contains("1 failed") {
            return;
        }
    }
    panic!("{test} passed three times with {bug} planted:\n{last}");
}

#[test]
fn a_lease_read_without_a_lease_check_is_caught() {
    let _serial = SERIAL.blocking_lock();
    caught_with_planted_bug(
        "regress_raft_rs_234_no_stale_read_from_a_deposed_sleeping_leader",
        flotilla_store::planted::Bug::LeaseReadUnchecked.name(),
    );
}

#[test]
fn serving_requests_without_the_epoch_check_is_caught() {
    let _serial = SERIAL.blocking_lock();
    caught_with_planted_bug(
        "regress_tikv_stale_read_during_split_old_leader_serves_no_key_of_the_new_region",
        flotilla_store::planted::Bug::SkipEpochCheck.name(),
    );
}
