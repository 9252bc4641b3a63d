//! Planted bugs, for the fault harness's self-test: a harness that finds
//! nothing proves little unless it finds a bug that is known to be there.
//! Compiled only with the `planted-bugs` feature (a test-only build
//! switch); even then each bug stays off unless the store runs with
//! `FLOTILLA_PLANTED_BUG=<name>`. Without the feature, [`on`] is a
//! constant `false` and the checks it guards compile away.

/// A known bug the store can be built to have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bug {
    /// `ack-before-persist`: the Raft round's batch (log entries, hard
    /// state) and the apply batches are written without RocksDB's
    /// write-ahead log, so what a store acknowledged as persisted — and
    /// what it told a client was written — is lost when it is killed
    /// (as un-fsynced data is in a power cut).
    AckBeforePersist,
    /// `lease-read-unchecked`: a leader serves reads locally without
    /// checking that its lease is still valid (the zombie-leader bug).
    LeaseReadUnchecked,
    /// `skip-epoch-check`: a request is served whatever region epoch it
    /// was routed with and whether or not its keys are still in the
    /// region's range (a client with a cache from before a split writes
    /// the new region's keys through the old region); a command proposed
    /// before its region split is applied anyway, and a read that waited
    /// across a split is served.
    SkipEpochCheck,
}

impl Bug {
    /// Its name in `FLOTILLA_PLANTED_BUG`.
    pub fn name(self) -> &'static str {
        match self {
            Bug::AckBeforePersist => "ack-before-persist",
            Bug::LeaseReadUnchecked => "lease-read-unchecked",
            Bug::SkipEpochCheck => "skip-epoch-check",
        }
    }
}

/// The environment variable that picks the planted bug.
pub const VAR: &str = "FLOTILLA_PLANTED_BUG";

/// Whether `bug` is planted in this process.
#[cfg(feature = "planted-bugs")]
pub fn on(bug: Bug) -> bool {
    static PLANTED: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let planted = PLANTED.get_or_init(|| {
        let name = std::env::var(VAR).ok()?;
        tracing::warn!(bug = %name, "a planted bug is on: this store is broken on purpose");
        Some(name)
    });
    planted.as_deref() == Some(bug.name())
}

/// Whether `bug` is planted in this process: never, in this build.
#[cfg(not(feature = "planted-bugs"))]
#[inline(always)]
pub fn on(_bug: Bug) -> bool {
    false
}
