//! Checkers: look at one region and propose the operator that repairs it.
//!
//! Unlike schedulers, which compare stores, a checker only asks "is this
//! region as it should be?": in a stable configuration, with no stray
//! learners, `max-replicas` voters, none on a lost or decommissioned store,
//! spread over failure domains as well as the stores allow. The server
//! calls [`Patrol::run`] periodically to sweep all regions in bounded
//! batches, and may call [`check_region`] directly for a region whose
//! heartbeat looked wrong.

mod joint;
mod replica;

use super::context::ScheduleContext;
use super::controller::OperatorController;
use super::operator::{OpKind, Operator};
use super::view::{ClusterView, RegionView};
use super::{IdSource, ScheduleConfig};

/// A checker's verdict on a region.
enum Verdict {
    /// Repair with this operator.
    Act(Operator),
    /// Something is in motion (a learner catching up): leave the region be.
    Hold,
    /// Nothing for this checker; ask the next one.
    Next,
}

/// Runs the checkers in priority order: leave a joint state, settle stray
/// learners, then fix the replica set. Needs a leader to send steps to.
/// May take a peer id from `ids`; returns `None` when all is well, when the
/// repair must wait, or when `ids` is exhausted.
pub fn check_region(
    ctx: &ScheduleContext<'_>,
    region: &RegionView,
    ids: &mut dyn IdSource,
) -> Option<Operator> {
    region.leader_peer()?;
    for checker in [joint::check_joint, joint::check_learners] {
        match checker(ctx, region) {
            Verdict::Act(op) => return Some(op),
            Verdict::Hold => return None,
            Verdict::Next => {}
        }
    }
    replica::check(ctx, region, ids)
}

/// What one [`Patrol::run`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PatrolReport {
    /// Regions looked at.
    pub checked: u64,
    /// Operators proposed by the checkers.
    pub proposed: u64,
    /// Operators the controller admitted.
    pub admitted: u64,
}

/// A cursor sweeping all regions in id order, a batch at a time, so one
/// pass over 100,000 regions never blocks the heartbeat path for long.
#[derive(Clone, Debug, Default)]
pub struct Patrol {
    /// First region id the next batch looks at.
    cursor: u64,
}

impl Patrol {
    /// A patrol starting at the lowest region id.
    pub fn new() -> Patrol {
        Patrol::default()
    }

    /// Checks up to `batch` regions from the cursor on (wrapping around),
    /// handing the operators to `controller`. Regions with an operator are
    /// skipped unless one of their stores is lost: repairing a lost replica
    /// outranks finishing a balance move.
    pub fn run(
        &mut self,
        view: &ClusterView,
        cfg: &ScheduleConfig,
        controller: &mut OperatorController,
        ids: &mut dyn IdSource,
        now_ms: u64,
        batch: usize,
    ) -> PatrolReport {
        let mut report = PatrolReport::default();
        let mut ctx = ScheduleContext::new(view, cfg, controller, now_ms);
        let after = view.regions.range(self.cursor..);
        let before = view.regions.range(..self.cursor);
        for (&id, region) in after.chain(before).take(batch) {
            if ctx.room(OpKind::Replica) == 0 {
                break;
            }
            self.cursor = id.saturating_add(1);
            report.checked += 1;
            if ctx.busy_kind(id).is_some() && !has_lost_peer(view, region) {
                continue;
            }
            if !ctx.region_free_for(id, OpKind::Replica) {
                continue;
            }
            let Some(op) = check_region(&ctx, region, ids) else {
                continue;
            };
            report.proposed += 1;
            if controller.add(op, view, cfg, now_ms).is_ok() {
                report.admitted += 1;
                if let Some(op) = controller.get(id) {
                    ctx.claim(op);
                }
            }
        }
        report
    }
}

fn has_lost_peer(view: &ClusterView, region: &RegionView) -> bool {
    region
        .peers
        .iter()
        .any(|p| view.store_state(p.store_id).is_lost())
}
