//! The snapshot directory end to end: build, stream, receive, apply, gc.

use std::fs;

use bytes::Bytes;
use flotilla_proto::metapb;
use rocksdb::WriteBatch;
use tempfile::TempDir;

use super::format::MAX_KEY_BYTES;
use super::*;
use crate::engine::{Engine, CF_DEFAULT};

/// An engine and a snapshot manager in one temporary directory.
struct Node {
    _dir: TempDir,
    engine: Engine,
    snaps: SnapManager,
}

impl Node {
    fn new() -> Node {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(&dir.path().join("db")).unwrap();
        let snaps = SnapManager::new(dir.path().join("snap")).unwrap();
        Node {
            _dir: dir,
            engine,
            snaps,
        }
    }

    fn put(&self, pairs: &[(&[u8], &[u8])]) {
        let mut wb = WriteBatch::default();
        for (k, v) in pairs {
            wb.put_cf(self.engine.cf(CF_DEFAULT), k, v);
        }
        self.engine.write(wb, false).unwrap();
    }

    /// Every pair in CF `default`, in key order.
    fn dump(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let cf = self.engine.cf(CF_DEFAULT);
        self.engine
            .db()
            .iterator_cf(cf, rocksdb::IteratorMode::Start)
            .map(|item| {
                let (k, v) = item.unwrap();
                (k.to_vec(), v.to_vec())
            })
            .collect()
    }

    fn apply(&self, key: SnapKey, data: &SnapshotData) -> Result<(), SnapError> {
        let mut wb = WriteBatch::default();
        self.snaps.apply(&self.engine, key, data, &mut wb)?;
        self.engine.write(wb, true).unwrap();
        Ok(())
    }

    fn file(&self, key: SnapKey) -> std::path::PathBuf {
        self.snaps.dir().join(key.file_name())
    }

    fn tmp_file(&self, key: SnapKey) -> std::path::PathBuf {
        self.snaps.dir().join(key.tmp_file_name())
    }
}

fn region(start: &[u8], end: &[u8]) -> metapb::Region {
    metapb::Region {
        id: 1,
        start_key: Bytes::copy_from_slice(start),
        end_key: Bytes::copy_from_slice(end),
        ..Default::default()
    }
}

/// Sends `key` from `from` to `to` in 7-byte chunks.
fn transfer(from: &Node, to: &Node, key: SnapKey, data: &SnapshotData) -> Result<(), SnapError> {
    let mut writer = to.snaps.receiver(key, data)?;
    for chunk in from.snaps.chunks(key, 7)? {
        writer.write(&chunk?)?;
    }
    writer.finish()
}

fn chunks_of(node: &Node, key: SnapKey) -> Vec<Bytes> {
    let chunks = node.snaps.chunks(key, 7).unwrap();
    chunks.collect::<Result<_, _>>().unwrap()
}

const KEY: SnapKey = SnapKey {
    region_id: 1,
    term: 6,
    index: 10,
};

fn alphabet() -> Vec<(Vec<u8>, Vec<u8>)> {
    (b'a'..=b'z')
        .map(|c| (vec![c], format!("value-{}", c as char).into_bytes()))
        .collect()
}

fn node_with_alphabet() -> Node {
    let node = Node::new();
    let pairs = alphabet();
    let refs: Vec<(&[u8], &[u8])> = pairs.iter().map(|(k, v)| (&k[..], &v[..])).collect();
    node.put(&refs);
    node
}

#[test]
fn a_round_trip_replaces_the_region_range_and_nothing_else() {
    let (from, to) = (node_with_alphabet(), Node::new());
    // "dd" is inside the range but not in the snapshot; "e" is in both.
    to.put(&[
        (b"a", b"old"),
        (b"dd", b"gone"),
        (b"e", b"old"),
        (b"z", b"old"),
    ]);
    let region = region(b"c", b"m");
    let data = from.snaps.build(&from.engine, KEY, &region).unwrap();
    assert_eq!(data.kv_count, 10);
    assert_eq!(data.region, Some(region));
    assert_eq!(data.file_size, fs::metadata(from.file(KEY)).unwrap().len());
    assert!(!from.tmp_file(KEY).exists());

    transfer(&from, &to, KEY, &data).unwrap();
    assert!(to.snaps.exists(KEY));
    assert!(!to.tmp_file(KEY).exists());
    to.apply(KEY, &data).unwrap();

    let mut expected: Vec<_> = alphabet()[2..12].to_vec();
    expected.insert(0, (b"a".to_vec(), b"old".to_vec()));
    expected.push((b"z".to_vec(), b"old".to_vec()));
    assert_eq!(to.dump(), expected);
}

#[test]
fn the_region_range_bounds_the_snapshot() {
    let from = node_with_alphabet();
    let cases: [(&[u8], &[u8], usize, usize); 4] = [
        (b"", b"", 0, 26),
        (b"", b"c", 0, 2),
        (b"x", b"", 23, 26),
        (b"bb", b"e", 2, 4),
    ];
    for (index, (start, end, lo, hi)) in (1..).zip(cases) {
        let key = SnapKey::new(1, 6, index);
        let data = from
            .snaps
            .build(&from.engine, key, &region(start, end))
            .unwrap();
        assert_eq!(data.kv_count, (hi - lo) as u64, "[{start:?}, {end:?})");
        let to = Node::new();
        transfer(&from, &to, key, &data).unwrap();
        to.apply(key, &data).unwrap();
        assert_eq!(to.dump(), alphabet()[lo..hi], "[{start:?}, {end:?})");
    }
}

#[test]
fn an_empty_end_key_deletes_up_to_the_longest_legal_key() {
    let from = Node::new();
    let to = Node::new();
    let longest = vec![0xff; MAX_KEY_BYTES];
    to.put(&[(b"a", b"before"), (b"q", b"in"), (&longest, b"in")]);
    let region = region(b"p", b"");
    let data = from.snaps.build(&from.engine, KEY, &region).unwrap();
    transfer(&from, &to, KEY, &data).unwrap();
    to.apply(KEY, &data).unwrap();
    assert_eq!(to.dump(), [(b"a".to_vec(), b"before".to_vec())]);
}

#[test]
fn an_empty_region_snapshot_works() {
    let (from, to) = (node_with_alphabet(), Node::new());
    to.put(&[(b"0", b"in"), (b"1", b"in"), (b"a", b"out")]);
    let region = region(b"0", b"9");
    let data = from.snaps.build(&from.engine, KEY, &region).unwrap();
    assert_eq!(data.kv_count, 0);
    transfer(&from, &to, KEY, &data).unwrap();
    to.apply(KEY, &data).unwrap();
    assert_eq!(to.dump(), [(b"a".to_vec(), b"out".to_vec())]);
}

#[test]
fn a_corrupt_transfer_is_rejected_by_finish() {
    let (from, to) = (node_with_alphabet(), Node::new());
    let data = from
        .snaps
        .build(&from.engine, KEY, &region(b"", b""))
        .unwrap();
    let mut chunks = chunks_of(&from, KEY);
    let mut flipped = chunks[3].to_vec();
    flipped[2] ^= 0x10;
    chunks[3] = flipped.into();
    let mut writer = to.snaps.receiver(KEY, &data).unwrap();
    for chunk in &chunks {
        writer.write(chunk).unwrap();
    }
    let err = writer.finish().unwrap_err();
    assert!(matches!(err, SnapError::Corrupt { .. }), "{err}");
    assert!(!to.snaps.exists(KEY));
    assert!(!to.tmp_file(KEY).exists());
}

#[test]
fn a_truncated_transfer_is_rejected_by_finish() {
    let (from, to) = (node_with_alphabet(), Node::new());
    let data = from
        .snaps
        .build(&from.engine, KEY, &region(b"", b""))
        .unwrap();
    let chunks = chunks_of(&from, KEY);
    let mut writer = to.snaps.receiver(KEY, &data).unwrap();
    for chunk in &chunks[..chunks.len() - 1] {
        writer.write(chunk).unwrap();
    }
    let err = writer.finish().unwrap_err();
    assert!(err.to_string().contains("received"), "{err}");
    assert!(!to.snaps.exists(KEY));
    assert!(!to.tmp_file(KEY).exists());
}

#[test]
fn a_corrupt_or_truncated_file_is_rejected_by_apply_leaving_the_batch_alone() {
    let from = node_with_alphabet();
    let data = from
        .snaps
        .build(&from.engine, KEY, &region(b"", b""))
        .unwrap();
    let good = fs::read(from.file(KEY)).unwrap();
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x01;
    for bad in [flipped, good[..good.len() - 1].to_vec(), Vec::new()] {
        fs::write(from.file(KEY), &bad).unwrap();
        let mut wb = WriteBatch::default();
        wb.put(b"mine", b"untouched");
        let err = from
            .snaps
            .apply(&from.engine, KEY, &data, &mut wb)
            .unwrap_err();
        assert!(matches!(err, SnapError::Corrupt { .. }), "{err}");
        assert_eq!(wb.len(), 1);
    }
}

/// Files whose size and checksum match the metadata, but whose content
/// is not a valid snapshot of the region: refused by apply, never a panic.
#[test]
fn apply_checks_layout_count_and_range_behind_a_matching_checksum() {
    let from = node_with_alphabet();
    let data = from
        .snaps
        .build(&from.engine, KEY, &region(b"c", b"m"))
        .unwrap();
    let outside = SnapshotData {
        region: Some(region(b"d", b"m")),
        ..data.clone()
    };
    let miscounted = SnapshotData {
        kv_count: 9,
        ..data.clone()
    };
    let regionless = SnapshotData {
        region: None,
        ..data.clone()
    };
    let backwards = SnapshotData {
        region: Some(region(b"m", b"c")),
        ..data.clone()
    };
    let other_region = SnapshotData {
        region: Some(metapb::Region {
            id: 2,
            ..region(b"c", b"m")
        }),
        ..data.clone()
    };
    for bad in [outside, miscounted, regionless, backwards, other_region] {
        let err = from.apply(KEY, &bad).unwrap_err();
        assert!(matches!(err, SnapError::Corrupt { .. }), "{err}");
    }
    let garbage = b"FLOTSNAP\x01\x01\xff\xff\xff\xff\x0f".to_vec();
    fs::write(from.file(KEY), &garbage).unwrap();
    let announced = SnapshotData {
        file_size: garbage.len() as u64,
        checksum: crc32fast::hash(&garbage),
        ..data
    };
    let err = from.apply(KEY, &announced).unwrap_err();
    assert!(err.to_string().contains("record 0"), "{err}");
}

#[test]
fn writing_more_than_announced_is_refused() {
    let to = Node::new();
    let announced = SnapshotData {
        file_size: 10,
        ..Default::default()
    };
    let mut writer = to.snaps.receiver(KEY, &announced).unwrap();
    writer.write(&[0; 8]).unwrap();
    let err = writer.write(&[0; 3]).unwrap_err();
    assert!(
        matches!(
            err,
            SnapError::TooLarge {
                limit_bytes: 10,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(writer.written_bytes(), 8);
    drop(writer);
    assert!(!to.tmp_file(KEY).exists());
}

#[test]
fn a_key_has_one_writer_at_a_time_and_a_dropped_one_cleans_up() {
    let node = node_with_alphabet();
    let data = SnapshotData::default();
    let writer = node.snaps.receiver(KEY, &data).unwrap();
    assert!(node.tmp_file(KEY).exists());
    let busy = node.snaps.receiver(KEY, &data).unwrap_err();
    assert!(matches!(busy, SnapError::Busy(k) if k == KEY), "{busy}");
    let busy = node.snaps.build(&node.engine, KEY, &region(b"", b""));
    assert!(matches!(busy, Err(SnapError::Busy(_))));
    drop(writer);
    assert!(!node.tmp_file(KEY).exists());
    node.snaps.receiver(KEY, &data).unwrap();
}

#[test]
fn build_reuses_a_complete_file_and_rebuilds_a_damaged_one() {
    let node = node_with_alphabet();
    let whole = region(b"", b"");
    let first = node.snaps.build(&node.engine, KEY, &whole).unwrap();
    node.put(&[(b"new", b"pair")]);
    assert_eq!(node.snaps.build(&node.engine, KEY, &whole).unwrap(), first);
    fs::write(node.file(KEY), b"FLOTSNAP\x01").unwrap();
    let rebuilt = node.snaps.build(&node.engine, KEY, &whole).unwrap();
    assert_eq!(rebuilt.kv_count, 27);
}

#[test]
fn new_removes_leftover_tmp_files_only() {
    let dir = tempfile::tempdir().unwrap();
    let names = ["1_2_3.snap.tmp", "1_2_3.snap", "notes.txt", "x.tmp"];
    for name in names {
        fs::write(dir.path().join(name), b"x").unwrap();
    }
    let snaps = SnapManager::new(dir.path().to_path_buf()).unwrap();
    assert!(!dir.path().join("1_2_3.snap.tmp").exists());
    for name in &names[1..] {
        assert!(dir.path().join(name).exists(), "{name}");
    }
    assert!(snaps.exists(SnapKey::new(1, 2, 3)));
}

#[test]
fn gc_removes_the_unkept_snapshots_only() {
    let node = Node::new();
    let keys = [
        SnapKey::new(1, 1, 10),
        SnapKey::new(1, 1, 20),
        SnapKey::new(2, 1, 5),
    ];
    for key in keys {
        fs::write(node.file(key), b"x").unwrap();
    }
    for name in ["junk.snap", "+1_1_1.snap", "1_1_1.snap.bak"] {
        fs::write(node.snaps.dir().join(name), b"x").unwrap();
    }
    let _writer = node
        .snaps
        .receiver(SnapKey::new(3, 1, 1), &SnapshotData::default())
        .unwrap();
    let removed = node
        .snaps
        .gc(|k| k.region_id == 2 || k.index == 20)
        .unwrap();
    assert_eq!(removed, 1);
    assert!(!node.snaps.exists(keys[0]));
    assert!(node.snaps.exists(keys[1]) && node.snaps.exists(keys[2]));
    for name in [
        "junk.snap",
        "+1_1_1.snap",
        "1_1_1.snap.bak",
        "3_1_1.snap.tmp",
    ] {
        assert!(node.snaps.dir().join(name).exists(), "{name}");
    }
    node.snaps.delete(keys[1]).unwrap();
    node.snaps.delete(keys[1]).unwrap();
    assert!(!node.snaps.exists(keys[1]));
}

#[test]
fn a_missing_snapshot_is_reported_as_such() {
    let node = Node::new();
    assert!(matches!(
        node.snaps.chunks(KEY, 7),
        Err(SnapError::Missing(_))
    ));
    let err = node.apply(
        KEY,
        &SnapshotData {
            region: Some(region(b"", b"")),
            ..Default::default()
        },
    );
    assert!(matches!(err, Err(SnapError::Missing(_))));
}

#[test]
fn chunks_cover_the_file_in_order() {
    let node = node_with_alphabet();
    node.snaps
        .build(&node.engine, KEY, &region(b"", b""))
        .unwrap();
    let file = fs::read(node.file(KEY)).unwrap();
    let chunks = chunks_of(&node, KEY);
    assert!(chunks[..chunks.len() - 1].iter().all(|c| c.len() == 7));
    assert_eq!(chunks.concat(), file);
    let whole: Vec<_> = node.snaps.chunks(KEY, 0).unwrap().collect();
    assert_eq!(whole.len(), file.len());
}
