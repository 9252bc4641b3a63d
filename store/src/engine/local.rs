//! The store's own records: its identity, and the regions it hosts (read at
//! start to recreate their peers).

use flotilla_proto::metapb;
use flotilla_proto::raft_serverpb::{PeerState, RegionLocalState, StoreIdent};
use prost::Message as _;
use rocksdb::WriteBatch;

use super::keys::{region_id_of_state_key, STORE_IDENT_KEY};
use super::{Engine, EngineError, CF_META};

/// This store's identity, if it was ever registered.
pub fn store_ident(engine: &Engine) -> Result<Option<StoreIdent>, EngineError> {
    engine.get_msg(CF_META, STORE_IDENT_KEY)
}

/// Records this store's identity (fsynced: a store that forgot its ID
/// would register again as a new store with the old one's data).
pub fn write_store_ident(engine: &Engine, ident: &StoreIdent) -> Result<(), EngineError> {
    if let Some(existing) = store_ident(engine)? {
        if existing != *ident {
            return Err(EngineError::corrupt(
                "store ident",
                format!(
                    "data dir belongs to store {} of cluster {}",
                    existing.store_id, existing.cluster_id
                ),
            ));
        }
        return Ok(());
    }
    let mut wb = WriteBatch::default();
    wb.put_cf(engine.cf(CF_META), STORE_IDENT_KEY, ident.encode_to_vec());
    engine.write(wb, true)
}

/// Every region this store has a state for, tombstones included, in ID
/// order.
pub fn region_states(engine: &Engine) -> Result<Vec<RegionLocalState>, EngineError> {
    let mut out = Vec::new();
    let mut iter = engine.db().raw_iterator_cf(engine.cf(CF_META));
    iter.seek_to_first();
    while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
        if let Some(id) = region_id_of_state_key(key) {
            let state = RegionLocalState::decode(value)
                .map_err(|e| EngineError::corrupt(format!("region {id} state"), e))?;
            out.push(state);
        }
        iter.next();
    }
    iter.status()?;
    Ok(out)
}

/// The regions to start peers for: every non-tombstone region state.
pub fn live_regions(engine: &Engine) -> Result<Vec<metapb::Region>, EngineError> {
    Ok(region_states(engine)?
        .into_iter()
        .filter(|s| s.state != PeerState::Tombstone as i32)
        .filter_map(|s| s.region)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::storage::write_initial_state;

    #[test]
    fn ident_is_written_once_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        assert_eq!(store_ident(&engine).unwrap(), None);
        let ident = StoreIdent {
            cluster_id: 7,
            store_id: 3,
        };
        write_store_ident(&engine, &ident).unwrap();
        write_store_ident(&engine, &ident).unwrap();
        let other = StoreIdent {
            cluster_id: 7,
            store_id: 4,
        };
        assert!(write_store_ident(&engine, &other).is_err());
        drop(engine);
        let engine = Engine::open(dir.path()).unwrap();
        assert_eq!(store_ident(&engine).unwrap(), Some(ident));
    }

    #[test]
    fn live_regions_skip_tombstones() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        let mut wb = WriteBatch::default();
        for id in [2u64, 300, 5] {
            let region = metapb::Region {
                id,
                peers: vec![metapb::Peer {
                    id: id * 10,
                    store_id: 1,
                    role: 0,
                }],
                ..Default::default()
            };
            write_initial_state(&mut wb, &engine, &region);
        }
        let tomb = RegionLocalState {
            state: PeerState::Tombstone as i32,
            region: Some(metapb::Region {
                id: 9,
                ..Default::default()
            }),
        };
        wb.put_cf(
            engine.cf(CF_META),
            super::super::keys::region_state_key(9),
            tomb.encode_to_vec(),
        );
        write_store_ident_batch(&mut wb, &engine);
        engine.write(wb, true).unwrap();
        let ids: Vec<u64> = live_regions(&engine)
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, vec![2, 5, 300]);
        assert_eq!(region_states(&engine).unwrap().len(), 4);
    }

    fn write_store_ident_batch(wb: &mut WriteBatch, engine: &Engine) {
        let ident = StoreIdent {
            cluster_id: 1,
            store_id: 1,
        };
        wb.put_cf(engine.cf(CF_META), STORE_IDENT_KEY, ident.encode_to_vec());
    }
}
