//! The final report: per kind of operation its count, ops/s and latency
//! percentiles, errors by class; what the stores' metrics said about the
//! run; and the RocksDB reference when measured. A table for people, one
//! JSON object for scripts.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{json, Value};

use super::stats::KindSummary;
use crate::cli::Summary;

/// What the stores' `/metrics` said about the run (deltas over it,
/// summed over every store).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StoreFigures {
    /// Stores scraped.
    pub stores: usize,
    /// Log writes (each one fsync).
    pub fsyncs: f64,
    /// Log entries per fsync.
    pub entries_per_fsync: f64,
    /// Regions per fsync.
    pub regions_per_fsync: f64,
    /// Mean time of a log write, fsync included, ms.
    pub fsync_ms: f64,
    /// CPU seconds the stores used, together.
    pub cpu_secs: f64,
    /// Store CPU per successful operation, µs (all replicas together).
    pub cpu_us_per_op: f64,
}

/// The RocksDB reference, measured in the same run.
#[derive(Clone, Debug, PartialEq)]
pub struct ReferenceFigures {
    /// Synced puts per second.
    pub ops_per_sec: f64,
    /// Its p99, ms.
    pub p99_ms: f64,
    /// Concurrent writers.
    pub writers: usize,
}

/// A whole run's figures.
#[derive(Clone, Debug)]
pub struct Report {
    /// `load`, `a`… or `custom`.
    pub workload: String,
    /// The mix, as `read=0.5,update=0.5`.
    pub mix: String,
    /// The key distribution.
    pub distribution: String,
    /// Records in the key space at the start.
    pub records: u64,
    /// Concurrent tasks.
    pub concurrency: usize,
    /// Bytes per value.
    pub value_size: usize,
    /// The target rate, if any.
    pub target: Option<f64>,
    /// How long the run took.
    pub elapsed: Duration,
    /// Per kind, in report order (kinds that ran only).
    pub kinds: Vec<KindSummary>,
    /// From the stores' metrics, when they could be read.
    pub stores: Option<StoreFigures>,
    /// The RocksDB reference, when asked for.
    pub reference: Option<ReferenceFigures>,
    /// The cluster the run was against.
    pub cluster: String,
}

impl Report {
    /// Successful operations of every kind.
    pub fn ops(&self) -> u64 {
        self.kinds.iter().map(|k| k.count).sum()
    }

    /// Failed operations of every kind.
    pub fn errors(&self) -> u64 {
        self.kinds
            .iter()
            .map(|k| k.errors.values().sum::<u64>())
            .sum()
    }

    /// Successful operations per second.
    pub fn ops_per_sec(&self) -> f64 {
        self.ops() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The write throughput (inserts and updates) as a fraction of the
    /// reference's synced puts.
    pub fn write_ratio(&self) -> Option<f64> {
        let reference = self.reference.as_ref()?;
        let writes: f64 = self
            .kinds
            .iter()
            .filter(|k| k.kind.is_write())
            .map(|k| k.ops_per_sec)
            .sum();
        (writes > 0.0).then(|| writes / reference.ops_per_sec.max(1e-9))
    }
}

impl Summary for Report {
    fn summary(&self) -> String {
        let mut s = String::new();
        let target = self
            .target
            .map_or(String::new(), |t| format!(", target {t:.0} ops/s"));
        let _ = writeln!(
            s,
            "workload {} ({}, {}): {} records, {}-byte values, concurrency {}{target}, {:.1} s, on {}",
            self.workload,
            self.mix,
            self.distribution,
            self.records,
            self.value_size,
            self.concurrency,
            self.elapsed.as_secs_f64(),
            self.cluster
        );
        let _ = writeln!(
            s,
            "{:<8} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}  errors",
            "op", "count", "ops/s", "mean ms", "p50", "p95", "p99", "p99.9", "max"
        );
        for k in &self.kinds {
            let errors: Vec<String> = k.errors.iter().map(|(c, n)| format!("{c} {n}")).collect();
            let _ = writeln!(
                s,
                "{:<8} {:>9} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}  {}",
                k.kind.name(),
                k.count,
                k.ops_per_sec,
                k.mean_ms,
                k.p50_ms,
                k.p95_ms,
                k.p99_ms,
                k.p999_ms,
                k.max_ms,
                if errors.is_empty() {
                    "-".into()
                } else {
                    errors.join(", ")
                }
            );
        }
        let _ = writeln!(
            s,
            "total    {:>9} {:>9.0} ops/s, {} errors",
            self.ops(),
            self.ops_per_sec(),
            self.errors()
        );
        for k in &self.kinds {
            if let Some(first) = &k.first_error {
                let _ = writeln!(s, "first {} error: {first}", k.kind.name());
            }
        }
        if let Some(st) = &self.stores {
            let _ = writeln!(
                s,
                "stores ({}): {:.0} fsyncs, {:.1} entries and {:.2} regions per fsync, {:.2} ms each; \
                 {:.1} CPU s, {:.0} µs CPU per op",
                st.stores,
                st.fsyncs,
                st.entries_per_fsync,
                st.regions_per_fsync,
                st.fsync_ms,
                st.cpu_secs,
                st.cpu_us_per_op
            );
        }
        if let Some(r) = &self.reference {
            let ratio = self.write_ratio().map_or(String::new(), |x| {
                format!("; writes here = {:.1} % of it", 100.0 * x)
            });
            let _ = writeln!(
                s,
                "reference RocksDB ({} writers, synced): {:.0} puts/s, p99 {:.2} ms{ratio}",
                r.writers, r.ops_per_sec, r.p99_ms
            );
        }
        s
    }

    fn json(&self) -> String {
        let kinds: serde_json::Map<String, Value> = self
            .kinds
            .iter()
            .map(|k| {
                (
                    k.kind.name().to_string(),
                    json!({
                        "count": k.count,
                        "ops_per_sec": k.ops_per_sec,
                        "mean_ms": k.mean_ms,
                        "p50_ms": k.p50_ms,
                        "p95_ms": k.p95_ms,
                        "p99_ms": k.p99_ms,
                        "p999_ms": k.p999_ms,
                        "max_ms": k.max_ms,
                        "errors": k.errors,
                    }),
                )
            })
            .collect();
        let stores = self.stores.as_ref().map(|st| {
            json!({
                "stores": st.stores,
                "fsyncs": st.fsyncs,
                "entries_per_fsync": st.entries_per_fsync,
                "regions_per_fsync": st.regions_per_fsync,
                "fsync_ms": st.fsync_ms,
                "cpu_secs": st.cpu_secs,
                "cpu_us_per_op": st.cpu_us_per_op,
            })
        });
        let reference = self.reference.as_ref().map(|r| {
            json!({
                "ops_per_sec": r.ops_per_sec,
                "p99_ms": r.p99_ms,
                "writers": r.writers,
                "write_ratio": self.write_ratio(),
            })
        });
        let v = json!({
            "workload": self.workload,
            "mix": self.mix,
            "distribution": self.distribution,
            "records": self.records,
            "concurrency": self.concurrency,
            "value_size": self.value_size,
            "target": self.target,
            "cluster": self.cluster,
            "elapsed_secs": self.elapsed.as_secs_f64(),
            "ops": self.ops(),
            "ops_per_sec": self.ops_per_sec(),
            "errors": self.errors(),
            "operations": kinds,
            "stores": stores,
            "reference": reference,
        });
        v.to_string()
    }
}
