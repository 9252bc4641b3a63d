//! The retry policy shared by unary calls and the TSO stream: what each
//! error means for the next attempt, and the deadline-bounded loop state.

use std::time::Duration;

use flotilla_proto::pdpb;
use tokio::time::Instant;

use super::backoff::Backoff;
use super::leader::{Conn, Leader};
use super::{PdClientConfig, PdError};

/// How many `NOT_LEADER` hints in a row are followed without backing off:
/// enough to walk from a stale follower to the leader, not enough to spin
/// if two members point at each other during an election.
const FREE_REDIRECTS: u32 = 2;

/// The outcome of one attempt.
pub(crate) enum Step<T> {
    /// Return this to the caller.
    Done(Result<T, PdError>),
    /// Switched to the leader a `NOT_LEADER` named; try again now.
    Redirected(PdError),
    /// Back off, then try again (on a rediscovered leader if it was
    /// invalidated).
    Retry(PdError),
}

/// Decides what a failure of connection `conn` means: follow a leader
/// hint, drop the connection and back off, or give the error to the caller.
pub(crate) async fn judge<T>(
    leader: &Leader,
    conn: &Conn,
    err: PdError,
    hint: Option<&pdpb::Member>,
    deadline: Instant,
) -> Step<T> {
    match err {
        PdError::NotLeader(_) => {
            if leader.follow_hint(conn.generation, hint, deadline).await {
                Step::Redirected(err)
            } else {
                Step::Retry(err)
            }
        }
        PdError::Unavailable(_) | PdError::Transport(_) => {
            // The member may have lost leadership or be going away; asking
            // the members again costs one GetMembers and finds out.
            leader.invalidate(conn.generation);
            Step::Retry(err)
        }
        other => Step::Done(Err(other)),
    }
}

/// The leader hint in a response header's error.
pub(crate) fn hint(header: Option<&pdpb::ResponseHeader>) -> Option<&pdpb::Member> {
    header?.error.as_ref()?.leader.as_ref()
}

/// One call's deadline, backoff and last problem.
pub(crate) struct Retrier {
    pub(crate) deadline: Instant,
    timeout: Duration,
    backoff: Backoff,
    redirects: u32,
    last: PdError,
}

impl Retrier {
    pub(crate) fn new(config: &PdClientConfig) -> Retrier {
        Retrier {
            deadline: Instant::now() + config.timeout,
            timeout: config.timeout,
            backoff: Backoff::new(config.backoff_base, config.backoff_max),
            redirects: 0,
            last: PdError::NoLeader,
        }
    }

    /// The error for a call whose deadline passed.
    pub(crate) fn expired(&self) -> PdError {
        expired(self.timeout, &self.last)
    }

    /// Takes one attempt's outcome: `Some` ends the call, `None` means go
    /// again (after backing off when the step asks for it).
    pub(crate) async fn after<T>(
        &mut self,
        what: &str,
        step: Step<T>,
    ) -> Option<Result<T, PdError>> {
        let backoff = match step {
            Step::Done(result) => return Some(result),
            Step::Redirected(e) => {
                self.last = e;
                self.redirects += 1;
                self.redirects > FREE_REDIRECTS
            }
            Step::Retry(e) => {
                tracing::debug!(what, error = %e, "retrying PD call");
                self.last = e;
                self.redirects = 0;
                true
            }
        };
        if backoff && !self.backoff.wait(self.deadline).await {
            return Some(Err(self.expired()));
        }
        if Instant::now() >= self.deadline {
            return Some(Err(self.expired()));
        }
        None
    }
}

/// The error for a deadline `timeout` that passed with `last` the last
/// problem: members that answered but knew no leader say so by name.
pub(crate) fn expired(timeout: Duration, last: &PdError) -> PdError {
    match last {
        PdError::NoLeader => PdError::NoLeader,
        other => PdError::Timeout {
            after: timeout,
            last: other.to_string(),
        },
    }
}
