//! An in-process cluster for the store's tests: a real PD member and real
//! stores (real RocksDB in temporary directories, real gRPC on loopback),
//! each store's Raft traffic behind a filter chain the test drives — the
//! tool every later fault test uses.
#![allow(dead_code)] // each test binary uses a different part of it

use std::future::Future;
use std::time::{Duration, Instant};

use flotilla_pd::config::PdConfig;
use flotilla_pd::server::PdServer;
use flotilla_proto::kvrpcpb::kv_client::KvClient;
use flotilla_proto::kvrpcpb::*;
use flotilla_proto::metapb;
use flotilla_store::config::StoreConfig;
use flotilla_store::server::Store;

pub mod faults;
pub mod journal;
pub mod kv;
pub mod membership;
pub mod probe;
use tonic::transport::Channel;

/// Generous deadline for anything that should happen "soon" on a loaded
/// 2-core machine.
pub const LONG: Duration = Duration::from_secs(30);

/// Polls `cond` until it holds; panics naming `what` after `timeout`.
pub async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut cond: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if cond().await {
            return start.elapsed();
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `find` until it finds something, and returns that; panics naming
/// `what` after [`LONG`].
pub async fn poll<T>(what: &str, mut find: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(found) = find() {
            return found;
        }
        if start.elapsed() > LONG {
            panic!("timed out after {LONG:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A request with a 5 s deadline.
pub fn timed<T>(msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(Duration::from_secs(5));
    r
}

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_logging() {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
}

/// A free loopback port (PD advertises its configured address, so it
/// needs a fixed one).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Store timings for tests: 20 ms ticks, elections within 200–400 ms.
pub fn store_config(dir: &std::path::Path, pd: &str) -> StoreConfig {
    let mut cfg = StoreConfig {
        pd: vec![pd.to_string()],
        addr: "127.0.0.1:0".into(),
        status_addr: "127.0.0.1:0".into(),
        data_dir: dir.to_path_buf(),
        ..StoreConfig::default()
    };
    cfg.raft.tick_interval = Duration::from_millis(20);
    cfg.heartbeat.store_interval = Duration::from_millis(500);
    cfg.heartbeat.region_interval = Duration::from_secs(1);
    cfg
}

type Tweak = Box<dyn Fn(&mut StoreConfig) + Send + Sync>;

/// One PD and `n` stores.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub pd: Option<PdServer>,
    pub pd_endpoint: String,
    /// PD's HTTP API (`host:port`).
    pub pd_http: String,
    pub stores: Vec<Option<Store>>,
    tweak: Tweak,
}

impl Cluster {
    /// PD with `max-replicas = min(n, 3)` and `n` stores, bootstrapped.
    pub async fn start(n: usize) -> Cluster {
        Cluster::start_with(n, |_| {}).await
    }

    /// Like [`start`](Self::start), each store's config adjusted by `tweak`.
    pub async fn start_with(
        n: usize,
        tweak: impl Fn(&mut StoreConfig) + Send + Sync + 'static,
    ) -> Cluster {
        Cluster::start_custom(n, |_| {}, tweak).await
    }

    /// Like [`start_with`](Self::start_with), PD's config adjusted by
    /// `pd_tweak` too.
    pub async fn start_custom(
        n: usize,
        pd_tweak: impl FnOnce(&mut PdConfig),
        tweak: impl Fn(&mut StoreConfig) + Send + Sync + 'static,
    ) -> Cluster {
        let cluster = Cluster::launch(n, pd_tweak, tweak).await;
        let first = cluster.first_region().await;
        cluster.wait_for_leader(first).await;
        cluster
    }

    /// Like [`start_custom`](Self::start_custom), without waiting for the
    /// cluster's bootstrap (PD bootstraps once `max-replicas` stores
    /// registered).
    pub async fn launch(
        n: usize,
        pd_tweak: impl FnOnce(&mut PdConfig),
        tweak: impl Fn(&mut StoreConfig) + Send + Sync + 'static,
    ) -> Cluster {
        init_logging();
        let dir = tempfile::tempdir().expect("temp dir");
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut pd_cfg = PdConfig {
            name: "pd-0".into(),
            data_dir: dir.path().join("pd"),
            client_addr: format!("127.0.0.1:{}", ports[0]),
            peer_addr: format!("127.0.0.1:{}", ports[1]),
            http_addr: format!("127.0.0.1:{}", ports[2]),
            tick_interval: Duration::from_millis(50),
            schedule_interval: Duration::from_millis(200),
            ..PdConfig::default()
        };
        pd_cfg.schedule.max_replicas = n.min(3);
        pd_tweak(&mut pd_cfg);
        let pd = PdServer::start(pd_cfg).await.expect("PD starts");
        let mut cluster = Cluster {
            dir,
            pd: Some(pd),
            pd_endpoint: format!("127.0.0.1:{}", ports[0]),
            pd_http: format!("127.0.0.1:{}", ports[2]),
            stores: (0..n).map(|_| None).collect(),
            tweak: Box::new(tweak),
        };
        for i in 0..n {
            cluster.start_store(i).await;
        }
        cluster
    }

    /// Starts (or restarts) store `i` on its data directory.
    pub async fn start_store(&mut self, i: usize) {
        let mut cfg = store_config(
            &self.dir.path().join(format!("store-{i}")),
            &self.pd_endpoint,
        );
        (self.tweak)(&mut cfg);
        let store = Store::start(cfg).await.expect("store starts");
        self.stores[i] = Some(store);
    }

    /// Stops store `i` and starts it again on its data directory. The
    /// stopped store's RocksDB may stay open a moment after `stop` returns
    /// (an RPC handler still finishing holds it), so opening it again is
    /// retried until it is free.
    pub async fn restart_store(&mut self, i: usize) {
        self.stop_store(i).await;
        let deadline = Instant::now() + LONG;
        loop {
            let mut cfg = store_config(
                &self.dir.path().join(format!("store-{i}")),
                &self.pd_endpoint,
            );
            (self.tweak)(&mut cfg);
            match Store::start(cfg).await {
                Ok(store) => {
                    self.stores[i] = Some(store);
                    return;
                }
                Err(e @ flotilla_store::server::StartError::Engine(_))
                    if Instant::now() < deadline =>
                {
                    tracing::info!(error = %e, "store {i}'s RocksDB still open; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("store {i} does not restart: {e:?}"),
            }
        }
    }

    /// Starts one more store; returns its index.
    pub async fn add_store(&mut self) -> usize {
        self.stores.push(None);
        let i = self.stores.len() - 1;
        self.start_store(i).await;
        i
    }

    /// Stops store `i` cleanly.
    pub async fn stop_store(&mut self, i: usize) {
        if let Some(s) = self.stores[i].take() {
            s.stop().await;
        }
    }

    pub fn store(&self, i: usize) -> &Store {
        self.stores[i].as_ref().expect("store running")
    }

    /// The cluster's first region (the one bootstrap created), once some
    /// store holds it.
    pub async fn first_region(&self) -> u64 {
        let lowest = || {
            self.stores
                .iter()
                .flatten()
                .filter_map(|s| s.context().regions.read().keys().min().copied())
                .min()
        };
        wait_for("the first region", LONG, || async { lowest().is_some() }).await;
        lowest().unwrap_or_default()
    }

    /// The running store leading `region_id`, and its region.
    pub fn leader_of(&self, region_id: u64) -> Option<(usize, metapb::Region, metapb::Peer)> {
        self.stores.iter().enumerate().find_map(|(i, s)| {
            let s = s.as_ref()?;
            let regions = s.context().regions.read();
            let meta = regions.get(&region_id).filter(|m| m.is_leader)?;
            Some((i, meta.region.clone(), meta.peer))
        })
    }

    /// Waits until some store leads `region_id`.
    pub async fn wait_for_leader(&self, region_id: u64) -> usize {
        poll("a region leader", || {
            self.leader_of(region_id).map(|(i, _, _)| i)
        })
        .await
    }

    /// A KV client of store `i`.
    pub async fn kv(&self, i: usize) -> KvClient<Channel> {
        KvClient::connect(format!("http://{}", self.store(i).addr()))
            .await
            .expect("connect to store")
    }

    /// The context a client would send to the leader of `region_id`.
    pub async fn leader_context(&self, region_id: u64) -> (usize, Context) {
        let (i, region, peer) = poll("a region leader", || self.leader_of(region_id)).await;
        let ctx = Context {
            region_id,
            region_epoch: region.region_epoch,
            peer: Some(peer),
            follower_read: false,
        };
        (i, ctx)
    }

    /// The context a client would send for `key`: the leader (as the
    /// stores publish it) of the region holding it — the newest claim, if
    /// an old leader has not applied a split yet.
    pub fn route(&self, key: &[u8]) -> Option<(usize, Context)> {
        let mut best: Option<(usize, metapb::Region, metapb::Peer)> = None;
        for (i, s) in self.stores.iter().enumerate() {
            let Some(s) = s.as_ref() else { continue };
            for m in s.context().regions.read().values() {
                let r = &m.region;
                let inside =
                    key >= &r.start_key[..] && (r.end_key.is_empty() || key < &r.end_key[..]);
                if !m.is_leader || !inside {
                    continue;
                }
                let version = |r: &metapb::Region| r.region_epoch.map_or(0, |e| e.version);
                if best
                    .as_ref()
                    .is_none_or(|(_, b, _)| version(r) > version(b))
                {
                    best = Some((i, r.clone(), m.peer));
                }
            }
        }
        best.map(|(i, region, peer)| {
            let ctx = Context {
                region_id: region.id,
                region_epoch: region.region_epoch,
                peer: Some(peer),
                follower_read: false,
            };
            (i, ctx)
        })
    }

    /// Waits for a route for `key`.
    pub async fn wait_route(&self, key: &[u8]) -> (usize, Context) {
        // Keep what was found: asking again after the wait could find no
        // leader (an election, a split in flight) and fail spuriously.
        poll("a leader for the key", || self.route(key)).await
    }

    /// Puts through the leader of the key's region, retrying region
    /// errors.
    pub async fn put(&self, key: &[u8], value: &[u8]) {
        let deadline = Instant::now() + LONG;
        loop {
            let (i, ctx) = self.wait_route(key).await;
            let mut kv = self.kv(i).await;
            let resp = kv.raw_put(timed(RawPutRequest {
                context: Some(ctx),
                key: key.to_vec().into(),
                value: value.to_vec().into(),
            }));
            let resp = tokio::time::timeout(Duration::from_secs(5), resp).await;
            let resp = resp
                .map_err(|_| "client timeout")
                .and_then(|r| r.map_err(|_| "status"));
            match resp {
                Ok(r) if r.get_ref().region_error.is_none() => return,
                other => assert!(Instant::now() < deadline, "put never succeeded: {other:?}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Gets through the leader of the key's region, retrying region
    /// errors.
    pub async fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let deadline = Instant::now() + LONG;
        loop {
            let (i, ctx) = self.wait_route(key).await;
            let mut kv = self.kv(i).await;
            let resp = kv.raw_get(timed(RawGetRequest {
                context: Some(ctx),
                key: key.to_vec().into(),
            }));
            let resp = tokio::time::timeout(Duration::from_secs(5), resp).await;
            let resp = resp
                .map_err(|_| "client timeout")
                .and_then(|r| r.map_err(|_| "status"));
            match resp {
                Ok(r) if r.get_ref().region_error.is_none() => {
                    let r = r.into_inner();
                    return (!r.not_found).then(|| r.value.to_vec());
                }
                other => assert!(Instant::now() < deadline, "get never succeeded: {other:?}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Asks PD for an operator (`add-peer`, `remove-peer`,
    /// `transfer-leader`, `split`) through its HTTP API; the status line
    /// and body of the answer.
    pub async fn pd_operator(&self, name: &str, region_id: u64, store_id: u64) -> (String, String) {
        let body = format!(r#"{{"name":"{name}","region_id":{region_id},"store_id":{store_id}}}"#);
        self.pd_http("POST", "/pd/api/v1/operators", &body).await
    }

    /// One request to PD's HTTP API: the status line and the body.
    pub async fn pd_http(&self, method: &str, path: &str, body: &str) -> (String, String) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.pd_http,
            body.len()
        );
        let mut stream = tokio::net::TcpStream::connect(&self.pd_http)
            .await
            .expect("PD HTTP");
        stream
            .write_all(request.as_bytes())
            .await
            .expect("request sent");
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await.expect("answer read");
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
        let status = head.lines().next().unwrap_or_default().to_string();
        (status, body.to_string())
    }

    /// Removes PD's balance schedulers: only its checkers and the test's
    /// operators move replicas and leaders.
    pub async fn disable_balance(&self) {
        for name in ["balance-leader", "balance-region"] {
            let path = format!("/pd/api/v1/schedulers/{name}");
            let (status, body) = self.pd_http("DELETE", &path, "").await;
            assert!(status.contains(" 200"), "removing {name}: {status} {body}");
        }
    }

    /// Store `i`'s ID.
    pub fn store_id(&self, i: usize) -> u64 {
        self.store(i).store_id()
    }

    /// A PD client of the cluster's PD.
    pub async fn pd_client(&self) -> flotilla_client::pd::PdClient {
        let endpoints = std::slice::from_ref(&self.pd_endpoint);
        flotilla_client::pd::PdClient::connect(endpoints, Default::default())
            .await
            .expect("connect to PD")
    }

    /// Splits the region holding `keys[0]` at `keys` (its leader gets one
    /// `SplitRegion` call, retried until it succeeds).
    pub async fn split(&self, keys: Vec<bytes::Bytes>) {
        let first = keys.first().expect("split keys").clone();
        wait_for("the split", LONG, || async {
            let (i, ctx) = self.wait_route(&first).await;
            let resp = self
                .kv(i)
                .await
                .split_region(timed(flotilla_proto::kvrpcpb::SplitRegionRequest {
                    context: Some(ctx),
                    split_keys: keys.clone(),
                }))
                .await;
            resp.is_ok_and(|r| r.get_ref().region_error.is_none())
        })
        .await;
    }

    /// The regions store `i` holds, in key order.
    pub fn regions_of(&self, i: usize) -> Vec<metapb::Region> {
        let mut regions: Vec<metapb::Region> = self
            .store(i)
            .context()
            .regions
            .read()
            .values()
            .filter(|m| !m.region.peers.is_empty())
            .map(|m| m.region.clone())
            .collect();
        regions.sort_by(|a, b| a.start_key.cmp(&b.start_key));
        regions
    }

    /// Stops everything.
    pub async fn shutdown(mut self) {
        for i in 0..self.stores.len() {
            self.stop_store(i).await;
        }
        if let Some(pd) = self.pd.take() {
            pd.stop().await;
        }
    }
}
