//! A peer's Raft storage: the region's log and hard state in the shared
//! RocksDB (`raft` CF) and its local and apply states (`meta` CF), with a
//! bounded cache of recent entries so a leader replicating to followers
//! rarely reads the disk.
//!
//! Writes are two-phase so that a round's writes for *all* regions go in
//! one batch with one fsync: [`PeerStorage::prepare_append`] adds this
//! peer's entries and hard state to the round's batch; once the batch is
//! durable, [`PeerStorage::finish_append`] makes them visible to raftcore
//! (which must only ever read persisted entries).

use std::cell::Cell;
use std::collections::VecDeque;

use bytes::Bytes;
use flotilla_proto::metapb;
use flotilla_proto::raft_serverpb::{PeerState, RaftApplyState, RegionLocalState};
use prost::Message as _;
use raftcore::codec;
use raftcore::{ConfState, Entry, HardState, RaftState, Snapshot, Storage};
use rocksdb::WriteBatch;

use crate::engine::keys::{apply_state_key, hard_state_key, log_key, region_state_key};
use crate::engine::{Engine, EngineError, CF_META, CF_RAFT};

/// Index and term every initialized region's log starts after (as in
/// TiKV): peers created by bootstrap or split start with identical logs
/// and never need a snapshot of an empty state.
pub const INIT_INDEX: u64 = 5;
/// Term of [`INIT_INDEX`].
pub const INIT_TERM: u64 = 5;
/// Payload bytes of recent entries kept in memory per peer.
pub const CACHE_BYTES: u64 = 1 << 20;

/// The membership a region's peer list describes (joint roles included).
pub fn conf_state_of(region: &metapb::Region) -> ConfState {
    use metapb::PeerRole;
    let mut cs = ConfState::default();
    let mut joint = false;
    for p in &region.peers {
        match PeerRole::try_from(p.role).unwrap_or(PeerRole::Voter) {
            PeerRole::Voter => {
                cs.voters.push(p.id);
                cs.voters_outgoing.push(p.id);
            }
            PeerRole::Learner => cs.learners.push(p.id),
            PeerRole::IncomingVoter => {
                joint = true;
                cs.voters.push(p.id);
            }
            PeerRole::DemotingVoter => {
                joint = true;
                cs.voters_outgoing.push(p.id);
                cs.learners_next.push(p.id);
            }
        }
    }
    if !joint {
        cs.voters_outgoing.clear();
    }
    cs.auto_leave = joint;
    cs
}

/// Adds the initial records of a new, initialized region (bootstrap or
/// split) to `wb`: its local state, an apply state at [`INIT_INDEX`], and a
/// hard state committing it — unless a hard state is there already: an
/// uninitialized peer of the region, created by a message before this
/// store wrote the region, may have voted, and that vote must stand.
pub fn write_initial_state(wb: &mut WriteBatch, engine: &Engine, region: &metapb::Region) {
    put_region_states(wb, engine, region, INIT_INDEX, INIT_TERM);
    let voted = engine
        .get(CF_RAFT, &hard_state_key(region.id))
        .ok()
        .flatten()
        .is_some();
    if voted {
        return;
    }
    let hs = HardState {
        term: INIT_TERM,
        vote: 0,
        commit: INIT_INDEX,
    };
    let mut buf = Vec::new();
    codec::encode_hard_state(&hs, &mut buf);
    wb.put_cf(engine.cf(CF_RAFT), hard_state_key(region.id), buf);
}

/// Adds a normal local state for `region` and an apply state whose log
/// starts after `index` (of `term`), applied up to there.
fn put_region_states(
    wb: &mut WriteBatch,
    engine: &Engine,
    region: &metapb::Region,
    index: u64,
    term: u64,
) {
    let local = RegionLocalState {
        state: PeerState::Normal as i32,
        region: Some(region.clone()),
    };
    let apply = RaftApplyState {
        applied_index: index,
        truncated_index: index,
        truncated_term: term,
    };
    wb.put_cf(
        engine.cf(CF_META),
        region_state_key(region.id),
        local.encode_to_vec(),
    );
    wb.put_cf(
        engine.cf(CF_META),
        apply_state_key(region.id),
        apply.encode_to_vec(),
    );
}

/// One peer's Raft storage.
pub struct PeerStorage {
    engine: Engine,
    region: metapb::Region,
    hard_state: HardState,
    apply_state: RaftApplyState,
    /// Invariant: `apply_state.truncated_index <= last_index`.
    last_index: u64,
    last_term: u64,
    /// Persisted entries `[cache.front().index, last_index]`, bounded by
    /// [`CACHE_BYTES`] (at least the last entry is kept when the log is
    /// non-empty).
    cache: VecDeque<Entry>,
    cache_bytes: u64,
    /// The latest snapshot built for followers.
    snapshot: Option<Snapshot>,
    /// Set when raftcore asked for a snapshot newer than `snapshot`; the
    /// peer takes it and has one built.
    snapshot_wanted: Cell<bool>,
}

impl PeerStorage {
    /// Loads the peer of `region_id` from disk; `None` if this store has no
    /// state for it.
    pub fn load(engine: Engine, region_id: u64) -> Result<Option<PeerStorage>, EngineError> {
        let Some(local) =
            engine.get_msg::<RegionLocalState>(CF_META, &region_state_key(region_id))?
        else {
            return Ok(None);
        };
        let region = local.region.ok_or_else(|| {
            EngineError::corrupt(format!("region {region_id} state"), "no region")
        })?;
        let apply_state = engine
            .get_msg::<RaftApplyState>(CF_META, &apply_state_key(region_id))?
            .unwrap_or_default();
        let mut hard_state = match engine.get(CF_RAFT, &hard_state_key(region_id))? {
            Some(v) => codec::decode_hard_state(&Bytes::from(v))
                .map_err(|e| EngineError::corrupt(format!("region {region_id} hard state"), e))?,
            // A region a split created here: its log starts at the
            // truncated entry, in that entry's term, with no vote yet.
            None => HardState {
                term: apply_state.truncated_term,
                ..HardState::default()
            },
        };
        // The apply batch of a round can reach the disk before the round's
        // own (unsynced) commit-only hard state; after a power loss the
        // apply state may then be ahead of the commit index. What was
        // applied was committed, so the commit index is at least that.
        hard_state.commit = hard_state.commit.max(apply_state.applied_index);
        let mut storage = PeerStorage {
            engine,
            region,
            hard_state,
            apply_state,
            last_index: 0,
            last_term: 0,
            cache: VecDeque::new(),
            cache_bytes: 0,
            snapshot: None,
            snapshot_wanted: Cell::new(false),
        };
        storage.load_last()?;
        Ok(Some(storage))
    }

    /// A peer with no state yet on this store (created by a message from
    /// the leader, before its snapshot): empty log, no range — but the term
    /// and vote an earlier uninitialized peer of the region persisted here,
    /// if one did before a restart (it has no region state, so nothing
    /// reloads it): forgetting them would let this store vote twice in one
    /// term (TiKV #3572; `regress_tikv_3572_...` in the store's tests).
    pub fn uninitialized(
        engine: Engine,
        region: metapb::Region,
    ) -> Result<PeerStorage, EngineError> {
        let id = region.id;
        let hard_state = match engine.get(CF_RAFT, &hard_state_key(id))? {
            Some(v) => HardState {
                // Nothing is in its log: nothing it knows is committed.
                commit: 0,
                ..codec::decode_hard_state(&Bytes::from(v))
                    .map_err(|e| EngineError::corrupt(format!("region {id} hard state"), e))?
            },
            None => HardState::default(),
        };
        Ok(PeerStorage {
            engine,
            region,
            hard_state,
            apply_state: RaftApplyState::default(),
            last_index: 0,
            last_term: 0,
            cache: VecDeque::new(),
            cache_bytes: 0,
            snapshot: None,
            snapshot_wanted: Cell::new(false),
        })
    }

    fn load_last(&mut self) -> Result<(), EngineError> {
        let id = self.region.id;
        let start = log_key(id, self.apply_state.truncated_index + 1);
        let end = log_key(id, u64::MAX);
        let mut iter = self.engine.db().raw_iterator_cf(self.engine.cf(CF_RAFT));
        iter.seek_for_prev(end);
        self.last_index = self.apply_state.truncated_index;
        self.last_term = self.apply_state.truncated_term;
        if let (Some(key), Some(value)) = (iter.key(), iter.value()) {
            if key >= start.as_slice() && key < end.as_slice() {
                let entry = decode_entry(id, value)?;
                self.last_index = entry.index;
                self.last_term = entry.term;
            }
        }
        iter.status()?;
        Ok(())
    }

    /// Whether this peer never acknowledged a leader of its region: it
    /// never voted and never left the term a region's log begins in (a
    /// leader's term is above it, and hearing one moves the peer there).
    pub fn is_pristine(&self) -> bool {
        self.hard_state.vote == 0 && self.hard_state.term <= INIT_TERM
    }

    /// The region as this peer knows it.
    pub fn region(&self) -> &metapb::Region {
        &self.region
    }

    /// Takes the region's new shape (after a split applied; the apply
    /// batch persisted it).
    pub fn set_region(&mut self, region: metapb::Region) {
        self.region = region;
    }

    /// Whether the peer has a range (bootstrap, split or snapshot gave it
    /// one); an uninitialized peer waits for a snapshot.
    pub fn is_initialized(&self) -> bool {
        !self.region.peers.is_empty()
    }

    /// The apply state as last persisted or set.
    pub fn apply_state(&self) -> &RaftApplyState {
        &self.apply_state
    }

    /// The persisted hard state.
    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    /// Adds `entries` (replacing any conflicting tail) and `hard_state` to
    /// the round's batch.
    pub fn prepare_append(
        &self,
        wb: &mut WriteBatch,
        entries: &[Entry],
        hard_state: Option<HardState>,
    ) {
        let id = self.region.id;
        if let (Some(first), Some(last)) = (entries.first(), entries.last()) {
            debug_assert!(first.index <= self.last_index + 1, "log gap");
            let mut buf = Vec::new();
            for e in entries {
                buf.clear();
                codec::encode_entry(e, &mut buf);
                wb.put_cf(self.engine.cf(CF_RAFT), log_key(id, e.index), &buf);
            }
            if last.index < self.last_index {
                wb.delete_range_cf(
                    self.engine.cf(CF_RAFT),
                    log_key(id, last.index + 1),
                    log_key(id, u64::MAX),
                );
            }
        }
        if let Some(hs) = hard_state {
            let mut buf = Vec::new();
            codec::encode_hard_state(&hs, &mut buf);
            wb.put_cf(self.engine.cf(CF_RAFT), hard_state_key(id), buf);
        }
    }

    /// Makes what [`prepare_append`](Self::prepare_append) added visible,
    /// once the batch holding it is durable.
    pub fn finish_append(&mut self, entries: &[Entry], hard_state: Option<HardState>) {
        if let Some(hs) = hard_state {
            self.hard_state = hs;
        }
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return;
        };
        // Drop the cached tail the new entries replace.
        while self.cache.back().is_some_and(|e| e.index >= first.index) {
            if let Some(e) = self.cache.pop_back() {
                self.cache_bytes -= e.payload_size();
            }
        }
        if self
            .cache
            .back()
            .is_some_and(|e| e.index + 1 != first.index)
        {
            self.cache.clear();
            self.cache_bytes = 0;
        }
        for e in entries {
            self.cache_bytes += e.payload_size();
            self.cache.push_back(e.clone());
        }
        while self.cache.len() > 1 && self.cache_bytes > CACHE_BYTES {
            if let Some(e) = self.cache.pop_front() {
                self.cache_bytes -= e.payload_size();
            }
        }
        self.last_index = last.index;
        self.last_term = last.term;
    }

    /// Records a new apply state (after the apply batch holding it).
    pub fn set_apply_state(&mut self, state: RaftApplyState) {
        self.apply_state = state;
        while self
            .cache
            .front()
            .is_some_and(|e| e.index <= state.truncated_index && self.cache.len() > 1)
        {
            if let Some(e) = self.cache.pop_front() {
                self.cache_bytes -= e.payload_size();
            }
        }
    }

    /// Adds the deletion of log entries up to `index` (truncated, and
    /// recorded in the apply state) to `wb`. No fsync is needed: entries
    /// that survive a crash are simply truncated again.
    pub fn delete_log_until(&self, wb: &mut WriteBatch, index: u64) {
        let id = self.region.id;
        wb.delete_range_cf(
            self.engine.cf(CF_RAFT),
            log_key(id, 0),
            log_key(id, index + 1),
        );
    }

    /// Whether raftcore asked for a snapshot we do not have; clears the
    /// request.
    pub fn take_snapshot_request(&self) -> bool {
        self.snapshot_wanted.replace(false)
    }

    /// Offers a newly built snapshot to followers.
    pub fn set_snapshot(&mut self, snapshot: Snapshot) {
        self.snapshot = Some(snapshot);
    }

    /// Stops offering the built snapshot.
    pub fn clear_snapshot(&mut self) {
        self.snapshot = None;
    }

    /// The snapshot offered to followers, if any.
    pub fn built_snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// Adds installing a received snapshot's states to `wb` (its data is
    /// added by the snapshot manager): the region, the apply state at the
    /// snapshot, and no log before it.
    pub fn prepare_snapshot(
        &self,
        wb: &mut WriteBatch,
        region: &metapb::Region,
        index: u64,
        term: u64,
    ) {
        let id = region.id;
        put_region_states(wb, &self.engine, region, index, term);
        wb.delete_range_cf(
            self.engine.cf(CF_RAFT),
            log_key(id, 0),
            log_key(id, u64::MAX),
        );
    }

    /// Makes an installed snapshot visible (after the batch holding it is
    /// durable).
    pub fn finish_snapshot(&mut self, region: metapb::Region, index: u64, term: u64) {
        self.region = region;
        self.apply_state = RaftApplyState {
            applied_index: index,
            truncated_index: index,
            truncated_term: term,
        };
        self.last_index = index;
        self.last_term = term;
        self.cache.clear();
        self.cache_bytes = 0;
    }

    fn read_entries(
        &self,
        low: u64,
        high: u64,
        max_size: u64,
    ) -> Result<Vec<Entry>, raftcore::StorageError> {
        let id = self.region.id;
        let mut out = Vec::new();
        let mut size = 0u64;
        let cache_start = self.cache.front().map_or(u64::MAX, |e| e.index);
        let disk_high = high.min(cache_start);
        if low < disk_high {
            let mut iter = self.engine.db().raw_iterator_cf(self.engine.cf(CF_RAFT));
            iter.seek(log_key(id, low));
            let mut expect = low;
            while expect < disk_high {
                let (Some(key), Some(value)) = (iter.key(), iter.value()) else {
                    break;
                };
                if key >= log_key(id, disk_high).as_slice() {
                    break;
                }
                let entry = decode_entry(id, value)
                    .map_err(|e| raftcore::StorageError::Other(e.to_string()))?;
                if entry.index != expect {
                    return Err(raftcore::StorageError::Other(format!(
                        "region {id}: log hole at {expect} (found {})",
                        entry.index
                    )));
                }
                size = size.saturating_add(entry.payload_size());
                let full = !out.is_empty() && size > max_size;
                if full {
                    return Ok(out);
                }
                out.push(entry);
                expect += 1;
                iter.next();
            }
            iter.status()
                .map_err(|e| raftcore::StorageError::Other(e.to_string()))?;
            if expect < disk_high {
                return Err(raftcore::StorageError::Other(format!(
                    "region {id}: log hole at {expect}"
                )));
            }
        }
        for e in self
            .cache
            .iter()
            .filter(|e| e.index >= low.max(cache_start) && e.index < high)
        {
            size = size.saturating_add(e.payload_size());
            if !out.is_empty() && size > max_size {
                break;
            }
            out.push(e.clone());
        }
        Ok(out)
    }
}

fn decode_entry(region_id: u64, value: &[u8]) -> Result<Entry, EngineError> {
    codec::decode_entry(&Bytes::copy_from_slice(value))
        .map_err(|e| EngineError::corrupt(format!("region {region_id} log entry"), e))
}

impl Storage for PeerStorage {
    fn initial_state(&self) -> Result<RaftState, raftcore::StorageError> {
        Ok(RaftState {
            hard_state: self.hard_state,
            conf_state: conf_state_of(&self.region),
        })
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: u64,
    ) -> Result<Vec<Entry>, raftcore::StorageError> {
        if low <= self.apply_state.truncated_index {
            return Err(raftcore::StorageError::Compacted);
        }
        if high > self.last_index + 1 {
            return Err(raftcore::StorageError::Unavailable);
        }
        if low >= high {
            return Ok(Vec::new());
        }
        self.read_entries(low, high, max_size)
    }

    fn term(&self, index: u64) -> Result<u64, raftcore::StorageError> {
        if index == self.apply_state.truncated_index {
            return Ok(self.apply_state.truncated_term);
        }
        if index < self.apply_state.truncated_index {
            return Err(raftcore::StorageError::Compacted);
        }
        if index > self.last_index {
            return Err(raftcore::StorageError::Unavailable);
        }
        if index == self.last_index {
            return Ok(self.last_term);
        }
        if let Some(e) = self.cache.front().filter(|e| e.index <= index) {
            let offset = (index - e.index) as usize;
            return Ok(self.cache[offset].term);
        }
        Ok(self.read_entries(index, index + 1, u64::MAX)?[0].term)
    }

    fn first_index(&self) -> Result<u64, raftcore::StorageError> {
        Ok(self.apply_state.truncated_index + 1)
    }

    fn last_index(&self) -> Result<u64, raftcore::StorageError> {
        Ok(self.last_index)
    }

    /// The latest built snapshot if it is recent enough; otherwise asks
    /// the peer to build one (on its apply thread, where the region's data
    /// and applied index are consistent) and lets the leader retry.
    fn snapshot(&self, request_index: u64, _to: u64) -> Result<Snapshot, raftcore::StorageError> {
        match &self.snapshot {
            Some(s) if s.metadata.index >= request_index => Ok(s.clone()),
            _ => {
                self.snapshot_wanted.set(true);
                Err(raftcore::StorageError::SnapshotTemporarilyUnavailable)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use raftcore::storage::conformance::{self, StorageBuilder};
    use raftcore::EntryType;

    use super::*;

    fn region(id: u64, voters: &[u64], learners: &[u64]) -> metapb::Region {
        let peer = |id: u64, role: metapb::PeerRole| metapb::Peer {
            id,
            store_id: id,
            role: role as i32,
        };
        metapb::Region {
            id,
            region_epoch: Some(metapb::RegionEpoch {
                conf_ver: 1,
                version: 1,
            }),
            peers: voters
                .iter()
                .map(|v| peer(*v, metapb::PeerRole::Voter))
                .chain(learners.iter().map(|l| peer(*l, metapb::PeerRole::Learner)))
                .collect(),
            ..Default::default()
        }
    }

    /// Writes each state through the store's write path, then loads it
    /// back from disk.
    struct Builder {
        dirs: RefCell<Vec<tempfile::TempDir>>,
    }

    impl StorageBuilder for Builder {
        type S = PeerStorage;

        fn build(
            &self,
            snapshot: Snapshot,
            hs: HardState,
            cs: ConfState,
            entries: &[Entry],
        ) -> PeerStorage {
            let dir = tempfile::tempdir().unwrap();
            let engine = Engine::open(dir.path()).unwrap();
            let region = region(1, &cs.voters, &cs.learners);
            let mut wb = WriteBatch::default();
            let local = RegionLocalState {
                state: PeerState::Normal as i32,
                region: Some(region.clone()),
            };
            let apply = RaftApplyState {
                applied_index: snapshot.metadata.index,
                truncated_index: snapshot.metadata.index,
                truncated_term: snapshot.metadata.term,
            };
            wb.put_cf(
                engine.cf(CF_META),
                region_state_key(1),
                local.encode_to_vec(),
            );
            wb.put_cf(
                engine.cf(CF_META),
                apply_state_key(1),
                apply.encode_to_vec(),
            );
            let mut s = PeerStorage::uninitialized(engine.clone(), region).unwrap();
            s.set_apply_state(apply);
            s.last_index = snapshot.metadata.index;
            s.last_term = snapshot.metadata.term;
            s.prepare_append(&mut wb, entries, Some(hs));
            engine.write(wb, true).unwrap();
            self.dirs.borrow_mut().push(dir);
            PeerStorage::load(engine, 1).unwrap().unwrap()
        }
    }

    #[test]
    fn passes_the_raftcore_storage_conformance_suite() {
        conformance::run_all(Builder {
            dirs: RefCell::new(Vec::new()),
        });
    }

    fn entry(index: u64, term: u64, size: usize) -> Entry {
        Entry {
            index,
            term,
            entry_type: EntryType::Normal,
            data: Bytes::from(vec![b'x'; size]),
        }
    }

    fn fresh(dir: &tempfile::TempDir) -> (Engine, PeerStorage) {
        let engine = Engine::open(dir.path()).unwrap();
        let mut wb = WriteBatch::default();
        write_initial_state(&mut wb, &engine, &region(7, &[1, 2, 3], &[]));
        engine.write(wb, true).unwrap();
        let s = PeerStorage::load(engine.clone(), 7).unwrap().unwrap();
        (engine, s)
    }

    fn append(engine: &Engine, s: &mut PeerStorage, entries: &[Entry]) {
        let mut wb = WriteBatch::default();
        s.prepare_append(&mut wb, entries, None);
        engine.write(wb, true).unwrap();
        s.finish_append(entries, None);
    }

    #[test]
    fn initialized_regions_start_after_the_init_index() {
        let dir = tempfile::tempdir().unwrap();
        let (_, s) = fresh(&dir);
        assert_eq!(
            (s.first_index(), s.last_index()),
            (Ok(INIT_INDEX + 1), Ok(INIT_INDEX))
        );
        assert_eq!(s.term(INIT_INDEX), Ok(INIT_TERM));
        let state = s.initial_state().unwrap();
        assert_eq!(state.conf_state, ConfState::with_voters([1, 2, 3]));
        assert_eq!(state.hard_state.commit, INIT_INDEX);
        assert!(s.is_initialized());
    }

    #[test]
    fn reads_span_disk_and_cache_and_a_conflicting_tail_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, mut s) = fresh(&dir);
        // Big entries push the early ones out of the cache onto disk only.
        let big: Vec<Entry> = (6..=10).map(|i| entry(i, 6, 400 << 10)).collect();
        append(&engine, &mut s, &big);
        assert!(s.cache.front().unwrap().index > 6, "cache is bounded");
        let all = s.entries(6, 11, u64::MAX).unwrap();
        assert_eq!(
            all.iter().map(|e| e.index).collect::<Vec<_>>(),
            vec![6, 7, 8, 9, 10]
        );
        assert_eq!(
            s.entries(6, 11, 1).unwrap().len(),
            1,
            "size limit keeps one"
        );
        // A new leader overwrites 9.. with a shorter tail of a later term.
        append(&engine, &mut s, &[entry(9, 7, 10)]);
        assert_eq!((s.last_index(), s.term(9)), (Ok(9), Ok(7)));
        let reloaded = PeerStorage::load(engine, 7).unwrap().unwrap();
        assert_eq!((reloaded.last_index(), reloaded.term(9)), (Ok(9), Ok(7)));
        assert_eq!(
            reloaded.entries(10, 11, u64::MAX),
            Err(raftcore::StorageError::Unavailable)
        );
        assert_eq!(reloaded.term(8), Ok(6));
    }

    #[test]
    fn joint_roles_map_to_a_joint_conf_state() {
        let mut r = region(1, &[1, 2], &[]);
        r.peers.push(metapb::Peer {
            id: 3,
            store_id: 3,
            role: metapb::PeerRole::IncomingVoter as i32,
        });
        r.peers.push(metapb::Peer {
            id: 4,
            store_id: 4,
            role: metapb::PeerRole::DemotingVoter as i32,
        });
        let cs = conf_state_of(&r);
        assert_eq!(cs.voters, vec![1, 2, 3]);
        assert_eq!(cs.voters_outgoing, vec![1, 2, 4]);
        assert_eq!(cs.learners_next, vec![4]);
        assert!(cs.auto_leave);
    }

    #[test]
    fn a_commit_index_behind_the_applied_index_is_raised_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, mut s) = fresh(&dir);
        let entries: Vec<Entry> = (6..=8).map(|i| entry(i, 6, 10)).collect();
        append(&engine, &mut s, &entries);
        // The apply state reached the disk; the hard state committing the
        // entries did not.
        let mut wb = WriteBatch::default();
        let applied = RaftApplyState {
            applied_index: 8,
            truncated_index: INIT_INDEX,
            truncated_term: INIT_TERM,
        };
        wb.put_cf(
            engine.cf(CF_META),
            apply_state_key(7),
            applied.encode_to_vec(),
        );
        engine.write(wb, true).unwrap();
        let reloaded = PeerStorage::load(engine, 7).unwrap().unwrap();
        assert_eq!(reloaded.initial_state().unwrap().hard_state.commit, 8);
        let cfg = raftcore::Config {
            applied: 8,
            ..raftcore::Config::new(1)
        };
        assert!(raftcore::RawNode::new(&cfg, reloaded).is_ok());
    }

    #[test]
    fn unknown_regions_load_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        assert!(PeerStorage::load(engine, 99).unwrap().is_none());
    }
}
