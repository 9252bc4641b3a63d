//! Raft messages between PD members over the `PdPeer` gRPC service.
//!
//! Outbound, one task per destination member owns a client stream and a
//! bounded queue; the Raft loop only enqueues (never blocks), and a message
//! that finds the queue full is dropped — Raft retransmits — and reported
//! as unreachable. Each wakeup sends everything queued as one batch.
//! Inbound, each stream's messages go straight to the loop's queue.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use flotilla_proto::pdpb::pd_peer_client::PdPeerClient;
use flotilla_proto::pdpb::pd_peer_server::PdPeer;
use flotilla_proto::pdpb::{RaftBatch, RaftDone};
use parking_lot::{Mutex, RwLock};
use raftcore::{codec, Message, MessageType, SnapshotStatus};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use super::handle::{Input, RaftHandle};
use super::node::MessageSink;

/// Messages queued per destination before new ones are dropped.
const QUEUE_CAPACITY: usize = 4096;
/// Messages per batch on the wire.
const MAX_BATCH: usize = 512;
/// Largest message a member accepts (a snapshot of 100,000 regions is a
/// few tens of MiB).
pub const MAX_MESSAGE_BYTES: usize = 256 << 20;

/// Peer URLs by member ID, shared between the transport and the server
/// (which learns new members from the replicated member list).
pub type PeerUrls = Arc<RwLock<BTreeMap<u64, String>>>;

/// The outbound half: a [`MessageSink`] for the Raft loop.
pub struct PeerTransport {
    runtime: tokio::runtime::Handle,
    from: u64,
    urls: PeerUrls,
    raft: Reporter,
    senders: Mutex<BTreeMap<u64, mpsc::Sender<Message>>>,
    /// Counts messages dropped because a link's queue was full.
    dropped: prometheus::IntCounter,
}

impl PeerTransport {
    /// A transport sending as member `from`, spawning its tasks on
    /// `runtime`. Reports (unreachable, snapshot status) go to the Raft
    /// handle set later with [`set_raft`](Self::set_raft).
    pub fn new(
        runtime: tokio::runtime::Handle,
        from: u64,
        urls: PeerUrls,
        dropped: prometheus::IntCounter,
    ) -> Arc<PeerTransport> {
        Arc::new(PeerTransport {
            runtime,
            from,
            urls,
            raft: Reporter::default(),
            senders: Mutex::new(BTreeMap::new()),
            dropped,
        })
    }

    /// Connects the reports to the Raft loop.
    pub fn set_raft(&self, raft: RaftHandle) {
        *self.raft.0.lock() = Some(raft);
    }

    fn report(&self, input: Input) {
        self.raft.report(input);
    }

    fn sender_for(&self, to: u64) -> Option<mpsc::Sender<Message>> {
        let mut senders = self.senders.lock();
        if let Some(tx) = senders.get(&to).filter(|tx| !tx.is_closed()) {
            return Some(tx.clone());
        }
        let url = self.urls.read().get(&to).cloned()?;
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let link = Link {
            from: self.from,
            to,
            url,
            raft: self.raft.clone(),
        };
        self.runtime.spawn(link.run(rx));
        senders.insert(to, tx.clone());
        Some(tx)
    }

    /// Forgets a removed member's link.
    pub fn remove_peer(&self, id: u64) {
        self.senders.lock().remove(&id);
    }
}

impl MessageSink for Arc<PeerTransport> {
    fn send(&self, msgs: Vec<Message>) {
        for m in msgs {
            let to = m.to;
            let is_snapshot = m.msg_type == MessageType::Snapshot;
            let Some(tx) = self.sender_for(to) else {
                tracing::debug!(to, "no address for PD member; message dropped");
                self.report(Input::Unreachable(to));
                continue;
            };
            if tx.try_send(m).is_err() {
                self.dropped.inc();
                self.report(Input::Unreachable(to));
                if is_snapshot {
                    self.report(Input::SnapshotStatus(to, SnapshotStatus::Failure));
                }
            }
        }
    }
}

/// One outbound link: reconnects with backoff, batches what is queued.
struct Link {
    from: u64,
    to: u64,
    url: String,
    raft: Reporter,
}

impl Link {
    async fn run(self, mut rx: mpsc::Receiver<Message>) {
        let mut backoff = Duration::from_millis(50);
        loop {
            match self.connect().await {
                Ok(client) => {
                    backoff = Duration::from_millis(50);
                    if self.pump(client, &mut rx).await {
                        return;
                    }
                }
                Err(e) => {
                    tracing::debug!(to = self.to, url = %self.url, error = %e, "PD peer connect failed")
                }
            }
            self.report(Input::Unreachable(self.to));
            // Drop what queued while down: Raft resends what still matters.
            while let Ok(m) = rx.try_recv() {
                self.fail(&m);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
            if rx.is_closed() {
                return;
            }
        }
    }

    async fn connect(
        &self,
    ) -> Result<PdPeerClient<tonic::transport::Channel>, tonic::transport::Error> {
        let channel = tonic::transport::Endpoint::from_shared(self.url.clone())?
            .connect_timeout(Duration::from_secs(1))
            .tcp_nodelay(true)
            .connect()
            .await?;
        Ok(PdPeerClient::new(channel).max_encoding_message_size(MAX_MESSAGE_BYTES))
    }

    /// Sends batches until the stream breaks (false) or the queue closes
    /// (true).
    async fn pump(
        &self,
        mut client: PdPeerClient<tonic::transport::Channel>,
        rx: &mut mpsc::Receiver<Message>,
    ) -> bool {
        let (tx, stream_rx) = mpsc::channel::<RaftBatch>(8);
        let mut call = Box::pin(client.raft(ReceiverStream::new(stream_rx)));
        loop {
            let first = tokio::select! {
                m = rx.recv() => m,
                result = &mut call => {
                    if let Err(e) = result {
                        tracing::debug!(to = self.to, error = %e, "PD peer stream closed");
                    }
                    return false;
                }
            };
            let Some(first) = first else { return true };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            let snapshots: Vec<u64> = batch
                .iter()
                .filter(|m| m.msg_type == MessageType::Snapshot)
                .map(|m| m.to)
                .collect();
            let wire = RaftBatch {
                from: self.from,
                messages: batch.iter().map(encode).collect(),
            };
            if tx.send(wire).await.is_err() {
                return false;
            }
            for to in snapshots {
                self.report(Input::SnapshotStatus(to, SnapshotStatus::Finish));
            }
        }
    }

    fn fail(&self, m: &Message) {
        if m.msg_type == MessageType::Snapshot {
            self.report(Input::SnapshotStatus(self.to, SnapshotStatus::Failure));
        }
    }

    fn report(&self, input: Input) {
        self.raft.report(input);
    }
}

/// Where the transport and its links report unreachable members and
/// snapshot outcomes: the Raft loop, once it is connected.
#[derive(Clone, Default)]
struct Reporter(Arc<Mutex<Option<RaftHandle>>>);

impl Reporter {
    fn report(&self, input: Input) {
        if let Some(raft) = self.0.lock().as_ref() {
            // A full or closed loop drops the report; the next failure
            // reports again.
            let _ = raft.send(input);
        }
    }
}

fn encode(m: &Message) -> Bytes {
    let mut buf = Vec::new();
    codec::encode_message(m, &mut buf);
    buf.into()
}

/// The inbound half: the `PdPeer` service.
pub struct PeerService {
    raft: RaftHandle,
    /// Members allowed to send (the current membership and founders).
    id: u64,
    /// Turns true when the member stops.
    shutdown: tokio::sync::watch::Receiver<bool>,
    /// Counts messages dropped because the Raft loop's inbox was full.
    dropped: prometheus::IntCounter,
}

impl PeerService {
    /// A service delivering to `raft` (this member is `id`) until
    /// `shutdown` turns true.
    pub fn new(
        raft: RaftHandle,
        id: u64,
        shutdown: tokio::sync::watch::Receiver<bool>,
        dropped: prometheus::IntCounter,
    ) -> PeerService {
        PeerService {
            raft,
            id,
            shutdown,
            dropped,
        }
    }
}

#[tonic::async_trait]
impl PdPeer for PeerService {
    async fn raft(
        &self,
        request: Request<Streaming<RaftBatch>>,
    ) -> Result<Response<RaftDone>, Status> {
        let mut stream = request.into_inner();
        let mut shutdown = self.shutdown.clone();
        loop {
            // End the stream when this member stops: a graceful server
            // shutdown waits for open streams, and this one would never end
            // on its own — the sender would keep feeding a stopped Raft
            // loop and never reconnect to the member's next incarnation.
            let batch = tokio::select! {
                batch = stream.next() => batch,
                _ = shutdown.wait_for(|stopping| *stopping) => {
                    return Err(Status::unavailable("PD member stopping"));
                }
            };
            let Some(batch) = batch else { break };
            let batch = batch?;
            for bytes in &batch.messages {
                let m = codec::decode_message(bytes)
                    .map_err(|e| Status::invalid_argument(format!("bad Raft message: {e}")))?;
                if m.to != self.id || m.from != batch.from {
                    return Err(Status::invalid_argument(format!(
                        "Raft message for member {} from {} on a stream from {} to {}",
                        m.to, m.from, batch.from, self.id
                    )));
                }
                // A full queue drops the message; Raft retransmits.
                if !self.raft.step(m) {
                    self.dropped.inc();
                }
            }
        }
        Ok(Response::new(RaftDone {}))
    }
}
