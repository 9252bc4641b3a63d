//! [`PdClient`]: connecting, the unary call loop and the unary methods.

use std::future::Future;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use flotilla_proto::metapb;
use flotilla_proto::pdpb::{self, RequestHeader, ResponseHeader};
use tokio::time::Instant;
use tonic::transport::Endpoint;

use super::backoff::Backoff;
use super::heartbeat::{self, RegionHeartbeatReceiver, RegionHeartbeatSender};
use super::leader::{ask_all, normalize, Grpc, Leader};
use super::retry::{self, hint, judge, Retrier, Step};
use super::tso::TsoSlot;
use super::{Members, PdClientConfig, PdError};

/// A PD client that follows the leader, retries within a deadline and
/// returns typed errors. Clones share one connection, member list and TSO
/// stream.
#[derive(Clone)]
pub struct PdClient {
    pub(crate) leader: Arc<Leader>,
    pub(crate) tso: Arc<TsoSlot>,
}

impl std::fmt::Debug for PdClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PdClient")
            .field("cluster_id", &self.leader.cluster_id)
            .field("leader", &self.leader.leader_url())
            .finish()
    }
}

/// Responses that carry a header.
pub(crate) trait HasHeader {
    fn header(&self) -> Option<&ResponseHeader>;
}

macro_rules! has_header {
    ($($t:ty),*) => {$(
        impl HasHeader for $t {
            fn header(&self) -> Option<&ResponseHeader> {
                self.header.as_ref()
            }
        }
    )*};
}

has_header!(
    pdpb::GetMembersResponse,
    pdpb::BootstrapResponse,
    pdpb::IsBootstrappedResponse,
    pdpb::AllocIdResponse,
    pdpb::PutStoreResponse,
    pdpb::GetStoreResponse,
    pdpb::GetAllStoresResponse,
    pdpb::StoreHeartbeatResponse,
    pdpb::GetRegionResponse,
    pdpb::ScanRegionsResponse,
    pdpb::AskBatchSplitResponse,
    pdpb::ReportBatchSplitResponse
);

fn missing(what: &str) -> PdError {
    PdError::Unknown(format!("PD answered without {what}"))
}

impl PdClient {
    /// Connects to the PD cluster behind `endpoints` (`host:port` or
    /// `http://host:port`; any subset of the members will do): finds the
    /// leader and the cluster ID, retrying until `config.timeout`.
    pub async fn connect(
        endpoints: &[String],
        config: PdClientConfig,
    ) -> Result<PdClient, PdError> {
        if endpoints.is_empty() {
            return Err(PdError::InvalidArgument("no PD endpoints given".into()));
        }
        let seeds: Vec<String> = endpoints.iter().map(|e| normalize(e)).collect();
        for s in &seeds {
            // A typo is not worth retrying for ten seconds.
            Endpoint::from_shared(s.clone())
                .map_err(|e| PdError::InvalidArgument(format!("bad PD endpoint {s:?}: {e}")))?;
        }
        let deadline = Instant::now() + config.timeout;
        let mut backoff = Backoff::new(config.backoff_base, config.backoff_max);
        loop {
            let last = match ask_all(&seeds, &config, 0, deadline).await {
                Ok(found) => {
                    match Leader::establish(seeds.clone(), config.clone(), found, deadline).await {
                        Ok(leader) => {
                            return Ok(PdClient {
                                leader,
                                tso: Arc::new(TsoSlot::default()),
                            })
                        }
                        Err(e) => e,
                    }
                }
                Err(e) => e,
            };
            tracing::debug!(error = %last, "PD not reachable yet");
            if !backoff.wait(deadline).await {
                return Err(retry::expired(config.timeout, &last));
            }
        }
    }

    /// The cluster's ID, learned at connect.
    pub fn cluster_id(&self) -> u64 {
        self.leader.cluster_id
    }

    /// The client URL of the member this client currently believes leads
    /// (`None` between losing one leader and finding the next).
    pub fn leader_url(&self) -> Option<String> {
        self.leader.leader_url()
    }

    /// The configuration the client was built with.
    pub fn config(&self) -> &PdClientConfig {
        &self.leader.config
    }

    pub(crate) fn header(&self) -> Option<RequestHeader> {
        Some(RequestHeader {
            cluster_id: self.leader.cluster_id,
        })
    }

    /// Runs one unary RPC on the leader with the retry policy of the
    /// module docs. `f` builds the call from a gRPC client and the header;
    /// it runs once per attempt.
    async fn call<Resp, F, Fut>(&self, what: &'static str, mut f: F) -> Result<Resp, PdError>
    where
        Resp: HasHeader,
        F: FnMut(Grpc, Option<RequestHeader>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
    {
        let mut retrier = Retrier::new(&self.leader.config);
        loop {
            let step = self.attempt(what, &mut f, retrier.deadline).await;
            if let Some(out) = retrier.after(what, step).await {
                return out;
            }
        }
    }

    async fn attempt<Resp, F, Fut>(&self, what: &str, f: &mut F, deadline: Instant) -> Step<Resp>
    where
        Resp: HasHeader,
        F: FnMut(Grpc, Option<RequestHeader>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
    {
        let conn = match self.leader.current(deadline).await {
            Ok(c) => c,
            Err(e) => return Step::Retry(e),
        };
        let until = (Instant::now() + self.leader.config.rpc_timeout).min(deadline);
        let err = match tokio::time::timeout_at(until, f(conn.grpc.clone(), self.header())).await {
            Ok(Ok(resp)) => {
                let resp = resp.into_inner();
                match PdError::from_header(resp.header()) {
                    None => return Step::Done(Ok(resp)),
                    Some(e) => {
                        return judge(&self.leader, &conn, e, hint(resp.header()), deadline).await
                    }
                }
            }
            Ok(Err(status)) => PdError::from_status(&status),
            Err(_) => PdError::Transport(format!("{what} on {} timed out", conn.url)),
        };
        judge(&self.leader, &conn, err, None, deadline).await
    }

    /// The members and the leader, fresh from the leader (this also
    /// refreshes the list the client rediscovers the leader from).
    pub async fn members(&self) -> Result<Members, PdError> {
        let resp = self
            .call("GetMembers", |mut c, header| async move {
                c.get_members(pdpb::GetMembersRequest { header }).await
            })
            .await?;
        self.leader.update_members(&resp);
        Ok(Members {
            members: resp.members,
            leader: resp.leader,
        })
    }

    /// `count` (1..=10,000; 0 means 1) unique IDs: never handed out before,
    /// never again.
    pub async fn alloc_id(&self, count: u32) -> Result<Range<u64>, PdError> {
        let resp = self
            .call("AllocId", |mut c, header| async move {
                c.alloc_id(pdpb::AllocIdRequest { header, count }).await
            })
            .await?;
        if resp.id == 0 || resp.count < count.max(1) {
            return Err(PdError::Unknown(format!(
                "AllocId({count}) answered {} IDs from {}",
                resp.count, resp.id
            )));
        }
        Ok(resp.id..resp.id + u64::from(resp.count))
    }

    /// Registers `store` or updates its record (address, labels, state).
    pub async fn put_store(&self, store: metapb::Store) -> Result<(), PdError> {
        self.call("PutStore", |mut c, header| {
            let store = Some(store.clone());
            async move { c.put_store(pdpb::PutStoreRequest { header, store }).await }
        })
        .await?;
        Ok(())
    }

    /// One store as PD sees it; [`PdError::StoreNotFound`] if unknown.
    pub async fn get_store(&self, store_id: u64) -> Result<pdpb::StoreInfo, PdError> {
        let resp = self
            .call("GetStore", |mut c, header| async move {
                c.get_store(pdpb::GetStoreRequest { header, store_id })
                    .await
            })
            .await?;
        resp.store.ok_or_else(|| missing("a store"))
    }

    /// Every store, tombstones too unless `exclude_tombstone`.
    pub async fn get_all_stores(
        &self,
        exclude_tombstone: bool,
    ) -> Result<Vec<pdpb::StoreInfo>, PdError> {
        let resp = self
            .call("GetAllStores", |mut c, header| async move {
                let req = pdpb::GetAllStoresRequest {
                    header,
                    exclude_tombstone_stores: exclude_tombstone,
                };
                c.get_all_stores(req).await
            })
            .await?;
        Ok(resp.stores)
    }

    /// Reports a store's statistics (and that it is alive).
    pub async fn store_heartbeat(&self, stats: pdpb::StoreStats) -> Result<(), PdError> {
        self.call("StoreHeartbeat", |mut c, header| {
            let stats = Some(stats);
            async move {
                c.store_heartbeat(pdpb::StoreHeartbeatRequest { header, stats })
                    .await
            }
        })
        .await?;
        Ok(())
    }

    /// Bootstraps the cluster from registered store `store_id`: returns the
    /// first region and whether an earlier call had bootstrapped already.
    /// [`PdError::NotEnoughStores`] until `max-replicas` stores registered;
    /// the caller retries on its own schedule.
    pub async fn bootstrap(&self, store_id: u64) -> Result<(metapb::Region, bool), PdError> {
        let resp = self
            .call("Bootstrap", |mut c, header| async move {
                c.bootstrap(pdpb::BootstrapRequest { header, store_id })
                    .await
            })
            .await?;
        let region = resp.region.ok_or_else(|| missing("the first region"))?;
        Ok((region, resp.already_bootstrapped))
    }

    /// Whether the cluster has its first region.
    pub async fn is_bootstrapped(&self) -> Result<bool, PdError> {
        let resp = self
            .call("IsBootstrapped", |mut c, header| async move {
                c.is_bootstrapped(pdpb::IsBootstrappedRequest { header })
                    .await
            })
            .await?;
        Ok(resp.bootstrapped)
    }

    /// The region holding `key` and its leader; `None` if PD knows none.
    pub async fn get_region(&self, key: &[u8]) -> Result<Option<pdpb::RegionInfo>, PdError> {
        let key = Bytes::copy_from_slice(key);
        let resp = self.call("GetRegion", |mut c, header| {
            let region_key = key.clone();
            async move {
                c.get_region(pdpb::GetRegionRequest { header, region_key })
                    .await
            }
        });
        region_or_none(resp.await)
    }

    /// The region holding the keys just below `key` (its range has
    /// `start < key <= end`) and its leader: the one a reverse scan from
    /// `key` reads first. For an empty key, the last region. `None` if PD
    /// knows none.
    pub async fn get_prev_region(&self, key: &[u8]) -> Result<Option<pdpb::RegionInfo>, PdError> {
        let key = Bytes::copy_from_slice(key);
        let resp = self.call("GetPrevRegion", |mut c, header| {
            let region_key = key.clone();
            async move {
                c.get_prev_region(pdpb::GetRegionRequest { header, region_key })
                    .await
            }
        });
        region_or_none(resp.await)
    }

    /// Region `region_id` and its leader; `None` if PD knows none.
    pub async fn get_region_by_id(
        &self,
        region_id: u64,
    ) -> Result<Option<pdpb::RegionInfo>, PdError> {
        let resp = self.call("GetRegionById", |mut c, header| async move {
            let req = pdpb::GetRegionByIdRequest { header, region_id };
            c.get_region_by_id(req).await
        });
        region_or_none(resp.await)
    }

    /// Up to `limit` regions (0: PD's maximum, 10,000) overlapping
    /// `[start, end)` in key order; an empty `end` means the end of the key
    /// space.
    pub async fn scan_regions(
        &self,
        start: &[u8],
        end: &[u8],
        limit: u32,
    ) -> Result<Vec<pdpb::RegionInfo>, PdError> {
        let (start, end) = (Bytes::copy_from_slice(start), Bytes::copy_from_slice(end));
        let resp = self
            .call("ScanRegions", |mut c, header| {
                let req = pdpb::ScanRegionsRequest {
                    header,
                    start_key: start.clone(),
                    end_key: end.clone(),
                    limit,
                };
                async move { c.scan_regions(req).await }
            })
            .await?;
        Ok(resp.regions)
    }

    /// IDs for splitting `region` into `count` more regions: one new
    /// region ID and one peer ID per existing peer, per new region.
    pub async fn ask_batch_split(
        &self,
        region: metapb::Region,
        count: u32,
    ) -> Result<Vec<pdpb::SplitId>, PdError> {
        let resp = self
            .call("AskBatchSplit", |mut c, header| {
                let req = pdpb::AskBatchSplitRequest {
                    header,
                    region: Some(region.clone()),
                    split_count: count,
                };
                async move { c.ask_batch_split(req).await }
            })
            .await?;
        Ok(resp.ids)
    }

    /// Reports a finished split: the regions after it, in key order.
    pub async fn report_batch_split(&self, regions: Vec<metapb::Region>) -> Result<(), PdError> {
        self.call("ReportBatchSplit", |mut c, header| {
            let regions = regions.clone();
            async move {
                c.report_batch_split(pdpb::ReportBatchSplitRequest { header, regions })
                    .await
            }
        })
        .await?;
        Ok(())
    }

    /// Opens `store_id`'s region heartbeat stream: a sender for heartbeat
    /// batches and a receiver for PD's answers (operator steps,
    /// rejections). A background task keeps a stream open on whichever
    /// member leads; see [`RegionHeartbeatSender`] for what a failover
    /// loses. Must be called inside a Tokio runtime.
    pub fn region_heartbeat_stream(
        &self,
        store_id: u64,
    ) -> (RegionHeartbeatSender, RegionHeartbeatReceiver) {
        heartbeat::spawn(self.leader.clone(), store_id)
    }
}

fn region_or_none(
    resp: Result<pdpb::GetRegionResponse, PdError>,
) -> Result<Option<pdpb::RegionInfo>, PdError> {
    match resp {
        Ok(resp) => Ok(resp.region),
        Err(PdError::RegionNotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}
