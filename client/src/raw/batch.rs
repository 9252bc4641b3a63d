//! Batch calls: `batch_get`, `batch_put`, `batch_delete`, and the engine
//! they share (also used by `delete_range`).
//!
//! A batch runs in rounds. Each round places the items still pending in
//! their regions (through the cache), cuts each region's items into
//! requests within the store's limits, and sends those requests
//! concurrently (at most [`Config::batch_concurrency`](crate::Config) at a
//! time), one attempt each. The items of a failed request stay pending;
//! after the round the call backs off as the worst failure asks, and the
//! next round places them again — so a region that split meanwhile gets
//! its items regrouped by the new regions.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use flotilla_proto::kvrpcpb::{
    self, RawBatchDeleteRequest, RawBatchGetRequest, RawBatchPutRequest,
};
use flotilla_proto::limits::{MAX_BATCH_BYTES, MAX_BATCH_KEYS};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{Inner, RawClient};
use crate::cache::{RegionRoute, Side};
use crate::error::{Error, Result};
use crate::key::{bytes, check_key, check_value, KvPair};
use crate::retry::{Call, Idempotence};
use crate::rpc::{self, Delay, Failure, KvRequest};

/// One kind of batch request: its items and how they make a request.
pub(super) trait BatchOp: 'static {
    /// One key (or range) of the batch.
    type Item: Clone + Send + 'static;
    /// The request a group of items becomes.
    type Request: KvRequest;
    /// Whether it reads (follower reads apply).
    const READ: bool;
    /// Most items per request.
    const MAX_ITEMS: usize = MAX_BATCH_KEYS;
    /// The key that places the item in a region.
    fn key(item: &Self::Item) -> &Bytes;
    /// Bytes the item adds to a request.
    fn size(item: &Self::Item) -> usize;
    /// The item's end, for items that are ranges (they are cut at region
    /// boundaries); `None` for single keys.
    fn range_end(_item: &Self::Item) -> Option<&Bytes> {
        None
    }
    /// The part `[start, end)` of a range item.
    fn cut(item: &Self::Item, _start: Bytes, _end: Bytes) -> Self::Item {
        item.clone()
    }
    /// The request for `items`, all in one region.
    fn request(items: &[Self::Item]) -> Self::Request;
}

/// The items of one request, the region they go to, and the reply.
type Chunk<I> = (Arc<RegionRoute>, Vec<I>);
pub(super) type Done<Op> = Vec<(
    Vec<<Op as BatchOp>::Item>,
    <<Op as BatchOp>::Request as KvRequest>::Response,
)>;

impl Inner {
    /// Runs a batch to completion within `call`: every item's request
    /// succeeded, or the call's error.
    pub(super) async fn run_batch<Op: BatchOp>(
        self: &Arc<Inner>,
        items: Vec<Op::Item>,
        call: &mut Call,
    ) -> Result<Done<Op>> {
        let mut pending = items;
        let mut done = Vec::new();
        while !pending.is_empty() {
            let chunks = match self.place::<Op>(pending.clone(), call.deadline).await {
                Ok(chunks) => chunks,
                Err(e) => {
                    call.after(Call::lookup_failure(e)).await?;
                    continue;
                }
            };
            let (ok, failed, worst) = self.send_chunks::<Op>(chunks, call.deadline).await;
            done.extend(ok);
            pending = failed;
            if let Some(failure) = worst {
                call.after(failure).await?;
            }
        }
        Ok(done)
    }

    /// Groups items by region (cutting ranges at region boundaries) and
    /// cuts each group into requests within the limits.
    async fn place<Op: BatchOp>(
        &self,
        items: Vec<Op::Item>,
        deadline: Instant,
    ) -> Result<Vec<Chunk<Op::Item>>> {
        let mut by_region: Vec<(Arc<RegionRoute>, Vec<Op::Item>)> = Vec::new();
        let mut index: HashMap<u64, usize> = HashMap::new();
        for item in items {
            for (route, piece) in self.pieces::<Op>(item, deadline).await? {
                let slot = *index.entry(route.id()).or_insert_with(|| {
                    by_region.push((route.clone(), Vec::new()));
                    by_region.len() - 1
                });
                by_region[slot].1.push(piece);
            }
        }
        let mut chunks = Vec::new();
        for (route, items) in by_region {
            let mut chunk: Vec<Op::Item> = Vec::new();
            let mut size = 0;
            for item in items {
                let s = Op::size(&item);
                if !chunk.is_empty() && (chunk.len() == Op::MAX_ITEMS || size + s > MAX_BATCH_BYTES)
                {
                    chunks.push((route.clone(), std::mem::take(&mut chunk)));
                    size = 0;
                }
                size += s;
                chunk.push(item);
            }
            if !chunk.is_empty() {
                chunks.push((route, chunk));
            }
        }
        Ok(chunks)
    }

    /// The item placed in its region; a range item cut into one piece per
    /// region it spans.
    async fn pieces<Op: BatchOp>(
        &self,
        item: Op::Item,
        deadline: Instant,
    ) -> Result<Vec<(Arc<RegionRoute>, Op::Item)>> {
        let Some(end) = Op::range_end(&item).cloned() else {
            let route = self
                .cache
                .locate(Op::key(&item), Side::At, deadline)
                .await?;
            return Ok(vec![(route, item)]);
        };
        let mut out = Vec::new();
        let mut start = Op::key(&item).clone();
        loop {
            let route = self.cache.locate(&start, Side::At, deadline).await?;
            let region_end = route.region.end_key.clone();
            let last = region_end.is_empty() || (!end.is_empty() && end <= region_end);
            let piece_end = if last {
                end.clone()
            } else {
                region_end.clone()
            };
            out.push((route, Op::cut(&item, start, piece_end)));
            if last {
                return Ok(out);
            }
            start = region_end;
        }
    }

    /// Sends every chunk once, at most `batch_concurrency` at a time.
    /// Returns the answered chunks, the items to try again, and the
    /// failure that decides how long to wait before that.
    async fn send_chunks<Op: BatchOp>(
        self: &Arc<Inner>,
        chunks: Vec<Chunk<Op::Item>>,
        deadline: Instant,
    ) -> (Done<Op>, Vec<Op::Item>, Option<Failure>) {
        let permits = Arc::new(Semaphore::new(self.config.batch_concurrency.max(1)));
        let mut tasks = JoinSet::new();
        for (route, items) in chunks {
            let (inner, permits) = (self.clone(), permits.clone());
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let req = Op::request(&items);
                let target = inner.target(Op::READ);
                let result = rpc::attempt(&inner.env(), &route, req, target, deadline).await;
                (items, result)
            });
        }
        let (mut done, mut failed, mut worst) = (Vec::new(), Vec::new(), None);
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((items, Ok(reply))) => done.push((items, reply)),
                Ok((items, Err(failure))) => {
                    failed.extend(items);
                    worst = Some(worse(worst, failure));
                }
                Err(e) => {
                    worst = Some(Failure::Fatal(Error::Store(format!(
                        "a batch request task failed: {e}"
                    ))));
                }
            }
        }
        (done, failed, worst)
    }
}

/// The failure that should decide what happens next: fatal over "may have
/// applied" over retry; among retries, the longest wait.
fn worse(a: Option<Failure>, b: Failure) -> Failure {
    let rank = |f: &Failure| match f {
        Failure::Fatal(_) => 3,
        Failure::MaybeApplied { .. } => 2,
        Failure::Retry {
            delay: Delay::AtLeast(_),
            ..
        } => 1,
        Failure::Retry { .. } => 0,
    };
    match a {
        Some(a) if rank(&a) >= rank(&b) => a,
        _ => b,
    }
}

pub(super) struct Get;
impl BatchOp for Get {
    type Item = (usize, Bytes);
    type Request = RawBatchGetRequest;
    const READ: bool = true;
    fn key(item: &Self::Item) -> &Bytes {
        &item.1
    }
    fn size(item: &Self::Item) -> usize {
        item.1.len()
    }
    fn request(items: &[Self::Item]) -> RawBatchGetRequest {
        RawBatchGetRequest {
            context: None,
            keys: items.iter().map(|(_, k)| k.clone()).collect(),
        }
    }
}

pub(super) struct Put;
impl BatchOp for Put {
    type Item = KvPair;
    type Request = RawBatchPutRequest;
    const READ: bool = false;
    fn key(item: &KvPair) -> &Bytes {
        &item.key
    }
    fn size(item: &KvPair) -> usize {
        item.key.len() + item.value.len()
    }
    fn request(items: &[KvPair]) -> RawBatchPutRequest {
        RawBatchPutRequest {
            context: None,
            pairs: items
                .iter()
                .map(|p| kvrpcpb::KvPair {
                    key: p.key.clone(),
                    value: p.value.clone(),
                })
                .collect(),
        }
    }
}

struct Delete;
impl BatchOp for Delete {
    type Item = Bytes;
    type Request = RawBatchDeleteRequest;
    const READ: bool = false;
    fn key(item: &Bytes) -> &Bytes {
        item
    }
    fn size(item: &Bytes) -> usize {
        item.len()
    }
    fn request(items: &[Bytes]) -> RawBatchDeleteRequest {
        RawBatchDeleteRequest {
            context: None,
            keys: items.to_vec(),
        }
    }
}

/// Puts each found value of a finished batch of gets at its key's index
/// in `out`.
pub(super) fn fill_values(out: &mut [Option<Bytes>], done: Done<Get>) {
    for (items, reply) in done {
        let found: HashMap<Bytes, Bytes> =
            reply.pairs.into_iter().map(|p| (p.key, p.value)).collect();
        for (i, key) in items {
            out[i] = found.get(&key).cloned();
        }
    }
}

impl RawClient {
    /// The values of `keys`, in input order (`None` for a key that does
    /// not exist). Keys are grouped by region and read concurrently; any
    /// number of keys is fine (they are sent in requests of at most
    /// 10,000). A region's reply is limited to 32 MiB: past that the call
    /// fails with [`Error::ResourceExhausted`].
    pub async fn batch_get<K: Into<Vec<u8>>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Vec<Option<Bytes>>> {
        let keys: Vec<(usize, Bytes)> = keys.into_iter().map(bytes).enumerate().collect();
        for (_, k) in &keys {
            check_key(k, false)?;
        }
        let mut out = vec![None; keys.len()];
        if keys.is_empty() {
            return Ok(out);
        }
        let mut call = self.call(Idempotence::Idempotent);
        let done = self.inner.run_batch::<Get>(keys, &mut call).await?;
        fill_values(&mut out, done);
        Ok(out)
    }

    /// Writes every pair. Each region's pairs are written atomically; the
    /// batch as a whole is not (a failed call may leave some regions
    /// written). If a key appears more than once, its last pair wins. An
    /// unknown outcome is [`Error::Undetermined`], as for
    /// [`put`](RawClient::put).
    pub async fn batch_put<K: Into<Vec<u8>>, V: Into<Vec<u8>>>(
        &self,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<()> {
        let mut last: HashMap<Bytes, usize> = HashMap::new();
        let mut items: Vec<KvPair> = Vec::new();
        for (k, v) in pairs {
            let pair = KvPair::new(k, v);
            check_key(&pair.key, true)?;
            check_value(&pair.value)?;
            match last.get(&pair.key) {
                Some(&i) => items[i] = pair,
                None => {
                    last.insert(pair.key.clone(), items.len());
                    items.push(pair);
                }
            }
        }
        if items.is_empty() {
            return Ok(());
        }
        let mut call = self.call(Idempotence::NotIdempotent("batch_put"));
        self.inner.run_batch::<Put>(items, &mut call).await?;
        Ok(())
    }

    /// Deletes every key (atomically per region, like
    /// [`batch_put`](RawClient::batch_put)).
    pub async fn batch_delete<K: Into<Vec<u8>>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<()> {
        let keys: Vec<Bytes> = keys.into_iter().map(bytes).collect();
        for k in &keys {
            check_key(k, true)?;
        }
        if keys.is_empty() {
            return Ok(());
        }
        let mut call = self.call(Idempotence::NotIdempotent("batch_delete"));
        self.inner.run_batch::<Delete>(keys, &mut call).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_failure_decides() {
        let retry = || Failure::Retry {
            reason: "r".into(),
            delay: Delay::Backoff,
        };
        let busy = || Failure::Retry {
            reason: "busy".into(),
            delay: Delay::AtLeast(std::time::Duration::from_millis(50)),
        };
        let maybe = || Failure::MaybeApplied { reason: "m".into() };
        assert!(matches!(worse(None, retry()), Failure::Retry { .. }));
        assert!(matches!(
            worse(Some(retry()), busy()),
            Failure::Retry {
                delay: Delay::AtLeast(_),
                ..
            }
        ));
        assert!(matches!(
            worse(Some(maybe()), busy()),
            Failure::MaybeApplied { .. }
        ));
        let fatal = Failure::Fatal(Error::InvalidArgument("x".into()));
        assert!(matches!(worse(Some(fatal), maybe()), Failure::Fatal(_)));
    }
}
