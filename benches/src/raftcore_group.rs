//! A 3-node [raftcore] group over [`MemStorage`], driven entirely in memory:
//! raftcore's half of the side-by-side commit-throughput benchmark (see
//! [`crate::workload`]). It is the twin of `raftrs_group` (feature `raft-rs`):
//! same group, network, state machine, compaction and iteration, so that the
//! two figures measure the same work.
//!
//! # What the driver does
//!
//! - **Group.** Three voters, ids 1, 2, 3, each a [`RawNode`] over its own
//!   [`MemStorage`] initialised with the same [`ConfState`]. No clock: nodes
//!   are never ticked, so there are no heartbeats or election timeouts, and
//!   the run is deterministic. [`RaftcoreGroup::elect_leader`] makes node 1
//!   campaign and drives the group until it leads and everyone has applied
//!   its first (empty) entry of the term.
//! - **Network.** One FIFO mailbox. Every message a node emits is pushed
//!   there and later stepped into its target, in order; nothing is lost,
//!   reordered or duplicated. A delivered `Snapshot` message is reported to
//!   the sender as finished.
//! - **Ready loop** (`handle_ready`), for each node with a Ready, in the
//!   order raftcore's [`Ready`](raftcore::Ready) prescribes: send `messages`
//!   (the leader's appends, which may leave before its own write); persist
//!   the snapshot (installing it in the state machine), `entries` and
//!   `hard_state` into `MemStorage` through [`RawNode::storage_mut`]; only
//!   then send `persisted_messages`; apply `committed_entries`;
//!   [`RawNode::advance`]; [`RawNode::advance_apply`]. Persisting is
//!   synchronous, so every Ready is fully persisted before the next one is
//!   taken. raftcore has no second ("light") Ready: committed entries and
//!   the commit index of a Ready are all in the one `Ready`.
//! - **State machine.** Applying an entry counts it: a normal entry with a
//!   non-empty payload is one applied proposal. Conf changes are not part of
//!   the workload and are rejected.
//! - **Log compaction.** After applying, a node whose `MemStorage` holds
//!   [`COMPACT_EVERY`] or more entries up to its applied index compacts it
//!   with [`MemStorage::compact`], keeping the last [`KEEP_ENTRIES`] applied
//!   ones, so memory stays flat across millions of criterion iterations. The
//!   snapshot's image is the state machine at the compaction index: the
//!   payload count, 8 bytes little-endian.
//! - **One iteration** ([`RaftcoreGroup::propose_and_commit`]): propose
//!   `batch` entries on the leader, one [`RawNode::propose`] call each (as
//!   the raft-rs driver does), then alternate "deliver every queued message"
//!   and "handle every node's Ready" until the leader has applied all `batch`
//!   entries. Messages still queued then (the leader's commit broadcast to
//!   the followers) are delivered at the start of the next iteration, so in
//!   steady state each iteration does the followers' apply work of the
//!   previous batch.
//!
//! # Differences from the raft-rs driver that are raftcore's design
//!
//! - **Payloads are [`Bytes`].** [`RawNode::propose`] takes
//!   `impl Into<Bytes>`, and entries carry `Bytes`, so the benchmark hands
//!   each proposal a clone of one shared 1 KiB buffer (a reference-count
//!   increment) and no entry's payload is ever copied: not into the log, the
//!   append messages, the `Ready`, or `MemStorage`. raft-rs 0.7 takes a
//!   `Vec<u8>` per proposal, which its driver must allocate and fill. This is
//!   an advantage of raftcore's API that a host keeps, so the benchmark
//!   keeps it too.
//! - **Broadcasts are deferred to [`RawNode::ready`].** A leader does not
//!   send on each proposal; the next `Ready` sends one append per follower
//!   carrying everything proposed since the last one. The 64 proposals of a
//!   batch therefore leave as one append per follower, as raft-rs's
//!   `batch_append` achieves by merging messages.
//!
//! # Configuration
//!
//! [`node_config`]: the raft-rs driver's settings where raftcore has the
//! same knob (election 10 ticks, heartbeat 3, `max_size_per_msg` = 1 MiB,
//! 256 in flight, no Pre-Vote, no Check-Quorum: raft-rs's defaults), so a
//! batch of 64 KiB travels as one append.

use std::collections::VecDeque;

use bytes::Bytes;
use raftcore::{
    ConfState, Config, Entry, EntryType, MemStorage, Message, MessageType, RawNode, SnapshotStatus,
    StateRole, Storage,
};

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

/// The raftcore configuration of node `id`, shared by all three nodes.
pub fn node_config(id: u64) -> Config {
    Config {
        election_ticks: 10,
        heartbeat_ticks: 3,
        max_size_per_msg: 1024 * 1024,
        max_inflight_msgs: 256,
        pre_vote: false,
        check_quorum: false,
        ..Config::new(id)
    }
}

/// One member of the group: the raftcore node and its counting state machine.
struct Node {
    raw: RawNode<MemStorage>,
    /// Index of the last entry applied (or installed by snapshot).
    applied_index: u64,
    /// Normal entries with a payload applied so far: the state machine.
    applied_payloads: u64,
}

impl Node {
    fn new(id: u64) -> Node {
        let storage = MemStorage::with_conf_state(ConfState::with_voters(1..=GROUP_SIZE));
        let raw = RawNode::new(&node_config(id), storage)
            .unwrap_or_else(|e| panic!("raftcore node {id}: {e}"));
        Node {
            // Founding members start from a bootstrap snapshot (index 1).
            applied_index: raw.log().applied,
            applied_payloads: 0,
            raw,
        }
    }

    fn is_leader(&self) -> bool {
        self.raw.raft().state == StateRole::Leader
    }

    /// Applies committed entries to the counting state machine.
    fn apply(&mut self, entries: &[Entry]) {
        for entry in entries {
            debug_assert_eq!(entry.index, self.applied_index + 1, "apply out of order");
            match entry.entry_type {
                EntryType::Normal => {
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
    /// [`COMPACT_EVERY`] of them, keeping the last [`KEEP_ENTRIES`] behind a
    /// snapshot of the counter at the compaction index.
    fn maybe_compact(&mut self) {
        let applied = self.applied_index;
        let store = self.raw.storage_mut();
        let first = store.first_index().expect("MemStorage::first_index");
        if applied < first + COMPACT_EVERY {
            return;
        }
        // `compact(i)` drops entries with index <= i.
        let upto = applied - KEEP_ENTRIES;
        let kept_payloads = store
            .entries(upto + 1, applied + 1, u64::MAX)
            .expect("MemStorage::entries")
            .iter()
            .filter(|e| !e.data.is_empty())
            .count() as u64;
        let image = (self.applied_payloads - kept_payloads).to_le_bytes();
        let conf_state = store.conf_state().clone();
        store
            .compact(upto, conf_state, Bytes::copy_from_slice(&image))
            .expect("MemStorage::compact");
    }
}

/// Handles one Ready of `node`, if it has one, pushing every message it
/// sends onto `mailbox`. Returns whether there was a Ready.
///
/// This is raftcore's complete Ready protocol with synchronous persistence;
/// see the module documentation for the order of the steps.
fn handle_ready(node: &mut Node, mailbox: &mut VecDeque<Message>) -> bool {
    if !node.raw.has_ready() {
        return false;
    }
    let mut rd = node.raw.ready();

    // 1. Messages that may leave before the persist (the leader's appends).
    mailbox.extend(rd.messages.drain(..));

    // 2. Persist.
    let store = node.raw.storage_mut();
    if let Some(snapshot) = rd.snapshot.take() {
        let index = snapshot.metadata.index;
        // The image is a u64 counter; the bootstrap snapshot's is empty.
        let image: [u8; 8] = match snapshot.data.len() {
            0 => [0; 8],
            _ => snapshot.data[..]
                .try_into()
                .expect("snapshot image is a u64 counter"),
        };
        store
            .apply_snapshot(snapshot)
            .expect("MemStorage::apply_snapshot");
        // Installing the snapshot restores the state machine it carries.
        node.applied_index = index;
        node.applied_payloads = u64::from_le_bytes(image);
    }
    store.append(&rd.entries);
    if let Some(hard_state) = rd.hard_state {
        store.set_hard_state(hard_state);
    }

    // 3. Only now may messages that promise durable state (votes, append
    // responses) leave.
    mailbox.extend(rd.persisted_messages.drain(..));

    // 4. Apply; 5. acknowledge.
    node.apply(&rd.committed_entries);
    node.raw.advance(rd);
    node.raw.advance_apply();
    debug_assert_eq!(node.raw.log().applied, node.applied_index);

    node.maybe_compact();
    true
}

/// A 3-node raftcore group over `MemStorage` with an in-memory network.
pub struct RaftcoreGroup {
    /// `nodes[i]` has id `i + 1`.
    nodes: Vec<Node>,
    /// Messages sent and not yet delivered, oldest first.
    mailbox: VecDeque<Message>,
}

impl Default for RaftcoreGroup {
    fn default() -> Self {
        Self::new()
    }
}

impl RaftcoreGroup {
    /// Creates the three nodes, all followers at term 0 with empty logs; call
    /// [`Self::elect_leader`] before proposing.
    pub fn new() -> RaftcoreGroup {
        RaftcoreGroup {
            nodes: (1..=GROUP_SIZE).map(Node::new).collect(),
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
        let commit = self.nodes[0].raw.log().committed;
        assert!(self.nodes.iter().all(|n| n.applied_index == commit));
    }

    /// Proposes `batch` entries carrying `payload` on the leader (node 1),
    /// one [`RawNode::propose`] call each, then drives every node's Ready
    /// loop and delivers messages until the leader has committed and applied
    /// all of them. Returns the number of entries the leader applied, which
    /// is `batch`.
    ///
    /// Each proposal gets a clone of `payload`, which shares its buffer.
    ///
    /// # Panics
    ///
    /// If node 1 is not the leader, or raftcore refuses a proposal.
    pub fn propose_and_commit(&mut self, batch: usize, payload: &Bytes) -> u64 {
        let leader = &mut self.nodes[0];
        assert!(leader.is_leader(), "node 1 is not the leader");
        let before = leader.applied_payloads;
        for _ in 0..batch {
            leader
                .raw
                .propose(payload.clone())
                .expect("raftcore refused a proposal");
        }
        let last = leader.raw.log().last_index();
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
            self.step(msg);
        }
        delivered
    }

    /// Steps `msg` into its target; a snapshot is reported as installed.
    fn step(&mut self, msg: Message) {
        let (from, to) = (msg.from, msg.to);
        let is_snapshot = msg.msg_type == MessageType::Snapshot;
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

    /// Runs rounds of "deliver all queued messages, then handle every node's
    /// Ready" until `done` holds after a round.
    fn drive_until(&mut self, done: impl Fn(&RaftcoreGroup) -> bool) {
        for _ in 0..MAX_ROUNDS {
            let mut progressed = self.deliver();
            for node in &mut self.nodes {
                progressed |= handle_ready(node, &mut self.mailbox);
            }
            if done(self) {
                return;
            }
            assert!(progressed, "raftcore group stalled before its goal");
        }
        panic!("raftcore group did not reach its goal in {MAX_ROUNDS} rounds");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{payload, BATCH};

    fn stored_entries(group: &RaftcoreGroup, id: u64) -> u64 {
        let store = group.nodes[node_slot(id)].raw.storage();
        store.last_index().unwrap() + 1 - store.first_index().unwrap()
    }

    fn shared_payload() -> Bytes {
        Bytes::from(payload())
    }

    #[test]
    fn elects_node_one() {
        let mut group = RaftcoreGroup::new();
        group.elect_leader();
        assert!(group.nodes[0].is_leader());
        assert!(!group.nodes[1].is_leader() && !group.nodes[2].is_leader());
        let last = group.nodes[0].raw.log().last_index();
        let term = group.nodes[0].raw.raft().term;
        for node in &group.nodes {
            assert_eq!(node.raw.raft().leader_id, 1);
            assert_eq!(
                node.raw.log().term(last),
                Ok(term),
                "the leader's empty entry"
            );
            assert_eq!(node.applied_index, last, "the leader's empty entry");
        }
    }

    #[test]
    fn commits_batches_and_followers_catch_up() {
        let mut group = RaftcoreGroup::new();
        group.elect_leader();
        let payload = shared_payload();
        for round in 1..=10u64 {
            assert_eq!(group.propose_and_commit(BATCH, &payload), BATCH as u64);
            assert_eq!(group.applied_entries(1), round * BATCH as u64);
        }
        group.settle();
        for id in 1..=3 {
            assert_eq!(group.applied_entries(id), 10 * BATCH as u64, "node {id}");
            let node = &group.nodes[node_slot(id)];
            let hard_state = node.raw.storage().hard_state();
            assert_eq!(hard_state.commit, node.applied_index, "node {id} commit");
            assert_eq!(hard_state.term, node.raw.raft().term, "node {id} term");
        }
    }

    #[test]
    fn a_batch_travels_as_one_append_per_follower() {
        let mut group = RaftcoreGroup::new();
        group.elect_leader();
        let payload = shared_payload();
        let leader = &mut group.nodes[0];
        for _ in 0..BATCH {
            leader.raw.propose(payload.clone()).unwrap();
        }
        assert!(handle_ready(leader, &mut group.mailbox));
        let appends: Vec<&Message> = group
            .mailbox
            .iter()
            .filter(|m| m.msg_type == MessageType::Append)
            .collect();
        assert_eq!(appends.len(), 2, "{:?}", group.mailbox);
        for m in appends {
            assert_eq!(m.entries.len(), BATCH);
            // Zero copy: the entries share the proposal's buffer.
            assert!(m
                .entries
                .iter()
                .all(|e| e.data.as_ptr() == payload.as_ptr()));
        }
    }

    #[test]
    fn compaction_bounds_the_stored_log() {
        let mut group = RaftcoreGroup::new();
        group.elect_leader();
        let payload = shared_payload();
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

    /// Not part of the benchmark (followers never lag that far there), but
    /// it checks the driver's snapshot path: a follower cut off while the
    /// leader compacts past its log catches up from the leader's snapshot,
    /// state machine included.
    #[test]
    fn a_cut_off_follower_catches_up_by_snapshot() {
        let mut group = RaftcoreGroup::new();
        group.elect_leader();
        let payload = shared_payload();
        let batches = (COMPACT_EVERY + KEEP_ENTRIES) / BATCH as u64 + 2;
        for _ in 0..batches {
            let leader = &mut group.nodes[0];
            for _ in 0..BATCH {
                leader.raw.propose(payload.clone()).unwrap();
            }
            let last = leader.raw.log().last_index();
            while group.nodes[0].applied_index < last {
                group.mailbox.retain(|m| m.to != 3 && m.from != 3);
                group.deliver();
                for node in &mut group.nodes {
                    handle_ready(node, &mut group.mailbox);
                }
            }
        }
        group.mailbox.retain(|m| m.to != 3 && m.from != 3);
        let leader_first = group.nodes[0].raw.storage().first_index().unwrap();
        assert!(group.nodes[2].raw.log().last_index() < leader_first);

        // Reconnected: the next batch's append is refused, the leader finds
        // node 3's next entry compacted and sends its snapshot.
        group.propose_and_commit(BATCH, &payload);
        group.settle();
        let expected = (batches + 1) * BATCH as u64;
        for id in 1..=3 {
            assert_eq!(group.applied_entries(id), expected, "node {id}");
        }
        let node3 = &group.nodes[2];
        assert!(node3.raw.storage().latest_snapshot().metadata.index >= leader_first - 1);
        assert_eq!(node3.applied_index, group.nodes[0].applied_index);
    }
}
