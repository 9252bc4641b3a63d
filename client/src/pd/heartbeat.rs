//! A store's region heartbeat stream that survives PD leader changes.
//!
//! One background task per handle owns the gRPC stream. It opens the stream
//! on the current leader, forwards batches from the [`RegionHeartbeatSender`]
//! and answers to the [`RegionHeartbeatReceiver`], and when the stream ends
//! (the leader stopped or stepped down, the network broke, PD refused a
//! batch) it reopens one on the new leader, with backoff.
//!
//! **What a failover loses.** PD acknowledges nothing: it answers a batch
//! only when it has operator steps or rejections for it. So batches already
//! written to a stream that then breaks may or may not have reached PD, and
//! the batch in hand when the break is noticed is dropped. Batches still
//! queued in the sender stay queued and go to the new leader. This is what
//! TiKV does too: a store heartbeats every region on a cadence (and on
//! change), so the next round repairs the gap, and PD's epoch rules make a
//! late or repeated heartbeat harmless.

use std::sync::Arc;
use std::time::Duration;

use flotilla_proto::pdpb::{self, RegionHeartbeatRequest, RegionHeartbeatResponse};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;

use super::backoff::Backoff;
use super::leader::{Conn, Leader};
use super::retry::hint;
use super::PdError;

/// Batches a [`RegionHeartbeatSender`] queues while the task is busy or no
/// stream is open. Small on purpose: a store that cannot reach PD should
/// drop heartbeats ([`RegionHeartbeatSender::try_send`]) rather than pile
/// up stale ones; it sends fresh ones on its next round.
pub const HEARTBEAT_BATCH_CAPACITY: usize = 16;

/// Answers from PD queued for the [`RegionHeartbeatReceiver`]. When it is
/// full the task stops reading the stream (and so stops sending) until the
/// store drains it: operator steps are never dropped silently.
pub const HEARTBEAT_RESPONSE_CAPACITY: usize = 64;

/// Requests buffered inside one gRPC stream, between the task and tonic.
const STREAM_CAPACITY: usize = 4;

/// Sends a store's region heartbeat batches to the PD leader. Dropping it
/// (with its clones) closes the stream and ends the background task.
#[derive(Clone, Debug)]
pub struct RegionHeartbeatSender {
    tx: mpsc::Sender<Vec<pdpb::RegionHeartbeat>>,
}

/// PD's answers on a store's region heartbeat stream: operator steps for
/// the regions the store leads, rejected heartbeats, and refusals of the
/// whole batch (the header's error, e.g. `STORE_TOMBSTONE`; the stream is
/// then reopened and the store decides what to do).
#[derive(Debug)]
pub struct RegionHeartbeatReceiver {
    rx: mpsc::Receiver<RegionHeartbeatResponse>,
}

impl RegionHeartbeatSender {
    /// Queues one batch, waiting while [`HEARTBEAT_BATCH_CAPACITY`] batches
    /// are queued. Fails only if the background task ended (its runtime
    /// shut down).
    pub async fn send(&self, regions: Vec<pdpb::RegionHeartbeat>) -> Result<(), PdError> {
        self.tx
            .send(regions)
            .await
            .map_err(|_| PdError::Transport("region heartbeat task ended".into()))
    }

    /// Queues one batch unless the queue is full; gives the batch back
    /// when it is (or when the task ended).
    pub fn try_send(
        &self,
        regions: Vec<pdpb::RegionHeartbeat>,
    ) -> Result<(), TrySendError<Vec<pdpb::RegionHeartbeat>>> {
        self.tx.try_send(regions)
    }
}

impl RegionHeartbeatReceiver {
    /// The next answer; `None` once the sender is gone and the task ended.
    pub async fn recv(&mut self) -> Option<RegionHeartbeatResponse> {
        self.rx.recv().await
    }
}

pub(crate) fn spawn(
    leader: Arc<Leader>,
    store_id: u64,
) -> (RegionHeartbeatSender, RegionHeartbeatReceiver) {
    let (batch_tx, batch_rx) = mpsc::channel(HEARTBEAT_BATCH_CAPACITY);
    let (resp_tx, resp_rx) = mpsc::channel(HEARTBEAT_RESPONSE_CAPACITY);
    let task = Task {
        leader,
        store_id,
        batches: batch_rx,
        responses: resp_tx,
    };
    tokio::spawn(task.run());
    (
        RegionHeartbeatSender { tx: batch_tx },
        RegionHeartbeatReceiver { rx: resp_rx },
    )
}

struct Task {
    leader: Arc<Leader>,
    store_id: u64,
    batches: mpsc::Receiver<Vec<pdpb::RegionHeartbeat>>,
    responses: mpsc::Sender<RegionHeartbeatResponse>,
}

/// Why a stream stopped serving.
enum Ended {
    /// The sender is gone: the task is done.
    Closed,
    /// Reopen (after a backoff).
    Broken(PdError),
}

impl Task {
    async fn run(mut self) {
        let cfg = self.leader.config.clone();
        let mut backoff = Backoff::new(cfg.backoff_base, cfg.backoff_max);
        loop {
            if self.batches.is_closed() && self.batches.is_empty() {
                return;
            }
            let deadline = Instant::now() + cfg.timeout;
            let err = match self.leader.current(deadline).await {
                Ok(conn) => match self.open(&conn).await {
                    Ok((tx, stream)) => match self.serve(&conn, tx, stream, &mut backoff).await {
                        Ended::Closed => return,
                        Ended::Broken(e) => e,
                    },
                    Err(e) => {
                        self.leader.invalidate(conn.generation);
                        e
                    }
                },
                Err(e) => e,
            };
            tracing::info!(store_id = self.store_id, error = %err, "reopening region heartbeat stream");
            // No call deadline here: the stream lives as long as the store.
            backoff
                .wait(Instant::now() + Duration::from_secs(3600))
                .await;
        }
    }

    async fn open(
        &self,
        conn: &Conn,
    ) -> Result<
        (
            mpsc::Sender<RegionHeartbeatRequest>,
            tonic::Streaming<RegionHeartbeatResponse>,
        ),
        PdError,
    > {
        let (tx, rx) = mpsc::channel(STREAM_CAPACITY);
        let mut grpc = conn.grpc.clone();
        let opening = grpc.region_heartbeat(ReceiverStream::new(rx));
        match tokio::time::timeout(self.leader.config.rpc_timeout, opening).await {
            Ok(Ok(resp)) => Ok((tx, resp.into_inner())),
            Ok(Err(status)) => Err(PdError::from_status(&status)),
            Err(_) => Err(PdError::Transport(format!(
                "opening a region heartbeat stream on {} timed out",
                conn.url
            ))),
        }
    }

    /// Moves batches out and answers in until the stream breaks or the
    /// sender is dropped.
    async fn serve(
        &mut self,
        conn: &Conn,
        tx: mpsc::Sender<RegionHeartbeatRequest>,
        mut stream: tonic::Streaming<RegionHeartbeatResponse>,
        backoff: &mut Backoff,
    ) -> Ended {
        let header = Some(pdpb::RequestHeader {
            cluster_id: self.leader.cluster_id,
        });
        loop {
            tokio::select! {
                batch = self.batches.recv() => {
                    let Some(regions) = batch else { return Ended::Closed };
                    let req = RegionHeartbeatRequest { header, store_id: self.store_id, regions };
                    if tx.send(req).await.is_err() {
                        self.leader.invalidate(conn.generation);
                        return Ended::Broken(PdError::Transport("heartbeat stream closed".into()));
                    }
                    backoff.reset();
                }
                msg = stream.message() => {
                    let resp = match msg {
                        Ok(Some(resp)) => resp,
                        Ok(None) => {
                            self.leader.invalidate(conn.generation);
                            return Ended::Broken(PdError::Transport(format!(
                                "heartbeat stream on {} ended", conn.url
                            )));
                        }
                        Err(status) => {
                            self.leader.invalidate(conn.generation);
                            return Ended::Broken(PdError::from_status(&status));
                        }
                    };
                    if let Some(e) = self.judge(conn, resp).await {
                        return Ended::Broken(e);
                    }
                    backoff.reset();
                }
            }
        }
    }

    /// Handles one answer: forwards it to the store, unless it says to go
    /// to another member. Returns the error when the stream is over (PD ends
    /// it after any refused batch).
    async fn judge(&mut self, conn: &Conn, resp: RegionHeartbeatResponse) -> Option<PdError> {
        let err = PdError::from_header(resp.header.as_ref());
        match &err {
            Some(PdError::NotLeader(_)) => {
                let deadline = Instant::now() + self.leader.config.timeout;
                let leader_hint = hint(resp.header.as_ref());
                self.leader
                    .follow_hint(conn.generation, leader_hint, deadline)
                    .await;
            }
            Some(PdError::Unavailable(_)) => self.leader.invalidate(conn.generation),
            // The store must see operator steps, rejections and refusals.
            // If it dropped the receiver it does not care: ignore.
            _ => {
                let _ = self.responses.send(resp).await;
            }
        }
        err
    }
}
