//! A throughput check: concurrent tasks each run a loop of `put`s, then a
//! loop of `get`s, of 1 KiB values through one shared client; prints
//! operations per second and latency percentiles for each phase.
//!
//! ```sh
//! ./scripts/playground            # in one terminal
//! cargo run --release -p flotilla-client --example put_get_loop -- \
//!     --pd 127.0.0.1:2379 --tasks 64 --seconds 10
//! ```
//!
//! `flotilla-ycsb` (in `benches/`) is the full load tool; this is the
//! smallest program that shows what the SDK sustains.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flotilla_client::{Config, RawClient};

/// Runs concurrent loops of puts, then of gets, through one client and
/// prints ops/s and latency percentiles for each.
#[derive(clap::Parser)]
struct Options {
    /// PD endpoints, comma-separated (`host:port`)
    #[arg(long, default_value = "127.0.0.1:2379")]
    pd: String,
    /// Concurrent tasks sharing the one client
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    tasks: u64,
    /// Length of each phase (puts, then gets)
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Bytes per value
    #[arg(long, default_value_t = 1024)]
    value_size: usize,
    /// Keys the tasks cycle through
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    keys: u64,
}

/// What one phase measured.
struct Phase {
    ops: usize,
    errors: usize,
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Phase {
    fn report(&mut self, name: &str) {
        if self.latencies.is_empty() {
            println!("{name}: no operation succeeded ({} errors)", self.errors);
            return;
        }
        self.latencies.sort();
        let pct = |p: f64| {
            let i = ((self.latencies.len() as f64 * p) as usize).min(self.latencies.len() - 1);
            self.latencies[i].as_secs_f64() * 1e3
        };
        println!(
            "{name}: {:.0} ops/s ({} ops, {} errors in {:.1} s), p50 {:.2} ms, p99 {:.2} ms",
            self.ops as f64 / self.elapsed.as_secs_f64(),
            self.ops,
            self.errors,
            self.elapsed.as_secs_f64(),
            pct(0.50),
            pct(0.99)
        );
    }
}

/// Runs `tasks` loops of `op` for `seconds`.
async fn phase<F, Fut>(o: &Options, client: &RawClient, op: F) -> Phase
where
    F: Fn(RawClient, usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = flotilla_client::Result<()>> + Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let handles: Vec<_> = (0..o.tasks)
        .map(|t| {
            let (client, op, stop, keys) = (client.clone(), op.clone(), stop.clone(), o.keys);
            tokio::spawn(async move {
                let (mut lat, mut errors, mut i) = (Vec::new(), 0, t);
                while !stop.load(Ordering::Relaxed) {
                    let at = Instant::now();
                    match op(client.clone(), (i % keys) as usize).await {
                        Ok(()) => lat.push(at.elapsed()),
                        Err(_) => errors += 1,
                    }
                    i = i
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                }
                (lat, errors)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(o.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut out = Phase {
        ops: 0,
        errors: 0,
        latencies: Vec::new(),
        elapsed: Duration::ZERO,
    };
    for h in handles {
        let (lat, errors) = h.await.expect("task");
        out.ops += lat.len();
        out.errors += errors;
        out.latencies.extend(lat);
    }
    out.elapsed = started.elapsed();
    out
}

fn key(i: usize) -> String {
    format!("loop/{i:08}")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let o = <Options as clap::Parser>::parse();
    let client = RawClient::connect(o.pd.split(','), Config::default()).await?;
    let value = vec![b'v'; o.value_size];
    let mut puts = phase(&o, &client, move |c, i| {
        let value = value.clone();
        async move { c.put(key(i), value).await }
    })
    .await;
    puts.report("put");
    let mut gets = phase(&o, &client, |c, i| async move {
        c.get(key(i)).await.map(|_| ())
    })
    .await;
    gets.report("get");
    Ok(())
}
