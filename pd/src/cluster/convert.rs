//! Between the wire types (`metapb`, `pdpb`) and the scheduling view, with
//! the validation every region from the network goes through first.

use flotilla_proto::{metapb, pdpb};

use crate::schedule::{Epoch, OpStep, Operator, PeerRole, PeerView, RegionView};

/// Longest region boundary key PD accepts.
pub const MAX_KEY_BYTES: usize = 64 << 10;
/// Most peers a region may have.
pub const MAX_PEERS: usize = 16;
/// Largest approximate region size PD accepts (1 PiB): anything bigger is
/// a broken size estimate, not a region.
pub const MAX_REGION_BYTES: u64 = 1 << 50;
/// Largest approximate key count PD accepts.
pub const MAX_REGION_KEYS: u64 = 1 << 40;

fn role_from_wire(role: i32) -> Result<PeerRole, String> {
    match metapb::PeerRole::try_from(role) {
        Ok(metapb::PeerRole::Voter) => Ok(PeerRole::Voter),
        Ok(metapb::PeerRole::Learner) => Ok(PeerRole::Learner),
        Ok(metapb::PeerRole::IncomingVoter) => Ok(PeerRole::IncomingVoter),
        Ok(metapb::PeerRole::DemotingVoter) => Ok(PeerRole::DemotingVoter),
        Err(_) => Err(format!("unknown peer role {role}")),
    }
}

fn role_to_wire(role: PeerRole) -> metapb::PeerRole {
    match role {
        PeerRole::Voter => metapb::PeerRole::Voter,
        PeerRole::Learner => metapb::PeerRole::Learner,
        PeerRole::IncomingVoter => metapb::PeerRole::IncomingVoter,
        PeerRole::DemotingVoter => metapb::PeerRole::DemotingVoter,
    }
}

/// A peer in wire form.
pub fn peer_to_wire(p: &PeerView) -> metapb::Peer {
    metapb::Peer {
        id: p.id,
        store_id: p.store_id,
        role: role_to_wire(p.role) as i32,
    }
}

/// Checks a region from the network and converts it. `leader` must be one
/// of its peers when given.
pub fn region_from_wire(
    region: Option<&metapb::Region>,
    leader: Option<&metapb::Peer>,
) -> Result<RegionView, String> {
    let region = region.ok_or("region is missing")?;
    if region.id == 0 {
        return Err("region id 0 is invalid".into());
    }
    let (start, end) = (&region.start_key, &region.end_key);
    if start.len() > MAX_KEY_BYTES || end.len() > MAX_KEY_BYTES {
        return Err(format!(
            "region {} has a key longer than {MAX_KEY_BYTES} bytes",
            region.id
        ));
    }
    if !end.is_empty() && start >= end {
        return Err(format!(
            "region {} has an empty or inverted range [{:?}, {:?})",
            region.id, start, end
        ));
    }
    let epoch = region
        .region_epoch
        .as_ref()
        .ok_or_else(|| format!("region {} has no epoch", region.id))?;
    let peers = peers_from_wire(region)?;
    let leader = match leader {
        Some(l) if l.id != 0 => {
            if !peers
                .iter()
                .any(|p| p.id == l.id && p.store_id == l.store_id)
            {
                return Err(format!(
                    "region {}: leader {} is not one of its peers",
                    region.id, l.id
                ));
            }
            Some(l.id)
        }
        _ => None,
    };
    Ok(RegionView {
        id: region.id,
        start_key: start.to_vec(),
        end_key: end.to_vec(),
        epoch: Epoch {
            conf_ver: epoch.conf_ver,
            version: epoch.version,
        },
        peers,
        leader,
        down_peers: Vec::new(),
        pending_peers: Vec::new(),
        approximate_size_bytes: 0,
        approximate_keys: 0,
    })
}

fn peers_from_wire(region: &metapb::Region) -> Result<Vec<PeerView>, String> {
    if region.peers.is_empty() || region.peers.len() > MAX_PEERS {
        return Err(format!(
            "region {} has {} peers (1 to {MAX_PEERS} allowed)",
            region.id,
            region.peers.len()
        ));
    }
    let mut peers: Vec<PeerView> = Vec::with_capacity(region.peers.len());
    for p in &region.peers {
        if p.id == 0 || p.store_id == 0 {
            return Err(format!(
                "region {} has a peer with id or store 0",
                region.id
            ));
        }
        if peers
            .iter()
            .any(|q| q.id == p.id || q.store_id == p.store_id)
        {
            return Err(format!(
                "region {} lists peer {} or store {} twice",
                region.id, p.id, p.store_id
            ));
        }
        peers.push(PeerView {
            id: p.id,
            store_id: p.store_id,
            role: role_from_wire(p.role)?,
        });
    }
    Ok(peers)
}

/// Checks and converts one region heartbeat.
pub fn heartbeat_to_view(hb: &pdpb::RegionHeartbeat) -> Result<RegionView, String> {
    let mut view = region_from_wire(hb.region.as_ref(), hb.leader.as_ref())?;
    if view.leader.is_none() {
        return Err(format!(
            "region {}: a heartbeat must name its leader",
            view.id
        ));
    }
    if hb.approximate_size > MAX_REGION_BYTES || hb.approximate_keys > MAX_REGION_KEYS {
        return Err(format!(
            "region {}: approximate size {} bytes / {} keys is beyond any real region",
            view.id, hb.approximate_size, hb.approximate_keys
        ));
    }
    view.approximate_size_bytes = hb.approximate_size;
    view.approximate_keys = hb.approximate_keys;
    view.down_peers = listed_peers(&view, hb.down_peers.iter().filter_map(|d| d.peer.as_ref()))?;
    view.pending_peers = listed_peers(&view, hb.pending_peers.iter())?;
    Ok(view)
}

fn listed_peers<'a>(
    view: &RegionView,
    peers: impl Iterator<Item = &'a metapb::Peer>,
) -> Result<Vec<u64>, String> {
    let mut out = Vec::new();
    for p in peers {
        if view.peer(p.id).is_none() {
            return Err(format!(
                "region {}: peer {} listed as down/pending is not a member",
                view.id, p.id
            ));
        }
        out.push(p.id);
    }
    Ok(out)
}

/// A region in wire form (without leader).
pub fn region_to_wire(r: &RegionView) -> metapb::Region {
    metapb::Region {
        id: r.id,
        start_key: r.start_key.clone().into(),
        end_key: r.end_key.clone().into(),
        region_epoch: Some(metapb::RegionEpoch {
            conf_ver: r.epoch.conf_ver,
            version: r.epoch.version,
        }),
        peers: r.peers.iter().map(peer_to_wire).collect(),
    }
}

/// A region with its leader and unhealthy peers, as routing answers carry it.
pub fn region_info(r: &RegionView) -> pdpb::RegionInfo {
    let pick = |ids: &[u64]| -> Vec<metapb::Peer> {
        ids.iter()
            .filter_map(|id| r.peer(*id))
            .map(peer_to_wire)
            .collect()
    };
    pdpb::RegionInfo {
        region: Some(region_to_wire(r)),
        leader: r.leader_peer().map(peer_to_wire),
        down_peers: pick(&r.down_peers),
        pending_peers: pick(&r.pending_peers),
    }
}

/// The command telling `region`'s leader to carry out `step` of `op`.
pub fn step_to_command(region: &RegionView, op: &Operator, step: &OpStep) -> pdpb::RegionCommand {
    use pdpb::region_command::Step;
    let change =
        |t: pdpb::ConfChangeType, id: u64, store_id: u64, role: PeerRole| pdpb::ChangePeer {
            change_type: t as i32,
            peer: Some(metapb::Peer {
                id,
                store_id,
                role: role_to_wire(role) as i32,
            }),
        };
    let store_of = |peer_id: u64| region.peer(peer_id).map(|p| p.store_id).unwrap_or(0);
    let wire = match step {
        OpStep::AddLearner { store_id, peer_id } => Step::ChangePeer(change(
            pdpb::ConfChangeType::AddLearnerNode,
            *peer_id,
            *store_id,
            PeerRole::Learner,
        )),
        OpStep::PromoteLearner {
            peer_id,
            demote: None,
        } => Step::ChangePeer(change(
            pdpb::ConfChangeType::AddNode,
            *peer_id,
            store_of(*peer_id),
            PeerRole::Voter,
        )),
        OpStep::PromoteLearner {
            peer_id,
            demote: Some(old),
        } => Step::ChangePeerV2(pdpb::ChangePeerV2 {
            changes: vec![
                change(
                    pdpb::ConfChangeType::AddNode,
                    *peer_id,
                    store_of(*peer_id),
                    PeerRole::Voter,
                ),
                change(
                    pdpb::ConfChangeType::AddLearnerNode,
                    *old,
                    store_of(*old),
                    PeerRole::Learner,
                ),
            ],
        }),
        OpStep::RemovePeer { peer_id, store_id } => Step::ChangePeer(change(
            pdpb::ConfChangeType::RemoveNode,
            *peer_id,
            *store_id,
            PeerRole::Learner,
        )),
        OpStep::LeaveJoint => Step::ChangePeerV2(pdpb::ChangePeerV2 { changes: vec![] }),
        OpStep::TransferLeader { to_store, .. } => Step::TransferLeader(pdpb::TransferLeader {
            peer: region.peer_on_store(*to_store).map(peer_to_wire),
        }),
        OpStep::SplitRegion { keys } => Step::SplitRegion(pdpb::SplitRegion {
            keys: keys.iter().map(|k| k.clone().into()).collect(),
        }),
    };
    pdpb::RegionCommand {
        region_id: region.id,
        region_epoch: Some(metapb::RegionEpoch {
            conf_ver: region.epoch.conf_ver,
            version: region.epoch.version,
        }),
        operator_id: op.id,
        step: Some(wire),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire_region(start: &str, end: &str) -> metapb::Region {
        metapb::Region {
            id: 5,
            start_key: start.as_bytes().to_vec().into(),
            end_key: end.as_bytes().to_vec().into(),
            region_epoch: Some(metapb::RegionEpoch {
                conf_ver: 1,
                version: 1,
            }),
            peers: vec![
                metapb::Peer {
                    id: 6,
                    store_id: 1,
                    role: 0,
                },
                metapb::Peer {
                    id: 7,
                    store_id: 2,
                    role: 0,
                },
            ],
        }
    }

    #[test]
    fn accepts_a_sane_region_and_round_trips() {
        let r = wire_region("a", "b");
        let view = region_from_wire(Some(&r), Some(&r.peers[1])).unwrap();
        assert_eq!(view.leader, Some(7));
        assert_eq!(region_to_wire(&view), r);
    }

    #[test]
    fn refuses_inverted_and_empty_ranges() {
        for (s, e) in [("b", "a"), ("a", "a")] {
            let err = region_from_wire(Some(&wire_region(s, e)), None).unwrap_err();
            assert!(err.contains("inverted"), "{err}");
        }
        assert!(region_from_wire(Some(&wire_region("a", "")), None).is_ok());
    }

    #[test]
    fn refuses_bad_peers_and_leaders() {
        let mut r = wire_region("a", "b");
        r.peers[1].store_id = 1;
        assert!(region_from_wire(Some(&r), None)
            .unwrap_err()
            .contains("twice"));
        let r = wire_region("a", "b");
        let stranger = metapb::Peer {
            id: 99,
            store_id: 9,
            role: 0,
        };
        assert!(region_from_wire(Some(&r), Some(&stranger))
            .unwrap_err()
            .contains("not one of its peers"));
        let mut r = wire_region("a", "b");
        r.peers.clear();
        assert!(region_from_wire(Some(&r), None).is_err());
        let mut r = wire_region("a", "b");
        r.peers[0].role = 42;
        assert!(region_from_wire(Some(&r), None)
            .unwrap_err()
            .contains("role"));
    }

    #[test]
    fn refuses_absurd_sizes() {
        let r = wire_region("a", "b");
        let hb = pdpb::RegionHeartbeat {
            leader: Some(r.peers[0]),
            region: Some(r),
            approximate_size: u64::MAX,
            ..Default::default()
        };
        assert!(heartbeat_to_view(&hb).unwrap_err().contains("beyond"));
    }
}
