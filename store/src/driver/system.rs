//! The Raft system of one store: the router, the poller threads, the apply
//! pool and the one store-wide ticker — and the one path that creates a
//! peer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use flotilla_proto::metapb;
use parking_lot::Mutex;

use super::context::StoreContext;
use super::handler::{PeerRouter, RaftHandler};
use crate::peer::msg::PeerMsg;
use crate::peer::storage::PeerStorage;
use crate::peer::Peer;
use crate::poll::poller::{self, RoundLimits};
use crate::transport::Transport;

/// How often an idle poller checks whether to stop.
const IDLE_CHECK: Duration = Duration::from_millis(100);
/// Messages taken from one mailbox per round.
const MAX_MESSAGES_PER_ROUND: usize = 1024;

/// Why a peer could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreatePeerError {
    /// This store already has a peer of the region.
    #[error("region {0} already has a peer on this store")]
    Exists(u64),
    /// raftcore refused the peer's state.
    #[error("region {0}: {1}")]
    Raft(u64, raftcore::Error),
}

/// Pollers, apply pool and ticker of one store.
pub struct RaftSystem {
    store: Arc<StoreContext>,
    router: Arc<PeerRouter>,
    stop: Arc<AtomicBool>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// A router whose `Wake`s the apply pool can send (create it first: the
/// apply pool, inside the store context, needs it).
pub fn new_router(mailbox_capacity: usize) -> Arc<PeerRouter> {
    Arc::new(PeerRouter::new(mailbox_capacity))
}

/// The apply pool's way to wake a region's peer.
pub fn waker(router: &Arc<PeerRouter>) -> crate::apply::Wake {
    let router = Arc::downgrade(router);
    Arc::new(move |id| {
        if let Some(r) = router.upgrade() {
            // A full mailbox already has the peer scheduled: it will see
            // the progress anyway.
            let _ = r.send(id, PeerMsg::Wake);
        }
    })
}

/// Creates peer `me` of the region in `storage`, registers it and wakes
/// it. Every peer comes to exist through here — bootstrap, restart, split,
/// or a message from a new region's leader.
pub fn create_peer(
    store: &StoreContext,
    router: &PeerRouter,
    me: metapb::Peer,
    storage: PeerStorage,
) -> Result<(), CreatePeerError> {
    let region_id = storage.region().id;
    // Creators race (a split and a message from the new region's leader):
    // only one may register the region with the apply pool and router.
    let _creating = store.lifecycle.lock();
    if router.contains(region_id) {
        return Err(CreatePeerError::Exists(region_id));
    }
    let peer = Peer::new(me, storage, &store.cfg.raft, store)
        .map_err(|e| CreatePeerError::Raft(region_id, e))?;
    let meta = peer.meta();
    let registered = router.register(region_id, peer);
    debug_assert!(registered, "checked under the lifecycle lock");
    store.publish(meta);
    let _ = router.send(region_id, PeerMsg::Wake);
    Ok(())
}

/// The split checker's way to hand its outcome to a region's peer.
pub fn split_deliverer(router: &Arc<PeerRouter>) -> crate::split_check::Deliver {
    let router = Arc::downgrade(router);
    Arc::new(move |id, outcome| {
        if let Some(r) = router.upgrade() {
            let _ = r.send(id, PeerMsg::SplitCheckResult(outcome));
        }
    })
}

impl RaftSystem {
    /// Starts the pollers and the ticker.
    pub fn start(
        store: Arc<StoreContext>,
        router: Arc<PeerRouter>,
        transport: Arc<dyn Transport>,
    ) -> RaftSystem {
        let stop = Arc::new(AtomicBool::new(false));
        let cfg = &store.cfg.raft;
        let limits = RoundLimits {
            max_regions: cfg.max_regions_per_round,
            max_messages: MAX_MESSAGES_PER_ROUND,
        };
        let mut threads = Vec::new();
        for i in 0..cfg.poller_threads {
            let mut handler = RaftHandler::new(store.clone(), transport.clone(), router.clone());
            let (router, stop) = (router.clone(), stop.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("raft-poller-{i}"))
                .spawn(move || {
                    let stopped = || stop.load(Ordering::Acquire);
                    poller::run(&router, &mut handler, limits, IDLE_CHECK, &stopped);
                });
            threads.push(spawned.expect("spawn poller thread"));
        }
        let (ticker_store, ticker_router, ticker_stop) =
            (store.clone(), router.clone(), stop.clone());
        let ticker = std::thread::Builder::new()
            .name("raft-ticker".into())
            .spawn(move || {
                super::ticker::run(&ticker_store, &ticker_router, &*transport, &ticker_stop);
            });
        threads.push(ticker.expect("spawn ticker thread"));
        RaftSystem {
            store,
            router,
            stop,
            threads: Mutex::new(threads),
        }
    }

    /// The router.
    pub fn router(&self) -> &Arc<PeerRouter> {
        &self.router
    }

    /// The store context.
    pub fn store(&self) -> &Arc<StoreContext> {
        &self.store
    }

    /// Creates peer `me` of the region in `storage` and starts it.
    pub fn create_peer(
        &self,
        me: metapb::Peer,
        storage: PeerStorage,
    ) -> Result<(), CreatePeerError> {
        create_peer(&self.store, &self.router, me, storage)
    }

    /// Stops pollers, ticker and apply pool (after what they are doing).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        for t in std::mem::take(&mut *self.threads.lock()) {
            let _ = t.join();
        }
        self.store.apply_pool.stop();
        self.store.split_checker.stop();
    }
}

impl Drop for RaftSystem {
    fn drop(&mut self) {
        self.stop();
    }
}
