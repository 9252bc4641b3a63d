//! Range calls: scans in both directions, and `delete_range`.
//!
//! A scan walks the regions of its range in order, one request per region
//! (or several, when a region holds more than one request's worth), until
//! it has `limit` pairs or reaches the end of the range. Each request is
//! served by the region's leader under its lease, so every page is
//! linearizable; the scan as a whole is not a snapshot (a write between
//! two pages may or may not be seen).

use bytes::Bytes;
use flotilla_proto::kvrpcpb::{RawDeleteRangeRequest, RawScanRequest};
use flotilla_proto::limits::MAX_SCAN_LIMIT;

use super::batch::BatchOp;
use super::RawClient;
use crate::cache::Side;
use crate::error::{Error, Result};
use crate::key::{key_after, IntoKeyRange, KeyRange, KvPair};
use crate::retry::Idempotence;

/// Which way a scan goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Forward,
    Reverse,
}

impl RawClient {
    /// Up to `limit` pairs in `range`, in key order. `range` is Rust range
    /// syntax over keys: `"a".."m"`, `"a"..`, `..` (see
    /// [`IntoKeyRange`]). `limit` must be at least 1; all results are held
    /// in memory.
    pub async fn scan(&self, range: impl IntoKeyRange, limit: u32) -> Result<Vec<KvPair>> {
        self.scan_inner(range.into_key_range(), limit, false, Direction::Forward)
            .await
    }

    /// Like [`scan`](RawClient::scan), but only the keys.
    pub async fn scan_keys(&self, range: impl IntoKeyRange, limit: u32) -> Result<Vec<Bytes>> {
        let pairs = self
            .scan_inner(range.into_key_range(), limit, true, Direction::Forward)
            .await?;
        Ok(pairs.into_iter().map(|p| p.key).collect())
    }

    /// Up to `limit` pairs in `range`, largest key first: the last `limit`
    /// pairs of the range, in reverse order.
    pub async fn scan_reverse(&self, range: impl IntoKeyRange, limit: u32) -> Result<Vec<KvPair>> {
        self.scan_inner(range.into_key_range(), limit, false, Direction::Reverse)
            .await
    }

    /// Like [`scan_reverse`](RawClient::scan_reverse), but only the keys.
    pub async fn scan_keys_reverse(
        &self,
        range: impl IntoKeyRange,
        limit: u32,
    ) -> Result<Vec<Bytes>> {
        let pairs = self
            .scan_inner(range.into_key_range(), limit, true, Direction::Reverse)
            .await?;
        Ok(pairs.into_iter().map(|p| p.key).collect())
    }

    async fn scan_inner(
        &self,
        range: KeyRange,
        limit: u32,
        key_only: bool,
        direction: Direction,
    ) -> Result<Vec<KvPair>> {
        range.check()?;
        if limit == 0 {
            return Err(Error::InvalidArgument(
                "scan limit must be at least 1".into(),
            ));
        }
        let reverse = direction == Direction::Reverse;
        let mut out: Vec<KvPair> = Vec::new();
        let mut call = self.call(Idempotence::Idempotent);
        // Forward: the next key to read from. Reverse: the bound below
        // which to read next (empty: the end of the key space).
        let mut cursor = if reverse {
            range.end.clone()
        } else {
            range.start.clone()
        };
        loop {
            let want = (limit as usize - out.len()).min(MAX_SCAN_LIMIT as usize) as u32;
            let req = RawScanRequest {
                context: None,
                start_key: cursor.clone(),
                end_key: if reverse {
                    range.start.clone()
                } else {
                    range.end.clone()
                },
                limit: want,
                key_only,
                reverse,
            };
            let side = if reverse { Side::Below } else { Side::At };
            let (route, reply) = self
                .inner
                .on_key(&cursor, side, &req, true, &mut call)
                .await?;
            let full = reply.kvs.len() as u32 == want;
            let last_key = reply.kvs.last().map(|p| p.key.clone());
            out.extend(reply.kvs.into_iter().map(KvPair::from));
            if out.len() >= limit as usize {
                return Ok(out);
            }
            if full || reply.truncated {
                // More may follow in this region: continue after the last
                // key we got.
                let Some(last) = last_key else {
                    return Err(Error::Store(
                        "a scan page stopped early but was empty".into(),
                    ));
                };
                cursor = if reverse { last } else { key_after(&last) };
                continue;
            }
            // This region's part of the range is done: on to the next.
            let region = &route.region;
            if reverse {
                if region.start_key.is_empty() || region.start_key <= range.start {
                    return Ok(out);
                }
                cursor = region.start_key.clone();
            } else {
                let end = &region.end_key;
                if end.is_empty() || (!range.end.is_empty() && *end >= range.end) {
                    return Ok(out);
                }
                cursor = end.clone();
            }
        }
    }

    /// Deletes every key in `range`. Each region's part is deleted
    /// atomically and the parts concurrently; the whole is not atomic.
    ///
    /// Not retried once it may have been applied (a retry could delete
    /// keys written after the first attempt): an unknown outcome fails
    /// with [`Error::Undetermined`](crate::Error::Undetermined).
    pub async fn delete_range(&self, range: impl IntoKeyRange) -> Result<()> {
        let range = range.into_key_range();
        range.check()?;
        let mut call = self.call(Idempotence::NotIdempotent("delete_range"));
        self.inner
            .run_batch::<DeleteRange>(vec![range], &mut call)
            .await?;
        Ok(())
    }
}

/// `delete_range` as a batch of ranges, one request per region piece.
struct DeleteRange;
impl BatchOp for DeleteRange {
    type Item = KeyRange;
    type Request = RawDeleteRangeRequest;
    const READ: bool = false;
    const MAX_ITEMS: usize = 1;
    fn key(item: &KeyRange) -> &Bytes {
        &item.start
    }
    fn size(item: &KeyRange) -> usize {
        item.start.len() + item.end.len()
    }
    fn range_end(item: &KeyRange) -> Option<&Bytes> {
        Some(&item.end)
    }
    fn cut(_item: &KeyRange, start: Bytes, end: Bytes) -> KeyRange {
        KeyRange { start, end }
    }
    fn request(items: &[KeyRange]) -> RawDeleteRangeRequest {
        let range = &items[0];
        RawDeleteRangeRequest {
            context: None,
            start_key: range.start.clone(),
            end_key: range.end.clone(),
        }
    }
}
