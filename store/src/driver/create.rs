//! A peer born from a message: the first message a new replica's store
//! gets for a region it does not have (a learner PD added, or a split's new
//! region whose leader is faster than this store's apply).
//!
//! The store creates an **uninitialized** peer — no range, no log — that
//! answers the leader, which then sends it a snapshot. Only messages a
//! leader or candidate sends create one (append, heartbeat, snapshot, vote
//! requests), and only if:
//! - this store has no tombstone of the region that is as new as the
//!   message (a removed peer's stale traffic must not resurrect it), and
//!   the message is not for the removed peer itself (peer IDs say nothing
//!   about age: PD hands out IDs from reserved blocks, so only `conf_ver`
//!   orders configurations);
//! - the message's range overlaps no region here: a split not yet applied
//!   on this store will create that peer itself, from the split (the
//!   message waits for it, [`super::deferred`]).

use flotilla_proto::raft_serverpb::{PeerState, RaftMessage, RegionLocalState};
use raftcore::MessageType;

use super::context::StoreContext;
use super::handler::PeerRouter;
use super::system::{create_peer, CreatePeerError};
use crate::engine::keys::region_state_key;
use crate::engine::CF_META;
use crate::peer::storage::PeerStorage;

/// What became of a message for a region with no peer here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Creation {
    /// A peer exists now: deliver the message.
    Ready,
    /// The region's range is still part of a region here whose split has
    /// not applied yet: the split will create the peer.
    AwaitingSplit,
    /// No peer may exist for it here: drop the message.
    Refused,
}

/// Creates the peer `envelope` addresses if it may exist here.
pub fn maybe_create_peer(
    store: &StoreContext,
    router: &PeerRouter,
    envelope: &RaftMessage,
    msg_type: MessageType,
) -> Creation {
    let creates = matches!(
        msg_type,
        MessageType::Append
            | MessageType::Heartbeat
            | MessageType::Snapshot
            | MessageType::Vote
            | MessageType::PreVote
    );
    let Some(to) = envelope.to_peer else {
        return Creation::Refused;
    };
    if !creates || envelope.is_tombstone || to.id == 0 {
        return Creation::Refused;
    }
    let region_id = envelope.region_id;
    match store
        .engine
        .get_msg::<RegionLocalState>(CF_META, &region_state_key(region_id))
    {
        Ok(None) => {}
        Ok(Some(local)) if local.state == PeerState::Tombstone as i32 => {
            let old = local.region.unwrap_or_default();
            let old_conf = old.region_epoch.map_or(0, |e| e.conf_ver);
            let new_conf = envelope.region_epoch.map_or(0, |e| e.conf_ver);
            let old_peer = old
                .peers
                .iter()
                .find(|p| p.store_id == store.store_id)
                .map_or(0, |p| p.id);
            if new_conf <= old_conf || to.id == old_peer {
                return Creation::Refused;
            }
        }
        // A live state without a peer in the router: being created or
        // destroyed right now; the leader retries.
        Ok(Some(_)) => return Creation::Refused,
        Err(e) => {
            tracing::warn!(region = region_id, error = %e, "reading region state");
            return Creation::Refused;
        }
    }
    let claimed = flotilla_proto::metapb::Region {
        id: region_id,
        start_key: envelope.start_key.clone(),
        end_key: envelope.end_key.clone(),
        ..Default::default()
    };
    if store.overlaps_another(&claimed) {
        tracing::debug!(
            region = region_id,
            peer = to.id,
            "not created: its range overlaps a region here"
        );
        return Creation::AwaitingSplit;
    }
    // No range or peers yet; the epoch of the message that created it
    // tells later messages for another peer of the region here whether
    // they are stale or this peer is.
    let region = flotilla_proto::metapb::Region {
        id: region_id,
        region_epoch: envelope.region_epoch,
        ..Default::default()
    };
    let storage = match PeerStorage::uninitialized(store.engine.clone(), region) {
        Ok(storage) => storage,
        Err(e) => {
            tracing::warn!(region = region_id, error = %e, "peer not created");
            return Creation::Refused;
        }
    };
    match create_peer(store, router, to, storage) {
        Ok(()) => {
            tracing::info!(
                region = region_id,
                peer = to.id,
                "peer created by a message from its leader"
            );
            Creation::Ready
        }
        Err(CreatePeerError::Exists(_)) => Creation::Ready,
        Err(e) => {
            tracing::warn!(region = region_id, error = %e, "peer not created");
            Creation::Refused
        }
    }
}
