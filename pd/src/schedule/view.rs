//! The cluster model that every scheduling function reads.
//!
//! PD keeps one [`ClusterView`] in memory, updated by store and region
//! heartbeats. Regions sit behind `Arc` so a heartbeat replaces one region
//! without copying the others, and a scheduling pass reads the map in place.
//! Per-store counts derived from regions (`region_count`, `leader_count`,
//! `region_size_bytes`) are maintained incrementally by
//! [`ClusterView::put_region`] / [`ClusterView::remove_region`], so a
//! scheduling pass reads them in O(1) per store instead of re-deriving them
//! for every candidate.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Serialize, Serializer};

use super::config::ScheduleConfig;

/// A region smaller than this counts as this big when balancing by size:
/// a freshly split or empty region still costs a Raft group, a snapshot and
/// a slot in every store's bookkeeping (PD does the same with 1 MiB).
pub const MIN_REGION_SIZE_BYTES: u64 = 1 << 20;

/// What PD believes about a store's liveness and lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoreState {
    /// Heartbeating: a valid target for new replicas and leaders.
    Up,
    /// No heartbeat for `store-disconnect-time`: probably a blip, so its
    /// replicas stay, but nothing new is placed there.
    Disconnected,
    /// No heartbeat for `max-store-down-time`: its replicas are lost and are
    /// re-created elsewhere.
    Down,
    /// Decommission requested: its replicas move away while it still serves.
    Offline,
    /// Removed for good: it holds nothing and never comes back.
    Tombstone,
}

impl StoreState {
    /// Derives the state from what PD records about a store.
    ///
    /// Down wins over Offline because a down store cannot send the snapshots
    /// an orderly drain would use; both lead to replacing its replicas.
    pub fn derive(
        tombstone: bool,
        offline_requested: bool,
        last_heartbeat_ms: u64,
        now_ms: u64,
        cfg: &ScheduleConfig,
    ) -> StoreState {
        let silent_ms = now_ms.saturating_sub(last_heartbeat_ms);
        if tombstone {
            StoreState::Tombstone
        } else if u128::from(silent_ms) >= cfg.max_store_down_time.as_millis() {
            StoreState::Down
        } else if offline_requested {
            StoreState::Offline
        } else if u128::from(silent_ms) >= cfg.store_disconnect_time.as_millis() {
            StoreState::Disconnected
        } else {
            StoreState::Up
        }
    }

    /// Whether replicas on such a store must be re-created elsewhere.
    pub fn is_lost(self) -> bool {
        matches!(self, StoreState::Down | StoreState::Tombstone)
    }
}

/// One store as the scheduler sees it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct StoreView {
    /// Store id, unique for the life of the cluster.
    pub id: u64,
    /// gRPC address the store advertised.
    pub address: String,
    /// Liveness / lifecycle state, computed by PD (see [`StoreState::derive`]).
    pub state: StoreState,
    /// Location labels such as `zone=z1`, `host=h1`.
    pub labels: BTreeMap<String, String>,
    /// Disk capacity reported by the store; 0 = unknown.
    pub capacity_bytes: u64,
    /// Free disk space reported by the store.
    pub available_bytes: u64,
    /// PD clock at the last store heartbeat.
    pub last_heartbeat_ms: u64,
    /// Regions with a peer (any role) here. Derived; see [`ClusterView`].
    pub region_count: u64,
    /// Regions led from here. Derived.
    pub leader_count: u64,
    /// Sum of [`RegionView::effective_size_bytes`] of the regions counted in
    /// `region_count`. Derived.
    pub region_size_bytes: u64,
}

impl StoreView {
    /// A store with no regions and no labels.
    pub fn new(id: u64, address: impl Into<String>, state: StoreState) -> StoreView {
        StoreView {
            id,
            address: address.into(),
            state,
            labels: BTreeMap::new(),
            capacity_bytes: 0,
            available_bytes: 0,
            last_heartbeat_ms: 0,
            region_count: 0,
            leader_count: 0,
            region_size_bytes: 0,
        }
    }

    /// Whether the store is short of disk: used more than `low_space_ratio`
    /// of its capacity. Unknown capacity (0) never counts as low.
    pub fn is_low_space(&self, low_space_ratio: f64) -> bool {
        if self.capacity_bytes == 0 {
            return false;
        }
        let used = self.capacity_bytes.saturating_sub(self.available_bytes);
        used as f64 > self.capacity_bytes as f64 * low_space_ratio
    }

    /// The label value for `key`, `""` when absent (PD compares it that way).
    pub fn label(&self, key: &str) -> &str {
        self.labels.get(key).map(String::as_str).unwrap_or("")
    }

    fn clear_counts(&mut self) {
        self.region_count = 0;
        self.leader_count = 0;
        self.region_size_bytes = 0;
    }
}

/// A region's epoch: `version` grows on split/merge, `conf_ver` on membership
/// changes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Epoch {
    /// Membership-change counter.
    pub conf_ver: u64,
    /// Range-change counter.
    pub version: u64,
}

/// A peer's role in the region's Raft configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PeerRole {
    /// Votes in the (only or both) configuration(s).
    Voter,
    /// Receives the log, never votes.
    Learner,
    /// Joint state: votes in the incoming configuration only.
    IncomingVoter,
    /// Joint state: votes in the outgoing configuration only; becomes a
    /// learner when the region leaves the joint state.
    DemotingVoter,
}

/// One replica of a region.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PeerView {
    /// Peer id (allocated by PD, unique across the cluster).
    pub id: u64,
    /// Store that holds it.
    pub store_id: u64,
    /// Role in the Raft configuration.
    pub role: PeerRole,
}

/// One region as reported by its leader's last heartbeat.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct RegionView {
    /// Region id.
    pub id: u64,
    /// First key (inclusive); empty = -inf.
    pub start_key: Vec<u8>,
    /// End key (exclusive); empty = +inf.
    pub end_key: Vec<u8>,
    /// Epoch at the last heartbeat.
    pub epoch: Epoch,
    /// All replicas, any role.
    pub peers: Vec<PeerView>,
    /// Leader peer id, if the region has reported one.
    pub leader: Option<u64>,
    /// Peer ids the leader reports as unreachable.
    pub down_peers: Vec<u64>,
    /// Peer ids whose log lags (e.g. still waiting for a snapshot).
    pub pending_peers: Vec<u64>,
    /// Approximate data size.
    pub approximate_size_bytes: u64,
    /// Approximate number of keys.
    pub approximate_keys: u64,
}

impl RegionView {
    /// Whether the configuration is joint (some peer is mid role change).
    pub fn is_joint(&self) -> bool {
        self.peers
            .iter()
            .any(|p| matches!(p.role, PeerRole::IncomingVoter | PeerRole::DemotingVoter))
    }

    /// Peers that vote once any joint state is left (Voter, IncomingVoter).
    pub fn voters(&self) -> impl Iterator<Item = &PeerView> {
        self.peers
            .iter()
            .filter(|p| matches!(p.role, PeerRole::Voter | PeerRole::IncomingVoter))
    }

    /// Peers that do not vote once any joint state is left.
    pub fn learners(&self) -> impl Iterator<Item = &PeerView> {
        self.peers
            .iter()
            .filter(|p| matches!(p.role, PeerRole::Learner | PeerRole::DemotingVoter))
    }

    /// The peer with this id.
    pub fn peer(&self, peer_id: u64) -> Option<&PeerView> {
        self.peers.iter().find(|p| p.id == peer_id)
    }

    /// The replica on `store_id`, if any (at most one per store).
    pub fn peer_on_store(&self, store_id: u64) -> Option<&PeerView> {
        self.peers.iter().find(|p| p.store_id == store_id)
    }

    /// The leader's peer.
    pub fn leader_peer(&self) -> Option<&PeerView> {
        self.leader.and_then(|id| self.peer(id))
    }

    /// The store that holds the leader.
    pub fn leader_store(&self) -> Option<u64> {
        self.leader_peer().map(|p| p.store_id)
    }

    /// Stores holding any replica, in id order.
    pub fn store_ids(&self) -> BTreeSet<u64> {
        self.peers.iter().map(|p| p.store_id).collect()
    }

    /// Whether the leader reports this peer unreachable.
    pub fn is_down(&self, peer_id: u64) -> bool {
        self.down_peers.contains(&peer_id)
    }

    /// Whether this peer's log lags behind.
    pub fn is_pending(&self, peer_id: u64) -> bool {
        self.pending_peers.contains(&peer_id)
    }

    /// Whether every peer is caught up and reachable.
    pub fn is_healthy(&self) -> bool {
        self.down_peers.is_empty() && self.pending_peers.is_empty()
    }

    /// Size used for balancing: never below [`MIN_REGION_SIZE_BYTES`].
    pub fn effective_size_bytes(&self) -> u64 {
        self.approximate_size_bytes.max(MIN_REGION_SIZE_BYTES)
    }
}

/// Everything the scheduler knows: stores and regions by id.
///
/// Invariant: the derived counts in each [`StoreView`] equal what the
/// regions imply, as long as regions and stores change only through
/// [`put_region`](Self::put_region), [`remove_region`](Self::remove_region)
/// and [`put_store`](Self::put_store). Whoever edits the maps directly calls
/// [`recount`](Self::recount) before the next scheduling pass.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ClusterView {
    /// Stores by id.
    pub stores: BTreeMap<u64, StoreView>,
    /// Regions by id.
    #[serde(serialize_with = "serialize_regions")]
    pub regions: BTreeMap<u64, Arc<RegionView>>,
}

/// serde has no `Arc` support without its `rc` feature; a region map
/// serializes as the regions themselves.
fn serialize_regions<S: Serializer>(
    regions: &BTreeMap<u64, Arc<RegionView>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(regions.iter().map(|(id, region)| (id, &**region)))
}

impl ClusterView {
    /// An empty cluster.
    pub fn new() -> ClusterView {
        ClusterView::default()
    }

    /// Inserts or replaces a store. An existing store keeps its derived
    /// counts (a store heartbeat does not know them); a new one counts the
    /// regions already referring to it, which is O(regions) but rare.
    pub fn put_store(&mut self, mut store: StoreView) {
        store.clear_counts();
        if let Some(old) = self.stores.get(&store.id) {
            store.region_count = old.region_count;
            store.leader_count = old.leader_count;
            store.region_size_bytes = old.region_size_bytes;
        } else {
            for region in self.regions.values() {
                add_counts(&mut store, region, 1);
            }
        }
        self.stores.insert(store.id, store);
    }

    /// Inserts or replaces a region, updating its stores' counts.
    pub fn put_region(&mut self, region: Arc<RegionView>) {
        if let Some(old) = self.regions.insert(region.id, Arc::clone(&region)) {
            self.apply_counts(&old, -1);
        }
        self.apply_counts(&region, 1);
    }

    /// Removes a region (merged away or tombstoned), updating counts.
    pub fn remove_region(&mut self, region_id: u64) -> Option<Arc<RegionView>> {
        let old = self.regions.remove(&region_id)?;
        self.apply_counts(&old, -1);
        Some(old)
    }

    /// Recomputes every store's derived counts from the regions, O(regions).
    pub fn recount(&mut self) {
        for store in self.stores.values_mut() {
            store.clear_counts();
        }
        for region in self.regions.values() {
            for peer in &region.peers {
                if let Some(store) = self.stores.get_mut(&peer.store_id) {
                    add_peer_counts(store, region, peer, 1);
                }
            }
        }
    }

    /// The store with this id.
    pub fn store(&self, id: u64) -> Option<&StoreView> {
        self.stores.get(&id)
    }

    /// The region with this id.
    pub fn region(&self, id: u64) -> Option<&Arc<RegionView>> {
        self.regions.get(&id)
    }

    /// The state of a store; unknown stores count as Tombstone (gone).
    pub fn store_state(&self, id: u64) -> StoreState {
        self.store(id).map_or(StoreState::Tombstone, |s| s.state)
    }

    /// Stores in state Up, in id order.
    pub fn up_stores(&self) -> impl Iterator<Item = &StoreView> {
        self.stores.values().filter(|s| s.state == StoreState::Up)
    }

    fn apply_counts(&mut self, region: &RegionView, sign: i64) {
        for peer in &region.peers {
            if let Some(store) = self.stores.get_mut(&peer.store_id) {
                add_peer_counts(store, region, peer, sign);
            }
        }
    }
}

fn add_counts(store: &mut StoreView, region: &RegionView, sign: i64) {
    if let Some(peer) = region.peer_on_store(store.id) {
        add_peer_counts(store, region, peer, sign);
    }
}

fn add_peer_counts(store: &mut StoreView, region: &RegionView, peer: &PeerView, sign: i64) {
    let size = region.effective_size_bytes();
    let is_leader = region.leader == Some(peer.id);
    if sign > 0 {
        store.region_count += 1;
        // Saturating: sizes come from the network, and each one being
        // plausible does not make their sum fit.
        store.region_size_bytes = store.region_size_bytes.saturating_add(size);
        store.leader_count += u64::from(is_leader);
    } else {
        store.region_count = store.region_count.saturating_sub(1);
        store.region_size_bytes = store.region_size_bytes.saturating_sub(size);
        store.leader_count = store.leader_count.saturating_sub(u64::from(is_leader));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(id: u64, stores: &[u64], leader_store: u64, size: u64) -> Arc<RegionView> {
        let peers: Vec<PeerView> = stores
            .iter()
            .map(|&s| PeerView {
                id: id * 10 + s,
                store_id: s,
                role: PeerRole::Voter,
            })
            .collect();
        Arc::new(RegionView {
            id,
            start_key: vec![],
            end_key: vec![],
            epoch: Epoch::default(),
            leader: Some(id * 10 + leader_store),
            peers,
            down_peers: vec![],
            pending_peers: vec![],
            approximate_size_bytes: size,
            approximate_keys: 0,
        })
    }

    fn counts(view: &ClusterView) -> Vec<(u64, u64, u64)> {
        view.stores
            .values()
            .map(|s| (s.region_count, s.leader_count, s.region_size_bytes >> 20))
            .collect()
    }

    #[test]
    fn incremental_counts_match_recount() {
        let mut view = ClusterView::new();
        for id in 1..=4 {
            view.put_store(StoreView::new(id, "", StoreState::Up));
        }
        view.put_region(region(1, &[1, 2, 3], 1, 10 << 20));
        view.put_region(region(2, &[2, 3, 4], 4, 0));
        view.put_region(region(1, &[1, 2, 4], 2, 20 << 20));
        view.remove_region(2);
        let incremental = counts(&view);
        assert_eq!(
            incremental,
            vec![(1, 0, 20), (1, 1, 20), (0, 0, 0), (1, 0, 20)]
        );
        view.recount();
        assert_eq!(counts(&view), incremental);
    }

    #[test]
    fn late_store_counts_existing_regions_and_heartbeat_keeps_counts() {
        let mut view = ClusterView::new();
        view.put_region(region(1, &[1, 2, 3], 3, 0));
        view.put_store(StoreView::new(3, "a", StoreState::Up));
        assert_eq!(counts(&view), vec![(1, 1, 1)]);
        view.put_store(StoreView::new(3, "b", StoreState::Disconnected));
        assert_eq!(counts(&view), vec![(1, 1, 1)]);
        assert_eq!(view.stores[&3].address, "b");
    }

    #[test]
    fn state_derivation_orders_down_over_offline() {
        let cfg = ScheduleConfig::default();
        let down_ms = cfg.max_store_down_time.as_millis() as u64;
        let disc_ms = cfg.store_disconnect_time.as_millis() as u64;
        let at =
            |silent: u64, offline| StoreState::derive(false, offline, 1000, 1000 + silent, &cfg);
        assert_eq!(at(0, false), StoreState::Up);
        assert_eq!(at(disc_ms, false), StoreState::Disconnected);
        assert_eq!(at(disc_ms, true), StoreState::Offline);
        assert_eq!(at(down_ms, true), StoreState::Down);
        assert_eq!(
            StoreState::derive(true, false, 0, 0, &cfg),
            StoreState::Tombstone
        );
    }

    #[test]
    fn joint_roles_split_into_voters_and_learners() {
        let mut r = (*region(1, &[1, 2, 3], 1, 0)).clone();
        r.peers[1].role = PeerRole::IncomingVoter;
        r.peers[2].role = PeerRole::DemotingVoter;
        assert!(r.is_joint());
        assert_eq!(
            r.voters().map(|p| p.store_id).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(
            r.learners().map(|p| p.store_id).collect::<Vec<_>>(),
            vec![3]
        );
    }
}
