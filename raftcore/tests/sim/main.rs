//! Deterministic simulation of raftcore groups (the `sim` test target).
//!
//! One seeded SplitMix64 stream (`rng.rs`) drives everything, so a seed
//! replays exactly. Each seed draws its world (`params.rs`): 3 or 5 founding
//! voters, Pre-Vote and Check-Quorum on or off, ReadIndex or lease reads,
//! message and in-flight limits, and a fault profile (calm, normal, or
//! leader churn). Then:
//!
//! - **Time** (`events.rs`) is a queue of timed events: deliveries (with
//!   random delay, so reordering; `network.rs` also drops, duplicates and
//!   partitions: random halves, an isolated leader, one-way links, a
//!   bridge), ticks at each node's own clock rate in `[0.95, 1.05]`,
//!   restarts, ends of pauses, and workload actions at a rate per tick.
//! - **Hosts** (`node.rs`) drive a `RawNode` over a `MemStorage` by the
//!   Ready protocol, apply committed entries with a random lag (reporting
//!   with `advance_apply_to`), apply membership changes, compact behind
//!   snapshots of the state machine (`state_machine.rs`). A crash keeps only
//!   what was persisted, sometimes between a Ready's early messages and its
//!   persist (thesis §10.2.1), and restarts from the latest snapshot.
//! - **Workload and faults** (`workload.rs`): proposals, ReadIndex and
//!   lease reads, membership changes (simple, joint, explicit leave),
//!   transfers, hibernation, host-initiated campaigns, crashes, pauses,
//!   partitions, and targeted scenarios (Figure 8 churn, a bridged leader
//!   whose bridge restarts).
//! - **Invariants** (`checker/`, `observe.rs`) are checked after every
//!   step; after the fault phase every fault heals and the group must elect
//!   a leader and apply a new proposal on every member (`liveness.rs`).
//!
//! Environment: `SIM_SEEDS=N` runs seeds `0..N`; `SIM_SEED=S` replays seed
//! `S` alone; `SIM_TRACE=1` (with `SIM_SEED` and `--nocapture`) traces it;
//! `SIM_PLANT=commit_previous_term|vote_before_persist` plants a bug in the
//! `simulate` test. A failure prints `SIM_SEED=<n>` and the command that
//! replays it.

mod checker;
mod cluster;
mod events;
mod faults;
mod liveness;
mod network;
mod node;
mod observe;
mod params;
mod rng;
mod state_machine;
mod stats;
mod workload;

use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};

use raftcore::PlantedBugs;

use crate::cluster::Cluster;
use crate::stats::Stats;

/// Seeds run by default: about 95 s of `cargo test -p raftcore --test sim`
/// on a 2-core machine (raftcore builds with opt-level 2 even in dev; the
/// planted-bug hunts run alongside and stop at their first catch).
const DEFAULT_SEEDS: u64 = 6000;

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v}: expected a number")),
    )
}

/// Runs one seed to completion; a violation or a panic inside raftcore is
/// an error describing it.
fn run_seed(seed: u64, planted: PlantedBugs, trace: bool) -> Result<Stats, String> {
    let run = catch_unwind(AssertUnwindSafe(|| {
        let mut c = Cluster::new(seed, planted, trace)?;
        let result = c.run();
        result.map(|()| c.stats.clone()).map_err(|v| {
            checker::Violation(format!("step {}, t={}: {}", c.stats.steps, c.now, v.0))
        })
    }));
    match run {
        Ok(result) => result.map_err(|v| v.0),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(format!("panic: {msg}"))
        }
    }
}

/// The bugs named by `SIM_PLANT`, if any.
fn planted_from_env() -> (PlantedBugs, String) {
    let name = std::env::var("SIM_PLANT").unwrap_or_default();
    let bugs = match name.as_str() {
        "" => PlantedBugs::default(),
        "commit_previous_term" => PlantedBugs {
            commit_previous_term: true,
            ..PlantedBugs::default()
        },
        "vote_before_persist" => PlantedBugs {
            vote_before_persist: true,
            ..PlantedBugs::default()
        },
        other => panic!("SIM_PLANT={other}: unknown planted bug"),
    };
    let prefix = if name.is_empty() {
        String::new()
    } else {
        format!("SIM_PLANT={name} ")
    };
    (bugs, prefix)
}

/// Writes past the test harness's output capture, so the summary shows in
/// a plain `cargo test`.
fn say(line: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

#[test]
fn simulate() {
    let (planted, plant_env) = planted_from_env();
    let trace = std::env::var_os("SIM_TRACE").is_some();
    let seeds: Vec<u64> = match env_u64("SIM_SEED") {
        Some(seed) => vec![seed],
        None => (0..env_u64("SIM_SEEDS").unwrap_or(DEFAULT_SEEDS)).collect(),
    };
    let mut total = Stats::default();
    for seed in seeds {
        match run_seed(seed, planted, trace) {
            Ok(stats) => total.add(&stats),
            Err(why) => {
                let report = format!(
                    "simulation failed: {why}\nSIM_SEED={seed}\nreplay with: \
                     {plant_env}SIM_SEED={seed} cargo test -p raftcore --release --test sim"
                );
                say(&report);
                panic!("{report}");
            }
        }
    }
    say(&total.summary());
    say(&total.to_string());
}

/// Runs the default seeds with `bugs` planted until the first violation;
/// the simulator must find one.
fn hunt(name: &str, bugs: PlantedBugs) {
    if env_u64("SIM_SEED").is_some() {
        return; // replaying one seed: the hunts are not what is asked for
    }
    for seed in 0..DEFAULT_SEEDS {
        if let Err(why) = run_seed(seed, bugs, false) {
            say(&format!(
                "planted {name}: caught at SIM_SEED={seed}, after {} seeds: {why}",
                seed + 1
            ));
            return;
        }
    }
    panic!("planted bug {name} went unnoticed for {DEFAULT_SEEDS} seeds");
}

#[test]
fn planted_commit_previous_term_is_caught() {
    hunt(
        "commit_previous_term",
        PlantedBugs {
            commit_previous_term: true,
            ..PlantedBugs::default()
        },
    );
}

#[test]
fn planted_vote_before_persist_is_caught() {
    hunt(
        "vote_before_persist",
        PlantedBugs {
            vote_before_persist: true,
            ..PlantedBugs::default()
        },
    );
}

/// How often each planted bug is caught, over `SIM_SEEDS` seeds (for tuning
/// the workload): `cargo test -p raftcore --release --test sim -- --ignored`.
#[test]
#[ignore = "a tuning aid that runs every seed for each planted bug; too slow for CI"]
fn planted_bug_detection_rate() {
    let n = env_u64("SIM_SEEDS").unwrap_or(DEFAULT_SEEDS);
    for (name, bugs) in [
        (
            "commit_previous_term",
            PlantedBugs {
                commit_previous_term: true,
                ..PlantedBugs::default()
            },
        ),
        (
            "vote_before_persist",
            PlantedBugs {
                vote_before_persist: true,
                ..PlantedBugs::default()
            },
        ),
    ] {
        let mut kinds: std::collections::BTreeMap<String, u64> = Default::default();
        for seed in 0..n {
            if let Err(why) = run_seed(seed, bugs, false) {
                let what = why.split(": ").nth(1).unwrap_or(&why);
                let kind = what.split(" (").next().unwrap_or(what).to_string();
                *kinds.entry(kind).or_default() += 1;
            }
        }
        let caught: u64 = kinds.values().sum();
        say(&format!(
            "planted {name}: caught in {caught} of {n} seeds: {kinds:?}"
        ));
    }
}
