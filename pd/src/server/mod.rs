//! A running PD member: storage, the Raft loop, the peer transport, the
//! gRPC and HTTP servers, and the switch between follower and leader.
//!
//! Every member runs the Raft loop and answers `GetMembers`. Only the
//! serving leader — elected, with its state machine caught up, its
//! [`Leader`] state built — answers anything else; the others reply
//! `NotLeader` with the leader's addresses.

pub mod alloc;
mod grpc;
pub mod http;
pub mod leader;
pub mod members;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use flotilla_proto::pdpb::pd_peer_server::PdPeerServer;
use flotilla_proto::pdpb::pd_server::PdServer as PdGrpcServer;
use parking_lot::RwLock;
use raftcore::ConfState;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::transport::server::TcpIncoming;

use crate::config::{InitialMember, PdConfig};
use crate::error::PdError;
use crate::metrics::Metrics;
use crate::raft::transport::{PeerService, PeerTransport, PeerUrls, MAX_MESSAGE_BYTES};
use crate::raft::{NodeConfig, RaftHandle};
use crate::storage::{Engine, LogStorage};
pub use leader::Leader;

/// State shared by every part of a member.
pub struct Shared {
    /// The configuration it started with.
    pub cfg: PdConfig,
    /// This member's ID.
    pub id: u64,
    /// The founding members.
    pub initial: Vec<InitialMember>,
    /// Local storage.
    pub engine: Engine,
    /// The Raft loop.
    pub raft: RaftHandle,
    /// Peer URLs by member ID.
    pub urls: PeerUrls,
    /// The leader state while this member serves as leader.
    pub leader: RwLock<Option<Arc<Leader>>>,
    /// Metrics.
    pub metrics: Metrics,
    started: Instant,
    stopping: AtomicBool,
}

impl Shared {
    /// Milliseconds since this member started (a monotonic clock).
    pub fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Whether the member is shutting down.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// The serving leader state, or `NotLeader` naming the leader.
    pub fn serving(&self) -> Result<Arc<Leader>, PdError> {
        self.leader
            .read()
            .clone()
            .ok_or_else(|| members::not_leader(self))
    }

    /// The cluster ID if this member has it (it is replicated to all).
    pub fn cluster_id(&self) -> u64 {
        self.engine
            .get_u64(
                crate::storage::CF_META,
                crate::storage::meta::CLUSTER_ID_KEY,
            )
            .ok()
            .flatten()
            .unwrap_or(0)
    }
}

/// The addresses a member actually listens on.
#[derive(Clone, Copy, Debug)]
pub struct Addrs {
    /// gRPC for stores and clients.
    pub client: SocketAddr,
    /// Raft transport.
    pub peer: SocketAddr,
    /// HTTP API and metrics.
    pub http: SocketAddr,
}

/// How long [`PdServer::stop`] waits for connections and tasks to finish.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(5);
/// The first tasks of [`PdServer`]: the peer, gRPC and HTTP servers.
const SERVER_TASKS: usize = 3;

/// A running PD member.
pub struct PdServer {
    shared: Arc<Shared>,
    addrs: Addrs,
    shutdown: watch::Sender<bool>,
    raft_thread: Option<std::thread::JoinHandle<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl PdServer {
    /// Starts a member on the current tokio runtime.
    pub async fn start(cfg: PdConfig) -> anyhow::Result<PdServer> {
        cfg.validate().map_err(anyhow::Error::msg)?;
        let initial = cfg.initial_members().map_err(anyhow::Error::msg)?;
        let id = crate::config::member_id(&cfg.name);
        // Bind first: failing after the Raft thread started would leave it
        // running, holding the RocksDB lock, with no way to stop it.
        let client = TcpListener::bind(&cfg.client_addr)
            .await
            .with_context(|| format!("binding {}", cfg.client_addr))?;
        let peer = TcpListener::bind(&cfg.peer_addr)
            .await
            .with_context(|| format!("binding {}", cfg.peer_addr))?;
        let http = TcpListener::bind(&cfg.http_addr)
            .await
            .with_context(|| format!("binding {}", cfg.http_addr))?;
        std::fs::create_dir_all(&cfg.data_dir)
            .with_context(|| format!("creating data dir {}", cfg.data_dir.display()))?;
        let engine = Engine::open(&cfg.data_dir.join("db")).context("opening PD storage")?;
        let bootstrap = cfg
            .is_new_cluster()
            .then(|| ConfState::with_voters(initial.iter().map(|m| m.id)));
        let storage =
            LogStorage::open(engine.clone(), bootstrap).context("loading the Raft log")?;
        let urls: PeerUrls = Arc::new(RwLock::new(
            initial.iter().map(|m| (m.id, m.peer_url.clone())).collect(),
        ));
        let metrics = Metrics::new();
        let transport = PeerTransport::new(
            tokio::runtime::Handle::current(),
            id,
            urls.clone(),
            metrics.queue_drops.with_label_values(&["peer_link"]),
        );
        let node_cfg = NodeConfig {
            id,
            tick_interval: cfg.tick_interval,
            election_ticks: cfg.election_ticks,
            heartbeat_ticks: cfg.heartbeat_ticks,
            compact_keep_entries: 1000,
            compact_threshold_entries: 10_000,
            input_capacity: 65_536,
        };
        let (raft, raft_thread) =
            crate::raft::spawn(node_cfg, storage, Box::new(transport.clone()))?;
        transport.set_raft(raft.clone());

        let addrs = Addrs {
            client: client.local_addr()?,
            peer: peer.local_addr()?,
            http: http.local_addr()?,
        };
        let shared = Arc::new(Shared {
            cfg,
            id,
            initial,
            engine,
            raft: raft.clone(),
            urls,
            leader: RwLock::new(None),
            metrics,
            started: Instant::now(),
            stopping: AtomicBool::new(false),
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        // The servers come first (see SERVER_TASKS).
        let tasks = vec![
            tokio::spawn(serve_peer(
                peer,
                PeerService::new(
                    raft,
                    id,
                    shutdown_rx.clone(),
                    shared
                        .metrics
                        .queue_drops
                        .with_label_values(&["raft_input"]),
                ),
                shutdown_rx.clone(),
            )),
            tokio::spawn(serve_client(client, shared.clone(), shutdown_rx.clone())),
            tokio::spawn(http::serve(http, shared.clone(), shutdown_rx.clone())),
            tokio::spawn(watch_leadership(shared.clone())),
            tokio::spawn(members::maintain(shared.clone())),
        ];
        tracing::info!(name = %shared.cfg.name, id, client = %addrs.client, peer = %addrs.peer, http = %addrs.http, "PD member started");
        Ok(PdServer {
            shared,
            addrs,
            shutdown,
            raft_thread: Some(raft_thread),
            tasks,
        })
    }

    /// Where the member listens.
    pub fn addrs(&self) -> Addrs {
        self.addrs
    }

    /// The member's shared state (for tests and the embedding binary).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops serving, stops the Raft loop and waits for it, and waits
    /// (boundedly) until nothing holds the member's state any more, so the
    /// data directory can be opened again at once (RocksDB's lock is held
    /// until the last handle closes).
    pub async fn stop(mut self) {
        self.shared.stopping.store(true, Ordering::Relaxed);
        *self.shared.leader.write() = None;
        let _ = self.shutdown.send(true);
        self.shared.raft.shutdown();
        let deadline = tokio::time::Instant::now() + STOP_GRACE;
        // The three servers first (peer, gRPC, HTTP): they return once every
        // connection closed; their open streams end on the shutdown signal.
        for (i, mut task) in self.tasks.drain(..).enumerate() {
            if i >= SERVER_TASKS || tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
                let _ = task.await;
            }
        }
        if let Some(thread) = self.raft_thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        // The leader's background loops notice within one interval.
        while Arc::strong_count(&self.shared) > 1 {
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!("PD member state still in use after stopping");
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

/// Accepted connections with Nagle's algorithm off: a response written in
/// several small pieces (HTTP/2 headers, data, trailers) must not wait for
/// the peer's delayed ACK (~40 ms per call).
fn incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

async fn serve_peer(
    listener: TcpListener,
    service: PeerService,
    mut shutdown: watch::Receiver<bool>,
) {
    let server = PdPeerServer::new(service)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let result = tonic::transport::Server::builder()
        .add_service(server)
        .serve_with_incoming_shutdown(incoming(listener), async move {
            let _ = shutdown.wait_for(|s| *s).await;
        })
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "PD peer server failed");
    }
}

async fn serve_client(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let result = tonic::transport::Server::builder()
        .add_service(PdGrpcServer::new(grpc::PdService::new(
            shared,
            shutdown.clone(),
        )))
        .serve_with_incoming_shutdown(incoming(listener), async move {
            let _ = shutdown.wait_for(|s| *s).await;
        })
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "PD gRPC server failed");
    }
}

/// Builds the leader state when this member becomes a caught-up leader,
/// and drops it when it stops leading.
async fn watch_leadership(shared: Arc<Shared>) {
    let mut rx = shared.raft.leadership();
    loop {
        let event = *rx.borrow_and_update();
        if !event.ready {
            if shared.leader.write().take().is_some() {
                shared.metrics.is_leader.set(0);
                tracing::info!(term = event.term, "no longer the PD leader");
            }
        } else if shared.leader.read().as_ref().map(|l| l.term) != Some(event.term) {
            *shared.leader.write() = None;
            match Leader::start(&shared, event.term).await {
                Ok(leader) if still_term(&shared, event.term) => {
                    shared.metrics.reset_operator_baseline();
                    *shared.leader.write() = Some(leader.clone());
                    leader.spawn_background(&shared);
                    shared.metrics.leader_changes.inc();
                    shared.metrics.is_leader.set(1);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, term = event.term, "could not start serving as leader; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    continue;
                }
            }
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

fn still_term(shared: &Shared, term: u64) -> bool {
    let ev = *shared.raft.leadership().borrow();
    ev.ready && ev.term == term
}
