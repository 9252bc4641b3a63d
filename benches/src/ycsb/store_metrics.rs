//! The stores' own account of a run, from their `/metrics` read before
//! and after it: fsync batches (`flotilla_store_log_persist_*`) and CPU
//! time (`process_cpu_seconds_total`), summed over every store.

use crate::http;
use crate::pd_scale::client::sample;
use crate::store_bench::metrics::PersistStats;

use super::report::StoreFigures;

/// One reading of every store.
#[derive(Clone, Debug, Default)]
pub struct Reading {
    persist: PersistStats,
    cpu_secs: f64,
    stores: usize,
}

impl Reading {
    /// Reads every store at `addrs`; stores that do not answer are left
    /// out (and said so on stderr).
    pub async fn take(addrs: &[String]) -> Reading {
        let mut r = Reading::default();
        for addr in addrs {
            match http::get(addr, "/metrics").await {
                Ok(text) => r.add(&text),
                Err(e) => eprintln!("flotilla-ycsb: reading {addr}/metrics: {e:#}"),
            }
        }
        r
    }

    fn add(&mut self, text: &str) {
        self.persist = self.persist.plus(&PersistStats::parse(text));
        self.cpu_secs += sample(text, "process_cpu_seconds_total").unwrap_or(0.0);
        self.stores += 1;
    }

    /// What happened from `before` to this reading, per `ops` operations.
    pub fn since(&self, before: &Reading, ops: u64) -> StoreFigures {
        let d = self.persist.since(&before.persist);
        let cpu_secs = self.cpu_secs - before.cpu_secs;
        StoreFigures {
            stores: self.stores.min(before.stores),
            fsyncs: d.batches(),
            entries_per_fsync: d.mean_entries(),
            regions_per_fsync: d.mean_regions(),
            fsync_ms: d.mean_duration_ms(),
            cpu_secs,
            cpu_us_per_op: cpu_secs * 1e6 / ops.max(1) as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(entries: u64, batches: u64, cpu: f64) -> String {
        format!(
            "flotilla_store_log_persist_batch_entries_sum {entries}\n\
             flotilla_store_log_persist_batch_entries_count {batches}\n\
             flotilla_store_log_persist_batch_regions_sum {batches}\n\
             flotilla_store_log_persist_batch_regions_count {batches}\n\
             flotilla_store_log_persist_duration_seconds_sum 0\n\
             flotilla_store_log_persist_duration_seconds_count {batches}\n\
             process_cpu_seconds_total {cpu}\n"
        )
    }

    #[test]
    fn sums_stores_and_divides_by_operations() {
        let mut before = Reading::default();
        before.add(&text(10, 2, 1.0));
        before.add(&text(10, 2, 1.0));
        let mut after = Reading::default();
        after.add(&text(410, 42, 2.0));
        after.add(&text(410, 42, 3.5));
        let f = after.since(&before, 1000);
        assert_eq!(f.stores, 2);
        assert_eq!(f.fsyncs, 80.0);
        assert_eq!(f.entries_per_fsync, 10.0);
        assert!((f.cpu_secs - 3.5).abs() < 1e-9);
        assert!((f.cpu_us_per_op - 3500.0).abs() < 1e-6);
    }
}
