//! Membership transitions: simple changes of one voter, and joint consensus
//! (thesis §4.3) for anything larger.
//!
//! Each function takes the current configuration and progress and returns
//! the new ones, or an error if the change is invalid; nothing is modified
//! in place, so a refused change leaves no trace.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::tracker::{Progress, ProgressTracker, TrackerConfig};
use crate::types::{ConfChange, ConfChangeSingle, ConfChangeType, ConfState};

/// A new configuration and the progress map that goes with it.
pub(crate) type Changed = (TrackerConfig, BTreeMap<u64, Progress>);

/// Applies a configuration change entry's content to `tracker`'s state.
pub(crate) fn apply(tracker: &ProgressTracker, next_idx: u64, cc: &ConfChange) -> Result<Changed> {
    let changer = Changer { tracker, next_idx };
    if cc.is_leave_joint() {
        return changer.leave_joint();
    }
    match cc.enters_joint() {
        Some(auto_leave) => changer.enter_joint(auto_leave, &cc.changes),
        None => changer.simple(&cc.changes),
    }
}

/// The membership `cs` becomes under `cc`, or why `cc` does not fit it —
/// exactly what [`RawNode::apply_conf_change`](crate::RawNode::apply_conf_change)
/// would decide, for a host that must know the outcome before handing the
/// entry to the node (say, to persist the new membership in the same write
/// as the entry's apply state).
pub fn conf_state_after(cs: &ConfState, cc: &ConfChange) -> Result<ConfState> {
    let mut tracker = ProgressTracker::new(1);
    tracker.restore(cs, 1);
    let (config, _) = apply(&tracker, 1, cc)?;
    Ok(config.to_conf_state())
}

struct Changer<'a> {
    tracker: &'a ProgressTracker,
    /// Where new peers start probing.
    next_idx: u64,
}

fn invalid(why: impl Into<String>) -> Error {
    Error::InvalidConfChange(why.into())
}

impl Changer<'_> {
    fn snapshot(&self) -> Changed {
        (self.tracker.config.clone(), self.tracker.progress.clone())
    }

    /// Enters a joint configuration: the current voters become the outgoing
    /// half, and `changes` apply to the incoming half.
    fn enter_joint(&self, auto_leave: bool, changes: &[ConfChangeSingle]) -> Result<Changed> {
        let (mut cfg, mut prs) = self.snapshot();
        if cfg.voters.is_joint() {
            return Err(invalid("already in a joint configuration"));
        }
        if cfg.voters.incoming.is_empty() {
            return Err(invalid("cannot make a zero-voter configuration joint"));
        }
        cfg.voters.outgoing = cfg.voters.incoming.clone();
        self.apply_changes(&mut cfg, &mut prs, changes)?;
        cfg.auto_leave = auto_leave;
        check_invariants(&cfg, &prs)?;
        Ok((cfg, prs))
    }

    /// Leaves a joint configuration: the outgoing half is dropped, demoted
    /// voters become learners, and peers in neither half are forgotten.
    fn leave_joint(&self) -> Result<Changed> {
        let (mut cfg, mut prs) = self.snapshot();
        if !cfg.voters.is_joint() {
            return Err(invalid("not in a joint configuration"));
        }
        for id in std::mem::take(&mut cfg.learners_next) {
            cfg.learners.insert(id);
            if let Some(pr) = prs.get_mut(&id) {
                pr.is_learner = true;
            }
        }
        let outgoing = std::mem::take(cfg.voters.outgoing.ids_mut());
        for id in outgoing {
            if !cfg.voters.incoming.contains(id) && !cfg.learners.contains(&id) {
                prs.remove(&id);
            }
        }
        cfg.auto_leave = false;
        check_invariants(&cfg, &prs)?;
        Ok((cfg, prs))
    }

    /// Applies changes that alter at most one voter, outside joint
    /// consensus: any two majorities of the old and new sets then overlap.
    fn simple(&self, changes: &[ConfChangeSingle]) -> Result<Changed> {
        let (mut cfg, mut prs) = self.snapshot();
        if cfg.voters.is_joint() {
            return Err(invalid(
                "cannot apply a simple change in a joint configuration",
            ));
        }
        self.apply_changes(&mut cfg, &mut prs, changes)?;
        let old = self.tracker.config.voters.incoming.ids();
        let new = cfg.voters.incoming.ids();
        if old.symmetric_difference(new).count() > 1 {
            return Err(invalid(
                "more than one voter changed without joint consensus",
            ));
        }
        check_invariants(&cfg, &prs)?;
        Ok((cfg, prs))
    }

    fn apply_changes(
        &self,
        cfg: &mut TrackerConfig,
        prs: &mut BTreeMap<u64, Progress>,
        changes: &[ConfChangeSingle],
    ) -> Result<()> {
        for cc in changes {
            if cc.node_id == crate::NO_PEER {
                return Err(invalid("peer id 0"));
            }
            match cc.change_type {
                ConfChangeType::AddNode => self.make_voter(cfg, prs, cc.node_id),
                ConfChangeType::AddLearnerNode => self.make_learner(cfg, prs, cc.node_id),
                ConfChangeType::RemoveNode => remove(cfg, prs, cc.node_id),
            }
        }
        if cfg.voters.incoming.is_empty() {
            return Err(invalid("removed all voters"));
        }
        Ok(())
    }

    fn init_progress(&self, prs: &mut BTreeMap<u64, Progress>, id: u64, is_learner: bool) {
        let pr = prs.entry(id).or_insert_with(|| {
            let mut pr = Progress::new(self.next_idx, self.tracker.max_inflight());
            // A new peer counts as active, so Check-Quorum does not depose
            // the leader before the peer had a chance to answer.
            pr.recent_active = true;
            pr
        });
        pr.is_learner = is_learner;
    }

    fn make_voter(&self, cfg: &mut TrackerConfig, prs: &mut BTreeMap<u64, Progress>, id: u64) {
        cfg.learners.remove(&id);
        cfg.learners_next.remove(&id);
        cfg.voters.incoming.ids_mut().insert(id);
        self.init_progress(prs, id, false);
    }

    fn make_learner(&self, cfg: &mut TrackerConfig, prs: &mut BTreeMap<u64, Progress>, id: u64) {
        if cfg.learners.contains(&id) {
            return;
        }
        cfg.voters.incoming.ids_mut().remove(&id);
        cfg.learners_next.remove(&id);
        if cfg.voters.outgoing.contains(id) {
            // Still votes in the outgoing half: a learner once that half goes.
            cfg.learners_next.insert(id);
            self.init_progress(prs, id, false);
        } else {
            cfg.learners.insert(id);
            self.init_progress(prs, id, true);
        }
    }
}

fn remove(cfg: &mut TrackerConfig, prs: &mut BTreeMap<u64, Progress>, id: u64) {
    cfg.voters.incoming.ids_mut().remove(&id);
    cfg.learners.remove(&id);
    cfg.learners_next.remove(&id);
    if !cfg.voters.outgoing.contains(id) {
        prs.remove(&id);
    }
}

fn check_invariants(cfg: &TrackerConfig, prs: &BTreeMap<u64, Progress>) -> Result<()> {
    for id in cfg.all_ids() {
        if !prs.contains_key(&id) {
            return Err(invalid(format!("no progress for peer {id}")));
        }
    }
    for id in &cfg.learners_next {
        if !cfg.voters.outgoing.contains(*id) || cfg.voters.incoming.contains(*id) {
            return Err(invalid(format!(
                "learner-next {id} must be an outgoing-only voter"
            )));
        }
    }
    for id in &cfg.learners {
        if cfg.voters.contains(*id) {
            return Err(invalid(format!("peer {id} is both learner and voter")));
        }
    }
    if !cfg.voters.is_joint() && (!cfg.learners_next.is_empty() || cfg.auto_leave) {
        return Err(invalid(
            "learners-next or auto-leave outside a joint configuration",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ConfState;
    use ConfChangeType::*;

    fn tracker(cs: ConfState) -> ProgressTracker {
        let mut t = ProgressTracker::new(8);
        t.restore(&cs, 1);
        t
    }

    fn cc(changes: &[(ConfChangeType, u64)]) -> ConfChange {
        ConfChange::new(changes.iter().map(|&(t, id)| ConfChangeSingle::new(t, id)))
    }

    fn conf(t: &ProgressTracker, change: &ConfChange) -> Result<ConfState> {
        apply(t, 1, change).map(|(cfg, _)| cfg.to_conf_state())
    }

    #[test]
    fn simple_change_of_one_voter() {
        let t = tracker(ConfState::with_voters([1, 2, 3]));
        assert_eq!(
            conf(&t, &cc(&[(AddNode, 4)])).unwrap().voters,
            vec![1, 2, 3, 4]
        );
        assert_eq!(
            conf(&t, &cc(&[(RemoveNode, 3)])).unwrap().voters,
            vec![1, 2]
        );
        // Several changes with the Auto transition go through joint consensus.
        let joint = conf(&t, &cc(&[(RemoveNode, 3), (AddNode, 4), (AddNode, 5)])).unwrap();
        assert_eq!(
            (joint.voters, joint.voters_outgoing),
            (vec![1, 2, 4, 5], vec![1, 2, 3])
        );
    }

    #[test]
    fn replacing_a_voter_goes_through_joint() {
        let t = tracker(ConfState::with_voters([1, 2, 3]));
        let (cfg, prs) = apply(&t, 1, &cc(&[(AddNode, 4), (RemoveNode, 3)])).unwrap();
        let cs = cfg.to_conf_state();
        assert_eq!(cs.voters, vec![1, 2, 4]);
        assert_eq!(cs.voters_outgoing, vec![1, 2, 3]);
        assert!(cs.auto_leave);
        assert!(prs.contains_key(&3), "outgoing voter keeps its progress");
        let mut t2 = t.clone();
        t2.apply(cfg, prs);
        let (cfg, prs) = apply(&t2, 1, &ConfChange::leave_joint()).unwrap();
        assert_eq!(cfg.to_conf_state(), ConfState::with_voters([1, 2, 4]));
        assert!(!prs.contains_key(&3));
    }

    #[test]
    fn demoting_a_voter_in_joint_goes_through_learners_next() {
        let t = tracker(ConfState::with_voters([1, 2, 3]));
        let (cfg, prs) = apply(&t, 1, &cc(&[(AddLearnerNode, 3), (AddNode, 4)])).unwrap();
        assert_eq!(cfg.to_conf_state().learners_next, vec![3]);
        let mut t2 = t.clone();
        t2.apply(cfg, prs);
        let (cfg, prs) = apply(&t2, 1, &ConfChange::leave_joint()).unwrap();
        assert_eq!(cfg.to_conf_state().learners, vec![3]);
        assert!(prs[&3].is_learner);
    }

    #[test]
    fn invalid_transitions_are_refused() {
        let t = tracker(ConfState::with_voters([1]));
        assert!(
            conf(&t, &ConfChange::leave_joint()).is_err(),
            "leave while not joint"
        );
        assert!(
            conf(&t, &cc(&[(RemoveNode, 1)])).is_err(),
            "remove the last voter"
        );
        assert!(conf(&t, &cc(&[(AddNode, 0)])).is_err(), "peer id 0");
        let (cfg, prs) = apply(&t, 1, &cc(&[(AddNode, 2), (AddNode, 3)])).unwrap();
        let mut t2 = t.clone();
        t2.apply(cfg, prs);
        assert!(
            conf(&t2, &cc(&[(AddNode, 4), (AddNode, 5)])).is_err(),
            "enter joint twice"
        );
        assert!(
            conf(&t2, &cc(&[(AddNode, 4)])).is_err(),
            "simple change while joint"
        );
    }
}
