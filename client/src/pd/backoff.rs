//! Exponential backoff with jitter, capped, bounded by a deadline.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use tokio::time::Instant;

/// Delays between attempts: `base * 2^n`, capped at `max`, each drawn
/// uniformly from `[d/2, d]` ("equal jitter") so that many clients that
/// lost the same leader do not stampede the next one in lock step, while
/// the delay still grows.
pub(crate) struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
    rng: u64,
}

impl Backoff {
    pub(crate) fn new(base: Duration, max: Duration) -> Backoff {
        // std's RandomState is randomly keyed per process: enough entropy
        // for jitter without a dependency.
        let mut h = RandomState::new().build_hasher();
        h.write_u64(0x5eed);
        Backoff {
            base,
            max: max.max(base),
            attempt: 0,
            rng: h.finish() | 1,
        }
    }

    /// Forgets past failures (after a success).
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The next delay.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let exp = self.base.saturating_mul(1u32 << self.attempt.min(16));
        let cap = exp.min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        // xorshift64
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let half = cap / 2;
        let span = (cap - half).as_nanos() as u64;
        let jitter = if span == 0 { 0 } else { self.rng % (span + 1) };
        half + Duration::from_nanos(jitter)
    }

    /// Sleeps for the next delay, but never past `deadline`. Returns false
    /// when the deadline has passed (the caller should give up).
    pub(crate) async fn wait(&mut self, deadline: Instant) -> bool {
        let until = (Instant::now() + self.next_delay()).min(deadline);
        tokio::time::sleep_until(until).await;
        Instant::now() < deadline
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_with_jitter_and_caps() {
        let base = Duration::from_millis(10);
        let max = Duration::from_millis(100);
        let mut b = Backoff::new(base, max);
        let mut expected = base;
        for _ in 0..10 {
            let d = b.next_delay();
            assert!(d >= expected / 2 && d <= expected, "{d:?} vs {expected:?}");
            expected = (expected * 2).min(max);
        }
        b.reset();
        assert!(b.next_delay() <= base);
    }
}
