//! A leader-following gRPC client and region heartbeat streams.

use super::*;

// ---- a leader-following gRPC client -------------------------------------------

/// Response types carrying a header.
pub trait HasHeader {
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

/// The error type in a response header (`Ok` when there is none).
pub fn error_type<T: HasHeader>(resp: &T) -> ErrorType {
    resp.header()
        .and_then(|h| h.error.as_ref())
        .map_or(ErrorType::Ok, |e| e.r#type())
}

/// The error message in a response header (empty when there is none).
pub fn error_message<T: HasHeader>(resp: &T) -> String {
    resp.header()
        .and_then(|h| h.error.as_ref())
        .map_or(String::new(), |e| e.message.clone())
}

/// Panics unless `resp` succeeded.
#[track_caller]
pub fn assert_ok<T: HasHeader + std::fmt::Debug>(resp: &T) {
    assert_eq!(
        error_type(resp),
        ErrorType::Ok,
        "unexpected error: {}",
        error_message(resp)
    );
}

type Grpc = PdClient<Channel>;

async fn connect(url: &str) -> Option<Grpc> {
    let endpoint = Endpoint::from_shared(url.to_string())
        .ok()?
        .connect_timeout(Duration::from_millis(500))
        .tcp_nodelay(true);
    let channel = tokio::time::timeout(Duration::from_secs(1), endpoint.connect())
        .await
        .ok()?
        .ok()?;
    Some(PdClient::new(channel).max_decoding_message_size(64 << 20))
}

/// Follows the PD leader like a store does: asks any member for the
/// leader (`GetMembers`), talks to it, and on `NOT_LEADER`, `UNAVAILABLE`
/// or a transport error goes to the leader named in the error or asks
/// again, until a deadline.
#[derive(Clone)]
pub struct LeaderClient {
    endpoints: Vec<String>,
    /// The cluster ID learned from `GetMembers`.
    pub cluster_id: u64,
    current: Option<(String, Grpc)>,
    /// How long one call may retry.
    pub deadline: Duration,
}

impl LeaderClient {
    /// Finds the leader through `endpoints`; waits (up to [`LONG`]) for
    /// one with a cluster ID.
    pub async fn connect(endpoints: Vec<String>) -> LeaderClient {
        let mut c = LeaderClient {
            endpoints,
            cluster_id: 0,
            current: None,
            deadline: LONG,
        };
        let start = Instant::now();
        while !c.discover().await {
            assert!(start.elapsed() < LONG, "no PD leader found");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        c
    }

    /// The request header for this cluster.
    pub fn header(&self) -> Option<RequestHeader> {
        Some(RequestHeader {
            cluster_id: self.cluster_id,
        })
    }

    /// The client URL of the member currently talked to.
    pub fn current_url(&self) -> Option<&str> {
        self.current.as_ref().map(|(u, _)| u.as_str())
    }

    /// A raw client on the current leader (no retries).
    pub async fn raw(&mut self) -> Grpc {
        loop {
            if let Some((_, c)) = &self.current {
                return c.clone();
            }
            self.discover().await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Asks the members, in turn, who leads; connects to it.
    async fn discover(&mut self) -> bool {
        self.current = None;
        for ep in self.endpoints.clone() {
            let Some(mut c) = connect(&ep).await else {
                continue;
            };
            let req = GetMembersRequest { header: None };
            let Ok(Ok(resp)) =
                tokio::time::timeout(Duration::from_secs(1), c.get_members(req)).await
            else {
                continue;
            };
            let resp = resp.into_inner();
            let cluster_id = resp.header.as_ref().map_or(0, |h| h.cluster_id);
            let Some(url) = resp.leader.and_then(|l| l.client_urls.into_iter().next()) else {
                continue;
            };
            if cluster_id == 0 {
                continue;
            }
            if self.cluster_id != 0 {
                assert_eq!(self.cluster_id, cluster_id, "the cluster ID changed");
            }
            self.cluster_id = cluster_id;
            if self.switch_to(&url).await {
                return true;
            }
        }
        false
    }

    async fn switch_to(&mut self, url: &str) -> bool {
        match connect(url).await {
            Some(c) => {
                self.current = Some((url.to_string(), c));
                true
            }
            None => false,
        }
    }

    /// Makes one unary call on the leader, retrying as described above.
    /// Returns the first response that is neither `NOT_LEADER` nor
    /// `UNAVAILABLE` (which may carry any other error).
    pub async fn call<T, F, Fut>(&mut self, what: &str, mut f: F) -> T
    where
        T: HasHeader,
        F: FnMut(Grpc, Option<RequestHeader>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let start = Instant::now();
        let mut last_problem = String::new();
        loop {
            assert!(
                start.elapsed() < self.deadline,
                "{what}: no answer within {:?} (last problem: {last_problem})",
                self.deadline
            );
            let Some((_, client)) = self.current.clone() else {
                if !self.discover().await {
                    last_problem = "no leader known".into();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                continue;
            };
            match tokio::time::timeout(Duration::from_secs(3), f(client, self.header())).await {
                Ok(Ok(resp)) => {
                    let resp = resp.into_inner();
                    match error_type(&resp) {
                        ErrorType::NotLeader | ErrorType::Unavailable => {
                            last_problem = error_message(&resp);
                            self.follow_hint(resp.header()).await;
                        }
                        _ => return resp,
                    }
                }
                Ok(Err(status)) => {
                    last_problem = status.to_string();
                    self.current = None;
                }
                Err(_) => {
                    last_problem = "call timed out".into();
                    self.current = None;
                }
            }
        }
    }

    /// After `NOT_LEADER`: go where the error points, else ask around.
    async fn follow_hint(&mut self, header: Option<&ResponseHeader>) {
        let hint = header
            .and_then(|h| h.error.as_ref())
            .and_then(|e| e.leader.as_ref())
            .and_then(|m| m.client_urls.first())
            .cloned();
        let here = self.current_url().map(str::to_string);
        self.current = None;
        match hint {
            Some(url) if Some(&url) != here.as_ref() => {
                self.switch_to(&url).await;
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }

    /// Asks for timestamps, one request per entry of `counts`, over `Tso`
    /// streams (re-opened on the new leader after errors). Returns each
    /// answer's first timestamp (`physical << 18 | logical`) and count.
    pub async fn tso(&mut self, counts: &[u32]) -> Vec<(u64, u32)> {
        let start = Instant::now();
        let mut out = Vec::with_capacity(counts.len());
        let mut last_problem = String::new();
        'reopen: while out.len() < counts.len() {
            assert!(
                start.elapsed() < self.deadline,
                "Tso: no answer within {:?} (last problem: {last_problem})",
                self.deadline
            );
            let mut client = self.raw().await;
            let (tx, rx) = mpsc::channel(4);
            let opened =
                tokio::time::timeout(Duration::from_secs(3), client.tso(ReceiverStream::new(rx)))
                    .await;
            let mut stream = match opened {
                Ok(Ok(resp)) => resp.into_inner(),
                other => {
                    last_problem = format!("{other:?}");
                    self.current = None;
                    continue;
                }
            };
            while out.len() < counts.len() {
                let count = counts[out.len()];
                let req = TsoRequest {
                    header: self.header(),
                    count,
                };
                if tx.send(req).await.is_err() {
                    self.current = None;
                    continue 'reopen;
                }
                let resp =
                    match tokio::time::timeout(Duration::from_secs(3), stream.message()).await {
                        Ok(Ok(Some(resp))) => resp,
                        other => {
                            last_problem = format!("{other:?}");
                            self.current = None;
                            continue 'reopen;
                        }
                    };
                match error_type(&resp) {
                    ErrorType::Ok => {}
                    ErrorType::NotLeader | ErrorType::Unavailable => {
                        last_problem = error_message(&resp);
                        self.follow_hint(resp.header()).await;
                        continue 'reopen;
                    }
                    other => panic!("Tso({count}) failed: {other:?} {}", error_message(&resp)),
                }
                assert_eq!(resp.count, count.max(1), "Tso answered a different count");
                let ts = resp.timestamp.expect("Tso answer without a timestamp");
                assert!(ts.physical > 0 && ts.logical >= 0, "bad timestamp {ts:?}");
                assert!(
                    ts.logical as u64 + u64::from(resp.count) <= 1 << 18,
                    "logical part overflows: {ts:?} + {}",
                    resp.count
                );
                out.push((((ts.physical as u64) << 18) | ts.logical as u64, resp.count));
            }
        }
        out
    }

    /// `AllocId(count)`: the first ID.
    pub async fn alloc_id(&mut self, count: u32) -> u64 {
        let resp = self
            .call("AllocId", |mut c, header| async move {
                c.alloc_id(AllocIdRequest { header, count }).await
            })
            .await;
        assert_ok(&resp);
        assert_eq!(resp.count, count.max(1));
        assert_ne!(resp.id, 0, "ID 0 handed out");
        resp.id
    }

    pub async fn put_store(&mut self, store: metapb::Store) -> PutStoreResponse {
        self.call("PutStore", |mut c, header| {
            let store = store.clone();
            async move {
                c.put_store(PutStoreRequest {
                    header,
                    store: Some(store),
                })
                .await
            }
        })
        .await
    }

    pub async fn store_heartbeat(&mut self, store_id: u64) -> StoreHeartbeatResponse {
        self.call("StoreHeartbeat", |mut c, header| async move {
            c.store_heartbeat(StoreHeartbeatRequest {
                header,
                stats: Some(StoreStats {
                    store_id,
                    capacity: 100 << 30,
                    available: 50 << 30,
                    ..Default::default()
                }),
            })
            .await
        })
        .await
    }

    pub async fn bootstrap(&mut self, store_id: u64) -> BootstrapResponse {
        self.call("Bootstrap", |mut c, header| async move {
            c.bootstrap(BootstrapRequest { header, store_id }).await
        })
        .await
    }

    pub async fn is_bootstrapped(&mut self) -> IsBootstrappedResponse {
        self.call("IsBootstrapped", |mut c, header| async move {
            c.is_bootstrapped(IsBootstrappedRequest { header }).await
        })
        .await
    }

    pub async fn get_region(&mut self, key: &[u8]) -> GetRegionResponse {
        let key = bytes::Bytes::copy_from_slice(key);
        self.call("GetRegion", |mut c, header| {
            let region_key = key.clone();
            async move { c.get_region(GetRegionRequest { header, region_key }).await }
        })
        .await
    }

    pub async fn get_region_by_id(&mut self, region_id: u64) -> GetRegionResponse {
        self.call("GetRegionById", |mut c, header| async move {
            c.get_region_by_id(GetRegionByIdRequest { header, region_id })
                .await
        })
        .await
    }

    pub async fn scan_regions(
        &mut self,
        start: &[u8],
        end: &[u8],
        limit: u32,
    ) -> ScanRegionsResponse {
        let (start, end) = (
            bytes::Bytes::copy_from_slice(start),
            bytes::Bytes::copy_from_slice(end),
        );
        self.call("ScanRegions", |mut c, header| {
            let (start_key, end_key) = (start.clone(), end.clone());
            async move {
                c.scan_regions(ScanRegionsRequest {
                    header,
                    start_key,
                    end_key,
                    limit,
                })
                .await
            }
        })
        .await
    }

    pub async fn report_split(&mut self, regions: Vec<metapb::Region>) -> ReportBatchSplitResponse {
        self.call("ReportBatchSplit", |mut c, header| {
            let regions = regions.clone();
            async move {
                c.report_batch_split(ReportBatchSplitRequest { header, regions })
                    .await
            }
        })
        .await
    }

    pub async fn all_stores(&mut self) -> Vec<StoreInfo> {
        let resp = self
            .call("GetAllStores", |mut c, header| async move {
                c.get_all_stores(GetAllStoresRequest {
                    header,
                    exclude_tombstone_stores: false,
                })
                .await
            })
            .await;
        assert_ok(&resp);
        resp.stores
    }

    /// Every region, by paging through `ScanRegions` with `page` per call.
    pub async fn all_regions(&mut self, page: u32) -> Vec<RegionInfo> {
        let mut out: Vec<RegionInfo> = Vec::new();
        let mut start: Vec<u8> = Vec::new();
        loop {
            let resp = self.scan_regions(&start, b"", page).await;
            assert_ok(&resp);
            assert!(!resp.regions.is_empty(), "empty scan page from {start:?}");
            assert!(
                resp.regions.len() <= page as usize,
                "scan ignored its limit"
            );
            let last_end = resp
                .regions
                .last()
                .unwrap()
                .region
                .as_ref()
                .unwrap()
                .end_key
                .to_vec();
            out.extend(resp.regions);
            if last_end.is_empty() {
                return out;
            }
            start = last_end;
        }
    }
}

// ---- region heartbeat streams ---------------------------------------------------

/// One store's open `RegionHeartbeat` stream.
pub struct HeartbeatStream {
    pub store_id: u64,
    header: Option<RequestHeader>,
    tx: mpsc::Sender<RegionHeartbeatRequest>,
    rx: tonic::Streaming<RegionHeartbeatResponse>,
}

impl HeartbeatStream {
    /// Opens a stream for `store_id` on the client's current leader.
    pub async fn open(client: &mut LeaderClient, store_id: u64) -> HeartbeatStream {
        let mut grpc = client.raw().await;
        let (tx, rx) = mpsc::channel(16);
        let resp = grpc
            .region_heartbeat(ReceiverStream::new(rx))
            .await
            .expect("open a region heartbeat stream");
        HeartbeatStream {
            store_id,
            header: client.header(),
            tx,
            rx: resp.into_inner(),
        }
    }

    /// Sends one batch.
    pub async fn send(&self, regions: Vec<RegionHeartbeat>) {
        self.send_as(self.header, regions).await;
    }

    /// Sends one batch with the given header.
    pub async fn send_as(&self, header: Option<RequestHeader>, regions: Vec<RegionHeartbeat>) {
        self.tx
            .send(RegionHeartbeatRequest {
                header,
                store_id: self.store_id,
                regions,
            })
            .await
            .expect("heartbeat stream open");
    }

    /// The next response, or `None` if none arrives within `timeout` or
    /// the stream ended.
    pub async fn recv(&mut self, timeout: Duration) -> Option<RegionHeartbeatResponse> {
        match tokio::time::timeout(timeout, self.rx.message()).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(status)) => panic!("heartbeat stream failed: {status}"),
            Err(_) => None,
        }
    }
}
