//! What the leader tracks about the group: the membership configuration,
//! each peer's [`Progress`], and the votes of an election.

mod inflights;
mod progress;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

pub use inflights::Inflights;
pub use progress::{Progress, ProgressState};

use crate::quorum::{JointConfig, VoteResult};
use crate::types::ConfState;

/// A membership configuration in tracker form.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrackerConfig {
    /// The voters, possibly joint.
    pub voters: JointConfig,
    /// Learners. Invariant: disjoint from both halves of `voters`.
    pub learners: BTreeSet<u64>,
    /// Outgoing voters that become learners when the joint configuration is
    /// left. Invariant: each is an outgoing voter and not an incoming one.
    pub learners_next: BTreeSet<u64>,
    /// Leave the joint configuration automatically.
    pub auto_leave: bool,
}

impl TrackerConfig {
    /// The configuration described by `cs`.
    pub fn from_conf_state(cs: &ConfState) -> TrackerConfig {
        let mut cfg = TrackerConfig::default();
        cfg.voters
            .incoming
            .ids_mut()
            .extend(cs.voters.iter().copied());
        cfg.voters
            .outgoing
            .ids_mut()
            .extend(cs.voters_outgoing.iter().copied());
        cfg.learners.extend(cs.learners.iter().copied());
        cfg.learners_next.extend(cs.learners_next.iter().copied());
        cfg.auto_leave = cs.auto_leave;
        cfg
    }

    /// The configuration as a [`ConfState`].
    pub fn to_conf_state(&self) -> ConfState {
        ConfState {
            voters: self.voters.incoming.ids().iter().copied().collect(),
            learners: self.learners.iter().copied().collect(),
            voters_outgoing: self.voters.outgoing.ids().iter().copied().collect(),
            learners_next: self.learners_next.iter().copied().collect(),
            auto_leave: self.auto_leave,
        }
    }

    /// Every peer the configuration names.
    pub fn all_ids(&self) -> BTreeSet<u64> {
        let mut ids = self.voters.ids();
        ids.extend(&self.learners);
        ids.extend(&self.learners_next);
        ids
    }
}

impl fmt::Display for TrackerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_conf_state().fmt(f)
    }
}

/// The configuration, the progress of every peer it names, and votes.
#[derive(Clone, Debug)]
pub struct ProgressTracker {
    /// The current configuration.
    pub config: TrackerConfig,
    /// One entry per peer of the configuration (voters and learners).
    pub progress: BTreeMap<u64, Progress>,
    votes: BTreeMap<u64, bool>,
    max_inflight: usize,
}

impl ProgressTracker {
    /// A tracker with no members.
    pub fn new(max_inflight: usize) -> ProgressTracker {
        ProgressTracker {
            config: TrackerConfig::default(),
            progress: BTreeMap::new(),
            votes: BTreeMap::new(),
            max_inflight,
        }
    }

    /// Replaces configuration and progress (after a conf change or restore).
    pub(crate) fn apply(&mut self, config: TrackerConfig, progress: BTreeMap<u64, Progress>) {
        self.config = config;
        self.progress = progress;
    }

    /// Progress for every peer of `cs`, probing from `next_idx`.
    pub(crate) fn restore(&mut self, cs: &ConfState, next_idx: u64) {
        let config = TrackerConfig::from_conf_state(cs);
        let mut progress = BTreeMap::new();
        for id in config.all_ids() {
            let mut pr = Progress::new(next_idx, self.max_inflight);
            pr.is_learner = config.learners.contains(&id) || config.learners_next.contains(&id);
            progress.insert(id, pr);
        }
        self.apply(config, progress);
        self.votes.clear();
    }

    /// The inflight window used for new peers.
    pub fn max_inflight(&self) -> usize {
        self.max_inflight
    }

    /// The largest index a quorum of voters has matched.
    pub fn committed_index(&self) -> u64 {
        let progress = &self.progress;
        self.config
            .voters
            .committed_index(|id| progress.get(&id).map_or(0, |p| p.matched))
    }

    /// The largest heartbeat round a quorum of voters has acknowledged,
    /// counting `self_id` as having acknowledged `self_round`.
    pub fn quorum_acked_round(&self, self_id: u64, self_round: u64) -> u64 {
        let progress = &self.progress;
        self.config.voters.committed_index(|id| {
            if id == self_id {
                self_round
            } else {
                progress.get(&id).map_or(0, |p| p.acked_round)
            }
        })
    }

    /// Whether a quorum of voters has been heard from recently (`self_id`
    /// always counts).
    pub fn quorum_active(&self, self_id: u64) -> bool {
        let progress = &self.progress;
        let result = self.config.voters.vote_result(|id| {
            Some(id == self_id || progress.get(&id).is_some_and(|p| p.recent_active))
        });
        result == VoteResult::Won
    }

    /// Whether `id` may vote and campaign.
    pub fn is_voter(&self, id: u64) -> bool {
        self.config.voters.contains(id)
    }

    /// Whether one voter decides alone.
    pub fn is_singleton(&self) -> bool {
        self.config.voters.is_singleton()
    }

    /// Forgets the votes of a previous election.
    pub(crate) fn reset_votes(&mut self) {
        self.votes.clear();
    }

    /// Records `id`'s vote (the first one counts).
    pub(crate) fn record_vote(&mut self, id: u64, granted: bool) {
        self.votes.entry(id).or_insert(granted);
    }

    /// Counts the recorded votes.
    pub fn tally_votes(&self) -> VoteResult {
        self.config
            .voters
            .vote_result(|id| self.votes.get(&id).copied())
    }
}
