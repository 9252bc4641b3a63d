//! A distributed job queue whose workers never take the same job twice.
//!
//! Queues built on eventually consistent stores suffer "worker
//! collisions": two workers both see a job as free and both run it. Here
//! each job has a claim key that moves once, from absent to a worker's id,
//! with `compare_and_swap`; the first swap to land decides the owner for
//! good, and only the owner processes the job and marks it done.
//!
//! Layout, under the queue's name (`<queue>/...`), sequence numbers
//! zero-padded to 20 digits so that key order is numeric order:
//!
//! | key | value |
//! |---|---|
//! | `jobs/<seq>` | the payload (at most 1 KiB), written by a producer |
//! | `claims/<seq>` | the id of the worker that owns the job |
//! | `done/<seq>` | the id of the worker that processed it |
//!
//! Worker ids must be unique among all workers that ever run on a queue:
//! "the claim holds my id" is how a worker learns it owns a job.
//!
//! Not covered: a worker that dies between claiming and marking done
//! leaves its job claimed forever. Recovering it needs claims with leases
//! (and fencing, or a job body that is itself idempotent); that is a
//! different design from this exactly-once one.
//!
//! Run it against a cluster (`flotilla playground` starts a local one):
//!
//! ```text
//! cargo run -p flotilla-client --example job_queue -- --pd 127.0.0.1:2379
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flotilla_client::{key_after, Bytes, Config, Error, KeyRange, KvPair, RawClient, Result};

/// The largest payload a job may carry.
pub const MAX_PAYLOAD_BYTES: usize = 1024;
/// Jobs a worker reads per round trip (at most 256 KiB of payloads).
/// Workers race mostly for a page's last few free jobs, so larger pages
/// mean fewer lost races.
const PAGE_JOBS: u32 = 256;
/// Rows per request when reading a whole table (the audit, the demo).
const PAGE_ROWS: u32 = 1000;
/// How long a worker keeps retrying an unavailable cluster before it
/// gives up and reports the error.
const OUTAGE_LIMIT: Duration = Duration::from_secs(60);
/// Backoff between those retries: doubling from the first to the max.
const BACKOFF_FIRST: Duration = Duration::from_millis(20);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Pause between passes that found nothing to do while producers may
/// still add jobs: a polling queue's idle interval.
const IDLE_POLL: Duration = Duration::from_millis(20);

/// The three key spaces of a queue.
#[derive(Clone, Copy, Debug)]
enum Table {
    Jobs,
    Claims,
    Done,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Jobs => "jobs",
            Table::Claims => "claims",
            Table::Done => "done",
        }
    }
}

/// A named queue on a cluster. Cheap to clone; clones share the client
/// and the count of processed jobs.
#[derive(Clone, Debug)]
pub struct JobQueue {
    client: RawClient,
    name: String,
    /// Jobs processed by this process's workers, for progress reports.
    processed: Arc<AtomicUsize>,
}

impl JobQueue {
    /// The queue `name` (several queues can share a cluster).
    pub fn new(client: RawClient, name: impl Into<String>) -> JobQueue {
        JobQueue {
            client,
            name: name.into(),
            processed: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The key of job `seq`'s payload.
    pub fn job_key(&self, seq: u64) -> String {
        self.key(Table::Jobs, seq)
    }

    /// The key naming job `seq`'s owner.
    pub fn claim_key(&self, seq: u64) -> String {
        self.key(Table::Claims, seq)
    }

    /// The key marking job `seq` done.
    pub fn done_key(&self, seq: u64) -> String {
        self.key(Table::Done, seq)
    }

    /// How many jobs this process's workers have processed so far.
    pub fn processed(&self) -> usize {
        self.processed.load(Ordering::Relaxed)
    }

    fn key(&self, table: Table, seq: u64) -> String {
        format!("{}{seq:020}", self.prefix(table))
    }

    fn prefix(&self, table: Table) -> String {
        format!("{}/{}/", self.name, table.name())
    }

    /// Every key of `table`.
    fn table_range(&self, table: Table) -> KeyRange {
        KeyRange::with_prefix(self.prefix(table))
    }

    /// The sequence number in a key of `table`; `None` for a key this
    /// queue did not write.
    fn seq_of(&self, table: Table, key: &[u8]) -> Option<u64> {
        let digits = key.strip_prefix(self.prefix(table).as_bytes())?;
        std::str::from_utf8(digits).ok()?.parse().ok()
    }

    /// Adds jobs `(seq, payload)`. Producers must not reuse a sequence
    /// number (to share a queue they can each take a range of numbers, or
    /// every `n`-th one). The producer is the only writer of its jobs'
    /// keys, always with the same payload, so the batch is retried through
    /// outages, even after an unknown outcome.
    pub async fn enqueue(&self, jobs: Vec<(u64, Vec<u8>)>) -> Result<()> {
        if let Some((seq, payload)) = jobs.iter().find(|(_, p)| p.len() > MAX_PAYLOAD_BYTES) {
            return Err(Error::InvalidArgument(format!(
                "job {seq}: a payload of {} bytes exceeds {MAX_PAYLOAD_BYTES}",
                payload.len()
            )));
        }
        let pairs: Vec<(String, Vec<u8>)> = jobs
            .into_iter()
            .map(|(seq, payload)| (self.job_key(seq), payload))
            .collect();
        let mut retries = 0;
        retrying(&mut retries, || self.client.batch_put(pairs.clone())).await
    }

    /// Reads the whole queue back and checks it (see [`Audit`]).
    pub async fn audit(&self) -> Result<Audit> {
        let jobs = self.read_table(Table::Jobs).await?;
        let claims = self.read_table(Table::Claims).await?;
        let done = self.read_table(Table::Done).await?;
        Ok(Audit::of(&jobs, &claims, &done))
    }

    /// Deletes the whole queue. `delete_range` is not idempotent in
    /// general (a retry could delete keys written after the first
    /// attempt), but nothing writes to a queue being removed, so retrying
    /// one whose outcome is unknown is safe here.
    pub async fn remove(&self) -> Result<()> {
        let KeyRange { start, end } = KeyRange::with_prefix(format!("{}/", self.name));
        let range = start..end;
        let mut patience = Patience::new();
        let mut retries = 0;
        loop {
            match self.client.delete_range(range.clone()).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    let retry = e.is_retryable() || e.is_undetermined();
                    patience.retry_or_fail(e, retry, &mut retries).await?;
                }
            }
        }
    }

    /// Every row of `table`, by sequence number.
    async fn read_table(&self, table: Table) -> Result<BTreeMap<u64, Bytes>> {
        let KeyRange {
            start: mut from,
            end,
        } = self.table_range(table);
        let mut rows = BTreeMap::new();
        let mut retries = 0;
        loop {
            let range = from.clone()..end.clone();
            let page =
                retrying(&mut retries, || self.client.scan(range.clone(), PAGE_ROWS)).await?;
            let Some(last) = page.last() else {
                return Ok(rows);
            };
            from = key_after(&last.key);
            let full = page.len() == PAGE_ROWS as usize;
            for pair in page {
                if let Some(seq) = self.seq_of(table, &pair.key) {
                    rows.insert(seq, pair.value);
                }
            }
            if !full {
                return Ok(rows);
            }
        }
    }
}

/// The queue as stored, checked: every job claimed once and marked done by
/// the worker that claimed it.
#[derive(Clone, Debug, Default)]
pub struct Audit {
    /// How many jobs the queue holds.
    pub jobs: usize,
    /// The worker that claimed each job.
    pub owners: BTreeMap<u64, String>,
    /// Everything that breaks the rules, one line each (empty when the
    /// queue is fully and correctly processed).
    pub problems: Vec<String>,
}

impl Audit {
    /// Checks the three tables against each other.
    fn of(
        jobs: &BTreeMap<u64, Bytes>,
        claims: &BTreeMap<u64, Bytes>,
        done: &BTreeMap<u64, Bytes>,
    ) -> Audit {
        let text = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
        let mut audit = Audit {
            jobs: jobs.len(),
            owners: claims.iter().map(|(&seq, w)| (seq, text(w))).collect(),
            problems: Vec::new(),
        };
        for &seq in jobs.keys() {
            match (claims.get(&seq), done.get(&seq)) {
                (None, _) => audit.problems.push(format!("job {seq} was never claimed")),
                (Some(owner), None) => audit.problems.push(format!(
                    "job {seq} was claimed by {} but never done",
                    text(owner)
                )),
                (Some(owner), Some(by)) if owner != by => audit.problems.push(format!(
                    "job {seq} was claimed by {} but done by {}",
                    text(owner),
                    text(by)
                )),
                _ => {}
            }
        }
        let strays = claims.keys().chain(done.keys());
        for seq in strays.filter(|seq| !jobs.contains_key(seq)) {
            audit
                .problems
                .push(format!("job {seq} has a claim or done marker but no job"));
        }
        audit
    }

    /// How many jobs each worker claimed.
    pub fn jobs_per_worker(&self) -> BTreeMap<&str, usize> {
        let mut counts = BTreeMap::new();
        for owner in self.owners.values() {
            *counts.entry(owner.as_str()).or_default() += 1;
        }
        counts
    }
}

/// One job a worker processed, as its in-memory log records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Processed {
    /// The job's sequence number.
    pub seq: u64,
    /// The size of the payload the worker read.
    pub payload_bytes: usize,
}

/// What a worker did: its log, and how often it had to work around the
/// cluster.
#[derive(Clone, Debug, Default)]
pub struct WorkerReport {
    /// The worker's id.
    pub id: String,
    /// The jobs it processed, in order.
    pub processed: Vec<Processed>,
    /// Claims another worker won.
    pub lost_races: u64,
    /// Claims whose outcome was unknown and had to be read back.
    pub undetermined: u64,
    /// Calls retried because the cluster did not answer in time.
    pub retries: u64,
}

/// A worker: claims free jobs, processes the ones it owns, until the queue
/// is drained.
pub struct Worker {
    queue: JobQueue,
    report: WorkerReport,
}

impl Worker {
    /// A worker with the given id, unique among all workers of the queue.
    pub fn new(queue: JobQueue, id: impl Into<String>) -> Worker {
        Worker {
            queue,
            report: WorkerReport {
                id: id.into(),
                ..WorkerReport::default()
            },
        }
    }

    /// Works until the queue is drained: `enqueuing_over` was set before a
    /// pass began, and that pass reached the end of the queue. The flag is
    /// read first because scans are linearizable: every job acknowledged
    /// before it was set is visible to the pass.
    pub async fn run(mut self, enqueuing_over: Arc<AtomicBool>) -> Result<WorkerReport> {
        loop {
            let last_pass = enqueuing_over.load(Ordering::Acquire);
            let owned = self.pass().await?;
            if last_pass {
                return Ok(self.report);
            }
            if owned == 0 {
                tokio::time::sleep(IDLE_POLL).await;
            }
        }
    }

    /// One walk over the queue, claiming every free job it finds; returns
    /// how many it won. Invariant: every job before `from` is claimed (by
    /// someone), and claims are never taken back, so the walk never needs
    /// to look behind itself.
    async fn pass(&mut self) -> Result<usize> {
        let KeyRange {
            start: mut from,
            end,
        } = self.queue.table_range(Table::Jobs);
        let mut owned = 0;
        loop {
            let range = from.clone()..end.clone();
            let page = retrying(&mut self.report.retries, || {
                self.queue.client.scan(range.clone(), PAGE_JOBS)
            })
            .await?;
            let Some(last) = page.last() else {
                return Ok(owned);
            };
            from = key_after(&last.key);
            let full = page.len() == PAGE_JOBS as usize;
            owned += self.work_page(page).await?;
            if !full {
                return Ok(owned);
            }
        }
    }

    /// Claims the free jobs of one page and processes those it wins.
    ///
    /// Workers reading the same page would all chase the same jobs if
    /// they tried them in order, each loss a wasted Raft write. So each
    /// worker tries the free jobs in its own order (a hash of its id and
    /// the job), and after losing a race reads the page's claims again
    /// instead of trying jobs it already knows others may have taken.
    async fn work_page(&mut self, page: Vec<KvPair>) -> Result<usize> {
        let jobs: BTreeMap<u64, Bytes> = page
            .into_iter()
            .filter_map(|p| Some((self.queue.seq_of(Table::Jobs, &p.key)?, p.value)))
            .collect();
        let mut owned = 0;
        loop {
            let mut lost_race = false;
            for seq in self.free_jobs(&jobs).await? {
                if !self.claim(seq).await? {
                    lost_race = true;
                    break;
                }
                self.process(seq, &jobs[&seq]).await?;
                owned += 1;
            }
            // Without a lost race, every job we saw free is now ours.
            if !lost_race {
                return Ok(owned);
            }
        }
    }

    /// The jobs of `jobs` nobody has claimed, in this worker's order.
    async fn free_jobs(&mut self, jobs: &BTreeMap<u64, Bytes>) -> Result<Vec<u64>> {
        let claim_keys: Vec<String> = jobs.keys().map(|&s| self.queue.claim_key(s)).collect();
        let claims = retrying(&mut self.report.retries, || {
            self.queue.client.batch_get(claim_keys.clone())
        })
        .await?;
        let mut free: Vec<u64> = jobs
            .keys()
            .zip(claims)
            .filter_map(|(&seq, claim)| claim.is_none().then_some(seq))
            .collect();
        free.sort_by_cached_key(|&seq| self.preference(seq));
        Ok(free)
    }

    /// Where job `seq` falls in this worker's order of trying.
    fn preference(&self, seq: u64) -> u64 {
        let mut hasher = DefaultHasher::new();
        (self.report.id.as_str(), seq).hash(&mut hasher);
        hasher.finish()
    }

    /// Tries to take job `seq`; true if this worker now owns it.
    ///
    /// The claim key only ever moves from absent to one worker's id, so
    /// whoever's id it holds owns the job, forever. The one thing a worker
    /// must not do is guess the outcome of its own swap: when it is
    /// unknown, the claim key is read back. Holding our id: ours. Another
    /// id: theirs. Absent: our swap has not landed, but it still may (it
    /// can sit in a deposed leader's log), so giving up here could leave
    /// the job claimed by us and never processed; instead we swap again.
    /// If the first swap lands first, the second finds our own id there
    /// and reports it, which the `Ok` arm below reads as a win.
    async fn claim(&mut self, seq: u64) -> Result<bool> {
        let key = self.queue.claim_key(seq);
        let me = self.report.id.clone();
        let mut patience = Patience::new();
        loop {
            let swapped = self
                .queue
                .client
                .compare_and_swap(key.clone(), None::<Vec<u8>>, me.clone())
                .await;
            let owner = match swapped {
                Ok((_, true)) => return Ok(true),
                Ok((Some(owner), false)) => owner,
                Ok((None, false)) => {
                    return Err(Error::Store(format!(
                        "{key}: a swap from absent failed while the key was absent"
                    )))
                }
                Err(e) if e.is_undetermined() => {
                    self.report.undetermined += 1;
                    let read = retrying(&mut self.report.retries, || {
                        self.queue.client.get(key.clone())
                    });
                    match read.await? {
                        Some(owner) => owner,
                        None => {
                            // Give a late landing a moment before swapping again.
                            patience
                                .retry_or_fail(e, true, &mut self.report.retries)
                                .await?;
                            continue;
                        }
                    }
                }
                Err(e) => {
                    let retry = e.is_retryable();
                    patience
                        .retry_or_fail(e, retry, &mut self.report.retries)
                        .await?;
                    continue;
                }
            };
            let mine = owner == me.as_bytes();
            if !mine {
                self.report.lost_races += 1;
            }
            return Ok(mine);
        }
    }

    /// Processes a job this worker owns: marks it done with our id, then
    /// logs it. Only the owner gets here, once per job, and it is the done
    /// key's only writer, so retrying the mark through an outage (even one
    /// whose first attempt landed) cannot make a second record.
    async fn process(&mut self, seq: u64, payload: &Bytes) -> Result<()> {
        let key = self.queue.done_key(seq);
        let me = &self.report.id;
        retrying(&mut self.report.retries, || {
            self.queue.client.put(key.clone(), me.clone())
        })
        .await?;
        self.report.processed.push(Processed {
            seq,
            payload_bytes: payload.len(),
        });
        self.queue.processed.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Waits out an unavailable cluster: exponential backoff, and a limit on
/// how long the whole wait may last.
struct Patience {
    started: Instant,
    delay: Duration,
}

impl Patience {
    fn new() -> Patience {
        Patience {
            started: Instant::now(),
            delay: BACKOFF_FIRST,
        }
    }

    /// After a failed call: `Ok` once it is time to try again, or the
    /// error itself when `retry` is false or the outage lasted too long.
    async fn retry_or_fail(&mut self, e: Error, retry: bool, retries: &mut u64) -> Result<()> {
        if !retry || self.started.elapsed() > OUTAGE_LIMIT {
            return Err(e);
        }
        *retries += 1;
        tokio::time::sleep(self.delay).await;
        self.delay = (self.delay * 2).min(BACKOFF_MAX);
        Ok(())
    }
}

/// Runs a call that is safe to repeat, retrying it while the cluster is
/// unavailable (each call already retried within its own deadline; this
/// outlasts a longer outage, such as a store restarting).
async fn retrying<T, F, Fut>(retries: &mut u64, mut call: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut patience = Patience::new();
    loop {
        match call().await {
            Ok(value) => return Ok(value),
            Err(e) => {
                // An unknown outcome is retried too: every write through here
                // is to keys only this process writes, with the same value
                // each time, so landing twice changes nothing.
                let retry = e.is_retryable() || e.is_undetermined();
                patience.retry_or_fail(e, retry, retries).await?;
            }
        }
    }
}

/// A payload for the demo's job `seq`: a size that varies up to 1 KiB.
fn demo_payload(seq: u64) -> Vec<u8> {
    let size = (seq * 389 % (MAX_PAYLOAD_BYTES as u64 + 1)) as usize;
    vec![b'a' + (seq % 26) as u8; size]
}

/// Enqueues `jobs` jobs in batches, then says enqueuing is over.
async fn produce(queue: JobQueue, jobs: u64, over: Arc<AtomicBool>) -> Result<()> {
    let seqs: Vec<u64> = (0..jobs).collect();
    for batch in seqs.chunks(20) {
        let batch = batch.iter().map(|&s| (s, demo_payload(s))).collect();
        queue.enqueue(batch).await?;
    }
    over.store(true, Ordering::Release);
    Ok(())
}

/// Runs the job-queue demo: producers enqueue jobs, workers claim each
/// one exactly once by compare-and-swap.
#[derive(clap::Parser)]
struct Args {
    /// PD endpoint (`host:port`)
    #[arg(long, env = "FLOTILLA_PD", default_value = "127.0.0.1:2379")]
    pd: String,
}

/// A name no earlier run used, so that runs do not see each other's jobs.
fn unique_suffix() -> String {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}-{}", std::process::id(), since_epoch.as_millis())
}

#[tokio::main]
async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let args = <Args as clap::Parser>::parse();
    demo(&args.pd).await
}

/// The demo: one producer enqueues 200 jobs while 4 workers drain the
/// queue; then the queue is audited, summarised and removed.
pub async fn demo(pd: &str) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let client = RawClient::connect([pd], Config::default()).await?;
    let suffix = unique_suffix();
    let queue = JobQueue::new(client, format!("demo-queue-{suffix}"));
    let over = Arc::new(AtomicBool::new(false));
    let producer = tokio::spawn(produce(queue.clone(), 200, over.clone()));
    let workers: Vec<_> = (0..4)
        .map(|i| Worker::new(queue.clone(), format!("worker-{i}-{suffix}")))
        .map(|w| tokio::spawn(w.run(over.clone())))
        .collect();
    producer.await??;
    for worker in workers {
        let r = worker.await??;
        println!(
            "{}: processed {} jobs (lost {} races, {} unknown claims read back, {} retries)",
            r.id,
            r.processed.len(),
            r.lost_races,
            r.undetermined,
            r.retries
        );
    }
    let audit = queue.audit().await?;
    println!(
        "{} jobs; claims per worker {:?}; problems: {:?}",
        audit.jobs,
        audit.jobs_per_worker(),
        audit.problems
    );
    queue.remove().await?;
    if !audit.problems.is_empty() {
        return Err("the queue was not processed exactly once".into());
    }
    Ok(())
}
