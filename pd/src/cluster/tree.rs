//! The region tree: regions ordered by start key, so "which region holds
//! this key?" is one B-tree search.
//!
//! Invariant: the ranges in the tree never overlap. [`RegionTree::insert`]
//! removes whatever the new region overlaps; callers decide beforehand
//! (by the epoch rules in [`super::regions`]) whether it may.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use crate::schedule::RegionView;

/// Regions by start key.
#[derive(Default)]
pub struct RegionTree {
    by_start: BTreeMap<Vec<u8>, Arc<RegionView>>,
}

/// Whether `key` is before `end` (an empty end is +infinity).
fn before_end(key: &[u8], end: &[u8]) -> bool {
    end.is_empty() || key < end
}

impl RegionTree {
    /// The region whose range holds `key`.
    pub fn find(&self, key: &[u8]) -> Option<&Arc<RegionView>> {
        let (_, region) = self
            .by_start
            .range::<[u8], _>((Bound::Unbounded, Bound::Included(key)))
            .next_back()?;
        before_end(key, &region.end_key).then_some(region)
    }

    /// The region holding the keys just below `key` (`start < key <= end`);
    /// for an empty key, the last region.
    pub fn find_below(&self, key: &[u8]) -> Option<&Arc<RegionView>> {
        if key.is_empty() {
            let (_, last) = self.by_start.iter().next_back()?;
            return last.end_key.is_empty().then_some(last);
        }
        let (_, region) = self
            .by_start
            .range::<[u8], _>((Bound::Unbounded, Bound::Excluded(key)))
            .next_back()?;
        (region.end_key.is_empty() || key <= region.end_key.as_slice()).then_some(region)
    }

    /// The regions overlapping `[start, end)` (empty end: to the end of the
    /// key space), in key order.
    pub fn overlaps(&self, start: &[u8], end: &[u8]) -> Vec<Arc<RegionView>> {
        let mut out = Vec::new();
        if let Some(first) = self.find(start) {
            out.push(first.clone());
        }
        let after = self
            .by_start
            .range::<[u8], _>((Bound::Excluded(start), Bound::Unbounded))
            .take_while(|(k, _)| before_end(k, end));
        out.extend(after.map(|(_, r)| r.clone()));
        out
    }

    /// Up to `limit` regions from the one holding `start` on, stopping at
    /// `end` (empty: the end of the key space).
    pub fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Vec<Arc<RegionView>> {
        let mut out: Vec<Arc<RegionView>> = Vec::with_capacity(limit.min(1024));
        if let Some(first) = self.find(start) {
            out.push(first.clone());
        }
        for (k, r) in self
            .by_start
            .range::<[u8], _>((Bound::Excluded(start), Bound::Unbounded))
        {
            if out.len() >= limit || !before_end(k, end) {
                break;
            }
            out.push(r.clone());
        }
        out.truncate(limit);
        out
    }

    /// Puts `region` in the tree, removing every region it overlaps (which
    /// the caller has judged stale). Returns the removed regions other than
    /// an older version of `region` itself.
    pub fn insert(&mut self, region: Arc<RegionView>) -> Vec<Arc<RegionView>> {
        let mut removed = Vec::new();
        for old in self.overlaps(&region.start_key, &region.end_key) {
            self.by_start.remove(&old.start_key);
            if old.id != region.id {
                removed.push(old);
            }
        }
        self.by_start.insert(region.start_key.clone(), region);
        removed
    }

    /// Removes `region` if the tree holds it at its start key.
    pub fn remove(&mut self, region: &RegionView) {
        if self
            .by_start
            .get(&region.start_key)
            .is_some_and(|r| r.id == region.id)
        {
            self.by_start.remove(&region.start_key);
        }
    }

    /// How many regions the tree holds.
    pub fn len(&self) -> usize {
        self.by_start.len()
    }

    /// Whether the tree is empty.
    pub fn is_empty(&self) -> bool {
        self.by_start.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::Epoch;

    fn region(id: u64, start: &str, end: &str) -> Arc<RegionView> {
        Arc::new(RegionView {
            id,
            start_key: start.as_bytes().to_vec(),
            end_key: end.as_bytes().to_vec(),
            epoch: Epoch::default(),
            peers: vec![],
            leader: None,
            down_peers: vec![],
            pending_peers: vec![],
            approximate_size_bytes: 0,
            approximate_keys: 0,
        })
    }

    fn ids(regions: &[Arc<RegionView>]) -> Vec<u64> {
        regions.iter().map(|r| r.id).collect()
    }

    #[test]
    fn find_respects_half_open_ranges() {
        let mut tree = RegionTree::default();
        tree.insert(region(1, "", "b"));
        tree.insert(region(2, "b", "d"));
        tree.insert(region(3, "d", ""));
        assert_eq!(tree.find(b"").unwrap().id, 1);
        assert_eq!(tree.find(b"a\xff").unwrap().id, 1);
        assert_eq!(tree.find(b"b").unwrap().id, 2);
        assert_eq!(tree.find(b"c").unwrap().id, 2);
        assert_eq!(tree.find(b"zzz").unwrap().id, 3);
    }

    #[test]
    fn find_below_takes_the_region_ending_at_or_after_the_key() {
        let mut tree = RegionTree::default();
        tree.insert(region(1, "", "b"));
        tree.insert(region(2, "b", "d"));
        tree.insert(region(3, "d", ""));
        assert_eq!(tree.find_below(b"").unwrap().id, 3);
        assert_eq!(tree.find_below(b"b").unwrap().id, 1);
        assert_eq!(tree.find_below(b"b\0").unwrap().id, 2);
        assert_eq!(tree.find_below(b"d").unwrap().id, 2);
        assert_eq!(tree.find_below(b"zzz").unwrap().id, 3);
        assert!(tree.find_below(b"\0").is_some());
        let mut gappy = RegionTree::default();
        gappy.insert(region(1, "a", "b"));
        assert!(gappy.find_below(b"a").is_none());
        assert!(gappy.find_below(b"c").is_none());
        assert!(gappy.find_below(b"").is_none());
    }

    #[test]
    fn find_misses_gaps() {
        let mut tree = RegionTree::default();
        tree.insert(region(1, "a", "b"));
        assert!(tree.find(b"").is_none());
        assert!(tree.find(b"b").is_none());
    }

    #[test]
    fn insert_replaces_overlapped_regions() {
        let mut tree = RegionTree::default();
        tree.insert(region(1, "", "m"));
        tree.insert(region(2, "m", ""));
        // Region 1 split into 1 [, c) and 3 [c, m).
        let removed = tree.insert(region(3, "c", "m"));
        assert_eq!(ids(&removed), vec![1]);
        assert_eq!(tree.len(), 2);
        tree.insert(region(1, "", "c"));
        assert_eq!(ids(&tree.scan(b"", b"", 10)), vec![1, 3, 2]);
        // One region covering everything replaces all three.
        let removed = tree.insert(region(9, "", ""));
        assert_eq!(ids(&removed), vec![1, 3, 2]);
        assert_eq!(tree.len(), 1);
    }

    #[test]
    fn scan_honours_end_and_limit() {
        let mut tree = RegionTree::default();
        for (i, (s, e)) in [("", "b"), ("b", "c"), ("c", "d"), ("d", "")]
            .iter()
            .enumerate()
        {
            tree.insert(region(i as u64 + 1, s, e));
        }
        assert_eq!(ids(&tree.scan(b"b", b"d", 10)), vec![2, 3]);
        assert_eq!(ids(&tree.scan(b"a", b"", 2)), vec![1, 2]);
        assert_eq!(ids(&tree.scan(b"c1", b"c2", 10)), vec![3]);
        assert_eq!(ids(&tree.overlaps(b"b1", b"d")), vec![2, 3]);
    }
}
