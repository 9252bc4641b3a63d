//! An in-memory cluster for tests and benchmarks (PD's `mockcluster`).
//!
//! [`MockCluster::apply_step`] carries out an operator step on the model
//! the way a store would (bumping the epoch, refusing to remove or demote
//! the leader), so a test can loop "schedule → dispatch → apply" and watch
//! the cluster converge without a server.
//!
//! Ids the mock allocates itself (peers of regions it builds, regions made
//! by splits) stay below [`MOCK_ID_LIMIT`]; [`CountingIds::default`] hands
//! out ids from there up, so the two never collide.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::operator::OpStep;
use super::view::{ClusterView, Epoch, PeerRole, PeerView, RegionView, StoreState, StoreView};
use super::IdSource;

/// Ids at or above this come from [`CountingIds`], below from the mock.
pub const MOCK_ID_LIMIT: u64 = 1 << 32;

/// Size of regions the mock creates.
pub const MOCK_REGION_SIZE_BYTES: u64 = 96 << 20;

/// Mock disk capacity per store (never low on space unless a test says so).
pub const MOCK_CAPACITY_BYTES: u64 = 1 << 50;

/// An [`IdSource`] counting up from `next`, exhausted at `end`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CountingIds {
    /// Next id to hand out.
    pub next: u64,
    /// First id not to hand out.
    pub end: u64,
}

impl Default for CountingIds {
    fn default() -> Self {
        CountingIds {
            next: MOCK_ID_LIMIT,
            end: u64::MAX,
        }
    }
}

impl IdSource for CountingIds {
    fn next_id(&mut self) -> Option<u64> {
        if self.next >= self.end {
            return None;
        }
        self.next += 1;
        Some(self.next - 1)
    }
}

/// Builder and simulator of a cluster view.
#[derive(Clone, Debug)]
pub struct MockCluster {
    view: ClusterView,
    next_id: u64,
}

impl Default for MockCluster {
    fn default() -> Self {
        MockCluster::new()
    }
}

impl MockCluster {
    /// An empty cluster.
    pub fn new() -> MockCluster {
        MockCluster {
            view: ClusterView::new(),
            next_id: 1,
        }
    }

    /// The model.
    pub fn view(&self) -> &ClusterView {
        &self.view
    }

    /// An id below [`MOCK_ID_LIMIT`], unused by the mock so far.
    pub fn alloc_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id - 1
    }

    /// Adds an Up store without labels.
    pub fn add_store(&mut self, id: u64) {
        self.add_store_with_labels(id, &[]);
    }

    /// Adds an Up store with these labels.
    pub fn add_store_with_labels(&mut self, id: u64, labels: &[(&str, &str)]) {
        let mut store = StoreView::new(id, format!("127.0.0.1:{}", 20000 + id), StoreState::Up);
        store.labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        store.capacity_bytes = MOCK_CAPACITY_BYTES;
        store.available_bytes = MOCK_CAPACITY_BYTES;
        self.view.put_store(store);
    }

    /// Changes a store's state (no-op for an unknown store).
    pub fn set_store_state(&mut self, id: u64, state: StoreState) {
        self.update_store(id, |s| s.state = state);
    }

    /// Edits a store in place.
    pub fn update_store(&mut self, id: u64, edit: impl FnOnce(&mut StoreView)) {
        if let Some(mut store) = self.view.store(id).cloned() {
            edit(&mut store);
            self.view.put_store(store);
        }
    }

    /// Adds a region of voters on `peer_stores`, led from `leader_store`.
    pub fn add_region(
        &mut self,
        id: u64,
        start: &[u8],
        end: &[u8],
        peer_stores: &[u64],
        leader_store: u64,
    ) {
        let peers: Vec<PeerView> = peer_stores
            .iter()
            .map(|&store_id| PeerView {
                id: self.alloc_id(),
                store_id,
                role: PeerRole::Voter,
            })
            .collect();
        let leader = peers
            .iter()
            .find(|p| p.store_id == leader_store)
            .map(|p| p.id);
        self.view.put_region(Arc::new(RegionView {
            id,
            start_key: start.to_vec(),
            end_key: end.to_vec(),
            epoch: Epoch {
                conf_ver: 1,
                version: 1,
            },
            peers,
            leader,
            down_peers: Vec::new(),
            pending_peers: Vec::new(),
            approximate_size_bytes: MOCK_REGION_SIZE_BYTES,
            approximate_keys: MOCK_REGION_SIZE_BYTES / 1024,
        }));
    }

    /// Adds `n` regions covering the key space, region `i` on three (or
    /// fewer) consecutive stores of `stores` starting at `i mod len`, led
    /// from the first. Meant for an empty cluster.
    pub fn add_regions_evenly(&mut self, n: u64, stores: &[u64]) {
        let first_id = self.view.regions.keys().next_back().map_or(1, |id| id + 1);
        let key = |i: u64| {
            if i == 0 || i == n {
                Vec::new()
            } else {
                format!("k{i:010}").into_bytes()
            }
        };
        let replicas = stores.len().min(3);
        for i in 0..n {
            let at = i as usize;
            let picked: Vec<u64> = (0..replicas)
                .map(|k| stores[(at + k) % stores.len()])
                .collect();
            let leader = picked.first().copied().unwrap_or(0);
            self.add_region(first_id + i, &key(i), &key(i + 1), &picked, leader);
        }
    }

    /// The region with this id.
    ///
    /// # Panics
    /// If there is none: a test asked for a region it never built.
    pub fn region(&self, id: u64) -> Arc<RegionView> {
        match self.view.region(id) {
            Some(region) => Arc::clone(region),
            None => panic!("mock cluster has no region {id}"),
        }
    }

    /// Edits a region in place (roles, down/pending peers, epoch, ...).
    pub fn update_region(&mut self, id: u64, edit: impl FnOnce(&mut RegionView)) {
        if let Some(region) = self.view.region(id) {
            let mut region = RegionView::clone(region);
            edit(&mut region);
            self.view.put_region(Arc::new(region));
        }
    }

    /// Carries out `step` on the region the way a store would; `Err` is
    /// what a store would refuse (the model is left unchanged).
    pub fn apply_step(&mut self, region_id: u64, step: &OpStep) -> Result<(), String> {
        let mut region = match self.view.region(region_id) {
            Some(r) => RegionView::clone(r),
            None => return Err(format!("no region {region_id}")),
        };
        match step {
            OpStep::AddLearner { store_id, peer_id } => {
                add_learner(&mut region, *store_id, *peer_id)?
            }
            OpStep::PromoteLearner { peer_id, demote } => promote(&mut region, *peer_id, *demote)?,
            OpStep::RemovePeer { peer_id, .. } => remove_peer(&mut region, *peer_id)?,
            OpStep::TransferLeader { to_store, .. } => {
                let to = region
                    .peer_on_store(*to_store)
                    .filter(|p| p.role == PeerRole::Voter);
                region.leader = Some(to.ok_or("transfer target is not a voter")?.id);
            }
            OpStep::LeaveJoint => leave_joint(&mut region),
            OpStep::SplitRegion { keys } => return self.split(region, keys),
        }
        self.view.put_region(Arc::new(region));
        Ok(())
    }

    /// Splits like TiKV with `right-derive-when-split`: the original id
    /// keeps the rightmost part, new regions take the left ones.
    fn split(&mut self, mut region: RegionView, keys: &[Vec<u8>]) -> Result<(), String> {
        let keys = if keys.is_empty() {
            vec![middle_key(&region)?]
        } else {
            keys.to_vec()
        };
        let parts = keys.len() as u64 + 1;
        region.epoch.version += keys.len() as u64;
        region.approximate_size_bytes /= parts;
        region.approximate_keys /= parts;
        let mut start = region.start_key.clone();
        for key in &keys {
            let mut left = region.clone();
            left.id = self.alloc_id();
            left.start_key = std::mem::replace(&mut start, key.clone());
            left.end_key = key.clone();
            let ids: BTreeMap<u64, u64> =
                left.peers.iter().map(|p| (p.id, self.alloc_id())).collect();
            for peer in &mut left.peers {
                peer.id = ids.get(&peer.id).copied().unwrap_or(peer.id);
            }
            left.leader = left.leader.and_then(|l| ids.get(&l).copied());
            left.down_peers.clear();
            left.pending_peers.clear();
            self.view.put_region(Arc::new(left));
        }
        region.start_key = start;
        self.view.put_region(Arc::new(region));
        Ok(())
    }
}

fn add_learner(region: &mut RegionView, store_id: u64, peer_id: u64) -> Result<(), String> {
    if region.peer(peer_id).is_some() {
        return Ok(());
    }
    if region.peer_on_store(store_id).is_some() {
        return Err(format!("store {store_id} already holds a peer"));
    }
    region.peers.push(PeerView {
        id: peer_id,
        store_id,
        role: PeerRole::Learner,
    });
    region.epoch.conf_ver += 1;
    Ok(())
}

/// Promote (and demote) through a joint state and leave it at once, bumping
/// `conf_ver` per change on entering and per changed role on leaving.
fn promote(region: &mut RegionView, peer_id: u64, demote: Option<u64>) -> Result<(), String> {
    if region.peer(peer_id).is_none() {
        return Err(format!("no peer {peer_id} to promote"));
    }
    if demote.is_some() && demote == region.leader {
        return Err("cannot demote the leader".into());
    }
    let mut changes = 0;
    for peer in &mut region.peers {
        let wanted = if peer.id == peer_id {
            PeerRole::Voter
        } else if Some(peer.id) == demote {
            PeerRole::Learner
        } else {
            continue;
        };
        if peer.role != wanted {
            peer.role = wanted;
            changes += 1;
        }
    }
    let joint = demote.is_some();
    region.epoch.conf_ver += if joint { 2 * changes } else { changes };
    Ok(())
}

fn remove_peer(region: &mut RegionView, peer_id: u64) -> Result<(), String> {
    if region.leader == Some(peer_id) {
        return Err("cannot remove the leader".into());
    }
    let before = region.peers.len();
    region.peers.retain(|p| p.id != peer_id);
    if region.peers.len() != before {
        region.down_peers.retain(|&p| p != peer_id);
        region.pending_peers.retain(|&p| p != peer_id);
        region.epoch.conf_ver += 1;
    }
    Ok(())
}

fn leave_joint(region: &mut RegionView) {
    let mut changes = 0;
    for peer in &mut region.peers {
        let left = match peer.role {
            PeerRole::IncomingVoter => PeerRole::Voter,
            PeerRole::DemotingVoter => PeerRole::Learner,
            role => role,
        };
        if left != peer.role {
            peer.role = left;
            changes += 1;
        }
    }
    region.epoch.conf_ver += changes;
}

fn middle_key(region: &RegionView) -> Result<Vec<u8>, String> {
    let mut key = region.start_key.clone();
    key.push(0x80);
    if region.end_key.is_empty() || key < region.end_key {
        Ok(key)
    } else {
        Err("no key strictly inside the region".into())
    }
}
