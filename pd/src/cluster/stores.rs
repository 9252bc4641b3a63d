//! Stores: registration, heartbeats, decommission, and the liveness state
//! derived from heartbeat silence.

use flotilla_proto::{metapb, pdpb};

use super::{Cluster, StoreRecord};
use crate::error::PdError;
use crate::schedule::{StoreState, StoreView};

/// Longest label key or value.
const MAX_LABEL_BYTES: usize = 128;
/// Most labels per store.
const MAX_LABELS: usize = 16;

fn is_tombstone(meta: &metapb::Store) -> bool {
    meta.state == metapb::StoreState::Tombstone as i32
}

impl Cluster {
    /// Checks a store registration and returns the record to persist: the
    /// registration's address, labels and version, with the administrative
    /// state PD already holds (a store cannot undo its own decommission).
    pub fn check_put_store(&self, store: Option<&metapb::Store>) -> Result<metapb::Store, PdError> {
        let store = store.ok_or_else(|| PdError::InvalidArgument("store is missing".into()))?;
        if store.id == 0 {
            return Err(PdError::InvalidArgument("store id 0 is invalid".into()));
        }
        validate_address(&store.address)?;
        validate_labels(&store.labels)?;
        for (id, other) in &self.stores {
            if *id != store.id && other.meta.address == store.address && !is_tombstone(&other.meta)
            {
                return Err(PdError::DuplicatedAddress {
                    address: store.address.clone(),
                    owner: *id,
                });
            }
        }
        let mut record = store.clone();
        match self.stores.get(&store.id) {
            Some(existing) if is_tombstone(&existing.meta) => {
                return Err(PdError::StoreTombstone(store.id))
            }
            Some(existing) => record.state = existing.meta.state,
            None => record.state = metapb::StoreState::Up as i32,
        }
        Ok(record)
    }

    /// Makes a persisted store record current.
    pub fn apply_store(&mut self, meta: metapb::Store, now_ms: u64) {
        let record = self.stores.entry(meta.id).or_insert_with(|| StoreRecord {
            meta: meta.clone(),
            stats: pdpb::StoreStats::default(),
            last_heartbeat_ms: now_ms,
            heard: false,
        });
        let id = meta.id;
        record.meta = meta;
        self.refresh_store(id, now_ms);
    }

    /// Records a store heartbeat.
    pub fn store_heartbeat(
        &mut self,
        stats: &pdpb::StoreStats,
        now_ms: u64,
    ) -> Result<(), PdError> {
        let record = self
            .stores
            .get_mut(&stats.store_id)
            .ok_or(PdError::StoreNotFound(stats.store_id))?;
        if is_tombstone(&record.meta) {
            return Err(PdError::StoreTombstone(stats.store_id));
        }
        if stats.available > stats.capacity && stats.capacity != 0 {
            return Err(PdError::InvalidArgument(format!(
                "store {}: available {} exceeds capacity {}",
                stats.store_id, stats.available, stats.capacity
            )));
        }
        record.stats = *stats;
        record.last_heartbeat_ms = now_ms;
        record.heard = true;
        self.refresh_store(stats.store_id, now_ms);
        Ok(())
    }

    /// Re-derives every store's state (heartbeat silence moves Up stores to
    /// Disconnected and Down).
    pub fn refresh_store_states(&mut self, now_ms: u64) {
        let ids: Vec<u64> = self.stores.keys().copied().collect();
        for id in ids {
            self.refresh_store(id, now_ms);
        }
    }

    fn refresh_store(&mut self, id: u64, now_ms: u64) {
        let Some(record) = self.stores.get(&id) else {
            return;
        };
        let state = StoreState::derive(
            is_tombstone(&record.meta),
            record.meta.state == metapb::StoreState::Offline as i32,
            record.last_heartbeat_ms,
            now_ms,
            &self.schedule_config,
        );
        let mut view = self
            .view
            .store(id)
            .cloned()
            .unwrap_or_else(|| StoreView::new(id, "", state));
        view.address = record.meta.address.clone();
        view.state = state;
        view.labels = record
            .meta
            .labels
            .iter()
            .map(|l| (l.key.clone(), l.value.clone()))
            .collect();
        view.capacity_bytes = record.stats.capacity;
        view.available_bytes = record.stats.available;
        view.last_heartbeat_ms = record.last_heartbeat_ms;
        self.view.put_store(view);
    }

    /// The record marking a store Offline (decommission): its replicas will
    /// move away, then it becomes a tombstone.
    pub fn check_decommission(&self, id: u64) -> Result<metapb::Store, PdError> {
        let record = self.stores.get(&id).ok_or(PdError::StoreNotFound(id))?;
        if is_tombstone(&record.meta) {
            return Err(PdError::StoreTombstone(id));
        }
        let mut meta = record.meta.clone();
        meta.state = metapb::StoreState::Offline as i32;
        Ok(meta)
    }

    /// Offline stores that hold no replica any more: ready to become
    /// tombstones (records to persist).
    pub fn drained_offline_stores(&self) -> Vec<metapb::Store> {
        self.stores
            .values()
            .filter(|s| s.meta.state == metapb::StoreState::Offline as i32)
            .filter(|s| {
                self.view
                    .store(s.meta.id)
                    .is_some_and(|v| v.region_count == 0)
            })
            .map(|s| {
                let mut meta = s.meta.clone();
                meta.state = metapb::StoreState::Tombstone as i32;
                meta
            })
            .collect()
    }

    /// One store as the API reports it.
    pub fn store_info(&self, id: u64, now_ms: u64) -> Option<pdpb::StoreInfo> {
        let record = self.stores.get(&id)?;
        let state = self.view.store_state(id);
        let health = match state {
            StoreState::Up => pdpb::StoreHealth::HealthUp,
            StoreState::Disconnected => pdpb::StoreHealth::HealthDisconnected,
            StoreState::Down => pdpb::StoreHealth::HealthDown,
            StoreState::Offline => pdpb::StoreHealth::HealthOffline,
            StoreState::Tombstone => pdpb::StoreHealth::HealthTombstone,
        };
        let mut stats = record.stats;
        if let Some(view) = self.view.store(id) {
            stats.region_count = view.region_count as u32;
            stats.leader_count = view.leader_count as u32;
        }
        Some(pdpb::StoreInfo {
            store: Some(record.meta.clone()),
            health: health as i32,
            stats: Some(stats),
            ms_since_heartbeat: if record.heard {
                now_ms.saturating_sub(record.last_heartbeat_ms)
            } else {
                0
            },
        })
    }

    /// Every store, optionally without tombstones.
    pub fn all_stores(&self, exclude_tombstone: bool, now_ms: u64) -> Vec<pdpb::StoreInfo> {
        self.stores
            .values()
            .filter(|s| !(exclude_tombstone && is_tombstone(&s.meta)))
            .filter_map(|s| self.store_info(s.meta.id, now_ms))
            .collect()
    }
}

fn validate_address(address: &str) -> Result<(), PdError> {
    let bad = || PdError::InvalidArgument(format!("store address {address:?} is not host:port"));
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    // Digits only: `parse` alone would take "+80".
    let port_ok = !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok_and(|p| p != 0);
    // A hostname or IPv4 address, or a bracketed IPv6 address; no scheme,
    // path or whitespace (stores and clients dial this string as is).
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        }
    };
    if !host_ok || !port_ok || address.len() > 255 {
        return Err(bad());
    }
    Ok(())
}

fn validate_labels(labels: &[metapb::StoreLabel]) -> Result<(), PdError> {
    if labels.len() > MAX_LABELS {
        return Err(PdError::InvalidArgument(format!(
            "more than {MAX_LABELS} store labels"
        )));
    }
    for (i, l) in labels.iter().enumerate() {
        let ok = |s: &str| !s.is_empty() && s.len() <= MAX_LABEL_BYTES && !s.contains(['=', ',']);
        if !ok(&l.key) || !ok(&l.value) {
            return Err(PdError::InvalidArgument(format!(
                "store label {:?}={:?} must be 1 to {MAX_LABEL_BYTES} bytes without '=' or ','",
                l.key, l.value
            )));
        }
        if labels[..i].iter().any(|o| o.key == l.key) {
            return Err(PdError::InvalidArgument(format!(
                "store label {:?} given twice",
                l.key
            )));
        }
    }
    Ok(())
}
