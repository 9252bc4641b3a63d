//! The inbound side: the `Raft` gRPC service. Message batches are decoded
//! here (off the pollers) and delivered to the regions' mailboxes; a full
//! mailbox drops the message (Raft retransmits). Snapshots are received
//! into a file, checked, and only then announced to the region.

use std::sync::Arc;

use flotilla_proto::raft_serverpb::raft_server::Raft;
use flotilla_proto::raft_serverpb::{Done, RaftMessage, RaftMessageBatch, SnapshotChunk};
use raftcore::codec;
use tokio::sync::{watch, Semaphore};
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use super::filter::{Direction, FilterChain};
use super::snapshot::announced;
use crate::driver::context::StoreContext;
use crate::driver::create::{maybe_create_peer, Creation};
use crate::driver::handler::PeerRouter;
use crate::metrics::StoreMetrics;
use crate::peer::msg::{InboundRaft, PeerMsg};
use crate::poll::router::SendError;
use crate::snap::SnapManager;

/// The `Raft` service of one store.
pub struct RaftService {
    store_id: u64,
    store: Arc<StoreContext>,
    router: Arc<PeerRouter>,
    filters: Arc<FilterChain>,
    snap: SnapManager,
    receiving: Arc<Semaphore>,
    metrics: Arc<StoreMetrics>,
    /// Ends the long-lived inbound streams when the store stops (a
    /// graceful server shutdown would otherwise wait for the senders).
    shutdown: watch::Receiver<bool>,
}

impl RaftService {
    /// The service of store `store_id`.
    pub fn new(
        store: Arc<StoreContext>,
        router: Arc<PeerRouter>,
        filters: Arc<FilterChain>,
        snap: SnapManager,
        max_concurrent_snapshots: usize,
        metrics: Arc<StoreMetrics>,
        shutdown: watch::Receiver<bool>,
    ) -> RaftService {
        RaftService {
            store_id: store.store_id,
            store,
            router,
            filters,
            snap,
            receiving: Arc::new(Semaphore::new(max_concurrent_snapshots)),
            metrics,
            shutdown,
        }
    }

    fn deliver(&self, msgs: Vec<RaftMessage>) {
        let from_store = msgs
            .first()
            .and_then(|m| m.from_peer.as_ref())
            .map_or(0, |p| p.store_id);
        let mut msgs = msgs;
        self.filters
            .apply(Direction::Inbound, from_store, &mut msgs);
        if !msgs.is_empty() {
            let now = self.store.current_tick();
            self.store.liveness.heard(from_store, now);
        }
        for envelope in msgs.into_iter().filter(|m| !m.is_store_heartbeat) {
            self.deliver_one(envelope);
        }
    }

    fn deliver_one(&self, envelope: RaftMessage) {
        let to_store = envelope.to_peer.as_ref().map_or(0, |p| p.store_id);
        if to_store != self.store_id {
            tracing::debug!(to_store, "raft message for another store dropped");
            return;
        }
        // A tombstone carries no Raft message: only the news.
        let message = if envelope.is_tombstone {
            raftcore::Message::default()
        } else {
            match codec::decode_message(&envelope.message) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(region = envelope.region_id, error = %e, "undecodable raft message dropped");
                    return;
                }
            }
        };
        self.metrics.messages_received.inc(message.msg_type);
        let region_id = envelope.region_id;
        let msg_type = message.msg_type;
        let msg = PeerMsg::Raft(Box::new(InboundRaft { envelope, message }));
        let msg = match self.router.send(region_id, msg) {
            Ok(()) => return,
            Err(SendError::Full(_)) => {
                self.metrics.messages_dropped.inc();
                return;
            }
            Err(SendError::NotFound(msg)) => msg,
        };
        let PeerMsg::Raft(inbound) = msg else {
            return;
        };
        let delivered =
            match maybe_create_peer(&self.store, &self.router, &inbound.envelope, msg_type) {
                Creation::Ready => self.router.send(region_id, PeerMsg::Raft(inbound)).is_ok(),
                Creation::AwaitingSplit => self.store.deferred.hold(*inbound),
                Creation::Refused => false,
            };
        if !delivered {
            self.metrics.messages_dropped.inc();
        }
    }

    async fn receive_snapshot(&self, mut stream: Streaming<SnapshotChunk>) -> Result<(), Status> {
        let first = stream
            .next()
            .await
            .ok_or_else(|| Status::invalid_argument("empty snapshot stream"))??;
        let msg = first
            .message
            .ok_or_else(|| Status::invalid_argument("first snapshot chunk carries no message"))?;
        let (key, data) = announced(&msg).map_err(Status::invalid_argument)?;
        let _permit = self
            .receiving
            .acquire()
            .await
            .map_err(|_| Status::unavailable("store stopping"))?;
        let mut writer = self
            .snap
            .receiver(key, &data)
            .map_err(|e| Status::failed_precondition(e.to_string()))?;
        writer
            .write(&first.data)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        while let Some(chunk) = stream.next().await {
            writer
                .write(&chunk?.data)
                .map_err(|e| Status::invalid_argument(e.to_string()))?;
        }
        writer
            .finish()
            .map_err(|e| Status::data_loss(e.to_string()))?;
        self.metrics
            .snapshots
            .with_label_values(&["received"])
            .inc();
        self.deliver(vec![msg]);
        Ok(())
    }
}

#[tonic::async_trait]
impl Raft for RaftService {
    async fn raft(
        &self,
        request: Request<Streaming<RaftMessageBatch>>,
    ) -> Result<Response<Done>, Status> {
        let mut stream = request.into_inner();
        let mut shutdown = self.shutdown.clone();
        loop {
            tokio::select! {
                batch = stream.next() => match batch {
                    Some(batch) => self.deliver(batch?.msgs),
                    None => break,
                },
                _ = shutdown.wait_for(|s| *s) => break,
            }
        }
        Ok(Response::new(Done {}))
    }

    async fn snapshot(
        &self,
        request: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<Done>, Status> {
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            result = self.receive_snapshot(request.into_inner()) => result?,
            _ = shutdown.wait_for(|s| *s) => return Err(Status::unavailable("store stopping")),
        }
        Ok(Response::new(Done {}))
    }
}
