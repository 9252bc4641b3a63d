//! The conformance suite for [`Storage`] implementations.
//!
//! Every implementation (the in-memory one here, the store's RocksDB one)
//! runs [`run_all`] from its own tests, so all of them behave alike at the
//! edges: compacted and unavailable ranges, size limits, the term of the
//! compacted boundary, and the initial state.

use bytes::Bytes;

use crate::error::StorageError;
use crate::storage::{MemStorage, RaftState, Storage};
use crate::types::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};

/// Builds a storage in a given state, so the suite can test any
/// implementation.
pub trait StorageBuilder {
    /// The implementation under test.
    type S: Storage;
    /// A storage whose compacted prefix ends at `snapshot` (index 0 for
    /// none), followed by `entries`, with the given hard and membership
    /// state.
    fn build(
        &self,
        snapshot: Snapshot,
        hard_state: HardState,
        conf_state: ConfState,
        entries: &[Entry],
    ) -> Self::S;
}

/// Builds [`MemStorage`]s for the suite.
pub struct MemStorageBuilder;

impl StorageBuilder for MemStorageBuilder {
    type S = MemStorage;
    fn build(
        &self,
        snapshot: Snapshot,
        hard_state: HardState,
        conf_state: ConfState,
        entries: &[Entry],
    ) -> MemStorage {
        let mut s = MemStorage::new();
        if !snapshot.is_empty() {
            s.apply_snapshot(snapshot)
                .expect("fresh storage accepts any snapshot");
        }
        s.append(entries);
        s.set_hard_state(hard_state);
        s.set_conf_state(conf_state);
        s
    }
}

fn entry(index: u64, term: u64, size: usize) -> Entry {
    Entry {
        index,
        term,
        data: Bytes::from(vec![b'x'; size]),
        ..Entry::default()
    }
}

/// Snapshot at 3/3, then entries 4..=6 with terms 3, 4, 5 and 10-byte payloads.
fn standard<B: StorageBuilder>(b: &B) -> B::S {
    let snap = Snapshot {
        data: Bytes::from_static(b"image"),
        metadata: SnapshotMetadata {
            conf_state: ConfState::with_voters([1, 2, 3]),
            index: 3,
            term: 3,
        },
    };
    let ents = [entry(4, 3, 10), entry(5, 4, 10), entry(6, 5, 10)];
    b.build(
        snap,
        HardState {
            term: 5,
            vote: 1,
            commit: 5,
        },
        ConfState::with_voters([1, 2, 3]),
        &ents,
    )
}

/// Runs every check; panics with a description on the first failure.
pub fn run_all<B: StorageBuilder>(b: B) {
    check_empty(&b);
    check_bounds(&b);
    check_term(&b);
    check_entries(&b);
    check_initial_state(&b);
}

fn check_empty<B: StorageBuilder>(b: &B) {
    let s = b.build(
        Snapshot::default(),
        HardState::default(),
        ConfState::default(),
        &[],
    );
    assert_eq!(s.first_index(), Ok(1), "empty log: first_index");
    assert_eq!(s.last_index(), Ok(0), "empty log: last_index");
    assert_eq!(s.term(0), Ok(0), "empty log: term(0)");
    assert_eq!(
        s.term(1),
        Err(StorageError::Unavailable),
        "empty log: term(1)"
    );
    assert_eq!(
        s.entries(1, 1, u64::MAX),
        Ok(vec![]),
        "empty log: empty range"
    );
}

fn check_bounds<B: StorageBuilder>(b: &B) {
    let s = standard(b);
    assert_eq!(s.first_index(), Ok(4), "first_index after snapshot 3");
    assert_eq!(s.last_index(), Ok(6), "last_index");
}

fn check_term<B: StorageBuilder>(b: &B) {
    let s = standard(b);
    assert_eq!(
        s.term(2),
        Err(StorageError::Compacted),
        "term below the snapshot"
    );
    assert_eq!(s.term(3), Ok(3), "term of the snapshot index");
    assert_eq!(s.term(5), Ok(4), "term of a live entry");
    assert_eq!(s.term(6), Ok(5), "term of the last entry");
    assert_eq!(
        s.term(7),
        Err(StorageError::Unavailable),
        "term past the last entry"
    );
}

fn check_entries<B: StorageBuilder>(b: &B) {
    let s = standard(b);
    let idx = |r: Result<Vec<Entry>, StorageError>| {
        r.map(|v| v.iter().map(|e| e.index).collect::<Vec<_>>())
    };
    assert_eq!(
        idx(s.entries(3, 5, u64::MAX)),
        Err(StorageError::Compacted),
        "entries from the snapshot index"
    );
    assert_eq!(
        idx(s.entries(4, 8, u64::MAX)),
        Err(StorageError::Unavailable),
        "entries past last+1"
    );
    assert_eq!(
        idx(s.entries(4, 7, u64::MAX)),
        Ok(vec![4, 5, 6]),
        "all entries"
    );
    assert_eq!(idx(s.entries(5, 6, u64::MAX)), Ok(vec![5]), "one entry");
    assert_eq!(
        idx(s.entries(4, 7, 0)),
        Ok(vec![4]),
        "size limit keeps one entry"
    );
    assert_eq!(
        idx(s.entries(4, 7, 20)),
        Ok(vec![4, 5]),
        "size limit at an entry boundary"
    );
    assert_eq!(
        idx(s.entries(4, 7, 25)),
        Ok(vec![4, 5]),
        "size limit inside an entry"
    );
    let all = s.entries(4, 7, u64::MAX).unwrap();
    assert_eq!(all[1], entry(5, 4, 10), "entries keep their content");
}

fn check_initial_state<B: StorageBuilder>(b: &B) {
    let s = standard(b);
    assert_eq!(
        s.initial_state(),
        Ok(RaftState {
            hard_state: HardState {
                term: 5,
                vote: 1,
                commit: 5
            },
            conf_state: ConfState::with_voters([1, 2, 3])
        }),
        "initial state"
    );
}
