//! The `Kv` gRPC service. Each request is checked against the limits, then
//! sent to its region's peer: writes are proposed and answered when they
//! apply; reads wait for the peer's go-ahead (lease, or ReadIndex) and are
//! then served from RocksDB, bounded by the region's range.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use flotilla_proto::kvrpcpb::kv_server::Kv;
use flotilla_proto::kvrpcpb::*;
use flotilla_proto::metapb;
use flotilla_proto::raft_cmdpb::{self, request::Cmd};
use tokio::sync::oneshot;
use tonic::{Request, Response, Status};

use super::limits;
use crate::apply::exec::region_end;
use crate::driver::context::StoreContext;
use crate::driver::handler::PeerRouter;
use crate::engine::CF_DEFAULT;
use crate::peer::msg::{KeyCheck, PeerMsg, ReadCmd, SplitCmd, WriteCmd, WriteResponse};
use crate::poll::router::SendError;
use crate::region_error;

/// How long a client should wait when a mailbox or the apply queue is full.
const BUSY_BACKOFF_MS: u64 = 50;

/// The raw KV service of one store.
pub struct KvService {
    router: Arc<PeerRouter>,
    store: Arc<StoreContext>,
}

/// A peer's answer: the value, or a region error for the client.
type Routed<T> = Result<T, RegionError>;

impl KvService {
    /// The service over `router`'s peers.
    pub fn new(router: Arc<PeerRouter>, store: Arc<StoreContext>) -> KvService {
        KvService { router, store }
    }

    fn deliver(&self, region_id: u64, msg: PeerMsg) -> Result<(), RegionError> {
        if self.store.apply_pool.is_busy() {
            return Err(region_error::server_is_busy(
                "apply queue full",
                BUSY_BACKOFF_MS,
            ));
        }
        match self.router.send(region_id, msg) {
            Ok(()) => Ok(()),
            Err(SendError::NotFound(_)) => Err(region_error::region_not_found(region_id)),
            Err(SendError::Full(_)) => Err(region_error::server_is_busy(
                format!("region {region_id} mailbox full"),
                BUSY_BACKOFF_MS,
            )),
        }
    }

    async fn write(
        &self,
        ctx: &Context,
        requests: Vec<raft_cmdpb::Request>,
    ) -> Result<Routed<WriteResponse>, Status> {
        let (cb, rx) = oneshot::channel();
        let cmd = WriteCmd {
            ctx: *ctx,
            requests,
            cb,
        };
        if let Err(e) = self.deliver(ctx.region_id, PeerMsg::Write(cmd)) {
            return Ok(Err(e));
        }
        let started = Instant::now();
        let result = rx.await.map_err(|_| {
            // The peer or the store went away after taking the write: it
            // may or may not have committed.
            Status::unavailable("write outcome unknown: the region's peer stopped")
        })?;
        self.store
            .metrics
            .write_duration
            .observe(started.elapsed().as_secs_f64());
        Ok(result)
    }

    async fn read(&self, ctx: &Context, keys: KeyCheck) -> Result<Routed<metapb::Region>, Status> {
        let (cb, rx) = oneshot::channel();
        let cmd = ReadCmd {
            ctx: *ctx,
            keys,
            cb,
        };
        if let Err(e) = self.deliver(ctx.region_id, PeerMsg::Read(cmd)) {
            return Ok(Err(e));
        }
        rx.await
            .map_err(|_| Status::unavailable("the region's peer stopped before the read"))
    }

    fn get_value(&self, key: &[u8]) -> Result<Option<Bytes>, Status> {
        self.store
            .engine
            .get(CF_DEFAULT, key)
            .map(|v| v.map(Bytes::from))
            .map_err(|e| Status::internal(e.to_string()))
    }

    fn scan_engine(
        &self,
        region: &metapb::Region,
        req: &RawScanRequest,
    ) -> Result<(Vec<KvPair>, bool), Status> {
        let engine = &self.store.engine;
        let mut opts = rocksdb::ReadOptions::default();
        let (lower, upper) = scan_bounds(region, req);
        opts.set_iterate_lower_bound(lower.to_vec());
        opts.set_iterate_upper_bound(upper.to_vec());
        let mut iter = engine.db().raw_iterator_cf_opt(engine.cf(CF_DEFAULT), opts);
        if req.reverse {
            iter.seek_to_last();
        } else {
            iter.seek_to_first();
        }
        let mut out = Vec::new();
        let mut bytes = 0;
        let mut truncated = false;
        while out.len() < req.limit as usize {
            let (Some(k), Some(v)) = (iter.key(), iter.value()) else {
                break;
            };
            let size = k.len() + if req.key_only { 0 } else { v.len() };
            if !out.is_empty() && bytes + size > limits::MAX_REPLY_BYTES {
                truncated = true;
                break;
            }
            bytes += size;
            out.push(KvPair {
                key: Bytes::copy_from_slice(k),
                value: if req.key_only {
                    Bytes::new()
                } else {
                    Bytes::copy_from_slice(v)
                },
            });
            if req.reverse {
                iter.prev();
            } else {
                iter.next();
            }
        }
        iter.status().map_err(|e| Status::internal(e.to_string()))?;
        Ok((out, truncated))
    }

    fn record<T>(&self, method: &str, started: Instant, result: &Result<Response<T>, Status>)
    where
        T: HasRegionError,
    {
        let outcome = match result {
            Ok(r) if r.get_ref().region_error().is_some() => {
                if r.get_ref()
                    .region_error()
                    .is_some_and(|e| e.server_is_busy.is_some())
                {
                    "busy"
                } else {
                    "region_error"
                }
            }
            Ok(_) => "ok",
            Err(s) if s.code() == tonic::Code::InvalidArgument => "invalid_argument",
            Err(_) => "error",
        };
        let m = &self.store.metrics;
        m.kv_requests.with_label_values(&[method, outcome]).inc();
        m.kv_duration
            .with_label_values(&[method])
            .observe(started.elapsed().as_secs_f64());
    }
}

/// The iteration bounds of a scan, clamped to the region.
fn scan_bounds(region: &metapb::Region, req: &RawScanRequest) -> (Bytes, Bytes) {
    let end = region_end(region);
    if req.reverse {
        let upper = if req.start_key.is_empty() || req.start_key > end {
            end
        } else {
            req.start_key.clone()
        };
        let lower = req.end_key.clone().max(region.start_key.clone());
        (lower, upper)
    } else {
        let upper = if req.end_key.is_empty() {
            end
        } else {
            req.end_key.clone().min(end)
        };
        (req.start_key.clone(), upper)
    }
}

/// Responses that carry a region error (every `Raw*Response`).
pub trait HasRegionError {
    /// The region error, if the store could not serve the request.
    fn region_error(&self) -> Option<&RegionError>;
}

macro_rules! has_region_error {
    ($($t:ty),*) => {$(
        impl HasRegionError for $t {
            fn region_error(&self) -> Option<&RegionError> {
                self.region_error.as_ref()
            }
        }
    )*};
}

has_region_error!(
    RawGetResponse,
    RawBatchGetResponse,
    RawPutResponse,
    RawBatchPutResponse,
    RawDeleteResponse,
    RawBatchDeleteResponse,
    RawScanResponse,
    RawDeleteRangeResponse,
    RawCompareAndSwapResponse,
    SplitRegionResponse
);

fn put(key: Bytes, value: Bytes) -> raft_cmdpb::Request {
    raft_cmdpb::Request {
        cmd: Some(Cmd::Put(raft_cmdpb::PutRequest { key, value })),
    }
}

fn delete(key: Bytes) -> raft_cmdpb::Request {
    raft_cmdpb::Request {
        cmd: Some(Cmd::Delete(raft_cmdpb::DeleteRequest { key })),
    }
}

/// Runs a handler and records its metrics.
macro_rules! served {
    ($self:ident, $method:literal, $body:expr) => {{
        let started = Instant::now();
        let result = $body.await.map(Response::new);
        $self.record($method, started, &result);
        result
    }};
}

impl KvService {
    async fn raw_get_inner(&self, req: RawGetRequest) -> Result<RawGetResponse, Status> {
        let ctx = limits::context(req.context.as_ref())?;
        limits::key(&req.key, false)?;
        if let Err(e) = self
            .read(ctx, KeyCheck::Keys(vec![req.key.clone()]))
            .await?
        {
            return Ok(RawGetResponse {
                region_error: Some(e),
                ..Default::default()
            });
        }
        let value = self.get_value(&req.key)?;
        Ok(RawGetResponse {
            region_error: None,
            not_found: value.is_none(),
            value: value.unwrap_or_default(),
        })
    }

    async fn raw_batch_get_inner(
        &self,
        req: RawBatchGetRequest,
    ) -> Result<RawBatchGetResponse, Status> {
        let ctx = limits::context(req.context.as_ref())?;
        limits::keys(&req.keys, false)?;
        if let Err(e) = self.read(ctx, KeyCheck::Keys(req.keys.clone())).await? {
            return Ok(RawBatchGetResponse {
                region_error: Some(e),
                ..Default::default()
            });
        }
        let mut pairs = Vec::new();
        let mut bytes = 0;
        for key in req.keys {
            if let Some(value) = self.get_value(&key)? {
                bytes += key.len() + value.len();
                if bytes > limits::MAX_REPLY_BYTES {
                    return Err(Status::resource_exhausted(format!(
                        "batch get reply exceeds {} bytes: read fewer keys per request",
                        limits::MAX_REPLY_BYTES
                    )));
                }
                pairs.push(KvPair { key, value });
            }
        }
        Ok(RawBatchGetResponse {
            region_error: None,
            pairs,
        })
    }

    async fn simple_write(
        &self,
        ctx: Option<&Context>,
        requests: Vec<raft_cmdpb::Request>,
    ) -> Result<Option<RegionError>, Status> {
        let ctx = limits::context(ctx)?;
        Ok(self.write(ctx, requests).await?.err())
    }

    async fn raw_put_inner(&self, req: RawPutRequest) -> Result<RawPutResponse, Status> {
        limits::key(&req.key, true)?;
        limits::value(&req.value)?;
        let region_error = self
            .simple_write(req.context.as_ref(), vec![put(req.key, req.value)])
            .await?;
        Ok(RawPutResponse { region_error })
    }

    async fn raw_batch_put_inner(
        &self,
        req: RawBatchPutRequest,
    ) -> Result<RawBatchPutResponse, Status> {
        limits::pairs(&req.pairs)?;
        let requests = req.pairs.into_iter().map(|p| put(p.key, p.value)).collect();
        let region_error = self.simple_write(req.context.as_ref(), requests).await?;
        Ok(RawBatchPutResponse { region_error })
    }

    async fn raw_delete_inner(&self, req: RawDeleteRequest) -> Result<RawDeleteResponse, Status> {
        limits::key(&req.key, true)?;
        let region_error = self
            .simple_write(req.context.as_ref(), vec![delete(req.key)])
            .await?;
        Ok(RawDeleteResponse { region_error })
    }

    async fn raw_batch_delete_inner(
        &self,
        req: RawBatchDeleteRequest,
    ) -> Result<RawBatchDeleteResponse, Status> {
        limits::keys(&req.keys, true)?;
        let requests = req.keys.into_iter().map(delete).collect();
        let region_error = self.simple_write(req.context.as_ref(), requests).await?;
        Ok(RawBatchDeleteResponse { region_error })
    }

    async fn raw_scan_inner(&self, req: RawScanRequest) -> Result<RawScanResponse, Status> {
        let ctx = limits::context(req.context.as_ref())?;
        limits::scan(&req.start_key, &req.end_key, req.limit, req.reverse)?;
        let check = if req.reverse {
            KeyCheck::Below(req.start_key.clone())
        } else {
            KeyCheck::RangeStart(req.start_key.clone())
        };
        let region = match self.read(ctx, check).await? {
            Ok(region) => region,
            Err(e) => {
                return Ok(RawScanResponse {
                    region_error: Some(e),
                    ..Default::default()
                })
            }
        };
        let (kvs, truncated) = self.scan_engine(&region, &req)?;
        Ok(RawScanResponse {
            region_error: None,
            kvs,
            truncated,
        })
    }

    async fn raw_delete_range_inner(
        &self,
        req: RawDeleteRangeRequest,
    ) -> Result<RawDeleteRangeResponse, Status> {
        limits::delete_range(&req.start_key, &req.end_key)?;
        let cmd = raft_cmdpb::Request {
            cmd: Some(Cmd::DeleteRange(raft_cmdpb::DeleteRangeRequest {
                start_key: req.start_key,
                end_key: req.end_key,
            })),
        };
        let region_error = self.simple_write(req.context.as_ref(), vec![cmd]).await?;
        Ok(RawDeleteRangeResponse { region_error })
    }

    async fn split_region_inner(
        &self,
        req: SplitRegionRequest,
    ) -> Result<SplitRegionResponse, Status> {
        let ctx = limits::context(req.context.as_ref())?;
        limits::split_keys(&req.split_keys)?;
        let (cb, rx) = oneshot::channel();
        let cmd = SplitCmd {
            epoch: ctx.region_epoch.unwrap_or_default(),
            ctx: Some(*ctx),
            keys: req.split_keys,
            cb: Some(cb),
        };
        let refused = |e| SplitRegionResponse {
            region_error: Some(e),
            regions: Vec::new(),
        };
        if let Err(e) = self.deliver(ctx.region_id, PeerMsg::Split(cmd)) {
            return Ok(refused(e));
        }
        let outcome = rx
            .await
            .map_err(|_| Status::unavailable("split outcome unknown: the region's peer stopped"))?;
        Ok(match outcome {
            Ok(done) => SplitRegionResponse {
                region_error: None,
                regions: done.regions,
            },
            Err(e) => refused(e),
        })
    }

    async fn raw_cas_inner(
        &self,
        req: RawCompareAndSwapRequest,
    ) -> Result<RawCompareAndSwapResponse, Status> {
        let ctx = limits::context(req.context.as_ref())?;
        limits::key(&req.key, true)?;
        limits::value(&req.value)?;
        limits::value(&req.previous_value)?;
        let cmd = raft_cmdpb::Request {
            cmd: Some(Cmd::Cas(raft_cmdpb::CompareAndSwapRequest {
                key: req.key,
                value: req.value,
                previous_value: req.previous_value,
                previous_not_exist: req.previous_not_exist,
            })),
        };
        let resp = match self.write(ctx, vec![cmd]).await? {
            Ok(resp) => resp,
            Err(e) => {
                return Ok(RawCompareAndSwapResponse {
                    region_error: Some(e),
                    ..Default::default()
                })
            }
        };
        let outcome = resp
            .cas
            .into_iter()
            .next()
            .ok_or_else(|| Status::internal("compare-and-swap applied without an outcome"))?;
        Ok(RawCompareAndSwapResponse {
            region_error: None,
            succeed: outcome.succeed,
            previous_not_exist: outcome.previous.is_none(),
            previous_value: outcome.previous.unwrap_or_default(),
        })
    }
}

#[tonic::async_trait]
impl Kv for KvService {
    async fn raw_get(&self, r: Request<RawGetRequest>) -> Result<Response<RawGetResponse>, Status> {
        served!(self, "raw_get", self.raw_get_inner(r.into_inner()))
    }

    async fn raw_batch_get(
        &self,
        r: Request<RawBatchGetRequest>,
    ) -> Result<Response<RawBatchGetResponse>, Status> {
        served!(
            self,
            "raw_batch_get",
            self.raw_batch_get_inner(r.into_inner())
        )
    }

    async fn raw_put(&self, r: Request<RawPutRequest>) -> Result<Response<RawPutResponse>, Status> {
        served!(self, "raw_put", self.raw_put_inner(r.into_inner()))
    }

    async fn raw_batch_put(
        &self,
        r: Request<RawBatchPutRequest>,
    ) -> Result<Response<RawBatchPutResponse>, Status> {
        served!(
            self,
            "raw_batch_put",
            self.raw_batch_put_inner(r.into_inner())
        )
    }

    async fn raw_delete(
        &self,
        r: Request<RawDeleteRequest>,
    ) -> Result<Response<RawDeleteResponse>, Status> {
        served!(self, "raw_delete", self.raw_delete_inner(r.into_inner()))
    }

    async fn raw_batch_delete(
        &self,
        r: Request<RawBatchDeleteRequest>,
    ) -> Result<Response<RawBatchDeleteResponse>, Status> {
        served!(
            self,
            "raw_batch_delete",
            self.raw_batch_delete_inner(r.into_inner())
        )
    }

    async fn raw_scan(
        &self,
        r: Request<RawScanRequest>,
    ) -> Result<Response<RawScanResponse>, Status> {
        served!(self, "raw_scan", self.raw_scan_inner(r.into_inner()))
    }

    async fn raw_delete_range(
        &self,
        r: Request<RawDeleteRangeRequest>,
    ) -> Result<Response<RawDeleteRangeResponse>, Status> {
        served!(
            self,
            "raw_delete_range",
            self.raw_delete_range_inner(r.into_inner())
        )
    }

    async fn raw_compare_and_swap(
        &self,
        r: Request<RawCompareAndSwapRequest>,
    ) -> Result<Response<RawCompareAndSwapResponse>, Status> {
        served!(
            self,
            "raw_compare_and_swap",
            self.raw_cas_inner(r.into_inner())
        )
    }

    async fn split_region(
        &self,
        r: Request<SplitRegionRequest>,
    ) -> Result<Response<SplitRegionResponse>, Status> {
        served!(
            self,
            "split_region",
            self.split_region_inner(r.into_inner())
        )
    }
}
