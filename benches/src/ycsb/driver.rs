//! Runs a workload: `concurrency` tokio tasks share one [`RawClient`];
//! each does one operation at a time until the run's operation count or
//! duration is reached, paced to `--target` ops/s when one is given.
//!
//! Keys follow YCSB's core workload: reads, updates, scans and
//! read-modify-writes pick an item with the workload's distribution among
//! the items surely inserted; inserts take the next item from a shared
//! counter. The load phase inserts items `0..records` in order.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flotilla_client::{Bytes, Error, RawClient};

use super::generator::{InsertCounter, ScrambledZipfian, SkewedLatest, Uniform};
use super::stats::Stats;
use super::workload::{key_of, scan_length, Distribution, Mix, OpKind};
use crate::pd_scale::rng::XorShift;

/// Distinct values the tasks write (chosen at random per write).
const VALUE_POOL: usize = 64;

/// What to run.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The operations' proportions.
    pub mix: Mix,
    /// How existing keys are picked.
    pub distribution: Distribution,
    /// Items loaded (`0..records`), or to load.
    pub records: u64,
    /// The load phase: insert items `0..records` in order, then stop.
    pub load: bool,
    /// Stop after this many operations (all tasks together).
    pub operations: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Concurrent tasks.
    pub concurrency: usize,
    /// Operations per second to aim for (all tasks together).
    pub target: Option<f64>,
    /// Bytes per value written.
    pub value_size: usize,
    /// Longest scan.
    pub scan_length: u32,
    /// Seed of every random choice.
    pub seed: u64,
}

impl Plan {
    /// Items the zipfian chooser spreads over: the records plus the
    /// inserts the run is expected to make (twice the expected count, as
    /// YCSB sizes it); draws past the inserted items are drawn again.
    fn zipfian_items(&self) -> u64 {
        let inserts = self.mix.proportion(OpKind::Insert);
        let ops = self
            .operations
            .unwrap_or_else(|| self.records.max(1_000_000));
        self.records + (ops as f64 * inserts * 2.0) as u64
    }
}

/// How a task picks an existing item.
#[derive(Clone)]
enum Chooser {
    Zipfian(ScrambledZipfian),
    Uniform(Uniform),
    Latest(SkewedLatest),
}

impl Chooser {
    fn new(plan: &Plan) -> Chooser {
        match plan.distribution {
            Distribution::Zipfian => Chooser::Zipfian(ScrambledZipfian::new(plan.zipfian_items())),
            Distribution::Uniform => Chooser::Uniform(Uniform::new(plan.records)),
            Distribution::Latest => Chooser::Latest(SkewedLatest::new(plan.records)),
        }
    }

    /// An item in `0..present` (`present > 0`).
    fn next(&mut self, present: u64, rng: &mut XorShift) -> u64 {
        match self {
            Chooser::Zipfian(z) => loop {
                let item = z.next(rng);
                if item < present {
                    return item;
                }
            },
            Chooser::Uniform(u) => u.next(rng) % present,
            Chooser::Latest(l) => l.next(present - 1, rng),
        }
    }
}

/// What the tasks share.
struct Shared {
    plan: Plan,
    client: RawClient,
    stats: Arc<Stats>,
    inserts: InsertCounter,
    started: AtomicU64,
    values: Vec<Bytes>,
    deadline: Option<Instant>,
}

/// Runs `plan` against `client`, recording into `stats`; returns how long
/// it ran.
pub async fn run(plan: &Plan, client: &RawClient, stats: Arc<Stats>) -> Duration {
    let mut rng = XorShift::new(plan.seed ^ 0x7661_6c75_6573);
    let values = (0..VALUE_POOL)
        .map(|_| {
            let v: Vec<u8> = (0..plan.value_size)
                .map(|_| b'a' + rng.below(26) as u8)
                .collect();
            Bytes::from(v)
        })
        .collect();
    let start = Instant::now();
    let shared = Arc::new(Shared {
        plan: plan.clone(),
        client: client.clone(),
        stats,
        inserts: InsertCounter::new(if plan.load { 0 } else { plan.records }),
        started: AtomicU64::new(0),
        values,
        deadline: plan.duration.map(|d| start + d),
    });
    let chooser = Chooser::new(plan);
    let tasks: Vec<_> = (0..plan.concurrency)
        .map(|t| {
            let (shared, chooser) = (shared.clone(), chooser.clone());
            tokio::spawn(task(shared, chooser, t as u64, start))
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    start.elapsed()
}

/// One task's loop.
async fn task(shared: Arc<Shared>, mut chooser: Chooser, t: u64, start: Instant) {
    let plan = &shared.plan;
    let mut rng = XorShift::new(plan.seed ^ (t << 20) ^ 0x7461_736b);
    // Each task paces itself to its share of the target.
    let interval = plan
        .target
        .map(|ops| Duration::from_secs_f64(plan.concurrency as f64 / ops));
    let mut next_at = start;
    loop {
        if shared.deadline.is_some_and(|d| Instant::now() >= d) {
            return;
        }
        if let Some(limit) = plan.operations {
            if shared.started.fetch_add(1, Ordering::Relaxed) >= limit {
                return;
            }
        }
        if let Some(interval) = interval {
            next_at += interval;
            tokio::time::sleep_until(next_at.into()).await;
        }
        if plan.load {
            let item = shared.inserts.next();
            if item >= plan.records {
                return;
            }
            insert(&shared, item, &mut rng).await;
            continue;
        }
        let kind = plan.mix.pick(rng.unit());
        if kind == OpKind::Insert {
            let item = shared.inserts.next();
            insert(&shared, item, &mut rng).await;
            continue;
        }
        let present = shared.inserts.count();
        if present == 0 {
            shared
                .stats
                .error(kind, "no-records", || "no record is loaded".into());
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        let item = chooser.next(present, &mut rng);
        one_op(&shared, kind, item, &mut rng).await;
    }
}

/// Inserts `item` and tells the counter, whatever the outcome (a failed
/// insert's item then reads as not found, as in YCSB).
async fn insert(shared: &Shared, item: u64, rng: &mut XorShift) {
    let value = pick_value(shared, rng);
    let sent = Instant::now();
    let result = shared.client.put(key_of(item), value).await;
    record(shared, OpKind::Insert, sent, result.map(|()| true));
    shared.inserts.acknowledge(item);
}

/// A read, update, scan or read-modify-write of `item`.
async fn one_op(shared: &Shared, kind: OpKind, item: u64, rng: &mut XorShift) {
    let client = &shared.client;
    let key = key_of(item);
    let sent = Instant::now();
    match kind {
        OpKind::Read => {
            let got = client.get(key).await;
            record(shared, kind, sent, got.map(|v| v.is_some()));
        }
        OpKind::Update => {
            let put = client.put(key, pick_value(shared, rng)).await;
            record(shared, kind, sent, put.map(|()| true));
        }
        OpKind::Scan => {
            let len = scan_length(shared.plan.scan_length, rng);
            let got = client.scan(key.., len).await;
            record(shared, kind, sent, got.map(|_| true));
        }
        OpKind::ReadModifyWrite => {
            // Timed and counted as one operation (its read and write are
            // not also counted as a read and an update).
            let outcome = match client.get(key.clone()).await {
                Ok(Some(_)) => client
                    .put(key, pick_value(shared, rng))
                    .await
                    .map(|()| true),
                other => other.map(|_| false),
            };
            record(shared, kind, sent, outcome);
        }
        OpKind::Insert => unreachable!("inserts take the counter's next item"),
    }
}

fn pick_value(shared: &Shared, rng: &mut XorShift) -> Bytes {
    shared.values[rng.below(shared.values.len() as u64) as usize].clone()
}

/// Records an operation sent at `sent`: `Ok(true)` done, `Ok(false)` the
/// key was not found (an error: every key read was inserted), `Err` a
/// client error. Returns whether it succeeded.
fn record(shared: &Shared, kind: OpKind, sent: Instant, outcome: Result<bool, Error>) -> bool {
    match outcome {
        Ok(true) => {
            shared.stats.ok(kind, sent.elapsed());
            true
        }
        Ok(false) => {
            shared.stats.error(kind, "not-found", || {
                format!("{kind}: a loaded key was not found")
            });
            false
        }
        Err(e) => {
            shared.stats.error(kind, error_class(&e), || e.to_string());
            false
        }
    }
}

/// A short class name for a client error, for the error counts.
pub fn error_class(e: &Error) -> &'static str {
    match e {
        Error::InvalidArgument(_) => "invalid-argument",
        Error::Timeout { .. } => "timeout",
        Error::Undetermined { .. } => "undetermined",
        Error::Pd(_) => "pd",
        Error::ResourceExhausted(_) => "resource-exhausted",
        Error::Store(_) => "store",
    }
}
