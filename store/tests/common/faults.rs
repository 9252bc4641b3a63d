//! Faults beyond the filter chain's own rules: a store cut off until a
//! switch heals it, a peer frozen as by SIGSTOP, and a counter of the
//! messages a store sends or receives.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flotilla_proto::raft_serverpb::RaftMessage;
use flotilla_store::driver::handler::PeerRouter;
use flotilla_store::peer::msg::PeerMsg;
use flotilla_store::peer::Peer;
use flotilla_store::poll::router::Slot;
use flotilla_store::transport::filter::{message_type, Direction, Filter, PartitionFilter, Switch};
use raftcore::MessageType;

use super::{Cluster, LONG};

/// Cuts store `i` off from every other store, both ways, until the
/// returned switch is turned off.
pub fn isolate(cluster: &Cluster, i: usize) -> Arc<Switch> {
    let cut = Switch::new(PartitionFilter { stores: Vec::new() });
    cluster.store(i).filters().add(cut.clone());
    cut
}

/// Counts the Raft messages of one region going one way through a store
/// (of the given types; all if none); drops nothing.
pub struct Counter {
    region_id: u64,
    types: Vec<MessageType>,
    direction: Direction,
    count: AtomicUsize,
}

impl Counter {
    /// A counter to install on a store's filter chain.
    pub fn new(region_id: u64, types: Vec<MessageType>, direction: Direction) -> Arc<Counter> {
        Arc::new(Counter {
            region_id,
            types,
            direction,
            count: AtomicUsize::new(0),
        })
    }

    /// Messages counted so far.
    pub fn get(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

impl Filter for Counter {
    fn filter(&self, direction: Direction, _: u64, msgs: &mut Vec<RaftMessage>) {
        if direction != self.direction {
            return;
        }
        let matching = msgs
            .iter()
            .filter(|m| m.region_id == self.region_id && !m.is_tombstone)
            .filter(|m| {
                self.types.is_empty() || message_type(m).is_some_and(|t| self.types.contains(&t))
            })
            .count();
        self.count.fetch_add(matching, Ordering::SeqCst);
    }
}

/// A store's peer of one region, frozen: no tick, Raft message or request
/// of it is handled — as if its process were paused (SIGSTOP) — until
/// [`thaw`](Frozen::thaw). Made by taking the region's slot off the
/// pollers' ready queue and holding it: a scheduled slot is queued once,
/// and pollers handle only what they take from the queue.
pub struct Frozen {
    router: Arc<PeerRouter>,
    slot: Arc<Slot<Peer, PeerMsg>>,
}

impl Frozen {
    /// Freezes store `i`'s peer of `region` (the next time it is
    /// scheduled: every tick, for an awake region).
    pub async fn new(cluster: &Cluster, i: usize, region: u64) -> Frozen {
        let router = cluster.store(i).router().clone();
        let taker = router.clone();
        let slot = tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + LONG;
            while Instant::now() < deadline {
                match taker.ready().recv_timeout(Duration::from_millis(50)) {
                    Ok(slot) if slot.id == region => return Some(slot),
                    // Another region's turn: put it back (its messages
                    // wait in its mailbox; a missed tick is caught up).
                    Ok(other) => taker.release(&other),
                    Err(_) => {}
                }
            }
            None
        })
        .await
        .expect("taker")
        .expect("the region was scheduled");
        Frozen { router, slot }
    }

    /// Messages and requests waiting for the frozen peer.
    pub fn pending(&self) -> usize {
        self.slot.pending()
    }

    /// Lets the pollers handle the peer again.
    pub fn thaw(self) {
        self.router.release(&self.slot);
    }
}
