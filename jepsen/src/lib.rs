//! # flotilla-jepsen: does the cluster keep its promises under faults?
//!
//! One run, in the order it happens:
//! 1. **Cluster** — a real one on loopback: PD and stores as child
//!    processes of this binary (the playground's code path), with a small
//!    split size so the keys spread over several regions.
//! 2. **Workload** ([`workload`]) — concurrent clients over one SDK
//!    client, each operation recorded with its call and return time
//!    ([`history`]); an operation whose outcome is unknown is recorded as
//!    such, never guessed. [`register`]: hot keys, get/put/CAS;
//!    [`set`]: unique adds and whole-set reads; [`queue`]: the job queue,
//!    every job claimed exactly once.
//! 3. **Nemesis** ([`nemesis`]) — faults injected on a seeded schedule
//!    (processes killed or paused, Raft links cut ([`partition`]), PD's
//!    leader killed or paused, PD operators ([`schedule`])), each logged,
//!    all healed at the end.
//! 4. **Recovery and final reads** — the clients run on until each has
//!    been served since the last heal; then everything is read once. How
//!    long after each fault's heal every client was served again is
//!    reported per fault.
//! 5. **Check** — the workload's own check: each register key's history
//!    against a register model ([`analysis`], `flotilla-checker`), every
//!    set read against the adds, every job's claims; plus lost
//!    acknowledged writes, processes that crashed by themselves, and the
//!    stores' state journals: split brain and epoch violations
//!    ([`journal`]).
//! 6. **Summary** ([`summary`]) — one JSON object and one human line.
//!
//! ```text
//! cargo run --release -p flotilla-jepsen -- --nemesis kill,pause --duration 60
//! cargo run --release -p flotilla-jepsen -- --workload queue --pds 3 --nemesis kill-pd,schedule
//! ```

pub mod analysis;
pub mod history;
pub mod journal;
pub mod nemesis;
pub mod partition;
pub mod queue;
pub mod register;
pub mod schedule;
pub mod set;
pub mod summary;
pub mod workload;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use flotilla::playground::{Playground, PlaygroundConfig};
use flotilla_client::Config;

use crate::history::Recorder;
use crate::nemesis::{Fault, NemesisSpec};
use crate::summary::{Liveness, Summary};
use crate::workload::{Running, Sizes, Workload};

/// A run's parameters.
#[derive(Clone, Debug, clap::Parser)]
#[command(
    name = "flotilla-jepsen",
    about = "Fault testing for Flotilla: a workload under a nemesis, checked for linearizability."
)]
pub struct Params {
    /// What the clients do.
    #[arg(long, value_enum, default_value = "register")]
    pub workload: Workload,
    /// Faults to inject, comma-separated: kill, pause, partition,
    /// partition-halves, partition-bridge, partition-one-way, crash-all,
    /// kill-pd, pause-pd, schedule (empty: none).
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
    /// Keys in use at once (register).
    #[arg(long, default_value_t = 8)]
    pub keys: u64,
    /// Operations on a key (register), or adds to a set (set), before it
    /// is retired.
    #[arg(long, default_value_t = 1000)]
    pub ops_per_key: u64,
    /// Stores in the cluster.
    #[arg(long, default_value_t = 3)]
    pub stores: usize,
    /// PD members in the cluster.
    #[arg(long, default_value_t = 1)]
    pub pds: usize,
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

/// Each attempt's deadline within an operation.
const RPC_TIMEOUT: Duration = Duration::from_secs(1);

/// How long the cluster gets to serve every key again after the faults.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs one scenario.
pub async fn run(params: &Params) -> anyhow::Result<Summary> {
    anyhow::ensure!(
        params.clients > 0 && params.keys > 0,
        "--clients and --keys must be positive"
    );
    anyhow::ensure!(params.ops_per_key > 0, "--ops-per-key must be positive");
    anyhow::ensure!(
        params.workload != Workload::Set || params.ops_per_key <= set::MAX_ADDS_PER_SET,
        "--ops-per-key of the set workload must be at most {}",
        set::MAX_ADDS_PER_SET
    );
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
        PlaygroundConfig::new(bin, dir.path().to_path_buf(), params.pds, params.stores)
            .on_free_ports()?;
    config.store_args = vec!["--region-split-size".into(), "4KiB".into()];
    let cluster = Playground::start(config)
        .await
        .context("starting the cluster")?;
    // Each attempt gives up after RPC_TIMEOUT, near the election timeout:
    // a client stuck on a deposed or cut-off leader tries elsewhere soon,
    // as a real one would, instead of waiting out the whole operation.
    let client_config = Config::builder()
        .timeout(OP_TIMEOUT)
        .rpc_timeout(RPC_TIMEOUT)
        .build();
    // The final reads' client.
    let kv = cluster.client(client_config.clone()).await?;

    let recorder = Arc::new(Recorder::new());
    let workload = Running::new(
        params.workload,
        &Sizes {
            keys: params.keys,
            ops_per_key: params.ops_per_key,
            timeout: OP_TIMEOUT,
        },
    );
    let stop_clients = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for id in 1..=params.clients {
        // Each workload client is its own SDK client, with its own view of
        // where the leaders are (as separate processes would be): one may
        // still read from a deposed leader while another writes to the new
        // one.
        let own = cluster.client(client_config.clone()).await?;
        clients.push(workload.spawn_client(id, seed, own, recorder.clone(), stop_clients.clone()));
    }
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
    let (mut cluster, mut faults) = nemesis.await.context("the nemesis task")?;
    // The clients run on until each has been served since the last heal.
    let ids: Vec<u64> = (1..=params.clients).collect();
    let healed = recorder.now();
    let deadline = tokio::time::Instant::now() + RECOVERY_TIMEOUT;
    while recorder.everyone_served_after(&ids, healed).is_none()
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop_clients.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.context("a client task")?;
    }

    let reads_from = recorder.now();
    let deadline = tokio::time::Instant::now() + RECOVERY_TIMEOUT;
    let unread = workload.final_reads(&kv, &recorder, deadline).await;
    let final_reads_s = (recorder.now() - reads_from) as f64 / 1e9;
    // Processes that exited without the nemesis killing them.
    let crashed = cluster.exited_nodes();

    let ops = recorder.snapshot().1;
    let (checked, mut anomalies, mut failures) = workload.analyse(&recorder);
    anomalies.crash = crashed.len() as u64;
    let journals = journal::check_dir(dir.path(), params.stores);
    anomalies.split_brain = journals.split_brain;
    anomalies.epoch_violation = journals.epoch_violation;
    failures.push_str(&journals.failures);
    let liveness = Liveness {
        final_reads_s,
        unreadable_keys: unread.len() as u64,
        ..Liveness::recoveries(&mut faults, &recorder, &ids)
    };
    let summary = Summary {
        scenario: format!(
            "{}/{}",
            params.workload.name(),
            fault_names(&params.nemesis)
        ),
        seed,
        duration_s: params.duration,
        stores: params.stores,
        pd: params.pds,
        ops,
        checked,
        journal_events: journals.events,
        faults: nemesis::counts(&faults),
        fault_log: faults,
        anomalies,
        liveness,
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
