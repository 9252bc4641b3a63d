//! The outbound side: one link per destination store, each one long-lived
//! gRPC stream. The pollers only enqueue (never block); a link task drains
//! its queue into batches (bounded by count and bytes), reconnects with
//! backoff, and reports every message it could not deliver to the
//! sending region as an unreachable peer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use flotilla_proto::raft_serverpb::raft_client::RaftClient as GrpcRaftClient;
use flotilla_proto::raft_serverpb::{RaftMessage, RaftMessageBatch};
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::filter::{Direction, FilterChain};
use super::resolve::Resolver;
use super::snapshot::SnapshotSender;
use super::Transport;
use crate::driver::handler::PeerRouter;
use crate::metrics::StoreMetrics;
use crate::peer::msg::PeerMsg;

/// Round batches queued per destination before new ones are dropped.
const QUEUE_BATCHES: usize = 1024;
/// Most messages in one batch on the wire.
const MAX_BATCH_MESSAGES: usize = 4096;
/// Most bytes in one batch on the wire (beyond the first message).
const MAX_BATCH_BYTES: usize = 8 << 20;
/// Largest gRPC message between stores (a batch carries up to 8 MiB of
/// messages, one append up to the 40 MiB entry limit).
pub const MAX_GRPC_MESSAGE: usize = 64 << 20;

/// The outbound transport of one store.
pub struct RaftClient {
    runtime: tokio::runtime::Handle,
    store_id: u64,
    links: Mutex<HashMap<u64, mpsc::Sender<Vec<RaftMessage>>>>,
    shared: Arc<LinkShared>,
    snapshots: SnapshotSender,
}

/// What every link task needs.
pub(super) struct LinkShared {
    pub(super) resolver: Resolver,
    pub(super) router: Arc<PeerRouter>,
    pub(super) filters: Arc<FilterChain>,
    pub(super) metrics: Arc<StoreMetrics>,
}

impl LinkShared {
    /// Tells each message's region that its destination is unreachable.
    pub(super) fn report_unreachable(&self, msgs: &[RaftMessage]) {
        self.metrics.messages_dropped.inc_by(msgs.len() as u64);
        let mut seen = Vec::new();
        for m in msgs.iter().filter(|m| !m.is_store_heartbeat) {
            let to_peer = m.to_peer.as_ref().map_or(0, |p| p.id);
            if !seen.contains(&(m.region_id, to_peer)) {
                seen.push((m.region_id, to_peer));
                let _ = self
                    .router
                    .send(m.region_id, PeerMsg::Unreachable { to_peer });
            }
        }
    }
}

/// Connects to a store's gRPC address.
pub(super) async fn connect(
    addr: &str,
) -> Result<GrpcRaftClient<tonic::transport::Channel>, tonic::transport::Error> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(Duration::from_secs(1))
        .tcp_nodelay(true)
        .connect()
        .await?;
    Ok(GrpcRaftClient::new(channel)
        .max_encoding_message_size(MAX_GRPC_MESSAGE)
        .max_decoding_message_size(MAX_GRPC_MESSAGE))
}

impl RaftClient {
    /// The transport of store `store_id`; link tasks run on `runtime`.
    pub fn new(
        runtime: tokio::runtime::Handle,
        store_id: u64,
        resolver: Resolver,
        router: Arc<PeerRouter>,
        filters: Arc<FilterChain>,
        metrics: Arc<StoreMetrics>,
        snapshots: SnapshotSender,
    ) -> RaftClient {
        RaftClient {
            runtime,
            store_id,
            links: Mutex::new(HashMap::new()),
            shared: Arc::new(LinkShared {
                resolver,
                router,
                filters,
                metrics,
            }),
            snapshots,
        }
    }

    fn link(&self, to: u64) -> mpsc::Sender<Vec<RaftMessage>> {
        let mut links = self.links.lock();
        if let Some(tx) = links.get(&to).filter(|tx| !tx.is_closed()) {
            return tx.clone();
        }
        let (tx, rx) = mpsc::channel(QUEUE_BATCHES);
        let link = Link {
            to,
            shared: self.shared.clone(),
        };
        self.runtime.spawn(link.run(rx));
        links.insert(to, tx.clone());
        tx
    }
}

impl Transport for RaftClient {
    fn send(&self, store_id: u64, mut msgs: Vec<RaftMessage>) {
        self.shared
            .filters
            .apply(Direction::Outbound, store_id, &mut msgs);
        if msgs.is_empty() {
            return;
        }
        if store_id == 0 || store_id == self.store_id {
            // A peer never messages its own store; a zero store is a bug in
            // the region's peer list.
            tracing::warn!(store_id, "raft messages to an invalid store dropped");
            return;
        }
        if let Err(e) = self.link(store_id).try_send(msgs) {
            let msgs = match e {
                mpsc::error::TrySendError::Full(m) | mpsc::error::TrySendError::Closed(m) => m,
            };
            self.shared.report_unreachable(&msgs);
        }
    }

    fn send_snapshot(&self, msg: RaftMessage) {
        let mut batch = vec![msg];
        let store_id = batch[0].to_peer.as_ref().map_or(0, |p| p.store_id);
        self.shared
            .filters
            .apply(Direction::Outbound, store_id, &mut batch);
        if let Some(msg) = batch.pop() {
            self.snapshots.send(&self.runtime, self.shared.clone(), msg);
        }
    }
}

/// One outbound link.
struct Link {
    to: u64,
    shared: Arc<LinkShared>,
}

impl Link {
    async fn run(self, mut rx: mpsc::Receiver<Vec<RaftMessage>>) {
        let mut backoff = Duration::from_millis(50);
        loop {
            match self.open().await {
                Ok(client) => {
                    backoff = Duration::from_millis(50);
                    if self.pump(client, &mut rx).await {
                        return;
                    }
                }
                Err(e) => tracing::info!(to = self.to, error = %e, "store link down"),
            }
            self.shared.resolver.forget(self.to);
            // Drop what queued while down: Raft resends what still matters.
            while let Ok(msgs) = rx.try_recv() {
                self.shared.report_unreachable(&msgs);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
            if rx.is_closed() {
                return;
            }
        }
    }

    async fn open(&self) -> Result<GrpcRaftClient<tonic::transport::Channel>, String> {
        let addr = self
            .shared
            .resolver
            .resolve(self.to)
            .await
            .map_err(|e| e.to_string())?;
        connect(&addr).await.map_err(|e| e.to_string())
    }

    /// Sends batches until the stream breaks (false) or the queue closes
    /// (true).
    async fn pump(
        &self,
        mut client: GrpcRaftClient<tonic::transport::Channel>,
        rx: &mut mpsc::Receiver<Vec<RaftMessage>>,
    ) -> bool {
        let (tx, stream_rx) = mpsc::channel::<RaftMessageBatch>(4);
        let mut call = Box::pin(client.raft(ReceiverStream::new(stream_rx)));
        loop {
            let first = tokio::select! {
                m = rx.recv() => m,
                result = &mut call => {
                    if let Err(e) = result {
                        tracing::debug!(to = self.to, error = %e, "store stream closed");
                    }
                    return false;
                }
            };
            let Some(mut msgs) = first else { return true };
            let mut bytes: usize = msgs.iter().map(|m| m.message.len()).sum();
            while msgs.len() < MAX_BATCH_MESSAGES && bytes < MAX_BATCH_BYTES {
                match rx.try_recv() {
                    Ok(more) => {
                        bytes += more.iter().map(|m| m.message.len()).sum::<usize>();
                        msgs.extend(more);
                    }
                    Err(_) => break,
                }
            }
            if let Some(delay) = self.shared.filters.delay() {
                tokio::time::sleep(delay).await;
            }
            let batch = RaftMessageBatch { msgs };
            if let Err(mpsc::error::SendError(batch)) = tx.send(batch).await {
                self.shared.report_unreachable(&batch.msgs);
                return false;
            }
        }
    }
}
