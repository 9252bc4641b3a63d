//! Scheduling: deciding where regions and their leaders live.
//!
//! Everything here is a pure function of its inputs: no I/O, no clock
//! (time enters as `now_ms`, PD's monotonic milliseconds), no threads, no
//! randomness, and only ordered maps, so the same inputs give the same
//! operators. The server owns the loops; this module owns the decisions.
//!
//! # The flow
//!
//! 1. **View.** Store and region heartbeats update a [`ClusterView`]
//!    ([`view`]): stores with their state and labels, regions with their
//!    peers, leader and epoch, and per-store counts kept in step with the
//!    regions.
//! 2. **Context.** A pass starts with a [`ScheduleContext`] ([`context`]):
//!    the view plus the pending effect of the operators already running,
//!    so a pass never schedules against counts its own earlier operators
//!    are about to change.
//! 3. **Checkers** ([`checker`]) look at one region each and repair it:
//!    leave a stuck joint state, settle stray learners, replace replicas on
//!    Down or Offline stores, add or remove voters, improve isolation across
//!    failure domains ([`placement`]). [`Patrol`] sweeps all regions in
//!    batches.
//! 4. **Schedulers** ([`scheduler`]) compare stores and even out leaders
//!    (balance-leader) and data (balance-region). A [`SchedulerRegistry`]
//!    holds the active ones and their pause state.
//! 5. **Operators** ([`operator`]) are the output: a region, the epoch they
//!    were built for, and steps (add learner, promote, remove peer,
//!    transfer leader, leave joint, split).
//! 6. **Controller.** The [`OperatorController`] ([`controller`]) admits
//!    operators within the per-kind and per-store snapshot limits, at most
//!    one per region, and on every region heartbeat
//!    ([`OperatorController::dispatch`]) advances the region's operator and
//!    returns the step to put in the heartbeat response. Later heartbeats
//!    show whether the step happened; the operator finishes, or is
//!    cancelled if the region changed under it, or times out.
//!
//! ```
//! use flotilla_pd::schedule::mock::{CountingIds, MockCluster};
//! use flotilla_pd::schedule::{OperatorController, Patrol, ScheduleConfig, StoreState};
//!
//! let mut cluster = MockCluster::new();
//! for id in 1..=4 {
//!     cluster.add_store(id);
//! }
//! cluster.add_region(1, b"", b"", &[1, 2, 3], 1);
//! cluster.set_store_state(3, StoreState::Down);
//!
//! let cfg = ScheduleConfig::default();
//! let mut controller = OperatorController::new();
//! let mut ids = CountingIds::default();
//! Patrol::new().run(cluster.view(), &cfg, &mut controller, &mut ids, 0, 100);
//!
//! // The server would send each step in a heartbeat response; the mock
//! // carries it out at once.
//! while let Some(step) = controller.dispatch(&cluster.region(1), 1) {
//!     cluster.apply_step(1, &step).expect("a store accepts the step");
//! }
//! assert!(cluster.region(1).peer_on_store(3).is_none());
//! assert!(cluster.region(1).peer_on_store(4).is_some());
//! ```

pub mod checker;
pub mod config;
pub mod context;
pub mod controller;
pub mod mock;
pub mod operator;
pub mod placement;
pub mod scheduler;
pub mod view;

#[cfg(test)]
mod tests;

pub use self::checker::{check_region, Patrol, PatrolReport};
pub use self::config::ScheduleConfig;
pub use self::context::{ScheduleContext, StoreInfluence};
pub use self::controller::{AddError, KindCounters, OperatorController};
pub use self::operator::{BuildError, OpKind, OpStatus, OpStep, Operator};
pub use self::scheduler::{
    RegistryError, RunReport, Scheduler, SchedulerRegistry, SchedulerStatus,
};
pub use self::view::{ClusterView, Epoch, PeerRole, PeerView, RegionView, StoreState, StoreView};

/// Where new peer ids come from.
///
/// PD allocates ids from a persisted counter in batches; an implementation
/// must never return an id twice (across PD restarts and leader changes
/// too) and returns `None` when its current batch is used up, after which
/// callers stop building operators that need a new peer.
pub trait IdSource {
    /// The next unused id, or `None` if none is available right now.
    fn next_id(&mut self) -> Option<u64>;
}
