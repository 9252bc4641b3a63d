//! Operators: what PD wants done to one region, as a list of steps.
//!
//! PD never changes a region itself. It hands the current step of the
//! region's operator to the region leader in a heartbeat response, and
//! [`Operator::check`] looks at every later heartbeat to see which steps have
//! happened. A step is re-sent until the region shows it done, so a lost
//! response costs one heartbeat interval, not the operator.
//!
//! Steps are idempotent on the store side: adding a learner that exists,
//! promoting a voter or removing an absent peer is a no-op there.

mod builder;
#[cfg(test)]
mod tests;

use std::fmt;

use serde::Serialize;

pub use self::builder::BuildError;
use super::config::ScheduleConfig;
use super::view::{Epoch, PeerRole, RegionView};

/// What an operator is for; picks its concurrency limit, its timeout and
/// whether it may replace another operator on the same region.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpKind {
    /// Moves only leadership (balance-leader).
    Leader,
    /// Moves data for balance (balance-region).
    Region,
    /// Repairs replication: down/offline/missing/extra replicas, joint state.
    Replica,
    /// Splits a region.
    Split,
    /// Asked for by an operator through the API.
    Admin,
}

impl OpKind {
    /// Every kind, in counter order.
    pub const ALL: [OpKind; 5] = [
        OpKind::Leader,
        OpKind::Region,
        OpKind::Replica,
        OpKind::Split,
        OpKind::Admin,
    ];

    /// An operator may replace one of strictly lower priority: repairing a
    /// lost replica matters more than finishing a balance move, and a human
    /// asking explicitly matters most.
    pub fn priority(self) -> u8 {
        match self {
            OpKind::Admin => 3,
            OpKind::Replica => 2,
            OpKind::Leader | OpKind::Region | OpKind::Split => 1,
        }
    }

    /// Lower-case name for metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Leader => "leader",
            OpKind::Region => "region",
            OpKind::Replica => "replica",
            OpKind::Split => "split",
            OpKind::Admin => "admin",
        }
    }
}

/// One action for the region leader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpStep {
    /// Add a learner (the store receives a snapshot). Done when the peer is
    /// there and no longer pending.
    AddLearner {
        /// Store that receives the new peer.
        store_id: u64,
        /// New peer id (from PD's allocator).
        peer_id: u64,
    },
    /// Promote a learner to voter. With `demote`, a joint-consensus change
    /// that promotes `peer_id` and demotes `demote` to learner at once, then
    /// leaves the joint state automatically (Raft thesis §4.3: joint
    /// consensus keeps both majorities during the swap). Done when `peer_id`
    /// votes, `demote` (if any) does not, and the region is not joint.
    PromoteLearner {
        /// Learner to promote.
        peer_id: u64,
        /// Voter to demote in the same change.
        demote: Option<u64>,
    },
    /// Remove a peer. Done when it is gone.
    RemovePeer {
        /// Peer to remove.
        peer_id: u64,
        /// Store that holds it (the leader needs it for the conf change).
        store_id: u64,
    },
    /// Move leadership. Done when the leader is on `to_store`.
    TransferLeader {
        /// Store the leader is expected on.
        from_store: u64,
        /// Store that should lead.
        to_store: u64,
    },
    /// Leave a joint configuration. Done when the region is not joint.
    LeaveJoint,
    /// Split at `keys` (empty: the store picks the middle). Done when the
    /// region's epoch version grew.
    SplitRegion {
        /// Split keys, sorted, strictly inside the region.
        keys: Vec<Vec<u8>>,
    },
}

impl OpStep {
    /// Most `conf_ver` bumps this step can cause on a region of `peers`
    /// peers. Entering a joint state bumps once per change and leaving it
    /// once per peer changing role (as TiKV does), hence 4 for promote+demote.
    fn max_conf_ver_delta(&self, peers: usize) -> u64 {
        match self {
            OpStep::AddLearner { .. } | OpStep::RemovePeer { .. } => 1,
            OpStep::PromoteLearner { demote: None, .. } => 1,
            OpStep::PromoteLearner {
                demote: Some(_), ..
            } => 4,
            OpStep::LeaveJoint => peers as u64,
            OpStep::TransferLeader { .. } | OpStep::SplitRegion { .. } => 0,
        }
    }
}

impl fmt::Display for OpStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpStep::AddLearner { store_id, peer_id } => {
                write!(f, "add learner {peer_id} on store {store_id}")
            }
            OpStep::PromoteLearner {
                peer_id,
                demote: None,
            } => write!(f, "promote {peer_id}"),
            OpStep::PromoteLearner {
                peer_id,
                demote: Some(d),
            } => {
                write!(f, "promote {peer_id}, demote {d}")
            }
            OpStep::RemovePeer { peer_id, store_id } => {
                write!(f, "remove peer {peer_id} on store {store_id}")
            }
            OpStep::TransferLeader {
                from_store,
                to_store,
            } => {
                write!(
                    f,
                    "transfer leader from store {from_store} to store {to_store}"
                )
            }
            OpStep::LeaveJoint => write!(f, "leave joint state"),
            OpStep::SplitRegion { keys } => write!(f, "split at {} key(s)", keys.len()),
        }
    }
}

/// Where an operator is in its life.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpStatus {
    /// Steps remain.
    Running,
    /// Every step happened.
    Finished,
    /// Given up; the reason says why (region changed under it, removed, API).
    Cancelled(String),
    /// Ran longer than its kind's timeout.
    TimedOut,
    /// A higher-priority operator took the region.
    Replaced,
}

/// A plan for one region, created against one epoch of it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Operator {
    /// Assigned by the controller when accepted (0 before), unique per PD
    /// leader term; for the API and logs only.
    pub id: u64,
    /// Region it acts on.
    pub region_id: u64,
    /// The region's epoch when the operator was built.
    pub region_epoch: Epoch,
    /// Kind (limit bucket, timeout, priority).
    pub kind: OpKind,
    /// Who made it and why, e.g. `"balance-leader"`, `"replace-down-peer"`.
    pub desc: String,
    /// The plan.
    pub steps: Vec<OpStep>,
    /// Index of the first step not yet seen done.
    /// Invariant: `current <= steps.len()`.
    pub current: usize,
    /// PD clock when accepted by the controller.
    pub created_ms: u64,
    /// Lifetime: the default config's for the kind until the controller
    /// sets it from the live config on acceptance.
    pub timeout_ms: u64,
    /// PD clock when it stopped running.
    pub ended_ms: Option<u64>,
    /// Life-cycle state.
    pub status: OpStatus,
}

/// How one step stands against a region heartbeat.
enum Progress {
    Done,
    Waiting,
    Impossible(&'static str),
}

impl Operator {
    /// An operator with these steps, built against `region` as it is now.
    pub fn new(
        region: &RegionView,
        kind: OpKind,
        desc: impl Into<String>,
        steps: Vec<OpStep>,
    ) -> Operator {
        Operator {
            id: 0,
            region_id: region.id,
            region_epoch: region.epoch,
            kind,
            desc: desc.into(),
            steps,
            current: 0,
            created_ms: 0,
            timeout_ms: default_timeout_ms(kind),
            ended_ms: None,
            status: OpStatus::Running,
        }
    }

    /// Whether it still runs.
    pub fn is_running(&self) -> bool {
        self.status == OpStatus::Running
    }

    /// The steps not yet seen done.
    pub fn remaining_steps(&self) -> &[OpStep] {
        &self.steps[self.current.min(self.steps.len())..]
    }

    /// Whether a step splits the region (then a version bump is expected).
    fn splits(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s, OpStep::SplitRegion { .. }))
    }

    /// Looks at a heartbeat of the region: advances past the steps it shows
    /// done, finishes, cancels if the region changed in a way this operator
    /// does not explain, or times out. Returns the command to (re)send to
    /// the leader while running. A heartbeat older than the operator (lower
    /// epoch) changes nothing.
    pub fn check(&mut self, region: &RegionView, now_ms: u64) -> Option<OpStep> {
        if !self.is_running() || region.id != self.region_id || self.is_stale(region) {
            return None;
        }
        while let Some(step) = self.steps.get(self.current) {
            match self.progress(step, region) {
                Progress::Done => self.current += 1,
                Progress::Waiting => break,
                Progress::Impossible(why) => {
                    self.end(OpStatus::Cancelled(why.into()), now_ms);
                    return None;
                }
            }
        }
        if self.current >= self.steps.len() {
            self.end(OpStatus::Finished, now_ms);
            return None;
        }
        if let Some(why) = self.unexplained_epoch_change(region) {
            self.end(OpStatus::Cancelled(why.into()), now_ms);
            return None;
        }
        if self.check_timeout(now_ms) {
            return None;
        }
        let step = self.steps.get(self.current)?;
        Some(command_for(step, region))
    }

    /// Times the operator out if it outlived its timeout; true if it did.
    pub fn check_timeout(&mut self, now_ms: u64) -> bool {
        if self.is_running() && now_ms.saturating_sub(self.created_ms) >= self.timeout_ms {
            self.end(OpStatus::TimedOut, now_ms);
            return true;
        }
        false
    }

    /// Stops the operator with `status` (no-op if it already stopped).
    pub fn end(&mut self, status: OpStatus, now_ms: u64) {
        if self.is_running() {
            self.status = status;
            self.ended_ms = Some(now_ms);
        }
    }

    fn is_stale(&self, region: &RegionView) -> bool {
        region.epoch.version < self.region_epoch.version
            || region.epoch.conf_ver < self.region_epoch.conf_ver
    }

    fn progress(&self, step: &OpStep, region: &RegionView) -> Progress {
        match step {
            OpStep::AddLearner { store_id, peer_id } => add_progress(region, *store_id, *peer_id),
            OpStep::PromoteLearner { peer_id, demote } => {
                promote_progress(region, *peer_id, *demote)
            }
            OpStep::RemovePeer { peer_id, .. } => match region.peer(*peer_id) {
                None => Progress::Done,
                Some(_) => Progress::Waiting,
            },
            OpStep::TransferLeader { to_store, .. } => {
                if region.leader_store() == Some(*to_store) {
                    Progress::Done
                } else if region.peer_on_store(*to_store).map(|p| p.role) != Some(PeerRole::Voter) {
                    Progress::Impossible("transfer target holds no voter")
                } else {
                    Progress::Waiting
                }
            }
            OpStep::LeaveJoint if region.is_joint() => Progress::Waiting,
            OpStep::LeaveJoint => Progress::Done,
            OpStep::SplitRegion { .. } if region.epoch.version > self.region_epoch.version => {
                Progress::Done
            }
            OpStep::SplitRegion { .. } => Progress::Waiting,
        }
    }

    /// A reason to cancel if the epoch moved further than the steps up to
    /// and including the current one (which may be half done) explain.
    fn unexplained_epoch_change(&self, region: &RegionView) -> Option<&'static str> {
        if !self.splits() && region.epoch.version != self.region_epoch.version {
            return Some("region split or merged");
        }
        let explained: u64 = self.steps[..=self.current.min(self.steps.len() - 1)]
            .iter()
            .map(|s| s.max_conf_ver_delta(region.peers.len()))
            .sum();
        if region.epoch.conf_ver > self.region_epoch.conf_ver + explained {
            return Some("membership changed by someone else");
        }
        None
    }
}

fn default_timeout_ms(kind: OpKind) -> u64 {
    let timeout = ScheduleConfig::default().operator_timeout(kind);
    u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX)
}

fn add_progress(region: &RegionView, store_id: u64, peer_id: u64) -> Progress {
    match region.peer(peer_id) {
        Some(p) if p.store_id != store_id => {
            Progress::Impossible("peer id reused on another store")
        }
        Some(_) if region.is_pending(peer_id) => Progress::Waiting,
        Some(_) => Progress::Done,
        None if region.peer_on_store(store_id).is_some() => {
            Progress::Impossible("store already holds another peer of the region")
        }
        None => Progress::Waiting,
    }
}

fn promote_progress(region: &RegionView, peer_id: u64, demote: Option<u64>) -> Progress {
    let Some(peer) = region.peer(peer_id) else {
        return Progress::Impossible("learner to promote is gone");
    };
    let demoted = demote
        .and_then(|d| region.peer(d))
        .is_none_or(|p| p.role == PeerRole::Learner);
    if peer.role == PeerRole::Voter && demoted && !region.is_joint() {
        Progress::Done
    } else {
        Progress::Waiting
    }
}

/// What to send for `step` given the region now. A store refuses to remove
/// or demote its leader, so if leadership landed on the peer a step takes
/// away, move it first; a region already joint as the step intends only
/// needs to leave.
fn command_for(step: &OpStep, region: &RegionView) -> OpStep {
    match step {
        OpStep::PromoteLearner {
            peer_id,
            demote: Some(d),
        } => {
            let incoming = region.peer(*peer_id).map(|p| p.role) == Some(PeerRole::IncomingVoter);
            if incoming && region.is_joint() {
                return OpStep::LeaveJoint;
            }
            leader_safe(step, region, *d, &[*d, *peer_id])
        }
        OpStep::RemovePeer { peer_id, .. } => leader_safe(step, region, *peer_id, &[*peer_id]),
        other => other.clone(),
    }
}

fn leader_safe(step: &OpStep, region: &RegionView, taken: u64, exclude: &[u64]) -> OpStep {
    if region.leader != Some(taken) {
        return step.clone();
    }
    let from = region.leader_store().unwrap_or(0);
    match builder::transfer_target(region, exclude) {
        Some(to_store) => OpStep::TransferLeader {
            from_store: from,
            to_store,
        },
        None => step.clone(),
    }
}
