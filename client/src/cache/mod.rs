//! The region cache: where each key lives, and where each store listens.
//!
//! Lookups are served from an ordered map of regions ([`tree`]). A miss
//! asks PD once for the missing region and the ones after it
//! (`ScanRegions`, [`Config::region_prefetch`](crate::Config) of them), and
//! concurrent misses for the same key wait for that one request instead of
//! sending their own. Stores' answers keep the cache current without PD:
//! `EpochNotMatch` carries the regions that now cover the old range,
//! `NotLeader` names the new leader; `RegionNotFound` and `StoreNotMatch`
//! drop the region so the next lookup asks PD again.

pub(crate) mod tree;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use flotilla_proto::metapb::{self, StoreState};
use flotilla_proto::pdpb;
use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::pd::{PdClient, PdError};
pub use tree::RegionRoute;
use tree::RegionTree;

/// Which region a lookup wants for its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Side {
    /// The region holding the key.
    At,
    /// The region holding the keys just below it (reverse scans).
    Below,
}

/// One PD lookup in flight, shared by everyone missing the same key.
type Loading = Arc<OnceCell<Result<Arc<RegionRoute>>>>;

/// Regions and store addresses, shared by all of a client's calls.
pub(crate) struct RegionCache {
    pd: PdClient,
    prefetch: u32,
    tree: RwLock<RegionTree>,
    loading: Mutex<HashMap<(Bytes, Side), Loading>>,
    stores: Mutex<HashMap<u64, String>>,
}

impl RegionCache {
    pub(crate) fn new(pd: PdClient, prefetch: u32) -> RegionCache {
        RegionCache {
            pd,
            prefetch,
            tree: RwLock::new(RegionTree::default()),
            loading: Mutex::new(HashMap::new()),
            stores: Mutex::new(HashMap::new()),
        }
    }

    fn tree(&self) -> std::sync::RwLockReadGuard<'_, RegionTree> {
        self.tree.read().unwrap_or_else(|e| e.into_inner())
    }

    fn tree_mut(&self) -> std::sync::RwLockWriteGuard<'_, RegionTree> {
        self.tree.write().unwrap_or_else(|e| e.into_inner())
    }

    /// How many regions are cached.
    pub(crate) fn len(&self) -> usize {
        self.tree().len()
    }

    /// The region holding `key` (`Side::At`) or the keys just below it
    /// (`Side::Below`): from the cache, or from PD by `deadline`.
    pub(crate) async fn locate(
        &self,
        key: &[u8],
        side: Side,
        deadline: Instant,
    ) -> Result<Arc<RegionRoute>> {
        if let Some(route) = self.cached(key, side) {
            return Ok(route);
        }
        let slot = (Bytes::copy_from_slice(key), side);
        let cell = {
            let mut loading = self.loading.lock().unwrap_or_else(|e| e.into_inner());
            loading.entry(slot.clone()).or_default().clone()
        };
        let load = cell.get_or_init(|| self.load(key, side));
        let result = tokio::time::timeout_at(deadline, load).await;
        {
            let mut loading = self.loading.lock().unwrap_or_else(|e| e.into_inner());
            if loading.get(&slot).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
                loading.remove(&slot);
            }
        }
        match result {
            Ok(found) => found.clone(),
            Err(_) => Err(out_of_time("locating the region in PD")),
        }
    }

    fn cached(&self, key: &[u8], side: Side) -> Option<Arc<RegionRoute>> {
        let tree = self.tree();
        match side {
            Side::At => tree.find(key),
            Side::Below => tree.find_below(key),
        }
    }

    /// Asks PD (once; the caller bounds the time) and caches the answer.
    async fn load(&self, key: &[u8], side: Side) -> Result<Arc<RegionRoute>> {
        let infos = match side {
            Side::At => self.pd.scan_regions(key, &[], self.prefetch).await?,
            Side::Below => self.pd.get_prev_region(key).await?.into_iter().collect(),
        };
        let mut found = None;
        {
            let mut tree = self.tree_mut();
            for info in infos {
                let Some(route) = route_from_pd(info) else {
                    continue;
                };
                let wanted = match side {
                    Side::At => route.contains(key),
                    Side::Below => found.is_none(),
                };
                if wanted {
                    found = Some(Arc::new(route.clone()));
                }
                tree.insert(route);
            }
        }
        // Prefer what the cache holds now: PD may lag behind a split the
        // stores already told us about.
        self.cached(key, side).or(found).ok_or_else(|| {
            Error::Pd(PdError::RegionNotFound(format!(
                "PD knows no region for key {key:?} (is the cluster bootstrapped?)"
            )))
        })
    }

    /// The store told us who leads `region_id` (or that `tried` does not
    /// and it knows no better): point the cache there, or at the next
    /// voter after `tried`.
    pub(crate) fn on_not_leader(
        &self,
        region_id: u64,
        leader: Option<metapb::Peer>,
        tried: metapb::Peer,
    ) {
        let mut tree = self.tree_mut();
        if let Some(leader) = leader.filter(|l| l.id != 0) {
            if !tree.set_leader(region_id, leader) {
                // A leader we do not know as a member: our membership is
                // stale. Ask PD next time.
                tree.remove(region_id);
            }
            return;
        }
        let Some(route) = tree.get(region_id) else {
            return;
        };
        let voters: Vec<metapb::Peer> = route.voters().copied().collect();
        if let Some(pos) = voters.iter().position(|p| *p == tried) {
            let next = voters[(pos + 1) % voters.len()];
            tree.set_leader(region_id, next);
        }
    }

    /// The region changed: `current` are the regions now covering its old
    /// range, as the store on `store_id` (which led it) knows them.
    pub(crate) fn on_epoch_not_match(
        &self,
        region_id: u64,
        current: Vec<metapb::Region>,
        store_id: u64,
    ) {
        let mut tree = self.tree_mut();
        if current.is_empty() {
            tree.remove(region_id);
            return;
        }
        for region in current {
            let mut route = RegionRoute {
                region,
                leader: None,
            };
            route.leader = route.peer_on(store_id);
            tree.insert(route);
        }
    }

    /// Forgets region `region_id`: the next lookup asks PD.
    pub(crate) fn invalidate(&self, region_id: u64) {
        self.tree_mut().remove(region_id);
    }

    /// The address of store `store_id`, from the cache or PD.
    pub(crate) async fn store_addr(&self, store_id: u64, deadline: Instant) -> Result<String> {
        if let Some(addr) = self.stores().get(&store_id) {
            return Ok(addr.clone());
        }
        let info = tokio::time::timeout_at(deadline, self.pd.get_store(store_id))
            .await
            .map_err(|_| out_of_time("looking up the store's address in PD"))??;
        let store = info.store.unwrap_or_default();
        if store.state() == StoreState::Tombstone {
            return Err(Error::Pd(PdError::StoreTombstone(format!(
                "store {store_id} was removed from the cluster"
            ))));
        }
        if store.address.is_empty() {
            return Err(Error::Pd(PdError::StoreNotFound(format!(
                "store {store_id} has no address"
            ))));
        }
        self.stores().insert(store_id, store.address.clone());
        Ok(store.address)
    }

    /// Forgets store `store_id`'s address (it may have moved).
    pub(crate) fn invalidate_store(&self, store_id: u64) {
        self.stores().remove(&store_id);
    }

    fn stores(&self) -> std::sync::MutexGuard<'_, HashMap<u64, String>> {
        self.stores.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The error of a PD lookup cut short by the call's deadline (the call
/// reports it as its own timeout).
fn out_of_time(what: &str) -> Error {
    Error::Timeout {
        after: std::time::Duration::ZERO,
        last: format!("{what}: the call's deadline passed"),
    }
}

/// A route from PD's answer; `None` for an answer without a region.
fn route_from_pd(info: pdpb::RegionInfo) -> Option<RegionRoute> {
    let region = info.region?;
    let leader = info.leader.filter(|l| l.id != 0);
    Some(RegionRoute { region, leader })
}
