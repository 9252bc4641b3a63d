//! A 3-node [raft-rs](https://docs.rs/raft/0.7) group over
//! [`MemStorage`], driven entirely in memory: the baseline half of the
//! side-by-side commit-throughput benchmark (see [`crate::workload`]).
//!
//! # What the driver does (the raftcore twin mirrors this)
//!
//! - **Group.** Three voters, ids 1, 2, 3, each a [`RawNode`] over its own
//!   [`MemStorage`] initialised with the same `ConfState`. No clock: nodes are
//!   never ticked, so there are no heartbeats or election timeouts, and the
//!   run is deterministic. [`RaftRsGroup::elect_leader`] makes node 1
//!   campaign and drives the group until it leads and everyone has applied
//!   its first (empty) entry of the term.
//! - **Network.** One FIFO mailbox. Every message a node emits is pushed
//!   there and later stepped into its target, in order; nothing is lost,
//!   reordered or duplicated. A delivered `MsgSnapshot` is reported to the
//!   sender as finished.
//! - **Ready loop** (`handle_ready`), for each node with a Ready, in the
//!   order raft-rs 0.7 prescribes: send `messages` (the leader's, which may
//!   leave before its own write); install the snapshot, if any; apply
//!   `committed_entries`; persist `entries` and the `HardState` into
//!   `MemStorage`; only then send `persisted_messages`; `advance_append`;
//!   persist the `LightReady`'s commit index, send its messages, apply its
//!   committed entries; `advance_apply`. Persisting is synchronous, so every
//!   Ready is fully persisted before the next one is taken.
//! - **State machine.** Applying an entry counts it: a normal entry with a
//!   non-empty payload is one applied proposal. Conf changes are not part of
//!   the workload and are rejected.
//! - **Log compaction.** After applying, a node whose `MemStorage` holds
//!   [`COMPACT_EVERY`] or more entries up to its applied index compacts it,
//!   keeping the last [`KEEP_ENTRIES`] applied ones, so memory stays flat
//!   across millions of criterion iterations.
//! - **One iteration** ([`RaftRsGroup::propose_and_commit`]): propose `batch`
//!   entries on the leader, then alternate "deliver every queued message" and
//!   "handle every node's Ready" until the leader has applied all `batch`
//!   entries. Messages still queued then (the leader's commit broadcast to
//!   the followers) are delivered at the start of the next iteration, so in
//!   steady state each iteration does the followers' apply work of the
//!   previous batch.
//!
//! # Configuration
//!
//! [`node_config`]: raft-rs defaults except `max_size_per_msg` = 1 MiB (the
//! default 0 means one entry per append message) and `batch_append` = true,
//! so the 64 proposals of a batch travel to each follower as one
//! `MsgAppend`, as a batching implementation would send them.

use std::collections::VecDeque;

use raft::prelude::{ConfState, Config, Entry, EntryType, Message, MessageType, RawNode};
use raft::storage::MemStorage;
use raft::{SnapshotStatus, StateRole, Storage};
use slog::{o, Discard, Logger};

use crate::workload::{node_slot, GROUP_SIZE};

/// A node compacts its `MemStorage` once it holds this many entries at or
/// below its applied index.
pub const COMPACT_EVERY: u64 = 4096;

/// Applied entries a node keeps in its `MemStorage` after compacting; far
/// more than a follower ever lags here, so the leader never needs to send a
/// snapshot.
pub const KEEP_ENTRIES: u64 = 1000;

/// Upper bound on deliver/Ready rounds for one drive; a healthy group needs
/// a handful, so reaching it means the group is stuck.
const MAX_ROUNDS: usize = 10_000;

/// The raft-rs configuration of node `id`, shared by all three nodes.
pub fn node_config(id: u64) -> Config {
    Config {
        id,
        election_tick: 10,
        heartbeat_tick: 3,
        max_size_per_msg: 1024 * 1024,
        max_inflight_msgs: 256,
        batch_append: true,
        ..Config::default()
    }
}

/// One member of the group: the raft-rs node and its counting state machine.
struct Node {
    raw: RawNode<MemStorage>,
    /// Index of the last entry applied (or installed by snapshot).
    applied_index: u64,
    /// Normal entries with a payload applied so far: the state machine.
    applied_payloads: u64,
}

impl Node {
    fn new(id: u64, logger: &Logger) -> Node {
        let voters: Vec<u64> = (1..=GROUP_SIZE).collect();
        let storage = MemStorage::new_with_conf_state(ConfState::from((voters, vec![])));
        let raw = RawNode::new(&node_config(id), storage, logger)
            .unwrap_or_else(|e| panic!("raft-rs node {id}: {e}"));
        Node {
            raw,
            applied_index: 0,
            applied_payloads: 0,
        }
    }

    fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }

    /// Applies committed entries to the counting state machine.
    fn apply(&mut self, entries: Vec<Entry>) {
        for entry in entries {
            debug_assert_eq!(entry.index, self.applied_index + 1, "apply out of order");
            match entry.get_entry_type() {
                EntryType::EntryNormal => {
                    if !entry.data.is_empty() {
                        self.applied_payloads += 1;
                    }
                }
                other => panic!(
                    "{other:?} at index {}: not part of this workload",
                    entry.index
                ),
            }
            self.applied_index = entry.index;
        }
    }

    /// Drops applied entries from `MemStorage` once there are
    /// [`COMPACT_EVERY`] of them, keeping the last [`KEEP_ENTRIES`].
    fn maybe_compact(&mut self, store: &MemStorage) {
        let first = store.first_index().expect("MemStorage::first_index");
        if self.applied_index >= first + COMPACT_EVERY {
            // `compact(i)` keeps entries with index >= i; i <= applied + 1.
            let keep_from = self.applied_index + 1 - KEEP_ENTRIES;
            store.wl().compact(keep_from).expect("MemStorage::compact");
        }
    }
}

/// Handles one Ready of `node`, if it has one, pushing every message it
/// sends onto `mailbox`. Returns whether there was a Ready.
///
/// This is the complete raft-rs 0.7 Ready protocol with synchronous
/// persistence; see the module documentation for the order of the steps.
fn handle_ready(node: &mut Node, mailbox: &mut VecDeque<Message>) -> bool {
    if !node.raw.has_ready() {
        return false;
    }
    // `MemStorage` is a shared handle (Arc<RwLock<_>>); cloning it is cheap.
    let store = node.raw.store().clone();
    let mut ready = node.raw.ready();

    // A leader may send before persisting (raft thesis 10.2.1); raft-rs puts
    // those in `messages`, and everything else in `persisted_messages`.
    mailbox.extend(ready.take_messages());

    if !ready.snapshot().is_empty() {
        let snapshot = ready.snapshot().clone();
        let index = snapshot.get_metadata().index;
        store
            .wl()
            .apply_snapshot(snapshot)
            .expect("MemStorage::apply_snapshot");
        // The state machine is a counter: installing a snapshot moves it to
        // the snapshot's index (entries it covers were counted by the leader).
        node.applied_index = index;
    }

    // Entries committed in an earlier Ready are already durable: apply them.
    node.apply(ready.take_committed_entries());

    // Persist.
    if !ready.entries().is_empty() {
        store
            .wl()
            .append(ready.entries())
            .expect("MemStorage::append");
    }
    if let Some(hard_state) = ready.hs() {
        store.wl().set_hardstate(hard_state.clone());
    }

    // Only now may messages that promise durable state (votes, append
    // responses) leave.
    mailbox.extend(ready.take_persisted_messages());

    let mut light = node.raw.advance_append(ready);
    if let Some(commit) = light.commit_index() {
        store.wl().mut_hard_state().set_commit(commit);
    }
    mailbox.extend(light.take_messages());
    node.apply(light.take_committed_entries());
    node.raw.advance_apply();
    debug_assert_eq!(node.raw.raft.raft_log.applied, node.applied_index);

    node.maybe_compact(&store);
    true
}

/// A 3-node raft-rs group over `MemStorage` with an in-memory network.
pub struct RaftRsGroup {
    /// `nodes[i]` has id `i + 1`.
    nodes: Vec<Node>,
    /// Messages sent and not yet delivered, oldest first.
    mailbox: VecDeque<Message>,
}

impl Default for RaftRsGroup {
    fn default() -> Self {
        Self::new()
    }
}

impl RaftRsGroup {
    /// Creates the three nodes, all followers at term 0 with empty logs; call
    /// [`Self::elect_leader`] before proposing.
    pub fn new() -> RaftRsGroup {
        let logger = Logger::root(Discard, o!());
        RaftRsGroup {
            nodes: (1..=GROUP_SIZE).map(|id| Node::new(id, &logger)).collect(),
            mailbox: VecDeque::new(),
        }
    }

    /// Makes node 1 campaign and drives the group until node 1 leads and
    /// every node has applied the leader's first entry of its term, with no
    /// message left in flight.
    ///
    /// # Panics
    ///
    /// If node 1 does not win, which cannot happen without ticks.
    pub fn elect_leader(&mut self) {
        self.nodes[0].raw.campaign().expect("node 1 campaign");
        self.drive_until(|g| g.nodes[0].is_leader());
        self.settle();
        let commit = self.nodes[0].raw.raft.raft_log.committed;
        assert!(self.nodes.iter().all(|n| n.applied_index == commit));
    }

    /// Proposes `batch` entries carrying `payload` on the leader (node 1),
    /// then drives every node's Ready loop and delivers messages until the
    /// leader has committed and applied all of them. Returns the number of
    /// entries the leader applied, which is `batch`.
    ///
    /// # Panics
    ///
    /// If node 1 is not the leader, or raft-rs drops a proposal.
    pub fn propose_and_commit(&mut self, batch: usize, payload: &[u8]) -> u64 {
        let leader = &mut self.nodes[0];
        assert!(leader.is_leader(), "node 1 is not the leader");
        let before = leader.applied_payloads;
        for _ in 0..batch {
            leader
                .raw
                .propose(Vec::new(), payload.to_vec())
                .expect("raft-rs dropped a proposal");
        }
        let last = leader.raw.raft.raft_log.last_index();
        self.drive_until(|g| g.nodes[0].applied_index >= last);
        let applied = self.nodes[0].applied_payloads - before;
        assert_eq!(applied, batch as u64, "leader applied a different count");
        applied
    }

    /// Delivers messages and handles Readies until no message is in flight
    /// and no node has a Ready: every node has then applied everything
    /// committed.
    pub fn settle(&mut self) {
        self.drive_until(|g| g.mailbox.is_empty() && g.nodes.iter().all(|n| !n.raw.has_ready()));
    }

    /// Payload entries node `id` has applied so far.
    ///
    /// # Panics
    ///
    /// If `id` is not 1, 2 or 3.
    pub fn applied_entries(&self, id: u64) -> u64 {
        self.nodes[node_slot(id)].applied_payloads
    }

    /// Delivers every queued message, in order. Returns whether there was one.
    fn deliver(&mut self) -> bool {
        let delivered = !self.mailbox.is_empty();
        while let Some(msg) = self.mailbox.pop_front() {
            let (from, to) = (msg.from, msg.to);
            let is_snapshot = msg.get_msg_type() == MessageType::MsgSnapshot;
            self.nodes[node_slot(to)]
                .raw
                .step(msg)
                .unwrap_or_else(|e| panic!("node {to} step from {from}: {e}"));
            if is_snapshot {
                // In-memory delivery always succeeds.
                self.nodes[node_slot(from)]
                    .raw
                    .report_snapshot(to, SnapshotStatus::Finish);
            }
        }
        delivered
    }

    /// Runs rounds of "deliver all queued messages, then handle every node's
    /// Ready" until `done` holds after a round.
    fn drive_until(&mut self, done: impl Fn(&RaftRsGroup) -> bool) {
        for _ in 0..MAX_ROUNDS {
            let mut progressed = self.deliver();
            for node in &mut self.nodes {
                progressed |= handle_ready(node, &mut self.mailbox);
            }
            if done(self) {
                return;
            }
            assert!(progressed, "raft-rs group stalled before its goal");
        }
        panic!("raft-rs group did not reach its goal in {MAX_ROUNDS} rounds");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{payload, BATCH};

    fn stored_entries(group: &RaftRsGroup, id: u64) -> u64 {
        let store = group.nodes[node_slot(id)].raw.store();
        store.last_index().unwrap() + 1 - store.first_index().unwrap()
    }

    #[test]
    fn elects_node_one() {
        let mut group = RaftRsGroup::new();
        group.elect_leader();
        assert!(group.nodes[0].is_leader());
        assert!(!group.nodes[1].is_leader() && !group.nodes[2].is_leader());
        for node in &group.nodes {
            assert_eq!(node.raw.raft.leader_id, 1);
            assert_eq!(node.applied_index, 1, "the leader's empty entry");
        }
    }

    #[test]
    fn commits_batches_and_followers_catch_up() {
        let mut group = RaftRsGroup::new();
        group.elect_leader();
        let payload = payload();
        for round in 1..=10u64 {
            assert_eq!(group.propose_and_commit(BATCH, &payload), BATCH as u64);
            assert_eq!(group.applied_entries(1), round * BATCH as u64);
        }
        group.settle();
        for id in 1..=3 {
            assert_eq!(group.applied_entries(id), 10 * BATCH as u64, "node {id}");
            let node = &group.nodes[node_slot(id)];
            let hard_state = node.raw.store().rl().hard_state().clone();
            assert_eq!(hard_state.commit, node.applied_index, "node {id} commit");
            assert_eq!(hard_state.term, node.raw.raft.term, "node {id} term");
        }
    }

    #[test]
    fn a_batch_travels_as_one_append_per_follower() {
        let mut group = RaftRsGroup::new();
        group.elect_leader();
        let payload = payload();
        let leader = &mut group.nodes[0];
        for _ in 0..BATCH {
            leader.raw.propose(Vec::new(), payload.clone()).unwrap();
        }
        assert!(handle_ready(leader, &mut group.mailbox));
        let appends: Vec<&Message> = group
            .mailbox
            .iter()
            .filter(|m| m.get_msg_type() == MessageType::MsgAppend)
            .collect();
        assert_eq!(appends.len(), 2, "{:?}", group.mailbox);
        for m in appends {
            assert_eq!(m.entries.len(), BATCH);
        }
    }

    #[test]
    fn compaction_bounds_the_stored_log() {
        let mut group = RaftRsGroup::new();
        group.elect_leader();
        let payload = payload();
        // 12,800 entries: the logs must be compacted several times.
        for _ in 0..200 {
            group.propose_and_commit(BATCH, &payload);
        }
        group.settle();
        for id in 1..=3 {
            assert_eq!(group.applied_entries(id), 200 * BATCH as u64);
            let stored = stored_entries(&group, id);
            assert!(
                stored < COMPACT_EVERY + BATCH as u64,
                "node {id} keeps {stored} entries"
            );
            assert!(stored >= KEEP_ENTRIES, "node {id} keeps {stored} entries");
        }
    }
}
