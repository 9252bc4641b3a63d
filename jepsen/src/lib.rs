//! # flotilla-jepsen: does the cluster keep its promises under faults?
//!
//! One run, in the order it happens:
//! 1. **Cluster** — a real one on loopback: PD and stores as child
//!    processes of this binary (the playground's code path), with a small
//!    split size so the keys spread over several regions.
//! 2. **Workload** ([`register`]) — concurrent clients over one SDK client,
//!    each operation recorded with its call and return time
//!    ([`history`]); an operation whose outcome is unknown is recorded as
//!    such, never guessed.
//! 3. **Nemesis** ([`nemesis`]) — faults injected on a seeded schedule,
//!    each logged, all healed at the end.
//! 4. **Recovery and final reads** — every key read once the cluster
//!    serves again; the time that took is reported.
//! 5. **Check** ([`analysis`]) — each key's history against a register
//!    model (`flotilla-checker`), plus lost acknowledged writes and
//!    processes that crashed by themselves.
//! 6. **Summary** ([`summary`]) — one JSON object and one human line.
//!
//! ```text
//! cargo run --release -p flotilla-jepsen -- --nemesis kill,pause --duration 60
//! ```

pub mod analysis;
pub mod history;
pub mod nemesis;
pub mod partition;
pub mod register;
pub mod summary;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use flotilla::playground::{Playground, PlaygroundConfig};
use flotilla_client::Config;

use crate::history::Recorder;
use crate::nemesis::{Fault, NemesisSpec};
use crate::register::{Keys, RegisterSpec};
use crate::summary::{Liveness, Summary};

/// A run's parameters.
#[derive(Clone, Debug, clap::Parser)]
#[command(
    name = "flotilla-jepsen",
    about = "Fault testing for Flotilla: a workload under a nemesis, checked for linearizability."
)]
pub struct Params {
    /// Faults to inject, comma-separated: kill, pause, partition,
    /// partition-halves, partition-bridge, partition-one-way, crash-all
    /// (empty: none).
    #[arg(long, value_delimiter = ',', default_value = "kill,pause")]
    pub nemesis: Vec<Fault>,
    /// How long the workload runs under faults, in seconds.
    #[arg(long, default_value_t = 60)]
    pub duration: u64,
    /// Mean seconds between faults.
    #[arg(long, default_value_t = 5)]
    pub interval: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    pub clients: u64,
    /// Keys in use at once.
    #[arg(long, default_value_t = 8)]
    pub keys: u64,
    /// Operations on a key before it is retired.
    #[arg(long, default_value_t = 1000)]
    pub ops_per_key: u64,
    /// Stores in the cluster.
    #[arg(long, default_value_t = 3)]
    pub stores: usize,
    /// Seeds the workload and the nemesis (default: from the clock).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where the cluster's data and logs go (default: a temporary
    /// directory, removed unless the run found anomalies).
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
    /// Print only the JSON summary.
    #[arg(long)]
    pub json: bool,
}

/// Each workload operation's deadline, retries included.
const OP_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the cluster gets to serve every key again after the faults.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs one scenario.
pub async fn run(params: &Params) -> anyhow::Result<Summary> {
    anyhow::ensure!(
        params.clients > 0 && params.keys > 0,
        "--clients and --keys must be positive"
    );
    anyhow::ensure!(params.ops_per_key > 0, "--ops-per-key must be positive");
    let seed = params.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let dir = match &params.dir {
        Some(d) => tempfile::Builder::new()
            .prefix("flotilla-jepsen-")
            .tempdir_in(d),
        None => tempfile::Builder::new()
            .prefix("flotilla-jepsen-")
            .tempdir(),
    }
    .context("creating the cluster's directory")?;
    let bin = std::env::current_exe().context("finding this executable")?;
    let mut config =
        PlaygroundConfig::new(bin, dir.path().to_path_buf(), 1, params.stores).on_free_ports()?;
    config.store_args = vec!["--region-split-size".into(), "4KiB".into()];
    let cluster = Playground::start(config)
        .await
        .context("starting the cluster")?;
    let client_config = Config::builder().timeout(OP_TIMEOUT).build();
    let kv = cluster.client(client_config).await?;

    let recorder = Arc::new(Recorder::new());
    let keys = Arc::new(Keys::new(RegisterSpec {
        slots: params.keys,
        ops_per_key: params.ops_per_key,
        timeout: OP_TIMEOUT,
    }));
    let stop_clients = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (1..=params.clients)
        .map(|id| {
            tokio::spawn(register::client(
                id,
                seed,
                kv.clone(),
                keys.clone(),
                recorder.clone(),
                stop_clients.clone(),
            ))
        })
        .collect();
    let (stop_nemesis, nemesis_stop) = tokio::sync::watch::channel(false);
    let spec = NemesisSpec {
        faults: params.nemesis.clone(),
        interval: Duration::from_secs(params.interval),
        seed,
    };
    let nemesis = {
        let recorder = recorder.clone();
        tokio::spawn(async move { nemesis::run(cluster, spec, &recorder, nemesis_stop).await })
    };
    tokio::time::sleep(Duration::from_secs(params.duration)).await;
    let _ = stop_nemesis.send(true);
    let (mut cluster, faults) = nemesis.await.context("the nemesis task")?;
    stop_clients.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.context("a client task")?;
    }

    let healed = recorder.now();
    let deadline = tokio::time::Instant::now() + RECOVERY_TIMEOUT;
    let unread = register::final_reads(&kv, &keys, &recorder, deadline).await;
    let recovered_s = (recorder.now() - healed) as f64 / 1e9;
    // Processes that exited without the nemesis killing them.
    let crashed = cluster.exited_nodes();

    let (history, ops) = recorder.snapshot();
    let (checked, mut anomalies, failures) = analysis::analyse(history);
    anomalies.crash = crashed.len() as u64;
    let summary = Summary {
        scenario: format!("register/{}", fault_names(&params.nemesis)),
        seed,
        duration_s: params.duration,
        stores: params.stores,
        pd: 1,
        ops,
        checked,
        faults: nemesis::counts(&faults),
        fault_log: faults,
        anomalies,
        liveness: Liveness {
            final_reads_s: recovered_s,
            unreadable_keys: unread.len() as u64,
        },
        failures,
        crashed,
        data_dir: None,
    };
    cluster.stop();
    let summary = if summary.anomalies.any() {
        // Keep the cluster's logs of a failing run.
        Summary {
            data_dir: Some(dir.keep().display().to_string()),
            ..summary
        }
    } else {
        summary
    };
    Ok(summary)
}

fn fault_names(faults: &[Fault]) -> String {
    if faults.is_empty() {
        return "none".to_string();
    }
    let names: Vec<&str> = faults.iter().map(|f| f.name()).collect();
    names.join("+")
}
