//! The ID allocator and the timestamp oracle.
//!
//! Both hand out values from memory below a high-water mark that was
//! persisted through Raft *before* use. A new leader starts at or above the
//! last persisted mark (it has applied every committed entry before it
//! serves), so nothing handed out by any earlier leader — even one that has
//! not yet noticed it was deposed — can be handed out again, and
//! timestamps never go back.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::error::PdError;
use crate::raft::RaftHandle;
use crate::storage::meta::{self, Op, ALLOC_ID_KEY, TSO_KEY};

/// Most IDs one request may take.
pub const MAX_ID_BATCH: u32 = 10_000;
/// IDs persisted ahead per Raft write.
const ID_STEP: u64 = 10_000;
/// Bits of the logical part of a timestamp.
pub const LOGICAL_BITS: u32 = 18;
/// Most timestamps one request may take (one physical millisecond's worth).
pub const MAX_TSO_BATCH: u32 = 1 << LOGICAL_BITS;

/// Hands out unique IDs.
pub struct IdAllocator {
    raft: RaftHandle,
    /// The leader term this allocator serves in (its writes are refused
    /// after it).
    term: u64,
    timeout: Duration,
    /// `(next, limit)`: IDs in `[next, limit)` are persisted and unused.
    state: tokio::sync::Mutex<(u64, u64)>,
}

impl IdAllocator {
    /// Starts from the persisted high-water mark, for the leader of `term`.
    pub fn new(raft: RaftHandle, term: u64, persisted: u64, timeout: Duration) -> IdAllocator {
        // 0 is never an ID (it means "none" on the wire).
        let next = persisted.max(1);
        IdAllocator {
            raft,
            term,
            timeout,
            state: tokio::sync::Mutex::new((next, next)),
        }
    }

    /// Returns the first of `count` consecutive fresh IDs.
    pub async fn alloc(&self, count: u32) -> Result<u64, PdError> {
        let count = u64::from(count.clamp(1, MAX_ID_BATCH));
        let mut state = self.state.lock().await;
        let (next, limit) = *state;
        if next + count > limit {
            let new_limit = next + count + ID_STEP;
            let op = Op::Put(
                Bytes::from_static(ALLOC_ID_KEY),
                Bytes::copy_from_slice(&meta::encode_u64(new_limit)),
            );
            self.raft
                .propose_as_leader(vec![op], self.term, self.timeout)
                .await?;
            state.1 = new_limit;
        }
        state.0 = next + count;
        Ok(next)
    }
}

/// Milliseconds since the Unix epoch by the wall clock.
pub fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[derive(Debug)]
struct TsoState {
    physical: u64,
    logical: u64,
    /// No timestamp with `physical >= persisted_upper` was handed out.
    persisted_upper: u64,
}

/// The timestamp oracle: `physical_ms << 18 | logical`.
pub struct Tso {
    raft: RaftHandle,
    /// The leader term this TSO serves in (its writes are refused after
    /// it).
    term: u64,
    timeout: Duration,
    window: Duration,
    state: Mutex<TsoState>,
    persist: tokio::sync::Mutex<()>,
}

impl Tso {
    /// A TSO for the leader of `term`, starting above everything an
    /// earlier leader could have handed out (`persisted_upper`), with the
    /// next window persisted before it returns.
    pub async fn start(
        raft: RaftHandle,
        term: u64,
        persisted_upper: u64,
        window: Duration,
        timeout: Duration,
    ) -> Result<Tso, PdError> {
        let physical = wall_ms().max(persisted_upper);
        let tso = Tso {
            raft,
            term,
            timeout,
            window,
            state: Mutex::new(TsoState {
                physical,
                logical: 0,
                persisted_upper,
            }),
            persist: tokio::sync::Mutex::new(()),
        };
        tso.persist_ahead().await?;
        Ok(tso)
    }

    /// Returns `(physical, first_logical)` of `count` consecutive
    /// timestamps.
    pub async fn get(&self, count: u32) -> Result<(u64, u64), PdError> {
        let count = u64::from(count.clamp(1, MAX_TSO_BATCH));
        loop {
            if let Some(ts) = self.try_get(count) {
                return Ok(ts);
            }
            // The clock ran into the persisted bound: extend it first.
            self.persist_ahead().await?;
        }
    }

    fn try_get(&self, count: u64) -> Option<(u64, u64)> {
        let mut s = self.state.lock();
        let now = wall_ms();
        // A clock that steps back is ignored: physical never decreases.
        if now > s.physical {
            s.physical = now;
            s.logical = 0;
        }
        if s.logical + count > u64::from(MAX_TSO_BATCH) {
            s.physical += 1;
            s.logical = 0;
        }
        if s.physical >= s.persisted_upper {
            return None;
        }
        let first = s.logical;
        s.logical += count;
        Some((s.physical, first))
    }

    /// Whether less than half the window is left (the server then persists
    /// ahead in the background, so requests rarely wait for Raft).
    pub fn needs_persist(&self) -> bool {
        let s = self.state.lock();
        let ahead = s.persisted_upper.saturating_sub(wall_ms().max(s.physical));
        ahead < self.window.as_millis() as u64 / 2
    }

    /// Persists a new upper bound one window ahead of the clock.
    pub async fn persist_ahead(&self) -> Result<(), PdError> {
        let _one_at_a_time = self.persist.lock().await;
        let upper = {
            let s = self.state.lock();
            wall_ms().max(s.physical) + self.window.as_millis() as u64
        };
        if upper <= self.state.lock().persisted_upper {
            return Ok(());
        }
        let op = Op::Put(
            Bytes::from_static(TSO_KEY),
            Bytes::copy_from_slice(&meta::encode_u64(upper)),
        );
        self.raft
            .propose_as_leader(vec![op], self.term, self.timeout)
            .await?;
        let mut s = self.state.lock();
        s.persisted_upper = s.persisted_upper.max(upper);
        Ok(())
    }
}

/// Composes a timestamp.
pub fn compose_ts(physical: u64, logical: u64) -> u64 {
    (physical << LOGICAL_BITS) | logical
}
