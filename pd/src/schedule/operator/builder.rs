//! Constructors for the common operator shapes.
//!
//! They read only the region, so they cannot know store health beyond what
//! the leader reports (`down_peers`, `pending_peers`); callers pick stores.

use super::{OpKind, OpStep, Operator};
use crate::schedule::view::{PeerRole, RegionView};

/// Why an operator could not be built for a region as it is. The caller
/// picks other stores or waits for the region to change.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The region has no known leader to send steps to.
    #[error("region has no leader")]
    NoLeader,
    /// Membership changes need a stable configuration; leave joint first.
    #[error("region is in a joint state")]
    Joint,
    /// The target store already holds a replica of the region.
    #[error("store {0} already holds a replica")]
    StoreHasPeer(u64),
    /// The source store holds no replica of the region.
    #[error("store {0} holds no replica")]
    NoPeerOnStore(u64),
    /// Leadership can only go to a voter.
    #[error("the replica on store {0} is not a voter")]
    NotAVoter(u64),
    /// Leadership is already on that store.
    #[error("store {0} already leads")]
    AlreadyLeader(u64),
    /// Removing the only voter would lose the region.
    #[error("cannot remove the last voter")]
    LastVoter,
    /// Split keys must be sorted, distinct and strictly inside the region.
    #[error("split keys must be sorted, distinct and strictly inside the region")]
    BadSplitKeys,
}

/// A store to move leadership to: a caught-up, reachable voter whose peer is
/// not in `exclude` (lowest store id, for determinism).
pub(crate) fn transfer_target(region: &RegionView, exclude: &[u64]) -> Option<u64> {
    region
        .peers
        .iter()
        .filter(|p| p.role == PeerRole::Voter && !exclude.contains(&p.id))
        .filter(|p| !region.is_down(p.id) && !region.is_pending(p.id))
        .map(|p| p.store_id)
        .min()
}

fn stable_with_leader(region: &RegionView) -> Result<(), BuildError> {
    if region.is_joint() {
        return Err(BuildError::Joint);
    }
    region.leader_peer().map(|_| ()).ok_or(BuildError::NoLeader)
}

impl Operator {
    /// Moves leadership to the voter on `to_store`.
    pub fn transfer_leader(
        region: &RegionView,
        to_store: u64,
        kind: OpKind,
        desc: &str,
    ) -> Result<Operator, BuildError> {
        let from_store = region.leader_store().ok_or(BuildError::NoLeader)?;
        if from_store == to_store {
            return Err(BuildError::AlreadyLeader(to_store));
        }
        let target = region
            .peer_on_store(to_store)
            .ok_or(BuildError::NoPeerOnStore(to_store))?;
        if target.role != PeerRole::Voter {
            return Err(BuildError::NotAVoter(to_store));
        }
        let steps = vec![OpStep::TransferLeader {
            from_store,
            to_store,
        }];
        Ok(Operator::new(region, kind, desc, steps))
    }

    /// Adds a voter on `store_id`: a learner first (it catches up by
    /// snapshot without counting towards quorum), then promoted.
    pub fn add_peer(
        region: &RegionView,
        store_id: u64,
        peer_id: u64,
        kind: OpKind,
        desc: &str,
    ) -> Result<Operator, BuildError> {
        stable_with_leader(region)?;
        if region.peer_on_store(store_id).is_some() {
            return Err(BuildError::StoreHasPeer(store_id));
        }
        let steps = vec![
            OpStep::AddLearner { store_id, peer_id },
            OpStep::PromoteLearner {
                peer_id,
                demote: None,
            },
        ];
        Ok(Operator::new(region, kind, desc, steps))
    }

    /// Removes the replica on `store_id`, moving leadership off it first.
    pub fn remove_peer(
        region: &RegionView,
        store_id: u64,
        kind: OpKind,
        desc: &str,
    ) -> Result<Operator, BuildError> {
        stable_with_leader(region)?;
        let peer = region
            .peer_on_store(store_id)
            .ok_or(BuildError::NoPeerOnStore(store_id))?;
        let voters = region.voters().count();
        if peer.role == PeerRole::Voter && voters <= 1 {
            return Err(BuildError::LastVoter);
        }
        let mut steps = Vec::with_capacity(2);
        if region.leader == Some(peer.id) {
            let to_store = transfer_target(region, &[peer.id]).ok_or(BuildError::LastVoter)?;
            steps.push(OpStep::TransferLeader {
                from_store: store_id,
                to_store,
            });
        }
        steps.push(OpStep::RemovePeer {
            peer_id: peer.id,
            store_id,
        });
        Ok(Operator::new(region, kind, desc, steps))
    }

    /// Moves the replica on `old_store` to `new_store` (new peer
    /// `new_peer_id`) keeping its role. A voter is swapped in one joint
    /// change so the region never has fewer voters than before; if the old
    /// peer leads, leadership moves to another voter first (a store will not
    /// demote its leader), or, with no other voter, to the new one after a
    /// plain promotion.
    pub fn move_peer(
        region: &RegionView,
        old_store: u64,
        new_store: u64,
        new_peer_id: u64,
        kind: OpKind,
        desc: &str,
    ) -> Result<Operator, BuildError> {
        stable_with_leader(region)?;
        let old = *region
            .peer_on_store(old_store)
            .ok_or(BuildError::NoPeerOnStore(old_store))?;
        if region.peer_on_store(new_store).is_some() {
            return Err(BuildError::StoreHasPeer(new_store));
        }
        let add = OpStep::AddLearner {
            store_id: new_store,
            peer_id: new_peer_id,
        };
        let remove = OpStep::RemovePeer {
            peer_id: old.id,
            store_id: old_store,
        };
        let steps = if old.role != PeerRole::Voter {
            vec![add, remove]
        } else if region.leader != Some(old.id) {
            let swap = OpStep::PromoteLearner {
                peer_id: new_peer_id,
                demote: Some(old.id),
            };
            vec![add, swap, remove]
        } else if let Some(to_store) = transfer_target(region, &[old.id]) {
            let transfer = OpStep::TransferLeader {
                from_store: old_store,
                to_store,
            };
            let swap = OpStep::PromoteLearner {
                peer_id: new_peer_id,
                demote: Some(old.id),
            };
            vec![add, transfer, swap, remove]
        } else {
            let promote = OpStep::PromoteLearner {
                peer_id: new_peer_id,
                demote: None,
            };
            let transfer = OpStep::TransferLeader {
                from_store: old_store,
                to_store: new_store,
            };
            vec![add, promote, transfer, remove]
        };
        Ok(Operator::new(region, kind, desc, steps))
    }

    /// Leaves a joint state the region is stuck in.
    pub fn leave_joint(region: &RegionView, kind: OpKind, desc: &str) -> Operator {
        Operator::new(region, kind, desc, vec![OpStep::LeaveJoint])
    }

    /// Splits the region at `keys` (empty: the store picks the middle).
    pub fn split(
        region: &RegionView,
        keys: Vec<Vec<u8>>,
        kind: OpKind,
        desc: &str,
    ) -> Result<Operator, BuildError> {
        let inside = |k: &Vec<u8>| {
            k.as_slice() > region.start_key.as_slice()
                && (region.end_key.is_empty() || k.as_slice() < region.end_key.as_slice())
        };
        let sorted = keys.windows(2).all(|w| w[0] < w[1]);
        if !sorted || !keys.iter().all(inside) {
            return Err(BuildError::BadSplitKeys);
        }
        Ok(Operator::new(
            region,
            kind,
            desc,
            vec![OpStep::SplitRegion { keys }],
        ))
    }
}
