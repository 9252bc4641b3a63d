//! `store-bench`: the store issue's closing figures — raw put and get
//! throughput of a 3-store cluster (3 replicas, one region) at 1 KiB
//! values and 64 concurrent requests, and the fsync batches behind them.
//!
//! 1. **Cluster** ([`cluster`]): one PD and three stores, as separate
//!    `flotilla` processes (default) or in this process (`--in-process`),
//!    in a temporary directory. The bench waits until the first region
//!    has a leader with three voters.
//! 2. **Routing** ([`route`]): each store's `GET /regions` tells which
//!    store leads; requests carry that region's epoch and leader peer, and
//!    a region error makes the client ask the stores again.
//! 3. **Load** ([`load`]): `--keys` keys are preloaded, then every run has
//!    a write phase (`--concurrency` closed-loop tasks, each doing one
//!    `RawPut` of a `--value-size` value to a random key at a time) and a
//!    read phase (the same with `RawGet`), `--duration` seconds each.
//!    Around the write phase every store's `/metrics` is read: the deltas
//!    of `flotilla_store_log_persist_*` give entries and regions per fsync
//!    batch and the mean persist time ([`metrics`]).
//! 4. **Reference** ([`reference`]): the same puts against one local
//!    RocksDB (synced writes, `--concurrency` threads, no Raft or network),
//!    once per run; the cluster's writes are reported as a ratio of it.
//!
//! [`report`] prints every run and the median over `--runs`.

pub mod cluster;
pub mod load;
pub mod metrics;
pub mod reference;
pub mod report;
pub mod route;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use cluster::Cluster;
use load::Op;
use metrics::PersistStats;
use reference::{Reference, ReferenceLoad};
pub use report::{Report, RunResult};
use route::Router;

/// Replicas (and stores) in the benchmark's cluster.
pub const REPLICAS: usize = 3;

/// The benchmark's parameters.
#[derive(clap::Args, Clone, Debug)]
pub struct Params {
    /// Run PD and the stores inside this process instead of as separate
    /// `flotilla` processes.
    #[arg(long)]
    pub in_process: bool,
    /// The `flotilla` binary to start PD and the stores with (default: the
    /// one next to this executable, i.e. built by `cargo build --release`).
    #[arg(long)]
    pub flotilla_bin: Option<PathBuf>,
    /// Keys preloaded; the phases pick random keys among them.
    #[arg(long, default_value_t = 10_000)]
    pub keys: u64,
    /// Bytes per value.
    #[arg(long, default_value_t = 1024)]
    pub value_size: usize,
    /// Concurrent requests (closed-loop tasks, each one request at a time).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// gRPC connections to each store, shared by the tasks.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Seconds each write and read phase lasts.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Times the write and read phases (and the reference) are repeated;
    /// the summary gives each run and the median.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Measure the same puts against one local RocksDB (synced writes, no
    /// Raft, no network) in every run: `--reference false` skips it.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub reference: bool,
    /// Directory for the temporary data directories (default: the system's
    /// temporary directory). Put it on the disk you mean to measure.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Keep the temporary directory (data directories and, for processes,
    /// their logs) instead of removing it.
    #[arg(long)]
    pub keep: bool,
    /// Seed for keys and values.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

impl Params {
    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.keys >= 1, "--keys must be at least 1");
        anyhow::ensure!(
            (1..=8 << 20).contains(&self.value_size),
            "--value-size must be 1..=8MiB"
        );
        anyhow::ensure!(self.concurrency >= 1, "--concurrency must be at least 1");
        anyhow::ensure!(self.connections >= 1, "--connections must be at least 1");
        anyhow::ensure!(self.duration > 0.0, "--duration must be positive");
        anyhow::ensure!(self.runs >= 1, "--runs must be at least 1");
        Ok(())
    }

    fn phase(&self) -> Duration {
        Duration::from_secs_f64(self.duration)
    }

    fn reference_load(&self) -> ReferenceLoad {
        ReferenceLoad {
            keys: self.keys,
            value_size: self.value_size,
            writers: self.concurrency,
            duration: self.phase(),
            seed: self.seed,
        }
    }
}

/// Runs the whole benchmark, printing progress lines to stderr.
pub async fn run(params: &Params) -> anyhow::Result<Report> {
    params.validate()?;
    let base = match &params.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir(),
    };
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let dir = tempfile::Builder::new()
        .prefix("store-bench-")
        .tempdir_in(&base)
        .with_context(|| format!("creating a temporary directory in {}", base.display()))?;
    let started = Instant::now();
    let mut cluster = Cluster::start(params, dir.path()).await?;
    progress(&format!(
        "{}: PD {} (http {}), stores {}",
        cluster.describe(),
        cluster.pd_client,
        cluster.pd_http,
        cluster
            .stores
            .iter()
            .map(|s| format!("{} (status {})", s.kv, s.status))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let result = measure(params, &cluster, &dir.path().join("reference"), started).await;
    let problems = cluster.problems();
    cluster.stop().await;
    if params.keep {
        progress(&format!("kept {}", dir.keep().display()));
    }
    let mut report = result?;
    report.process_problems = problems;
    Ok(report)
}

async fn measure(
    params: &Params,
    cluster: &Cluster,
    reference_dir: &std::path::Path,
    started: Instant,
) -> anyhow::Result<Report> {
    let router = Arc::new(Router::connect(cluster.stores.clone(), params.connections).await?);
    let ready = started.elapsed();
    let leader = router.leader_store().context("no leader after discovery")?;
    progress(&format!(
        "region {} ready after {:.1} s: leader on store #{leader} ({})",
        router.first_region_id().unwrap_or_default(),
        ready.as_secs_f64(),
        cluster.stores[leader].kv
    ));

    let preload = load::preload(&router, params).await?;
    progress(&format!(
        "preloaded {} keys in {:.1} s ({:.0} puts/s, {} errors)",
        params.keys,
        preload.elapsed.as_secs_f64(),
        preload.ops_per_sec(),
        preload.errors
    ));
    anyhow::ensure!(
        preload.errors == 0,
        "preload failed: {} errors (first: {})",
        preload.errors,
        preload.first_error.as_deref().unwrap_or("?")
    );

    let reference = if params.reference {
        let (dir, load) = (reference_dir.to_path_buf(), params.reference_load());
        let r = tokio::task::spawn_blocking(move || Reference::open(&dir, &load))
            .await
            .context("reference setup panicked")??;
        Some(Arc::new(r))
    } else {
        None
    };

    let mut runs = Vec::new();
    for run in 1..=params.runs {
        let scraped = Instant::now();
        let before = scrape_all(cluster).await;
        let leader_before = router.leader_store();
        let write = load::run(&router, Op::Put, params, params.phase(), run as u64).await?;
        let after = scrape_all(cluster).await;
        let persist_secs = scraped.elapsed().as_secs_f64();
        let leader_after = router.leader_store();
        let leader = leader_after.or(leader_before).unwrap_or_default();
        let (persist_leader, persist_followers) = split_persist(&before, &after, leader);
        progress(&format!(
            "run {run}: writes {:.0}/s (p99 {:.1} ms, {} errors); {:.1} entries, {:.2} regions per fsync batch",
            write.ops_per_sec(),
            write.quantile_us(0.99) / 1000.0,
            write.errors,
            persist_leader.mean_entries(),
            persist_leader.mean_regions()
        ));
        let read = load::run(&router, Op::Get, params, params.phase(), run as u64).await?;
        progress(&format!(
            "run {run}: reads {:.0}/s (p99 {:.1} ms, {} errors)",
            read.ops_per_sec(),
            read.quantile_us(0.99) / 1000.0,
            read.errors
        ));
        let reference = match &reference {
            Some(r) => {
                let (r, load) = (r.clone(), params.reference_load());
                let result = tokio::task::spawn_blocking(move || r.puts(&load, run as u64))
                    .await
                    .context("reference run panicked")?;
                progress(&format!(
                    "run {run}: reference RocksDB {:.0} synced puts/s (p99 {:.1} ms)",
                    result.ops_per_sec(),
                    result.quantile_us(0.99) / 1000.0
                ));
                Some(result)
            }
            None => None,
        };
        runs.push(RunResult {
            write,
            read,
            persist_leader,
            persist_followers,
            persist_secs,
            leader_store: leader,
            leader_changed: leader_before != leader_after,
            reference,
        });
    }
    Ok(Report {
        params: params.clone(),
        mode: cluster.describe(),
        ready_secs: ready.as_secs_f64(),
        preload,
        runs,
        refreshes: router.refreshes(),
        process_problems: Vec::new(),
    })
}

/// Every store's persist counters, in store order (`None` for a store
/// that did not answer).
async fn scrape_all(cluster: &Cluster) -> Vec<Option<PersistStats>> {
    let mut all = Vec::new();
    for s in &cluster.stores {
        match PersistStats::scrape(&s.status).await {
            Ok(p) => all.push(Some(p)),
            Err(e) => {
                progress(&format!("reading /metrics of {}: {e:#}", s.status));
                all.push(None);
            }
        }
    }
    all
}

/// The leader's deltas, and the followers' summed (stores with both
/// readings only).
fn split_persist(
    before: &[Option<PersistStats>],
    after: &[Option<PersistStats>],
    leader: usize,
) -> (PersistStats, PersistStats) {
    let mut followers = PersistStats::default();
    let mut lead = PersistStats::default();
    for (i, (b, a)) in before.iter().zip(after).enumerate() {
        let (Some(b), Some(a)) = (b, a) else {
            continue;
        };
        let d = a.since(b);
        if i == leader {
            lead = d;
        } else {
            followers = followers.plus(&d);
        }
    }
    (lead, followers)
}

/// The median of `values` (the mean of the middle two for an even count);
/// 0 for none.
pub fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.into_iter().collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// One line of progress on stderr.
pub fn progress(line: &str) {
    eprintln!("store-bench: {line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median([]), 0.0);
        assert_eq!(median([3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median([4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
