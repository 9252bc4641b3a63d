//! Membership changes on the apply thread: the region's new peer list and
//! `conf_ver`, written with the entry's apply state, decided exactly as
//! raftcore will decide when the peer hands it the entry
//! ([`raftcore::conf_state_after`]) — so the region's peer list and the
//! Raft configuration never disagree.
//!
//! `conf_ver` grows by one per change when a change is entered, and by one
//! per peer whose role changes when a joint configuration is left (as
//! TiKV counts, and as PD's operators expect).

use std::collections::BTreeSet;

use flotilla_proto::metapb::{self, PeerRole};
use flotilla_proto::raft_cmdpb::ChangePeerContext;
use raftcore::{ConfChange, ConfChangeType, ConfState};

use super::exec::Refusal;
use crate::peer::storage::conf_state_of;
use crate::region_error;

/// The region after `cc`, or why every replica refuses it.
pub fn region_after(
    region: &metapb::Region,
    cc: &ConfChange,
    ctx: Option<&ChangePeerContext>,
) -> Result<metapb::Region, Refusal> {
    let refuse = |why: String| {
        let mut err = region_error::stale_command();
        err.message = format!("membership change of region {} refused: {why}", region.id);
        err
    };
    let epoch = region.region_epoch.unwrap_or_default();
    let mut known: Vec<metapb::Peer> = region.peers.clone();
    if !cc.is_leave_joint() {
        let ctx = ctx.ok_or_else(|| refuse("no context".into()))?;
        let proposed = ctx
            .header
            .as_ref()
            .and_then(|h| h.region_epoch)
            .unwrap_or_default();
        if proposed.conf_ver != epoch.conf_ver {
            return Err(region_error::epoch_not_match(
                Some(&proposed),
                vec![region.clone()],
            ));
        }
        if let Some(c) = cc.changes.iter().find(|c| in_effect(region, c)) {
            // PD resends a step until it sees it done; a repeat must not
            // bump `conf_ver` (PD would take that for someone else's).
            return Err(refuse(format!(
                "{:?} of peer {} is already in effect",
                c.change_type, c.node_id
            )));
        }
        let joint = cc.enters_joint().is_some();
        for change in &cc.changes {
            let current = region.peers.iter().find(|p| p.id == change.node_id);
            let is_voter = current.is_some_and(|p| p.role != PeerRole::Learner as i32);
            if joint && change.change_type == ConfChangeType::RemoveNode && is_voter {
                return Err(refuse(
                    "a voter is removed only outside a joint change".into(),
                ));
            }
        }
        for p in &ctx.peers {
            if !known.iter().any(|k| k.id == p.id) {
                known.push(*p);
            }
        }
    }
    let before = conf_state_of(region);
    let after = raftcore::conf_state_after(&before, cc).map_err(|e| refuse(e.to_string()))?;
    let mut peers = Vec::new();
    for p in &known {
        if let Some(role) = role_in(&after, p.id) {
            if p.store_id == 0 {
                return Err(refuse(format!("peer {} has no store", p.id)));
            }
            peers.push(metapb::Peer {
                role: role as i32,
                ..*p
            });
        }
    }
    let named: BTreeSet<u64> = peers.iter().map(|p| p.id).collect();
    if let Some(unknown) = all_ids(&after).into_iter().find(|id| !named.contains(id)) {
        return Err(refuse(format!("peer {unknown} is not described")));
    }
    let bump = if cc.is_leave_joint() {
        peers
            .iter()
            .filter(|p| {
                region
                    .peers
                    .iter()
                    .any(|o| o.id == p.id && o.role != p.role)
            })
            .count()
            + region
                .peers
                .iter()
                .filter(|o| !named.contains(&o.id))
                .count()
    } else {
        cc.changes.len()
    };
    let mut out = region.clone();
    out.peers = peers;
    out.region_epoch = Some(metapb::RegionEpoch {
        conf_ver: epoch.conf_ver + bump as u64,
        version: epoch.version,
    });
    Ok(out)
}

/// Whether `change` would leave `region`'s membership as it is: adding a
/// voter or learner that already has that role, removing a non-member.
pub fn in_effect(region: &metapb::Region, change: &raftcore::ConfChangeSingle) -> bool {
    let role = region
        .peers
        .iter()
        .find(|p| p.id == change.node_id)
        .map(|p| p.role);
    match change.change_type {
        ConfChangeType::AddNode => role == Some(PeerRole::Voter as i32),
        ConfChangeType::AddLearnerNode => role == Some(PeerRole::Learner as i32),
        ConfChangeType::RemoveNode => role.is_none(),
    }
}

fn all_ids(cs: &ConfState) -> BTreeSet<u64> {
    cs.voters
        .iter()
        .chain(&cs.voters_outgoing)
        .chain(&cs.learners)
        .chain(&cs.learners_next)
        .copied()
        .collect()
}

/// The role `id` has in `cs` (`None`: not a member).
fn role_in(cs: &ConfState, id: u64) -> Option<PeerRole> {
    let incoming = cs.voters.contains(&id);
    let outgoing = cs.voters_outgoing.contains(&id);
    let joint = !cs.voters_outgoing.is_empty();
    match (incoming, outgoing) {
        (true, true) => Some(PeerRole::Voter),
        (true, false) if joint => Some(PeerRole::IncomingVoter),
        (true, false) => Some(PeerRole::Voter),
        (false, true) => Some(PeerRole::DemotingVoter),
        (false, false) if cs.learners.contains(&id) => Some(PeerRole::Learner),
        (false, false) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raftcore::{ConfChangeSingle, ConfChangeTransition};

    fn peer(id: u64, role: PeerRole) -> metapb::Peer {
        metapb::Peer {
            id,
            store_id: id,
            role: role as i32,
        }
    }

    fn region(peers: Vec<metapb::Peer>, conf_ver: u64) -> metapb::Region {
        metapb::Region {
            id: 1,
            peers,
            region_epoch: Some(metapb::RegionEpoch {
                conf_ver,
                version: 1,
            }),
            ..Default::default()
        }
    }

    fn ctx(conf_ver: u64, peers: Vec<metapb::Peer>) -> ChangePeerContext {
        ChangePeerContext {
            header: Some(flotilla_proto::raft_cmdpb::RaftCmdHeader {
                region_epoch: Some(metapb::RegionEpoch {
                    conf_ver,
                    version: 1,
                }),
                ..Default::default()
            }),
            peers,
        }
    }

    fn roles(r: &metapb::Region) -> Vec<(u64, i32)> {
        r.peers.iter().map(|p| (p.id, p.role)).collect()
    }

    #[test]
    fn add_learner_promote_and_remove_bump_conf_ver_once_each() {
        let v = |id| peer(id, PeerRole::Voter);
        let r = region(vec![v(1), v(2), v(3)], 1);
        let add = ConfChange::new([ConfChangeSingle::new(ConfChangeType::AddLearnerNode, 4)]);
        let learner = peer(4, PeerRole::Learner);
        let r = region_after(&r, &add, Some(&ctx(1, vec![learner]))).unwrap();
        assert_eq!(r.region_epoch.unwrap().conf_ver, 2);
        assert_eq!(roles(&r).last(), Some(&(4, PeerRole::Learner as i32)));
        // PD resending the step at the new conf_ver changes nothing.
        let again = region_after(&r, &add, Some(&ctx(2, vec![learner])));
        assert!(again.unwrap_err().message.contains("already in effect"));
        let promote = ConfChange::new([ConfChangeSingle::new(ConfChangeType::AddNode, 4)]);
        let r = region_after(&r, &promote, Some(&ctx(2, vec![v(4)]))).unwrap();
        assert_eq!(roles(&r).last(), Some(&(4, PeerRole::Voter as i32)));
        let remove = ConfChange::new([ConfChangeSingle::new(ConfChangeType::RemoveNode, 1)]);
        let r = region_after(&r, &remove, Some(&ctx(3, vec![v(1)]))).unwrap();
        assert_eq!(
            r.peers.iter().map(|p| p.id).collect::<Vec<_>>(),
            vec![2, 3, 4]
        );
        assert_eq!(r.region_epoch.unwrap().conf_ver, 4);
        // The same change against the old conf_ver is refused.
        let stale = region_after(&r, &remove, Some(&ctx(3, vec![v(2)])));
        assert!(stale.unwrap_err().epoch_not_match.is_some());
    }

    #[test]
    fn a_swap_goes_through_a_joint_configuration() {
        let v = |id| peer(id, PeerRole::Voter);
        let r = region(vec![v(1), v(2), v(3), peer(4, PeerRole::Learner)], 5);
        let swap = ConfChange {
            transition: ConfChangeTransition::Implicit,
            changes: vec![
                ConfChangeSingle::new(ConfChangeType::AddNode, 4),
                ConfChangeSingle::new(ConfChangeType::AddLearnerNode, 3),
            ],
            context: Default::default(),
        };
        let joint = region_after(&r, &swap, Some(&ctx(5, vec![v(4), v(3)]))).unwrap();
        let expect = |id, role: PeerRole| (id, role as i32);
        assert_eq!(
            roles(&joint),
            vec![
                expect(1, PeerRole::Voter),
                expect(2, PeerRole::Voter),
                expect(3, PeerRole::DemotingVoter),
                expect(4, PeerRole::IncomingVoter)
            ]
        );
        assert_eq!(joint.region_epoch.unwrap().conf_ver, 7);
        assert_eq!(conf_state_of(&joint).voters_outgoing, vec![1, 2, 3]);
        let left = region_after(&joint, &ConfChange::leave_joint(), None).unwrap();
        assert_eq!(
            roles(&left),
            vec![
                expect(1, PeerRole::Voter),
                expect(2, PeerRole::Voter),
                expect(3, PeerRole::Learner),
                expect(4, PeerRole::Voter)
            ]
        );
        assert_eq!(left.region_epoch.unwrap().conf_ver, 9);
    }

    #[test]
    fn invalid_changes_are_refused() {
        let v = |id| peer(id, PeerRole::Voter);
        let r = region(vec![v(1)], 1);
        // Removing the last voter.
        let remove = ConfChange::new([ConfChangeSingle::new(ConfChangeType::RemoveNode, 1)]);
        assert!(region_after(&r, &remove, Some(&ctx(1, vec![v(1)]))).is_err());
        // A new peer nobody described.
        let add = ConfChange::new([ConfChangeSingle::new(ConfChangeType::AddLearnerNode, 9)]);
        assert!(region_after(&r, &add, Some(&ctx(1, vec![]))).is_err());
        // No context.
        assert!(region_after(&r, &add, None).is_err());
    }
}
