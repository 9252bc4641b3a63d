//! Building a new leader's [`Cluster`] from the replicated metadata, so it
//! routes at once instead of waiting for every region's heartbeat.

use std::sync::Arc;

use bytes::Bytes;
use flotilla_proto::{metapb, pdpb};
use prost::Message as _;

use super::{convert, Cluster};
use crate::schedule::{ScheduleConfig, SchedulerRegistry};
use crate::storage::meta::{
    BOOTSTRAP_KEY, REGION_PREFIX, SCHEDULERS_KEY, SCHEDULE_CONFIG_KEY, STORE_PREFIX,
};
use crate::storage::{Engine, StorageError, CF_META};

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt {
        what: what.into(),
        detail: detail.to_string(),
    }
}

impl Cluster {
    /// Loads stores, regions, the bootstrap record and the scheduling
    /// configuration (falling back to `default_config` if none was ever
    /// set through the API). Every store gets a fresh heartbeat grace
    /// period from `now_ms`.
    pub fn load(
        engine: &Engine,
        default_config: ScheduleConfig,
        now_ms: u64,
    ) -> Result<Cluster, StorageError> {
        let config = match engine.get(CF_META, SCHEDULE_CONFIG_KEY)? {
            Some(v) => serde_json::from_slice(&v).map_err(|e| corrupt("schedule config", e))?,
            None => default_config,
        };
        let mut cluster = Cluster::new(config);
        if let Some(v) = engine.get(CF_META, SCHEDULERS_KEY)? {
            let names: Vec<String> =
                serde_json::from_slice(&v).map_err(|e| corrupt("scheduler list", e))?;
            let mut registry = SchedulerRegistry::new();
            for name in names {
                registry
                    .add(&name)
                    .map_err(|e| corrupt("scheduler list", e))?;
            }
            cluster.registry = registry;
        }
        for (key, value) in engine.scan_prefix(CF_META, STORE_PREFIX)? {
            let store = metapb::Store::decode(&*value)
                .map_err(|e| corrupt(&String::from_utf8_lossy(&key), e))?;
            cluster.apply_store(store, now_ms);
        }
        if let Some(v) = engine.get(CF_META, BOOTSTRAP_KEY)? {
            cluster.bootstrap =
                Some(metapb::Region::decode(&*v).map_err(|e| corrupt("bootstrap record", e))?);
        }
        for (key, value) in engine.scan_prefix(CF_META, REGION_PREFIX)? {
            let what = String::from_utf8_lossy(&key).into_owned();
            let info = pdpb::RegionInfo::decode(Bytes::from(value.into_vec()))
                .map_err(|e| corrupt(&what, e))?;
            let view = convert::region_from_wire(info.region.as_ref(), info.leader.as_ref())
                .map_err(|e| corrupt(&what, e))?;
            // Persisted regions never overlap (they were checked on the way
            // in), so inserting in any order rebuilds the same tree.
            let view = Arc::new(view);
            cluster.tree.insert(view.clone());
            cluster.view.put_region(view);
        }
        Ok(cluster)
    }
}
