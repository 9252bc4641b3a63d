//! A running store: [`Store::start`] registers with PD (or finds its
//! identity on disk), starts the Raft system and the peers of every region
//! it holds, serves gRPC (`Kv` and `Raft`) and the status HTTP port, and
//! talks to PD in the background; [`Store::stop`] takes it all down.

pub mod fault_http;
pub mod pd_tasks;
pub mod pd_worker;
pub mod status;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use flotilla_client::pd::{PdClient, PdClientConfig, PdError};
use flotilla_proto::kvrpcpb::kv_server::KvServer;
use flotilla_proto::metapb;
use flotilla_proto::raft_serverpb::raft_server::RaftServer;
use flotilla_proto::raft_serverpb::StoreIdent;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;

use crate::apply::ApplyPool;
use crate::config::StoreConfig;
use crate::driver::context::StoreContext;
use crate::driver::handler::PeerRouter;
use crate::driver::journal::Journal;
use crate::driver::system::{new_router, split_deliverer, waker, RaftSystem};
use crate::engine::{local, Engine, EngineError};
use crate::kv::service::KvService;
use crate::metrics::StoreMetrics;
use crate::pd_task::PD_TASK_CAPACITY;
use crate::peer::storage::PeerStorage;
use crate::snap::{SnapError, SnapManager};
use crate::split_check::SplitChecker;
use crate::transport::client::{RaftClient, MAX_GRPC_MESSAGE};
use crate::transport::filter::FilterChain;
use crate::transport::resolve::Resolver;
use crate::transport::server::RaftService;
use crate::transport::snapshot::SnapshotSender;

/// Tasks queued per apply thread before the pollers wait.
const APPLY_QUEUE_CAPACITY: usize = 4096;

/// Why a store could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The data directory could not be used.
    #[error("data directory: {0}")]
    Io(#[from] std::io::Error),
    /// The RocksDB failed or holds corrupt records.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The snapshot directory failed.
    #[error(transparent)]
    Snap(#[from] SnapError),
    /// PD refused or could not be reached.
    #[error("PD: {0}")]
    Pd(#[from] PdError),
    /// The data directory belongs to another cluster.
    #[error("data directory belongs to cluster {local}, but PD runs cluster {pd}")]
    WrongCluster {
        /// The data directory's cluster.
        local: u64,
        /// PD's cluster.
        pd: u64,
    },
}

/// A running store.
pub struct Store {
    store_id: u64,
    addr: SocketAddr,
    status_addr: SocketAddr,
    system: Arc<RaftSystem>,
    filters: Arc<FilterChain>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Store {
    /// Starts a store (inside a tokio runtime).
    pub async fn start(cfg: StoreConfig) -> Result<Store, StartError> {
        cfg.validate().map_err(StartError::Config)?;
        std::fs::create_dir_all(&cfg.data_dir)?;
        let engine = Engine::open_with(&cfg.data_dir.join("db"), &cfg.engine)?;
        let snap = SnapManager::new(cfg.data_dir.join("snap"))?;
        // Built snapshots are rebuilt on demand; received ones were
        // installed atomically or not at all.
        snap.gc(|_| false)?;
        let pd = PdClient::connect(&cfg.pd, PdClientConfig::default()).await?;
        let store_id = identify(&engine, &pd).await?;
        let listener = TcpListener::bind(&cfg.addr).await?;
        let addr = listener.local_addr()?;
        let status_listener = TcpListener::bind(&cfg.status_addr).await?;
        let status_addr = status_listener.local_addr()?;
        let advertise = if cfg.advertise_addr.is_empty() {
            addr.to_string()
        } else {
            cfg.advertise_addr.clone()
        };
        pd.put_store(store_record(&cfg, store_id, &advertise, status_addr))
            .await?;
        tracing::info!(store_id, %addr, %status_addr, "store registered");

        let cfg = Arc::new(cfg);
        let metrics = Arc::new(StoreMetrics::new());
        let router: Arc<PeerRouter> = new_router(cfg.raft.mailbox_capacity);
        let apply_pool = ApplyPool::start(
            engine.clone(),
            snap.clone(),
            cfg.raft.apply_threads,
            APPLY_QUEUE_CAPACITY,
            waker(&router),
            metrics.clone(),
        );
        let (pd_tasks, pd_task_rx) = tokio::sync::mpsc::channel(PD_TASK_CAPACITY);
        let split_checker = SplitChecker::start(engine.clone(), split_deliverer(&router));
        let ctx = Arc::new(StoreContext {
            store_id,
            cfg: cfg.clone(),
            engine: engine.clone(),
            apply_pool,
            snap: snap.clone(),
            metrics: metrics.clone(),
            started: Instant::now(),
            regions: Default::default(),
            changed: Default::default(),
            pd_tasks,
            split_checker,
            lifecycle: Default::default(),
            liveness: Default::default(),
            journal: Journal::open(&cfg.data_dir, store_id),
            deferred: Default::default(),
        });
        let filters = Arc::new(FilterChain::default());
        let sender = SnapshotSender::new(
            snap.clone(),
            cfg.snapshot.max_concurrent,
            cfg.snapshot.max_bytes_per_sec.as_u64(),
            cfg.snapshot.chunk_size.as_u64() as usize,
        );
        let transport = Arc::new(RaftClient::new(
            tokio::runtime::Handle::current(),
            store_id,
            Resolver::new(pd.clone()),
            router.clone(),
            filters.clone(),
            metrics.clone(),
            sender,
        ));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let system = Arc::new(RaftSystem::start(ctx.clone(), router.clone(), transport));
        start_peers(&system, &engine, store_id)?;

        let kv = KvServer::new(KvService::new(router.clone(), ctx.clone()))
            .max_decoding_message_size(MAX_GRPC_MESSAGE)
            .max_encoding_message_size(MAX_GRPC_MESSAGE);
        let raft = RaftServer::new(RaftService::new(
            ctx.clone(),
            router.clone(),
            filters.clone(),
            snap,
            cfg.snapshot.max_concurrent,
            metrics,
            shutdown_rx.clone(),
        ))
        .max_decoding_message_size(MAX_GRPC_MESSAGE)
        .max_encoding_message_size(MAX_GRPC_MESSAGE);
        let mut grpc_shutdown = shutdown_rx.clone();
        let grpc = tokio::spawn(async move {
            let result = tonic::transport::Server::builder()
                .add_service(kv)
                .add_service(raft)
                .serve_with_incoming_shutdown(
                    TcpIncoming::from(listener).with_nodelay(Some(true)),
                    async move {
                        let _ = grpc_shutdown.wait_for(|s| *s).await;
                    },
                )
                .await;
            if let Err(e) = result {
                tracing::error!(error = %e, "store gRPC server failed");
            }
        });
        let status = tokio::spawn(status::serve(
            status_listener,
            ctx.clone(),
            advertise,
            filters.clone(),
            shutdown_rx.clone(),
        ));
        let boot = {
            let (pd, system, rx) = (pd.clone(), system.clone(), shutdown_rx.clone());
            tokio::spawn(async move {
                if let Err(e) = pd_worker::bootstrap(&pd, &system, rx).await {
                    tracing::error!(error = %e, "bootstrap failed");
                }
            })
        };
        let pd_tasks = tokio::spawn(pd_tasks::run_tasks(
            pd.clone(),
            router.clone(),
            pd_task_rx,
            shutdown_rx.clone(),
        ));
        let heartbeats = tokio::spawn(pd_worker::heartbeats(pd, ctx, router, shutdown_rx));
        Ok(Store {
            store_id,
            addr,
            status_addr,
            system,
            filters,
            shutdown,
            tasks: vec![grpc, status, boot, heartbeats, pd_tasks],
        })
    }

    /// This store's ID.
    pub fn store_id(&self) -> u64 {
        self.store_id
    }

    /// The gRPC address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The status HTTP address.
    pub fn status_addr(&self) -> SocketAddr {
        self.status_addr
    }

    /// The filter chain on its Raft traffic (tests).
    pub fn filters(&self) -> &Arc<FilterChain> {
        &self.filters
    }

    /// The shared store state (tests and tools).
    pub fn context(&self) -> &Arc<StoreContext> {
        self.system.store()
    }

    /// The region router (tests and tools).
    pub fn router(&self) -> &Arc<PeerRouter> {
        self.system.router()
    }

    /// Stops serving, then stops the Raft system (pollers finish their
    /// round; queued applies finish).
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        let system = self.system;
        let _ = tokio::task::spawn_blocking(move || system.stop()).await;
    }
}

/// This store's ID: from the data directory, or newly allocated by PD and
/// persisted before anything else is written.
async fn identify(engine: &Engine, pd: &PdClient) -> Result<u64, StartError> {
    let cluster_id = pd.cluster_id();
    if let Some(ident) = local::store_ident(engine)? {
        if ident.cluster_id != cluster_id {
            return Err(StartError::WrongCluster {
                local: ident.cluster_id,
                pd: cluster_id,
            });
        }
        return Ok(ident.store_id);
    }
    let store_id = pd.alloc_id(1).await?.start;
    local::write_store_ident(
        engine,
        &StoreIdent {
            cluster_id,
            store_id,
        },
    )?;
    Ok(store_id)
}

fn store_record(cfg: &StoreConfig, id: u64, address: &str, status: SocketAddr) -> metapb::Store {
    metapb::Store {
        id,
        address: address.to_string(),
        state: metapb::StoreState::Up as i32,
        labels: cfg
            .labels
            .iter()
            .map(|(key, value)| metapb::StoreLabel {
                key: key.clone(),
                value: value.clone(),
            })
            .collect(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        status_address: status.to_string(),
        start_timestamp: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
    }
}

/// Starts a peer for every region this store holds.
fn start_peers(system: &RaftSystem, engine: &Engine, store_id: u64) -> Result<(), StartError> {
    for region in local::live_regions(engine)? {
        let Some(me) = region
            .peers
            .iter()
            .find(|p| p.store_id == store_id)
            .cloned()
        else {
            tracing::warn!(
                region = region.id,
                "region state without a peer on this store skipped"
            );
            continue;
        };
        let Some(storage) = PeerStorage::load(engine.clone(), region.id)? else {
            continue;
        };
        if let Err(e) = system.create_peer(me, storage) {
            tracing::error!(region = region.id, error = %e, "peer did not start");
        }
    }
    Ok(())
}
