//! The snapshot directory and everything done to the files in it.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flotilla_proto::metapb;
use parking_lot::Mutex;
use rocksdb::{ReadOptions, WriteBatch};

use super::format::{self, Encoder, Pair, Summary, MAX_KEY_BYTES};
use super::{SnapChunks, SnapError, SnapKey, SnapWriter, SnapshotData, TMP_SUFFIX};
use crate::engine::{Engine, CF_DEFAULT};

/// Owns the snapshot directory: builds, streams, receives, applies and
/// removes snapshot files. Cheap to clone; clones share the directory and
/// the set of snapshots being written.
#[derive(Clone, Debug)]
pub struct SnapManager {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    /// Keys being built or received. Invariant: a key's `.tmp` file is
    /// written only while the key is in this set, by its claimant.
    writing: Mutex<HashSet<SnapKey>>,
}

/// A key's place in [`Inner::writing`], given up on drop.
#[derive(Debug)]
pub(super) struct Claim {
    inner: Arc<Inner>,
    key: SnapKey,
}

impl Claim {
    /// The claimed key.
    pub(super) fn key(&self) -> SnapKey {
        self.key
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.inner.writing.lock().remove(&self.key);
    }
}

impl SnapManager {
    /// Opens the snapshot directory `dir`, creating it if needed, and
    /// removes the `.tmp` files a crash left behind (no transfer survives a
    /// restart, so none of them will ever be completed).
    pub fn new(dir: PathBuf) -> Result<SnapManager, SnapError> {
        fs::create_dir_all(&dir).map_err(SnapError::io(&dir))?;
        for (name, path) in list_files(&dir)? {
            if name.ends_with(TMP_SUFFIX) {
                fs::remove_file(&path).map_err(SnapError::io(&path))?;
            }
        }
        let inner = Inner {
            dir,
            writing: Mutex::new(HashSet::new()),
        };
        Ok(SnapManager {
            inner: Arc::new(inner),
        })
    }

    /// The snapshot directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Writes the snapshot file of `region`'s user data (CF `default` over
    /// `[start_key, end_key)`, an empty end key meaning the end of the key
    /// space) as of now, from one RocksDB snapshot; returns what the
    /// receiver needs to check it. A complete file already there for `key`
    /// is reused (the same key means the same applied state; checking it
    /// reads it whole); a damaged one is rebuilt.
    pub fn build(
        &self,
        engine: &Engine,
        key: SnapKey,
        region: &metapb::Region,
    ) -> Result<SnapshotData, SnapError> {
        let _claim = self.claim(key)?;
        check_range(region)?;
        let summary = match self.reuse(key)? {
            Some(summary) => summary,
            None => self.write_new(engine, key, region)?,
        };
        Ok(SnapshotData {
            region: Some(region.clone()),
            file_size: summary.size_bytes,
            checksum: summary.checksum,
            kv_count: summary.kv_count,
        })
    }

    /// Streams `key`'s complete file in chunks of `chunk_size` bytes (the
    /// last one shorter; a zero size is taken as 1).
    pub fn chunks(&self, key: SnapKey, chunk_size: usize) -> Result<SnapChunks, SnapError> {
        let path = self.path(key);
        let file = open_existing(&path, key)?;
        let size_bytes = file.metadata().map_err(SnapError::io(&path))?.len();
        Ok(SnapChunks::new(file, path, size_bytes, chunk_size))
    }

    /// Starts receiving `key`'s file, announced by `expected`. The chunks go
    /// to a `.tmp` file that [`SnapWriter::finish`] checks and renames;
    /// writing more than `expected.file_size` bytes is refused.
    pub fn receiver(&self, key: SnapKey, expected: &SnapshotData) -> Result<SnapWriter, SnapError> {
        let claim = self.claim(key)?;
        let (tmp, path) = (self.tmp_path(key), self.path(key));
        let file = File::create(&tmp).map_err(SnapError::io(&tmp))?;
        Ok(SnapWriter::new(claim, file, tmp, path, expected))
    }

    /// Checks `key`'s file against `data` (region ID, size, checksum,
    /// layout, pair count, every key inside `data.region`), then adds to `wb` a delete of
    /// the region's whole range in CF `default` followed by a put of every
    /// pair. The whole file is read and checked before `wb` is touched, so
    /// on error `wb` is as it was. The file is held in memory meanwhile; so
    /// is the batch, which is as large.
    pub fn apply(
        &self,
        engine: &Engine,
        key: SnapKey,
        data: &SnapshotData,
        wb: &mut WriteBatch,
    ) -> Result<(), SnapError> {
        let region = data
            .region
            .as_ref()
            .ok_or_else(|| SnapError::corrupt(key.to_string(), "snapshot data has no region"))?;
        if region.id != key.region_id {
            let detail = format!("data is of region {}", region.id);
            return Err(SnapError::corrupt(key.to_string(), detail));
        }
        check_range(region)?;
        let buf = self.read_checked(key, data)?;
        let pairs = format::decode(&buf).map_err(|e| SnapError::corrupt(key.to_string(), e))?;
        if pairs.len() as u64 != data.kv_count {
            let detail = format!("{} pairs, {} announced", pairs.len(), data.kv_count);
            return Err(SnapError::corrupt(key.to_string(), detail));
        }
        check_keys_in_range(key, region, &pairs)?;
        let cf = engine.cf(CF_DEFAULT);
        wb.delete_range_cf(cf, &region.start_key[..], &range_end(region));
        for (k, v) in pairs {
            wb.put_cf(cf, k, v);
        }
        Ok(())
    }

    /// Removes `key`'s file, if any.
    pub fn delete(&self, key: SnapKey) -> Result<(), SnapError> {
        remove_if_exists(&self.path(key))
    }

    /// Whether a complete file exists for `key`.
    pub fn exists(&self, key: SnapKey) -> bool {
        self.path(key).is_file()
    }

    /// Removes every complete snapshot file whose key `keep` rejects;
    /// returns how many. Files being written and names that are not
    /// snapshot keys are left alone.
    pub fn gc(&self, keep: impl Fn(&SnapKey) -> bool) -> Result<usize, SnapError> {
        let mut removed = 0;
        for (name, path) in list_files(self.dir())? {
            match SnapKey::from_file_name(&name) {
                Some(key) if !keep(&key) => {
                    remove_if_exists(&path)?;
                    removed += 1;
                }
                _ => {}
            }
        }
        Ok(removed)
    }

    fn path(&self, key: SnapKey) -> PathBuf {
        self.inner.dir.join(key.file_name())
    }

    fn tmp_path(&self, key: SnapKey) -> PathBuf {
        self.inner.dir.join(key.tmp_file_name())
    }

    /// Reserves `key` for building or receiving.
    fn claim(&self, key: SnapKey) -> Result<Claim, SnapError> {
        if !self.inner.writing.lock().insert(key) {
            return Err(SnapError::Busy(key));
        }
        Ok(Claim {
            inner: self.inner.clone(),
            key,
        })
    }

    /// The summary of `key`'s existing file if it is complete and sound;
    /// a damaged file is removed.
    fn reuse(&self, key: SnapKey) -> Result<Option<Summary>, SnapError> {
        let path = self.path(key);
        let buf = match fs::read(&path) {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(SnapError::io(&path)(e)),
        };
        match format::decode(&buf) {
            Ok(pairs) => Ok(Some(Summary {
                size_bytes: buf.len() as u64,
                checksum: crc32fast::hash(&buf),
                kv_count: pairs.len() as u64,
            })),
            Err(e) => {
                tracing::warn!(snapshot = %key, error = %e, "rebuilding a damaged snapshot file");
                remove_if_exists(&path)?;
                Ok(None)
            }
        }
    }

    /// Writes the file to its `.tmp` name, fsyncs it and renames it.
    fn write_new(
        &self,
        engine: &Engine,
        key: SnapKey,
        region: &metapb::Region,
    ) -> Result<Summary, SnapError> {
        let tmp = self.tmp_path(key);
        let written = write_region(engine, region, &tmp)
            .and_then(|summary| persist(&tmp, &self.path(key)).map(|()| summary));
        if written.is_err() {
            // Best effort: `new` removes it after a crash anyway.
            let _ = fs::remove_file(&tmp);
        }
        written
    }

    /// `key`'s whole file, if its size and checksum are `data`'s. The size
    /// is checked first, so only a file of the announced size is loaded.
    fn read_checked(&self, key: SnapKey, data: &SnapshotData) -> Result<Vec<u8>, SnapError> {
        let path = self.path(key);
        let file = open_existing(&path, key)?;
        let size = file.metadata().map_err(SnapError::io(&path))?.len();
        if size != data.file_size {
            let detail = format!("{size} bytes, {} announced", data.file_size);
            return Err(SnapError::corrupt(key.to_string(), detail));
        }
        let mut buf = Vec::new();
        file.take(size)
            .read_to_end(&mut buf)
            .map_err(SnapError::io(&path))?;
        let checksum = crc32fast::hash(&buf);
        if buf.len() as u64 != size || checksum != data.checksum {
            let detail = format!(
                "checksum {checksum:#010x}, {:#010x} announced",
                data.checksum
            );
            return Err(SnapError::corrupt(key.to_string(), detail));
        }
        Ok(buf)
    }
}

/// Writes `region`'s pairs from one RocksDB snapshot to a new file at
/// `path`, fsynced.
fn write_region(
    engine: &Engine,
    region: &metapb::Region,
    path: &Path,
) -> Result<Summary, SnapError> {
    let file = File::create(path).map_err(SnapError::io(path))?;
    let mut enc = Encoder::new(BufWriter::new(file)).map_err(SnapError::io(path))?;
    let snapshot = engine.db().snapshot();
    let mut opts = ReadOptions::default();
    // A snapshot scan reads each block once; keep it out of the cache.
    opts.fill_cache(false);
    if !region.end_key.is_empty() {
        opts.set_iterate_upper_bound(region.end_key.to_vec());
    }
    let mut iter = snapshot.raw_iterator_cf_opt(engine.cf(CF_DEFAULT), opts);
    iter.seek(&region.start_key[..]);
    while let Some((k, v)) = iter.item() {
        if k.len() > MAX_KEY_BYTES {
            let detail = format!("a key of {} bytes exceeds {MAX_KEY_BYTES}", k.len());
            return Err(SnapError::corrupt(format!("region {}", region.id), detail));
        }
        enc.add(k, v).map_err(SnapError::io(path))?;
        iter.next();
    }
    iter.status()?;
    let (out, summary) = enc.finish().map_err(SnapError::io(path))?;
    let file = out
        .into_inner()
        .map_err(|e| SnapError::io(path)(e.into_error()))?;
    file.sync_all().map_err(SnapError::io(path))?;
    Ok(summary)
}

/// Renames the fsynced file `tmp` to `path` and fsyncs the directory, so
/// the complete file survives a crash under its final name.
pub(super) fn persist(tmp: &Path, path: &Path) -> Result<(), SnapError> {
    fs::rename(tmp, path).map_err(SnapError::io(path))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(SnapError::io(dir))
}

/// A region's range must be non-empty: `start_key < end_key` unless the end
/// key is empty (the end of the key space).
fn check_range(region: &metapb::Region) -> Result<(), SnapError> {
    if !region.end_key.is_empty() && region.start_key >= region.end_key {
        let detail = "start key is not below end key";
        return Err(SnapError::corrupt(format!("region {}", region.id), detail));
    }
    Ok(())
}

/// The exclusive end of `region`'s range as a range-delete bound.
fn range_end(region: &metapb::Region) -> Vec<u8> {
    if region.end_key.is_empty() {
        format::key_space_end()
    } else {
        region.end_key.to_vec()
    }
}

/// Every key (ascending, as the decoder guarantees) lies in `region`.
fn check_keys_in_range(
    key: SnapKey,
    region: &metapb::Region,
    pairs: &[Pair<'_>],
) -> Result<(), SnapError> {
    let (Some((first, _)), Some((last, _))) = (pairs.first(), pairs.last()) else {
        return Ok(());
    };
    let below_end = region.end_key.is_empty() || *last < &region.end_key[..];
    if *first < &region.start_key[..] || !below_end {
        let detail = format!("keys outside region {}'s range", region.id);
        return Err(SnapError::corrupt(key.to_string(), detail));
    }
    Ok(())
}

fn open_existing(path: &Path, key: SnapKey) -> Result<File, SnapError> {
    File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => SnapError::Missing(key),
        _ => SnapError::io(path)(e),
    })
}

fn remove_if_exists(path: &Path) -> Result<(), SnapError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(SnapError::io(path)(e)),
        _ => Ok(()),
    }
}

/// The regular files in `dir` with UTF-8 names: `(name, path)`.
fn list_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, SnapError> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(SnapError::io(dir))? {
        let entry = entry.map_err(SnapError::io(dir))?;
        let is_file = entry.file_type().map_err(SnapError::io(dir))?.is_file();
        if let (true, Ok(name)) = (is_file, entry.file_name().into_string()) {
            files.push((name, entry.path()));
        }
    }
    Ok(files)
}
