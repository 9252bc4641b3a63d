//! Single-key calls: `get`, `put`, `delete`, `compare_and_swap`.

use bytes::Bytes;
use flotilla_proto::kvrpcpb::{
    RawCompareAndSwapRequest, RawDeleteRequest, RawGetRequest, RawPutRequest,
};

use super::combine::GetAnswer;
use super::RawClient;
use crate::cache::Side;
use crate::error::Result;
use crate::key::{bytes, check_key, check_value, KvPair};
use crate::retry::Idempotence;

impl RawClient {
    /// The value of `key`, or `None` if it does not exist. Linearizable:
    /// it sees every write acknowledged before it was called.
    pub async fn get(&self, key: impl Into<Vec<u8>>) -> Result<Option<Bytes>> {
        let key = bytes(key);
        check_key(&key, false)?;
        if self.inner.config.combine_calls {
            let answer = self
                .inner
                .combined_get(key.clone(), self.deadline())
                .await?;
            if let GetAnswer::Value(value) = answer {
                return value;
            }
        }
        let req = RawGetRequest {
            context: None,
            key: key.clone(),
        };
        let mut call = self.call(Idempotence::Idempotent);
        let (_, reply) = self
            .inner
            .on_key(&key, Side::At, &req, true, &mut call)
            .await?;
        Ok((!reply.not_found).then_some(reply.value))
    }

    /// Sets `key` to `value`. Acknowledged once a majority of the region's
    /// replicas have it durably.
    ///
    /// Never retried once it may have been applied: a put that landed, was
    /// overwritten by another client, and then landed again would undo that
    /// write. If the outcome is unknown the call fails with
    /// [`Error::Undetermined`](crate::Error::Undetermined); a caller that is
    /// the key's only writer may simply put again.
    pub async fn put(&self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Result<()> {
        let (key, value) = (bytes(key), bytes(value));
        check_key(&key, true)?;
        check_value(&value)?;
        if self.inner.config.combine_calls {
            let pair = KvPair {
                key: key.clone(),
                value: value.clone(),
            };
            if let Some(put) = self.inner.combined_put(pair, self.deadline()).await {
                return put;
            }
        }
        let req = RawPutRequest {
            context: None,
            key: key.clone(),
            value,
        };
        let mut call = self.call(Idempotence::NotIdempotent("put"));
        self.inner
            .on_key(&key, Side::At, &req, false, &mut call)
            .await?;
        Ok(())
    }

    /// Deletes `key` (a no-op if it does not exist). Like
    /// [`put`](RawClient::put), never retried once it may have been
    /// applied: an unknown outcome is
    /// [`Error::Undetermined`](crate::Error::Undetermined).
    pub async fn delete(&self, key: impl Into<Vec<u8>>) -> Result<()> {
        let key = bytes(key);
        check_key(&key, true)?;
        let req = RawDeleteRequest {
            context: None,
            key: key.clone(),
        };
        let mut call = self.call(Idempotence::NotIdempotent("delete"));
        self.inner
            .on_key(&key, Side::At, &req, false, &mut call)
            .await?;
        Ok(())
    }

    /// Atomically sets `key` to `new` if it currently holds `expected`
    /// (`None`: if it does not exist). Returns what the key held before
    /// and whether the swap happened.
    ///
    /// Never retried once it may have been applied: if the outcome is
    /// unknown (the connection broke, the deadline passed, the leader
    /// changed under it) the call fails with
    /// [`Error::Undetermined`](crate::Error::Undetermined). Reading the
    /// key settles it only if the read shows `new` (and `new` is unique to
    /// this caller): otherwise the swap may still land later, so swap
    /// again rather than assume it failed.
    pub async fn compare_and_swap(
        &self,
        key: impl Into<Vec<u8>>,
        expected: Option<impl Into<Vec<u8>>>,
        new: impl Into<Vec<u8>>,
    ) -> Result<(Option<Bytes>, bool)> {
        let (key, new) = (bytes(key), bytes(new));
        check_key(&key, true)?;
        check_value(&new)?;
        let req = RawCompareAndSwapRequest {
            context: None,
            key: key.clone(),
            value: new,
            previous_not_exist: expected.is_none(),
            previous_value: expected.map(bytes).unwrap_or_default(),
        };
        let mut call = self.call(Idempotence::NotIdempotent("compare_and_swap"));
        let (_, reply) = self
            .inner
            .on_key(&key, Side::At, &req, false, &mut call)
            .await?;
        let previous = (!reply.previous_not_exist).then_some(reply.previous_value);
        Ok((previous, reply.succeed))
    }
}
