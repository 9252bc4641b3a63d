//! Leadership transfer (thesis §3.10): bring the transferee up to date, then
//! tell it to campaign at once.

use super::Raft;
use crate::error::{Error, Result};
use crate::storage::Storage;
use crate::types::{Message, MessageType, StateRole, NO_PEER};

impl<S: Storage> Raft<S> {
    /// Starts moving leadership to `transferee`, a voter of the incoming
    /// configuration. Proposals are refused until the transfer ends: when
    /// the transferee wins, or after an election timeout.
    pub(crate) fn transfer_leader(&mut self, transferee: u64) -> Result<()> {
        if self.state != StateRole::Leader {
            return Err(self.not_leader());
        }
        if !self.prs.config.voters.incoming.contains(transferee) {
            return Err(Error::NotVoter(transferee));
        }
        if transferee == self.id || transferee == self.lead_transferee {
            return Ok(());
        }
        self.abort_leader_transfer();
        // The transfer must finish within one election timeout.
        self.election_elapsed = 0;
        self.lead_transferee = transferee;
        let up_to_date = self.prs.progress[&transferee].matched == self.raft_log.last_index();
        if up_to_date {
            self.send_timeout_now(transferee);
        } else {
            self.maybe_send_append(transferee, true);
        }
        Ok(())
    }

    pub(super) fn send_timeout_now(&mut self, to: u64) {
        // The transferee will campaign ignoring leases, so ours ends here,
        // for the rest of this term: its vote requests (which voters grant
        // inside a lease) may win even after rounds sent later were
        // acknowledged, and if the transfer is aborted those rounds would
        // revive a lease beside a new leader (found by the simulator's
        // lease check, tests/sim, SIM_SEED=659). ReadIndex still works.
        self.lease_min_round = u64::MAX;
        self.send(Message {
            msg_type: MessageType::TimeoutNow,
            to,
            ..Message::default()
        });
    }

    pub(super) fn abort_leader_transfer(&mut self) {
        self.lead_transferee = NO_PEER;
    }
}
