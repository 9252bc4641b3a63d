//! The store's one RocksDB: opening it with its column families, and the
//! error type for everything that reads or writes it.

pub mod keys;
pub mod local;

use std::path::Path;
use std::sync::Arc;

use rocksdb::{BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, Options, DB};

use crate::config::EngineConfig;

/// User data, keyed by the user key.
pub const CF_DEFAULT: &str = "default";
/// Raft logs and hard states of all regions.
pub const CF_RAFT: &str = "raft";
/// Region local and apply states; the store's identity.
pub const CF_META: &str = "meta";

/// A storage failure, or bytes on disk that do not decode.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// RocksDB reported an error.
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// A record does not decode: corruption or a foreign data directory.
    #[error("corrupt store data at {what}: {detail}")]
    Corrupt {
        /// Which record.
        what: String,
        /// What was wrong.
        detail: String,
    },
}

impl EngineError {
    /// A corruption error.
    pub fn corrupt(what: impl Into<String>, detail: impl std::fmt::Display) -> EngineError {
        EngineError::Corrupt {
            what: what.into(),
            detail: detail.to_string(),
        }
    }
}

/// The store's RocksDB. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    db: Arc<DB>,
}

impl Engine {
    /// Opens (creating if needed) the database under `dir`, with the
    /// default [`EngineConfig`].
    pub fn open(dir: &Path) -> Result<Engine, EngineError> {
        Engine::open_with(dir, &EngineConfig::default())
    }

    /// Opens (creating if needed) the database under `dir`.
    pub fn open_with(dir: &Path, cfg: &EngineConfig) -> Result<Engine, EngineError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_max_background_jobs(2);
        // One block cache for all families (RocksDB's default is a small
        // cache per family).
        let cache = Cache::new_lru_cache(cfg.block_cache_size.as_u64() as usize);
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&cache);
        let mut cf_opts = Options::default();
        cf_opts.set_block_based_table_factory(&table);
        let cfs = [CF_DEFAULT, CF_RAFT, CF_META]
            .into_iter()
            .map(|name| ColumnFamilyDescriptor::new(name, cf_opts.clone()));
        let db = DB::open_cf_descriptors(&opts, dir, cfs)?;
        Ok(Engine { db: Arc::new(db) })
    }

    /// The database.
    pub fn db(&self) -> &DB {
        &self.db
    }

    /// A column family handle.
    pub fn cf(&self, name: &str) -> &ColumnFamily {
        // All three families are created at open; a missing one is a bug.
        self.db
            .cf_handle(name)
            .unwrap_or_else(|| panic!("column family {name} was not opened"))
    }

    /// Reads one key.
    pub fn get(&self, cf: &str, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        Ok(self.db.get_cf(self.cf(cf), key)?)
    }

    /// Reads and decodes one protobuf record.
    pub fn get_msg<M: prost::Message + Default>(
        &self,
        cf: &str,
        key: &[u8],
    ) -> Result<Option<M>, EngineError> {
        match self.get(cf, key)? {
            None => Ok(None),
            Some(v) => M::decode(&*v)
                .map(Some)
                .map_err(|e| EngineError::corrupt(format!("{cf}/{key:?}"), e)),
        }
    }

    /// Commits a write batch; with `sync`, fsyncs the WAL first.
    pub fn write(&self, batch: rocksdb::WriteBatch, sync: bool) -> Result<(), EngineError> {
        self.write_opt(batch, sync, true)
    }

    /// Commits a batch the store then acknowledges (a Raft round's log
    /// and hard state; an apply batch's data): [`write`](Self::write),
    /// unless the planted `ack-before-persist` bug is on — then the batch
    /// skips the WAL, and a kill loses what was acknowledged.
    pub fn write_acknowledged(
        &self,
        batch: rocksdb::WriteBatch,
        sync: bool,
    ) -> Result<(), EngineError> {
        let wal = !crate::planted::on(crate::planted::Bug::AckBeforePersist);
        self.write_opt(batch, sync && wal, wal)
    }

    fn write_opt(
        &self,
        batch: rocksdb::WriteBatch,
        sync: bool,
        wal: bool,
    ) -> Result<(), EngineError> {
        let mut opts = rocksdb::WriteOptions::default();
        opts.set_sync(sync);
        opts.disable_wal(!wal);
        self.db.write_opt(batch, &opts)?;
        Ok(())
    }
}
