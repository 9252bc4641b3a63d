//! A token bucket capping the bandwidth of snapshot sending, shared by
//! every transfer of a store.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// An async token bucket of `bytes_per_sec` tokens a second, holding at
/// most one second's worth. Cheap to clone; clones share the budget, so
/// one limiter caps the sum of all the transfers that use it.
///
/// [`Limiter::consume`] *reserves* its bytes at once, driving the balance
/// negative if need be, then sleeps until the balance would have been paid
/// back. Concurrent callers therefore queue in call order, a request larger
/// than the bucket is served (after a proportionate wait) rather than never,
/// and the long-run rate never exceeds `bytes_per_sec` (after the first
/// second's burst). A consume that is cancelled while sleeping still counts.
#[derive(Clone, Debug)]
pub struct Limiter {
    /// Zero means unlimited.
    bytes_per_sec: u64,
    bucket: Arc<Mutex<Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    /// Invariant: `tokens <= bytes_per_sec`; negative while requests wait.
    tokens: f64,
    /// When `tokens` was last refilled.
    refilled_at: Instant,
}

impl Limiter {
    /// A limiter of `bytes_per_sec`, starting with a full bucket. Zero
    /// means no limit.
    pub fn new(bytes_per_sec: u64) -> Limiter {
        let bucket = Bucket {
            tokens: bytes_per_sec as f64,
            refilled_at: Instant::now(),
        };
        Limiter {
            bytes_per_sec,
            bucket: Arc::new(Mutex::new(bucket)),
        }
    }

    /// The configured rate; zero means unlimited.
    pub fn bytes_per_sec(&self) -> u64 {
        self.bytes_per_sec
    }

    /// Waits until `n` more bytes may be sent.
    pub async fn consume(&self, n: usize) {
        let wait = self.reserve(n);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Takes `n` tokens; returns how long until the balance is back to zero.
    fn reserve(&self, n: usize) -> Duration {
        if self.bytes_per_sec == 0 || n == 0 {
            return Duration::ZERO;
        }
        let rate = self.bytes_per_sec as f64;
        let mut bucket = self.bucket.lock();
        let now = Instant::now();
        let earned = now.duration_since(bucket.refilled_at).as_secs_f64() * rate;
        bucket.tokens = (bucket.tokens + earned).min(rate) - n as f64;
        bucket.refilled_at = now;
        if bucket.tokens >= 0.0 {
            return Duration::ZERO;
        }
        // Saturates instead of panicking for absurd requests.
        Duration::try_from_secs_f64(-bucket.tokens / rate).unwrap_or(Duration::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `consume(n)` completes on its first poll, i.e. without
    /// sleeping (`timeout` polls the future before looking at the clock).
    async fn is_immediate(limiter: &Limiter, n: usize) -> bool {
        tokio::time::timeout(Duration::ZERO, limiter.consume(n))
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn the_first_second_is_a_burst_and_then_the_rate_holds() {
        let limiter = Limiter::new(20_000);
        let start = std::time::Instant::now();
        assert!(is_immediate(&limiter, 20_000).await);
        limiter.consume(10_000).await;
        // 10,000 bytes at 20,000 B/s: at least half a second. The upper
        // bound only catches a hang.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(450), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
    }

    #[tokio::test]
    async fn clones_across_tasks_share_one_budget() {
        let limiter = Limiter::new(10_000);
        let start = std::time::Instant::now();
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move {
                    for _ in 0..5 {
                        limiter.consume(2_000).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        // 20,000 bytes, 10,000 of them from the full bucket: at least 1s.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
    }

    #[tokio::test]
    async fn zero_rate_is_unlimited() {
        let limiter = Limiter::new(0);
        assert_eq!(limiter.bytes_per_sec(), 0);
        for _ in 0..3 {
            assert!(is_immediate(&limiter, 1 << 30).await);
        }
    }

    #[tokio::test]
    async fn a_huge_request_waits_instead_of_overflowing() {
        let limiter = Limiter::new(1);
        assert!(!is_immediate(&limiter, usize::MAX).await);
        // The debt stays: even a byte now waits.
        assert!(!is_immediate(&limiter, 1).await);
        assert!(is_immediate(&Limiter::new(1), 1).await);
    }
}
