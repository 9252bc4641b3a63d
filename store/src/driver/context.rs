//! What a peer sees while it is handled: the store-wide context (engine,
//! apply pool, configuration, metrics, clock) and the current round (its
//! write batch and outgoing messages).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use flotilla_proto::metapb;
use flotilla_proto::raft_serverpb::RaftMessage;
use parking_lot::{Mutex, RwLock};
use rocksdb::WriteBatch;

use super::handler::PeerRouter;
use crate::apply::ApplyPool;
use crate::config::StoreConfig;
use crate::engine::Engine;
use crate::metrics::StoreMetrics;
use crate::pd_task::{PdScheduler, PdTask};
use crate::snap::SnapManager;
use crate::split_check::SplitChecker;

/// What the store publishes about each of its regions (for PD heartbeats
/// and the status pages), updated by the peers.
#[derive(Clone, Debug, Default)]
pub struct RegionMeta {
    /// The region as the peer knows it.
    pub region: metapb::Region,
    /// This store's peer.
    pub peer: metapb::Peer,
    /// Whether that peer leads.
    pub is_leader: bool,
    /// The leader the peer knows of.
    pub leader: Option<metapb::Peer>,
    /// Raft term when last published.
    pub term: u64,
    /// Bytes of data in the region, as last measured (0: not yet).
    pub approximate_size: u64,
    /// Keys in the region, as last measured.
    pub approximate_keys: u64,
    /// On the leader: peers that still need a snapshot to catch up (PD
    /// promotes a learner only once it is no longer pending).
    pub pending_peers: Vec<metapb::Peer>,
}

/// Shared by every poller, apply thread and service of one store.
pub struct StoreContext {
    /// This store's ID (from PD).
    pub store_id: u64,
    /// The configuration.
    pub cfg: Arc<StoreConfig>,
    /// The RocksDB.
    pub engine: Engine,
    /// Where committed entries are applied.
    pub apply_pool: ApplyPool,
    /// Snapshot files.
    pub snap: SnapManager,
    /// Metrics.
    pub metrics: Arc<StoreMetrics>,
    /// Ticks count from here (read from the clock, so ticks missed during
    /// a stall are delivered before any lease read).
    pub started: Instant,
    /// Region metadata by ID.
    pub regions: RwLock<HashMap<u64, RegionMeta>>,
    /// Regions whose leadership or range changed since the PD worker last
    /// looked (their heartbeats go out at once).
    pub changed: Mutex<Vec<u64>>,
    /// Work for the PD worker.
    pub pd_tasks: PdScheduler,
    /// Measures regions and picks split keys.
    pub split_checker: SplitChecker,
    /// Held while a peer is created or destroyed.
    pub lifecycle: Mutex<()>,
    /// Which other stores this store hears from.
    pub liveness: super::liveness::StoreLiveness,
    /// Leaderships and epochs, for fault tests (off in production).
    pub journal: super::journal::Journal,
    /// Messages for split regions whose split has not applied here yet.
    pub deferred: super::deferred::Deferred,
}

impl StoreContext {
    /// The store-wide tick now.
    pub fn current_tick(&self) -> u64 {
        let interval = self.cfg.raft.tick_interval.as_nanos().max(1);
        (self.started.elapsed().as_nanos() / interval) as u64
    }

    /// Notes a leadership change of `region_id` (for heartbeats).
    pub fn note_role_change(&self, region_id: u64) {
        self.changed.lock().push(region_id);
    }

    /// Queues work for the PD worker; gives the task back if its queue is
    /// full (or it stopped).
    pub fn schedule_pd(&self, task: PdTask) -> Result<(), PdTask> {
        self.pd_tasks.try_send(task).map_err(|e| match e {
            tokio::sync::mpsc::error::TrySendError::Full(t)
            | tokio::sync::mpsc::error::TrySendError::Closed(t) => t,
        })
    }

    /// Forgets a destroyed region.
    pub fn unpublish(&self, region_id: u64) {
        let mut regions = self.regions.write();
        if let Some(old) = regions.remove(&region_id) {
            if old.is_leader {
                self.metrics.leaders.dec();
            }
        }
        self.metrics.regions.set(regions.len() as i64);
    }

    /// Whether another initialized region here overlaps `region`'s range.
    pub fn overlaps_another(&self, region: &metapb::Region) -> bool {
        self.regions.read().values().any(|m| {
            m.region.id != region.id
                && !m.region.peers.is_empty()
                && ranges_overlap(&m.region, region)
        })
    }

    /// Publishes a region's metadata.
    pub fn publish(&self, meta: RegionMeta) {
        let leads = meta.is_leader;
        let mut regions = self.regions.write();
        self.journal
            .region_changed(regions.get(&meta.region.id), &meta);
        let led = regions
            .insert(meta.region.id, meta)
            .is_some_and(|old| old.is_leader);
        self.metrics.regions.set(regions.len() as i64);
        match (led, leads) {
            (false, true) => self.metrics.leaders.inc(),
            (true, false) => self.metrics.leaders.dec(),
            _ => {}
        }
    }
}

/// Whether two regions' ranges share a key (an empty end is the key
/// space's end).
pub fn ranges_overlap(a: &metapb::Region, b: &metapb::Region) -> bool {
    let below = |start: &[u8], end: &[u8]| end.is_empty() || start < end;
    below(&a.start_key, &b.end_key) && below(&b.start_key, &a.end_key)
}

/// The messages a round sends, grouped by destination store.
#[derive(Default)]
pub struct Outbound {
    /// May leave before the round's write.
    pub before_persist: HashMap<u64, Vec<RaftMessage>>,
    /// Leave only after it.
    pub after_persist: HashMap<u64, Vec<RaftMessage>>,
    /// Snapshot messages (sent on their own RPC).
    pub snapshots: Vec<RaftMessage>,
}

impl Outbound {
    /// Queues `m` for its destination store.
    pub fn push(&mut self, after_persist: bool, m: RaftMessage, is_snapshot: bool) {
        if is_snapshot {
            self.snapshots.push(m);
            return;
        }
        let store = m.to_peer.as_ref().map_or(0, |p| p.store_id);
        let queue = if after_persist {
            &mut self.after_persist
        } else {
            &mut self.before_persist
        };
        queue.entry(store).or_default().push(m);
    }
}

/// Counts for one round's write.
#[derive(Default, Debug, Clone, Copy)]
pub struct RoundStats {
    /// Regions with log or hard state in it.
    pub regions: usize,
    /// Log entries in it.
    pub entries: usize,
}

/// A peer's view of the store and the current round.
pub struct PeerContext<'a> {
    /// The store.
    pub store: &'a StoreContext,
    /// The round's write batch (log entries, hard states, snapshots).
    pub wb: &'a mut WriteBatch,
    /// Whether the round's write needs an fsync.
    pub must_sync: &'a mut bool,
    /// The round's outgoing messages.
    pub outbound: &'a mut Outbound,
    /// Regions to handle again after this round.
    pub rewake: &'a mut Vec<u64>,
    /// Counts for the metrics.
    pub round_stats: &'a mut RoundStats,
    /// Every region's mailbox (to create or reach other regions' peers).
    pub router: &'a PeerRouter,
}
