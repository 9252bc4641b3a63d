//! PD membership: the replicated member list, each member publishing its
//! own addresses, and online add/remove through Raft conf changes.

use std::time::Duration;

use bytes::Bytes;
use flotilla_proto::pdpb;
use prost::Message as _;
use raftcore::{ConfChangeSingle, ConfChangeType};

use super::Shared;
use crate::config::{member_id, url};
use crate::error::PdError;
use crate::storage::meta::{member_key, Op, MEMBER_PREFIX};
use crate::storage::{StorageError, CF_META};

/// The replicated member list, in ID order.
pub fn list(shared: &Shared) -> Result<Vec<pdpb::Member>, StorageError> {
    let mut out = Vec::new();
    for (key, value) in shared.engine.scan_prefix(CF_META, MEMBER_PREFIX)? {
        let m = pdpb::Member::decode(&*value).map_err(|e| StorageError::Corrupt {
            what: String::from_utf8_lossy(&key).into_owned(),
            detail: e.to_string(),
        })?;
        out.push(m);
    }
    Ok(out)
}

/// This member's own record, as it publishes it.
pub fn own_record(shared: &Shared) -> pdpb::Member {
    pdpb::Member {
        member_id: shared.id,
        name: shared.cfg.name.clone(),
        peer_urls: vec![shared.cfg.peer_url()],
        client_urls: vec![shared.cfg.client_url()],
        http_url: shared.cfg.http_url(),
    }
}

/// The member record of `id`: the replicated one, else what the founding
/// configuration says.
pub fn find(shared: &Shared, id: u64) -> Option<pdpb::Member> {
    if id == 0 {
        return None;
    }
    if let Ok(Some(v)) = shared.engine.get(CF_META, &member_key(id)) {
        if let Ok(m) = pdpb::Member::decode(&*v) {
            return Some(m);
        }
    }
    let founder = shared.initial.iter().find(|m| m.id == id)?;
    Some(pdpb::Member {
        member_id: id,
        name: founder.name.clone(),
        peer_urls: vec![founder.peer_url.clone()],
        ..Default::default()
    })
}

/// The error a non-leader answers with: the leader's record if known.
pub fn not_leader(shared: &Shared) -> PdError {
    PdError::NotLeader(find(shared, shared.raft.status().leader_id))
}

/// Keeps this member's published record current and the transport's
/// address book in step with the member list. Runs for the member's life.
pub async fn maintain(shared: std::sync::Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        if shared.is_stopping() {
            return;
        }
        refresh_urls(&shared);
        let me = own_record(&shared);
        let published = find(&shared, shared.id);
        let is_member = shared.raft.status().conf_state.contains(shared.id);
        if is_member && published.as_ref() != Some(&me) && shared.raft.status().leader_id != 0 {
            let op = Op::Put(
                Bytes::from(member_key(shared.id)),
                Bytes::from(me.encode_to_vec()),
            );
            if let Err(e) = shared
                .raft
                .propose(vec![op], shared.cfg.propose_timeout)
                .await
            {
                tracing::debug!(error = %e, "publishing this member's record failed; will retry");
            }
        }
    }
}

fn refresh_urls(shared: &Shared) {
    let Ok(members) = list(shared) else { return };
    let mut urls = shared.urls.write();
    for m in members {
        if let Some(u) = m.peer_urls.first() {
            urls.insert(m.member_id, u.clone());
        }
    }
}

/// Adds a member (as a voter) named `name` reachable at `peer_url`. The new
/// member then starts with `initial-cluster-state = "existing"`.
pub async fn add(shared: &Shared, name: &str, peer_url: &str) -> Result<pdpb::Member, PdError> {
    if name.is_empty() || peer_url.is_empty() {
        return Err(PdError::InvalidArgument(
            "a member needs a name and a peer URL".into(),
        ));
    }
    let id = member_id(name);
    let existing = list(shared).map_err(|e| PdError::Unavailable(e.to_string()))?;
    if existing.iter().any(|m| m.member_id == id || m.name == name) {
        return Err(PdError::InvalidArgument(format!(
            "member {name:?} already exists"
        )));
    }
    let member = pdpb::Member {
        member_id: id,
        name: name.to_string(),
        peer_urls: vec![url(peer_url)],
        ..Default::default()
    };
    shared.urls.write().insert(id, url(peer_url));
    let change = ConfChangeSingle::new(ConfChangeType::AddNode, id);
    shared
        .raft
        .change_member(change, Some(member.clone()), shared.cfg.propose_timeout)
        .await?;
    Ok(member)
}

/// Removes the member named `name`.
pub async fn remove(shared: &Shared, name: &str) -> Result<(), PdError> {
    let members = list(shared).map_err(|e| PdError::Unavailable(e.to_string()))?;
    let member = members
        .iter()
        .find(|m| m.name == name)
        .ok_or_else(|| PdError::InvalidArgument(format!("no member named {name:?}")))?;
    let voters = shared.raft.status().conf_state.voters.len();
    if voters <= 1 {
        return Err(PdError::InvalidArgument(
            "cannot remove the last member".into(),
        ));
    }
    let change = ConfChangeSingle::new(ConfChangeType::RemoveNode, member.member_id);
    shared
        .raft
        .change_member(change, None, shared.cfg.propose_timeout)
        .await?;
    Ok(())
}
