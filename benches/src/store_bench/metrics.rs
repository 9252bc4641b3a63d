//! The store's own account of its log writes: the
//! `flotilla_store_log_persist_*` histograms of `/metrics`, read before
//! and after a phase.

use crate::pd_scale::client::sample;

use crate::http;

/// Log entries per round's write (one fsync).
pub const ENTRIES: &str = "flotilla_store_log_persist_batch_entries";
/// Regions per round's write.
pub const REGIONS: &str = "flotilla_store_log_persist_batch_regions";
/// Duration of a round's write, fsync included.
pub const DURATION: &str = "flotilla_store_log_persist_duration_seconds";

/// Sums and counts of the persist histograms (or their deltas).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PersistStats {
    /// Log entries written, summed over batches.
    pub entries_sum: f64,
    /// Batches counted by the entries histogram.
    pub entries_count: f64,
    /// Regions written, summed over batches.
    pub regions_sum: f64,
    /// Batches counted by the regions histogram.
    pub regions_count: f64,
    /// Seconds spent persisting, summed over batches.
    pub duration_sum: f64,
    /// Batches counted by the duration histogram.
    pub duration_count: f64,
}

impl PersistStats {
    /// The counters in one `/metrics` text (absent series count as 0).
    pub fn parse(text: &str) -> PersistStats {
        let get =
            |name: &str, suffix: &str| sample(text, &format!("{name}{suffix}")).unwrap_or(0.0);
        PersistStats {
            entries_sum: get(ENTRIES, "_sum"),
            entries_count: get(ENTRIES, "_count"),
            regions_sum: get(REGIONS, "_sum"),
            regions_count: get(REGIONS, "_count"),
            duration_sum: get(DURATION, "_sum"),
            duration_count: get(DURATION, "_count"),
        }
    }

    /// The counters of the store whose status address is `addr`.
    pub async fn scrape(addr: &str) -> anyhow::Result<PersistStats> {
        Ok(PersistStats::parse(&http::get(addr, "/metrics").await?))
    }

    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &PersistStats) -> PersistStats {
        PersistStats {
            entries_sum: self.entries_sum - earlier.entries_sum,
            entries_count: self.entries_count - earlier.entries_count,
            regions_sum: self.regions_sum - earlier.regions_sum,
            regions_count: self.regions_count - earlier.regions_count,
            duration_sum: self.duration_sum - earlier.duration_sum,
            duration_count: self.duration_count - earlier.duration_count,
        }
    }

    /// Both added up (several stores).
    pub fn plus(&self, other: &PersistStats) -> PersistStats {
        PersistStats {
            entries_sum: self.entries_sum + other.entries_sum,
            entries_count: self.entries_count + other.entries_count,
            regions_sum: self.regions_sum + other.regions_sum,
            regions_count: self.regions_count + other.regions_count,
            duration_sum: self.duration_sum + other.duration_sum,
            duration_count: self.duration_count + other.duration_count,
        }
    }

    /// Persist batches (log writes) counted.
    pub fn batches(&self) -> f64 {
        self.entries_count
    }

    /// Mean log entries per batch.
    pub fn mean_entries(&self) -> f64 {
        ratio(self.entries_sum, self.entries_count)
    }

    /// Mean regions per batch.
    pub fn mean_regions(&self) -> f64 {
        ratio(self.regions_sum, self.regions_count)
    }

    /// Mean duration of a batch's write, in milliseconds.
    pub fn mean_duration_ms(&self) -> f64 {
        ratio(self.duration_sum, self.duration_count) * 1000.0
    }
}

fn ratio(sum: f64, count: f64) -> f64 {
    if count > 0.0 {
        sum / count
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_subtracts() {
        let before = PersistStats::parse(
            "# HELP x\n\
             flotilla_store_log_persist_batch_entries_bucket{le=\"1\"} 3\n\
             flotilla_store_log_persist_batch_entries_sum 10\n\
             flotilla_store_log_persist_batch_entries_count 5\n\
             flotilla_store_log_persist_batch_regions_sum 5\n\
             flotilla_store_log_persist_batch_regions_count 5\n\
             flotilla_store_log_persist_duration_seconds_sum 0.01\n\
             flotilla_store_log_persist_duration_seconds_count 5\n",
        );
        let after = PersistStats {
            entries_sum: 110.0,
            entries_count: 15.0,
            regions_sum: 15.0,
            regions_count: 15.0,
            duration_sum: 0.03,
            duration_count: 15.0,
        };
        let d = after.since(&before);
        assert_eq!(d.batches(), 10.0);
        assert_eq!(d.mean_entries(), 10.0);
        assert_eq!(d.mean_regions(), 1.0);
        assert!((d.mean_duration_ms() - 2.0).abs() < 1e-9);
        assert_eq!(PersistStats::default().mean_entries(), 0.0);
    }
}
