//! The leader's live picture of the cluster: stores, the region tree, the
//! scheduling view, operators — built from the replicated metadata when a
//! member becomes leader, then kept current by heartbeats.
//!
//! Everything here is synchronous and clock-free (`now_ms` comes in as an
//! argument); the server wraps a [`Cluster`] in a lock and persists what
//! it reports as changed.

pub mod convert;
mod load;
mod regions;
mod schedule;
mod stores;
pub mod tree;

use std::collections::BTreeMap;

use flotilla_proto::{metapb, pdpb};

use crate::schedule::{ClusterView, OperatorController, Patrol, ScheduleConfig, SchedulerRegistry};
use tree::RegionTree;

pub use regions::HeartbeatOutcome;
pub use schedule::PassReport;

/// A store as PD records it.
#[derive(Clone, Debug)]
pub struct StoreRecord {
    /// The registered metadata (with the administrative state).
    pub meta: metapb::Store,
    /// The latest heartbeat's statistics.
    pub stats: pdpb::StoreStats,
    /// PD clock at the latest heartbeat (at leader start for stores not yet
    /// heard from: a new leader gives every store a grace period).
    pub last_heartbeat_ms: u64,
    /// Whether a heartbeat arrived since this leader started.
    pub heard: bool,
}

/// A change to persist: a region record to write, or to delete.
pub type Dirty = BTreeMap<u64, Option<pdpb::RegionInfo>>;

/// The leader's in-memory cluster.
pub struct Cluster {
    /// What schedulers read: stores and regions by ID.
    pub view: ClusterView,
    /// Regions by start key, for routing.
    pub tree: RegionTree,
    /// Stores by ID.
    pub stores: BTreeMap<u64, StoreRecord>,
    /// The first region, once bootstrapped.
    pub bootstrap: Option<metapb::Region>,
    /// Scheduling knobs in force.
    pub schedule_config: ScheduleConfig,
    /// Running and recent operators.
    pub controller: OperatorController,
    /// The balance schedulers.
    pub registry: SchedulerRegistry,
    patrol: Patrol,
    /// Regions changed (or removed) since the last persist.
    dirty: Dirty,
}

impl Cluster {
    /// An empty cluster (nothing bootstrapped, no stores).
    pub fn new(schedule_config: ScheduleConfig) -> Cluster {
        Cluster {
            view: ClusterView::new(),
            tree: RegionTree::default(),
            stores: BTreeMap::new(),
            bootstrap: None,
            schedule_config,
            controller: OperatorController::new(),
            registry: SchedulerRegistry::with_defaults(),
            patrol: Patrol::new(),
            dirty: Dirty::new(),
        }
    }

    /// Whether the cluster has its first region.
    pub fn is_bootstrapped(&self) -> bool {
        self.bootstrap.is_some()
    }

    /// Takes the region changes to persist.
    pub fn take_dirty(&mut self) -> Dirty {
        std::mem::take(&mut self.dirty)
    }

    /// How many region changes wait to be persisted.
    pub fn dirty_len(&self) -> usize {
        self.dirty.len()
    }
}

impl Cluster {
    /// Puts back region changes whose persist failed, unless newer changes
    /// to the same regions arrived meanwhile.
    pub fn restore_dirty(&mut self, dirty: Dirty) {
        for (id, record) in dirty {
            self.dirty.entry(id).or_insert(record);
        }
    }
}
