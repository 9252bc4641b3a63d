//! What the leader knows about one follower's log.

use std::fmt;

use super::inflights::Inflights;

/// How the leader is sending to a follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ProgressState {
    /// Unsure where the follower's log ends: one append at a time, waiting
    /// for each answer (or a heartbeat response) before the next.
    #[default]
    Probe,
    /// The follower's log is known: appends are pipelined, optimistically
    /// advancing `next_idx`, bounded by the inflight window.
    Replicate,
    /// A snapshot is on its way; nothing else is sent until it is reported.
    Snapshot,
}

/// The leader's view of one peer.
///
/// Invariant: `matched < next_idx`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The highest index known to match the leader's log.
    pub matched: u64,
    /// The next index to send.
    pub next_idx: u64,
    /// How the leader is sending.
    pub state: ProgressState,
    /// In `Snapshot` state: the index of the snapshot sent.
    pub pending_snapshot: u64,
    /// Heard from since the last Check-Quorum round.
    pub recent_active: bool,
    /// In `Probe` state: an append was sent and not yet answered.
    pub probe_sent: bool,
    /// Append messages in flight (`Replicate` state).
    pub ins: Inflights,
    /// A learner: replicated to, never counted for votes or commit.
    pub is_learner: bool,
    /// The highest heartbeat round this peer acknowledged.
    pub acked_round: u64,
    /// The commit index this peer last reported.
    pub commit: u64,
}

impl Progress {
    /// A peer about to be probed from `next_idx`.
    pub fn new(next_idx: u64, max_inflight: usize) -> Progress {
        Progress {
            matched: 0,
            next_idx,
            state: ProgressState::Probe,
            pending_snapshot: 0,
            recent_active: false,
            probe_sent: false,
            ins: Inflights::new(max_inflight),
            is_learner: false,
            acked_round: 0,
            commit: 0,
        }
    }

    /// Forgets what was learned in a previous term.
    pub(crate) fn reset(&mut self, next_idx: u64) {
        self.matched = 0;
        self.acked_round = 0;
        self.commit = 0;
        self.recent_active = false;
        // Probe from `next_idx` (thesis §3.5: a new leader starts every
        // nextIndex just past its own last entry and backs off on
        // rejections). `become_probe` would restart from `matched + 1 = 1`:
        // resending the whole log after every election, or, once index 1
        // is compacted (the bootstrap snapshot), sending nothing at all
        // until a heartbeat response, and then a needless snapshot.
        self.reset_state(ProgressState::Probe);
        self.next_idx = next_idx;
    }

    fn reset_state(&mut self, state: ProgressState) {
        self.probe_sent = false;
        self.pending_snapshot = 0;
        self.state = state;
        self.ins.reset();
    }

    /// Starts probing from just after what is known to match (or after the
    /// snapshot that was sent).
    pub(crate) fn become_probe(&mut self) {
        let next = if self.state == ProgressState::Snapshot {
            self.matched.max(self.pending_snapshot) + 1
        } else {
            self.matched + 1
        };
        self.reset_state(ProgressState::Probe);
        self.next_idx = next;
    }

    /// Starts pipelining after what is known to match.
    pub(crate) fn become_replicate(&mut self) {
        self.reset_state(ProgressState::Replicate);
        self.next_idx = self.matched + 1;
    }

    /// Waits for the snapshot at `snapshot_index` to be installed.
    pub(crate) fn become_snapshot(&mut self, snapshot_index: u64) {
        self.reset_state(ProgressState::Snapshot);
        self.pending_snapshot = snapshot_index;
    }

    /// Records an acknowledgement of `index`; false if it is stale.
    pub(crate) fn maybe_update(&mut self, index: u64) -> bool {
        let updated = self.matched < index;
        if updated {
            self.matched = index;
            self.probe_sent = false;
        }
        self.next_idx = self.next_idx.max(index + 1);
        updated
    }

    /// Handles a rejection of the append at `rejected` with the follower's
    /// hint `match_hint`; false if the rejection is stale.
    pub(crate) fn maybe_decr_to(&mut self, rejected: u64, match_hint: u64) -> bool {
        if self.state == ProgressState::Replicate {
            // Only a rejection of an index we believe unmatched is news.
            if rejected <= self.matched {
                return false;
            }
            self.next_idx = self.matched + 1;
            return true;
        }
        // Probing: only the rejection of the last probe counts.
        if self.next_idx == 0 || self.next_idx - 1 != rejected {
            return false;
        }
        self.next_idx = rejected.min(match_hint + 1).max(self.matched + 1);
        self.probe_sent = false;
        true
    }

    /// Whether sending must wait.
    pub fn is_paused(&self) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => self.ins.full(),
            ProgressState::Snapshot => true,
        }
    }

    /// Records an append just sent whose last entry is `last`.
    pub(crate) fn sent_entries(&mut self, last: u64) {
        match self.state {
            ProgressState::Replicate => {
                self.next_idx = last + 1;
                self.ins.add(last);
            }
            ProgressState::Probe => self.probe_sent = true,
            ProgressState::Snapshot => {
                unreachable!("appends are not sent while a snapshot is pending")
            }
        }
    }
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} match={} next={}",
            self.state, self.matched, self.next_idx
        )?;
        if self.is_learner {
            f.write_str(" learner")?;
        }
        if self.state == ProgressState::Snapshot {
            write!(f, " pending_snap={}", self.pending_snapshot)?;
        }
        if self.probe_sent {
            f.write_str(" paused")?;
        }
        if self.ins.count() > 0 {
            write!(f, " inflight={}", self.ins.count())?;
            if self.ins.full() {
                f.write_str("[full]")?;
            }
        }
        Ok(())
    }
}
