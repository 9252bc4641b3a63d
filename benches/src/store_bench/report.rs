//! The results: a human-readable summary and one JSON object.

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::load::PhaseResult;
use super::metrics::PersistStats;
use super::{median, Params, REPLICAS};

/// What one run (write phase, read phase, reference) measured.
pub struct RunResult {
    /// The write phase.
    pub write: PhaseResult,
    /// The read phase.
    pub read: PhaseResult,
    /// The leader store's log writes during the write phase.
    pub persist_leader: PersistStats,
    /// The other stores' log writes during the write phase, summed.
    pub persist_followers: PersistStats,
    /// Seconds between the `/metrics` readings around the write phase.
    pub persist_secs: f64,
    /// Index of the store that led at the end of the write phase.
    pub leader_store: usize,
    /// Whether the leader moved during the write phase.
    pub leader_changed: bool,
    /// The reference RocksDB's puts, unless skipped.
    pub reference: Option<PhaseResult>,
}

impl RunResult {
    /// The cluster's writes per second over the reference's.
    pub fn ratio(&self) -> Option<f64> {
        let r = self.reference.as_ref()?.ops_per_sec();
        (r > 0.0).then(|| self.write.ops_per_sec() / r)
    }
}

/// Everything the benchmark measured, with its parameters.
pub struct Report {
    /// The parameters.
    pub params: Params,
    /// How the cluster ran ("in-process" or "processes (BIN)").
    pub mode: String,
    /// Seconds from start until the first region had a leader and its
    /// voters.
    pub ready_secs: f64,
    /// The preload.
    pub preload: PhaseResult,
    /// The runs.
    pub runs: Vec<RunResult>,
    /// Routing-table refreshes after region errors.
    pub refreshes: u64,
    /// Cluster processes that exited early (with their log tails).
    pub process_problems: Vec<String>,
}

fn phase_line(p: &PhaseResult) -> String {
    let mut s = format!(
        "{:>8.0} ops/s  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  ({} ops, {} errors",
        p.ops_per_sec(),
        p.quantile_us(0.50) / 1000.0,
        p.quantile_us(0.99) / 1000.0,
        p.max_us() / 1000.0,
        p.ops,
        p.errors,
    );
    if p.region_errors > 0 {
        let _ = write!(s, ", {} region errors retried", p.region_errors);
    }
    if p.not_found > 0 {
        let _ = write!(s, ", {} NOT FOUND", p.not_found);
    }
    s.push(')');
    if let Some(e) = &p.first_error {
        let _ = write!(s, " first error: {e}");
    }
    if let Some(e) = &p.first_region_error {
        let _ = write!(s, " first region error: {e}");
    }
    s
}

fn persist_line(p: &PersistStats, secs: f64) -> String {
    format!(
        "{:.1} entries, {:.2} regions per fsync batch; {:.2} ms mean persist; {:.0} batches/s",
        p.mean_entries(),
        p.mean_regions(),
        p.mean_duration_ms(),
        p.batches() / secs.max(1e-9),
    )
}

impl Report {
    /// The parameters, one line.
    pub fn params_line(&self) -> String {
        let p = &self.params;
        format!(
            "{}; {REPLICAS} stores, {REPLICAS} replicas, 1 region; {} keys, {} B values, \
             concurrency {} over {} connection(s) per store; {} s phases, {} run(s); \
             reference {}; seed {}",
            self.mode,
            p.keys,
            p.value_size,
            p.concurrency,
            p.connections,
            p.duration,
            p.runs,
            if p.reference { "on" } else { "off" },
            p.seed
        )
    }

    fn medians(&self, f: impl Fn(&RunResult) -> Option<f64>) -> Option<f64> {
        let v: Vec<f64> = self.runs.iter().filter_map(f).collect();
        (!v.is_empty()).then(|| median(v))
    }

    /// The human-readable summary.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "store-bench: {}", self.params_line());
        let _ = writeln!(
            s,
            "  cluster ready in {:.1} s; preload {} puts in {:.1} s ({:.0}/s, {} errors)",
            self.ready_secs,
            self.preload.ops,
            self.preload.elapsed.as_secs_f64(),
            self.preload.ops_per_sec(),
            self.preload.errors
        );
        for (i, r) in self.runs.iter().enumerate() {
            let secs = r.persist_secs;
            let _ = writeln!(s, "  run {}:", i + 1);
            let _ = writeln!(s, "    write      {}", phase_line(&r.write));
            let _ = writeln!(s, "    read       {}", phase_line(&r.read));
            let _ = writeln!(
                s,
                "    fsync      leader (store #{}{}): {}",
                r.leader_store,
                if r.leader_changed {
                    ", leader moved"
                } else {
                    ""
                },
                persist_line(&r.persist_leader, secs)
            );
            let _ = writeln!(
                s,
                "               followers: {}",
                persist_line(&r.persist_followers, secs)
            );
            if let Some(reference) = &r.reference {
                let _ = writeln!(s, "    reference  {}", phase_line(reference));
                let _ = writeln!(
                    s,
                    "    cluster writes / reference: {:.3}",
                    r.ratio().unwrap_or(0.0)
                );
            }
        }
        let m = |f: &dyn Fn(&RunResult) -> Option<f64>| self.medians(f).unwrap_or(0.0);
        let _ = writeln!(s, "  median of {} run(s):", self.runs.len());
        let _ = writeln!(
            s,
            "    write      {:.0} ops/s, p50 {:.2} ms, p99 {:.2} ms",
            m(&|r| Some(r.write.ops_per_sec())),
            m(&|r| Some(r.write.quantile_us(0.5) / 1000.0)),
            m(&|r| Some(r.write.quantile_us(0.99) / 1000.0)),
        );
        let _ = writeln!(
            s,
            "    read       {:.0} ops/s, p50 {:.2} ms, p99 {:.2} ms",
            m(&|r| Some(r.read.ops_per_sec())),
            m(&|r| Some(r.read.quantile_us(0.5) / 1000.0)),
            m(&|r| Some(r.read.quantile_us(0.99) / 1000.0)),
        );
        let _ = writeln!(
            s,
            "    fsync      leader: {:.1} entries, {:.2} regions per batch, {:.2} ms mean persist",
            m(&|r| Some(r.persist_leader.mean_entries())),
            m(&|r| Some(r.persist_leader.mean_regions())),
            m(&|r| Some(r.persist_leader.mean_duration_ms())),
        );
        if self.params.reference {
            let _ = writeln!(
                s,
                "    reference  {:.0} synced puts/s, p99 {:.2} ms; cluster writes / reference = {:.3}",
                m(&|r| r.reference.as_ref().map(|x| x.ops_per_sec())),
                m(&|r| r.reference.as_ref().map(|x| x.quantile_us(0.99) / 1000.0)),
                m(&|r| r.ratio()),
            );
        }
        let errors: u64 = self
            .runs
            .iter()
            .map(|r| r.write.errors + r.read.errors)
            .sum();
        let region_errors: u64 = self
            .runs
            .iter()
            .map(|r| r.write.region_errors + r.read.region_errors)
            .sum();
        let _ = writeln!(
            s,
            "  errors: {errors}; region errors retried: {region_errors}; routing refreshes: {}",
            self.refreshes
        );
        for p in &self.process_problems {
            let _ = writeln!(s, "  PROBLEM: {p}");
        }
        s
    }

    /// The results as one JSON object.
    pub fn json(&self) -> Value {
        let p = &self.params;
        let runs: Vec<Value> = self
            .runs
            .iter()
            .map(|r| {
                json!({
                    "write": phase_json(&r.write),
                    "read": phase_json(&r.read),
                    "fsync_leader": persist_json(&r.persist_leader, r.persist_secs),
                    "fsync_followers": persist_json(&r.persist_followers, r.persist_secs),
                    "leader_store": r.leader_store,
                    "leader_changed": r.leader_changed,
                    "reference": r.reference.as_ref().map(phase_json),
                    "write_ratio_to_reference": r.ratio(),
                })
            })
            .collect();
        let m = |f: &dyn Fn(&RunResult) -> Option<f64>| self.medians(f);
        json!({
            "bench": "store-bench",
            "mode": self.mode,
            "stores": REPLICAS,
            "replicas": REPLICAS,
            "keys": p.keys,
            "value_size": p.value_size,
            "concurrency": p.concurrency,
            "connections": p.connections,
            "duration_s": p.duration,
            "runs_requested": p.runs,
            "seed": p.seed,
            "ready_s": self.ready_secs,
            "preload": phase_json(&self.preload),
            "runs": runs,
            "median": {
                "write_ops_per_sec": m(&|r| Some(r.write.ops_per_sec())),
                "write_p50_us": m(&|r| Some(r.write.quantile_us(0.5))),
                "write_p99_us": m(&|r| Some(r.write.quantile_us(0.99))),
                "read_ops_per_sec": m(&|r| Some(r.read.ops_per_sec())),
                "read_p50_us": m(&|r| Some(r.read.quantile_us(0.5))),
                "read_p99_us": m(&|r| Some(r.read.quantile_us(0.99))),
                "fsync_entries_per_batch": m(&|r| Some(r.persist_leader.mean_entries())),
                "fsync_regions_per_batch": m(&|r| Some(r.persist_leader.mean_regions())),
                "persist_mean_ms": m(&|r| Some(r.persist_leader.mean_duration_ms())),
                "reference_ops_per_sec": m(&|r| r.reference.as_ref().map(|x| x.ops_per_sec())),
                "write_ratio_to_reference": m(&|r| r.ratio()),
            },
            "routing_refreshes": self.refreshes,
            "process_problems": self.process_problems,
        })
    }
}

fn phase_json(p: &PhaseResult) -> Value {
    json!({
        "ops": p.ops,
        "elapsed_s": p.elapsed.as_secs_f64(),
        "ops_per_sec": p.ops_per_sec(),
        "p50_us": p.quantile_us(0.5),
        "p99_us": p.quantile_us(0.99),
        "p999_us": p.quantile_us(0.999),
        "max_us": p.max_us(),
        "errors": p.errors,
        "region_errors": p.region_errors,
        "not_found": p.not_found,
        "first_error": p.first_error,
        "first_region_error": p.first_region_error,
    })
}

fn persist_json(p: &PersistStats, secs: f64) -> Value {
    json!({
        "batches": p.batches(),
        "batches_per_sec": p.batches() / secs.max(1e-9),
        "entries_per_batch": p.mean_entries(),
        "regions_per_batch": p.mean_regions(),
        "persist_mean_ms": p.mean_duration_ms(),
        "entries": p.entries_sum,
    })
}
