//! The example applications against an in-process cluster (the store's
//! test harness): the job queue processes every job exactly once, with
//! all stores up and with one stopped and restarted under it, and the
//! leaderboard agrees with an in-memory model.
//!
//! Inputs (payloads, scores) come from a seed: `EXAMPLES_SEED=<n>` replays
//! them, and a failing test prints its seed. The interleaving of the
//! tasks is not replayed.

#[path = "../../store/tests/common/mod.rs"]
mod common;
#[allow(dead_code)] // `main` and its helpers serve the example binary
#[path = "../examples/job_queue.rs"]
mod job_queue;
#[allow(dead_code)]
#[path = "../examples/leaderboard.rs"]
mod leaderboard;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{wait_for, Cluster, LONG};
use flotilla_checker::generate::Rng;
use flotilla_client::{Config, RawClient};
use job_queue::{JobQueue, Worker, WorkerReport, MAX_PAYLOAD_BYTES};
use leaderboard::{Leaderboard, Ranked};
use tokio::task::JoinHandle;

/// This run's seed, printed if the test fails.
struct Seed(u64);

impl Seed {
    /// `EXAMPLES_SEED`, else one from the clock.
    fn get() -> Seed {
        let from_clock = || {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            now.map(|d| d.as_nanos() as u64).unwrap_or_default()
        };
        let seed = std::env::var("EXAMPLES_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(from_clock);
        Seed(seed)
    }

    fn rng(&self) -> Rng {
        Rng(self.0)
    }
}

impl Drop for Seed {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("failed with EXAMPLES_SEED={} (replays the inputs)", self.0);
        }
    }
}

async fn connect(cluster: &Cluster, config: Config) -> RawClient {
    RawClient::connect([&cluster.pd_endpoint], config)
        .await
        .expect("client connects")
}

// ---------------------------------------------------------------- job queue

const JOBS: u64 = 2_000;
const WORKERS: usize = 8;

/// Payloads of random sizes up to 1 KiB, by sequence number.
fn random_jobs(rng: &mut Rng) -> BTreeMap<u64, Vec<u8>> {
    (0..JOBS)
        .map(|seq| {
            let size = rng.below(MAX_PAYLOAD_BYTES as u64 + 1) as usize;
            let payload = (0..size).map(|_| rng.next_u64() as u8).collect();
            (seq, payload)
        })
        .collect()
}

/// A producer and the workers, running.
struct QueueRun {
    producer: JoinHandle<flotilla_client::Result<()>>,
    workers: Vec<JoinHandle<flotilla_client::Result<WorkerReport>>>,
}

/// Splits the queue's key spaces into regions, jobs at the middle too.
async fn split_queue(cluster: &Cluster, queue: &JobQueue) {
    let middle = JOBS / 2;
    let keys = [
        queue.claim_key(middle),
        queue.done_key(0),
        queue.done_key(middle),
        queue.job_key(0),
        queue.job_key(middle),
    ];
    cluster
        .split(keys.into_iter().map(Bytes::from).collect())
        .await;
}

/// Starts a producer enqueuing `jobs` in batches of 100 and the workers,
/// all at once.
fn start_queue(queue: &JobQueue, jobs: &BTreeMap<u64, Vec<u8>>) -> QueueRun {
    let over = Arc::new(AtomicBool::new(false));
    let batches: Vec<Vec<(u64, Vec<u8>)>> = jobs
        .iter()
        .map(|(&seq, payload)| (seq, payload.clone()))
        .collect::<Vec<_>>()
        .chunks(100)
        .map(<[_]>::to_vec)
        .collect();
    let producer = tokio::spawn({
        let (queue, over) = (queue.clone(), over.clone());
        async move {
            for batch in batches {
                queue.enqueue(batch).await?;
            }
            over.store(true, Ordering::Release);
            Ok(())
        }
    });
    let workers = (0..WORKERS)
        .map(|i| Worker::new(queue.clone(), format!("w{i}")))
        .map(|w| tokio::spawn(w.run(over.clone())))
        .collect();
    QueueRun { producer, workers }
}

/// Waits for the producer and every worker; their reports.
async fn finish(run: QueueRun) -> Vec<WorkerReport> {
    let all = async {
        run.producer.await.expect("producer task").expect("enqueue");
        let mut reports = Vec::new();
        for w in run.workers {
            reports.push(w.await.expect("worker task").expect("worker"));
        }
        reports
    };
    tokio::time::timeout(LONG * 2, all)
        .await
        .expect("the workers drain the queue in time")
}

/// Every job done exactly once: each claimed once and marked done by its
/// claimer (the audit of what is stored), and the workers' own logs
/// disjoint, matching the claims and the payloads, and covering every job.
async fn assert_exactly_once(
    queue: &JobQueue,
    jobs: &BTreeMap<u64, Vec<u8>>,
    reports: &[WorkerReport],
) {
    let audit = queue.audit().await.expect("audit");
    assert!(audit.problems.is_empty(), "{:#?}", audit.problems);
    assert_eq!(audit.jobs, jobs.len(), "jobs stored");
    let mut processed_by: BTreeMap<u64, &str> = BTreeMap::new();
    for report in reports {
        for p in &report.processed {
            let id = report.id.as_str();
            if let Some(other) = processed_by.insert(p.seq, id) {
                panic!("job {} processed by both {other} and {id}", p.seq);
            }
            let owner = audit.owners.get(&p.seq).map(String::as_str);
            assert_eq!(owner, Some(id), "job {} processed by a non-owner", p.seq);
            let expected = jobs.get(&p.seq).map(Vec::len);
            assert_eq!(Some(p.payload_bytes), expected, "job {}'s payload", p.seq);
        }
    }
    let missing: Vec<&u64> = jobs
        .keys()
        .filter(|s| !processed_by.contains_key(s))
        .collect();
    assert!(missing.is_empty(), "never processed: {missing:?}");
}

fn summary(reports: &[WorkerReport]) -> String {
    let sum = |f: fn(&WorkerReport) -> u64| reports.iter().map(f).sum::<u64>();
    format!(
        "per worker {:?}; lost races {}, unknown claims {}, retries {}",
        reports
            .iter()
            .map(|r| r.processed.len())
            .collect::<Vec<_>>(),
        sum(|r| r.lost_races),
        sum(|r| r.undetermined),
        sum(|r| r.retries),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_workers_do_two_thousand_jobs_exactly_once() {
    let seed = Seed::get();
    let jobs = random_jobs(&mut seed.rng());
    let cluster = Cluster::start(3).await;
    let queue = JobQueue::new(connect(&cluster, Config::default()).await, "q");
    split_queue(&cluster, &queue).await;
    let started = Instant::now();
    let reports = finish(start_queue(&queue, &jobs)).await;
    println!("drained in {:?}: {}", started.elapsed(), summary(&reports));
    assert_exactly_once(&queue, &jobs, &reports).await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_are_done_exactly_once_while_a_store_is_down() {
    let seed = Seed::get();
    let jobs = random_jobs(&mut seed.rng());
    let mut cluster = Cluster::start(3).await;
    // A short deadline per call, so that the outage reaches the workers
    // as timeouts and unknown outcomes instead of being waited out inside
    // the client.
    let config = Config::builder().timeout(Duration::from_secs(1)).build();
    let queue = JobQueue::new(connect(&cluster, config).await, "q");
    split_queue(&cluster, &queue).await;
    let run = start_queue(&queue, &jobs);

    let progress = |n: usize| {
        let queue = queue.clone();
        move || {
            let done = queue.processed() >= n;
            async move { done }
        }
    };
    wait_for("a quarter of the jobs", LONG, progress(JOBS as usize / 4)).await;
    // Stop the store leading the claims, where compare-and-swaps are in
    // flight; the workers go on with the two left.
    let (victim, _) = cluster.wait_route(queue.claim_key(0).as_bytes()).await;
    let at_stop = queue.processed();
    cluster.stop_store(victim).await;
    wait_for("progress with a store down", LONG, progress(at_stop + 300)).await;
    cluster.start_store(victim).await;

    let reports = finish(run).await;
    println!(
        "stopped store {victim} after {at_stop} jobs: {}",
        summary(&reports)
    );
    assert_exactly_once(&queue, &jobs, &reports).await;
    cluster.shutdown().await;
}

// -------------------------------------------------------------- leaderboard

const PLAYERS: u64 = 100;
const SUBMISSIONS: usize = 400;
const SUBMITTERS: usize = 4;

/// Random submissions: a fifth of them for five "hot" players, so that
/// concurrent submitters race on one player key; scores from a small
/// range, so that some players tie.
fn random_submissions(rng: &mut Rng) -> Vec<(String, u64)> {
    (0..SUBMISSIONS)
        .map(|_| {
            let player = if rng.below(5) == 0 {
                rng.below(5)
            } else {
                rng.below(PLAYERS)
            };
            (format!("player-{player:03}"), rng.below(500))
        })
        .collect()
}

/// The model's board: best per player, sorted as the board sorts.
fn model_ranking(submissions: &[(String, u64)]) -> Vec<Ranked> {
    let mut best: BTreeMap<&str, u64> = BTreeMap::new();
    for (player, score) in submissions {
        let b = best.entry(player).or_default();
        *b = (*b).max(*score);
    }
    let mut ranked: Vec<Ranked> = best
        .into_iter()
        .map(|(p, score)| Ranked {
            player: p.to_string(),
            score,
        })
        .collect();
    ranked.sort_by(|a, b| b.score.cmp(&a.score).then_with(|| a.player.cmp(&b.player)));
    ranked
}

/// Submits every score, `SUBMITTERS` tasks at a time, while a reader
/// checks what `top` may show meanwhile: sorted, no player twice.
async fn submit_all(board: &Leaderboard, submissions: &[(String, u64)]) {
    let writing = Arc::new(AtomicBool::new(true));
    let reader = tokio::spawn({
        let (board, writing) = (board.clone(), writing.clone());
        async move {
            let mut reads = 0;
            while writing.load(Ordering::Acquire) || reads == 0 {
                let top = board.top(10).await.expect("top while writing");
                let players: BTreeSet<&str> = top.iter().map(|r| r.player.as_str()).collect();
                assert_eq!(players.len(), top.len(), "a player twice: {top:?}");
                assert!(top.windows(2).all(|w| w[0].score >= w[1].score), "{top:?}");
                reads += 1;
            }
        }
    });
    let writers: Vec<_> = (0..SUBMITTERS)
        .map(|i| {
            let board = board.clone();
            let mine: Vec<(String, u64)> = submissions
                .iter()
                .skip(i)
                .step_by(SUBMITTERS)
                .cloned()
                .collect();
            tokio::spawn(async move {
                for (player, score) in mine {
                    let best = board.submit(&player, score).await.expect("submit");
                    assert!(best >= score, "{player}: submitted {score}, best {best}");
                }
            })
        })
        .collect();
    for w in writers {
        w.await.expect("submitter");
    }
    writing.store(false, Ordering::Release);
    reader.await.expect("reader");
}

/// The index key of a score on the test's board, built independently of
/// the example's code.
fn index_key(score: u64, player: &str) -> Vec<u8> {
    let mut key = b"lb/arcade/s/".to_vec();
    key.extend_from_slice(&(u64::MAX - score).to_be_bytes());
    key.extend_from_slice(player.as_bytes());
    key
}

/// The top 10, everyone, and every player's rank (1 + the number of
/// players with a higher score) are as the model says.
async fn assert_reads_match(board: &Leaderboard, model: &[Ranked]) {
    assert_eq!(board.top(10).await.unwrap(), model[..10]);
    assert_eq!(board.top(1_000).await.unwrap(), model);
    for r in model {
        let better = model.iter().filter(|o| o.score > r.score).count() as u64;
        let rank = board.rank(&r.player).await.unwrap();
        assert_eq!(rank, Some(better + 1), "{}", r.player);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_leaderboard_matches_a_model() {
    let seed = Seed::get();
    let submissions = random_submissions(&mut seed.rng());
    let model = model_ranking(&submissions);
    let cluster = Cluster::start(1).await;
    let client = connect(&cluster, Config::default()).await;
    let board = Leaderboard::new(client.clone(), "arcade");
    submit_all(&board, &submissions).await;

    // Exactly one index entry per player, at their best score, in board
    // order.
    let index = client
        .scan_keys("lb/arcade/s/".."lb/arcade/s0", 10_000)
        .await
        .unwrap();
    let expected: Vec<Bytes> = model
        .iter()
        .map(|r| Bytes::from(index_key(r.score, &r.player)))
        .collect();
    assert_eq!(index, expected, "the index");
    for r in &model {
        let best = board.best(&r.player).await.unwrap();
        assert_eq!(best, Some(r.score), "{}", r.player);
    }
    assert_reads_match(&board, &model).await;
    assert!(board.top(0).await.unwrap().is_empty());
    assert_eq!(board.rank("nobody").await.unwrap(), None);

    // What crashed submissions leave behind: entries above a player's
    // score (a crash after writing one, before the swap), here more than
    // a page of them, and a stale one below (a crash after the swap).
    // Readers check entries against the player keys, so none of them
    // changes what they report.
    let first = &model[0];
    for r in &model[model.len() - 30..] {
        let above_everyone = index_key(first.score + 1_000, &r.player);
        client.put(above_everyone, "").await.unwrap();
    }
    client.put(index_key(0, &first.player), "").await.unwrap();
    assert_reads_match(&board, &model).await;

    // A lower score changes nothing.
    assert_eq!(board.submit(&first.player, 0).await.unwrap(), first.score);
    assert_eq!(board.top(1).await.unwrap(), model[..1]);
    cluster.shutdown().await;
}

// -------------------------------------------------------------------- demos

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_demos_run_and_clean_up_after_themselves() {
    let cluster = Cluster::start(1).await;
    let pd = cluster.pd_endpoint.clone();
    job_queue::demo(&pd).await.expect("the job queue demo");
    leaderboard::demo(&pd).await.expect("the leaderboard demo");
    let client = connect(&cluster, Config::default()).await;
    let left = client.scan(.., 10).await.unwrap();
    assert!(left.is_empty(), "the demos left {left:?}");
    cluster.shutdown().await;
}
