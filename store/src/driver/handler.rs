//! The poller handler: what one round does for the regions with work.
//!
//! 1. Each region: pick up apply progress, handle its messages, catch up
//!    its ticks, and take its `Ready` into the round (entries and hard
//!    state into the shared write batch, committed entries to the apply
//!    pool, early messages into the outbound queues).
//! 2. Once for all: send the early messages, write the batch — **one
//!    write, one fsync** for every region of the round — then let each
//!    region finish (its persisted messages are released only now), and
//!    send those, one batch per destination store.

use std::sync::Arc;
use std::time::Instant;

use flotilla_proto::raft_serverpb::RaftMessage;
use rocksdb::WriteBatch;

use super::context::{Outbound, PeerContext, RoundStats, StoreContext};
use crate::peer::msg::PeerMsg;
use crate::peer::Peer;
use crate::poll::poller::Handler;
use crate::poll::router::Router;
use crate::transport::Transport;

/// Region ID → peer mailbox.
pub type PeerRouter = Router<Peer, PeerMsg>;

/// One poller's handler and its round state.
pub struct RaftHandler {
    store: Arc<StoreContext>,
    transport: Arc<dyn Transport>,
    router: Arc<PeerRouter>,
    round: Round,
}

#[derive(Default)]
struct Round {
    wb: WriteBatch,
    must_sync: bool,
    outbound: Outbound,
    rewake: Vec<u64>,
    stats: RoundStats,
}

impl Round {
    fn context<'a>(
        &'a mut self,
        store: &'a StoreContext,
        router: &'a PeerRouter,
    ) -> PeerContext<'a> {
        PeerContext {
            store,
            router,
            wb: &mut self.wb,
            must_sync: &mut self.must_sync,
            outbound: &mut self.outbound,
            rewake: &mut self.rewake,
            round_stats: &mut self.stats,
        }
    }
}

impl RaftHandler {
    /// A handler for one poller thread.
    pub fn new(
        store: Arc<StoreContext>,
        transport: Arc<dyn Transport>,
        router: Arc<PeerRouter>,
    ) -> RaftHandler {
        RaftHandler {
            store,
            transport,
            router,
            round: Round::default(),
        }
    }

    fn send(&self, queues: std::collections::HashMap<u64, Vec<RaftMessage>>) {
        for (store_id, msgs) in queues {
            self.store
                .metrics
                .send_batch_size
                .observe(msgs.len() as f64);
            self.transport.send(store_id, msgs);
        }
    }

    fn persist(&mut self) {
        let wb = std::mem::take(&mut self.round.wb);
        if wb.is_empty() {
            return;
        }
        let sync = std::mem::take(&mut self.round.must_sync);
        let stats = std::mem::take(&mut self.round.stats);
        let started = Instant::now();
        if let Err(e) = self.store.engine.write_acknowledged(wb, sync) {
            // Without a durable log nothing may be sent or acknowledged.
            panic!("raft log write failed: {e}");
        }
        let m = &self.store.metrics;
        m.persist_duration.observe(started.elapsed().as_secs_f64());
        m.persist_batch_regions.observe(stats.regions as f64);
        m.persist_batch_entries.observe(stats.entries as f64);
        crate::fail::point("after_log_persist");
    }
}

impl Handler<Peer, PeerMsg> for RaftHandler {
    fn handle(&mut self, _region_id: u64, peer: &mut Peer, msgs: Vec<PeerMsg>) {
        let now = self.store.current_tick();
        let mut cx = self.round.context(&self.store, &self.router);
        peer.on_apply_progress(&mut cx);
        if peer.is_destroying() {
            peer.maybe_destroy(&mut cx);
            return;
        }
        peer.on_ticks(&mut cx, now);
        for m in msgs {
            peer.on_msg(&mut cx, m);
            if peer.is_destroying() {
                peer.maybe_destroy(&mut cx);
                return;
            }
        }
        peer.collect_ready(&mut cx);
        peer.maybe_request_snapshot(&mut cx);
    }

    fn end_round(&mut self, regions: &mut [(u64, &mut Peer)]) {
        let early = std::mem::take(&mut self.round.outbound.before_persist);
        self.send(early);
        self.persist();
        let mut cx = self.round.context(&self.store, &self.router);
        for (_, peer) in regions.iter_mut() {
            peer.after_persist(&mut cx);
        }
        let late = std::mem::take(&mut self.round.outbound.after_persist);
        self.send(late);
        for m in std::mem::take(&mut self.round.outbound.snapshots) {
            self.transport.send_snapshot(m);
        }
        // Writes made by `after_persist` (none today) would wait for the
        // next round's batch; deleting a compacted log needs no fsync.
        for id in std::mem::take(&mut self.round.rewake) {
            let _ = self.router.send(id, PeerMsg::Wake);
        }
    }

    fn hibernating(&self, peer: &Peer) -> bool {
        peer.is_hibernating()
    }
}
