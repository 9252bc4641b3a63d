//! `lifecycle-bench`: the region lifecycle's data-moving figures — how long
//! a region of 96 MiB takes to move to a new store, and how long a split
//! takes while the region takes writes.
//!
//! 1. **Cluster**: one PD and three stores as `flotilla` processes, then a
//!    fourth; the split size is raised to 1 GiB (so the loaded region does
//!    not split by itself) and PD's balance schedulers are removed (only
//!    the bench's operators move data).
//! 2. **Load**: `--region-mib` MiB of incompressible 1 KiB values into the
//!    one region, in batches of 256.
//! 3. **Move**, `--runs` times: PD's `add-peer` operator puts a replica on
//!    the store without one (a learner filled by a snapshot, then
//!    promoted), then `remove-peer` takes the one from a follower's store.
//!    Timed from the first operator until PD sees the new voter caught up
//!    and the old replica gone.
//! 4. **Split latency**: `--splits` `SplitRegion` calls at keys spread
//!    over the data, one after the other, first with no load and then
//!    while `--writers` tasks keep putting 1 KiB values (the reference is
//!    the unloaded latency, measured in the same run).

pub mod routes;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use flotilla_proto::kvrpcpb::SplitRegionRequest;
use serde_json::{json, Value};

use crate::http;
use crate::store_bench::cluster::Cluster;
use crate::store_bench::load::values;
use crate::store_bench::median;
use routes::Routes;

/// How long one operator or wait may take.
const DEADLINE: Duration = Duration::from_secs(600);
/// Values per batch while loading.
const LOAD_BATCH: usize = 256;
/// Bytes per value.
const VALUE_SIZE: usize = 1024;

/// The benchmark's parameters.
#[derive(clap::Args, Clone, Debug)]
pub struct Params {
    /// The `flotilla` binary (default: the one next to this executable).
    #[arg(long)]
    pub flotilla_bin: Option<PathBuf>,
    /// MiB of data in the region that moves.
    #[arg(long, default_value_t = 96)]
    pub region_mib: usize,
    /// Moves measured (the summary gives their median).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Splits measured with and without load.
    #[arg(long, default_value_t = 20)]
    pub splits: usize,
    /// Concurrent writers during the loaded splits.
    #[arg(long, default_value_t = 16)]
    pub writers: usize,
    /// Directory for the temporary data directories.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Keep the data directories and logs.
    #[arg(long)]
    pub keep: bool,
}

/// The figures.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// MiB loaded into the region.
    pub region_mib: usize,
    /// Seconds the load took.
    pub load_seconds: f64,
    /// Seconds each move took (add, catch up, promote, remove).
    pub move_seconds: Vec<f64>,
    /// Split latencies with no load, in ms.
    pub split_idle_ms: Vec<f64>,
    /// Split latencies under load, in ms.
    pub split_loaded_ms: Vec<f64>,
    /// Writes per second the writers achieved during the loaded splits.
    pub writes_per_sec: f64,
}

/// Runs the benchmark, with progress lines on stderr.
pub async fn run(params: &Params) -> anyhow::Result<Report> {
    anyhow::ensure!(params.region_mib >= 1, "--region-mib must be at least 1");
    anyhow::ensure!(params.runs >= 1, "--runs must be at least 1");
    anyhow::ensure!(params.splits >= 1, "--splits must be at least 1");
    let base = params.dir.clone().unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix("flotilla-lifecycle-")
        .tempdir_in(&base)?;
    let config = dir.path().join("store.toml");
    std::fs::write(&config, "[split]\nregion-split-size = \"1GiB\"\n")?;
    let args = ["--config".to_string(), config.display().to_string()];
    let mut cluster =
        Cluster::start_processes(params.flotilla_bin.as_deref(), dir.path(), &args).await?;
    let result = measure(params, &mut cluster).await;
    let problems = cluster.problems();
    cluster.stop().await;
    if params.keep {
        progress(&format!("kept {}", dir.keep().display()));
    }
    anyhow::ensure!(problems.is_empty(), "{}", problems.join("\n"));
    result
}

fn key(i: usize) -> Vec<u8> {
    format!("k{i:09}").into_bytes()
}

async fn measure(params: &Params, cluster: &mut Cluster) -> anyhow::Result<Report> {
    let mut report = Report {
        region_mib: params.region_mib,
        ..Default::default()
    };
    for name in ["balance-leader", "balance-region"] {
        http::delete(&cluster.pd_http, &format!("/pd/api/v1/schedulers/{name}")).await?;
    }
    cluster.add_store().await?;
    let keys = params.region_mib * (1 << 20) / VALUE_SIZE;
    let mut routes = wait_routes(cluster).await?;
    let started = Instant::now();
    load(&mut routes, keys).await?;
    report.load_seconds = started.elapsed().as_secs_f64();
    progress(&format!(
        "{} MiB loaded in {:.1} s",
        params.region_mib, report.load_seconds
    ));
    let region = routes.route(&key(0)).context("the region")?.id;
    let store_ids = store_ids(cluster).await?;
    for run in 0..params.runs {
        let took = move_replica(cluster, region, &store_ids).await?;
        progress(&format!("move {}: {took:.2} s", run + 1));
        report.move_seconds.push(took);
    }
    report.split_idle_ms = splits(&mut routes, keys, params.splits, 0).await?;
    let (loaded, writes) = split_under_load(&routes, keys, params).await?;
    report.split_loaded_ms = loaded;
    report.writes_per_sec = writes;
    Ok(report)
}

/// Waits until the first region has a leader the stores report.
async fn wait_routes(cluster: &Cluster) -> anyhow::Result<Routes> {
    let started = Instant::now();
    loop {
        if let Ok(r) = Routes::connect(&cluster.stores).await {
            if r.route(b"").is_some() {
                return Ok(r);
            }
        }
        if started.elapsed() > DEADLINE {
            bail!("no leader for the first region");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn load(routes: &mut Routes, keys: usize) -> anyhow::Result<()> {
    let vals = values(VALUE_SIZE, 1);
    for first in (0..keys).step_by(LOAD_BATCH) {
        let batch: Vec<_> = (first..(first + LOAD_BATCH).min(keys))
            .map(|i| (key(i), vals[i % vals.len()].to_vec()))
            .collect();
        routes.batch_put(batch).await?;
    }
    Ok(())
}

/// Each store's ID, by index.
async fn store_ids(cluster: &Cluster) -> anyhow::Result<Vec<u64>> {
    let mut ids = Vec::new();
    for s in &cluster.stores {
        let status: Value = serde_json::from_str(&http::get(&s.status, "/status").await?)?;
        ids.push(status["store_id"].as_u64().context("no store_id")?);
    }
    Ok(ids)
}

/// PD's view of the region: (voter store IDs, other peers' store IDs,
/// leader store ID, pending peer count).
async fn pd_region(
    cluster: &Cluster,
    region: u64,
) -> anyhow::Result<(Vec<u64>, Vec<u64>, u64, usize)> {
    let path = format!("/pd/api/v1/region/id/{region}");
    let v: Value = serde_json::from_str(&http::get(&cluster.pd_http, &path).await?)?;
    let mut voters = Vec::new();
    let mut others = Vec::new();
    for p in v["peers"].as_array().context("region peers")? {
        let store = p["store-id"].as_u64().unwrap_or(0);
        if p["role"] == "voter" {
            voters.push(store);
        } else {
            others.push(store);
        }
    }
    let leader = v["leader"]["store-id"].as_u64().unwrap_or(0);
    let pending = v["pending_peers"].as_array().map_or(0, |p| p.len());
    Ok((voters, others, leader, pending))
}

/// Adds a replica on the store without one and removes a follower's.
async fn move_replica(cluster: &Cluster, region: u64, store_ids: &[u64]) -> anyhow::Result<f64> {
    let (voters, _, leader, _) = pd_region(cluster, region).await?;
    let target = *store_ids
        .iter()
        .find(|s| !voters.contains(s))
        .context("every store has a replica")?;
    let source = *voters
        .iter()
        .find(|&&s| s != leader)
        .context("no follower")?;
    let started = Instant::now();
    operator(cluster, "add-peer", region, target).await?;
    wait(cluster, region, |(v, o, _, pending)| {
        v.contains(&target) && o.is_empty() && pending == 0
    })
    .await?;
    operator(cluster, "remove-peer", region, source).await?;
    wait(cluster, region, |(v, o, _, _)| {
        !v.contains(&source) && o.is_empty() && v.len() == 3
    })
    .await?;
    Ok(started.elapsed().as_secs_f64())
}

async fn operator(cluster: &Cluster, name: &str, region: u64, store: u64) -> anyhow::Result<()> {
    let body = json!({"name": name, "region_id": region, "store_id": store}).to_string();
    let started = Instant::now();
    // PD refuses while the region is still busy with the last operator.
    let mut reported = false;
    while let Err(e) = http::post(&cluster.pd_http, "/pd/api/v1/operators", &body).await {
        if started.elapsed() > DEADLINE {
            return Err(e.context(format!("operator {name}")));
        }
        if !reported && started.elapsed() > Duration::from_secs(5) {
            progress(&format!("operator {name} still refused: {e:#}"));
            reported = true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

async fn wait(
    cluster: &Cluster,
    region: u64,
    done: impl Fn((Vec<u64>, Vec<u64>, u64, usize)) -> bool,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        if pd_region(cluster, region).await.is_ok_and(&done) {
            return Ok(());
        }
        if started.elapsed() > DEADLINE {
            let now = pd_region(cluster, region).await;
            bail!("region {region} never reached the expected peers: {now:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `count` splits at keys spread over `keys`, skipping the first `offset`
/// positions of each stride (so runs use distinct keys); latencies in ms.
async fn splits(
    routes: &mut Routes,
    keys: usize,
    count: usize,
    offset: usize,
) -> anyhow::Result<Vec<f64>> {
    let stride = keys / (count + 1);
    let mut out = Vec::new();
    for i in 1..=count {
        let at = key(i * stride + offset + 1);
        out.push(split_at(routes, &at).await?);
    }
    Ok(out)
}

/// One split at `at`: the latency of the call that succeeded, in ms.
async fn split_at(routes: &mut Routes, at: &[u8]) -> anyhow::Result<f64> {
    let started = Instant::now();
    loop {
        if let Some(route) = routes.route(at) {
            let sent = Instant::now();
            let resp = routes.clients[route.store]
                .split_region(SplitRegionRequest {
                    context: Some(route.context()),
                    split_keys: vec![at.to_vec().into()],
                })
                .await;
            if let Ok(r) = resp {
                if r.get_ref().region_error.is_none() {
                    let ms = sent.elapsed().as_secs_f64() * 1e3;
                    routes.refresh().await?;
                    return Ok(ms);
                }
            }
        }
        if started.elapsed() > DEADLINE {
            bail!("split at {at:?} never succeeded");
        }
        routes.refresh().await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Splits while writers put 1 KiB values over the keys; returns the split
/// latencies and the writers' throughput.
async fn split_under_load(
    routes: &Routes,
    keys: usize,
    params: &Params,
) -> anyhow::Result<(Vec<f64>, f64)> {
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for w in 0..params.writers {
        let (mut routes, stop, written) = (routes.clone(), stop.clone(), written.clone());
        let vals = values(VALUE_SIZE, 100 + w as u64);
        writers.push(tokio::spawn(async move {
            let mut i = w;
            while !stop.load(Ordering::Relaxed) {
                // A cheap spread over the keys.
                let k = (i * 7919 + w * 104_729) % keys;
                i += 1;
                if routes
                    .put(key(k), vals[i % vals.len()].to_vec())
                    .await
                    .is_ok()
                {
                    written.fetch_add(1, Ordering::Relaxed);
                } else {
                    let _ = routes.refresh().await;
                }
            }
        }));
    }
    // Let the writers get going first.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = written.load(Ordering::Relaxed);
    let started = Instant::now();
    let mut routes = routes.clone();
    let result = splits(&mut routes, keys, params.splits, 1).await;
    let elapsed = started.elapsed().as_secs_f64();
    let writes = (written.load(Ordering::Relaxed) - before) as f64 / elapsed;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        let _ = w.await;
    }
    Ok((result?, writes))
}

fn quantiles(v: &[f64]) -> (f64, f64) {
    let max = v.iter().cloned().fold(0.0, f64::max);
    (median(v.iter().cloned()), max)
}

impl crate::cli::Summary for Report {
    fn summary(&self) -> String {
        let moves: Vec<String> = self
            .move_seconds
            .iter()
            .map(|s| format!("{s:.2}"))
            .collect();
        let (idle_med, idle_max) = quantiles(&self.split_idle_ms);
        let (load_med, load_max) = quantiles(&self.split_loaded_ms);
        format!(
            "lifecycle-bench: a {} MiB region on 3 of 4 stores (processes)\n\
             load: {:.1} s\n\
             move to a new store (add learner, snapshot, promote, remove old): median {:.2} s (runs: {})\n\
             split latency, idle: median {:.1} ms, max {:.1} ms ({} splits)\n\
             split latency under load: median {:.1} ms, max {:.1} ms (writers at {:.0} writes/s); ratio to idle {:.2}\n",
            self.region_mib,
            self.load_seconds,
            median(self.move_seconds.iter().cloned()),
            moves.join(" / "),
            idle_med,
            idle_max,
            self.split_idle_ms.len(),
            load_med,
            load_max,
            self.writes_per_sec,
            if idle_med > 0.0 { load_med / idle_med } else { 0.0 },
        )
    }

    fn json(&self) -> String {
        json!({
            "region_mib": self.region_mib,
            "load_seconds": self.load_seconds,
            "move_seconds": self.move_seconds,
            "split_idle_ms": self.split_idle_ms,
            "split_loaded_ms": self.split_loaded_ms,
            "writes_per_sec": self.writes_per_sec,
        })
        .to_string()
    }
}

/// One line of progress on stderr.
pub fn progress(line: &str) {
    eprintln!("lifecycle-bench: {line}");
}
