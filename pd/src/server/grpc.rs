//! The `Pd` gRPC service. Each handler checks that this member serves (or
//! answers `NotLeader` with the leader's addresses) and that the request's
//! cluster ID matches, then works on the leader's in-memory cluster and,
//! for changes that must survive, waits for the Raft write to apply.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use flotilla_proto::metapb;
use flotilla_proto::pdpb::pd_server::Pd;
use flotilla_proto::pdpb::*;
use prost::Message as _;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use super::alloc::{MAX_ID_BATCH, MAX_TSO_BATCH};
use super::{members, Leader, Shared};
use crate::cluster::Cluster;
use crate::error::{ok_header, PdError};
use crate::storage::meta::{region_key, Op, BOOTSTRAP_KEY};
use crate::storage::CF_META;

/// Most regions one `ScanRegions` returns.
pub const MAX_SCAN_REGIONS: usize = 10_000;
/// Responses queued per region heartbeat stream.
const HEARTBEAT_STREAM_CAPACITY: usize = 1024;
/// Region heartbeats handled per hold of the cluster lock (a few hundred
/// microseconds); a batch yields to other tasks in between.
const HEARTBEATS_PER_LOCK_HOLD: usize = 64;

/// Response types carrying a header.
trait WithHeader: Default {
    fn set_header(&mut self, header: ResponseHeader);
}

macro_rules! with_header {
    ($($t:ty),*) => {$(
        impl WithHeader for $t {
            fn set_header(&mut self, header: ResponseHeader) {
                self.header = Some(header);
            }
        }
    )*};
}

with_header!(
    GetMembersResponse,
    BootstrapResponse,
    IsBootstrappedResponse,
    AllocIdResponse,
    TsoResponse,
    PutStoreResponse,
    GetStoreResponse,
    GetAllStoresResponse,
    StoreHeartbeatResponse,
    RegionHeartbeatResponse,
    GetRegionResponse,
    ScanRegionsResponse,
    AskBatchSplitResponse,
    ReportBatchSplitResponse
);

fn answer<T: WithHeader>(cluster_id: u64, result: Result<T, PdError>) -> T {
    match result {
        Ok(mut resp) => {
            resp.set_header(ok_header(cluster_id));
            resp
        }
        Err(e) => {
            let mut resp = T::default();
            resp.set_header(e.header(cluster_id));
            resp
        }
    }
}

/// The gRPC service of one member.
pub struct PdService {
    shared: Arc<Shared>,
    /// Turns true when the member stops; ends the streams.
    shutdown: watch::Receiver<bool>,
}

impl PdService {
    pub fn new(shared: Arc<Shared>, shutdown: watch::Receiver<bool>) -> PdService {
        PdService { shared, shutdown }
    }

    /// The serving leader, if the request is for this cluster.
    fn serving(&self, header: Option<&RequestHeader>) -> Result<Arc<Leader>, PdError> {
        let leader = self.shared.serving()?;
        let got = header.map_or(0, |h| h.cluster_id);
        if got != leader.cluster_id {
            return Err(PdError::ClusterIdMismatch {
                expected: leader.cluster_id,
                got,
            });
        }
        Ok(leader)
    }

    /// Runs a unary handler: timing, header, and error conversion.
    async fn unary<T, F>(&self, method: &str, f: F) -> Result<Response<T>, Status>
    where
        T: WithHeader,
        F: std::future::Future<Output = Result<T, PdError>>,
    {
        let started = Instant::now();
        let result = f.await;
        self.shared
            .metrics
            .grpc_duration
            .with_label_values(&[method])
            .observe(started.elapsed().as_secs_f64());
        Ok(Response::new(answer(self.shared.cluster_id(), result)))
    }

    async fn bootstrap_inner(&self, req: BootstrapRequest) -> Result<BootstrapResponse, PdError> {
        let leader = self.serving(req.header.as_ref())?;
        let _one_at_a_time = leader.bootstrap_lock.lock().await;
        if let Some(region) = leader.cluster.read().bootstrap.clone() {
            return Ok(BootstrapResponse {
                region: Some(region),
                already_bootstrapped: true,
                ..Default::default()
            });
        }
        let stores = leader.cluster.read().bootstrap_stores(req.store_id)?;
        let first = leader.ids.alloc(1 + stores.len() as u32).await?;
        let peers: Vec<(u64, u64)> = stores
            .iter()
            .enumerate()
            .map(|(i, s)| (first + 1 + i as u64, *s))
            .collect();
        let region = Cluster::first_region(first, &peers);
        let info = RegionInfo {
            region: Some(region.clone()),
            ..Default::default()
        };
        let ops = vec![
            Op::Insert(
                Bytes::from_static(BOOTSTRAP_KEY),
                Bytes::from(region.encode_to_vec()),
            ),
            Op::Insert(
                Bytes::from(region_key(region.id)),
                Bytes::from(info.encode_to_vec()),
            ),
        ];
        leader.propose(&self.shared, ops).await?;
        // Insert is first-writer-wins: whatever is stored now is the one
        // first region, whoever wrote it.
        let stored = self
            .shared
            .engine
            .get(CF_META, BOOTSTRAP_KEY)
            .map_err(|e| PdError::Unavailable(e.to_string()))?
            .ok_or_else(|| PdError::Unavailable("bootstrap record missing after write".into()))?;
        let winner =
            metapb::Region::decode(&*stored).map_err(|e| PdError::Unavailable(e.to_string()))?;
        leader
            .cluster
            .write()
            .apply_bootstrap(winner.clone(), self.shared.now_ms())?;
        tracing::info!(region = winner.id, peers = ?winner.peers, "cluster bootstrapped");
        Ok(BootstrapResponse {
            already_bootstrapped: winner.id != region.id,
            region: Some(winner),
            ..Default::default()
        })
    }

    async fn put_store_inner(&self, req: PutStoreRequest) -> Result<PutStoreResponse, PdError> {
        let leader = self.serving(req.header.as_ref())?;
        let record = leader.cluster.read().check_put_store(req.store.as_ref())?;
        leader.save_store(&self.shared, record).await?;
        Ok(PutStoreResponse::default())
    }

    async fn ask_split_inner(
        &self,
        req: AskBatchSplitRequest,
    ) -> Result<AskBatchSplitResponse, PdError> {
        let leader = self.serving(req.header.as_ref())?;
        let peers = leader
            .cluster
            .read()
            .check_ask_split(req.region.as_ref(), req.split_count)?;
        let per_region = 1 + peers as u64;
        let total = per_region * u64::from(req.split_count);
        let mut ids = Vec::with_capacity(req.split_count as usize);
        let mut next = 0;
        let mut left = 0;
        for _ in 0..req.split_count {
            if left < per_region {
                let want = total.min(u64::from(MAX_ID_BATCH)) as u32;
                next = leader.ids.alloc(want).await?;
                left = u64::from(want);
            }
            ids.push(SplitId {
                new_region_id: next,
                new_peer_ids: (next + 1..next + per_region).collect(),
            });
            next += per_region;
            left -= per_region;
        }
        Ok(AskBatchSplitResponse {
            ids,
            ..Default::default()
        })
    }

    async fn handle_heartbeat_batch(
        &self,
        req: &RegionHeartbeatRequest,
    ) -> Result<RegionHeartbeatResponse, PdError> {
        let leader = self.serving(req.header.as_ref())?;
        let _turn = leader.heartbeat_turn.lock().await;
        if !leader.cluster.read().stores.contains_key(&req.store_id) {
            return Err(PdError::StoreNotFound(req.store_id));
        }
        let now = self.shared.now_ms();
        let mut resp = RegionHeartbeatResponse::default();
        let metrics = &self.shared.metrics;
        for (n, chunk) in req.regions.chunks(HEARTBEATS_PER_LOCK_HOLD).enumerate() {
            if n > 0 {
                // A whole batch takes milliseconds: routing lookups (for
                // the lock, and for this runtime thread) get their turn
                // between chunks instead.
                tokio::task::yield_now().await;
            }
            let mut cluster = leader.cluster.write();
            for hb in chunk {
                match cluster.region_heartbeat(req.store_id, hb, now) {
                    Ok(outcome) => {
                        metrics.region_heartbeats.with_label_values(&["ok"]).inc();
                        resp.commands.extend(outcome.command);
                    }
                    Err(e) => {
                        metrics
                            .region_heartbeats
                            .with_label_values(&["rejected"])
                            .inc();
                        resp.rejected.push(RegionRejection {
                            region_id: hb.region.as_ref().map_or(0, |r| r.id),
                            error: Some(e.to_wire()),
                        });
                    }
                }
            }
        }
        Ok(resp)
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl Pd for PdService {
    async fn get_members(
        &self,
        _req: Request<GetMembersRequest>,
    ) -> Result<Response<GetMembersResponse>, Status> {
        let shared = &self.shared;
        self.unary("get_members", async {
            let members = members::list(shared).map_err(|e| PdError::Unavailable(e.to_string()))?;
            let leader = members::find(shared, shared.raft.status().leader_id);
            Ok(GetMembersResponse {
                members,
                leader,
                ..Default::default()
            })
        })
        .await
    }

    async fn bootstrap(
        &self,
        req: Request<BootstrapRequest>,
    ) -> Result<Response<BootstrapResponse>, Status> {
        self.unary("bootstrap", self.bootstrap_inner(req.into_inner()))
            .await
    }

    async fn is_bootstrapped(
        &self,
        req: Request<IsBootstrappedRequest>,
    ) -> Result<Response<IsBootstrappedResponse>, Status> {
        let req = req.into_inner();
        self.unary("is_bootstrapped", async {
            let leader = self.serving(req.header.as_ref())?;
            let bootstrapped = leader.cluster.read().is_bootstrapped();
            Ok(IsBootstrappedResponse {
                bootstrapped,
                ..Default::default()
            })
        })
        .await
    }

    async fn alloc_id(
        &self,
        req: Request<AllocIdRequest>,
    ) -> Result<Response<AllocIdResponse>, Status> {
        let req = req.into_inner();
        self.unary("alloc_id", async {
            let leader = self.serving(req.header.as_ref())?;
            if req.count > MAX_ID_BATCH {
                return Err(PdError::InvalidArgument(format!(
                    "at most {MAX_ID_BATCH} IDs per request"
                )));
            }
            let count = req.count.max(1);
            let id = leader.ids.alloc(count).await?;
            self.shared.metrics.id_requests.inc();
            Ok(AllocIdResponse {
                id,
                count,
                ..Default::default()
            })
        })
        .await
    }

    type TsoStream = BoxStream<TsoResponse>;

    async fn tso(
        &self,
        req: Request<Streaming<TsoRequest>>,
    ) -> Result<Response<Self::TsoStream>, Status> {
        let mut incoming = req.into_inner();
        let shared = self.shared.clone();
        let mut shutdown = self.shutdown.clone();
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            while let Some(Ok(req)) = next_unless_stopping(&mut incoming, &mut shutdown).await {
                let result = tso_once(&shared, &req).await;
                let failed = result.is_err();
                let resp = answer(shared.cluster_id(), result);
                if tx.send(Ok(resp)).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn put_store(
        &self,
        req: Request<PutStoreRequest>,
    ) -> Result<Response<PutStoreResponse>, Status> {
        self.unary("put_store", self.put_store_inner(req.into_inner()))
            .await
    }

    async fn get_store(
        &self,
        req: Request<GetStoreRequest>,
    ) -> Result<Response<GetStoreResponse>, Status> {
        let req = req.into_inner();
        self.unary("get_store", async {
            let leader = self.serving(req.header.as_ref())?;
            let info = leader
                .cluster
                .read()
                .store_info(req.store_id, self.shared.now_ms())
                .ok_or(PdError::StoreNotFound(req.store_id))?;
            Ok(GetStoreResponse {
                store: Some(info),
                ..Default::default()
            })
        })
        .await
    }

    async fn get_all_stores(
        &self,
        req: Request<GetAllStoresRequest>,
    ) -> Result<Response<GetAllStoresResponse>, Status> {
        let req = req.into_inner();
        self.unary("get_all_stores", async {
            let leader = self.serving(req.header.as_ref())?;
            let stores = leader
                .cluster
                .read()
                .all_stores(req.exclude_tombstone_stores, self.shared.now_ms());
            Ok(GetAllStoresResponse {
                stores,
                ..Default::default()
            })
        })
        .await
    }

    async fn store_heartbeat(
        &self,
        req: Request<StoreHeartbeatRequest>,
    ) -> Result<Response<StoreHeartbeatResponse>, Status> {
        let req = req.into_inner();
        self.unary("store_heartbeat", async {
            let leader = self.serving(req.header.as_ref())?;
            let stats = req
                .stats
                .ok_or_else(|| PdError::InvalidArgument("store heartbeat without stats".into()))?;
            leader
                .cluster
                .write()
                .store_heartbeat(&stats, self.shared.now_ms())?;
            self.shared.metrics.store_heartbeats.inc();
            Ok(StoreHeartbeatResponse::default())
        })
        .await
    }

    type RegionHeartbeatStream = BoxStream<RegionHeartbeatResponse>;

    async fn region_heartbeat(
        &self,
        req: Request<Streaming<RegionHeartbeatRequest>>,
    ) -> Result<Response<Self::RegionHeartbeatStream>, Status> {
        let mut incoming = req.into_inner();
        let service = PdService {
            shared: self.shared.clone(),
            shutdown: self.shutdown.clone(),
        };
        let mut shutdown = self.shutdown.clone();
        let (tx, rx) = mpsc::channel(HEARTBEAT_STREAM_CAPACITY);
        tokio::spawn(async move {
            let mut registered: Option<(u64, u64)> = None;
            while let Some(Ok(req)) = next_unless_stopping(&mut incoming, &mut shutdown).await {
                let started = Instant::now();
                let result = service.handle_heartbeat_batch(&req).await;
                let failed = result.is_err();
                if failed {
                    // A refused batch (wrong cluster, unknown store, ...)
                    // must not take over the store's command stream, and
                    // the stream must end: drop any registration of ours.
                    service.unregister_stream(registered, &tx);
                } else {
                    service.register_stream(&mut registered, req.store_id, &tx);
                }
                let resp = answer(service.shared.cluster_id(), result);
                service
                    .shared
                    .metrics
                    .grpc_duration
                    .with_label_values(&["region_heartbeat"])
                    .observe(started.elapsed().as_secs_f64());
                let worth_sending =
                    failed || !resp.commands.is_empty() || !resp.rejected.is_empty();
                if worth_sending && tx.send(Ok(resp)).await.is_err() {
                    return;
                }
                if failed {
                    // NotLeader and friends end the stream: the store
                    // reconnects to the right member.
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn get_region(
        &self,
        req: Request<GetRegionRequest>,
    ) -> Result<Response<GetRegionResponse>, Status> {
        let req = req.into_inner();
        self.unary("get_region", async {
            let leader = self.serving(req.header.as_ref())?;
            let region = leader
                .cluster
                .read()
                .region_by_key(&req.region_key)
                .ok_or(PdError::RegionNotFound)?;
            Ok(GetRegionResponse {
                region: Some(region),
                ..Default::default()
            })
        })
        .await
    }

    async fn get_prev_region(
        &self,
        req: Request<GetRegionRequest>,
    ) -> Result<Response<GetRegionResponse>, Status> {
        let req = req.into_inner();
        self.unary("get_prev_region", async {
            let leader = self.serving(req.header.as_ref())?;
            let region = leader
                .cluster
                .read()
                .region_below_key(&req.region_key)
                .ok_or(PdError::RegionNotFound)?;
            Ok(GetRegionResponse {
                region: Some(region),
                ..Default::default()
            })
        })
        .await
    }

    async fn get_region_by_id(
        &self,
        req: Request<GetRegionByIdRequest>,
    ) -> Result<Response<GetRegionResponse>, Status> {
        let req = req.into_inner();
        self.unary("get_region_by_id", async {
            let leader = self.serving(req.header.as_ref())?;
            let region = leader
                .cluster
                .read()
                .region_by_id(req.region_id)
                .ok_or(PdError::RegionNotFound)?;
            Ok(GetRegionResponse {
                region: Some(region),
                ..Default::default()
            })
        })
        .await
    }

    async fn scan_regions(
        &self,
        req: Request<ScanRegionsRequest>,
    ) -> Result<Response<ScanRegionsResponse>, Status> {
        let req = req.into_inner();
        self.unary("scan_regions", async {
            let leader = self.serving(req.header.as_ref())?;
            if !req.end_key.is_empty() && req.end_key <= req.start_key {
                return Err(PdError::InvalidArgument(
                    "scan end key must be after the start key".into(),
                ));
            }
            let limit = match req.limit as usize {
                0 => MAX_SCAN_REGIONS,
                n => n.min(MAX_SCAN_REGIONS),
            };
            let regions = leader
                .cluster
                .read()
                .scan_regions(&req.start_key, &req.end_key, limit);
            Ok(ScanRegionsResponse {
                regions,
                ..Default::default()
            })
        })
        .await
    }

    async fn ask_batch_split(
        &self,
        req: Request<AskBatchSplitRequest>,
    ) -> Result<Response<AskBatchSplitResponse>, Status> {
        self.unary("ask_batch_split", self.ask_split_inner(req.into_inner()))
            .await
    }

    async fn report_batch_split(
        &self,
        req: Request<ReportBatchSplitRequest>,
    ) -> Result<Response<ReportBatchSplitResponse>, Status> {
        let req = req.into_inner();
        self.unary("report_batch_split", async {
            let leader = self.serving(req.header.as_ref())?;
            leader
                .cluster
                .write()
                .report_split(&req.regions, self.shared.now_ms())?;
            Ok(ReportBatchSplitResponse::default())
        })
        .await
    }
}

impl PdService {
    /// Remembers the stream a store heartbeats on, so operator steps can be
    /// pushed to it between heartbeats. Re-registers if leadership moved
    /// to a new term on this member.
    fn register_stream(
        &self,
        registered: &mut Option<(u64, u64)>,
        store_id: u64,
        tx: &mpsc::Sender<Result<RegionHeartbeatResponse, Status>>,
    ) {
        let Ok(leader) = self.shared.serving() else {
            return;
        };
        if *registered == Some((store_id, leader.term)) {
            return;
        }
        leader.streams.lock().insert(store_id, tx.clone());
        *registered = Some((store_id, leader.term));
    }

    /// Forgets this stream's registration, if it is still the store's.
    fn unregister_stream(
        &self,
        registered: Option<(u64, u64)>,
        tx: &mpsc::Sender<Result<RegionHeartbeatResponse, Status>>,
    ) {
        let (Some((store_id, _)), Ok(leader)) = (registered, self.shared.serving()) else {
            return;
        };
        let mut streams = leader.streams.lock();
        if streams.get(&store_id).is_some_and(|t| t.same_channel(tx)) {
            streams.remove(&store_id);
        }
    }
}

/// The next request of a stream, or `None` once the member stops: a
/// graceful server shutdown waits for open streams, and an idle client
/// stream would otherwise keep the stopped member's state (and its RocksDB)
/// alive.
async fn next_unless_stopping<T>(
    incoming: &mut Streaming<T>,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<Result<T, Status>> {
    tokio::select! {
        next = incoming.next() => next,
        _ = shutdown.wait_for(|stopping| *stopping) => None,
    }
}

async fn tso_once(shared: &Shared, req: &TsoRequest) -> Result<TsoResponse, PdError> {
    let leader = shared.serving()?;
    let got = req.header.as_ref().map_or(0, |h| h.cluster_id);
    if got != leader.cluster_id {
        return Err(PdError::ClusterIdMismatch {
            expected: leader.cluster_id,
            got,
        });
    }
    if req.count > MAX_TSO_BATCH {
        return Err(PdError::InvalidArgument(format!(
            "at most {MAX_TSO_BATCH} timestamps per request"
        )));
    }
    let count = req.count.max(1);
    let (physical, logical) = leader.tso.get(count).await?;
    shared.metrics.tso_requests.inc();
    shared.metrics.tso_timestamps.inc_by(u64::from(count));
    Ok(TsoResponse {
        count,
        timestamp: Some(Timestamp {
            physical: physical as i64,
            logical: logical as i64,
        }),
        ..Default::default()
    })
}
