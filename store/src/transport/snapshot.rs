//! Snapshots between stores, on their own streaming RPC so they never
//! hold up Raft messages: the file goes in chunks behind the Raft message
//! that announces it, with a per-store limit on concurrent transfers each
//! way and a bandwidth limit on sending. The receiver checks size and
//! checksum before it hands the message to the region.

use std::sync::Arc;

use bytes::Bytes;
use flotilla_proto::raft_serverpb::{RaftMessage, SnapshotChunk, SnapshotData};
use prost::Message as _;
use raftcore::codec;
use tokio::sync::{mpsc, Semaphore};
use tokio_stream::wrappers::ReceiverStream;

use super::client::{connect, LinkShared};
use crate::peer::msg::PeerMsg;
use crate::snap::{Limiter, SnapError, SnapKey, SnapManager};

/// The snapshot key and data a snapshot message announces.
pub fn announced(msg: &RaftMessage) -> Result<(SnapKey, SnapshotData), String> {
    let m = codec::decode_message(&msg.message).map_err(|e| e.to_string())?;
    let snapshot = m.snapshot.ok_or("snapshot message without a snapshot")?;
    let data = SnapshotData::decode(snapshot.data.clone()).map_err(|e| e.to_string())?;
    let key = SnapKey::new(
        msg.region_id,
        snapshot.metadata.term,
        snapshot.metadata.index,
    );
    Ok((key, data))
}

/// Sends snapshots, bounded in concurrency and bandwidth.
#[derive(Clone)]
pub struct SnapshotSender {
    snap: SnapManager,
    concurrency: Arc<Semaphore>,
    limiter: Limiter,
    chunk_size: usize,
}

impl SnapshotSender {
    /// A sender reading files from `snap`.
    pub fn new(
        snap: SnapManager,
        max_concurrent: usize,
        bytes_per_sec: u64,
        chunk_size: usize,
    ) -> Self {
        SnapshotSender {
            snap,
            concurrency: Arc::new(Semaphore::new(max_concurrent)),
            limiter: Limiter::new(bytes_per_sec),
            chunk_size: chunk_size.max(1),
        }
    }

    pub(super) fn send(
        &self,
        runtime: &tokio::runtime::Handle,
        shared: Arc<LinkShared>,
        msg: RaftMessage,
    ) {
        let this = self.clone();
        runtime.spawn(async move {
            let region_id = msg.region_id;
            let to_peer = msg.to_peer.as_ref().map_or(0, |p| p.id);
            let result = this.transfer(&shared, msg).await;
            match &result {
                Ok(()) => tracing::debug!(region = region_id, to_peer, "snapshot sent"),
                Err(e) => {
                    tracing::info!(region = region_id, to_peer, error = %e, "sending snapshot failed")
                }
            }
            let event = if result.is_ok() { "sent" } else { "failed" };
            shared.metrics.snapshots.with_label_values(&[event]).inc();
            let status = PeerMsg::SnapshotSent {
                to_peer,
                ok: result.is_ok(),
            };
            let _ = shared.router.send(region_id, status);
        });
    }

    async fn transfer(&self, shared: &LinkShared, msg: RaftMessage) -> Result<(), String> {
        let _permit = self
            .concurrency
            .acquire()
            .await
            .map_err(|e| e.to_string())?;
        let (key, _) = announced(&msg)?;
        let store_id = msg.to_peer.as_ref().map_or(0, |p| p.store_id);
        let addr = shared
            .resolver
            .resolve(store_id)
            .await
            .map_err(|e| e.to_string())?;
        let mut client = connect(&addr).await.map_err(|e| e.to_string())?;
        let mut chunks = self
            .snap
            .chunks(key, self.chunk_size)
            .map_err(|e| e.to_string())?;
        let (tx, rx) = mpsc::channel::<SnapshotChunk>(2);
        let call = tokio::spawn(async move { client.snapshot(ReceiverStream::new(rx)).await });
        let mut first = Some(msg);
        loop {
            let data = match chunks.next() {
                Some(chunk) => chunk.map_err(|e: SnapError| e.to_string())?,
                None if first.is_some() => Bytes::new(),
                None => break,
            };
            self.limiter.consume(data.len()).await;
            let chunk = SnapshotChunk {
                message: first.take(),
                data,
            };
            if tx.send(chunk).await.is_err() {
                break;
            }
        }
        drop(tx);
        match call.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(status)) => Err(status.message().to_string()),
            Err(e) => Err(e.to_string()),
        }
    }
}
