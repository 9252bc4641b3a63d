//! Histories: what a client saw of each operation.

/// One operation as a client saw it: when it was called, when it returned,
/// what it asked and what it got.
///
/// Times are any monotonic clock shared by every client of the history
/// (the harness's `Instant`, in nanoseconds; a log's line numbers).
/// Intervals are closed: an operation that returned at `t` precedes one
/// called after `t`, and overlaps one called at `t`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation<I, O> {
    /// Who issued it (for the report only).
    pub client: u64,
    /// When it was called.
    pub call: u64,
    /// When it returned. Ignored when `output` is `None`.
    pub ret: u64,
    /// What it asked.
    pub input: I,
    /// What it got, or `None` if its outcome is unknown (a timeout, a lost
    /// connection): it may have taken effect at any time after its call,
    /// or never.
    pub output: Option<O>,
}

impl<I, O> Operation<I, O> {
    /// An operation that returned `output`.
    pub fn done(client: u64, call: u64, ret: u64, input: I, output: O) -> Self {
        Operation {
            client,
            call,
            ret,
            input,
            output: Some(output),
        }
    }

    /// An operation whose outcome is unknown.
    pub fn unknown(client: u64, call: u64, input: I) -> Self {
        Operation {
            client,
            call,
            ret: u64::MAX,
            input,
            output: None,
        }
    }

    /// Its return time: never, if its outcome is unknown.
    pub fn return_time(&self) -> u64 {
        if self.output.is_some() {
            self.ret
        } else {
            u64::MAX
        }
    }
}
