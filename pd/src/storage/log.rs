//! The Raft log of PD's one group: an in-memory copy (raftcore's
//! [`MemStorage`]) backed by the `raft` column family, and snapshots cut
//! on demand from the `meta` column family.
//!
//! PD's log is short — it is compacted every few thousand entries — so
//! keeping it in memory costs little and makes every read a memory read.
//! Everything in memory was written to RocksDB first.

use bytes::{Buf, BufMut, Bytes};
use raftcore::codec;
use raftcore::{
    ConfState, Entry, HardState, MemStorage, RaftState, Snapshot, SnapshotMetadata, Storage,
};

use super::engine::{Batch, Engine, KvPair, StorageError, CF_META, CF_RAFT};
use super::meta::{self, APPLIED_KEY, CONF_STATE_KEY, DATA_END, DATA_PREFIX};

const HARD_STATE_KEY: &[u8] = b"hs";
const TRUNCATED_KEY: &[u8] = b"trunc";
const ENTRY_PREFIX: u8 = b'e';

fn entry_key(index: u64) -> [u8; 9] {
    let mut key = [ENTRY_PREFIX; 9];
    key[1..].copy_from_slice(&index.to_be_bytes());
    key
}

/// PD's [`Storage`] for raftcore, plus the writes the Raft loop makes.
pub struct LogStorage {
    engine: Engine,
    mem: MemStorage,
    /// Invariant: `mem.first_index() - 1 <= applied`.
    applied: u64,
    /// Membership as of `applied`.
    conf_state: ConfState,
}

impl LogStorage {
    /// Opens the log in `engine`. A data directory that has never held a
    /// log is initialised: with `bootstrap` (a member of a new cluster),
    /// as a snapshot at index 1, term 1 with that membership — identical on
    /// every founding member; without (a member joining a running
    /// cluster), empty, to be filled by the leader's snapshot.
    pub fn open(engine: Engine, bootstrap: Option<ConfState>) -> Result<LogStorage, StorageError> {
        let fresh = engine.get(CF_RAFT, TRUNCATED_KEY)?.is_none()
            && engine.get(CF_RAFT, HARD_STATE_KEY)?.is_none();
        if fresh {
            if let Some(conf_state) = bootstrap {
                return Self::bootstrap(engine, conf_state);
            }
            return Ok(LogStorage {
                engine,
                mem: MemStorage::new(),
                applied: 0,
                conf_state: ConfState::default(),
            });
        }
        Self::load(engine)
    }

    fn bootstrap(engine: Engine, conf_state: ConfState) -> Result<LogStorage, StorageError> {
        let mut batch = engine.batch();
        batch.put(CF_RAFT, TRUNCATED_KEY, &encode_position(1, 1));
        batch.put(CF_META, APPLIED_KEY, &meta::encode_u64(1));
        batch.put(CF_META, CONF_STATE_KEY, &encode_conf_state(&conf_state));
        batch.commit(true)?;
        Self::load(engine)
    }

    fn load(engine: Engine) -> Result<LogStorage, StorageError> {
        let (trunc_index, trunc_term) = match engine.get(CF_RAFT, TRUNCATED_KEY)? {
            Some(v) => decode_position(&v)?,
            None => (0, 0),
        };
        let applied = match engine.get(CF_META, APPLIED_KEY)? {
            Some(v) => {
                meta::decode_u64(&v).ok_or_else(|| corrupt("applied index", "not 8 bytes"))?
            }
            None => 0,
        };
        let conf_state = match engine.get(CF_META, CONF_STATE_KEY)? {
            Some(v) => {
                codec::decode_conf_state(&Bytes::from(v)).map_err(|e| corrupt("conf state", e))?
            }
            None => ConfState::default(),
        };
        let mut mem = MemStorage::new();
        if trunc_index > 0 {
            let snapshot = Snapshot {
                data: Bytes::new(),
                metadata: SnapshotMetadata {
                    conf_state: conf_state.clone(),
                    index: trunc_index,
                    term: trunc_term,
                },
            };
            mem.apply_snapshot(snapshot)
                .map_err(|e| corrupt("truncated position", e))?;
        }
        let mut entries = Vec::new();
        for (key, value) in engine.scan_prefix(CF_RAFT, &[ENTRY_PREFIX])? {
            let entry = codec::decode_entry(&Bytes::from(value.into_vec()))
                .map_err(|e| corrupt(&format!("log entry {key:?}"), e))?;
            if entry.index != trunc_index + 1 + entries.len() as u64 {
                return Err(corrupt("raft log", "entries are not contiguous"));
            }
            entries.push(entry);
        }
        mem.append(&entries);
        if let Some(v) = engine.get(CF_RAFT, HARD_STATE_KEY)? {
            let hs =
                codec::decode_hard_state(&Bytes::from(v)).map_err(|e| corrupt("hard state", e))?;
            mem.set_hard_state(hs);
        }
        mem.set_conf_state(conf_state.clone());
        if applied < trunc_index {
            return Err(corrupt("applied index", "behind the truncated log"));
        }
        Ok(LogStorage {
            engine,
            mem,
            applied,
            conf_state,
        })
    }

    /// The index of the last applied entry.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// The membership as of the applied index.
    pub fn conf_state(&self) -> &ConfState {
        &self.conf_state
    }

    /// The engine underneath.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Persists new entries (replacing any conflicting tail) and the hard
    /// state in one batch, fsynced when `sync`.
    pub fn append(
        &mut self,
        entries: &[Entry],
        hard_state: Option<HardState>,
        sync: bool,
    ) -> Result<(), StorageError> {
        let mut batch = self.engine.batch();
        if let Some(first) = entries.first() {
            let old_last = self.mem.last_index().unwrap_or(0);
            let new_last = first.index + entries.len() as u64 - 1;
            if old_last > new_last {
                batch.delete_range(CF_RAFT, &entry_key(new_last + 1), &entry_key(u64::MAX));
            }
            let mut buf = Vec::new();
            for e in entries {
                buf.clear();
                codec::encode_entry(e, &mut buf);
                batch.put(CF_RAFT, &entry_key(e.index), &buf);
            }
        }
        if let Some(hs) = hard_state {
            let mut buf = Vec::new();
            codec::encode_hard_state(&hs, &mut buf);
            batch.put(CF_RAFT, HARD_STATE_KEY, &buf);
        }
        batch.commit(sync)?;
        self.mem.append(entries);
        if let Some(hs) = hard_state {
            self.mem.set_hard_state(hs);
        }
        Ok(())
    }

    /// Installs a snapshot from the leader: the state machine's data, the
    /// applied index and membership, and an empty log after it — in one
    /// fsynced batch.
    pub fn apply_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
        let md = &snapshot.metadata;
        let pairs = decode_snapshot_data(&snapshot.data)?;
        let mut batch = self.engine.batch();
        batch.delete_range(CF_META, DATA_PREFIX, DATA_END);
        for (k, v) in &pairs {
            batch.put(CF_META, k, v);
        }
        batch.put(CF_META, APPLIED_KEY, &meta::encode_u64(md.index));
        batch.put(CF_META, CONF_STATE_KEY, &encode_conf_state(&md.conf_state));
        batch.delete_range(CF_RAFT, &entry_key(0), &entry_key(u64::MAX));
        batch.put(CF_RAFT, TRUNCATED_KEY, &encode_position(md.index, md.term));
        batch.commit(true)?;
        self.mem
            .apply_snapshot(snapshot.clone())
            .map_err(|e| corrupt("snapshot", e))?;
        self.mem.set_conf_state(md.conf_state.clone());
        self.applied = md.index;
        self.conf_state = md.conf_state.clone();
        Ok(())
    }

    /// Records `applied` (and, after a conf change, the new membership) in
    /// `batch` — a batch of [`engine`](Self::engine) holding the applied
    /// entries' writes — and commits it. Not fsynced: after a crash the entries after
    /// the persisted applied index are applied again, and applying is
    /// idempotent.
    pub fn finish_apply(
        &mut self,
        mut batch: Batch<'_>,
        applied: u64,
        conf_state: Option<ConfState>,
    ) -> Result<(), StorageError> {
        batch.put(CF_META, APPLIED_KEY, &meta::encode_u64(applied));
        if let Some(cs) = &conf_state {
            batch.put(CF_META, CONF_STATE_KEY, &encode_conf_state(cs));
        }
        batch.commit(false)?;
        self.applied = applied;
        if let Some(cs) = conf_state {
            self.mem.set_conf_state(cs.clone());
            self.conf_state = cs;
        }
        Ok(())
    }

    /// Discards log entries up to `applied - keep` once more than
    /// `threshold` applied entries have accumulated; lagging followers then
    /// catch up by snapshot. Returns the new first index if it compacted.
    pub fn maybe_compact(
        &mut self,
        keep: u64,
        threshold: u64,
    ) -> Result<Option<u64>, StorageError> {
        let first = self.mem.first_index().unwrap_or(1);
        if self.applied < first + keep + threshold {
            return Ok(None);
        }
        let index = self.applied - keep;
        let term = self.mem.term(index).map_err(|e| corrupt("log term", e))?;
        let mut batch = self.engine.batch();
        batch.delete_range(CF_RAFT, &entry_key(0), &entry_key(index + 1));
        batch.put(CF_RAFT, TRUNCATED_KEY, &encode_position(index, term));
        batch.commit(false)?;
        self.mem
            .compact(index, self.conf_state.clone(), Bytes::new())
            .map_err(|e| corrupt("log compaction", e))?;
        Ok(Some(index + 1))
    }
}

impl Storage for LogStorage {
    fn initial_state(&self) -> Result<RaftState, raftcore::StorageError> {
        Ok(RaftState {
            hard_state: self.mem.hard_state(),
            conf_state: self.conf_state.clone(),
        })
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: u64,
    ) -> Result<Vec<Entry>, raftcore::StorageError> {
        self.mem.entries(low, high, max_size)
    }

    fn term(&self, index: u64) -> Result<u64, raftcore::StorageError> {
        self.mem.term(index)
    }

    fn first_index(&self) -> Result<u64, raftcore::StorageError> {
        self.mem.first_index()
    }

    fn last_index(&self) -> Result<u64, raftcore::StorageError> {
        self.mem.last_index()
    }

    /// Cuts a snapshot of the state machine as of the applied index. Only
    /// the Raft loop writes `meta`, and it is the caller, so the data read
    /// here is exactly the state at `applied`.
    fn snapshot(&self, request_index: u64, _to: u64) -> Result<Snapshot, raftcore::StorageError> {
        if request_index > self.applied {
            return Err(raftcore::StorageError::SnapshotTemporarilyUnavailable);
        }
        let term = self.mem.term(self.applied)?;
        let pairs = self
            .engine
            .scan_prefix(CF_META, DATA_PREFIX)
            .map_err(|e| raftcore::StorageError::Other(e.to_string()))?;
        Ok(Snapshot {
            data: encode_snapshot_data(&pairs),
            metadata: SnapshotMetadata {
                conf_state: self.conf_state.clone(),
                index: self.applied,
                term,
            },
        })
    }
}

fn encode_snapshot_data(pairs: &[KvPair]) -> Bytes {
    let size: usize = pairs.iter().map(|(k, v)| 8 + k.len() + v.len()).sum();
    let mut out = Vec::with_capacity(size);
    for (k, v) in pairs {
        out.put_u32(k.len() as u32);
        out.put_slice(k);
        out.put_u32(v.len() as u32);
        out.put_slice(v);
    }
    out.into()
}

fn decode_snapshot_data(data: &Bytes) -> Result<Vec<(Bytes, Bytes)>, StorageError> {
    let mut buf = data.clone();
    let mut pairs = Vec::new();
    let take = |buf: &mut Bytes| -> Result<Bytes, StorageError> {
        if buf.remaining() < 4 {
            return Err(corrupt("snapshot data", "truncated length"));
        }
        let len = buf.get_u32() as usize;
        if len > buf.remaining() {
            return Err(corrupt("snapshot data", "length exceeds data"));
        }
        Ok(buf.split_to(len))
    };
    while buf.has_remaining() {
        let key = take(&mut buf)?;
        let value = take(&mut buf)?;
        if !key.starts_with(DATA_PREFIX) {
            return Err(corrupt("snapshot data", "key outside the data range"));
        }
        pairs.push((key, value));
    }
    Ok(pairs)
}

fn encode_conf_state(cs: &ConfState) -> Vec<u8> {
    let mut buf = Vec::new();
    codec::encode_conf_state(cs, &mut buf);
    buf
}

fn encode_position(index: u64, term: u64) -> [u8; 16] {
    let mut out = [0; 16];
    out[..8].copy_from_slice(&index.to_be_bytes());
    out[8..].copy_from_slice(&term.to_be_bytes());
    out
}

fn decode_position(v: &[u8]) -> Result<(u64, u64), StorageError> {
    if v.len() != 16 {
        return Err(corrupt("truncated position", "not 16 bytes"));
    }
    let index = meta::decode_u64(&v[..8]).unwrap_or(0);
    let term = meta::decode_u64(&v[8..]).unwrap_or(0);
    Ok((index, term))
}

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt {
        what: what.to_string(),
        detail: detail.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use raftcore::storage::conformance::{self, StorageBuilder};
    use raftcore::{EntryType, Storage};

    use super::*;

    /// Builds each storage through the write path, then reopens it from
    /// disk, so the suite checks what the load path reads back.
    struct Builder {
        dirs: RefCell<Vec<tempfile::TempDir>>,
    }

    impl StorageBuilder for Builder {
        type S = LogStorage;

        fn build(
            &self,
            snapshot: Snapshot,
            hs: HardState,
            cs: ConfState,
            entries: &[Entry],
        ) -> LogStorage {
            let dir = tempfile::tempdir().unwrap();
            let engine = Engine::open(dir.path()).unwrap();
            let mut s = LogStorage::open(engine.clone(), None).unwrap();
            if !snapshot.is_empty() {
                // The suite's snapshot payload is opaque bytes, not PD's
                // state format; only the metadata matters to the log.
                let snapshot = Snapshot {
                    data: Bytes::new(),
                    ..snapshot
                };
                s.apply_snapshot(&snapshot).unwrap();
            }
            s.append(entries, Some(hs), true).unwrap();
            let applied = s.applied();
            s.finish_apply(engine.batch(), applied, Some(cs)).unwrap();
            drop(s);
            self.dirs.borrow_mut().push(dir);
            LogStorage::open(engine, None).unwrap()
        }
    }

    #[test]
    fn passes_the_raftcore_storage_conformance_suite() {
        conformance::run_all(Builder {
            dirs: RefCell::new(Vec::new()),
        });
    }

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            entry_type: EntryType::Normal,
            data: Bytes::from(format!("e{index}")),
        }
    }

    #[test]
    fn conflicting_tail_is_replaced_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        let mut s = LogStorage::open(engine.clone(), Some(ConfState::with_voters([1]))).unwrap();
        s.append(&[entry(2, 1), entry(3, 1), entry(4, 1)], None, true)
            .unwrap();
        s.append(&[entry(3, 2)], None, true).unwrap();
        let reopened = LogStorage::open(engine, None).unwrap();
        assert_eq!(reopened.last_index(), Ok(3));
        assert_eq!(reopened.term(3), Ok(2));
    }

    #[test]
    fn compaction_keeps_the_tail_and_snapshots_carry_the_state() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        let mut s = LogStorage::open(engine.clone(), Some(ConfState::with_voters([1]))).unwrap();
        let entries: Vec<Entry> = (2..=40).map(|i| entry(i, 1)).collect();
        s.append(&entries, None, true).unwrap();
        let mut batch = engine.batch();
        batch.put(CF_META, b"/x", b"1");
        s.finish_apply(batch, 40, None).unwrap();
        assert_eq!(
            s.maybe_compact(10, 100).unwrap(),
            None,
            "below the threshold"
        );
        assert_eq!(s.maybe_compact(10, 5).unwrap(), Some(31));
        let snap = s.snapshot(30, 2).unwrap();
        assert_eq!((snap.metadata.index, snap.metadata.term), (40, 1));

        // A second member installs it: same data, empty log after it.
        let dir2 = tempfile::tempdir().unwrap();
        let engine2 = Engine::open(dir2.path()).unwrap();
        let mut t = LogStorage::open(engine2.clone(), None).unwrap();
        t.apply_snapshot(&snap).unwrap();
        assert_eq!(
            engine2.get(CF_META, b"/x").unwrap().as_deref(),
            Some(&b"1"[..])
        );
        let t = LogStorage::open(engine2, None).unwrap();
        assert_eq!(
            (t.applied(), t.first_index(), t.last_index()),
            (40, Ok(41), Ok(40))
        );
        assert_eq!(t.conf_state(), &ConfState::with_voters([1]));
    }

    #[test]
    fn corrupt_snapshot_data_is_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        let mut s = LogStorage::open(engine.clone(), None).unwrap();
        let snap = Snapshot {
            data: Bytes::from_static(&[0, 0, 0, 9, b'/']),
            metadata: SnapshotMetadata {
                conf_state: ConfState::with_voters([1]),
                index: 5,
                term: 1,
            },
        };
        assert!(matches!(
            s.apply_snapshot(&snap),
            Err(StorageError::Corrupt { .. })
        ));
        assert_eq!(s.applied(), 0);
        assert_eq!(engine.get(CF_META, APPLIED_KEY).unwrap(), None);
    }
}
