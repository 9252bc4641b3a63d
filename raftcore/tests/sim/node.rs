//! One simulated host of one peer: its RawNode and MemStorage, the Ready
//! loop, asynchronous apply, the state machine, crashes and restarts.

use std::collections::VecDeque;

use raftcore::{
    ConfChange, ConfState, Entry, EntryType, MemStorage, Message, PlantedBugs, RawNode, ReadState,
    Snapshot, NO_PEER,
};

use crate::params::{Params, TICK};
use crate::rng::{mix, Rng};
use crate::state_machine::{decode_payload, StateMachine};

/// Whether a node runs.
pub enum Life {
    Up(Box<RawNode<MemStorage>>),
    /// Crashed: only what it persisted survives.
    Down {
        storage: Box<MemStorage>,
        restart_at: u64,
    },
    /// Removed from the group, or never made it in: gone for good.
    Stopped,
}

/// What handling one Ready produced.
#[derive(Default)]
pub struct ReadyOut {
    /// Messages to send, in order.
    pub messages: Vec<Message>,
    pub read_states: Vec<ReadState>,
    /// The node crashed after sending `Ready::messages`, before persisting.
    pub crashed: bool,
    /// The index of the snapshot installed, if one was.
    pub snapshot: Option<u64>,
    pub applied: ApplyOut,
}

/// What applying committed entries produced.
#[derive(Default)]
pub struct ApplyOut {
    /// The entries applied, in order.
    pub entries: Vec<Entry>,
    /// Configuration changes that took effect (`Ok` from
    /// `apply_conf_change`), by index.
    pub conf_changes: Vec<u64>,
    /// The membership after each configuration entry applied (taking
    /// effect or not).
    pub confs: Vec<(u64, ConfState)>,
    /// Peers the applied changes removed from the group.
    pub removed: Vec<u64>,
}

pub struct Node {
    pub id: u64,
    pub life: Life,
    pub sm: StateMachine,
    /// Committed entries handed out by Readies and not yet applied.
    apply_queue: VecDeque<Entry>,
    /// Reads confirmed at an index not yet applied: `(read id, index)`.
    pub pending_reads: Vec<(u64, u64)>,
    pub incarnation: u64,
    /// Time units between two ticks: this node's clock rate.
    pub period: u64,
    pub next_tick_at: u64,
    /// Paused (a stalled process: no ticks, no work) until then.
    pub paused_until: Option<u64>,
    /// A crash planned for `(time, restart delay)`.
    pub crash_at: Option<(u64, u64)>,
    /// The membership it was created with (founding members: the group's).
    initial_conf: ConfState,
    params_seed: u64,
    planted: PlantedBugs,
}

impl Node {
    /// Creates and starts a node from `storage`.
    pub fn start(
        id: u64,
        storage: MemStorage,
        p: &Params,
        rng: &mut Rng,
        now: u64,
        planted: PlantedBugs,
    ) -> Result<Node, String> {
        let mut node = Node {
            id,
            life: Life::Down {
                storage: Box::new(storage.clone()),
                restart_at: now,
            },
            sm: StateMachine::default(),
            apply_queue: VecDeque::new(),
            pending_reads: Vec::new(),
            incarnation: 0,
            // Clock rate in [0.95, 1.05].
            period: rng.range(TICK * 100 / 105, TICK * 100 / 95),
            next_tick_at: 0,
            crash_at: None,
            paused_until: None,
            initial_conf: storage.conf_state().clone(),
            params_seed: rng.next_u64(),
            planted,
        };
        node.restart(p, rng, now)?;
        Ok(node)
    }

    /// Whether the node runs (and is not paused).
    pub fn is_up(&self) -> bool {
        matches!(self.life, Life::Up(_)) && self.paused_until.is_none()
    }

    pub fn raw(&self) -> Option<&RawNode<MemStorage>> {
        match &self.life {
            Life::Up(raw) => Some(raw),
            _ => None,
        }
    }

    pub fn raw_mut(&mut self) -> Option<&mut RawNode<MemStorage>> {
        match &mut self.life {
            Life::Up(raw) => Some(raw),
            _ => None,
        }
    }

    /// Restarts a crashed node from what it persisted: the log and hard
    /// state as stored, and the state machine (with the membership) from
    /// the latest snapshot, since the host persists its applied state only
    /// through snapshots. Entries after it are applied again.
    pub fn restart(&mut self, p: &Params, rng: &mut Rng, now: u64) -> Result<(), String> {
        let Life::Down { mut storage, .. } = std::mem::replace(&mut self.life, Life::Stopped)
        else {
            return Err(format!("restart of node {} that is not down", self.id));
        };
        let snap = storage.latest_snapshot().clone();
        self.sm = image_of(&snap)?;
        let conf = if snap.is_empty() {
            self.initial_conf.clone()
        } else {
            snap.metadata.conf_state.clone()
        };
        storage.set_conf_state(conf);
        self.incarnation += 1;
        let mut config = p.config(self.id, mix(self.params_seed ^ self.incarnation));
        config.applied = snap.metadata.index;
        let mut raw = RawNode::new(&config, *storage)
            .map_err(|e| format!("node {} cannot restart: {e}", self.id))?;
        raw.plant(self.planted);
        self.life = Life::Up(Box::new(raw));
        self.apply_queue.clear();
        self.pending_reads.clear();
        self.next_tick_at = now + 1 + rng.below(self.period);
        Ok(())
    }

    /// Crashes the node: everything not persisted is lost.
    pub fn crash(&mut self, restart_at: u64) {
        self.crash_at = None;
        self.paused_until = None;
        if let Life::Up(raw) = std::mem::replace(&mut self.life, Life::Stopped) {
            self.life = Life::Down {
                storage: Box::new(raw.storage().clone()),
                restart_at,
            };
        }
        self.apply_queue.clear();
        self.pending_reads.clear();
    }

    /// Stops the node for good.
    pub fn stop(&mut self) {
        self.crash_at = None;
        self.paused_until = None;
        self.life = Life::Stopped;
        self.apply_queue.clear();
        self.pending_reads.clear();
    }

    /// One tick of this node's clock. Returns whether the node hibernates
    /// (and the tick was a no-op).
    pub fn tick(&mut self) -> bool {
        self.next_tick_at += self.period;
        let Some(raw) = self.raw_mut() else {
            return false;
        };
        raw.tick();
        raw.is_hibernating()
    }

    /// Handles one Ready by the protocol of `raftcore::Ready`: send
    /// `messages`; persist snapshot, entries and hard state; send
    /// `persisted_messages`; apply (now or later); `advance`; report applied.
    /// May crash between the first send and the persist.
    pub fn handle_ready(
        &mut self,
        p: &Params,
        rng: &mut Rng,
        faults: bool,
    ) -> Result<ReadyOut, String> {
        let mut out = ReadyOut::default();
        let id = self.id;
        let Life::Up(raw) = &mut self.life else {
            return Ok(out);
        };
        if !raw.has_ready() {
            return Ok(out);
        }
        let mut rd = raw.ready();
        out.messages = std::mem::take(&mut rd.messages);
        // Crashing right after casting a vote is how a vote sent before it
        // is durable turns into two votes in one term.
        let voted = rd
            .hard_state
            .is_some_and(|hs| hs.vote != NO_PEER && hs.vote != id);
        let crash_pm = if voted {
            p.vote_crash_pm
        } else {
            p.mid_ready_crash_pm
        };
        if faults && rng.chance(crash_pm) {
            out.crashed = true;
            return Ok(out);
        }
        let store = raw.storage_mut();
        if let Some(snap) = &rd.snapshot {
            store
                .apply_snapshot(snap.clone())
                .map_err(|e| format!("node {id}: persisting snapshot: {e}"))?;
            self.sm = image_of(snap)?;
            self.apply_queue.clear();
            out.snapshot = Some(snap.metadata.index);
        }
        store.append(&rd.entries);
        if let Some(hs) = rd.hard_state {
            store.set_hard_state(hs);
        }
        out.messages.append(&mut rd.persisted_messages);
        out.read_states = std::mem::take(&mut rd.read_states);
        self.apply_queue
            .extend(std::mem::take(&mut rd.committed_entries));
        let apply_now = rng.chance(p.sync_apply_pm);
        if apply_now {
            out.applied = self.apply_entries(usize::MAX)?;
        }
        if let Life::Up(raw) = &mut self.life {
            raw.advance(rd);
            if apply_now {
                raw.advance_apply_to(self.sm.applied);
            }
        }
        Ok(out)
    }

    /// Whether committed entries wait to be applied.
    pub fn has_unapplied(&self) -> bool {
        self.is_up() && !self.apply_queue.is_empty()
    }

    /// Applies up to `max` queued entries and reports them applied.
    pub fn apply(&mut self, max: usize) -> Result<ApplyOut, String> {
        let out = self.apply_entries(max)?;
        let applied = self.sm.applied;
        if let Some(raw) = self.raw_mut() {
            raw.advance_apply_to(applied);
        }
        Ok(out)
    }

    /// Applies queued entries to the state machine and configuration
    /// changes to the RawNode, recording the membership in storage. Stops
    /// early if a change removes this node.
    fn apply_entries(&mut self, max: usize) -> Result<ApplyOut, String> {
        let mut out = ApplyOut::default();
        while out.entries.len() < max {
            let Some(e) = self.apply_queue.pop_front() else {
                break;
            };
            let payload = match e.entry_type {
                EntryType::Normal if e.data.is_empty() => None,
                EntryType::Normal => Some(decode_payload(&e.data)?),
                EntryType::ConfChange => {
                    self.apply_conf_change(&e, &mut out)?;
                    None
                }
            };
            self.sm
                .apply(e.index, payload)
                .map_err(|err| format!("node {}: {err}", self.id))?;
            out.entries.push(e);
            if out.removed.contains(&self.id) {
                self.apply_queue.clear();
                break;
            }
        }
        Ok(out)
    }

    fn apply_conf_change(&mut self, e: &Entry, out: &mut ApplyOut) -> Result<(), String> {
        let cc = ConfChange::decode(&e.data)
            .map_err(|err| format!("conf change entry {} undecodable: {err}", e.index))?;
        let id = self.id;
        let Some(raw) = self.raw_mut() else {
            return Ok(());
        };
        // An error means the change does not fit: a no-op on every peer.
        match raw.apply_conf_change(&cc) {
            Ok(cs) => {
                let before = raw.storage().conf_state().clone();
                for id in all_ids(&before) {
                    if !cs.contains(id) {
                        out.removed.push(id);
                    }
                }
                raw.storage_mut().set_conf_state(cs.clone());
                out.conf_changes.push(e.index);
                out.confs.push((e.index, cs));
            }
            Err(err) => {
                if std::env::var_os("SIM_TRACE").is_some() {
                    eprintln!("  node {id} refuses conf change {}: {err}", e.index);
                }
                out.confs
                    .push((e.index, raw.storage().conf_state().clone()))
            }
        }
        Ok(())
    }

    /// Compacts the log behind a snapshot of the state machine at its
    /// applied index. Returns whether it did.
    pub fn compact(&mut self) -> bool {
        let (applied, image) = (self.sm.applied, self.sm.encode());
        let Some(raw) = self.raw_mut() else {
            return false;
        };
        let store = raw.storage_mut();
        let conf = store.conf_state().clone();
        store.compact(applied, conf, image).is_ok()
    }
}

/// The state machine a snapshot holds. The bootstrap snapshot (if any)
/// carries no image: the empty state machine.
fn image_of(snap: &Snapshot) -> Result<StateMachine, String> {
    if snap.data.is_empty() {
        if snap.metadata.index > 1 {
            return Err(format!(
                "snapshot at {} without a state machine image",
                snap.metadata.index
            ));
        }
        return Ok(StateMachine {
            applied: snap.metadata.index,
            ..StateMachine::default()
        });
    }
    let sm = StateMachine::decode(&snap.data)?;
    if sm.applied != snap.metadata.index {
        return Err(format!(
            "snapshot at {} holds an image at {}",
            snap.metadata.index, sm.applied
        ));
    }
    Ok(sm)
}

/// Every peer `cs` names.
pub fn all_ids(cs: &ConfState) -> Vec<u64> {
    let mut ids: Vec<u64> = cs
        .voters
        .iter()
        .chain(&cs.learners)
        .chain(&cs.voters_outgoing)
        .chain(&cs.learners_next)
        .copied()
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}
