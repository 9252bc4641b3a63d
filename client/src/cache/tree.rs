//! The cached routing table: regions ordered by start key, each with the
//! peer the client will address. Pure data, no I/O: the rules for what a
//! new piece of routing information replaces live here and are unit-tested.
//!
//! Invariant: cached ranges never overlap. A region learned later replaces
//! the cached regions it overlaps, unless one of them is newer (a higher
//! `epoch.version`: it comes from a later split than the new information,
//! which is then stale).

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;
use flotilla_proto::metapb::{self, PeerRole};

/// A region and the peer requests go to.
#[derive(Clone, Debug, PartialEq)]
pub struct RegionRoute {
    /// The region as last learned (range, epoch, peers).
    pub region: metapb::Region,
    /// The peer believed to lead; `None` when nobody said.
    pub leader: Option<metapb::Peer>,
}

impl RegionRoute {
    /// The region's ID.
    pub fn id(&self) -> u64 {
        self.region.id
    }

    /// The region's epoch (zero when unset).
    pub fn epoch(&self) -> metapb::RegionEpoch {
        self.region.region_epoch.unwrap_or_default()
    }

    /// Whether `key` is in the region's range.
    pub fn contains(&self, key: &[u8]) -> bool {
        key >= &self.region.start_key[..] && before_end(key, &self.region.end_key)
    }

    /// The peers that vote (the ones that can lead or serve follower reads).
    pub fn voters(&self) -> impl Iterator<Item = &metapb::Peer> {
        self.region
            .peers
            .iter()
            .filter(|p| p.role() != PeerRole::Learner)
    }

    /// The region's peer on `store_id`, if any.
    pub fn peer_on(&self, store_id: u64) -> Option<metapb::Peer> {
        self.region
            .peers
            .iter()
            .find(|p| p.store_id == store_id)
            .copied()
    }
}

/// Whether `key` is before `end` (an empty end is +infinity).
fn before_end(key: &[u8], end: &[u8]) -> bool {
    end.is_empty() || key < end
}

/// Regions by start key, and their start keys by ID.
#[derive(Default, Debug)]
pub struct RegionTree {
    by_start: BTreeMap<Bytes, Arc<RegionRoute>>,
    start_of: HashMap<u64, Bytes>,
}

impl RegionTree {
    /// How many regions are cached.
    pub fn len(&self) -> usize {
        self.by_start.len()
    }

    /// The cached region holding `key`.
    pub fn find(&self, key: &[u8]) -> Option<Arc<RegionRoute>> {
        let (_, route) = self
            .by_start
            .range::<[u8], _>((Bound::Unbounded, Bound::Included(key)))
            .next_back()?;
        route.contains(key).then(|| route.clone())
    }

    /// The cached region holding the keys just below `key` (`start < key
    /// <= end`); for an empty key, the last region.
    pub fn find_below(&self, key: &[u8]) -> Option<Arc<RegionRoute>> {
        if key.is_empty() {
            let (_, last) = self.by_start.iter().next_back()?;
            return last.region.end_key.is_empty().then(|| last.clone());
        }
        let (_, route) = self
            .by_start
            .range::<[u8], _>((Bound::Unbounded, Bound::Excluded(key)))
            .next_back()?;
        let end = &route.region.end_key;
        (end.is_empty() || key <= &end[..]).then(|| route.clone())
    }

    /// The cached region with this ID.
    pub fn get(&self, region_id: u64) -> Option<Arc<RegionRoute>> {
        let start = self.start_of.get(&region_id)?;
        self.by_start.get(start).cloned()
    }

    /// The cached regions overlapping `[start, end)` (empty end: no end).
    fn overlaps(&self, start: &[u8], end: &[u8]) -> Vec<Arc<RegionRoute>> {
        let mut out = Vec::new();
        if let Some(first) = self.find(start) {
            out.push(first);
        }
        let after = self
            .by_start
            .range::<[u8], _>((Bound::Excluded(start), Bound::Unbounded))
            .take_while(|(k, _)| before_end(k, end));
        out.extend(after.map(|(_, r)| r.clone()));
        out
    }

    /// Caches `route`, replacing what it overlaps, unless the cache holds
    /// newer information: an overlapping region with a higher version, or
    /// the same region with a higher version or `conf_ver`. A route without
    /// a leader keeps the leader cached for the same region, if that peer
    /// is still a member. Returns whether it was cached.
    pub fn insert(&mut self, mut route: RegionRoute) -> bool {
        let new = route.epoch();
        let overlapping = self.overlaps(&route.region.start_key, &route.region.end_key);
        let mut previous_leader = None;
        for old in &overlapping {
            let e = old.epoch();
            let newer = if old.id() == route.id() {
                previous_leader = old.leader;
                e.version > new.version || e.conf_ver > new.conf_ver
            } else {
                e.version > new.version
            };
            if newer {
                return false;
            }
        }
        if let Some(stale) = self.get(route.id()) {
            // The same region cached at another range (it shrank by a split
            // the cache saw first): only a newer version replaces it.
            if stale.epoch().version > new.version {
                return false;
            }
            previous_leader = previous_leader.or(stale.leader);
            self.remove(route.id());
        }
        for old in overlapping {
            self.remove(old.id());
        }
        if route.leader.is_none() {
            route.leader = previous_leader.filter(|l| route.region.peers.contains(l));
        }
        let start = route.region.start_key.clone();
        self.start_of.insert(route.id(), start.clone());
        self.by_start.insert(start, Arc::new(route));
        true
    }

    /// Forgets region `region_id`.
    pub fn remove(&mut self, region_id: u64) -> Option<Arc<RegionRoute>> {
        let start = self.start_of.remove(&region_id)?;
        self.by_start.remove(&start)
    }

    /// Points region `region_id` at `leader`. Ignored when the peer is not
    /// a member of the cached region (the hint is older or newer than the
    /// cache; the next request sorts it out).
    pub fn set_leader(&mut self, region_id: u64, leader: metapb::Peer) -> bool {
        let Some(cached) = self.get(region_id) else {
            return false;
        };
        if !cached.region.peers.contains(&leader) {
            return false;
        }
        let mut route = (*cached).clone();
        route.leader = Some(leader);
        self.by_start
            .insert(route.region.start_key.clone(), Arc::new(route));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(id: u64, store_id: u64) -> metapb::Peer {
        metapb::Peer {
            id,
            store_id,
            ..Default::default()
        }
    }

    fn route(id: u64, start: &str, end: &str, version: u64) -> RegionRoute {
        RegionRoute {
            region: metapb::Region {
                id,
                start_key: Bytes::copy_from_slice(start.as_bytes()),
                end_key: Bytes::copy_from_slice(end.as_bytes()),
                region_epoch: Some(metapb::RegionEpoch {
                    conf_ver: 1,
                    version,
                }),
                peers: vec![peer(id * 10 + 1, 1), peer(id * 10 + 2, 2)],
            },
            leader: None,
        }
    }

    fn ids(tree: &RegionTree) -> Vec<u64> {
        tree.by_start.values().map(|r| r.id()).collect()
    }

    #[test]
    fn finds_by_key_and_below_key() {
        let mut t = RegionTree::default();
        t.insert(route(1, "", "b", 1));
        t.insert(route(2, "b", "d", 1));
        t.insert(route(3, "d", "", 1));
        assert_eq!(t.find(b"").unwrap().id(), 1);
        assert_eq!(t.find(b"b").unwrap().id(), 2);
        assert_eq!(t.find(b"zz").unwrap().id(), 3);
        assert_eq!(t.find_below(b"b").unwrap().id(), 1);
        assert_eq!(t.find_below(b"c").unwrap().id(), 2);
        assert_eq!(t.find_below(b"").unwrap().id(), 3);
        t.remove(2);
        assert!(t.find(b"c").is_none());
        assert!(t.find_below(b"d").is_none());
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn a_split_replaces_its_parent_and_the_parent_cannot_come_back() {
        let mut t = RegionTree::default();
        t.insert(route(1, "", "", 1));
        // The split's children (version 2) replace the parent...
        assert!(t.insert(route(1, "", "m", 2)));
        assert!(t.insert(route(2, "m", "", 2)));
        assert_eq!(ids(&t), vec![1, 2]);
        // ...and a late answer from PD with the parent is stale.
        assert!(!t.insert(route(1, "", "", 1)));
        assert_eq!(ids(&t), vec![1, 2]);
        assert_eq!(t.find(b"x").unwrap().id(), 2);
    }

    #[test]
    fn a_child_learned_first_removes_the_cached_parent() {
        let mut t = RegionTree::default();
        t.insert(route(1, "", "", 1));
        // The right child arrives first: the parent overlaps it and is
        // older, so it goes; the left part is simply not cached.
        assert!(t.insert(route(2, "m", "", 2)));
        assert_eq!(ids(&t), vec![2]);
        assert!(t.find(b"a").is_none());
        assert!(t.insert(route(1, "", "m", 2)));
        assert_eq!(ids(&t), vec![1, 2]);
    }

    #[test]
    fn leaders_move_only_to_members() {
        let mut t = RegionTree::default();
        t.insert(route(1, "", "", 1));
        assert!(t.set_leader(1, peer(12, 2)));
        assert_eq!(t.find(b"a").unwrap().leader, Some(peer(12, 2)));
        assert!(!t.set_leader(1, peer(99, 9)), "not a member");
        assert!(!t.set_leader(7, peer(12, 2)), "not cached");
        // New information without a leader keeps the known one.
        let mut newer = route(1, "", "", 1);
        newer.region.region_epoch = Some(metapb::RegionEpoch {
            conf_ver: 2,
            version: 1,
        });
        assert!(t.insert(newer));
        assert_eq!(t.find(b"a").unwrap().leader, Some(peer(12, 2)));
        // A membership older than the cached one is stale.
        assert!(!t.insert(route(1, "", "", 1)));
    }
}
