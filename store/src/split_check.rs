//! The split checker: one background thread that measures a region's data
//! and picks where to cut it, off the Raft pollers.
//!
//! A leader asks for a check when enough bytes were written to it since the
//! last one (`region-split-size / 16`), every `split-check-interval`. The
//! checker scans the region's range in the `default` column family, adding
//! up key and value sizes and remembering a key every `split-size / 32`
//! bytes; from those it picks the cut:
//! - up to twice the split size: one key near the middle;
//! - larger (a bulk load outran the checks): a key every split size, so
//!   one split brings every piece under the limit (at most
//!   [`MAX_SPLIT_KEYS`](crate::apply::admin::MAX_SPLIT_KEYS) cuts).
//!
//! Scanning reads what RocksDB holds, memtables included, so the figure is
//! exact rather than the SST-only estimate RocksDB's approximate sizes
//! give — at the cost of reading the region once per check, which is
//! bounded by the check cadence above. The result goes back to the peer as
//! a message; the peer decides what to do with it (its region may have
//! changed meanwhile).

use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;
use crossbeam_channel::{Sender, TrySendError};
use flotilla_proto::metapb;
use parking_lot::Mutex;

use crate::apply::admin::MAX_SPLIT_KEYS;
use crate::apply::exec::region_end;
use crate::engine::{Engine, CF_DEFAULT};

/// Checks waiting at most; more are refused (the leader asks again later).
const QUEUE_CAPACITY: usize = 4_096;
/// Samples per split size: how finely a cut can be placed.
const SAMPLES_PER_SPLIT: u64 = 32;

/// One region to measure.
#[derive(Clone, Debug)]
pub struct SplitCheckTask {
    /// The region as the leader knew it.
    pub region: metapb::Region,
    /// The size above which it should split.
    pub split_size: u64,
    /// Cut in the middle whatever the size (PD asked for a split without
    /// keys).
    pub force: bool,
}

/// What a check found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SplitCheckOutcome {
    /// The region's epoch when it was measured.
    pub epoch: metapb::RegionEpoch,
    /// Bytes of keys and values in it.
    pub size: u64,
    /// Keys in it.
    pub keys: u64,
    /// Where to cut (empty: no split needed).
    pub split_keys: Vec<Bytes>,
}

/// Delivers an outcome to a region's peer.
pub type Deliver = Arc<dyn Fn(u64, SplitCheckOutcome) + Send + Sync>;

/// The checker thread and its queue.
pub struct SplitChecker {
    tx: Mutex<Option<Sender<SplitCheckTask>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl SplitChecker {
    /// Starts the checker thread over `engine`.
    pub fn start(engine: Engine, deliver: Deliver) -> SplitChecker {
        let (tx, rx) = crossbeam_channel::bounded::<SplitCheckTask>(QUEUE_CAPACITY);
        let thread = std::thread::Builder::new()
            .name("split-check".into())
            .spawn(move || {
                for task in rx {
                    let region_id = task.region.id;
                    match measure(&engine, &task) {
                        Ok(outcome) => deliver(region_id, outcome),
                        Err(e) => {
                            tracing::warn!(region = region_id, error = %e, "split check failed")
                        }
                    }
                }
            })
            .expect("spawn split-check thread");
        SplitChecker {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        }
    }

    /// Queues a check; false if the queue is full or the checker stopped.
    pub fn schedule(&self, task: SplitCheckTask) -> bool {
        let Some(tx) = self.tx.lock().clone() else {
            return false;
        };
        match tx.try_send(task) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// Stops the thread after the check in progress.
    pub fn stop(&self) {
        self.tx.lock().take();
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

impl Drop for SplitChecker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Scans `task.region` and decides where to cut it.
pub fn measure(
    engine: &Engine,
    task: &SplitCheckTask,
) -> Result<SplitCheckOutcome, rocksdb::Error> {
    let region = &task.region;
    let step = (task.split_size / SAMPLES_PER_SPLIT).max(1);
    let end = region_end(region);
    let mut opts = rocksdb::ReadOptions::default();
    opts.set_iterate_upper_bound(end.to_vec());
    opts.fill_cache(false);
    let mut iter = engine.db().raw_iterator_cf_opt(engine.cf(CF_DEFAULT), opts);
    iter.seek(&region.start_key);
    // (bytes before the key, key): candidate cuts.
    let mut samples: Vec<(u64, Bytes)> = Vec::new();
    let (mut size, mut keys, mut next_sample) = (0u64, 0u64, step);
    while let (Some(k), Some(v)) = (iter.key(), iter.value()) {
        if size >= next_sample && k > &region.start_key[..] {
            samples.push((size, Bytes::copy_from_slice(k)));
            next_sample = size + step;
        }
        size += (k.len() + v.len()) as u64;
        keys += 1;
        iter.next();
    }
    iter.status()?;
    let split_keys = pick_cuts(&samples, size, task.split_size, task.force);
    Ok(SplitCheckOutcome {
        epoch: region.region_epoch.unwrap_or_default(),
        size,
        keys,
        split_keys,
    })
}

/// The cuts for a region of `size` bytes given its samples.
fn pick_cuts(samples: &[(u64, Bytes)], size: u64, split_size: u64, force: bool) -> Vec<Bytes> {
    if samples.is_empty() || (!force && size <= split_size) {
        return Vec::new();
    }
    if force || size <= split_size.saturating_mul(2) {
        let half = size / 2;
        let middle = samples
            .iter()
            .min_by_key(|(before, _)| before.abs_diff(half))
            .map(|(_, k)| k.clone());
        return middle.into_iter().collect();
    }
    let mut cuts = Vec::new();
    let mut next = split_size;
    for (before, key) in samples {
        if *before >= next && cuts.len() < MAX_SPLIT_KEYS {
            cuts.push(key.clone());
            next = before + split_size;
        }
    }
    cuts
}

#[cfg(test)]
mod tests {
    use super::*;
    use rocksdb::WriteBatch;

    fn fill(engine: &Engine, n: usize, value: usize) {
        let mut wb = WriteBatch::default();
        for i in 0..n {
            wb.put_cf(engine.cf(CF_DEFAULT), format!("k{i:06}"), vec![b'v'; value]);
        }
        engine.write(wb, false).unwrap();
    }

    fn task(start: &str, end: &str, split_size: u64) -> SplitCheckTask {
        SplitCheckTask {
            region: metapb::Region {
                id: 1,
                start_key: start.to_owned().into_bytes().into(),
                end_key: end.to_owned().into_bytes().into(),
                ..Default::default()
            },
            split_size,
            force: false,
        }
    }

    #[test]
    fn a_region_over_the_split_size_is_cut_near_its_middle() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        fill(&engine, 1_000, 93); // 100 bytes per pair
        let out = measure(&engine, &task("", "", 64_000)).unwrap();
        assert_eq!((out.size, out.keys), (100_000, 1_000));
        assert_eq!(out.split_keys.len(), 1);
        let cut: usize = std::str::from_utf8(&out.split_keys[0][1..])
            .unwrap()
            .parse()
            .unwrap();
        assert!((450..=550).contains(&cut), "cut at {cut}");
        // Under the size: no cut, unless forced.
        let mut t = task("", "", 200_000);
        assert!(measure(&engine, &t).unwrap().split_keys.is_empty());
        t.force = true;
        assert_eq!(measure(&engine, &t).unwrap().split_keys.len(), 1);
    }

    #[test]
    fn a_region_far_over_the_size_is_cut_into_pieces_within_its_range() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        fill(&engine, 1_000, 93);
        let out = measure(&engine, &task("k000100", "k000900", 10_000)).unwrap();
        assert_eq!(out.keys, 800);
        assert!(
            (7..=8).contains(&out.split_keys.len()),
            "{:?}",
            out.split_keys
        );
        let mut prev = Bytes::from("k000100");
        for k in &out.split_keys {
            assert!(*k > prev && k.as_ref() < b"k000900".as_slice());
            prev = k.clone();
        }
    }

    #[test]
    fn an_empty_or_single_key_region_is_never_cut() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        let mut t = task("", "", 1);
        t.force = true;
        assert!(measure(&engine, &t).unwrap().split_keys.is_empty());
        let mut wb = WriteBatch::default();
        wb.put_cf(engine.cf(CF_DEFAULT), "a", vec![0; 4096]);
        engine.write(wb, false).unwrap();
        let out = measure(&engine, &t).unwrap();
        assert!(out.split_keys.is_empty(), "the only key is the start");
    }
}
