//! [`RawNode`]: the host's handle on one peer, and the [`Ready`] it drains.

use bytes::Bytes;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::log::RaftLog;
use crate::raft::Raft;
pub use crate::raft::SnapshotStatus;
use crate::status::Status;
use crate::storage::Storage;
use crate::types::{
    ConfChange, ConfState, Entry, EntryType, HardState, Message, MessageType, ReadState, Snapshot,
    SoftState,
};

/// Everything the host must do for one peer, gathered since the last
/// `Ready`.
///
/// The host handles a `Ready` in this order:
/// 1. send `messages` (they may leave before anything is persisted);
/// 2. persist `snapshot` (and install it in the state machine), `entries`
///    and `hard_state` — with an fsync if `must_sync`;
/// 3. send `persisted_messages` (only now: they promise what step 2 wrote);
/// 4. apply `committed_entries` in order (now, or later on another thread),
///    and serve each read in `read_states` once its index is applied;
/// 5. call [`RawNode::advance`] with this `Ready`, and report applied
///    indexes with [`RawNode::advance_apply`] or
///    [`RawNode::advance_apply_to`].
#[derive(Debug, Default)]
pub struct Ready {
    /// The new volatile state, if it changed.
    pub soft_state: Option<SoftState>,
    /// The new hard state to persist, if it changed.
    pub hard_state: Option<HardState>,
    /// A snapshot from the leader to persist and install.
    pub snapshot: Option<Snapshot>,
    /// Entries to append to stable storage (replacing any entries from the
    /// first one's index on).
    pub entries: Vec<Entry>,
    /// Committed entries to apply, in order. Only persisted entries appear
    /// here.
    pub committed_entries: Vec<Entry>,
    /// Messages that may be sent before the persist of step 2: the leader's
    /// appends, heartbeats and snapshots (thesis §10.2.1: the leader writes
    /// its log in parallel with replicating it).
    pub messages: Vec<Message>,
    /// Messages that must wait for the persist of step 2: votes, responses
    /// acknowledging entries, and anything sent in a term not yet persisted.
    pub persisted_messages: Vec<Message>,
    /// Reads confirmed since the last `Ready`.
    pub read_states: Vec<ReadState>,
    /// Whether step 2 needs an fsync (entries, a snapshot, or a new term or
    /// vote). A change of the commit index alone does not.
    pub must_sync: bool,
    /// The last entry and the snapshot index handed out, to mark persisted.
    persist_mark: (Option<(u64, u64)>, Option<u64>),
}

impl Ready {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.soft_state.is_none()
            && self.hard_state.is_none()
            && self.snapshot.is_none()
            && self.entries.is_empty()
            && self.committed_entries.is_empty()
            && self.messages.is_empty()
            && self.persisted_messages.is_empty()
            && self.read_states.is_empty()
    }
}

/// The host's handle on one peer of one group.
///
/// It wraps the [`Raft`] state machine with the `Ready`/`advance` protocol.
/// At most one `Ready` is outstanding at a time: call [`advance`](Self::advance)
/// before the next [`ready`](Self::ready).
pub struct RawNode<S: Storage> {
    raft: Raft<S>,
    prev_soft_state: SoftState,
    prev_hard_state: HardState,
    ready_outstanding: bool,
}

impl<S: Storage> RawNode<S> {
    /// Creates a peer, restarting from `storage`. A new group's founding
    /// members each start with a storage holding the initial membership.
    pub fn new(config: &Config, storage: S) -> Result<RawNode<S>> {
        let raft = Raft::new(config, storage)?;
        let prev_soft_state = raft.soft_state();
        let prev_hard_state = raft.hard_state();
        Ok(RawNode {
            raft,
            prev_soft_state,
            prev_hard_state,
            ready_outstanding: false,
        })
    }

    /// Advances time by one tick. A no-op while hibernating.
    pub fn tick(&mut self) {
        self.raft.tick();
    }

    /// Starts an election now (with a pre-vote if configured). With leases
    /// on ([`Config::lease_ticks`]), does nothing while this peer may be
    /// inside a leader's lease (it heard from the leader, or restarted after
    /// the bootstrap term, less than `election_ticks` ago): move a live
    /// leader with [`transfer_leader`](Self::transfer_leader).
    pub fn campaign(&mut self) -> Result<()> {
        self.raft.wake();
        if !self.raft.promotable() {
            return Err(Error::NotVoter(self.raft.id));
        }
        self.raft.host_campaign();
        Ok(())
    }

    /// Proposes `data` for the log. On a follower it is forwarded to the
    /// leader (unless forwarding is disabled); success means only that the
    /// proposal was accepted for replication, not that it will commit:
    /// watch the committed entries.
    pub fn propose(&mut self, data: impl Into<Bytes>) -> Result<()> {
        self.propose_batch([data.into()])
    }

    /// Proposes several payloads as consecutive entries, all or none.
    pub fn propose_batch(&mut self, data: impl IntoIterator<Item = Bytes>) -> Result<()> {
        self.raft.wake();
        self.raft
            .propose(data.into_iter().map(Entry::normal).collect())
    }

    /// Proposes a membership change. Only the leader accepts one, and only
    /// when no other is in flight. Apply it with
    /// [`apply_conf_change`](Self::apply_conf_change) when it commits.
    pub fn propose_conf_change(&mut self, cc: &ConfChange) -> Result<()> {
        self.raft.wake();
        let entry = Entry {
            entry_type: EntryType::ConfChange,
            data: cc.encode(),
            ..Entry::default()
        };
        self.raft.propose(vec![entry])
    }

    /// Applies a committed membership change (decode the entry with
    /// [`ConfChange::decode`]) and returns the new membership, which the
    /// host persists with the apply state. An error means the change does
    /// not fit the configuration; every peer refuses it alike, so the host
    /// treats the entry as a no-op.
    pub fn apply_conf_change(&mut self, cc: &ConfChange) -> Result<ConfState> {
        self.raft.apply_conf_change(cc)
    }

    /// Processes a message from another peer of the group.
    pub fn step(&mut self, m: Message) -> Result<()> {
        self.raft.step(m)
    }

    /// Requests a linearizable read identified by `context`. The answer
    /// arrives as a [`ReadState`] in a later `Ready` (on this peer, even
    /// when it is a follower that asked the leader). A request may be
    /// dropped if leadership changes: retry on timeout.
    pub fn read_index(&mut self, context: impl Into<Bytes>) -> Result<()> {
        self.raft.wake();
        self.raft.read_index(context.into())
    }

    /// Starts moving leadership to `transferee`. Only on the leader.
    pub fn transfer_leader(&mut self, transferee: u64) -> Result<()> {
        self.raft.wake();
        self.raft.transfer_leader(transferee)
    }

    /// Tells the leader that `id` could not be reached.
    pub fn report_unreachable(&mut self, id: u64) {
        self.raft.report_unreachable(id);
    }

    /// Tells the leader how sending a snapshot to `id` ended.
    pub fn report_snapshot(&mut self, id: u64, status: SnapshotStatus) {
        self.raft.report_snapshot(id, status);
    }

    /// Stops the timers of an idle group: on the leader when every peer
    /// holds and has committed the whole log (followers follow its lead);
    /// on a follower with a known leader, at the host's discretion.
    pub fn hibernate(&mut self) -> Result<()> {
        self.raft.hibernate(&[])
    }

    /// [`hibernate`](Self::hibernate), except that on the leader the
    /// `unreachable` peers (on stores the host knows are down) may lag: the
    /// committed log is on a quorum anyway, and such a peer, once back,
    /// wakes the group with its first pre-vote. So a store going down does
    /// not keep every group it had a follower in awake.
    pub fn hibernate_despite(&mut self, unreachable: &[u64]) -> Result<()> {
        self.raft.hibernate(unreachable)
    }

    /// Restarts the timers of a hibernating peer (the host suspects the
    /// leader is gone). Messages and requests wake a peer by themselves.
    pub fn wake(&mut self) {
        self.raft.wake();
    }

    /// Whether the timers are stopped.
    pub fn is_hibernating(&self) -> bool {
        self.raft.is_hibernating()
    }

    /// Lets a peer the host knows to be pristine vote at once. With leases
    /// on, every peer otherwise ignores vote requests for `election_ticks`
    /// after it starts: it may have acknowledged a leader before a restart,
    /// and that leader may still serve reads on the promise. A peer that
    /// never acknowledged a leader of its group — it never left the term
    /// its log began in and never voted (a split's new region whose leader
    /// it has not heard from yet) — promised nothing. Without this, the
    /// new regions of a split stall an election timeout: their followers'
    /// peers ignore the first candidate's requests.
    ///
    /// Does nothing once the peer has heard from a leader.
    pub fn waive_startup_vote_wait(&mut self) {
        self.raft.waive_startup_vote_wait();
    }

    /// Whether this peer is the leader and holds a lease now: a read served
    /// from the local state machine after applying up to the commit index
    /// is linearizable under the clock assumption of [`Config::lease_ticks`].
    pub fn has_valid_lease(&self) -> bool {
        self.raft.lease_valid()
    }

    /// Whether the next `Ready` carries a snapshot from the leader. A host
    /// that applies entries asynchronously waits for those in flight to
    /// finish before taking that `Ready`, so that no older entry applies
    /// over the snapshot's state.
    pub fn has_pending_snapshot(&self) -> bool {
        self.raft.raft_log.unstable_snapshot().is_some()
    }

    /// Whether [`ready`](Self::ready) has anything to hand out.
    pub fn has_ready(&self) -> bool {
        if self.ready_outstanding {
            return false;
        }
        let r = &self.raft;
        r.has_deferred_broadcasts()
            || !r.msgs.is_empty()
            || !r.read_states.is_empty()
            || r.soft_state() != self.prev_soft_state
            || r.hard_state() != self.prev_hard_state
            || r.raft_log.unstable_snapshot().is_some()
            || !r.raft_log.unstable_entries().is_empty()
            || r.raft_log.has_next_committed()
    }

    /// Gathers what the host must do. See [`Ready`] for the protocol.
    ///
    /// # Panics
    /// If the previous `Ready` has not been advanced.
    pub fn ready(&mut self) -> Ready {
        assert!(
            !self.ready_outstanding,
            "ready() called before advance() of the previous Ready"
        );
        self.ready_outstanding = true;
        self.raft.flush_broadcasts();
        let mut rd = Ready::default();
        let ss = self.raft.soft_state();
        if ss != self.prev_soft_state {
            rd.soft_state = Some(ss);
            self.prev_soft_state = ss;
        }
        let hs = self.raft.hard_state();
        let term_or_vote_changed =
            hs.term != self.prev_hard_state.term || hs.vote != self.prev_hard_state.vote;
        if hs != self.prev_hard_state {
            rd.hard_state = Some(hs);
            self.prev_hard_state = hs;
        }
        let log = &self.raft.raft_log;
        rd.snapshot = log.unstable_snapshot().cloned();
        rd.entries = log.unstable_entries().to_vec();
        rd.persist_mark = (
            rd.entries.last().map(|e| (e.index, e.term)),
            rd.snapshot.as_ref().map(|s| s.metadata.index),
        );
        rd.committed_entries = log.next_committed();
        if let Some(last) = rd.committed_entries.last() {
            self.raft.raft_log.applying_to(last.index);
            self.raft.reduce_uncommitted_size(&rd.committed_entries);
        }
        rd.read_states = std::mem::take(&mut self.raft.read_states);
        rd.must_sync = !rd.entries.is_empty() || rd.snapshot.is_some() || term_or_vote_changed;
        for m in std::mem::take(&mut self.raft.msgs) {
            // The planted bug must bypass the term/vote check as well: a
            // granted vote always comes with a vote change, so a switch
            // inside `may_send_before_persist` alone planted nothing (found
            // by the simulator: no early granted vote in 300 seeds).
            #[cfg(feature = "planted-bugs")]
            let leak =
                self.raft.planted.vote_before_persist && m.msg_type == MessageType::VoteResponse;
            #[cfg(not(feature = "planted-bugs"))]
            let leak = false;
            if leak || (!term_or_vote_changed && self.may_send_before_persist(&m)) {
                rd.messages.push(m);
            } else {
                rd.persisted_messages.push(m);
            }
        }
        rd
    }

    /// Whether `m` depends on nothing the current `Ready` persists.
    fn may_send_before_persist(&self, m: &Message) -> bool {
        matches!(
            m.msg_type,
            MessageType::Append
                | MessageType::Heartbeat
                | MessageType::Snapshot
                | MessageType::TimeoutNow
                | MessageType::ReadIndexResponse
                | MessageType::Propose
                | MessageType::ReadIndex
        )
    }

    /// Tells the peer that everything in `rd` was persisted (and the
    /// snapshot, if any, installed). Committed entries are not yet
    /// considered applied: report that with
    /// [`advance_apply`](Self::advance_apply) or
    /// [`advance_apply_to`](Self::advance_apply_to).
    pub fn advance(&mut self, rd: Ready) {
        self.ready_outstanding = false;
        let (last_entry, snapshot_index) = rd.persist_mark;
        let log = &mut self.raft.raft_log;
        if let Some(index) = snapshot_index {
            log.stable_snap_to(index);
        }
        if let Some((index, term)) = last_entry {
            log.stable_to(index, term);
        }
        self.raft.on_persisted();
    }

    /// Reports that every committed entry handed out so far is applied.
    pub fn advance_apply(&mut self) {
        let applying = self.raft.raft_log.applying;
        self.raft.applied_to(applying);
    }

    /// Reports that committed entries up to `index` are applied (for hosts
    /// that apply asynchronously).
    ///
    /// # Panics
    /// If `index` is beyond the entries handed out.
    pub fn advance_apply_to(&mut self, index: u64) {
        self.raft.applied_to(index);
    }

    /// A summary of this peer's state.
    pub fn status(&self) -> Status {
        Status::new(&self.raft)
    }

    /// The underlying state machine, for inspection.
    pub fn raft(&self) -> &Raft<S> {
        &self.raft
    }

    /// The log, for inspection.
    pub fn log(&self) -> &RaftLog<S> {
        &self.raft.raft_log
    }

    /// The storage.
    pub fn storage(&self) -> &S {
        self.raft.raft_log.store()
    }

    /// The storage, for the host's writes.
    pub fn storage_mut(&mut self) -> &mut S {
        self.raft.raft_log.store_mut()
    }

    /// Plants test-only bugs.
    #[cfg(feature = "planted-bugs")]
    pub fn plant(&mut self, bugs: crate::raft::PlantedBugs) {
        self.raft.planted = bugs;
    }
}
