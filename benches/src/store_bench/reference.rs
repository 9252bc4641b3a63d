//! The reference: the same puts against one RocksDB opened directly — no
//! Raft, no network, no replicas — with every write synced. One thread per
//! concurrent writer; RocksDB groups the concurrent synced writes into
//! shared WAL writes and fsyncs itself, so this is what group commit on
//! this disk can do.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rocksdb::{Options, WriteBatch, WriteOptions, DB};

use super::load::{key, values, PhaseResult};
use crate::pd_scale::rng::XorShift;

/// Keys written per unsynced batch while preloading.
const PRELOAD_BATCH: u64 = 1000;

/// What the reference writes: `writers` threads putting random keys of
/// `0..keys`, `value_size` bytes each, for `duration`.
#[derive(Clone, Copy, Debug)]
pub struct ReferenceLoad {
    /// Keys preloaded and written.
    pub keys: u64,
    /// Bytes per value.
    pub value_size: usize,
    /// Concurrent writer threads.
    pub writers: usize,
    /// How long the puts run.
    pub duration: Duration,
    /// Seed for keys and values.
    pub seed: u64,
}

/// The reference RocksDB, preloaded with the benchmark's keys.
pub struct Reference {
    db: DB,
}

impl Reference {
    /// Opens a fresh RocksDB at `dir` (the store's engine options: create
    /// if missing, two background jobs) and writes every key once.
    /// Blocking.
    pub fn open(dir: &Path, params: &ReferenceLoad) -> anyhow::Result<Reference> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.set_max_background_jobs(2);
        let db = DB::open(&opts, dir)
            .with_context(|| format!("opening the reference RocksDB at {}", dir.display()))?;
        let values = values(params.value_size, params.seed ^ 0x0072_6566);
        let mut i = 0;
        while i < params.keys {
            let mut batch = WriteBatch::default();
            for k in i..(i + PRELOAD_BATCH).min(params.keys) {
                batch.put(key(k), &values[(k as usize) % values.len()]);
            }
            db.write(batch).context("preloading the reference")?;
            i += PRELOAD_BATCH;
        }
        db.flush_wal(true).context("syncing the reference's WAL")?;
        Ok(Reference { db })
    }

    /// `writers` threads each putting random keys, synced, one at a time,
    /// for `duration`. Blocking.
    pub fn puts(&self, params: &ReferenceLoad, run: u64) -> PhaseResult {
        let window = params.duration;
        let end = Instant::now() + window;
        let mut result = PhaseResult::new(params.writers, window);
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..params.writers as u64)
                .map(|t| {
                    let seed = params.seed ^ (run << 40) ^ (t << 8) ^ 0x0052_4546;
                    let values = values(params.value_size, seed ^ 0x76_616c);
                    let db = &self.db;
                    scope.spawn(move || {
                        let mut opts = WriteOptions::default();
                        opts.set_sync(true);
                        let mut rng = XorShift::new(seed);
                        let mut tally = PhaseResult::new(1, window);
                        loop {
                            let k = key(rng.below(params.keys));
                            let v = &values[rng.below(values.len() as u64) as usize];
                            let sent = Instant::now();
                            let r = db.put_opt(&k, v, &opts);
                            let done = Instant::now();
                            if done >= end {
                                break;
                            }
                            match r {
                                Ok(()) => tally.record(done - sent),
                                Err(e) => {
                                    tally.fail(format!("RocksDB put: {e}"));
                                    std::thread::sleep(Duration::from_millis(10));
                                }
                            }
                        }
                        tally
                    })
                })
                .collect();
            for h in handles {
                match h.join() {
                    Ok(tally) => result.merge(tally),
                    Err(_) => result.fail("reference writer panicked".into()),
                }
            }
        });
        result
    }
}
