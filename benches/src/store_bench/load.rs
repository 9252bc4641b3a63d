//! The load: closed-loop tasks, each with one `RawPut` or `RawGet` in
//! flight at a time, retrying region errors through the [`Router`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use flotilla_proto::bytes::Bytes;
use flotilla_proto::kvrpcpb::{RawGetRequest, RawPutRequest, RegionError};
use hdrhistogram::Histogram;

use super::route::Router;
use super::Params;
use crate::pd_scale::rng::XorShift;

/// Longest latency the histogram holds (longer calls are clamped to it).
const MAX_LATENCY_NS: u64 = 60_000_000_000;
/// Deadline of one attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts per operation before it counts as an error.
const MAX_ATTEMPTS: u32 = 20;
/// Distinct values each task cycles through.
const VALUES_PER_TASK: usize = 16;

/// Which request the tasks send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `RawPut` of a fresh value.
    Put,
    /// `RawGet`.
    Get,
}

/// What one phase measured.
pub struct PhaseResult {
    /// Concurrent tasks (or threads).
    pub concurrency: usize,
    /// Operations completed in the window.
    pub ops: u64,
    /// The window.
    pub elapsed: Duration,
    /// Latency of each completed operation (retries included), in
    /// nanoseconds.
    pub latency_ns: Histogram<u64>,
    /// Operations that failed (gRPC error, timeout, or still a region
    /// error after every attempt).
    pub errors: u64,
    /// Region errors answered (each one retried).
    pub region_errors: u64,
    /// Gets that found no value (every key was preloaded).
    pub not_found: u64,
    /// The first failure, if any.
    pub first_error: Option<String>,
    /// The first region error, if any.
    pub first_region_error: Option<String>,
}

impl PhaseResult {
    /// An empty result.
    pub fn new(concurrency: usize, elapsed: Duration) -> PhaseResult {
        PhaseResult {
            concurrency,
            ops: 0,
            elapsed,
            latency_ns: histogram(),
            errors: 0,
            region_errors: 0,
            not_found: 0,
            first_error: None,
            first_region_error: None,
        }
    }

    /// Operations per second.
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Latency quantile `q`, in microseconds.
    pub fn quantile_us(&self, q: f64) -> f64 {
        self.latency_ns.value_at_quantile(q) as f64 / 1000.0
    }

    /// Longest latency, in microseconds.
    pub fn max_us(&self) -> f64 {
        self.latency_ns.max() as f64 / 1000.0
    }

    /// Records one completed operation.
    pub fn record(&mut self, latency: Duration) {
        let ns = latency.as_nanos().min(u128::from(MAX_LATENCY_NS)) as u64;
        self.latency_ns.saturating_record(ns.max(1));
        self.ops += 1;
    }

    /// Records one failed operation.
    pub fn fail(&mut self, error: String) {
        self.errors += 1;
        self.first_error.get_or_insert(error);
    }

    /// Adds a task's tally.
    pub fn merge(&mut self, other: PhaseResult) {
        self.latency_ns
            .add(&other.latency_ns)
            .expect("histograms share their bounds");
        self.ops += other.ops;
        self.errors += other.errors;
        self.region_errors += other.region_errors;
        self.not_found += other.not_found;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        if self.first_region_error.is_none() {
            self.first_region_error = other.first_region_error;
        }
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).expect("valid histogram bounds")
}

/// The benchmark's `i`-th key.
pub fn key(i: u64) -> Bytes {
    Bytes::from(format!("bench{i:012}"))
}

/// Distinct pseudo-random values of `size` bytes (incompressible, so the
/// engines cannot shrink them).
pub fn values(size: usize, seed: u64) -> Vec<Bytes> {
    let mut rng = XorShift::new(seed);
    (0..VALUES_PER_TASK)
        .map(|_| {
            let mut v = Vec::with_capacity(size + 8);
            while v.len() < size {
                v.extend_from_slice(&rng.next_u64().to_le_bytes());
            }
            v.truncate(size);
            Bytes::from(v)
        })
        .collect()
}

/// Writes every key once, `--concurrency` tasks each taking a contiguous
/// share.
pub async fn preload(router: &Arc<Router>, params: &Params) -> anyhow::Result<PhaseResult> {
    let started = Instant::now();
    let n = params.keys;
    let tasks = (params.concurrency as u64).min(n).max(1);
    let mut handles = Vec::new();
    for t in 0..tasks {
        let (lo, hi) = (n * t / tasks, n * (t + 1) / tasks);
        let router = router.clone();
        let values = values(params.value_size, params.seed ^ 0x7072_656c ^ t);
        handles.push(tokio::spawn(async move {
            let mut tally = PhaseResult::new(1, Duration::ZERO);
            for i in lo..hi {
                let sent = Instant::now();
                let value = values[(i as usize) % values.len()].clone();
                match execute(&router, Op::Put, key(i), value, &mut tally).await {
                    Ok(_) => tally.record(sent.elapsed()),
                    Err(e) => tally.fail(e),
                }
            }
            tally
        }));
    }
    let mut result = PhaseResult::new(params.concurrency, Duration::ZERO);
    for h in handles {
        result.merge(h.await.context("preload task panicked")?);
    }
    result.elapsed = started.elapsed();
    Ok(result)
}

/// Runs `op` from `--concurrency` tasks for `window`, each on random keys
/// among the preloaded ones. Operations completing after the window are
/// not counted.
pub async fn run(
    router: &Arc<Router>,
    op: Op,
    params: &Params,
    window: Duration,
    run: u64,
) -> anyhow::Result<PhaseResult> {
    let start = Instant::now();
    let end = start + window;
    let mut handles = Vec::new();
    for t in 0..params.concurrency as u64 {
        let router = router.clone();
        let seed = params.seed ^ (run << 40) ^ (t << 8) ^ op as u64;
        let values = values(params.value_size, seed ^ 0x76_616c);
        let keys = params.keys;
        handles.push(tokio::spawn(async move {
            let mut rng = XorShift::new(seed);
            let mut tally = PhaseResult::new(1, window);
            loop {
                let k = key(rng.below(keys));
                let value = values[rng.below(values.len() as u64) as usize].clone();
                let sent = Instant::now();
                let result = execute(&router, op, k, value, &mut tally).await;
                let done = Instant::now();
                if done >= end {
                    break;
                }
                match result {
                    Ok(found) => {
                        tally.record(done - sent);
                        if !found {
                            tally.not_found += 1;
                        }
                    }
                    Err(e) => {
                        tally.fail(e);
                        // A dead store answers at once: do not spin.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            tally
        }));
    }
    let mut result = PhaseResult::new(params.concurrency, window);
    for h in handles {
        result.merge(h.await.context("load task panicked")?);
    }
    Ok(result)
}

/// One operation, retried on region errors (after re-learning the
/// leaders). `Ok(found)`: done (`found` is false for a get that found no
/// value).
async fn execute(
    router: &Router,
    op: Op,
    key: Bytes,
    value: Bytes,
    tally: &mut PhaseResult,
) -> Result<bool, String> {
    let mut last = String::new();
    for _ in 0..MAX_ATTEMPTS {
        let Some(mut target) = router.route(&key) else {
            let seen = router.version();
            router
                .refresh(seen)
                .await
                .map_err(|e| format!("no region for the key: {e:#}"))?;
            continue;
        };
        let ctx = Some(target.ctx);
        let answer = match op {
            Op::Put => {
                let req = RawPutRequest {
                    context: ctx,
                    key: key.clone(),
                    value: value.clone(),
                };
                timed(target.client.raw_put(request(req)))
                    .await
                    .map(|r| (r.region_error, true))
            }
            Op::Get => {
                let req = RawGetRequest {
                    context: ctx,
                    key: key.clone(),
                };
                timed(target.client.raw_get(request(req)))
                    .await
                    .map(|r| (r.region_error, !r.not_found))
            }
        };
        let (region_error, found) = match answer {
            Ok(a) => a,
            Err(e) => {
                // The store may be down or no longer lead: look again
                // before the next operation (this one counts as failed;
                // a put's outcome is unknown).
                let _ = router.refresh(target.version).await;
                return Err(format!("store #{}: {e}", target.store));
            }
        };
        let Some(re) = region_error else {
            return Ok(found);
        };
        tally.region_errors += 1;
        last = describe(&re);
        tally
            .first_region_error
            .get_or_insert_with(|| format!("store #{}: {last}", target.store));
        match &re.server_is_busy {
            Some(busy) => {
                let ms = busy.backoff_ms.clamp(1, 1000);
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            None => router
                .refresh(target.version)
                .await
                .map_err(|e| format!("after {last}: {e:#}"))?,
        }
    }
    Err(format!(
        "{MAX_ATTEMPTS} attempts, last region error: {last}"
    ))
}

fn request<T>(msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(ATTEMPT_TIMEOUT);
    r
}

async fn timed<T>(
    call: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, String> {
    match tokio::time::timeout(ATTEMPT_TIMEOUT, call).await {
        Err(_) => Err(format!("no answer within {ATTEMPT_TIMEOUT:?}")),
        Ok(Err(status)) => Err(format!("{:?}: {}", status.code(), status.message())),
        Ok(Ok(resp)) => Ok(resp.into_inner()),
    }
}

/// The kind of a region error, with its message.
fn describe(re: &RegionError) -> String {
    let kind = if re.not_leader.is_some() {
        "NotLeader"
    } else if re.region_not_found.is_some() {
        "RegionNotFound"
    } else if re.epoch_not_match.is_some() {
        "EpochNotMatch"
    } else if re.key_not_in_region.is_some() {
        "KeyNotInRegion"
    } else if re.server_is_busy.is_some() {
        "ServerIsBusy"
    } else if re.stale_command.is_some() {
        "StaleCommand"
    } else if re.raft_entry_too_large.is_some() {
        "RaftEntryTooLarge"
    } else if re.store_not_match.is_some() {
        "StoreNotMatch"
    } else {
        "RegionError"
    };
    format!("{kind}: {}", re.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_have_the_size_and_differ() {
        let v = values(1024, 7);
        assert_eq!(v.len(), VALUES_PER_TASK);
        assert!(v.iter().all(|x| x.len() == 1024));
        assert_ne!(v[0], v[1]);
        assert_eq!(values(3, 1)[0].len(), 3);
    }

    #[test]
    fn tallies_merge() {
        let mut a = PhaseResult::new(2, Duration::from_secs(1));
        let mut b = PhaseResult::new(1, Duration::from_secs(1));
        a.record(Duration::from_micros(100));
        b.record(Duration::from_micros(300));
        b.fail("boom".into());
        a.merge(b);
        assert_eq!((a.ops, a.errors), (2, 1));
        assert_eq!(a.first_error.as_deref(), Some("boom"));
        assert!(a.quantile_us(1.0) >= 299.0);
        assert_eq!(a.ops_per_sec(), 2.0);
    }
}
