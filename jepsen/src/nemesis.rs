//! The nemesis: faults injected into the cluster's processes on a seeded
//! schedule, each logged with its time, and healed at the end.
//!
//! Half the time a fault hits the store leading the most regions, half the
//! time a random store.
//!
//! - `kill`: SIGKILL a store, restart it after 1–5 s.
//! - `pause`: SIGSTOP a store for 2–4 s (past the 1–2 s election
//!   timeout: its leaders are deposed while they sleep, the zombie-leader
//!   case for lease reads), then SIGCONT.
//! - `partition`: cut one store's Raft links to every other store,
//!   both ways, for 3–6 s (through the stores' test-only `/debug/links`;
//!   clients and PD still reach it: the isolated leader must stop serving
//!   before another is elected). `partition-halves` cuts the stores into
//!   two random groups, `partition-bridge` cuts two groups apart with one
//!   store in both, `partition-one-way` makes one store unheard while it
//!   still hears the others ([`crate::partition`]).
//! - `crash-all`: SIGKILL every store and PD member at once, restart all.
//! - `kill-pd`, `pause-pd`: the same as `kill` and `pause`, to PD's leader
//!   (with one PD member, PD is simply gone for a while: the stores keep
//!   serving, clients with regions cached too).
//! - `schedule`: one PD operator — a leader transfer, a split at a random
//!   key, or a replica added or removed ([`crate::schedule`]).

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use flotilla::playground::Playground;
use flotilla_checker::generate::Rng;
use tokio::sync::watch;

use crate::history::Recorder;
use crate::partition::{self, Topology};
use crate::schedule;

/// A kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// SIGKILL a store, restart it later.
    Kill,
    /// SIGSTOP a store, SIGCONT it later.
    Pause,
    /// Cut a store off from the other stores, then heal.
    Partition,
    /// Cut the stores into two random groups.
    PartitionHalves,
    /// Cut two groups apart, with one store still talking to both.
    PartitionBridge,
    /// Nobody hears one store (it hears them): one-way loss.
    PartitionOneWay,
    /// SIGKILL every process, restart them all.
    CrashAll,
    /// SIGKILL PD's leader, restart it later.
    KillPd,
    /// SIGSTOP PD's leader, SIGCONT it later.
    PausePd,
    /// One PD operator: leader transfer, split or replica move.
    Schedule,
}

impl Fault {
    /// Its name on the command line and in the summary.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::Pause => "pause",
            Fault::Partition => "partition",
            Fault::PartitionHalves => "partition-halves",
            Fault::PartitionBridge => "partition-bridge",
            Fault::PartitionOneWay => "partition-one-way",
            Fault::CrashAll => "crash-all",
            Fault::KillPd => "kill-pd",
            Fault::PausePd => "pause-pd",
            Fault::Schedule => "schedule",
        }
    }

    /// Every fault.
    pub const ALL: [Fault; 10] = [
        Fault::Kill,
        Fault::Pause,
        Fault::Partition,
        Fault::PartitionHalves,
        Fault::PartitionBridge,
        Fault::PartitionOneWay,
        Fault::CrashAll,
        Fault::KillPd,
        Fault::PausePd,
        Fault::Schedule,
    ];
}

impl FromStr for Fault {
    type Err = String;

    fn from_str(s: &str) -> Result<Fault, String> {
        Fault::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
                format!("unknown fault {s:?} (known: {})", names.join(", "))
            })
    }
}

/// One injected fault, for the log.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Injected {
    /// Seconds since the run began.
    pub at_s: f64,
    /// The fault.
    pub fault: &'static str,
    /// What it hit (`store-1`, `all`).
    pub target: String,
    /// How long until it was healed and every process listened again, in
    /// seconds.
    pub lasted_s: f64,
    /// How long after that every client had a call succeed (`None`: not
    /// before the run ended).
    pub recovered_s: Option<f64>,
    /// The longest any client went without a successful call, from the
    /// fault's start until it recovered.
    pub longest_wait_s: Option<f64>,
}

impl Injected {
    /// When it was healed, in nanoseconds since the run began.
    pub fn healed_at(&self) -> u64 {
        ((self.at_s + self.lasted_s) * 1e9) as u64
    }
}

/// The schedule: a fault every `interval` (with jitter), from `faults`.
#[derive(Clone, Debug)]
pub struct NemesisSpec {
    /// The faults to choose from.
    pub faults: Vec<Fault>,
    /// Mean time between the end of one fault and the start of the next.
    pub interval: Duration,
    /// Seeds the choices.
    pub seed: u64,
}

/// Injects faults until `stop` turns true, heals everything, and returns
/// the playground and what it did.
pub async fn run(
    mut cluster: Playground,
    spec: NemesisSpec,
    recorder: &Recorder,
    mut stop: watch::Receiver<bool>,
) -> (Playground, Vec<Injected>) {
    let mut rng = Rng(spec.seed);
    let mut log = Vec::new();
    let stores = cluster.config().stores.len();
    let pds = cluster.config().pds.len();
    if spec.faults.is_empty() {
        let _ = stop.wait_for(|s| *s).await;
        return (cluster, log);
    }
    loop {
        let pause = jitter(&mut rng, spec.interval);
        if wait_or_stop(&mut stop, pause).await {
            break;
        }
        let fault = spec.faults[rng.below(spec.faults.len() as u64) as usize];
        let at = recorder.now();
        // A partition some store did not take is healed and not counted.
        let mut injected = true;
        let (target, hold, undo) = match fault {
            Fault::Kill | Fault::KillPd => {
                let p = pick_process(fault, &cluster, &mut rng).await;
                let node = p.node(&mut cluster);
                node.kill();
                let hold = jitter(&mut rng, Duration::from_secs(3));
                (node.name().to_string(), hold, Undo::Restart(p))
            }
            Fault::Pause | Fault::PausePd => {
                let p = pick_process(fault, &cluster, &mut rng).await;
                let node = p.node(&mut cluster);
                node.pause();
                let hold = Duration::from_millis(2000 + rng.below(2000));
                (node.name().to_string(), hold, Undo::Resume(p))
            }
            Fault::Partition
            | Fault::PartitionHalves
            | Fault::PartitionBridge
            | Fault::PartitionOneWay => {
                let topology = match fault {
                    Fault::Partition => Topology::Isolate(pick_store(&cluster, &mut rng).await),
                    Fault::PartitionHalves => Topology::halves(&mut rng, stores),
                    Fault::PartitionBridge => Topology::bridge(&mut rng, stores),
                    _ => Topology::Mute(pick_store(&cluster, &mut rng).await),
                };
                if let Err(e) = partition::apply(&cluster, &topology).await {
                    eprintln!(
                        "flotilla-jepsen: partitioning ({}), not counted: {e:#}",
                        topology.describe()
                    );
                    injected = false;
                }
                let hold = Duration::from_millis(3000 + rng.below(3000));
                (topology.describe(), hold, Undo::Links)
            }
            Fault::Schedule => {
                let i = pick_pd(&cluster, &mut rng).await;
                let addr = cluster.config().pds[i].http_addr();
                let what = match schedule::churn(&addr, &mut rng).await {
                    Ok(what) => what,
                    Err(e) => {
                        // Refusals are routine (a region busy with another
                        // operator): not counted.
                        eprintln!("flotilla-jepsen: schedule, not counted: {e:#}");
                        injected = false;
                        String::new()
                    }
                };
                (what, Duration::ZERO, Undo::Nothing)
            }
            Fault::CrashAll => {
                for i in 0..stores {
                    cluster.store(i).kill();
                }
                for i in 0..pds {
                    cluster.pd(i).kill();
                }
                let hold = Duration::from_millis(500 + rng.below(1500));
                ("all".to_string(), hold, Undo::RestartAll)
            }
        };
        // A fault is held to its end even if the run is stopping: the heal
        // below then finds everything up.
        tokio::time::sleep(hold).await;
        heal(&mut cluster, undo).await;
        // The next fault starts from a cluster whose processes all answer
        // again (restarted ones take a moment to listen).
        wait_until_listening(&cluster).await;
        if !injected {
            continue;
        }
        log.push(Injected {
            at_s: at as f64 / 1e9,
            fault: fault.name(),
            target,
            lasted_s: (recorder.now() - at) as f64 / 1e9,
            recovered_s: None,
            longest_wait_s: None,
        });
    }
    (cluster, log)
}

/// One of the cluster's processes.
#[derive(Clone, Copy)]
enum Process {
    Pd(usize),
    Store(usize),
}

impl Process {
    fn node(self, cluster: &mut Playground) -> &mut flotilla::playground::Node {
        match self {
            Process::Pd(i) => cluster.pd(i),
            Process::Store(i) => cluster.store(i),
        }
    }
}

/// The process a kill or pause hits: PD's leader for the PD faults, a
/// store otherwise ([`pick_store`]).
async fn pick_process(fault: Fault, cluster: &Playground, rng: &mut Rng) -> Process {
    match fault {
        Fault::KillPd | Fault::PausePd => Process::Pd(pick_pd(cluster, rng).await),
        _ => Process::Store(pick_store(cluster, rng).await),
    }
}

/// How to undo an injected fault.
enum Undo {
    /// Start the process again.
    Restart(Process),
    /// SIGCONT the process.
    Resume(Process),
    /// Remove every store's link cuts.
    Links,
    /// Start every PD member and store again.
    RestartAll,
    /// Nothing to undo (a PD operator runs its course).
    Nothing,
}

/// Undoes one fault.
async fn heal(cluster: &mut Playground, undo: Undo) {
    match undo {
        Undo::Restart(p) => restart(p.node(cluster)),
        Undo::Resume(p) => p.node(cluster).resume(),
        Undo::Links => partition::heal(cluster).await,
        Undo::Nothing => {}
        Undo::RestartAll => {
            for i in 0..cluster.config().pds.len() {
                restart(cluster.pd(i));
            }
            for i in 0..cluster.config().stores.len() {
                restart(cluster.store(i));
            }
        }
    }
}

/// Waits (up to 30 s) until every PD member's and store's HTTP port
/// answers.
async fn wait_until_listening(cluster: &Playground) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let config = cluster.config();
    let pds = config.pds.iter().map(|p| (p.http_addr(), "/health"));
    let stores = config.stores.iter().map(|s| (s.status_addr(), "/status"));
    for (addr, path) in pds.chain(stores) {
        while flotilla::http::get(&addr, path).await.is_err()
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// PD's leader, or a random member when none serves.
async fn pick_pd(cluster: &Playground, rng: &mut Rng) -> usize {
    match schedule::pd_leader(cluster).await {
        Some(i) => i,
        None => rng.below(cluster.config().pds.len() as u64) as usize,
    }
}

/// A random store, or (half the time) the one leading the most regions.
async fn pick_store(cluster: &Playground, rng: &mut Rng) -> usize {
    let stores = &cluster.config().stores;
    let random = rng.below(stores.len() as u64) as usize;
    if rng.below(2) == 0 {
        return random;
    }
    let mut best = (0, random);
    for (i, s) in stores.iter().enumerate() {
        let Ok(status) = flotilla::http::get(&s.status_addr(), "/status").await else {
            continue;
        };
        let leaders = serde_json::from_str::<serde_json::Value>(&status)
            .ok()
            .and_then(|v| v["leaders"].as_u64())
            .unwrap_or(0);
        if leaders > best.0 {
            best = (leaders, i);
        }
    }
    best.1
}

fn restart(node: &mut flotilla::playground::Node) {
    if let Err(e) = node.restart() {
        // The summary counts the process as crashed: it is not running.
        eprintln!("flotilla-jepsen: restarting {}: {e:#}", node.name());
    }
}

/// `mean` ± 50 %.
fn jitter(rng: &mut Rng, mean: Duration) -> Duration {
    let ms = mean.as_millis().max(2) as u64;
    Duration::from_millis(ms / 2 + rng.below(ms))
}

/// Sleeps for `d`; true if `stop` turned true first.
async fn wait_or_stop(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::time::timeout(d, stop.wait_for(|s| *s)).await.is_ok()
}

/// Faults injected, by kind.
pub fn counts(log: &[Injected]) -> BTreeMap<&'static str, u64> {
    let mut by_kind = BTreeMap::new();
    for f in Fault::ALL {
        by_kind.insert(f.name(), 0);
    }
    for i in log {
        *by_kind.entry(i.fault).or_default() += 1;
    }
    by_kind
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_by_name() {
        assert_eq!("pause".parse::<Fault>(), Ok(Fault::Pause));
        assert!("flood".parse::<Fault>().unwrap_err().contains("crash-all"));
    }
}
