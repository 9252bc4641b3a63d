//! The live progress line: once a second on stderr, the elapsed time, the
//! throughput of the last second, the p99 so far and the errors so far —
//! so that someone watching a ten-minute run sees it working.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::stats::Stats;

/// Prints a progress line every second until dropped.
pub struct Progress {
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    /// Starts printing `label`'s progress from `stats`.
    pub fn start(label: String, stats: Arc<Stats>) -> Progress {
        let task = tokio::spawn(async move {
            let start = Instant::now();
            let mut tick = tokio::time::interval_at(
                tokio::time::Instant::now() + Duration::from_secs(1),
                Duration::from_secs(1),
            );
            let mut last = (start, 0u64);
            loop {
                tick.tick().await;
                let now = Instant::now();
                let ops = stats.ops();
                let rate = (ops - last.1) as f64 / (now - last.0).as_secs_f64().max(1e-9);
                last = (now, ops);
                eprintln!(
                    "{}",
                    line(
                        &label,
                        now - start,
                        rate,
                        stats.p99_us(),
                        ops,
                        stats.errors()
                    )
                );
            }
        });
        Progress { task }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One progress line.
fn line(label: &str, elapsed: Duration, rate: f64, p99_us: u64, ops: u64, errors: u64) -> String {
    format!(
        "{label} {:>5} s  {:>8.0} ops/s  p99 {:>7.2} ms  {ops} ops  {errors} errors",
        elapsed.as_secs(),
        rate,
        p99_us as f64 / 1000.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_says_time_rate_p99_and_errors() {
        let l = line("[a]", Duration::from_secs(12), 3456.4, 4100, 41_000, 2);
        assert_eq!(
            l,
            "[a]    12 s      3456 ops/s  p99    4.10 ms  41000 ops  2 errors"
        );
    }
}
