//! Regions: heartbeats under the epoch rules, split reports, routing
//! lookups, and the first region at bootstrap.
//!
//! Epoch rules (as in TiKV's PD): a region whose `version` or `conf_ver` is
//! older than what PD holds for the same ID is stale and refused; a region
//! overlapping another with a newer `version` is stale and refused;
//! otherwise it replaces whatever it overlaps — those regions were split or
//! merged away and their holders will learn it from their own epochs.

use std::sync::Arc;

use flotilla_proto::{metapb, pdpb};

use super::convert::{self, region_info};
use super::Cluster;
use crate::error::PdError;
use crate::schedule::{placement, PeerRole, PeerView, RegionView, StoreState};

/// What a region heartbeat produced.
pub struct HeartbeatOutcome {
    /// The operator step for the region's leader, if one is due.
    pub command: Option<pdpb::RegionCommand>,
}

impl Cluster {
    /// Handles one region's heartbeat from `store_id`.
    pub fn region_heartbeat(
        &mut self,
        store_id: u64,
        hb: &pdpb::RegionHeartbeat,
        now_ms: u64,
    ) -> Result<HeartbeatOutcome, PdError> {
        let region = convert::heartbeat_to_view(hb).map_err(PdError::InvalidArgument)?;
        if region.leader_store() != Some(store_id) {
            return Err(PdError::InvalidArgument(format!(
                "region {}'s leader is not on the sending store {store_id}",
                region.id
            )));
        }
        self.check_peer_stores(&region)?;
        let region = self.put_region(region, now_ms)?;
        let command = self.controller.dispatch(&region, now_ms).and_then(|step| {
            let op = self.controller.get(region.id)?;
            Some(convert::step_to_command(&region, op, &step))
        });
        Ok(HeartbeatOutcome { command })
    }

    /// Every peer must live on a registered store that is not a tombstone.
    fn check_peer_stores(&self, region: &RegionView) -> Result<(), PdError> {
        for p in &region.peers {
            match self.stores.get(&p.store_id) {
                None => return Err(PdError::StoreNotFound(p.store_id)),
                Some(s) if s.meta.state == metapb::StoreState::Tombstone as i32 => {
                    return Err(PdError::StoreTombstone(p.store_id))
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// The epoch rules: `region` is stale if PD holds it with a newer epoch
    /// or holds an overlapping region with a newer version.
    fn check_not_stale(&self, region: &RegionView) -> Result<(), PdError> {
        if let Some(old) = self.view.region(region.id) {
            if region.epoch.version < old.epoch.version
                || region.epoch.conf_ver < old.epoch.conf_ver
            {
                return Err(PdError::StaleRegion(format!(
                    "region {} epoch {:?} is older than PD's {:?}",
                    region.id, region.epoch, old.epoch
                )));
            }
        }
        for o in self.tree.overlaps(&region.start_key, &region.end_key) {
            if o.id != region.id && o.epoch.version > region.epoch.version {
                return Err(PdError::StaleRegion(format!(
                    "region {} (version {}) overlaps region {} with newer version {}",
                    region.id, region.epoch.version, o.id, o.epoch.version
                )));
            }
        }
        Ok(())
    }

    /// Checks `region` against the epoch rules and, if it is not stale,
    /// makes it current: replaces overlapped regions, updates the view and
    /// marks changed metadata for persistence.
    fn put_region(&mut self, region: RegionView, now_ms: u64) -> Result<Arc<RegionView>, PdError> {
        self.check_not_stale(&region)?;
        let old = self.view.region(region.id).cloned();
        let meta_changed = old.as_ref().is_none_or(|o| {
            o.epoch != region.epoch
                || o.start_key != region.start_key
                || o.end_key != region.end_key
                || o.peers != region.peers
                || o.leader != region.leader
        });
        if let Some(old) = &old {
            self.tree.remove(old);
        }
        let region = Arc::new(region);
        for gone in self.tree.insert(region.clone()) {
            self.view.remove_region(gone.id);
            self.controller
                .cancel(gone.id, "region replaced by a newer one", now_ms);
            self.dirty.insert(gone.id, None);
        }
        self.view.put_region(region.clone());
        if meta_changed {
            self.dirty.insert(region.id, Some(region_info(&region)));
        }
        Ok(region)
    }

    /// Records the regions a split produced (the shrunk original among
    /// them). All are checked before any is applied.
    pub fn report_split(&mut self, regions: &[metapb::Region], now_ms: u64) -> Result<(), PdError> {
        if regions.len() < 2 {
            return Err(PdError::InvalidArgument(
                "a split report needs at least two regions".into(),
            ));
        }
        let mut views = Vec::with_capacity(regions.len());
        for r in regions {
            let mut view =
                convert::region_from_wire(Some(r), None).map_err(PdError::InvalidArgument)?;
            self.check_peer_stores(&view)?;
            // Keep the known leader of the original region if it is still a
            // peer: the split does not move leadership.
            if let Some(old) = self.view.region(view.id) {
                view.leader = old.leader.filter(|l| view.peer(*l).is_some());
                view.approximate_size_bytes = old.approximate_size_bytes / regions.len() as u64;
            }
            views.push(view);
        }
        for pair in views.windows(2) {
            if pair[0].end_key.is_empty() || pair[0].end_key != pair[1].start_key {
                return Err(PdError::InvalidArgument(
                    "split regions must be adjacent and in key order".into(),
                ));
            }
        }
        // Every piece passes the epoch rules before any is applied: a
        // refused report must not leave half a split (and a routing gap)
        // behind. The pieces are adjacent, so applying one never makes
        // another stale.
        for view in &views {
            self.check_not_stale(view)?;
        }
        for view in views {
            self.put_region(view, now_ms)?;
        }
        Ok(())
    }

    /// Checks a split request; returns how many new peer IDs each new
    /// region needs.
    pub fn check_ask_split(
        &self,
        region: Option<&metapb::Region>,
        count: u32,
    ) -> Result<usize, PdError> {
        if count == 0 || count > 1000 {
            return Err(PdError::InvalidArgument(format!(
                "split count {count} not in 1..=1000"
            )));
        }
        let view = convert::region_from_wire(region, None).map_err(PdError::InvalidArgument)?;
        let known = self.view.region(view.id).ok_or(PdError::RegionNotFound)?;
        if view.epoch.version < known.epoch.version || view.epoch.conf_ver < known.epoch.conf_ver {
            return Err(PdError::StaleRegion(format!(
                "region {} is older than PD's",
                view.id
            )));
        }
        Ok(view.peers.len())
    }

    /// The region holding `key`.
    pub fn region_by_key(&self, key: &[u8]) -> Option<pdpb::RegionInfo> {
        self.tree.find(key).map(|r| region_info(r))
    }

    /// The region holding the keys just below `key` (the last region for
    /// an empty key).
    pub fn region_below_key(&self, key: &[u8]) -> Option<pdpb::RegionInfo> {
        self.tree.find_below(key).map(|r| region_info(r))
    }

    /// The region with this ID.
    pub fn region_by_id(&self, id: u64) -> Option<pdpb::RegionInfo> {
        self.view.region(id).map(|r| region_info(r))
    }

    /// Up to `limit` regions from the one holding `start` to `end`.
    pub fn scan_regions(&self, start: &[u8], end: &[u8], limit: usize) -> Vec<pdpb::RegionInfo> {
        self.tree
            .scan(start, end, limit)
            .iter()
            .map(|r| region_info(r))
            .collect()
    }

    /// The stores the first region goes on: the caller first, then the
    /// best-isolated other Up stores; `NotEnoughStores` until there are
    /// `max-replicas` of them, so no write is ever acknowledged by a lone
    /// replica.
    pub fn bootstrap_stores(&self, caller: u64) -> Result<Vec<u64>, PdError> {
        let need = self.schedule_config.max_replicas;
        let up: Vec<_> = self
            .view
            .stores
            .values()
            .filter(|s| s.state == StoreState::Up)
            .collect();
        let Some(first) = up.iter().find(|s| s.id == caller) else {
            return Err(PdError::StoreNotFound(caller));
        };
        if up.len() < need {
            return Err(PdError::NotEnoughStores {
                have: up.len(),
                need,
            });
        }
        let labels = &self.schedule_config.location_labels;
        let mut chosen = vec![*first];
        while chosen.len() < need {
            let best = up
                .iter()
                .filter(|s| !chosen.iter().any(|c| c.id == s.id))
                .max_by_key(|s| {
                    (
                        placement::distinct_score(labels, &chosen, s),
                        std::cmp::Reverse(s.id),
                    )
                })
                .copied()
                .ok_or(PdError::NotEnoughStores {
                    have: up.len(),
                    need,
                })?;
            chosen.push(best);
        }
        Ok(chosen.iter().map(|s| s.id).collect())
    }

    /// The first region: the whole key space, one voter on each store.
    pub fn first_region(region_id: u64, peers: &[(u64, u64)]) -> metapb::Region {
        let views: Vec<PeerView> = peers
            .iter()
            .map(|&(id, store_id)| PeerView {
                id,
                store_id,
                role: PeerRole::Voter,
            })
            .collect();
        metapb::Region {
            id: region_id,
            start_key: Default::default(),
            end_key: Default::default(),
            region_epoch: Some(metapb::RegionEpoch {
                conf_ver: 1,
                version: 1,
            }),
            peers: views.iter().map(convert::peer_to_wire).collect(),
        }
    }

    /// Puts the bootstrap region in place (after it was persisted).
    pub fn apply_bootstrap(&mut self, region: metapb::Region, now_ms: u64) -> Result<(), PdError> {
        let view =
            convert::region_from_wire(Some(&region), None).map_err(PdError::InvalidArgument)?;
        self.bootstrap = Some(region);
        self.put_region(view, now_ms)?;
        // Persisted together with the bootstrap record already.
        self.dirty.clear();
        Ok(())
    }
}
