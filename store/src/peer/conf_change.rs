//! Membership changes: PD's operator steps (add a learner, promote, swap
//! through a joint configuration, remove) proposed by the leader as
//! raftcore conf-change entries; applied by every replica (the apply
//! thread writes the region's new peer list, [`crate::apply::conf_change`],
//! then the peer hands the change to raftcore); and a peer that finds
//! itself removed destroys itself ([`super::destroy`]).
//!
//! The leader never removes or demotes itself: PD moves leadership first
//! (its operators do), and a step that would is ignored.

use flotilla_proto::metapb;
use flotilla_proto::pdpb;
use flotilla_proto::raft_cmdpb::ChangePeerContext;
use prost::Message as _;
use raftcore::{ConfChange, ConfChangeSingle, ConfChangeType};

use super::Peer;
use crate::driver::context::PeerContext;

impl Peer {
    /// A PD step: propose `changes` (empty: leave the joint configuration).
    pub(super) fn on_change_peer(
        &mut self,
        cx: &mut PeerContext,
        epoch: metapb::RegionEpoch,
        changes: Vec<pdpb::ChangePeer>,
    ) {
        let region_id = self.region().id;
        if !self.is_leader() || Some(epoch) != self.region().region_epoch {
            tracing::debug!(
                region = region_id,
                "membership step for another epoch or leader ignored"
            );
            return;
        }
        let cc = match self.conf_change_for(&changes) {
            Ok(cc) => cc,
            Err(why) => {
                tracing::info!(region = region_id, why, "membership step refused");
                return;
            }
        };
        match self.node.propose_conf_change(&cc) {
            Ok(()) => {
                cx.store.metrics.proposals.inc();
                tracing::info!(region = region_id, changes = ?cc.changes, "membership change proposed");
            }
            Err(e) => {
                tracing::debug!(region = region_id, error = %e, "membership change not proposed")
            }
        }
    }

    fn conf_change_for(&self, changes: &[pdpb::ChangePeer]) -> Result<ConfChange, &'static str> {
        if changes.is_empty() {
            return Ok(ConfChange::leave_joint());
        }
        let mut singles = Vec::new();
        let mut peers = Vec::new();
        for c in changes {
            let peer = c.peer.ok_or("a change without a peer")?;
            if peer.id == 0 || peer.store_id == 0 {
                return Err("a change without a peer or store id");
            }
            let change_type = match pdpb::ConfChangeType::try_from(c.change_type) {
                Ok(pdpb::ConfChangeType::AddNode) => ConfChangeType::AddNode,
                Ok(pdpb::ConfChangeType::AddLearnerNode) => ConfChangeType::AddLearnerNode,
                Ok(pdpb::ConfChangeType::RemoveNode) => ConfChangeType::RemoveNode,
                Err(_) => return Err("unknown change type"),
            };
            if peer.id == self.me.id && change_type != ConfChangeType::AddNode {
                return Err("the leader would remove or demote itself");
            }
            let single = ConfChangeSingle::new(change_type, peer.id);
            if crate::apply::conf_change::in_effect(self.region(), &single) {
                // PD resends a step until its next heartbeat shows it done.
                return Err("already in effect");
            }
            singles.push(single);
            peers.push(peer);
        }
        let context = ChangePeerContext {
            header: Some(self.cmd_header()),
            peers,
        };
        let mut cc = ConfChange::new(singles);
        cc.context = context.encode_to_vec().into();
        Ok(cc)
    }

    /// A membership change applied here: raftcore takes it, the region
    /// takes its new peers, and a removed peer goes away.
    pub(super) fn on_conf_change_applied(
        &mut self,
        cx: &mut PeerContext,
        cc: ConfChange,
        region: metapb::Region,
    ) {
        if let Err(e) = self.node.apply_conf_change(&cc) {
            // The apply thread decided with raftcore's own rules; a
            // disagreement is a bug.
            panic!(
                "region {}: raftcore refused a membership change the apply accepted: {e}",
                region.id
            );
        }
        // Only a change that names this peer can remove it: a peer filled
        // by a snapshot from before its own addition replays older changes
        // that do not list it yet.
        let named = cc.changes.iter().any(|c| c.node_id == self.me.id) || cc.is_leave_joint();
        let was_member = self.region().peers.iter().any(|p| p.id == self.me.id);
        let removed = named && was_member && !region.peers.iter().any(|p| p.id == self.me.id);
        if let Some(me) = region.peers.iter().find(|p| p.id == self.me.id) {
            self.me = *me;
        }
        self.node.storage_mut().set_region(region);
        self.publish_meta(cx);
        cx.store.note_role_change(self.region().id);
        if removed {
            self.start_destroy(cx, "removed from the region");
        }
    }
}
