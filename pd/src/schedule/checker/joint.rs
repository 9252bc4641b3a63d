//! Joint-state and learner checker.
//!
//! A region is joint or holds a learner only while an operator moves it.
//! If the operator is gone (cancelled, timed out, replaced, or PD's leader
//! changed and the new one has no memory of it), the region is left
//! half-way: PD must finish or undo the change itself, as PD's
//! `JointStateChecker` and learner handling do. Flotilla has no placement
//! rules that ask for learners, so every learner without an operator is
//! stray.

use super::Verdict;
use crate::schedule::context::ScheduleContext;
use crate::schedule::operator::{OpKind, OpStep, Operator};
use crate::schedule::view::{PeerRole, RegionView, StoreState};

/// A joint region without an operator only needs to leave the joint state.
pub(super) fn check_joint(_ctx: &ScheduleContext<'_>, region: &RegionView) -> Verdict {
    if region.is_joint() {
        Verdict::Act(Operator::leave_joint(
            region,
            OpKind::Replica,
            "leave-joint-state",
        ))
    } else {
        Verdict::Next
    }
}

/// A stray learner on a healthy store is put to use if the region needs
/// it (it already holds the data): promoted if voters are missing, swapped
/// in for a voter on a lost or decommissioned store otherwise, and waited
/// for while it still catches up. Any other stray learner is removed.
/// One learner per pass: the next pass sees the region after this repair.
pub(super) fn check_learners(ctx: &ScheduleContext<'_>, region: &RegionView) -> Verdict {
    let Some(learner) = region.peers.iter().find(|p| p.role == PeerRole::Learner) else {
        return Verdict::Next;
    };
    let lacks_voters = region.voters().count() < ctx.cfg.max_replicas;
    let replaceable = region.voters().find(|v| {
        let state = ctx.view.store_state(v.store_id);
        state.is_lost() || state == StoreState::Offline
    });
    let healthy =
        ctx.view.store_state(learner.store_id) == StoreState::Up && !region.is_down(learner.id);
    if !healthy || !(lacks_voters || replaceable.is_some()) {
        let desc = "remove-stray-learner";
        return match Operator::remove_peer(region, learner.store_id, OpKind::Replica, desc) {
            Ok(op) => Verdict::Act(op),
            Err(_) => Verdict::Hold,
        };
    }
    if region.is_pending(learner.id) {
        return Verdict::Hold;
    }
    let demote = if lacks_voters { None } else { replaceable };
    let mut steps = vec![OpStep::PromoteLearner {
        peer_id: learner.id,
        demote: demote.map(|v| v.id),
    }];
    if let Some(v) = demote {
        steps.push(OpStep::RemovePeer {
            peer_id: v.id,
            store_id: v.store_id,
        });
    }
    Verdict::Act(Operator::new(
        region,
        OpKind::Replica,
        "promote-stray-learner",
        steps,
    ))
}
