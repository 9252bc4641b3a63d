//! `idle-regions`: what idle regions cost a store, and how fast a store
//! holding many of them restarts — the hibernation figures of the region
//! lifecycle issue.
//!
//! 1. **Cluster**: one PD and three stores as `flotilla` processes
//!    (3 replicas), PD's balance schedulers removed (their leader
//!    transfers would keep waking regions).
//! 2. **Regions** ([`split`]): the key space is cut into `--regions`
//!    regions by `SplitRegion` calls of up to 1,000 keys, each on the last
//!    region; one key per sampled region is written. The bench then waits
//!    until every store holds every region and all of them hibernate.
//! 3. **Idle cost**: each store's CPU (user + system, from `/proc`) over
//!    `--window` seconds, `--runs` times, and its resident memory.
//! 4. **Restart**, each store killed (SIGKILL) and started again: first
//!    the store leading the fewest regions (it serves once every region
//!    there knows its leader), then the one leading the most (its regions
//!    must elect new leaders from hibernation: it serves once every region
//!    has a leader, a read of every sampled region returns what was
//!    written, and the restarted store knows every leader), then all three
//!    at once (every region elects; served when the reads succeed). Splits
//!    start each new region's leader on the store that led the original,
//!    so most leaders sit on one store — the worst case for its restart.
//! 5. **Reference** (same run): the stores are restarted with
//!    `raft.hibernate-regions = false` and the idle cost measured again,
//!    so hibernation's effect is a ratio on the same machine and moment.

pub mod layout;
pub mod proc;
pub mod split;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::http;
use crate::store_bench::cluster::{Cluster, StoreAddrs};
use crate::store_bench::median;

/// How long regions get to hibernate, and restarted stores to serve.
const DEADLINE: Duration = Duration::from_secs(600);
/// Regions whose first key is written and read back after restarts.
const SAMPLED: usize = 100;

/// The benchmark's parameters.
#[derive(clap::Args, Clone, Debug)]
pub struct Params {
    /// The `flotilla` binary (default: the one next to this executable,
    /// built by `cargo build --release`).
    #[arg(long)]
    pub flotilla_bin: Option<PathBuf>,
    /// Regions to cut the key space into.
    #[arg(long, default_value_t = 10_000)]
    pub regions: usize,
    /// Seconds of each idle CPU measurement.
    #[arg(long, default_value_t = 20.0)]
    pub window: f64,
    /// Idle CPU measurements (the summary gives their median).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Skip the reference with hibernation off.
    #[arg(long)]
    pub no_reference: bool,
    /// Directory for the temporary data directories (default: the
    /// system's temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Keep the data directories and logs.
    #[arg(long)]
    pub keep: bool,
}

/// What one store cost while idle.
#[derive(Clone, Debug, Default)]
pub struct IdleCost {
    /// Median over the runs of each store's CPU, in % of one core.
    pub cpu_percent: Vec<f64>,
    /// Each store's resident memory at the end, in MiB.
    pub rss_mib: Vec<f64>,
}

/// The benchmark's figures.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Regions the key space was cut into.
    pub regions: usize,
    /// Seconds the splits took.
    pub split_seconds: f64,
    /// Seconds from the last split until every region hibernated.
    pub hibernate_seconds: f64,
    /// Idle cost with hibernation.
    pub hibernating: IdleCost,
    /// Idle cost without (the reference), if measured.
    pub awake: Option<IdleCost>,
    /// Regions each store led before the restarts.
    pub leaders_per_store: Vec<u64>,
    /// Seconds until the restarted store leading the fewest regions served.
    pub follower_restart_seconds: f64,
    /// Seconds until the restarted store leading the most regions, and
    /// every region, served.
    pub leader_restart_seconds: f64,
    /// Seconds until a fully restarted cluster served.
    pub cluster_restart_seconds: f64,
}

/// Runs the benchmark, with progress lines on stderr.
pub async fn run(params: &Params) -> anyhow::Result<Report> {
    anyhow::ensure!(params.regions >= 2, "--regions must be at least 2");
    anyhow::ensure!(params.window > 0.0, "--window must be positive");
    anyhow::ensure!(params.runs >= 1, "--runs must be at least 1");
    let base = params.dir.clone().unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix("flotilla-idle-regions-")
        .tempdir_in(&base)?;
    progress(&format!("data under {}", dir.path().display()));
    let mut cluster =
        Cluster::start_processes(params.flotilla_bin.as_deref(), dir.path(), &[]).await?;
    let result = measure(params, &mut cluster, dir.path()).await;
    let problems = cluster.problems();
    cluster.stop().await;
    if params.keep {
        progress(&format!("kept {}", dir.keep().display()));
    }
    anyhow::ensure!(problems.is_empty(), "{}", problems.join("\n"));
    result
}

async fn measure(
    params: &Params,
    cluster: &mut Cluster,
    dir: &std::path::Path,
) -> anyhow::Result<Report> {
    let mut report = Report {
        regions: params.regions,
        ..Default::default()
    };
    for name in ["balance-leader", "balance-region"] {
        http::delete(&cluster.pd_http, &format!("/pd/api/v1/schedulers/{name}")).await?;
    }
    let started = Instant::now();
    split::cut(&cluster.stores, params.regions).await?;
    report.split_seconds = started.elapsed().as_secs_f64();
    progress(&format!(
        "{} regions in {:.1} s",
        params.regions, report.split_seconds
    ));
    let samples = split::sample_keys(params.regions, SAMPLED);
    write_samples(&cluster.stores, &samples).await?;
    let started = Instant::now();
    wait_hibernating(&cluster.stores, params.regions).await?;
    report.hibernate_seconds = started.elapsed().as_secs_f64();
    progress(&format!(
        "every region hibernates after {:.1} s",
        report.hibernate_seconds
    ));
    report.hibernating = idle_cost(params, cluster).await?;

    report.leaders_per_store = leaders_per_store(&cluster.stores).await?;
    progress(&format!(
        "leaders per store: {:?}",
        report.leaders_per_store
    ));
    let by_leaders = |most: bool| {
        let counts = report.leaders_per_store.iter().enumerate();
        let pick = if most {
            counts.max_by_key(|(_, &n)| n)
        } else {
            counts.min_by_key(|(_, &n)| n)
        };
        pick.map_or(0, |(i, _)| i)
    };
    let (follower, leader) = (by_leaders(false), by_leaders(true));
    let started = Instant::now();
    cluster.restart_stores(&[follower], None).await?;
    wait_leaders_known(&cluster.stores[follower], params.regions).await?;
    report.follower_restart_seconds = started.elapsed().as_secs_f64();
    progress(&format!(
        "store {follower} (fewest leaders) restarted and served in {:.1} s",
        report.follower_restart_seconds
    ));
    let started = Instant::now();
    cluster.restart_stores(&[leader], None).await?;
    read_samples(&cluster.stores, params.regions, &samples).await?;
    wait_leaders_known(&cluster.stores[leader], params.regions).await?;
    report.leader_restart_seconds = started.elapsed().as_secs_f64();
    progress(&format!(
        "store {leader} (most leaders) restarted and served in {:.1} s",
        report.leader_restart_seconds
    ));

    let started = Instant::now();
    cluster.restart_stores(&[0, 1, 2], None).await?;
    read_samples(&cluster.stores, params.regions, &samples).await?;
    report.cluster_restart_seconds = started.elapsed().as_secs_f64();
    progress(&format!(
        "all stores restarted and served in {:.1} s",
        report.cluster_restart_seconds
    ));

    if !params.no_reference {
        let config = dir.join("awake.toml");
        std::fs::write(&config, "[raft]\nhibernate-regions = false\n")?;
        cluster.restart_stores(&[0, 1, 2], Some(&config)).await?;
        read_samples(&cluster.stores, params.regions, &samples).await?;
        report.awake = Some(idle_cost(params, cluster).await?);
    }
    Ok(report)
}

/// Each store's CPU over `--runs` windows (median) and memory after.
async fn idle_cost(params: &Params, cluster: &Cluster) -> anyhow::Result<IdleCost> {
    let pids = cluster.store_pids();
    let window = Duration::from_secs_f64(params.window);
    let mut runs: Vec<Vec<f64>> = vec![Vec::new(); pids.len()];
    for run in 0..params.runs {
        let before: Vec<f64> = pids
            .iter()
            .map(|&p| proc::cpu_seconds(p))
            .collect::<Result<_, _>>()?;
        let started = Instant::now();
        tokio::time::sleep(window).await;
        let elapsed = started.elapsed().as_secs_f64();
        for (i, &p) in pids.iter().enumerate() {
            let used = proc::cpu_seconds(p)? - before[i];
            runs[i].push(100.0 * used / elapsed);
        }
        let line: Vec<String> = runs.iter().map(|r| format!("{:.2}%", r[run])).collect();
        progress(&format!("idle CPU, run {}: {}", run + 1, line.join(" ")));
    }
    let rss_mib = pids
        .iter()
        .map(|&p| proc::rss_bytes(p).map(|b| b as f64 / (1 << 20) as f64))
        .collect::<Result<_, _>>()?;
    Ok(IdleCost {
        cpu_percent: runs.into_iter().map(median).collect(),
        rss_mib,
    })
}

async fn write_samples(stores: &[StoreAddrs], samples: &[Vec<u8>]) -> anyhow::Result<()> {
    let mut clients = layout::clients(stores).await?;
    let mut left: Vec<Vec<u8>> = samples.to_vec();
    let started = Instant::now();
    // New regions may still elect their leaders: retry what failed.
    while !left.is_empty() {
        anyhow::ensure!(
            started.elapsed() < DEADLINE,
            "the sampled regions took no write within {DEADLINE:?}"
        );
        let leaders = layout::leaders(stores).await?;
        let mut failed = Vec::new();
        for key in left {
            if layout::put(&mut clients, &leaders, &key, &key)
                .await
                .is_err()
            {
                failed.push(key);
            }
        }
        left = failed;
        if !left.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// Waits until every store reports `regions` regions, all hibernating.
async fn wait_hibernating(stores: &[StoreAddrs], regions: usize) -> anyhow::Result<()> {
    let want = regions as f64;
    wait("every region to hibernate", || async {
        for s in stores {
            let held = layout::metric(s, "flotilla_store_regions").await?;
            let asleep = layout::metric(s, "flotilla_store_hibernated_regions").await?;
            if held < want || asleep < want {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .await
}

/// The `leaders` each store's `/status` reports.
async fn leaders_per_store(stores: &[StoreAddrs]) -> anyhow::Result<Vec<u64>> {
    let mut out = Vec::new();
    for s in stores {
        let status: serde_json::Value =
            serde_json::from_str(&http::get(&s.status, "/status").await?)?;
        out.push(status["leaders"].as_u64().unwrap_or(0));
    }
    Ok(out)
}

/// Waits until the store holds `regions` regions, each with a known leader.
async fn wait_leaders_known(store: &StoreAddrs, regions: usize) -> anyhow::Result<()> {
    wait("the restarted store to know every leader", || async {
        let held = layout::held(store).await?;
        Ok(held.len() == regions && held.iter().all(|r| r.knows_leader))
    })
    .await
}

/// Waits until every region has a leader and every sample reads back.
async fn read_samples(
    stores: &[StoreAddrs],
    regions: usize,
    samples: &[Vec<u8>],
) -> anyhow::Result<()> {
    let clients = wait_clients(stores).await?;
    wait("every region to have a leader and serve reads", || {
        // Clones share the connections.
        let mut clients = clients.clone();
        async move {
            let leaders = layout::leaders(stores).await?;
            if leaders.len() < regions {
                return Ok(false);
            }
            for key in samples {
                if layout::get(&mut clients, &leaders, key).await.ok().as_ref() != Some(key) {
                    return Ok(false);
                }
            }
            Ok(true)
        }
    })
    .await
}

async fn wait_clients(
    stores: &[StoreAddrs],
) -> anyhow::Result<Vec<flotilla_proto::kvrpcpb::kv_client::KvClient<tonic::transport::Channel>>> {
    let mut last = None;
    let started = Instant::now();
    while started.elapsed() < DEADLINE {
        match layout::clients(stores).await {
            Ok(c) => return Ok(c),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no clients")))
}

/// Polls `cond` every 100 ms until it holds (errors count as not yet).
async fn wait<F, Fut>(what: &str, mut cond: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let started = Instant::now();
    loop {
        if cond().await.unwrap_or(false) {
            return Ok(());
        }
        if started.elapsed() > DEADLINE {
            anyhow::bail!("gave up after {DEADLINE:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl crate::cli::Summary for Report {
    fn summary(&self) -> String {
        let cost = |c: &IdleCost| {
            let cpu: Vec<String> = c.cpu_percent.iter().map(|v| format!("{v:.2}%")).collect();
            let rss: Vec<String> = c.rss_mib.iter().map(|v| format!("{v:.0}")).collect();
            format!(
                "CPU per store {} of one core, RSS {} MiB",
                cpu.join(" / "),
                rss.join(" / ")
            )
        };
        let mut out = format!(
            "idle-regions: {} regions on 3 stores (3 replicas)\n\
             split into regions: {:.1} s; all hibernating {:.1} s later\n\
             hibernating: {}\n",
            self.regions,
            self.split_seconds,
            self.hibernate_seconds,
            cost(&self.hibernating)
        );
        if let Some(awake) = &self.awake {
            out += &format!("awake (hibernate-regions = false): {}\n", cost(awake));
            let ratio = |a: &[f64], b: &[f64]| {
                let (sa, sb): (f64, f64) = (a.iter().sum(), b.iter().sum());
                if sb > 0.0 {
                    sa / sb
                } else {
                    0.0
                }
            };
            out += &format!(
                "hibernating / awake CPU: {:.3}\n",
                ratio(&self.hibernating.cpu_percent, &awake.cpu_percent)
            );
        }
        out += &format!(
            "restart (leaders per store {:?}): the store leading fewest serves after {:.1} s, \
             the one leading most after {:.1} s; the whole cluster after {:.1} s\n",
            self.leaders_per_store,
            self.follower_restart_seconds,
            self.leader_restart_seconds,
            self.cluster_restart_seconds
        );
        out
    }

    fn json(&self) -> String {
        let cost = |c: &IdleCost| json!({"cpu_percent": c.cpu_percent, "rss_mib": c.rss_mib});
        json!({
            "regions": self.regions,
            "split_seconds": self.split_seconds,
            "hibernate_seconds": self.hibernate_seconds,
            "hibernating": cost(&self.hibernating),
            "awake": self.awake.as_ref().map(cost),
            "leaders_per_store": self.leaders_per_store,
            "follower_restart_seconds": self.follower_restart_seconds,
            "leader_restart_seconds": self.leader_restart_seconds,
            "cluster_restart_seconds": self.cluster_restart_seconds,
        })
        .to_string()
    }
}

/// One line of progress on stderr.
pub fn progress(line: &str) {
    eprintln!("idle-regions: {line}");
}
