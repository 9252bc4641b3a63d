//! One apply thread: drains its queue into one write batch at a time.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crossbeam_channel::Receiver;
use flotilla_proto::kvrpcpb::RegionError;
use flotilla_proto::metapb;
use flotilla_proto::raft_cmdpb::RaftCmdRequest;
use flotilla_proto::raft_serverpb::RaftApplyState;
use prost::Message as _;
use raftcore::{Entry, EntryType, Snapshot, SnapshotMetadata};
use rocksdb::WriteBatch;

use super::exec::{self, Overlay};
use super::{ApplyProgress, ApplyTask, Proposal, Wake};
use crate::engine::keys::apply_state_key;
use crate::engine::{Engine, CF_META};
use crate::fail;
use crate::metrics::StoreMetrics;
use crate::peer::msg::{ApplyResult, WriteCallback, WriteResponse};
use crate::peer::storage::conf_state_of;
use crate::region_error;
use crate::snap::{SnapKey, SnapManager};

/// Most tasks applied in one write batch.
const MAX_TASKS_PER_BATCH: usize = 256;

/// A region as its apply thread knows it.
struct Delegate {
    region: metapb::Region,
    apply_state: RaftApplyState,
    applied_term: u64,
    progress: ApplyProgress,
}

/// The state of one apply thread.
pub(super) struct Worker {
    engine: Engine,
    snap: SnapManager,
    wake: Wake,
    delegates: HashMap<u64, Delegate>,
    metrics: Arc<StoreMetrics>,
}

/// One write batch being filled, and what to deliver once it is written.
#[derive(Default)]
struct Batch {
    wb: WriteBatch,
    overlay: Overlay,
    touched: Vec<u64>,
    replies: Vec<(WriteCallback, Result<WriteResponse, RegionError>)>,
}

impl Batch {
    fn touch(&mut self, region_id: u64) {
        if !self.touched.contains(&region_id) {
            self.touched.push(region_id);
        }
    }
}

impl Worker {
    pub(super) fn new(
        engine: Engine,
        snap: SnapManager,
        wake: Wake,
        metrics: Arc<StoreMetrics>,
    ) -> Worker {
        Worker {
            engine,
            snap,
            wake,
            delegates: HashMap::new(),
            metrics,
        }
    }

    pub(super) fn run(mut self, rx: Receiver<ApplyTask>) {
        while let Ok(first) = rx.recv() {
            let mut batch = Batch::default();
            let tasks = std::iter::once(first).chain(rx.try_iter().take(MAX_TASKS_PER_BATCH - 1));
            for task in tasks.collect::<Vec<_>>() {
                self.handle(task, &mut batch);
            }
            self.flush(batch);
        }
    }

    /// Writes the batch (data and the apply states of the regions it
    /// touched, together), then answers and reports.
    fn flush(&mut self, batch: Batch) {
        let Batch {
            mut wb,
            touched,
            replies,
            ..
        } = batch;
        if touched.is_empty() {
            return;
        }
        for id in &touched {
            if let Some(d) = self.delegates.get(id) {
                wb.put_cf(
                    self.engine.cf(CF_META),
                    apply_state_key(*id),
                    d.apply_state.encode_to_vec(),
                );
            }
        }
        fail::point("apply_before_write");
        let started = std::time::Instant::now();
        if let Err(e) = self.engine.write(wb, false) {
            // The engine is gone (disk failure): nothing may be
            // acknowledged, and the peer must not think it applied.
            panic!("apply write failed: {e}");
        }
        self.metrics
            .apply_duration
            .observe(started.elapsed().as_secs_f64());
        fail::point("apply_after_write");
        for (cb, result) in replies {
            let _ = cb.send(result);
        }
        for id in touched {
            if let Some(d) = self.delegates.get(&id) {
                d.progress.lock().applied = Some(ApplyResult {
                    apply_state: d.apply_state,
                    applied_term: d.applied_term,
                });
                (self.wake)(id);
            }
        }
    }

    fn handle(&mut self, task: ApplyTask, batch: &mut Batch) {
        match task {
            ApplyTask::Register {
                region,
                apply_state,
                applied_term,
                progress,
            } => {
                let delegate = Delegate {
                    region,
                    apply_state,
                    applied_term,
                    progress,
                };
                self.delegates.insert(delegate.region.id, delegate);
            }
            ApplyTask::Unregister { region_id } => {
                self.delegates.remove(&region_id);
            }
            ApplyTask::CompactLog {
                region_id,
                index,
                term,
            } => {
                if let Some(d) = self.delegates.get_mut(&region_id) {
                    if index > d.apply_state.truncated_index && index <= d.apply_state.applied_index
                    {
                        d.apply_state.truncated_index = index;
                        d.apply_state.truncated_term = term;
                        batch.touch(region_id);
                    }
                }
            }
            ApplyTask::GenSnapshot { region_id } => {
                // The region's data must be written up to the applied index
                // the snapshot claims: flush first. While this thread builds
                // the file nothing else writes the region's keys.
                self.flush(std::mem::take(batch));
                self.build_snapshot(region_id);
            }
            ApplyTask::Apply {
                region_id,
                entries,
                proposals,
            } => {
                let Some(d) = self.delegates.get_mut(&region_id) else {
                    // Unregistered: the region is going away; callers see
                    // their callbacks dropped.
                    return;
                };
                tracing::trace!(
                    region = region_id,
                    entries = entries.len(),
                    proposals = proposals.len(),
                    "apply"
                );
                let mut proposals: VecDeque<Proposal> = proposals.into();
                for entry in entries {
                    apply_entry(&self.engine, d, entry, &mut proposals, batch);
                }
                for p in proposals {
                    batch
                        .replies
                        .push((p.cb, Err(region_error::stale_command())));
                }
                batch.touch(region_id);
            }
        }
    }

    fn build_snapshot(&mut self, region_id: u64) {
        let Some(d) = self.delegates.get(&region_id) else {
            return;
        };
        let index = d.apply_state.applied_index;
        let key = SnapKey {
            region_id,
            term: d.applied_term,
            index,
        };
        let built = match self.snap.build(&self.engine, key, &d.region) {
            Ok(data) => Some(Snapshot {
                data: data.encode_to_vec().into(),
                metadata: SnapshotMetadata {
                    conf_state: conf_state_of(&d.region),
                    index,
                    term: d.applied_term,
                },
            }),
            Err(e) => {
                tracing::warn!(region = region_id, error = %e, "building a snapshot failed");
                None
            }
        };
        d.progress.lock().snapshot = Some(built);
        (self.wake)(region_id);
    }
}

fn apply_entry(
    engine: &Engine,
    d: &mut Delegate,
    entry: Entry,
    proposals: &mut VecDeque<Proposal>,
    batch: &mut Batch,
) {
    if entry.index <= d.apply_state.applied_index {
        return;
    }
    let result = execute_entry(engine, d, &entry, batch);
    while let Some(p) = proposals.front() {
        if p.index > entry.index {
            break;
        }
        let Some(p) = proposals.pop_front() else {
            break;
        };
        let reply = if p.index == entry.index && p.term == entry.term {
            result.clone()
        } else {
            Err(region_error::stale_command())
        };
        batch.replies.push((p.cb, reply));
    }
    d.apply_state.applied_index = entry.index;
    d.applied_term = entry.term;
}

fn execute_entry(
    engine: &Engine,
    d: &Delegate,
    entry: &Entry,
    batch: &mut Batch,
) -> Result<WriteResponse, RegionError> {
    // Empty entries (a new leader's first) and membership changes (carried
    // out by the peer) write no data.
    if entry.entry_type != EntryType::Normal || entry.data.is_empty() {
        return Ok(WriteResponse::default());
    }
    let cmd = match RaftCmdRequest::decode(entry.data.clone()) {
        Ok(cmd) => cmd,
        Err(e) => {
            // Every replica decodes the same bytes alike, so skipping keeps
            // them identical; the proposer encoded it, so this is a bug.
            tracing::error!(region = d.region.id, index = entry.index, error = %e, "undecodable command skipped");
            return Err(region_error::stale_command());
        }
    };
    match exec::execute(engine, &d.region, cmd, &mut batch.wb, &mut batch.overlay) {
        Ok(result) => result,
        Err(e) => panic!("apply read failed: {e}"),
    }
}
