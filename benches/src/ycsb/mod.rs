//! `flotilla-ycsb`: a YCSB-style load tool for Flotilla.
//!
//! 1. **Cluster** ([`cluster`]): the one `--pd` names, or with
//!    `--embedded` a local one started for the run.
//! 2. **Load** (with `--load`, implied by `--embedded`): the records are
//!    inserted first, as YCSB's load phase, unless the workload *is*
//!    `load`.
//! 3. **Run** ([`driver`]): the workload ([`workload`]: YCSB's A–F, or a
//!    `--mix`) with its key distribution ([`generator`]) by `--concurrency`
//!    tasks, for `--operations` and/or `--duration`, optionally paced to
//!    `--target` ops/s; a progress line every second ([`progress`]).
//! 4. **Report** ([`report`]): per operation count, ops/s, mean, p50, p95,
//!    p99, p99.9 and max, errors by class; the stores' fsync batches and
//!    CPU per operation ([`store_metrics`]); with `--reference`, one local
//!    RocksDB's synced puts at the same concurrency, measured in the same
//!    run, and the cluster's writes as a ratio of it.

pub mod cluster;
pub mod driver;
pub mod generator;
pub mod progress;
pub mod report;
pub mod stats;
pub mod store_metrics;
pub mod workload;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use flotilla_client::Config;

use crate::store_bench::reference::{Reference, ReferenceLoad};
use cluster::{Cluster, ClusterSpec};
use driver::Plan;
use progress::Progress;
use report::{ReferenceFigures, Report};
use stats::Stats;
use store_metrics::Reading;
use workload::{Distribution, Mix, OpKind, Preset};

/// Duration of a run given neither `--operations` nor `--duration`.
const DEFAULT_DURATION: Duration = Duration::from_secs(30);

/// The tool's options.
#[derive(clap::Args, Clone, Debug)]
pub struct Params {
    /// The workload: `load` inserts the records; a–f are YCSB's core
    /// workloads.
    #[arg(long, value_enum, default_value = "a")]
    pub workload: Preset,
    /// A custom mix instead of the workload's, e.g. `read=0.9,update=0.1`
    /// (kinds: read, update, insert, scan, rmw).
    #[arg(long)]
    pub mix: Option<Mix>,
    /// How keys are picked (default: the workload's).
    #[arg(long, value_enum)]
    pub distribution: Option<Distribution>,
    /// Records in the key space (loaded by `load`, read by the others).
    #[arg(long, default_value_t = 100_000)]
    pub records: u64,
    /// Stop after this many operations.
    #[arg(long)]
    pub operations: Option<u64>,
    /// Stop after this many seconds (default 30 when `--operations` is not
    /// given; `load` runs until every record is in).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Concurrent clients (tokio tasks sharing one client).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Operations per second to aim for, all clients together (default:
    /// as fast as they go).
    #[arg(long)]
    pub target: Option<f64>,
    /// Bytes per value.
    #[arg(long, default_value_t = 1024)]
    pub value_size: usize,
    /// Longest scan (lengths are uniform in 1..=this).
    #[arg(long, default_value_t = 100)]
    pub scan_length: u32,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// PD endpoints, comma-separated.
    #[arg(long, default_value = "127.0.0.1:2379", value_delimiter = ',')]
    pub pd: Vec<String>,
    /// Start a local cluster for the run (1 PD, `--stores` stores, as
    /// child processes, in a temporary directory) and load it first.
    #[arg(long)]
    pub embedded: bool,
    /// Stores of the embedded cluster.
    #[arg(long, default_value_t = 3)]
    pub stores: usize,
    /// Where the embedded cluster's directory goes (default: the system's
    /// temporary directory); also the reference RocksDB's.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Keep the embedded cluster's data and logs.
    #[arg(long)]
    pub keep: bool,
    /// Insert the records before the workload (implied by `--embedded`).
    #[arg(long)]
    pub load: bool,
    /// Also measure one local RocksDB's synced puts (`--concurrency`
    /// writers, for as long as the run), and report the cluster's writes
    /// as a ratio of it.
    #[arg(long)]
    pub reference: bool,
    /// Deadline of each operation, retries included, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// gRPC connections per store.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Let the client combine concurrent gets and puts into batches (the
    /// SDK's default); `--combine-calls false` sends each on its own.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub combine_calls: bool,
    /// No progress lines.
    #[arg(long)]
    pub quiet: bool,
}

impl Params {
    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.records >= 1, "--records must be at least 1");
        anyhow::ensure!(self.concurrency >= 1, "--concurrency must be at least 1");
        anyhow::ensure!(
            (1..=flotilla_proto::limits::MAX_VALUE_BYTES).contains(&self.value_size),
            "--value-size must be 1..={} bytes",
            flotilla_proto::limits::MAX_VALUE_BYTES
        );
        anyhow::ensure!(self.scan_length >= 1, "--scan-length must be at least 1");
        anyhow::ensure!(
            self.operations != Some(0),
            "--operations must be at least 1"
        );
        if let Some(d) = self.duration {
            anyhow::ensure!(d > 0.0 && d.is_finite(), "--duration must be positive");
        }
        if let Some(t) = self.target {
            anyhow::ensure!(t > 0.0 && t.is_finite(), "--target must be positive");
        }
        anyhow::ensure!(
            self.timeout > 0.0 && self.timeout.is_finite(),
            "--timeout must be positive"
        );
        anyhow::ensure!(self.connections >= 1, "--connections must be at least 1");
        anyhow::ensure!(
            (1..=flotilla::playground::MAX_STORES).contains(&self.stores),
            "--stores must be 1..={}",
            flotilla::playground::MAX_STORES
        );
        Ok(())
    }

    /// The workload's name, mix and distribution, `--mix` and
    /// `--distribution` applied.
    fn workload(&self) -> (String, Mix, Distribution) {
        let (mix, dist) = self.workload.definition();
        let name = match &self.mix {
            Some(_) => "custom".to_string(),
            None => self.workload.name().to_string(),
        };
        (
            name,
            self.mix.clone().unwrap_or(mix),
            self.distribution.unwrap_or(dist),
        )
    }

    /// The plan of the main run.
    fn plan(&self) -> Plan {
        let (_, mix, distribution) = self.workload();
        let load = self.workload == Preset::Load && self.mix.is_none();
        let duration = match (self.duration, self.operations) {
            (Some(d), _) => Some(Duration::from_secs_f64(d)),
            (None, None) if !load => Some(DEFAULT_DURATION),
            _ => None,
        };
        Plan {
            mix,
            distribution,
            records: self.records,
            load,
            operations: self.operations,
            duration,
            concurrency: self.concurrency,
            target: self.target,
            value_size: self.value_size,
            scan_length: self.scan_length,
            seed: self.seed,
        }
    }

    /// The plan of the load phase before the workload.
    fn load_plan(&self) -> Plan {
        let (mix, distribution) = Preset::Load.definition();
        Plan {
            mix,
            distribution,
            load: true,
            operations: None,
            duration: None,
            target: None,
            ..self.plan()
        }
    }

    fn client_config(&self) -> Config {
        Config::builder()
            .timeout(Duration::from_secs_f64(self.timeout))
            .connections_per_store(self.connections)
            .combine_calls(self.combine_calls)
            .build()
    }
}

/// Runs the tool: cluster, optional load, the workload, the report.
pub async fn run(params: &Params) -> anyhow::Result<Report> {
    params.validate()?;
    let spec = ClusterSpec {
        pd: params.pd.clone(),
        embedded_stores: params.embedded.then_some(params.stores),
        dir: params.dir.clone(),
        keep: params.keep,
        config: params.client_config(),
    };
    if params.embedded {
        say(&format!(
            "starting a local cluster of {} stores",
            params.stores
        ));
    }
    let cluster = Cluster::open(&spec).await?;
    let result = run_on(params, &cluster).await;
    cluster.close(params.keep);
    result
}

async fn run_on(params: &Params, cluster: &Cluster) -> anyhow::Result<Report> {
    let plan = params.plan();
    if (params.load || params.embedded) && !plan.load {
        let load = params.load_plan();
        say(&format!("loading {} records", params.records));
        let stats = Arc::new(Stats::new());
        let elapsed = execute(params, "[load]", &load, cluster, stats.clone()).await;
        let errors = stats.errors();
        say(&format!(
            "loaded {} records in {:.1} s ({:.0} inserts/s, {errors} errors)",
            stats.ops(),
            elapsed.as_secs_f64(),
            stats.ops() as f64 / elapsed.as_secs_f64().max(1e-9)
        ));
    }
    let statuses = cluster.status_addresses().await.unwrap_or_else(|e| {
        say(&format!("no store metrics: {e:#}"));
        Vec::new()
    });
    let before = Reading::take(&statuses).await;
    let (name, mix, distribution) = params.workload();
    let stats = Arc::new(Stats::new());
    let label = format!("[{name}]");
    let elapsed = execute(params, &label, &plan, cluster, stats.clone()).await;
    let after = Reading::take(&statuses).await;
    let kinds = OpKind::ALL
        .iter()
        .filter_map(|&k| stats.summary(k, elapsed))
        .collect();
    let mut report = Report {
        workload: name,
        mix: mix.to_string(),
        distribution: format!("{distribution:?}").to_lowercase(),
        records: params.records,
        concurrency: params.concurrency,
        value_size: params.value_size,
        target: params.target,
        elapsed,
        kinds,
        stores: None,
        reference: None,
        cluster: cluster.description.clone(),
    };
    if !statuses.is_empty() {
        report.stores = Some(after.since(&before, report.ops()));
    }
    if params.reference {
        report.reference = Some(reference(params, elapsed).await?);
    }
    Ok(report)
}

/// Runs `plan` with live progress unless `--quiet`.
async fn execute(
    params: &Params,
    label: &str,
    plan: &Plan,
    cluster: &Cluster,
    stats: Arc<Stats>,
) -> Duration {
    let progress = (!params.quiet).then(|| Progress::start(label.to_string(), stats.clone()));
    let elapsed = driver::run(plan, &cluster.client, stats).await;
    drop(progress);
    elapsed
}

/// The RocksDB reference: synced puts by `--concurrency` writers for as
/// long as the run took (at least 5 s), on `--dir`'s disk.
async fn reference(params: &Params, run: Duration) -> anyhow::Result<ReferenceFigures> {
    let base = params.dir.clone().unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix("flotilla-ycsb-reference-")
        .tempdir_in(&base)
        .with_context(|| format!("creating a directory in {}", base.display()))?;
    let load = ReferenceLoad {
        keys: params.records,
        value_size: params.value_size,
        writers: params.concurrency,
        duration: run.max(Duration::from_secs(5)),
        seed: params.seed,
    };
    say(&format!(
        "reference: {} synced-put writers on one RocksDB for {:.0} s",
        load.writers,
        load.duration.as_secs_f64()
    ));
    let path = dir.path().to_path_buf();
    let result = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let db = Reference::open(&path, &load)?;
        Ok(db.puts(&load, 1))
    })
    .await
    .context("the reference panicked")??;
    anyhow::ensure!(
        result.errors == 0,
        "the reference failed: {}",
        result.first_error.as_deref().unwrap_or("?")
    );
    Ok(ReferenceFigures {
        ops_per_sec: result.ops_per_sec(),
        p99_ms: result.quantile_us(0.99) / 1000.0,
        writers: params.concurrency,
    })
}

/// One line about what the tool is doing, on stderr.
fn say(line: &str) {
    eprintln!("flotilla-ycsb: {line}");
}
