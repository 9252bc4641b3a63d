//! The Raft log: what storage holds, plus the unstable tail, plus the
//! commit, persist and apply cursors.

mod unstable;

use std::cmp;

use unstable::Unstable;

use crate::error::StorageError;
use crate::storage::{limit_size, Storage};
use crate::types::{Entry, Snapshot};

/// A peer's log.
///
/// Invariants:
/// `first_index - 1 <= applied <= applying <= committed <= last_index`, and
/// `persisted <= last_index`. `applying` is the last entry handed to the
/// host to apply; `applied` the last one the host reported applied.
pub struct RaftLog<S: Storage> {
    pub(crate) store: S,
    pub(crate) unstable: Unstable,
    /// The highest index known committed.
    pub committed: u64,
    /// The highest index known durably persisted (and matching this log).
    pub persisted: u64,
    /// The highest index handed to the host to apply.
    pub applying: u64,
    /// The highest index the host reported applied.
    pub applied: u64,
    max_apply_size: u64,
}

impl<S: Storage> RaftLog<S> {
    pub(crate) fn new(store: S, max_apply_size: u64) -> Result<RaftLog<S>, StorageError> {
        let first = store.first_index()?;
        let last = store.last_index()?;
        Ok(RaftLog {
            store,
            unstable: Unstable::new(last + 1),
            committed: first - 1,
            persisted: last,
            applying: first - 1,
            applied: first - 1,
            max_apply_size,
        })
    }

    /// The storage.
    pub fn store(&self) -> &S {
        &self.store
    }

    pub(crate) fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// The index of the first entry still available.
    pub fn first_index(&self) -> u64 {
        self.unstable.maybe_first_index().unwrap_or_else(|| {
            self.store
                .first_index()
                .expect("storage first_index failed")
        })
    }

    /// The index of the last entry.
    pub fn last_index(&self) -> u64 {
        self.unstable
            .maybe_last_index()
            .unwrap_or_else(|| self.store.last_index().expect("storage last_index failed"))
    }

    /// The term of the last entry.
    pub fn last_term(&self) -> u64 {
        self.term(self.last_index())
            .expect("the last entry always has a term")
    }

    /// The term of the entry at `index`; `Compacted` below the first index
    /// minus one, `Unavailable` past the last.
    pub fn term(&self, index: u64) -> Result<u64, StorageError> {
        let dummy = self.first_index() - 1;
        if index < dummy {
            return Err(StorageError::Compacted);
        }
        if index > self.last_index() {
            return Err(StorageError::Unavailable);
        }
        match self.unstable.maybe_term(index) {
            Some(t) => Ok(t),
            None => self.store.term(index),
        }
    }

    /// Whether the entry at `index` has `term`.
    pub fn match_term(&self, index: u64, term: u64) -> bool {
        self.term(index) == Ok(term)
    }

    /// Whether a log ending at `(last_term, last_index)` is at least as
    /// up-to-date as this one (thesis §3.6.1).
    pub fn is_up_to_date(&self, last_index: u64, last_term: u64) -> bool {
        let my_term = self.last_term();
        last_term > my_term || (last_term == my_term && last_index >= self.last_index())
    }

    /// The first entry of `ents` that is new or conflicts with this log;
    /// 0 if all are already present.
    fn find_conflict(&self, ents: &[Entry]) -> u64 {
        ents.iter()
            .find(|e| !self.match_term(e.index, e.term))
            .map_or(0, |e| e.index)
    }

    /// The largest index `<= index` whose term is `<= term`, and that term.
    /// Used for fast backtracking of rejected appends: entries above it
    /// cannot match a log whose entry at `index` has `term`.
    pub fn find_conflict_by_term(&self, index: u64, term: u64) -> (u64, u64) {
        let mut i = cmp::min(index, self.last_index());
        loop {
            match self.term(i) {
                Ok(t) if t > term => i -= 1,
                Ok(t) => return (i, t),
                Err(_) => return (i, 0),
            }
        }
    }

    /// Appends `ents` after `(prev_term, prev_index)` if that entry matches,
    /// truncating any conflicting suffix, and commits up to
    /// `min(committed, last new index)`. Returns the last new index, or
    /// `None` if `prev` does not match.
    ///
    /// # Panics
    /// If an entry conflicts with a committed one: the leader broke Raft's
    /// log matching property, and continuing would corrupt data.
    pub(crate) fn maybe_append(
        &mut self,
        prev_index: u64,
        prev_term: u64,
        committed: u64,
        ents: &[Entry],
    ) -> Option<u64> {
        if !self.match_term(prev_index, prev_term) {
            return None;
        }
        let last_new = prev_index + ents.len() as u64;
        let conflict = self.find_conflict(ents);
        if conflict != 0 {
            assert!(
                conflict > self.committed,
                "entry {conflict} conflicts with committed entry (committed {})",
                self.committed
            );
            self.append(&ents[(conflict - prev_index - 1) as usize..]);
        }
        self.commit_to(cmp::min(committed, last_new));
        Some(last_new)
    }

    /// Appends entries to the unstable tail; returns the new last index.
    pub(crate) fn append(&mut self, ents: &[Entry]) -> u64 {
        let Some(first) = ents.first() else {
            return self.last_index();
        };
        assert!(
            first.index > self.committed,
            "append at {} would overwrite committed entries (committed {})",
            first.index,
            self.committed
        );
        // Entries being replaced are no longer the persisted ones.
        self.persisted = cmp::min(self.persisted, first.index - 1);
        self.unstable.truncate_and_append(ents);
        self.last_index()
    }

    /// Entries from `low` to the end, at most `max_size` bytes (at least one).
    pub fn entries(&self, low: u64, max_size: u64) -> Result<Vec<Entry>, StorageError> {
        let last = self.last_index();
        if low > last {
            return Ok(Vec::new());
        }
        self.slice(low, last + 1, max_size)
    }

    /// Entries `[low, high)`, at most `max_size` bytes (at least one).
    pub fn slice(&self, low: u64, high: u64, max_size: u64) -> Result<Vec<Entry>, StorageError> {
        if low >= high {
            return Ok(Vec::new());
        }
        if low < self.first_index() {
            return Err(StorageError::Compacted);
        }
        if high > self.last_index() + 1 {
            return Err(StorageError::Unavailable);
        }
        let mut ents = Vec::new();
        if low < self.unstable.offset {
            let stored_high = cmp::min(high, self.unstable.offset);
            ents = self.store.entries(low, stored_high, max_size)?;
            if (ents.len() as u64) < stored_high - low {
                return Ok(ents); // cut by the size limit
            }
        }
        if high > self.unstable.offset {
            let from = cmp::max(low, self.unstable.offset);
            ents.extend_from_slice(self.unstable.slice(from, high));
            limit_size(&mut ents, max_size);
        }
        Ok(ents)
    }

    /// Raises the commit index to `index`.
    ///
    /// # Panics
    /// If `index` is past the last entry: a commit index may only cover
    /// entries this log holds.
    pub(crate) fn commit_to(&mut self, index: u64) {
        if index <= self.committed {
            return;
        }
        assert!(
            index <= self.last_index(),
            "commit index {index} out of range (last index {})",
            self.last_index()
        );
        self.committed = index;
    }

    /// Commits up to `index` if the entry there is from `term`: a leader
    /// commits only entries of its own term by counting replicas (thesis
    /// §3.6.2, figure 3.7).
    pub(crate) fn maybe_commit(&mut self, index: u64, term: u64, check_term: bool) -> bool {
        if index > self.committed && (!check_term || self.term(index) == Ok(term)) {
            self.commit_to(index);
            return true;
        }
        false
    }

    /// Whether committed entries are waiting to be handed to the host.
    pub(crate) fn has_next_committed(&self) -> bool {
        self.unstable.snapshot.is_none() && self.applying < cmp::min(self.committed, self.persisted)
    }

    /// The next committed entries to hand out: persisted, not yet handed
    /// out, at most `max_apply_size` bytes.
    pub(crate) fn next_committed(&self) -> Vec<Entry> {
        if !self.has_next_committed() {
            return Vec::new();
        }
        let high = cmp::min(self.committed, self.persisted) + 1;
        self.slice(self.applying + 1, high, self.max_apply_size)
            .unwrap_or_else(|e| {
                panic!(
                    "committed entries [{}, {high}) unreadable: {e}",
                    self.applying + 1
                )
            })
    }

    /// Records that entries up to `index` were handed to the host.
    pub(crate) fn applying_to(&mut self, index: u64) {
        assert!(
            index <= self.committed,
            "applying {index} beyond committed {}",
            self.committed
        );
        self.applying = cmp::max(self.applying, index);
    }

    /// Records that the host applied entries up to `index`.
    pub(crate) fn applied_to(&mut self, index: u64) {
        if index <= self.applied {
            return;
        }
        assert!(
            index <= self.applying,
            "applied index {index} beyond the entries handed out ({})",
            self.applying
        );
        self.applied = index;
    }

    /// Records that entries up to `(index, term)` are persisted.
    pub(crate) fn stable_to(&mut self, index: u64, term: u64) {
        if self.unstable.maybe_term(index) == Some(term) || self.match_term(index, term) {
            self.unstable.stable_to(index, term);
            if self.match_term(index, term) {
                self.persisted = cmp::max(self.persisted, index);
            }
        }
    }

    /// Records that the snapshot at `index` is persisted and applied.
    pub(crate) fn stable_snap_to(&mut self, index: u64) {
        self.unstable.stable_snap_to(index);
        self.persisted = cmp::max(self.persisted, index);
        self.applying = cmp::max(self.applying, index);
        self.applied = cmp::max(self.applied, index);
    }

    /// Replaces the log with a snapshot received from the leader.
    pub(crate) fn restore(&mut self, snap: Snapshot) {
        self.committed = snap.metadata.index;
        self.persisted = cmp::min(self.persisted, snap.metadata.index.saturating_sub(1));
        self.unstable.restore(snap);
    }

    /// The pending snapshot, if any.
    pub(crate) fn unstable_snapshot(&self) -> Option<&Snapshot> {
        self.unstable.snapshot.as_ref()
    }

    /// The entries not yet persisted.
    pub(crate) fn unstable_entries(&self) -> &[Entry] {
        &self.unstable.entries
    }

    /// The snapshot storage offers for a follower that needs `index`.
    pub(crate) fn snapshot(&self, index: u64, to: u64) -> Result<Snapshot, StorageError> {
        if let Some(s) = &self.unstable.snapshot {
            return Ok(s.clone());
        }
        self.store.snapshot(index, to)
    }

    /// Whether entries in `(applied, committed]` hold a configuration change.
    pub(crate) fn has_unapplied_conf_change(&self) -> bool {
        let mut low = self.applied + 1;
        let high = self.committed + 1;
        while low < high {
            let Ok(ents) = self.slice(low, high, 1 << 20) else {
                return true;
            };
            if ents
                .iter()
                .any(|e| e.entry_type == crate::EntryType::ConfChange)
            {
                return true;
            }
            low += ents.len() as u64;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemStorage;
    use crate::types::ConfState;

    fn ent(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            data: bytes::Bytes::from(vec![0u8; 10]),
            ..Entry::default()
        }
    }

    /// Storage holds the bootstrap snapshot (1/1) and entries 2..=4 of term
    /// 2; entries 5..=6 of term 3 are unstable.
    fn log() -> RaftLog<MemStorage> {
        let mut store = MemStorage::with_conf_state(ConfState::with_voters([1]));
        store.append(&[ent(2, 2), ent(3, 2), ent(4, 2)]);
        let mut log = RaftLog::new(store, u64::MAX).unwrap();
        log.append(&[ent(5, 3), ent(6, 3)]);
        log
    }

    fn indexes(ents: &[Entry]) -> Vec<u64> {
        ents.iter().map(|e| e.index).collect()
    }

    #[test]
    fn slices_span_storage_and_unstable() {
        let l = log();
        assert_eq!((l.first_index(), l.last_index(), l.persisted), (2, 6, 4));
        assert_eq!(indexes(&l.slice(3, 7, u64::MAX).unwrap()), vec![3, 4, 5, 6]);
        assert_eq!(
            indexes(&l.slice(3, 7, 25).unwrap()),
            vec![3, 4],
            "size limit inside storage"
        );
        assert_eq!(
            indexes(&l.slice(4, 7, 25).unwrap()),
            vec![4, 5],
            "size limit across the boundary"
        );
        assert_eq!(l.slice(1, 3, u64::MAX), Err(StorageError::Compacted));
        assert_eq!(l.slice(5, 8, u64::MAX), Err(StorageError::Unavailable));
        assert_eq!(l.term(1), Ok(1), "the bootstrap snapshot's term");
        assert_eq!(l.term(0), Err(StorageError::Compacted));
    }

    #[test]
    fn maybe_append_truncates_conflicts_and_bounds_commit() {
        let mut l = log();
        // A mismatching previous entry is refused.
        assert_eq!(l.maybe_append(4, 3, 6, &[ent(5, 4)]), None);
        // Entry 5 conflicts (term 4 vs 3): 5 and 6 are replaced; the commit
        // index is bounded by the last new entry.
        assert_eq!(l.maybe_append(4, 2, 6, &[ent(5, 4)]), Some(5));
        assert_eq!((l.last_index(), l.committed), (5, 5));
        assert_eq!(l.term(5), Ok(4));
        // Entries already present are not rewritten.
        assert_eq!(l.maybe_append(3, 2, 5, &[ent(4, 2), ent(5, 4)]), Some(5));
        assert_eq!(l.last_index(), 5);
    }

    #[test]
    #[should_panic(expected = "conflicts with committed")]
    fn overwriting_a_committed_entry_panics() {
        let mut l = log();
        l.commit_to(5);
        l.maybe_append(4, 2, 5, &[ent(5, 9)]);
    }

    #[test]
    fn find_conflict_by_term_skips_higher_terms() {
        let l = log();
        assert_eq!(l.find_conflict_by_term(6, 2), (4, 2));
        assert_eq!(l.find_conflict_by_term(6, 3), (6, 3));
        assert_eq!(
            l.find_conflict_by_term(9, 1),
            (1, 1),
            "clamped to the last index, down to the snapshot"
        );
    }

    #[test]
    fn committed_entries_wait_for_persistence() {
        let mut l = log();
        l.commit_to(6);
        assert_eq!(
            indexes(&l.next_committed()),
            vec![2, 3, 4],
            "5 and 6 are not persisted yet"
        );
        l.applying_to(4);
        // The host writes the entries, then reports them persisted.
        l.store_mut().append(&[ent(5, 3), ent(6, 3)]);
        l.stable_to(6, 3);
        assert_eq!(indexes(&l.next_committed()), vec![5, 6]);
        l.stable_to(6, 2);
        assert_eq!(l.persisted, 6, "a stale mark changes nothing");
    }

    #[test]
    fn up_to_date_compares_term_then_index() {
        let l = log();
        assert!(l.is_up_to_date(6, 3));
        assert!(l.is_up_to_date(2, 4));
        assert!(!l.is_up_to_date(5, 3));
        assert!(!l.is_up_to_date(9, 2));
    }
}
