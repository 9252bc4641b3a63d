//! The routing clients: `concurrency` tasks, each issuing unary
//! `GetRegion` calls for random keys back to back (a closed loop), with
//! every call's latency recorded after a warm-up.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use flotilla_proto::bytes::Bytes;
use flotilla_proto::pdpb;
use hdrhistogram::Histogram;

use super::client::{check, Pd};
use super::layout::Layout;
use super::rng::XorShift;

/// Longest latency the histogram holds (longer calls are clamped to it).
const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// What one routing phase measured.
pub struct RouteResult {
    /// Concurrent clients.
    pub concurrency: usize,
    /// Calls completed in the measured window.
    pub ops: u64,
    /// The measured window.
    pub elapsed: Duration,
    /// Latency of each call, in nanoseconds.
    pub latency_ns: Histogram<u64>,
    /// Calls that failed or answered with the wrong region.
    pub errors: u64,
    /// The first failure, if any.
    pub first_error: Option<String>,
}

impl RouteResult {
    /// Calls per second.
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    /// Latency quantile `q` in microseconds.
    pub fn quantile_us(&self, q: f64) -> f64 {
        self.latency_ns.value_at_quantile(q) as f64 / 1000.0
    }

    /// Longest latency in microseconds.
    pub fn max_us(&self) -> f64 {
        self.latency_ns.max() as f64 / 1000.0
    }
}

/// Runs `concurrency` clients over `connections` gRPC connections for
/// `warmup + duration`, recording latencies during `duration` only.
pub async fn run(
    pd: &Pd,
    layout: &Layout,
    concurrency: usize,
    connections: usize,
    warmup: Duration,
    duration: Duration,
    seed: u64,
) -> anyhow::Result<RouteResult> {
    let mut clients = Vec::new();
    for _ in 0..connections.clamp(1, concurrency.max(1)) {
        clients.push(pd.own_client().await?);
    }
    // Each worker routes keys of regions it knows the answer for.
    let expected: std::sync::Arc<Vec<u64>> = std::sync::Arc::new(
        (0..layout.regions.len())
            .map(|i| layout.region_id(i))
            .collect(),
    );
    let start = Instant::now() + warmup;
    let end = start + duration;
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let mut client = clients[w % clients.len()].clone();
        let header = pd.header();
        let expected = expected.clone();
        let mut rng = XorShift::new(seed ^ 0x726f_7574_6500_0000 ^ w as u64);
        workers.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_NS, 3)
                .expect("valid histogram bounds");
            let (mut errors, mut first_error) = (0u64, None);
            loop {
                let i = rng.below(expected.len() as u64) as usize;
                // Half the keys are a region's start key, half fall inside.
                let key = match rng.below(2) {
                    0 => format!("k{i:08}"),
                    _ => format!("k{i:08}{:04}", rng.below(10_000)),
                };
                let sent = Instant::now();
                let result = client
                    .get_region(pdpb::GetRegionRequest {
                        header,
                        region_key: Bytes::from(key),
                    })
                    .await;
                let done = Instant::now();
                if done >= end {
                    break;
                }
                if sent < start {
                    continue;
                }
                let failure = match result {
                    Err(status) => Some(format!("GetRegion: {status}")),
                    Ok(resp) => {
                        let resp = resp.into_inner();
                        match check(resp.header.as_ref()) {
                            Err(e) => Some(format!("GetRegion: {e}")),
                            Ok(()) => {
                                let got = resp.region.and_then(|r| r.region).map(|r| r.id);
                                (got != Some(expected[i])).then(|| {
                                    format!("key of region {} routed to {got:?}", expected[i])
                                })
                            }
                        }
                    }
                };
                if let Some(f) = failure {
                    errors += 1;
                    first_error.get_or_insert(f);
                    continue;
                }
                let ns = (done - sent).as_nanos().min(u128::from(MAX_LATENCY_NS)) as u64;
                hist.record(ns.max(1)).expect("value within bounds");
            }
            (hist, errors, first_error)
        }));
    }
    let mut result = RouteResult {
        concurrency,
        ops: 0,
        elapsed: duration,
        latency_ns: Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
            .expect("valid histogram bounds"),
        errors: 0,
        first_error: None,
    };
    for worker in workers {
        let (hist, errors, first_error) = worker.await.context("routing client panicked")?;
        result.latency_ns.add(&hist).expect("same bounds");
        result.errors += errors;
        if result.first_error.is_none() {
            result.first_error = first_error;
        }
    }
    result.ops = result.latency_ns.len();
    Ok(result)
}
