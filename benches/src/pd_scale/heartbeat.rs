//! The fake stores' region heartbeats: one bidi `RegionHeartbeat` stream
//! per store, on a connection of its own, each sending batches of the
//! heartbeats of the regions that store leads, round after round.
//!
//! Each stream is fed from a channel of [`SEND_QUEUE`] batches, so a sender
//! runs at most that far (plus what HTTP/2 flow control lets through) ahead
//! of the server. The rate the benchmark reports is counted at the server
//! anyway (its `region_heartbeats_total{result="ok"}`), not at the senders.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use flotilla_proto::pdpb;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_stream::wrappers::ReceiverStream;

use super::client::Pd;
use super::layout::Layout;
use super::rng::XorShift;

/// Batches queued per stream before the sender waits.
const SEND_QUEUE: usize = 2;

/// What the streams saw, summed over all stores.
#[derive(Debug, Default)]
pub struct StreamCounters {
    /// Region heartbeats handed to the streams.
    pub sent: AtomicU64,
    /// Heartbeat batches handed to the streams.
    pub batches: AtomicU64,
    /// Operator steps PD sent back.
    pub commands: AtomicU64,
    /// Heartbeats PD refused.
    pub rejected: AtomicU64,
    /// The first refusal's reason.
    pub first_rejection: Mutex<Option<String>>,
}

/// Region heartbeats in flight from every fake store.
pub struct HeartbeatLoad {
    stop: watch::Sender<bool>,
    senders: Vec<JoinHandle<anyhow::Result<()>>>,
    readers: Vec<JoinHandle<()>>,
    /// Running totals.
    pub counters: Arc<StreamCounters>,
}

impl HeartbeatLoad {
    /// Opens one stream per store and starts sending batches of `batch`
    /// heartbeats: `rounds` rounds over each store's regions, or until
    /// stopped if `None`; as fast as PD takes them, or at `rate`
    /// heartbeats per second over all stores.
    pub async fn start(
        pd: &Pd,
        layout: Arc<Layout>,
        batch: usize,
        rounds: Option<u64>,
        rate: Option<f64>,
        seed: u64,
    ) -> anyhow::Result<HeartbeatLoad> {
        // Each store sends its share of the rate, one batch per tick.
        let pace = rate
            .filter(|r| *r > 0.0)
            .map(|r| Duration::from_secs_f64(batch as f64 * layout.stores.len() as f64 / r));
        let (stop, stop_rx) = watch::channel(false);
        let counters = Arc::new(StreamCounters::default());
        let mut load = HeartbeatLoad {
            stop,
            senders: Vec::new(),
            readers: Vec::new(),
            counters: counters.clone(),
        };
        for store in 0..layout.stores.len() {
            let mut client = pd.own_client().await?;
            let (tx, rx) = mpsc::channel(SEND_QUEUE);
            let mut responses = client
                .region_heartbeat(ReceiverStream::new(rx))
                .await
                .with_context(|| format!("opening store {store}'s heartbeat stream"))?
                .into_inner();
            let c = counters.clone();
            load.readers.push(tokio::spawn(async move {
                while let Ok(Some(resp)) = responses.message().await {
                    c.commands
                        .fetch_add(resp.commands.len() as u64, Ordering::Relaxed);
                    c.rejected
                        .fetch_add(resp.rejected.len() as u64, Ordering::Relaxed);
                    let reason = resp.rejected.first().map(|r| {
                        let e = r.error.as_ref().map_or("", |e| e.message.as_str());
                        format!("region {}: {e}", r.region_id)
                    });
                    let mut first = c.first_rejection.lock().expect("not poisoned");
                    if first.is_none() {
                        *first = reason;
                    }
                }
            }));
            let sender = StoreSender {
                store,
                layout: layout.clone(),
                header: pd.header(),
                batch,
                rounds,
                pace,
                rng: XorShift::new(seed ^ (store as u64 + 1) << 32),
                counters: counters.clone(),
            };
            load.senders
                .push(tokio::spawn(sender.run(tx, stop_rx.clone())));
        }
        Ok(load)
    }

    /// Waits for every sender to finish its rounds (or to be stopped).
    pub async fn join_senders(&mut self) -> anyhow::Result<()> {
        for sender in self.senders.drain(..) {
            sender.await.context("heartbeat sender panicked")??;
        }
        Ok(())
    }

    /// Stops sending: each stream's request side ends after the batches
    /// already queued, which PD still receives and processes.
    pub async fn stop_sending(&mut self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.join_senders().await
    }

    /// Stops sending and drops the streams (PD discards whatever it has
    /// not read yet); returns the totals.
    pub async fn close(mut self) -> anyhow::Result<Arc<StreamCounters>> {
        self.stop_sending().await?;
        // PD keeps each store's response stream open for operator steps
        // after the request side ends, and dropping it resets the whole
        // stream: only close once PD has processed what it should.
        for reader in self.readers.drain(..) {
            reader.abort();
        }
        Ok(self.counters)
    }
}

/// One fake store's side of its heartbeat stream.
struct StoreSender {
    store: usize,
    layout: Arc<Layout>,
    header: Option<pdpb::RequestHeader>,
    batch: usize,
    rounds: Option<u64>,
    pace: Option<Duration>,
    rng: XorShift,
    counters: Arc<StreamCounters>,
}

impl StoreSender {
    async fn run(
        mut self,
        tx: mpsc::Sender<pdpb::RegionHeartbeatRequest>,
        mut stop: watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let store_id = self.layout.stores[self.store].id;
        let layout = self.layout.clone();
        let mut ticks = self.pace.map(|every| {
            let mut t = tokio::time::interval(every);
            // Behind (a slow send, a busy runtime): catch up, so the rate
            // offered over the phase is the one asked for.
            t.set_missed_tick_behavior(MissedTickBehavior::Burst);
            t
        });
        let mut round = 0;
        while self.rounds.is_none_or(|r| round < r) {
            for chunk in layout.led_by(self.store, round).chunks(self.batch) {
                if let Some(t) = &mut ticks {
                    tokio::select! {
                        _ = t.tick() => {}
                        _ = stop.wait_for(|s| *s) => return Ok(()),
                    }
                }
                let req = pdpb::RegionHeartbeatRequest {
                    header: self.header,
                    store_id,
                    regions: chunk
                        .iter()
                        .map(|&i| layout.heartbeat(i as usize, round, &mut self.rng))
                        .collect(),
                };
                tokio::select! {
                    sent = tx.send(req) => sent.map_err(|_| {
                        anyhow::anyhow!("store {store_id}'s heartbeat stream closed")
                    })?,
                    _ = stop.wait_for(|s| *s) => return Ok(()),
                }
                self.counters
                    .sent
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                self.counters.batches.fetch_add(1, Ordering::Relaxed);
            }
            round += 1;
        }
        Ok(())
    }
}
