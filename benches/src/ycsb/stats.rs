//! What the run measured, shared by every task: per kind of operation a
//! latency histogram (HdrHistogram, microseconds) and errors by kind, plus
//! an all-operations histogram for the live progress line.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use parking_lot::Mutex;

use super::workload::OpKind;

/// Longest latency recorded (longer ones are clamped to it), µs.
const MAX_LATENCY_US: u64 = 120_000_000;

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds")
}

/// One kind's figures.
struct KindStats {
    latency_us: Mutex<Histogram<u64>>,
    errors: Mutex<BTreeMap<&'static str, u64>>,
    error_count: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl KindStats {
    fn new() -> KindStats {
        KindStats {
            latency_us: Mutex::new(histogram()),
            errors: Mutex::new(BTreeMap::new()),
            error_count: AtomicU64::new(0),
            first_error: Mutex::new(None),
        }
    }
}

/// The shared tally of a run.
pub struct Stats {
    kinds: Vec<KindStats>,
    all_us: Mutex<Histogram<u64>>,
    ops: AtomicU64,
    errors: AtomicU64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

impl Stats {
    /// Nothing recorded yet.
    pub fn new() -> Stats {
        Stats {
            kinds: OpKind::ALL.iter().map(|_| KindStats::new()).collect(),
            all_us: Mutex::new(histogram()),
            ops: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    /// A `kind` operation that succeeded after `latency`.
    pub fn ok(&self, kind: OpKind, latency: Duration) {
        let us = (latency.as_micros() as u64).clamp(1, MAX_LATENCY_US);
        self.kinds[kind.index()]
            .latency_us
            .lock()
            .saturating_record(us);
        self.all_us.lock().saturating_record(us);
        self.ops.fetch_add(1, Ordering::Relaxed);
    }

    /// A `kind` operation that failed with an error of class `class`
    /// (`timeout`, `not-found`, …); `detail` is kept for the first one.
    pub fn error(&self, kind: OpKind, class: &'static str, detail: impl FnOnce() -> String) {
        let k = &self.kinds[kind.index()];
        *k.errors.lock().entry(class).or_insert(0) += 1;
        if k.error_count.fetch_add(1, Ordering::Relaxed) == 0 {
            *k.first_error.lock() = Some(detail());
        }
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Operations that succeeded so far.
    pub fn ops(&self) -> u64 {
        self.ops.load(Ordering::Relaxed)
    }

    /// Operations that failed so far.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// The 99th percentile of every successful operation so far, µs.
    pub fn p99_us(&self) -> u64 {
        self.all_us.lock().value_at_quantile(0.99)
    }

    /// The final figures of `kind`, over a run of `elapsed`; `None` if it
    /// never ran.
    pub fn summary(&self, kind: OpKind, elapsed: Duration) -> Option<KindSummary> {
        let k = &self.kinds[kind.index()];
        let h = k.latency_us.lock();
        let errors = k.errors.lock().clone();
        if h.is_empty() && errors.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Some(KindSummary {
            kind,
            count: h.len(),
            ops_per_sec: h.len() as f64 / elapsed.as_secs_f64().max(1e-9),
            mean_ms: h.mean() / 1000.0,
            p50_ms: ms(h.value_at_quantile(0.50)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            errors,
            first_error: k.first_error.lock().clone(),
        })
    }
}

/// One kind of operation's final figures.
#[derive(Clone, Debug, PartialEq)]
pub struct KindSummary {
    /// The kind.
    pub kind: OpKind,
    /// Successful operations.
    pub count: u64,
    /// Successful operations per second of the run.
    pub ops_per_sec: f64,
    /// Mean latency, ms.
    pub mean_ms: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// 99.9th percentile, ms.
    pub p999_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
    /// Failed operations by class.
    pub errors: BTreeMap<&'static str, u64>,
    /// The first failure's message.
    pub first_error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_count_latencies_and_errors_per_kind() {
        let s = Stats::new();
        for ms in 1..=100 {
            s.ok(OpKind::Read, Duration::from_millis(ms));
        }
        s.ok(OpKind::Update, Duration::from_millis(5));
        s.error(OpKind::Update, "timeout", || "deadline 10s".into());
        s.error(OpKind::Update, "timeout", || {
            unreachable!("only the first is kept")
        });
        assert_eq!((s.ops(), s.errors()), (101, 2));
        let read = s.summary(OpKind::Read, Duration::from_secs(10)).unwrap();
        assert_eq!(read.count, 100);
        assert!((read.ops_per_sec - 10.0).abs() < 1e-9);
        assert!((read.p50_ms - 50.0).abs() < 0.1, "{}", read.p50_ms);
        assert!((read.p99_ms - 99.0).abs() < 0.1, "{}", read.p99_ms);
        assert!((read.max_ms - 100.0).abs() < 0.1);
        let update = s.summary(OpKind::Update, Duration::from_secs(10)).unwrap();
        assert_eq!(update.errors.get("timeout"), Some(&2));
        assert_eq!(update.first_error.as_deref(), Some("deadline 10s"));
        assert!(s.summary(OpKind::Scan, Duration::from_secs(1)).is_none());
    }
}
