//! One apply thread: drains its queue into one write batch at a time.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use flotilla_proto::kvrpcpb::RegionError;
use flotilla_proto::metapb;
use flotilla_proto::raft_cmdpb::{
    admin_request, AdminRequest, ChangePeerContext, RaftCmdHeader, RaftCmdRequest,
};
use flotilla_proto::raft_serverpb::RaftApplyState;
use prost::Message as _;
use raftcore::{ConfChange, Entry, EntryType, Snapshot, SnapshotMetadata};
use rocksdb::WriteBatch;

use super::admin::{self, ExecResult};
use super::conf_change;
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
    /// Bytes of commands applied since registration.
    written_bytes: u64,
    /// While a snapshot of the region is being built from the live
    /// engine, the region's further tasks wait here (other regions of this
    /// thread go on).
    held: Option<VecDeque<ApplyTask>>,
}

/// The state of one apply thread.
pub(super) struct Worker {
    engine: Engine,
    snap: SnapManager,
    wake: Wake,
    delegates: HashMap<u64, Delegate>,
    metrics: Arc<StoreMetrics>,
    /// Snapshot builders report the region they finished here.
    built_tx: Sender<u64>,
    built_rx: Receiver<u64>,
    gate: Arc<super::Gate>,
}

/// One write batch being filled, and what to deliver once it is written.
#[derive(Default)]
struct Batch {
    wb: WriteBatch,
    overlay: Overlay,
    touched: Vec<u64>,
    replies: Vec<(WriteCallback, Result<WriteResponse, RegionError>)>,
    /// Admin results for the regions' peers, in apply order.
    results: Vec<(u64, ExecResult)>,
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
        gate: Arc<super::Gate>,
    ) -> Worker {
        let (built_tx, built_rx) = crossbeam_channel::unbounded();
        Worker {
            engine,
            snap,
            wake,
            delegates: HashMap::new(),
            metrics,
            built_tx,
            built_rx,
            gate,
        }
    }

    pub(super) fn run(mut self, rx: Receiver<ApplyTask>) {
        loop {
            let built_rx = self.built_rx.clone();
            crossbeam_channel::select! {
                recv(rx) -> first => {
                    let Ok(first) = first else { return };
                    self.gate.wait_open();
                    let mut batch = Batch::default();
                    let tasks =
                        std::iter::once(first).chain(rx.try_iter().take(MAX_TASKS_PER_BATCH - 1));
                    for task in tasks.collect::<Vec<_>>() {
                        self.handle(task, &mut batch);
                    }
                    self.flush(batch);
                }
                recv(built_rx) -> region_id => {
                    if let Ok(region_id) = region_id {
                        self.resume(region_id);
                    }
                }
            }
        }
    }

    /// A region's snapshot is built: apply what waited meanwhile.
    fn resume(&mut self, region_id: u64) {
        let Some(held) = self
            .delegates
            .get_mut(&region_id)
            .and_then(|d| d.held.take())
        else {
            return;
        };
        let mut batch = Batch::default();
        for task in held {
            self.handle(task, &mut batch);
        }
        self.flush(batch);
    }

    /// Writes the batch (data and the apply states of the regions it
    /// touched, together), then answers and reports.
    fn flush(&mut self, batch: Batch) {
        let Batch {
            mut wb,
            touched,
            replies,
            results,
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
        let splits = results
            .iter()
            .any(|(_, r)| matches!(r, ExecResult::Split { .. }));
        fail::point("apply_before_write");
        if splits {
            fail::point("apply_split_before_write");
        }
        let started = std::time::Instant::now();
        if let Err(e) = self.engine.write_acknowledged(wb, false) {
            // The engine is gone (disk failure): nothing may be
            // acknowledged, and the peer must not think it applied.
            panic!("apply write failed: {e}");
        }
        self.metrics
            .apply_duration
            .observe(started.elapsed().as_secs_f64());
        fail::point("apply_after_write");
        if splits {
            // Durable, but no new peer started and no one told.
            fail::point("apply_split_after_write");
        }
        for (cb, result) in replies {
            let _ = cb.send(result);
        }
        // Each region's admin results, in apply order.
        let mut by_region: HashMap<u64, Vec<ExecResult>> = HashMap::new();
        for (id, r) in results {
            by_region.entry(id).or_default().push(r);
        }
        for id in touched {
            if let Some(d) = self.delegates.get(&id) {
                let mut progress = d.progress.lock();
                progress.applied = Some(ApplyResult {
                    apply_state: d.apply_state,
                    applied_term: d.applied_term,
                    written_bytes: d.written_bytes,
                });
                progress
                    .results
                    .extend(by_region.remove(&id).unwrap_or_default());
                drop(progress);
                (self.wake)(id);
            }
        }
    }

    fn handle(&mut self, task: ApplyTask, batch: &mut Batch) {
        let held = match &task {
            ApplyTask::Apply { region_id, .. }
            | ApplyTask::CompactLog { region_id, .. }
            | ApplyTask::GenSnapshot { region_id } => self
                .delegates
                .get_mut(region_id)
                .and_then(|d| d.held.as_mut()),
            ApplyTask::Register { .. } | ApplyTask::Unregister { .. } => None,
        };
        if let Some(held) = held {
            held.push_back(task);
            return;
        }
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
                    written_bytes: 0,
                    held: None,
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
                // the snapshot claims: flush first. While the builder reads
                // the region's range nothing writes it — its tasks are held.
                self.flush(std::mem::take(batch));
                self.start_snapshot(region_id);
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

    /// Builds a snapshot of the region as applied so far on a thread of
    /// its own (reading up to a region's size), holding only this region's
    /// tasks until it is done.
    fn start_snapshot(&mut self, region_id: u64) {
        let Some(d) = self.delegates.get_mut(&region_id) else {
            return;
        };
        d.held = Some(VecDeque::new());
        let job = SnapshotJob {
            engine: self.engine.clone(),
            snap: self.snap.clone(),
            region: d.region.clone(),
            index: d.apply_state.applied_index,
            term: d.applied_term,
            progress: d.progress.clone(),
            wake: self.wake.clone(),
            done: self.built_tx.clone(),
        };
        let spawned = std::thread::Builder::new()
            .name(format!("snap-gen-{region_id}"))
            .spawn(move || job.run());
        if let Err(e) = spawned {
            tracing::warn!(region = region_id, error = %e, "no thread to build a snapshot");
            d.progress.lock().snapshot = Some(None);
            d.held = None;
            (self.wake)(region_id);
        }
    }
}

/// One snapshot to build, off the apply thread.
struct SnapshotJob {
    engine: Engine,
    snap: SnapManager,
    region: metapb::Region,
    index: u64,
    term: u64,
    progress: ApplyProgress,
    wake: Wake,
    done: Sender<u64>,
}

impl SnapshotJob {
    fn run(self) {
        let region_id = self.region.id;
        let key = SnapKey {
            region_id,
            term: self.term,
            index: self.index,
        };
        let built = match self.snap.build(&self.engine, key, &self.region) {
            Ok(data) => Some(Snapshot {
                data: data.encode_to_vec().into(),
                metadata: SnapshotMetadata {
                    conf_state: conf_state_of(&self.region),
                    index: self.index,
                    term: self.term,
                },
            }),
            Err(e) => {
                tracing::warn!(region = region_id, error = %e, "building a snapshot failed");
                None
            }
        };
        self.progress.lock().snapshot = Some(built);
        let _ = self.done.send(region_id);
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
    d.written_bytes += entry.data.len() as u64;
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
    d: &mut Delegate,
    entry: &Entry,
    batch: &mut Batch,
) -> Result<WriteResponse, RegionError> {
    if entry.entry_type == EntryType::ConfChange {
        return execute_conf_change(engine, d, entry, batch);
    }
    // Empty entries (a new leader's first) write nothing.
    if entry.data.is_empty() {
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
    if let Some(admin) = cmd.admin {
        return execute_admin(engine, d, cmd.header, admin, batch);
    }
    match exec::execute(engine, &d.region, cmd, &mut batch.wb, &mut batch.overlay) {
        Ok(result) => result,
        Err(e) => panic!("apply read failed: {e}"),
    }
}

fn execute_conf_change(
    engine: &Engine,
    d: &mut Delegate,
    entry: &Entry,
    batch: &mut Batch,
) -> Result<WriteResponse, RegionError> {
    let decoded = ConfChange::decode(&entry.data).map_err(|e| e.to_string());
    let decoded = decoded.and_then(|cc| {
        if cc.context.is_empty() {
            return Ok((cc, None));
        }
        let ctx = ChangePeerContext::decode(cc.context.clone()).map_err(|e| e.to_string())?;
        Ok((cc, Some(ctx)))
    });
    let (cc, ctx) = match decoded {
        Ok(v) => v,
        Err(e) => {
            // Every replica decodes the same bytes alike and skips it.
            tracing::error!(region = d.region.id, index = entry.index, error = %e, "undecodable membership change skipped");
            return Err(region_error::stale_command());
        }
    };
    let region = conf_change::region_after(&d.region, &cc, ctx.as_ref())?;
    tracing::info!(
        region = region.id,
        conf_ver = region.region_epoch.map_or(0, |e| e.conf_ver),
        peers = ?region.peers.iter().map(|p| (p.id, p.store_id, p.role)).collect::<Vec<_>>(),
        "membership changed"
    );
    admin::put_local_state(engine, &mut batch.wb, &region);
    d.region = region.clone();
    batch
        .results
        .push((region.id, ExecResult::ChangePeer { cc, region }));
    Ok(WriteResponse::default())
}

fn execute_admin(
    engine: &Engine,
    d: &mut Delegate,
    header: Option<RaftCmdHeader>,
    admin: AdminRequest,
    batch: &mut Batch,
) -> Result<WriteResponse, RegionError> {
    let proposed = header.and_then(|h| h.region_epoch).unwrap_or_default();
    let result = match admin.cmd {
        Some(admin_request::Cmd::Splits(req)) => {
            admin::exec_split(engine, &d.region, proposed, &req, &mut batch.wb)
        }
        None => return Err(region_error::stale_command()),
    };
    let result = match result {
        Ok(Ok(r)) => r,
        Ok(Err(refusal)) => return Err(refusal),
        Err(e) => panic!("apply read failed: {e}"),
    };
    let ExecResult::Split { regions, .. } = &result else {
        unreachable!("splits are the only admin command")
    };
    tracing::info!(
        region = d.region.id,
        into = regions.len(),
        version = regions[0].region_epoch.map_or(0, |e| e.version),
        "region split"
    );
    d.region = regions[0].clone();
    let response = WriteResponse {
        regions: regions.clone(),
        ..Default::default()
    };
    batch.results.push((d.region.id, result));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use flotilla_proto::raft_cmdpb::{request::Cmd, PutRequest, Request};
    use parking_lot::Mutex;

    use super::*;
    use crate::apply::Progress;
    use crate::engine::CF_DEFAULT;

    fn put_entry(index: u64) -> Entry {
        let cmd = RaftCmdRequest {
            header: None,
            admin: None,
            requests: vec![Request {
                cmd: Some(Cmd::Put(PutRequest {
                    key: format!("k{index:02}").into(),
                    value: "v".into(),
                })),
            }],
        };
        Entry {
            index,
            term: 6,
            entry_type: EntryType::Normal,
            data: cmd.encode_to_vec().into(),
        }
    }

    /// A snapshot holds exactly the region as of its index, even with the
    /// region's later entries queued behind the request; those apply once
    /// the build is done.
    #[test]
    fn a_snapshot_holds_exactly_its_index_and_later_entries_wait_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(&dir.path().join("db")).unwrap();
        let snap = SnapManager::new(dir.path().join("snap")).unwrap();
        let metrics = Arc::new(StoreMetrics::new());
        let worker = Worker::new(
            engine.clone(),
            snap.clone(),
            Arc::new(|_| {}),
            metrics,
            Default::default(),
        );
        let (tx, rx) = crossbeam_channel::unbounded();
        let progress: ApplyProgress = Arc::new(Mutex::new(Progress::default()));
        let region = metapb::Region {
            id: 9,
            peers: vec![metapb::Peer {
                id: 90,
                store_id: 1,
                role: 0,
            }],
            ..Default::default()
        };
        tx.send(ApplyTask::Register {
            region,
            apply_state: RaftApplyState {
                applied_index: 5,
                truncated_index: 5,
                truncated_term: 5,
            },
            applied_term: 5,
            progress: progress.clone(),
        })
        .unwrap();
        let apply = |range: std::ops::RangeInclusive<u64>| ApplyTask::Apply {
            region_id: 9,
            entries: range.map(put_entry).collect(),
            proposals: Vec::new(),
        };
        tx.send(apply(6..=10)).unwrap();
        tx.send(ApplyTask::GenSnapshot { region_id: 9 }).unwrap();
        for i in 11..=60 {
            tx.send(apply(i..=i)).unwrap();
        }
        let thread = std::thread::spawn(move || worker.run(rx));
        let deadline = Instant::now() + Duration::from_secs(30);
        let snapshot = loop {
            if let Some(s) = progress.lock().snapshot.take() {
                break s.expect("the snapshot builds");
            }
            assert!(Instant::now() < deadline, "no snapshot");
            std::thread::sleep(Duration::from_millis(5));
        };
        assert_eq!(snapshot.metadata.index, 10);
        let data = flotilla_proto::raft_serverpb::SnapshotData::decode(snapshot.data).unwrap();
        assert_eq!(data.kv_count, 5, "entries 6..=10 and nothing later");
        loop {
            let applied = progress
                .lock()
                .applied
                .as_ref()
                .map(|r| r.apply_state.applied_index);
            if applied == Some(60) {
                break;
            }
            assert!(Instant::now() < deadline, "held entries never applied");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(engine.get(CF_DEFAULT, b"k60").unwrap().is_some());
        drop(tx);
        thread.join().unwrap();
    }
}
