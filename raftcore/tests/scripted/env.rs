//! The scripted cluster: nodes (each a `RawNode` over a `MemStorage`, plus
//! the host's state machine), and a network of per-recipient FIFO queues.
//!
//! The state machine stands for a durable KV engine: it survives a crash
//! together with its applied index and membership, as TiKV persists its
//! apply state. A crash loses the `RawNode` (unstable entries, queued
//! messages, volatile state) and entries handed out but not yet applied;
//! a restart rebuilds the `RawNode` from the `MemStorage` alone, with
//! `Config::applied` set to the state machine's applied index.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use raftcore::{ConfState, Config, Entry, MemStorage, Message, RawNode, Snapshot, StorageError};

use crate::args::ScriptResult;

/// The host's state machine: the payloads of applied normal entries.
#[derive(Default)]
pub struct StateMachine {
    /// The last applied index.
    pub applied: u64,
    /// `(index, payload)` of each applied normal entry; after a snapshot
    /// restore, all carry the snapshot's index.
    pub data: Vec<(u64, Bytes)>,
    /// `(index, membership)` history: the founding one at the index the
    /// node started from, then one per applied change.
    pub confs: Vec<(u64, ConfState)>,
}

impl StateMachine {
    /// The image of the state machine at `index`: payloads joined by `,`.
    pub fn image(&self, index: u64) -> Bytes {
        let parts: Vec<&[u8]> = self
            .data
            .iter()
            .filter(|(i, _)| *i <= index)
            .map(|(_, d)| d.as_ref())
            .collect();
        Bytes::from(parts.join(&b","[..]))
    }

    /// The membership as of `index`.
    pub fn conf_at(&self, index: u64) -> ConfState {
        self.confs
            .iter()
            .rev()
            .find(|(i, _)| *i <= index)
            .map(|(_, cs)| cs.clone())
            .unwrap_or_default()
    }

    /// Replaces everything with a snapshot's image.
    pub fn restore(&mut self, snap: &Snapshot) {
        let index = snap.metadata.index;
        self.applied = index;
        self.data = snap
            .data
            .split(|&b| b == b',')
            .filter(|d| !d.is_empty())
            .map(|d| (index, Bytes::copy_from_slice(d)))
            .collect();
        self.confs = vec![(index, snap.metadata.conf_state.clone())];
    }
}

/// A node is up (a `RawNode`) or down (only its disk remains).
pub enum Life {
    Up(Box<RawNode<MemStorage>>),
    Down(Box<MemStorage>),
}

/// One peer and its host.
pub struct Node {
    pub cfg: Config,
    /// Committed entries are handed out but applied only by `apply`.
    pub async_apply: bool,
    pub life: Life,
    pub sm: StateMachine,
    /// Async apply: entries handed out, not yet applied.
    pub pending_apply: VecDeque<Entry>,
}

impl Node {
    pub fn new(cfg: Config, async_apply: bool, storage: MemStorage) -> ScriptResult<Node> {
        let conf = storage.conf_state().clone();
        let raw = RawNode::new(&cfg, storage).map_err(|e| format!("RawNode::new: {e}"))?;
        Ok(Node {
            cfg,
            async_apply,
            life: Life::Up(Box::new(raw)),
            sm: StateMachine {
                confs: vec![(0, conf)],
                ..StateMachine::default()
            },
            pending_apply: VecDeque::new(),
        })
    }

    pub fn raw(&self) -> Option<&RawNode<MemStorage>> {
        match &self.life {
            Life::Up(raw) => Some(raw),
            Life::Down(_) => None,
        }
    }

    pub fn raw_mut(&mut self) -> Option<&mut RawNode<MemStorage>> {
        match &mut self.life {
            Life::Up(raw) => Some(raw),
            Life::Down(_) => None,
        }
    }
}

/// Role, term and leader of a peer, for "what changed" lines.
pub fn describe(raw: &RawNode<MemStorage>) -> String {
    let r = raw.raft();
    let leader = match r.leader_id {
        0 => "none".to_string(),
        id => id.to_string(),
    };
    let mut s = format!("{:?} term={} leader={leader}", r.state, r.term);
    if raw.is_hibernating() {
        s.push_str(" hibernating");
    }
    s
}

/// The whole scripted cluster.
#[derive(Default)]
pub struct Env {
    pub nodes: BTreeMap<u64, Node>,
    /// Messages in flight, per recipient, in send order.
    pub inbox: BTreeMap<u64, VecDeque<Message>>,
    /// Nodes cut off from everyone: messages from or to them are dropped.
    pub isolated: BTreeSet<u64>,
}

impl Env {
    pub fn node(&mut self, id: u64) -> ScriptResult<&mut Node> {
        self.nodes
            .get_mut(&id)
            .ok_or_else(|| format!("no node {id}"))
    }

    /// The running `RawNode` of `id`; a script error if it is down.
    pub fn raw(&mut self, id: u64) -> ScriptResult<&mut RawNode<MemStorage>> {
        self.node(id)?
            .raw_mut()
            .ok_or_else(|| format!("node {id} is down"))
    }

    pub fn is_up(&self, id: u64) -> bool {
        self.nodes.get(&id).is_some_and(|n| n.raw().is_some())
    }

    /// Why a message from `from` to `to` is lost, if it is.
    pub fn partitioned(&self, from: u64, to: u64) -> bool {
        self.isolated.contains(&from) || self.isolated.contains(&to)
    }

    /// Puts a message on the network; returns the suffix to print.
    pub fn send(&mut self, m: Message) -> &'static str {
        if self.partitioned(m.from, m.to) {
            return " (dropped: isolated)";
        }
        self.inbox.entry(m.to).or_default().push_back(m);
        ""
    }

    /// Takes the queued messages to `to` that `keep` selects, in order.
    pub fn take_msgs(&mut self, to: u64, keep: impl Fn(&Message) -> bool) -> Vec<Message> {
        let Some(queue) = self.inbox.get_mut(&to) else {
            return Vec::new();
        };
        let (taken, rest): (Vec<_>, Vec<_>) = queue.drain(..).partition(|m| keep(m));
        queue.extend(rest);
        taken
    }

    /// Crashes `id`: only what it persisted to its `MemStorage` remains.
    pub fn crash(&mut self, id: u64) -> ScriptResult<()> {
        let node = self.node(id)?;
        let Life::Up(raw) = &node.life else {
            return Err(format!("node {id} is already down"));
        };
        let disk = raw.storage().clone();
        node.life = Life::Down(Box::new(disk));
        node.pending_apply.clear();
        Ok(())
    }

    /// Restarts `id` from its persisted storage and its state machine.
    pub fn restart(&mut self, id: u64) -> ScriptResult<String> {
        let node = self.node(id)?;
        let Life::Down(disk) = &node.life else {
            return Err(format!("node {id} is not down"));
        };
        let mut cfg = node.cfg.clone();
        cfg.applied = node.sm.applied;
        match RawNode::new(&cfg, MemStorage::clone(disk)) {
            Ok(raw) => {
                let line = raw.status().to_string();
                node.life = Life::Up(Box::new(raw));
                Ok(line)
            }
            Err(e) => Ok(format!("error: {e}")),
        }
    }

    /// Compacts `id`'s log up to `index`, behind an image of its state
    /// machine there.
    pub fn compact(&mut self, id: u64, index: u64) -> ScriptResult<String> {
        let node = self.node(id)?;
        if index > node.sm.applied {
            return Ok(format!(
                "error: index {index} not applied (applied {})",
                node.sm.applied
            ));
        }
        let (conf, image) = (node.sm.conf_at(index), node.sm.image(index));
        let raw = node.raw_mut().ok_or_else(|| format!("node {id} is down"))?;
        let result: Result<(), StorageError> = raw.storage_mut().compact(index, conf, image);
        Ok(match result {
            Ok(()) => {
                let s = raw.storage().latest_snapshot();
                format!(
                    "snapshot: {} data={}",
                    s.metadata,
                    crate::ready::escaped(&s.data)
                )
            }
            Err(e) => format!("error: {e}"),
        })
    }

    /// One line per node: role, term, leader, and flags.
    pub fn raft_state(&self) -> String {
        let mut lines = Vec::new();
        for (id, node) in &self.nodes {
            let mut line = match node.raw() {
                Some(raw) => format!("{id}: {}", describe(raw)),
                None => format!("{id}: down"),
            };
            if self.isolated.contains(id) {
                line.push_str(" isolated");
            }
            lines.push(line);
        }
        lines.join("\n")
    }
}
