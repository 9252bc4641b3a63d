//! Hibernation: an idle group stops its timers, so thousands of idle groups
//! cost nothing, and wakes on the first message or request without a
//! spurious election.
//!
//! The leader hibernates only when every peer holds and has committed the
//! whole log; its last heartbeat tells followers to stop their election
//! timers as well. Anything else that arrives wakes a peer with fresh
//! timers. A follower woken alone (say, by its host suspecting the leader)
//! cannot win a pre-vote while the other followers still hibernate with a
//! known leader: they are within their lease.

use super::Raft;
use crate::error::{Error, Result};
use crate::storage::Storage;
use crate::tracker::ProgressState;
use crate::types::{StateRole, NO_PEER};

impl<S: Storage> Raft<S> {
    /// Stops this peer's timers if the group is idle. A leader may leave
    /// the `unreachable` peers behind (their stores are down): a quorum
    /// holds the whole log, and a returning peer's pre-vote wakes the group.
    pub(crate) fn hibernate(&mut self, unreachable: &[u64]) -> Result<()> {
        match self.state {
            StateRole::Leader => {
                self.check_leader_quiescent(unreachable)?;
                self.bcast_heartbeat(true);
                // Acknowledgements of this round must not renew a lease (nor
                // may anything revive one forfeited by a transfer).
                self.lease_min_round = self.lease_min_round.max(self.round);
            }
            StateRole::Follower if self.leader_id != NO_PEER => {}
            _ => return Err(Error::NotQuiescent("no known leader")),
        }
        self.hibernating = true;
        Ok(())
    }

    fn check_leader_quiescent(&self, unreachable: &[u64]) -> Result<()> {
        let log = &self.raft_log;
        let last = log.last_index();
        if self.lead_transferee != NO_PEER {
            return Err(Error::NotQuiescent("leader transfer in progress"));
        }
        if !self.pending_reads.is_empty() || !self.reads_awaiting_commit.is_empty() {
            return Err(Error::NotQuiescent("reads pending"));
        }
        if log.committed != last || log.persisted != last || log.applied != last {
            return Err(Error::NotQuiescent(
                "log not committed, persisted and applied",
            ));
        }
        if self.prs.config.auto_leave {
            return Err(Error::NotQuiescent("joint configuration to leave"));
        }
        let lagging = self.prs.progress.iter().any(|(&id, pr)| {
            id != self.id
                && !unreachable.contains(&id)
                && (pr.matched != last || pr.commit != last || pr.state != ProgressState::Replicate)
        });
        if lagging {
            return Err(Error::NotQuiescent("a peer is behind"));
        }
        Ok(())
    }

    /// Restarts the timers; a leader also announces itself at once.
    pub(crate) fn wake(&mut self) {
        if !self.hibernating {
            return;
        }
        self.hibernating = false;
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        if self.state == StateRole::Leader {
            for pr in self.prs.progress.values_mut() {
                pr.recent_active = true;
            }
            self.lease_min_round = self.lease_min_round.max(self.round);
            self.needs_bcast_heartbeat = true;
        }
    }
}
