//! `pd-scale`: does PD keep up with a large cluster? (issue 3, "Scale".)
//!
//! Fake stores build a cluster of `--regions` regions in one PD member
//! through its gRPC API ([`setup`]), then three phases run:
//!
//! 1. **Heartbeats** ([`heartbeat`]): every store streams batches of its
//!    regions' heartbeats for `--duration` seconds. The rate is PD's own
//!    count of processed heartbeats (`/metrics`) over the window, after a
//!    warm-up, so it is what the server did, not what the senders queued.
//! 2. **Routing** ([`route`]): `--concurrency` clients call `GetRegion`
//!    for random keys; latencies go into an HDR histogram.
//! 3. **Mixed**: both at once (routing while PD is busy with heartbeats).
//!
//! The PD runs in this process unless `--pd` names one started separately
//! (which must be fresh: never bootstrapped).

pub mod client;
pub mod heartbeat;
pub mod layout;
pub mod report;
pub mod rng;
pub mod route;
pub mod setup;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use flotilla_pd::config::PdConfig;
use flotilla_pd::server::PdServer;

use client::Pd;
use heartbeat::HeartbeatLoad;
use layout::Layout;
pub use report::{HeartbeatResult, Report};

/// PD's count of region heartbeats it processed and accepted.
pub const OK_SERIES: &str = "flotilla_pd_region_heartbeats_total{result=\"ok\"}";
/// PD's count of region heartbeats it refused.
pub const REJECTED_SERIES: &str = "flotilla_pd_region_heartbeats_total{result=\"rejected\"}";
/// PD's count of region records it persisted.
pub const PERSISTED_SERIES: &str = "flotilla_pd_regions_persisted_total";

/// Longest PD may take to work off the heartbeats queued when a phase
/// stops sending.
const DRAIN_DEADLINE: Duration = Duration::from_secs(120);

/// The benchmark's parameters.
#[derive(clap::Args, Clone, Debug)]
pub struct Params {
    /// Regions in the synthetic cluster.
    #[arg(long, default_value_t = 100_000)]
    pub regions: usize,
    /// Fake stores (each region has 3 voters on 3 of them).
    #[arg(long, default_value_t = 10)]
    pub stores: usize,
    /// Region heartbeats per stream message.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Seconds the heartbeat phase measures (after its warm-up).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds each phase runs before measuring.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Concurrent GetRegion clients; a comma-separated list runs one
    /// routing phase per value (the mixed phase uses the last).
    #[arg(long, value_delimiter = ',', default_value = "16")]
    pub concurrency: Vec<usize>,
    /// gRPC connections the GetRegion clients share.
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
    /// Seconds each routing phase measures.
    #[arg(long, default_value_t = 5.0)]
    pub route_duration: f64,
    /// Seconds the mixed phase (routing during heartbeats) measures; 0
    /// skips it.
    #[arg(long, default_value_t = 5.0)]
    pub mixed_duration: f64,
    /// Region heartbeats per second the stores offer in the mixed phase
    /// (0: as fast as PD takes them).
    #[arg(long, default_value_t = 50_000.0)]
    pub mixed_rate: f64,
    /// Percent of regions whose leader moves every round of heartbeats
    /// (a metadata change PD persists).
    #[arg(long, default_value_t = 1.0)]
    pub leader_churn_pct: f64,
    /// Seed for keys, statistics and which regions churn.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// gRPC address (host:port) of a PD started separately (fresh, never
    /// bootstrapped); by default one runs in this process.
    #[arg(long)]
    pub pd: Option<String>,
    /// HTTP address of that PD (default: the one `GetMembers` reports).
    #[arg(long)]
    pub pd_http: Option<String>,
}

impl Params {
    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.regions >= 1, "--regions must be at least 1");
        anyhow::ensure!(
            self.stores >= layout::REPLICAS,
            "--stores must be at least {}",
            layout::REPLICAS
        );
        anyhow::ensure!(
            (1..=10_000).contains(&self.batch),
            "--batch must be 1..=10000"
        );
        anyhow::ensure!(
            self.duration > 0.0 && self.route_duration > 0.0,
            "durations must be positive"
        );
        anyhow::ensure!(
            self.concurrency.iter().all(|c| *c >= 1),
            "--concurrency values must be at least 1"
        );
        Ok(())
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

/// Runs the whole benchmark, printing progress lines to stderr.
pub async fn run(params: &Params) -> anyhow::Result<Report> {
    params.validate()?;
    let local = match params.pd {
        None => Some(start_pd().await?),
        Some(_) => None,
    };
    let (addr, http) = match &local {
        Some((server, _)) => (
            server.addrs().client.to_string(),
            Some(server.addrs().http.to_string()),
        ),
        None => (
            params.pd.clone().unwrap_or_default(),
            params.pd_http.clone(),
        ),
    };
    let result = measure(params, &addr, http.as_deref()).await;
    if let Some((server, _data_dir)) = local {
        server.stop().await;
    }
    result
}

async fn measure(params: &Params, addr: &str, http: Option<&str>) -> anyhow::Result<Report> {
    let pd = Pd::connect(addr, http).await?;
    progress(&format!(
        "PD {} (http {}) serves cluster {}",
        pd.client_addr, pd.http_addr, pd.cluster_id
    ));
    let (stores, _store_beats) = setup::register_stores(&pd, params.stores).await?;
    let first = setup::bootstrap(&pd, &stores[0]).await?;
    progress(&format!(
        "{} stores registered; bootstrapped with region {}",
        stores.len(),
        first.id
    ));
    let layout = Arc::new(setup::plan(&pd, stores, params).await?);
    let create = setup::create_regions(&pd, &layout, params).await?;
    progress(&format!(
        "{} regions created in {:.1} s; all routable and persisted",
        layout.regions.len(),
        create.as_secs_f64()
    ));
    let heartbeats = heartbeat_phase(&pd, &layout, params, secs(params.duration), None).await?;
    progress(&format!(
        "heartbeats: {:.0}/s",
        heartbeats.heartbeats_per_sec()
    ));
    let mut routes = Vec::new();
    for &c in &params.concurrency {
        let r = route::run(
            &pd,
            &layout,
            c,
            params.connections,
            secs(params.warmup.min(1.0)),
            secs(params.route_duration),
            params.seed,
        )
        .await?;
        progress(&format!(
            "GetRegion x{c}: p99 {:.0} us, {:.0} ops/s",
            r.quantile_us(0.99),
            r.ops_per_sec()
        ));
        routes.push(r);
    }
    let mixed = if params.mixed_duration > 0.0 {
        let c = params.concurrency[params.concurrency.len() - 1];
        let m = heartbeat_phase(&pd, &layout, params, secs(params.mixed_duration), Some(c)).await?;
        Some(m)
    } else {
        None
    };
    Ok(Report {
        params: params.clone(),
        churning_regions: layout.churning_regions(),
        create_secs: create.as_secs_f64(),
        heartbeats,
        routes,
        mixed,
    })
}

/// Runs the heartbeat load for warm-up plus `window`, counting at PD over
/// the window; with `route`, that many routing clients run in the window.
async fn heartbeat_phase(
    pd: &Pd,
    layout: &Arc<Layout>,
    params: &Params,
    window: Duration,
    route: Option<usize>,
) -> anyhow::Result<HeartbeatResult> {
    let initial = PdCounts::read(pd).await?;
    let rate = route.map(|_| params.mixed_rate);
    let mut load =
        HeartbeatLoad::start(pd, layout.clone(), params.batch, None, rate, params.seed).await?;
    tokio::time::sleep(secs(params.warmup)).await;
    let before = PdCounts::read(pd).await?;
    let routing = match route {
        Some(c) => Some(
            route::run(
                pd,
                layout,
                c,
                params.connections,
                Duration::ZERO,
                window,
                params.seed ^ 0x6d_6978_6564,
            )
            .await?,
        ),
        None => {
            tokio::time::sleep(window).await;
            None
        }
    };
    let after = PdCounts::read(pd).await?;
    load.stop_sending().await?;
    let sent = load.counters.sent.load(Ordering::Relaxed);
    let drain = drain(pd, &initial, sent).await;
    let counters = load.close().await?;
    let drain = drain?;
    let elapsed = after.at - before.at;
    let rejected = after.rejected - initial.rejected;
    if rejected > 0.0 {
        let reason = counters
            .first_rejection
            .lock()
            .expect("not poisoned")
            .clone();
        anyhow::bail!(
            "PD refused {rejected} heartbeats: {}",
            reason.unwrap_or_default()
        );
    }
    Ok(HeartbeatResult {
        processed: after.ok - before.ok,
        persisted: after.persisted - before.persisted,
        elapsed,
        sent,
        backlog: sent as f64 - (after.ok - initial.ok),
        drain,
        commands: counters.commands.load(Ordering::Relaxed),
        routing,
    })
}

/// Waits until PD has processed every heartbeat sent since `initial`, so
/// that no backlog spills into the next phase; returns how long that took.
async fn drain(pd: &Pd, initial: &PdCounts, sent: u64) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        let now = PdCounts::read(pd).await?;
        if (now.ok + now.rejected) - (initial.ok + initial.rejected) >= sent as f64 {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < DRAIN_DEADLINE,
            "PD still had {} heartbeats to process after {DRAIN_DEADLINE:?}",
            sent as f64 - (now.ok + now.rejected - initial.ok - initial.rejected)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// PD's counters at one moment.
struct PdCounts {
    ok: f64,
    rejected: f64,
    persisted: f64,
    at: Instant,
}

impl PdCounts {
    async fn read(pd: &Pd) -> anyhow::Result<PdCounts> {
        let started = Instant::now();
        let text = crate::http::get(&pd.http_addr, "/metrics").await?;
        let taken = started.elapsed();
        let get = |s| client::sample(&text, s).unwrap_or(0.0);
        Ok(PdCounts {
            ok: get(OK_SERIES),
            rejected: get(REJECTED_SERIES),
            persisted: get(PERSISTED_SERIES),
            // PD rendered the sample somewhere inside the request: call it
            // the middle.
            at: started + taken / 2,
        })
    }
}

/// Starts a single-member PD on free loopback ports in a temporary data
/// directory (removed when the returned guard drops).
async fn start_pd() -> anyhow::Result<(PdServer, tempfile::TempDir)> {
    let dir = tempfile::tempdir().context("creating a temporary PD data dir")?;
    let cfg = PdConfig {
        name: "pd-scale".into(),
        data_dir: dir.path().join("pd"),
        client_addr: free_addr()?,
        peer_addr: free_addr()?,
        http_addr: free_addr()?,
        ..PdConfig::default()
    };
    let server = PdServer::start(cfg).await.context("starting PD")?;
    Ok((server, dir))
}

/// A loopback address with a port nobody listens on right now.
fn free_addr() -> anyhow::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.to_string())
}

fn progress(line: &str) {
    eprintln!("pd-scale: {line}");
}
