//! Many idle 3-replica raftcore groups in one process: the subject of the
//! tick benchmark (`benches/tick.rs`).
//!
//! # The groups
//!
//! Each group has three voters, ids 1, 2, 3, each a [`RawNode`] over its own
//! [`MemStorage`], with raftcore's default [`Config`] (election 10 ticks,
//! heartbeat 2, Pre-Vote and Check-Quorum on). [`IdleGroups::new`] elects
//! node 1 of every group and settles it, so every log holds the bootstrap
//! snapshot and the leader's empty entry, committed and applied everywhere;
//! nothing is proposed afterwards. All three replicas of every group live here, with
//! real message delivery between them, so that an awake leader keeps hearing
//! heartbeat responses (Check-Quorum would otherwise depose it) and awake
//! followers keep hearing heartbeats (they would otherwise campaign): the
//! idle steady state is the real one, not an approximation of it.
//!
//! Half of the groups are ticked once during setup, so the leaders'
//! heartbeat rounds (every 2 ticks) fall on alternate ticks for the two
//! halves, as they would for groups elected at different times: every tick
//! then costs the same.
//!
//! # One tick ([`IdleGroups::tick`])
//!
//! For each group in turn: tick its three replicas, then run rounds of
//! "handle every replica's Ready, if it has one; deliver every message sent"
//! until a round finds no Ready and no message. A Ready is handled as a host
//! must: send `messages`, persist the snapshot, `entries` and `hard_state`
//! into `MemStorage`, send `persisted_messages`, apply `committed_entries`
//! (there are none: the groups are idle), [`RawNode::advance`],
//! [`RawNode::advance_apply`]. Delivery is stepping the message into its
//! target in memory.
//!
//! So an awake group's tick includes, on every other tick, the leader's
//! heartbeat round trip: one Ready on the leader carrying two heartbeats,
//! two `step`s on the followers, one Ready on each follower carrying a
//! heartbeat response, two `step`s on the leader. A hibernated group's tick
//! is three `tick` calls that return at once and three `has_ready` checks.
//!
//! # Hibernation ([`IdleGroups::hibernate`])
//!
//! [`RawNode::hibernate`] on each leader (the group is quiescent: every
//! replica holds, has committed and has applied the whole log); the leader's
//! final heartbeat, marked `hibernate`, reaches both followers, which stop
//! their election timers too, and their answers reach the leader, which
//! they do not wake. Every message is delivered, as in a tick.

use raftcore::{ConfState, Config, EntryType, MemStorage, Message, RawNode, StateRole};

use crate::workload::GROUP_SIZE;

/// Number of groups in the tick benchmark.
pub const GROUPS: usize = 10_000;

/// Upper bound on Ready/deliver rounds for one group after one tick; an idle
/// group needs three, so reaching it means the group never quiets down.
const MAX_ROUNDS: usize = 100;

/// The configuration of node `id` in every group: raftcore's defaults.
pub fn node_config(id: u64) -> Config {
    Config::new(id)
}

/// The host's work for one tick of all groups, for checks and to keep the
/// optimiser honest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TickWork {
    /// Readies handled.
    pub readies: u64,
    /// Messages delivered.
    pub messages: u64,
}

/// The three replicas of one group; `peers[i]` has id `i + 1`.
struct Group {
    peers: [RawNode<MemStorage>; GROUP_SIZE as usize],
}

impl Group {
    fn new() -> Group {
        let peer = |id: u64| {
            let storage = MemStorage::with_conf_state(ConfState::with_voters(1..=GROUP_SIZE));
            RawNode::new(&node_config(id), storage)
                .unwrap_or_else(|e| panic!("raftcore node {id}: {e}"))
        };
        Group {
            peers: [peer(1), peer(2), peer(3)],
        }
    }

    fn tick(&mut self) {
        for peer in &mut self.peers {
            peer.tick();
        }
    }

    /// Handles Readies and delivers messages until the group is quiet.
    fn drive(&mut self, mailbox: &mut Vec<Message>, work: &mut TickWork) {
        for _ in 0..MAX_ROUNDS {
            let mut progressed = false;
            for peer in &mut self.peers {
                if handle_ready(peer, mailbox) {
                    progressed = true;
                    work.readies += 1;
                }
            }
            if !progressed && mailbox.is_empty() {
                return;
            }
            for msg in mailbox.drain(..) {
                work.messages += 1;
                let (from, to) = (msg.from, msg.to);
                self.peers[slot(to)]
                    .step(msg)
                    .unwrap_or_else(|e| panic!("node {to} step from {from}: {e}"));
            }
        }
        panic!("an idle group did not quiet down in {MAX_ROUNDS} rounds");
    }

    fn leader(&self) -> &RawNode<MemStorage> {
        &self.peers[0]
    }
}

/// Handles one Ready of `peer`, if it has one, pushing the messages it sends
/// onto `mailbox`. Returns whether there was a Ready.
fn handle_ready(peer: &mut RawNode<MemStorage>, mailbox: &mut Vec<Message>) -> bool {
    if !peer.has_ready() {
        return false;
    }
    let mut rd = peer.ready();
    mailbox.append(&mut rd.messages);
    let store = peer.storage_mut();
    if let Some(snapshot) = rd.snapshot.take() {
        store
            .apply_snapshot(snapshot)
            .expect("MemStorage::apply_snapshot");
    }
    store.append(&rd.entries);
    if let Some(hard_state) = rd.hard_state {
        store.set_hard_state(hard_state);
    }
    mailbox.append(&mut rd.persisted_messages);
    for entry in &rd.committed_entries {
        // Only elections' empty entries: nothing is proposed.
        assert!(
            entry.entry_type == EntryType::Normal && entry.data.is_empty(),
            "an idle group applied {entry}"
        );
    }
    peer.advance(rd);
    peer.advance_apply();
    true
}

/// Index into `Group::peers` of node `id`.
fn slot(id: u64) -> usize {
    assert!((1..=GROUP_SIZE).contains(&id), "no node {id}");
    (id - 1) as usize
}

/// `count` idle 3-replica raftcore groups, each led by its node 1.
pub struct IdleGroups {
    groups: Vec<Group>,
    /// Messages of the group being driven; empty between groups.
    mailbox: Vec<Message>,
}

impl IdleGroups {
    /// Creates `count` groups, elects node 1 in each and settles them, then
    /// ticks every other group once so that heartbeat rounds are spread
    /// over alternate ticks.
    ///
    /// # Panics
    ///
    /// If an election fails, which cannot happen: no other node is ticked.
    pub fn new(count: usize) -> IdleGroups {
        let mut mailbox = Vec::new();
        let mut work = TickWork::default();
        let mut groups = Vec::with_capacity(count);
        for i in 0..count {
            let mut group = Group::new();
            group.peers[0].campaign().expect("node 1 campaign");
            group.drive(&mut mailbox, &mut work);
            let leader = group.leader();
            assert_eq!(leader.raft().state, StateRole::Leader, "group {i}");
            let commit = leader.log().committed;
            assert!(group
                .peers
                .iter()
                .all(|p| p.log().applied == commit && p.raft().leader_id == 1));
            if i % 2 == 1 {
                group.tick();
                group.drive(&mut mailbox, &mut work);
            }
            groups.push(group);
        }
        IdleGroups { groups, mailbox }
    }

    /// The number of groups.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// Whether there are no groups.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// One tick of every replica of every group, with the Readies and
    /// messages it causes handled until every group is quiet again (see the
    /// module documentation). Returns the work done.
    pub fn tick(&mut self) -> TickWork {
        let mut work = TickWork::default();
        for group in &mut self.groups {
            group.tick();
            group.drive(&mut self.mailbox, &mut work);
        }
        work
    }

    /// Hibernates every group: the leader hibernates and its hibernate
    /// heartbeat stops the followers' timers; every message is delivered.
    ///
    /// # Panics
    ///
    /// If a leader refuses (its group is not quiescent) or a replica does
    /// not end up hibernating.
    pub fn hibernate(&mut self) {
        let mut work = TickWork::default();
        for (i, group) in self.groups.iter_mut().enumerate() {
            group.peers[0]
                .hibernate()
                .unwrap_or_else(|e| panic!("group {i}: {e}"));
            group.drive(&mut self.mailbox, &mut work);
            assert!(
                group.peers.iter().all(RawNode::is_hibernating),
                "group {i} did not hibernate"
            );
        }
    }

    /// Whether every replica of every group hibernates.
    pub fn all_hibernating(&self) -> bool {
        self.groups
            .iter()
            .all(|g| g.peers.iter().all(RawNode::is_hibernating))
    }

    /// Whether node 1 still leads every group in the term it was elected
    /// in, with every replica following it: no election has happened.
    pub fn leadership_unchanged(&self) -> bool {
        self.groups.iter().all(|g| {
            let term = g.leader().raft().term;
            g.leader().raft().state == StateRole::Leader
                && g.peers
                    .iter()
                    .all(|p| p.raft().term == term && p.raft().leader_id == 1)
        }) && self
            .groups
            .windows(2)
            .all(|w| w[0].leader().raft().term == w[1].leader().raft().term)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn awake_groups_stay_led_and_heartbeat_on_alternate_ticks() {
        let mut groups = IdleGroups::new(10);
        for _ in 0..100 {
            let work = groups.tick();
            // Half the leaders start a heartbeat round each tick: per group,
            // one leader Ready, two heartbeats, two follower Readies, two
            // responses.
            assert_eq!(work.readies, 5 * 3, "{work:?}");
            assert_eq!(work.messages, 5 * 4, "{work:?}");
        }
        assert!(groups.leadership_unchanged());
        assert!(!groups.all_hibernating());
    }

    #[test]
    fn hibernated_groups_do_nothing_on_tick() {
        let mut groups = IdleGroups::new(10);
        groups.tick();
        groups.hibernate();
        assert!(groups.all_hibernating());
        // Far past every election timeout and Check-Quorum round.
        for _ in 0..100 {
            assert_eq!(groups.tick(), TickWork::default());
        }
        assert!(groups.all_hibernating());
        assert!(groups.leadership_unchanged());
    }

    #[test]
    fn hibernated_groups_wake_on_a_proposal() {
        let mut groups = IdleGroups::new(2);
        groups.hibernate();
        let group = &mut groups.groups[0];
        let last = group.leader().log().last_index();
        // An empty payload: idle groups' state machines accept nothing else.
        group.peers[0].propose(&b""[..]).unwrap();
        let mut work = TickWork::default();
        group.drive(&mut groups.mailbox, &mut work);
        assert!(group.peers.iter().all(|p| !p.is_hibernating()));
        assert!(group.peers.iter().all(|p| p.log().applied == last + 1));
        assert!(groups.groups[1].peers.iter().all(RawNode::is_hibernating));
    }

    /// The followers' answers to the hibernate heartbeat must not wake the
    /// leader (raftcore fixed this in ff2d846; before, no group stayed
    /// hibernated with every message delivered).
    #[test]
    fn hibernation_survives_the_followers_answers() {
        let mut groups = IdleGroups::new(1);
        let group = &mut groups.groups[0];
        group.peers[0].hibernate().unwrap();
        let mut work = TickWork::default();
        group.drive(&mut groups.mailbox, &mut work);
        assert!(group.peers.iter().all(RawNode::is_hibernating));
    }
}
