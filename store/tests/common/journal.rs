//! A journal of who led which region in which term, for invariant I3 of
//! RELIABILITY.md §4.3 (at most one leader per region and term), kept from
//! two sources while a test runs:
//! - a tap at the head of every watched store's filter chain, which sees
//!   each Raft message the store sends before any fault filter behind it
//!   drops it: only a leader sends `Append`, `Heartbeat`, `Snapshot`,
//!   `TimeoutNow` and `ReadIndexResponse`, each carrying its term — so a
//!   leader that sent anything at all is on record, however briefly it led;
//! - a sampler reading every watched store's published region metadata
//!   (`is_leader` and `term`, published at each role change) every 2 ms.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use flotilla_proto::raft_serverpb::RaftMessage;
use flotilla_store::driver::context::StoreContext;
use flotilla_store::transport::filter::{Direction, Filter};
use parking_lot::Mutex;
use raftcore::MessageType;

use super::Cluster;

/// (region, term) → the peers seen leading it.
type Claims = Arc<Mutex<BTreeMap<(u64, u64), BTreeSet<u64>>>>;

/// The stores sampled: (index in the cluster, its context). Weak: the
/// journal must not keep a stopped store's RocksDB open.
type Watched = Arc<Mutex<Vec<(usize, Weak<StoreContext>)>>>;

/// Records leadership claims until dropped.
pub struct LeaderJournal {
    claims: Claims,
    watched: Watched,
    stop: Arc<AtomicBool>,
}

impl LeaderJournal {
    /// Starts a journal watching every running store of `cluster`. Call
    /// it before installing any other filter: the tap must come first in
    /// each chain to see what the others drop.
    pub fn start(cluster: &Cluster) -> LeaderJournal {
        let journal = LeaderJournal {
            claims: Arc::default(),
            watched: Arc::default(),
            stop: Arc::default(),
        };
        for (i, s) in cluster.stores.iter().enumerate() {
            if s.is_some() {
                journal.watch(cluster, i);
            }
        }
        let (claims, watched, stop) = (
            journal.claims.clone(),
            journal.watched.clone(),
            journal.stop.clone(),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                for (_, store) in watched.lock().iter() {
                    let Some(store) = store.upgrade() else {
                        continue;
                    };
                    for m in store.regions.read().values().filter(|m| m.is_leader) {
                        record(&claims, m.region.id, m.term, m.peer.id);
                    }
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        journal
    }

    /// Watches store `i` too — again after a restart (a new process has a
    /// new chain and new metadata). Call it before installing any other
    /// filter on the store.
    pub fn watch(&self, cluster: &Cluster, i: usize) {
        let store = cluster.store(i);
        store.filters().add(Arc::new(Tap {
            claims: self.claims.clone(),
        }));
        let context = Arc::downgrade(store.context());
        self.watched.lock().push((i, context));
    }

    /// Stops sampling store `i`; call it before stopping the store, so
    /// that no sample holds its RocksDB open while it restarts.
    pub fn forget(&self, i: usize) {
        self.watched.lock().retain(|(j, _)| *j != i);
    }

    /// The terms of `region` someone led, each with its leaders.
    pub fn terms(&self, region: u64) -> BTreeMap<u64, BTreeSet<u64>> {
        self.claims
            .lock()
            .range((region, 0)..=(region, u64::MAX))
            .map(|(&(_, term), peers)| (term, peers.clone()))
            .collect()
    }

    /// Panics if two peers led one region in one term.
    pub fn assert_one_leader_per_term(&self, what: &str) {
        let claims = self.claims.lock();
        let doubles: Vec<_> = claims.iter().filter(|(_, peers)| peers.len() > 1).collect();
        assert!(
            doubles.is_empty(),
            "{what}: two leaders in one term ((region, term) → peers): {doubles:?}; every claim: {claims:?}"
        );
    }
}

impl Drop for LeaderJournal {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn record(claims: &Claims, region: u64, term: u64, peer: u64) {
    claims
        .lock()
        .entry((region, term))
        .or_default()
        .insert(peer);
}

/// Notes the sender of every leader-only message a store sends; drops
/// nothing.
struct Tap {
    claims: Claims,
}

impl Filter for Tap {
    fn filter(&self, direction: Direction, _: u64, msgs: &mut Vec<RaftMessage>) {
        if direction != Direction::Outbound {
            return;
        }
        for envelope in msgs
            .iter()
            .filter(|m| !m.is_tombstone && !m.is_store_heartbeat)
        {
            let Ok(m) = raftcore::codec::decode_message(&envelope.message) else {
                continue;
            };
            let from_leader = matches!(
                m.msg_type,
                MessageType::Append
                    | MessageType::Heartbeat
                    | MessageType::Snapshot
                    | MessageType::TimeoutNow
                    | MessageType::ReadIndexResponse
            );
            if from_leader && m.term > 0 {
                record(&self.claims, envelope.region_id, m.term, m.from);
            }
        }
    }
}
