//! Combining concurrent single-key calls ([`Config::combine_calls`]).
//!
//! Under load, many tasks call `get` and `put` at once. Sent one by one,
//! each call pays the per-request costs — gRPC framing and copies, and for
//! a write its own Raft entry and apply — and those costs, not the data,
//! bound the throughput. So a `get` or `put` joins a queue instead, and a
//! combiner task sends whatever has queued up as one batch per region
//! through the batch engine: cut to the store's limits, retried within the
//! batch's deadline. Batches never mix regions, so a region that cannot
//! serve holds up only its own calls.
//!
//! Nothing waits on purpose. A lone call goes out at once, as a batch of
//! one; batches grow only while calls arrive faster than the combiner
//! takes its turns. A batch of gets runs until the latest deadline of its
//! calls (each call still gives up at its own). A batch of puts runs until
//! the *earliest*: once a caller is told its put's outcome, nothing more of
//! that batch may be sent, or a late first send could land after a later
//! write by the same caller.
//!
//! What a caller sees is unchanged:
//! - A combined put returns once its region wrote the batch holding it,
//!   one Raft entry, atomically. Two puts of one key in one batch were
//!   concurrent calls, so either order is linearizable; the later one
//!   queued wins.
//! - A combined get is read under its region leader's lease, as a lone get
//!   is.
//! - Errors are the batch's, and each caller gets its own copy.
//! - A batch of gets whose reply would pass the 32 MiB limit is not an
//!   error: each of its gets goes alone.
//! - A combiner runs on the runtime of the client's first call; if that
//!   runtime shuts down while the client lives on, calls go alone.
//!
//! [`Config::combine_calls`]: crate::Config::combine_calls

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::batch::{fill_values, Get, Put};
use super::Inner;
use crate::cache::Side;
use crate::error::{Error, Result};
use crate::key::KvPair;
use crate::retry::{Call, Idempotence};

/// Most calls one batch takes (the batch engine cuts further by size).
const MAX_COMBINED: usize = 256;

/// One queued call: its input, deadline, and where its answer goes.
struct Queued<I, O> {
    input: I,
    deadline: Instant,
    answer: oneshot::Sender<O>,
}

/// What a combined get answers.
pub(super) enum GetAnswer {
    /// The value (or its absence).
    Value(Result<Option<Bytes>>),
    /// The batch was too big to answer at once: send this get alone.
    Alone,
}

type Queue<I, O> = mpsc::UnboundedSender<Queued<I, O>>;

/// How long past its deadline a combined put waits for its batch's answer.
const PUT_GRACE: Duration = Duration::from_secs(1);

/// The queues of one client, each with its combiner task (started on
/// first use, ended when the client is dropped).
#[derive(Default)]
pub(super) struct Combiner {
    puts: OnceLock<Queue<KvPair, Result<()>>>,
    gets: OnceLock<Queue<Bytes, GetAnswer>>,
}

impl Inner {
    /// Puts `pair` within `deadline` as part of a combined batch; `None`
    /// if the combiner is gone (its runtime shut down): put it alone.
    pub(super) async fn combined_put(
        self: &Arc<Inner>,
        pair: KvPair,
        deadline: Instant,
    ) -> Option<Result<()>> {
        let start = |rx| {
            tokio::spawn(run_puts(Arc::downgrade(self), rx));
        };
        // The batch answers by this call's deadline (it runs until the
        // earliest of its calls'); the grace only covers the hand-over.
        let answer = submit(&self.combiner.puts, start, pair, deadline + PUT_GRACE).await?;
        Some(match answer {
            Ok(put) => put,
            // Lost sight of the batch (the deadline passed, or it was
            // dropped): it may have been sent, so the put's outcome is
            // unknown.
            Err(e) => Err(Error::Undetermined {
                operation: "put",
                reason: e.to_string(),
            }),
        })
    }

    /// Gets `key` within `deadline` as part of a combined batch;
    /// [`GetAnswer::Alone`] if it must go alone.
    pub(super) async fn combined_get(
        self: &Arc<Inner>,
        key: Bytes,
        deadline: Instant,
    ) -> Result<GetAnswer> {
        let start = |rx| {
            tokio::spawn(run_gets(Arc::downgrade(self), rx));
        };
        submit(&self.combiner.gets, start, key, deadline)
            .await
            .unwrap_or(Ok(GetAnswer::Alone))
    }
}

/// Queues `input` (starting the queue's combiner with `start` on first
/// use) and waits for its answer until `deadline`; `None` if the combiner
/// is gone.
async fn submit<I, O>(
    queue: &OnceLock<Queue<I, O>>,
    start: impl FnOnce(mpsc::UnboundedReceiver<Queued<I, O>>),
    input: I,
    deadline: Instant,
) -> Option<Result<O>> {
    let queue = queue.get_or_init(|| {
        let (tx, rx) = mpsc::unbounded_channel();
        start(rx);
        tx
    });
    let (answer, rx) = oneshot::channel();
    let queued = Queued {
        input,
        deadline,
        answer,
    };
    queue.send(queued).ok()?;
    Some(wait(rx, deadline).await)
}

/// The answer, or a timeout once `deadline` passes.
async fn wait<O>(rx: oneshot::Receiver<O>, deadline: Instant) -> Result<O> {
    let started = Instant::now();
    match tokio::time::timeout_at(deadline, rx).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(_)) => Err(Error::Store("a combined batch was dropped".into())),
        Err(_) => Err(Error::Timeout {
            after: deadline.saturating_duration_since(started),
            last: "waiting for the combined batch that holds this call".into(),
        }),
    }
}

/// Takes everything queued (up to [`MAX_COMBINED`]) behind `first`.
fn drain<T>(rx: &mut mpsc::UnboundedReceiver<T>, first: T) -> Vec<T> {
    let mut all = vec![first];
    while all.len() < MAX_COMBINED {
        match rx.try_recv() {
            Ok(next) => all.push(next),
            Err(_) => break,
        }
    }
    all
}

/// The call a batch runs as: until the latest deadline of its calls for
/// reads, the earliest for writes (which must not be sent after any of
/// their callers was answered).
fn batch_call<I, O>(inner: &Inner, batch: &[Queued<I, O>], idempotence: Idempotence) -> Call {
    let deadlines = batch.iter().map(|q| q.deadline);
    let deadline = match idempotence {
        Idempotence::Idempotent => deadlines.max(),
        Idempotence::NotIdempotent(_) => deadlines.min(),
    }
    .unwrap_or_else(Instant::now);
    let c = &inner.config;
    Call::new(
        deadline.saturating_duration_since(Instant::now()),
        idempotence,
        c.backoff_base,
        c.backoff_max,
    )
}

/// `batch` cut by region, as the cache places each call now, so that a
/// region that cannot serve holds up only its own calls. A call it cannot
/// place yet joins a group of its own: the batch engine looks it up again.
async fn by_region<I, O>(
    inner: &Inner,
    batch: Vec<Queued<I, O>>,
    key: impl Fn(&I) -> &Bytes,
) -> Vec<Vec<Queued<I, O>>> {
    let mut groups: HashMap<u64, Vec<Queued<I, O>>> = HashMap::new();
    for q in batch {
        let region = match inner
            .cache
            .locate(key(&q.input), Side::At, q.deadline)
            .await
        {
            Ok(route) => route.region.id,
            Err(_) => 0,
        };
        groups.entry(region).or_default().push(q);
    }
    groups.into_values().collect()
}

async fn run_puts(inner: Weak<Inner>, mut rx: mpsc::UnboundedReceiver<Queued<KvPair, Result<()>>>) {
    while let Some(first) = rx.recv().await {
        let batch = drain(&mut rx, first);
        let Some(inner) = inner.upgrade() else {
            return;
        };
        tokio::spawn(async move {
            for group in by_region(&inner, batch, |pair| &pair.key).await {
                tokio::spawn(send_puts(inner.clone(), group));
            }
        });
    }
}

async fn send_puts(inner: Arc<Inner>, batch: Vec<Queued<KvPair, Result<()>>>) {
    let mut call = batch_call(&inner, &batch, Idempotence::NotIdempotent("put"));
    let pairs = batch.iter().map(|q| q.input.clone()).collect();
    let result = inner.run_batch::<Put>(pairs, &mut call).await.map(|_| ());
    for q in batch {
        let _ = q.answer.send(result.clone());
    }
}

async fn run_gets(inner: Weak<Inner>, mut rx: mpsc::UnboundedReceiver<Queued<Bytes, GetAnswer>>) {
    while let Some(first) = rx.recv().await {
        let batch = drain(&mut rx, first);
        let Some(inner) = inner.upgrade() else {
            return;
        };
        tokio::spawn(async move {
            for group in by_region(&inner, batch, |key| key).await {
                tokio::spawn(send_gets(inner.clone(), group));
            }
        });
    }
}

async fn send_gets(inner: Arc<Inner>, batch: Vec<Queued<Bytes, GetAnswer>>) {
    let mut call = batch_call(&inner, &batch, Idempotence::Idempotent);
    let keys = batch
        .iter()
        .enumerate()
        .map(|(i, q)| (i, q.input.clone()))
        .collect();
    match inner.run_batch::<Get>(keys, &mut call).await {
        Ok(done) => {
            let mut values = vec![None; batch.len()];
            fill_values(&mut values, done);
            for (q, value) in batch.into_iter().zip(values) {
                let _ = q.answer.send(GetAnswer::Value(Ok(value)));
            }
        }
        Err(Error::ResourceExhausted(_)) if batch.len() > 1 => {
            for q in batch {
                let _ = q.answer.send(GetAnswer::Alone);
            }
        }
        Err(e) => {
            for q in batch {
                let _ = q.answer.send(GetAnswer::Value(Err(e.clone())));
            }
        }
    }
}
