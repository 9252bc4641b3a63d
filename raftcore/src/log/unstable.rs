//! The tail of the log that the host has not yet persisted.

use crate::types::{Entry, Snapshot};

/// Entries (and possibly a snapshot) not yet in storage.
///
/// Invariant: `entries[i].index == offset + i`; if `snapshot` is set,
/// `offset == snapshot.index + 1` or later.
#[derive(Debug, Default)]
pub(crate) struct Unstable {
    /// An incoming snapshot not yet persisted.
    pub snapshot: Option<Snapshot>,
    /// Entries not yet persisted.
    pub entries: Vec<Entry>,
    /// The index of `entries[0]` (or where it will be).
    pub offset: u64,
}

impl Unstable {
    pub fn new(offset: u64) -> Unstable {
        Unstable {
            snapshot: None,
            entries: Vec::new(),
            offset,
        }
    }

    /// The first index, if a pending snapshot defines it.
    pub fn maybe_first_index(&self) -> Option<u64> {
        self.snapshot.as_ref().map(|s| s.metadata.index + 1)
    }

    /// The last index, if this tail defines it.
    pub fn maybe_last_index(&self) -> Option<u64> {
        match (self.entries.last(), &self.snapshot) {
            (Some(e), _) => Some(e.index),
            (None, Some(s)) => Some(s.metadata.index),
            (None, None) => None,
        }
    }

    /// The term at `index`, if this tail knows it.
    pub fn maybe_term(&self, index: u64) -> Option<u64> {
        if index < self.offset {
            let snap = self.snapshot.as_ref()?;
            return (snap.metadata.index == index).then_some(snap.metadata.term);
        }
        let last = self.maybe_last_index()?;
        if index > last {
            return None;
        }
        Some(self.entries[(index - self.offset) as usize].term)
    }

    /// Drops entries up to `index` now that they are persisted, if the entry
    /// at `index` still has `term` (it may have been replaced meanwhile).
    pub fn stable_to(&mut self, index: u64, term: u64) {
        if index < self.offset || self.maybe_term(index) != Some(term) {
            return;
        }
        self.entries.drain(..=(index - self.offset) as usize);
        self.offset = index + 1;
    }

    /// Drops the pending snapshot once persisted.
    pub fn stable_snap_to(&mut self, index: u64) {
        if self
            .snapshot
            .as_ref()
            .is_some_and(|s| s.metadata.index == index)
        {
            self.snapshot = None;
        }
    }

    /// Replaces everything with an incoming snapshot.
    pub fn restore(&mut self, snap: Snapshot) {
        self.entries.clear();
        self.offset = snap.metadata.index + 1;
        self.snapshot = Some(snap);
    }

    /// Appends `ents`, replacing any entries from `ents[0].index` on.
    pub fn truncate_and_append(&mut self, ents: &[Entry]) {
        let Some(first) = ents.first() else { return };
        let after = first.index;
        if after == self.offset + self.entries.len() as u64 {
            // The common case: a direct continuation.
        } else if after <= self.offset {
            // Replaces everything unstable (and some of storage's tail).
            self.offset = after;
            self.entries.clear();
        } else {
            self.entries.truncate((after - self.offset) as usize);
        }
        self.entries.extend_from_slice(ents);
    }

    /// Entries `[low, high)`, which must lie within this tail.
    pub fn slice(&self, low: u64, high: u64) -> &[Entry] {
        let upper = self.offset + self.entries.len() as u64;
        assert!(
            self.offset <= low && low <= high && high <= upper,
            "unstable slice [{low}, {high}) out of bounds [{}, {upper})",
            self.offset
        );
        &self.entries[(low - self.offset) as usize..(high - self.offset) as usize]
    }
}
