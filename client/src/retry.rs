//! The retry policy of one call: what each failure allows, exponential
//! backoff with jitter, and the call's deadline over all of it.
//!
//! | failure | idempotent call (reads) | non-idempotent (every write) |
//! |---|---|---|
//! | not carried out (`NotLeader`, `EpochNotMatch`, busy, connect refused) | retry | retry |
//! | may have been carried out (timeout, connection lost after sending, `StaleCommand`) | retry | stop: [`Error::Undetermined`] |
//! | wrong request (`InvalidArgument`) | stop | stop |
//!
//! When the deadline passes the call fails with [`Error::Timeout`]: an
//! attempt cut short by the deadline is one that may have been carried
//! out, so a non-idempotent call reports that as [`Error::Undetermined`]
//! first.

use std::time::Duration;

use tokio::time::Instant;

use crate::error::Error;
use crate::pd::backoff::Backoff;
use crate::pd::PdError;
use crate::rpc::{Delay, Failure};

/// Whether a call may be repeated after an attempt that may have applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Idempotence {
    /// Doing it twice is the same as once: reads. (Not a put: one that
    /// lands twice, with another client's write in between, undoes that
    /// write.)
    Idempotent,
    /// Not: a second try could act on a state the first one made.
    NotIdempotent(&'static str),
}

/// The state of one call across its attempts.
pub(crate) struct Call {
    pub deadline: Instant,
    timeout: Duration,
    idempotence: Idempotence,
    backoff: Backoff,
    last: String,
}

impl Call {
    pub(crate) fn new(
        timeout: Duration,
        idempotence: Idempotence,
        backoff_base: Duration,
        backoff_max: Duration,
    ) -> Call {
        Call {
            deadline: Instant::now() + timeout,
            timeout,
            idempotence,
            backoff: Backoff::new(backoff_base, backoff_max),
            last: String::new(),
        }
    }

    /// After a failed attempt: `Ok` to try again (having waited as the
    /// failure asks), or the call's final error.
    pub(crate) async fn after(&mut self, failure: Failure) -> Result<(), Error> {
        let delay = match failure {
            Failure::Fatal(e) => return Err(e),
            Failure::MaybeApplied { reason } => {
                if let Idempotence::NotIdempotent(operation) = self.idempotence {
                    return Err(Error::Undetermined { operation, reason });
                }
                self.last = reason;
                Delay::Backoff
            }
            Failure::Retry { reason, delay } => {
                self.last = reason;
                delay
            }
        };
        tracing::debug!(last = %self.last, ?delay, "retrying");
        let wait = match delay {
            Delay::None => Duration::ZERO,
            Delay::Backoff => self.backoff.next_delay(),
            Delay::AtLeast(d) => self.backoff.next_delay().max(d),
        };
        let until = Instant::now() + wait;
        if until >= self.deadline {
            tokio::time::sleep_until(self.deadline).await;
            return Err(self.expired());
        }
        tokio::time::sleep_until(until).await;
        Ok(())
    }

    /// A failure from outside an attempt (locating the region): retryable
    /// PD trouble, our own lookup timeouts, and a cluster whose first
    /// region is not there yet (it is still bootstrapping) retry; the rest
    /// is final.
    pub(crate) fn lookup_failure(e: Error) -> Failure {
        let bootstrapping = matches!(
            e,
            Error::Pd(PdError::RegionNotFound(_) | PdError::NotBootstrapped(_))
        );
        if e.is_retryable() || bootstrapping {
            Failure::Retry {
                reason: e.to_string(),
                delay: Delay::Backoff,
            }
        } else {
            Failure::Fatal(e)
        }
    }

    /// The error for a call whose deadline passed.
    pub(crate) fn expired(&self) -> Error {
        let last = if self.last.is_empty() {
            "no attempt finished".to_string()
        } else {
            self.last.clone()
        };
        Error::Timeout {
            after: self.timeout,
            last,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(idempotence: Idempotence, timeout_ms: u64) -> Call {
        Call::new(
            Duration::from_millis(timeout_ms),
            idempotence,
            Duration::from_millis(1),
            Duration::from_millis(5),
        )
    }

    fn maybe() -> Failure {
        Failure::MaybeApplied {
            reason: "connection reset".into(),
        }
    }

    #[tokio::test]
    async fn an_unknown_outcome_stops_a_non_idempotent_call_at_once() {
        let mut c = call(Idempotence::NotIdempotent("compare_and_swap"), 1000);
        let err = c.after(maybe()).await.unwrap_err();
        assert!(err.is_undetermined(), "{err}");
    }

    #[tokio::test]
    async fn an_idempotent_call_retries_until_its_deadline() {
        let mut c = call(Idempotence::Idempotent, 30);
        let mut tries = 0;
        let err = loop {
            tries += 1;
            if let Err(e) = c.after(maybe()).await {
                break e;
            }
        };
        assert!(tries > 1);
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
        assert!(err.to_string().contains("connection reset"), "{err}");
    }

    #[tokio::test]
    async fn retries_that_never_sent_time_out_plainly() {
        let mut c = call(Idempotence::NotIdempotent("delete_range"), 20);
        let err = loop {
            let f = Failure::Retry {
                reason: "not leader".into(),
                delay: Delay::Backoff,
            };
            if let Err(e) = c.after(f).await {
                break e;
            }
        };
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
    }

    #[tokio::test]
    async fn fatal_failures_end_the_call() {
        let mut c = call(Idempotence::Idempotent, 1000);
        let err = c
            .after(Failure::Fatal(Error::InvalidArgument("empty key".into())))
            .await
            .unwrap_err();
        assert!(err.is_invalid_argument());
    }
}
