//! The SDK's one error type.

use std::time::Duration;

use crate::pd::PdError;

/// What went wrong with a call, and what the caller can do about it.
///
/// The client already retries everything that is safe to retry (a leader
/// change, a split, a busy store, a lost connection before the request
/// left) until the call's deadline, so an error here is final for this
/// call. The predicates say what kind it is:
///
/// - [`Error::is_retryable`]: the same call may succeed later (the cluster
///   was unavailable for longer than the deadline).
/// - [`Error::is_undetermined`]: a write may or may not have taken effect
///   (any write: `put`, `delete`, the batches, [`compare_and_swap`],
///   [`delete_range`]). A read that shows your write settles it; a read
///   that does not, does not (the write may still land later): write values
///   unique to the writer, and retry the same swap until a read shows it.
///   A key's only writer may simply write again.
/// - [`Error::is_invalid_argument`]: the request itself is wrong; fix it.
///
/// [`compare_and_swap`]: crate::RawClient::compare_and_swap
/// [`delete_range`]: crate::RawClient::delete_range
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The request is malformed: an empty key where one is needed, a key or
    /// value past its limit, an inverted range, a bad endpoint. Checked
    /// before anything is sent, or refused by the store.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The call's deadline passed before it could be served; nothing it
    /// wrote took effect ambiguously (a write that may have applied is
    /// [`Error::Undetermined`]).
    #[error("timed out after {after:?} (last problem: {last})")]
    Timeout {
        /// The deadline that passed.
        after: Duration,
        /// The last problem seen while retrying.
        last: String,
    },
    /// A write was sent but its outcome is unknown: the
    /// connection broke or the deadline passed before the answer, or the
    /// leader changed under it. It may have taken effect, or not, or may
    /// still take effect. It was not retried.
    #[error("outcome of {operation} is unknown: {reason}")]
    Undetermined {
        /// The operation (`compare_and_swap`, `delete_range`).
        operation: &'static str,
        /// Why the outcome is unknown.
        reason: String,
    },
    /// PD failed in a way retrying within the deadline did not fix.
    #[error("placement driver: {0}")]
    Pd(#[from] PdError),
    /// A reply would exceed the 32 MiB reply limit (a `batch_get` of too
    /// many large values): ask for fewer keys per call.
    #[error("reply too large: {0}")]
    ResourceExhausted(String),
    /// A store failed the request for a reason of its own (a disk error),
    /// or answered in a way this client does not understand.
    #[error("store error: {0}")]
    Store(String),
}

impl Error {
    /// True when the same call may succeed if made again later: the
    /// cluster did not serve it within the deadline.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Timeout { .. } => true,
            Error::Pd(e) => e.is_retryable(),
            _ => false,
        }
    }

    /// True when a write may or may not have taken effect.
    pub fn is_undetermined(&self) -> bool {
        matches!(self, Error::Undetermined { .. })
    }

    /// True when the request itself is wrong and retrying cannot help.
    pub fn is_invalid_argument(&self) -> bool {
        matches!(
            self,
            Error::InvalidArgument(_) | Error::Pd(PdError::InvalidArgument(_))
        )
    }

    /// True when the call ran out of time.
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            Error::Timeout { .. } | Error::Pd(PdError::Timeout { .. })
        )
    }
}

/// The SDK's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicates_tell_the_kinds_apart() {
        let timeout = Error::Timeout {
            after: Duration::from_secs(1),
            last: "no leader".into(),
        };
        assert!(timeout.is_retryable() && timeout.is_timeout());
        assert!(!timeout.is_undetermined());
        let unknown = Error::Undetermined {
            operation: "compare_and_swap",
            reason: "connection reset".into(),
        };
        assert!(unknown.is_undetermined() && !unknown.is_retryable());
        assert!(Error::InvalidArgument("empty key".into()).is_invalid_argument());
        assert!(Error::Pd(PdError::Transport("refused".into())).is_retryable());
        assert!(!Error::Pd(PdError::ClusterIdMismatch("x".into())).is_retryable());
        assert_eq!(
            unknown.to_string(),
            "outcome of compare_and_swap is unknown: connection reset"
        );
    }
}
