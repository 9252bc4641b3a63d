//! A read-only summary of a peer, for hosts, tests and operators.

use std::collections::BTreeMap;
use std::fmt;

use crate::raft::Raft;
use crate::storage::Storage;
use crate::tracker::Progress;
use crate::types::{ConfState, HardState, SoftState};

/// A snapshot of one peer's state.
#[derive(Clone, Debug)]
pub struct Status {
    /// The peer's ID.
    pub id: u64,
    /// Term, vote, commit.
    pub hard_state: HardState,
    /// Role and leader.
    pub soft_state: SoftState,
    /// The last index the host reported applied.
    pub applied: u64,
    /// The last index persisted.
    pub persisted: u64,
    /// The last index in the log.
    pub last_index: u64,
    /// The membership.
    pub conf_state: ConfState,
    /// On the leader: every peer's progress.
    pub progress: Option<BTreeMap<u64, Progress>>,
    /// On the leader: the transfer target, if any.
    pub lead_transferee: Option<u64>,
    /// Whether the timers are stopped.
    pub hibernating: bool,
}

impl Status {
    pub(crate) fn new<S: Storage>(r: &Raft<S>) -> Status {
        let leader = r.state == crate::StateRole::Leader;
        Status {
            id: r.id,
            hard_state: r.hard_state(),
            soft_state: r.soft_state(),
            applied: r.raft_log.applied,
            persisted: r.raft_log.persisted,
            last_index: r.raft_log.last_index(),
            conf_state: r.prs.config.to_conf_state(),
            progress: leader.then(|| r.prs.progress.clone()),
            lead_transferee: (leader && r.lead_transferee != crate::NO_PEER)
                .then_some(r.lead_transferee),
            hibernating: r.is_hibernating(),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} {} applied={} last={} {}",
            self.id,
            self.soft_state,
            self.hard_state,
            self.applied,
            self.last_index,
            self.conf_state
        )?;
        if let Some(t) = self.lead_transferee {
            write!(f, " transferring-to={t}")?;
        }
        if self.hibernating {
            f.write_str(" hibernating")?;
        }
        if let Some(progress) = &self.progress {
            for (id, pr) in progress {
                write!(f, "\n  {id}: {pr}")?;
            }
        }
        Ok(())
    }
}
