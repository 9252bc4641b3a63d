//! The Raft loop: one thread that owns PD's [`RawNode`], persists every
//! Ready with one fsynced write, sends messages, and applies committed
//! entries to the `meta` column family.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use parking_lot::RwLock;
use raftcore::{ConfChange, ConfState, Config, RawNode, Ready, StateRole};
use tokio::sync::{oneshot, watch};

use super::apply::{self, Applied, ConfChangeContext};
use super::handle::{Input, LeaderEvent, ProposeError, RaftHandle, RaftStatus};
use crate::storage::meta::Command;
use crate::storage::{LogStorage, StorageError};

/// Where the loop sends messages for other members.
pub trait MessageSink: Send + 'static {
    /// Sends messages; must not block (queue or drop).
    fn send(&self, msgs: Vec<raftcore::Message>);
}

/// The loop's settings.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This member's ID.
    pub id: u64,
    /// Time between Raft ticks.
    pub tick_interval: Duration,
    /// Election timeout, in ticks (randomized up to twice this).
    pub election_ticks: usize,
    /// Leader heartbeat interval, in ticks.
    pub heartbeat_ticks: usize,
    /// Log entries kept behind the applied index at compaction.
    pub compact_keep_entries: u64,
    /// Compact once this many applied entries beyond the kept ones exist.
    pub compact_threshold_entries: u64,
    /// Capacity of the loop's input queue.
    pub input_capacity: usize,
}

/// Starts the loop on its own thread. Fails if the storage cannot be read
/// or raftcore rejects the configuration.
pub fn spawn(
    cfg: NodeConfig,
    storage: LogStorage,
    sink: Box<dyn MessageSink>,
) -> anyhow::Result<(RaftHandle, std::thread::JoinHandle<()>)> {
    let mut rc = Config::new(cfg.id);
    rc.election_ticks = cfg.election_ticks;
    rc.heartbeat_ticks = cfg.heartbeat_ticks;
    rc.applied = storage.applied();
    rc.pre_vote = true;
    rc.check_quorum = true;
    rc.max_size_per_msg = 1 << 20;
    rc.max_inflight_msgs = 256;
    rc.seed = cfg.id ^ seed_from_clock();
    let raw = RawNode::new(&rc, storage)?;
    let (tx, rx) = crossbeam_channel::bounded(cfg.input_capacity);
    let status = Arc::new(RwLock::new(RaftStatus::default()));
    let (leader_tx, leader_rx) = watch::channel(LeaderEvent::default());
    let handle = RaftHandle {
        tx,
        status: status.clone(),
        leader: leader_rx,
    };
    let mut node = Node {
        cfg,
        raw,
        sink,
        status,
        leader_tx,
        term_start: None,
        next_seq: 1,
        pending: BTreeMap::new(),
    };
    node.publish_status();
    let thread = std::thread::Builder::new()
        .name("pd-raft".into())
        .spawn(move || node.run(rx))?;
    Ok((handle, thread))
}

fn seed_from_clock() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

struct Pending {
    term: u64,
    done: oneshot::Sender<Result<(), ProposeError>>,
}

struct Node {
    cfg: NodeConfig,
    raw: RawNode<LogStorage>,
    sink: Box<dyn MessageSink>,
    status: Arc<RwLock<RaftStatus>>,
    leader_tx: watch::Sender<LeaderEvent>,
    /// While leading: the last log index when leadership began; once
    /// applied, every entry of earlier terms is in the state machine.
    term_start: Option<u64>,
    next_seq: u64,
    /// Proposals of this member awaiting apply, by sequence number.
    pending: BTreeMap<u64, Pending>,
}

impl Node {
    fn run(mut self, rx: Receiver<Input>) {
        let mut next_tick = Instant::now() + self.cfg.tick_interval;
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(Input::Shutdown) | Err(RecvTimeoutError::Disconnected) => break,
                Ok(input) => self.handle_input(input),
                Err(RecvTimeoutError::Timeout) => {}
            }
            // Drain what queued up meanwhile, bounded so ticks stay on time.
            for _ in 0..4096 {
                match rx.try_recv() {
                    Ok(Input::Shutdown) => return self.stop(),
                    Ok(input) => self.handle_input(input),
                    Err(_) => break,
                }
            }
            let now = Instant::now();
            if now >= next_tick {
                self.raw.tick();
                next_tick += self.cfg.tick_interval;
                if next_tick < now {
                    // Fell far behind (a long fsync): don't burst ticks.
                    next_tick = now + self.cfg.tick_interval;
                }
            }
            if let Err(e) = self.process_ready() {
                // A failed write leaves the log in an unknown state; going on
                // could acknowledge what is not durable.
                tracing::error!(error = %e, "PD storage failed; stopping the Raft loop");
                break;
            }
        }
        self.stop();
    }

    fn stop(&mut self) {
        self.fail_pending(ProposeError::Stopped);
        let _ = self.leader_tx.send(LeaderEvent::default());
    }

    fn handle_input(&mut self, input: Input) {
        match input {
            Input::Propose {
                ops,
                leader_term,
                done,
            } => self.propose(ops, leader_term, done),
            Input::ConfChange {
                change,
                member,
                done,
            } => self.propose_conf_change(change, member, done),
            Input::Message(m) => {
                if let Err(e) = self.raw.step(m) {
                    tracing::debug!(error = %e, "dropped a Raft message");
                }
            }
            Input::Unreachable(id) => self.raw.report_unreachable(id),
            Input::SnapshotStatus(id, status) => self.raw.report_snapshot(id, status),
            Input::TransferLeader(id) => {
                if let Err(e) = self.raw.transfer_leader(id) {
                    tracing::info!(error = %e, to = id, "leader transfer refused");
                }
            }
            Input::Shutdown => {}
        }
    }

    fn propose(
        &mut self,
        ops: Vec<crate::storage::meta::Op>,
        leader_term: Option<u64>,
        done: oneshot::Sender<Result<(), ProposeError>>,
    ) {
        if let Some(term) = leader_term {
            let raft = self.raw.raft();
            if raft.state != StateRole::Leader || raft.term != term {
                let _ = done.send(Err(ProposeError::Refused(format!(
                    "no longer the leader of term {term}"
                ))));
                return;
            }
        }
        let seq = self.take_seq();
        let cmd = Command {
            proposer: self.cfg.id,
            seq,
            ops,
        };
        match self.raw.propose(cmd.encode()) {
            Ok(()) => self.track(seq, done),
            Err(e) => {
                let _ = done.send(Err(ProposeError::Refused(e.to_string())));
            }
        }
    }

    fn propose_conf_change(
        &mut self,
        change: raftcore::ConfChangeSingle,
        member: Option<flotilla_proto::pdpb::Member>,
        done: oneshot::Sender<Result<(), ProposeError>>,
    ) {
        let seq = self.take_seq();
        let mut cc = ConfChange::new([change]);
        cc.context = ConfChangeContext {
            proposer: self.cfg.id,
            seq,
            member,
        }
        .encode();
        match self.raw.propose_conf_change(&cc) {
            Ok(()) => self.track(seq, done),
            Err(e) => {
                let _ = done.send(Err(ProposeError::Refused(e.to_string())));
            }
        }
    }

    fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    fn track(&mut self, seq: u64, done: oneshot::Sender<Result<(), ProposeError>>) {
        let term = self.raw.raft().term;
        self.pending.insert(seq, Pending { term, done });
    }

    fn complete(&mut self, proposer: u64, seq: u64) {
        if proposer != self.cfg.id {
            return;
        }
        if let Some(p) = self.pending.remove(&seq) {
            let _ = p.done.send(Ok(()));
        }
    }

    fn fail_pending(&mut self, err: ProposeError) {
        for (_, p) in std::mem::take(&mut self.pending) {
            let _ = p.done.send(Err(err.clone()));
        }
    }

    fn process_ready(&mut self) -> Result<(), StorageError> {
        if !self.raw.has_ready() {
            return Ok(());
        }
        let mut rd = self.raw.ready();
        if let Some(ss) = &rd.soft_state {
            self.on_role_change(ss.role);
        }
        self.sink.send(std::mem::take(&mut rd.messages));
        self.persist(&rd)?;
        self.sink.send(std::mem::take(&mut rd.persisted_messages));
        let committed = std::mem::take(&mut rd.committed_entries);
        self.raw.advance(rd);
        self.apply(committed)?;
        self.raw.storage_mut().maybe_compact(
            self.cfg.compact_keep_entries,
            self.cfg.compact_threshold_entries,
        )?;
        self.publish_status();
        Ok(())
    }

    fn persist(&mut self, rd: &Ready) -> Result<(), StorageError> {
        let storage = self.raw.storage_mut();
        if let Some(snapshot) = &rd.snapshot {
            storage.apply_snapshot(snapshot)?;
        }
        if !rd.entries.is_empty() || rd.hard_state.is_some() {
            storage.append(&rd.entries, rd.hard_state, rd.must_sync)?;
        }
        Ok(())
    }

    fn apply(&mut self, entries: Vec<raftcore::Entry>) -> Result<(), StorageError> {
        let Some(last) = entries.last().map(|e| e.index) else {
            return Ok(());
        };
        let mut done = Vec::new();
        let mut conf_state: Option<ConfState> = None;
        let storage = self.raw.storage();
        let engine = storage.engine().clone();
        let mut batch = engine.batch();
        for entry in &entries {
            match apply::apply_entry(&engine, &mut batch, entry)? {
                Applied::Nothing => {}
                Applied::Command { proposer, seq } => done.push((proposer, seq)),
                Applied::ConfChange(cc, ctx) => {
                    // A refused change (raftcore validated it at propose
                    // time; this cannot fail for a committed entry) leaves
                    // the membership unchanged.
                    match self.raw.apply_conf_change(&cc) {
                        Ok(cs) => conf_state = Some(cs),
                        Err(e) => tracing::warn!(error = %e, "committed conf change not applied"),
                    }
                    done.push((ctx.proposer, ctx.seq));
                }
            }
        }
        self.raw
            .storage_mut()
            .finish_apply(batch, last, conf_state)?;
        self.raw.advance_apply_to(last);
        for (proposer, seq) in done {
            self.complete(proposer, seq);
        }
        self.maybe_leader_ready();
        Ok(())
    }

    fn on_role_change(&mut self, role: StateRole) {
        let term = self.raw.raft().term;
        if role == StateRole::Leader {
            self.term_start = Some(self.raw.raft().raft_log.last_index());
            tracing::info!(term, "became PD leader");
        } else {
            self.term_start = None;
        }
        // Proposals of an earlier term may or may not commit: tell their
        // callers the outcome is unknown.
        let stale: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.term != term || role != StateRole::Leader)
            .map(|(seq, _)| *seq)
            .collect();
        for seq in stale {
            if let Some(p) = self.pending.remove(&seq) {
                let _ = p.done.send(Err(ProposeError::Dropped));
            }
        }
        let _ = self.leader_tx.send(LeaderEvent { term, ready: false });
        self.maybe_leader_ready();
    }

    fn maybe_leader_ready(&mut self) {
        let Some(start) = self.term_start else {
            return;
        };
        if self.raw.storage().applied() >= start && self.raw.raft().state == StateRole::Leader {
            let term = self.raw.raft().term;
            self.leader_tx.send_if_modified(|ev| {
                let next = LeaderEvent { term, ready: true };
                let changed = *ev != next;
                *ev = next;
                changed
            });
        }
    }

    fn publish_status(&mut self) {
        let raft = self.raw.raft();
        let mut status = self.status.write();
        status.id = self.cfg.id;
        status.term = raft.term;
        status.role = raft.state;
        status.leader_id = raft.leader_id;
        status.applied = self.raw.storage().applied();
        status.commit = raft.raft_log.committed;
        status.conf_state = self.raw.storage().conf_state().clone();
    }
}
