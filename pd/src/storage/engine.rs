//! Opening PD's RocksDB and the few raw operations the rest of the crate
//! needs.

use std::path::Path;
use std::sync::Arc;

use rocksdb::{ColumnFamilyDescriptor, Options, WriteBatch, WriteOptions, DB};

/// Column family of the Raft log and hard state.
pub const CF_RAFT: &str = "raft";
/// Column family of the replicated state machine.
pub const CF_META: &str = "meta";

/// A storage failure. PD cannot continue safely after one (a half-written
/// log would diverge from its peers), so callers stop the member.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// RocksDB reported an error.
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// Bytes on disk do not decode: corruption or a foreign data directory.
    #[error("corrupt PD data at {what}: {detail}")]
    Corrupt {
        /// Which record.
        what: String,
        /// What was wrong with it.
        detail: String,
    },
}

/// A key and its value, as read back from RocksDB.
pub type KvPair = (Box<[u8]>, Box<[u8]>);

/// PD's RocksDB. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    db: Arc<DB>,
}

impl Engine {
    /// Opens (creating if needed) the database under `dir`.
    pub fn open(dir: &Path) -> Result<Engine, StorageError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        // PD's data is small (100k regions is tens of MiB): modest buffers.
        opts.set_write_buffer_size(16 << 20);
        opts.set_max_background_jobs(2);
        let cfs = [CF_RAFT, CF_META]
            .into_iter()
            .map(|name| ColumnFamilyDescriptor::new(name, Options::default()));
        let db = DB::open_cf_descriptors(&opts, dir, cfs)?;
        Ok(Engine { db: Arc::new(db) })
    }

    /// Reads one key of column family `cf`.
    pub fn get(&self, cf: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.db.get_cf(self.cf(cf), key)?)
    }

    /// Reads a u64 record (big-endian); a value of another length is
    /// corruption, not zero.
    pub fn get_u64(&self, cf: &str, key: &[u8]) -> Result<Option<u64>, StorageError> {
        match self.get(cf, key)? {
            None => Ok(None),
            Some(v) => super::meta::decode_u64(&v)
                .map(Some)
                .ok_or_else(|| StorageError::Corrupt {
                    what: String::from_utf8_lossy(key).into_owned(),
                    detail: format!("{} bytes, not 8", v.len()),
                }),
        }
    }

    /// All `(key, value)` pairs of `cf` whose key starts with `prefix`, in
    /// key order.
    pub fn scan_prefix(&self, cf: &str, prefix: &[u8]) -> Result<Vec<KvPair>, StorageError> {
        let mode = rocksdb::IteratorMode::From(prefix, rocksdb::Direction::Forward);
        let mut out = Vec::new();
        for item in self.db.iterator_cf(self.cf(cf), mode) {
            let (k, v) = item?;
            if !k.starts_with(prefix) {
                break;
            }
            out.push((k, v));
        }
        Ok(out)
    }

    /// Starts a write batch.
    pub fn batch(&self) -> Batch<'_> {
        Batch {
            engine: self,
            wb: WriteBatch::default(),
        }
    }

    fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        // Both families are created at open; a missing one is a bug here.
        self.db
            .cf_handle(name)
            .unwrap_or_else(|| panic!("column family {name} was not opened"))
    }
}

/// A write batch over PD's column families, committed atomically.
pub struct Batch<'a> {
    engine: &'a Engine,
    wb: WriteBatch,
}

impl Batch<'_> {
    /// Queues a put.
    pub fn put(&mut self, cf: &str, key: &[u8], value: &[u8]) {
        self.wb.put_cf(self.engine.cf(cf), key, value);
    }

    /// Queues a delete.
    pub fn delete(&mut self, cf: &str, key: &[u8]) {
        self.wb.delete_cf(self.engine.cf(cf), key);
    }

    /// Queues the deletion of every key in `[start, end)`.
    pub fn delete_range(&mut self, cf: &str, start: &[u8], end: &[u8]) {
        self.wb.delete_range_cf(self.engine.cf(cf), start, end);
    }

    /// True if nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.wb.is_empty()
    }

    /// Commits the batch; with `sync`, fsyncs the WAL before returning.
    pub fn commit(self, sync: bool) -> Result<(), StorageError> {
        if self.wb.is_empty() {
            return Ok(());
        }
        let mut opts = WriteOptions::default();
        opts.set_sync(sync);
        self.engine.db.write_opt(self.wb, &opts)?;
        Ok(())
    }
}
