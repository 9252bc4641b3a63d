//! A 3-member PD cluster on loopback: failover time, IDs and timestamps
//! across leader changes, a restarted member catching up by snapshot, and
//! members added and removed online.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use flotilla_pd::raft::handle::Input;
use flotilla_pd::storage::meta::{decode_u64, store_key, TSO_KEY};
use flotilla_pd::storage::{CF_META, CF_RAFT};

/// The bar: a new leader serves within 3 s of losing the old one.
const FAILOVER_LIMIT: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_leader_serves_within_3s_of_stopping_the_old_one() {
    let mut c = TestCluster::start(3).await;
    c.wait_leader().await;
    c.wait_members_published().await;
    let mut client = c.client().await;
    client.alloc_id(1).await;
    let mut times = Vec::new();
    for round in 0..4 {
        c.wait_caught_up().await;
        let old = c.wait_leader().await;
        let old_term = c.shared(old).raft.status().term;
        let started = Instant::now();
        c.stop(old).await;
        let resp = client.is_bootstrapped().await;
        assert_ok(&resp);
        let first_call = started.elapsed();
        client.alloc_id(3).await;
        let serving = started.elapsed();
        let new = c.serving_leader().expect("a serving leader");
        assert_ne!(new, old);
        assert!(c.shared(new).raft.status().term > old_term);
        println!(
            "failover round {round}: stopped pd-{old}, pd-{new} answered IsBootstrapped after {:?}, AllocId after {:?}",
            first_call, serving
        );
        times.push(serving);
        c.restart(old).await;
    }
    println!("failover times (stop -> first AllocId): {times:?}");
    for (round, t) in times.iter().enumerate() {
        assert!(
            *t < FAILOVER_LIMIT,
            "round {round}: failover took {t:?} (all: {times:?})"
        );
    }
    c.shutdown().await;
}

/// Hands leadership from `from` to another member and waits until that
/// member serves. Returns the new leader.
async fn change_leader(c: &mut TestCluster, from: usize, by_stopping: bool) -> usize {
    let old_term = c.shared(from).raft.status().term;
    if by_stopping {
        c.stop(from).await;
        let new = c.wait_leader().await;
        c.restart(from).await;
        assert_ne!(new, from);
        return new;
    }
    let target = (from + 1) % 3;
    let target_id = c.specs[target].id();
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < LONG, "leader transfer did not happen");
        if let Some(l) = c.serving_leader() {
            if l != from && c.shared(l).raft.status().term > old_term {
                return l;
            }
        }
        if c.shared(from).serving().is_ok() {
            let _ = c.shared(from).raft.send(Input::TransferLeader(target_id));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Each running member's persisted TSO upper bound (physical ms).
fn tso_bounds(c: &TestCluster) -> Vec<(usize, u64)> {
    c.running()
        .map(|i| {
            let v = c
                .shared(i)
                .engine
                .get(CF_META, TSO_KEY)
                .unwrap()
                .unwrap_or_default();
            (i, decode_u64(&v).unwrap_or(0))
        })
        .collect()
}

/// Half-open ID ranges must not overlap.
fn assert_disjoint(mut ranges: Vec<(u64, u64)>, what: &str) {
    ranges.sort();
    for w in ranges.windows(2) {
        assert!(
            w[0].0 + w[0].1 <= w[1].0,
            "{what} handed out twice: [{}, +{}) and [{}, +{})",
            w[0].0,
            w[0].1,
            w[1].0,
            w[1].1
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_never_repeat_and_tso_never_goes_back_across_20_leader_changes() {
    let mut c = TestCluster::start(3).await;
    c.wait_leader().await;
    c.wait_members_published().await;
    let mut client = c.client().await;

    // A second client hammers AllocId and Tso throughout, including while
    // a deposed leader may still believe it leads.
    let stop = Arc::new(AtomicBool::new(false));
    let background = {
        let mut client = client.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let (mut ids, mut tss) = (Vec::new(), Vec::new());
            while !stop.load(Ordering::Relaxed) {
                ids.push((client.alloc_id(37).await, 37));
                tss.extend(client.tso(&[5, 1]).await);
            }
            (ids, tss)
        })
    };

    let id_counts = [1, 7, 100, 1000, 10_000, 3];
    let tso_counts = [1, 10, 1000, 100_000, 1 << 18, 5];
    let mut ids: Vec<(u64, u64)> = Vec::new();
    let mut tss: Vec<(u64, u64)> = Vec::new();
    let mut last_ts = 0u64;
    let mut changes = Vec::new();
    let mut ahead = Vec::new();
    let mut events: Vec<String> = Vec::new();
    for change in 0..=20 {
        for &n in &id_counts {
            ids.push((client.alloc_id(n).await, u64::from(n)));
        }
        for (first, count) in client.tso(&tso_counts).await {
            assert!(
                first > last_ts,
                "after leader change {change}: timestamp {first} (physical {}) from {:?} is not after {last_ts} (physical {}); history: {events:#?}",
                first >> 18,
                client.current_url(),
                last_ts >> 18
            );
            last_ts = first + u64::from(count) - 1;
            tss.push((first, u64::from(count)));
        }
        if change == 20 {
            break;
        }
        // A burst of full batches runs the physical part ahead of the wall
        // clock (each batch uses up a millisecond's logical space): the
        // next leader must start above it, not at its own clock.
        let burst = client.tso(&[1 << 18; 400]).await;
        for &(ts, n) in &burst {
            assert!(ts > last_ts, "timestamp {ts} is not after {last_ts}");
            last_ts = ts + u64::from(n) - 1;
            tss.push((ts, u64::from(n)));
        }
        ahead.push((last_ts >> 18) as i64 - wall_ms() as i64);
        c.wait_caught_up().await;
        let leader = c.wait_leader().await;
        events.push(format!(
            "before change {change}: burst from {:?} up to physical {}; leader pd-{leader} term {}; persisted TSO bounds {:?}",
            client.current_url(),
            last_ts >> 18,
            c.shared(leader).raft.status().term,
            tso_bounds(&c)
        ));
        let by_stopping = change % 3 == 2;
        let started = Instant::now();
        let new = change_leader(&mut c, leader, by_stopping).await;
        changes.push((leader, new, by_stopping, started.elapsed()));
        events.push(format!(
            "change {change}: pd-{leader} -> pd-{new} (term {}), by stopping: {by_stopping}; persisted TSO bounds {:?}",
            c.shared(new).raft.status().term,
            tso_bounds(&c)
        ));
    }
    stop.store(true, Ordering::Relaxed);
    let (bg_ids, bg_tss) = background.await.expect("background client");
    println!(
        "20 leader changes (from, to, by stopping, time): {changes:?}; background: {} AllocId, {} Tso answers",
        bg_ids.len(),
        bg_tss.len()
    );
    println!("TSO physical ahead of the wall clock before each change (ms): {ahead:?}");
    assert_eq!(changes.len(), 20);
    ids.extend(bg_ids);
    assert_disjoint(ids, "ID");
    tss.extend(bg_tss.into_iter().map(|(t, n)| (t, u64::from(n))));
    assert_disjoint(tss, "timestamp");
    c.shutdown().await;
}

/// The compacted position of a member's Raft log (the log starts after
/// it). Reads the `trunc` record of the `raft` column family directly.
fn truncated_index(c: &TestCluster, i: usize) -> u64 {
    let v = c
        .shared(i)
        .engine
        .get(CF_RAFT, b"trunc")
        .unwrap()
        .unwrap_or_default();
    decode_u64(v.get(..8).unwrap_or_default()).unwrap_or(0)
}

type KvPair = (Box<[u8]>, Box<[u8]>);

/// The replicated state machine (every data key) of member `i`.
fn data(c: &TestCluster, i: usize) -> Vec<KvPair> {
    c.shared(i).engine.scan_prefix(CF_META, b"/").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_member_catches_up_by_snapshot() {
    let mut c = TestCluster::start(3).await;
    let leader = c.wait_leader().await;
    c.wait_members_published().await;
    c.wait_caught_up().await;
    let follower = (leader + 1) % 3;
    let client = c.client().await;
    let last_before = c.shared(follower).raft.status().applied;
    c.stop(follower).await;

    // More writes than the compaction threshold (10,000 entries beyond
    // 1,000 kept): the leader's log no longer holds what the follower
    // lacks. 40 stores, each re-registered 300 times by 20 writers.
    const WRITERS: u64 = 20;
    const ROUNDS: u64 = 300;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let mut client = client.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..ROUNDS {
                for id in [w * 2 + 1, w * 2 + 2] {
                    let mut s = store(id);
                    s.version = format!("r{round}");
                    assert_ok(&client.put_store(s).await);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let writes = WRITERS * ROUNDS * 2;
    println!("{writes} PutStore calls in {:?}", started.elapsed());

    let leader = c.wait_leader().await;
    let compacted = truncated_index(&c, leader);
    assert!(
        compacted > last_before,
        "the leader kept its log from {compacted}; the follower (at {last_before}) could catch up without a snapshot"
    );

    let started = Instant::now();
    c.restart(follower).await;
    wait_until(
        "the restarted member to catch up with identical data",
        LONG,
        || {
            let Some(l) = c.serving_leader() else {
                return false;
            };
            let (ls, fs) = (c.shared(l).raft.status(), c.shared(follower).raft.status());
            fs.applied >= ls.applied && data(&c, follower) == data(&c, l)
        },
    )
    .await;
    println!(
        "member caught up in {:?} (leader log compacted to {compacted}, follower's own log now starts after {})",
        started.elapsed(),
        truncated_index(&c, follower)
    );
    assert!(truncated_index(&c, follower) >= compacted);
    // The stores it holds are the final ones.
    for id in 1..=WRITERS * 2 {
        let v = c
            .shared(follower)
            .engine
            .get(CF_META, &store_key(id))
            .unwrap()
            .expect("store record replicated");
        let s: flotilla_proto::metapb::Store = prost::Message::decode(&*v).unwrap();
        assert_eq!(s.version, format!("r{}", ROUNDS - 1));
    }

    // And it can lead with that data.
    let target_id = c.specs[follower].id();
    wait_until("the caught-up member to lead", LONG, || {
        if let Some(l) = c.serving_leader() {
            if l == follower {
                return true;
            }
            let _ = c.shared(l).raft.send(Input::TransferLeader(target_id));
        }
        false
    })
    .await;
    let mut client = c.client().await;
    let stores = client.all_stores().await;
    assert_eq!(stores.len() as u64, WRITERS * 2);
    assert!(stores
        .iter()
        .all(|s| s.store.as_ref().unwrap().version == format!("r{}", ROUNDS - 1)));
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_are_added_and_removed_online() {
    let mut c = TestCluster::start(3).await;
    let leader = c.wait_leader().await;
    c.wait_members_published().await;
    let mut client = c.client().await;
    client.alloc_id(1).await;

    let new = c.add_spec("pd-new");
    let new_id = c.specs[new].id();
    // Ask a follower: it redirects to the leader (or, for as long as it
    // knows no leader, answers 503 and is asked again).
    let follower = (leader + 1) % 3;
    let body = serde_json::json!({"name": "pd-new", "peer_url": c.specs[new].peer_addr()});
    wait_for("a follower to redirect to the leader", LONG, || {
        let (addr, body) = (c.specs[follower].http_addr(), body.clone());
        async move {
            let first = http("POST", &addr, "/pd/api/v1/members", Some(&body))
                .await
                .unwrap();
            let redirects = first.status == 307 && first.header("location").is_some();
            assert!(
                redirects || is_no_leader(&first),
                "a follower redirects: {} {}",
                first.status,
                first.body
            );
            redirects
        }
    })
    .await;
    let resp = http_leader(
        "POST",
        &c.specs[follower].http_addr(),
        "/pd/api/v1/members",
        Some(&body),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.json()["id"].as_u64(), Some(new_id));

    c.restart(new).await;
    let took = wait_until("the new member to join and catch up", LONG, || {
        let Some(l) = c.serving_leader() else {
            return false;
        };
        let (ls, ns) = (c.shared(l).raft.status(), c.shared(new).raft.status());
        ns.conf_state.voters.contains(&new_id)
            && ls.conf_state.voters.len() == 4
            && ns.applied >= ls.applied
    })
    .await;
    println!("4th member caught up {took:?} after starting");
    c.wait_members_published().await;
    let members = http_leader("GET", &c.specs[new].http_addr(), "/pd/api/v1/members", None)
        .await
        .json();
    assert_eq!(members["members"].as_array().unwrap().len(), 4, "{members}");
    assert_eq!(members["voters"].as_array().unwrap().len(), 4, "{members}");
    assert_eq!(members["cluster_id"].as_u64(), Some(client.cluster_id));
    client.alloc_id(1).await;

    // Remove it through the API, asking the new member itself.
    let resp = http_leader(
        "DELETE",
        &c.specs[new].http_addr(),
        "/pd/api/v1/members/pd-new",
        None,
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    wait_until("the leader to drop the member", LONG, || {
        c.serving_leader()
            .is_some_and(|l| c.shared(l).raft.status().conf_state.voters.len() == 3)
    })
    .await;
    // Every member answers GET members from what it applied: each drops
    // the record once it applies the removal.
    for i in 0..3 {
        let addr = c.specs[i].http_addr();
        wait_for("every member to list 3 members", LONG, || {
            let addr = addr.clone();
            async move {
                let json = http_leader("GET", &addr, "/pd/api/v1/members", None)
                    .await
                    .json();
                json["members"].as_array().unwrap().len() == 3
                    && json["voters"].as_array().unwrap().len() == 3
            }
        })
        .await;
    }
    client.alloc_id(1).await;

    // With the member gone from the configuration, three voters remain:
    // stop it and then the leader, and the last two still elect a leader
    // (2 of 3; with four voters 2 would not be a majority).
    c.stop(new).await;
    let leader = c.wait_leader().await;
    c.stop(leader).await;
    let started = Instant::now();
    client.alloc_id(1).await;
    assert_ok(&client.is_bootstrapped().await);
    println!(
        "2 of the 3 remaining members elected a leader and served {:?} after the old leader stopped",
        started.elapsed()
    );
    c.shutdown().await;
}

/// A member that knows no leader — an election is under way, or, as here,
/// no quorum is left to elect one — has nowhere to redirect to: it answers
/// `503` with a JSON error of type `NotLeader` a client retries on, never a
/// `307` without a `Location`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_knows_no_leader_answers_503_not_a_bare_redirect() {
    let mut c = TestCluster::start(3).await;
    let leader = c.wait_leader().await;
    c.wait_members_published().await;
    let lone = (leader + 1) % 3;
    let addr = c.specs[lone].http_addr();
    let leader_url = format!("http://{}/pd/api/v1/stores", c.specs[leader].http_addr());
    wait_for("a follower to redirect to the leader", LONG, || {
        let (addr, leader_url) = (addr.clone(), leader_url.clone());
        async move {
            let resp = http("GET", &addr, "/pd/api/v1/stores", None).await.unwrap();
            let location = resp.header("location");
            assert!(resp.status != 307 || location.is_some(), "{resp:?}");
            resp.status == 307 && location == Some(leader_url.as_str())
        }
    })
    .await;

    for i in 0..3 {
        if i != lone {
            c.stop(i).await;
        }
    }
    wait_until("the lone member to forget the leader", LONG, || {
        c.shared(lone).raft.status().leader_id == 0
    })
    .await;
    let body = serde_json::json!({"name": "pd-x", "peer_url": "127.0.0.1:1"});
    for (method, path, body) in [
        ("GET", "/pd/api/v1/stores", None),
        ("POST", "/pd/api/v1/members", Some(&body)),
    ] {
        let resp = http(method, &addr, path, body).await.unwrap();
        assert_eq!(resp.status, 503, "{method} {path}: {}", resp.body);
        assert_eq!(resp.header("location"), None, "{method} {path}");
        let json = resp.json();
        assert_eq!(json["type"], "NotLeader", "{json}");
        assert!(json["leader"].is_null(), "{json}");
        let error = json["error"].as_str().unwrap_or_default();
        assert!(error.contains("no PD leader"), "{json}");
    }
    // Members that need no leader still answer.
    let health = http("GET", &addr, "/health", None).await.unwrap();
    assert_eq!(health.status, 200, "{}", health.body);
    let members = http("GET", &addr, "/pd/api/v1/members", None)
        .await
        .unwrap();
    assert_eq!(members.status, 200, "{}", members.body);
    c.shutdown().await;
}
