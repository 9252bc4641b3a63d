//! Proposals and membership changes (thesis §4.3).

use super::Raft;
use crate::confchange;
use crate::error::{Error, Result};
use crate::storage::Storage;
use crate::types::{
    ConfChange, ConfState, Entry, EntryType, Message, MessageType, StateRole, NO_PEER,
};

impl<S: Storage> Raft<S> {
    /// Proposes entries: appended here if this peer leads, forwarded to the
    /// leader if it follows (and forwarding is on), refused otherwise.
    pub(crate) fn propose(&mut self, entries: Vec<Entry>) -> Result<()> {
        if self.state == StateRole::Leader {
            return self.append_proposals(entries);
        }
        if self.state == StateRole::Follower
            && self.leader_id != NO_PEER
            && !self.disable_proposal_forwarding
        {
            if entries
                .iter()
                .any(|e| e.entry_type == EntryType::ConfChange)
            {
                // The leader checks conf changes; a forwarded one would fail
                // silently. Make the caller go to the leader.
                return Err(self.not_leader());
            }
            let to = self.leader_id;
            self.send(Message {
                msg_type: MessageType::Propose,
                to,
                entries,
                ..Message::default()
            });
            return Ok(());
        }
        Err(self.not_leader())
    }

    /// Appends proposed entries to the leader's log.
    pub(super) fn append_proposals(&mut self, mut entries: Vec<Entry>) -> Result<()> {
        if self.state != StateRole::Leader {
            return Err(self.not_leader());
        }
        if !self.prs.progress.contains_key(&self.id) {
            return Err(Error::NotMember(self.id));
        }
        if self.lead_transferee != NO_PEER {
            return Err(Error::TransferInProgress {
                transferee: self.lead_transferee,
            });
        }
        let conf_changes = entries
            .iter()
            .filter(|e| e.entry_type == EntryType::ConfChange)
            .count();
        if conf_changes > 0 {
            if conf_changes > 1 {
                return Err(Error::InvalidConfChange(
                    "more than one change in one proposal".into(),
                ));
            }
            let entry = entries
                .iter()
                .find(|e| e.entry_type == EntryType::ConfChange)
                .expect("counted");
            self.check_conf_change(entry)?;
        }
        let size: u64 = entries.iter().map(Entry::payload_size).sum();
        if self.max_uncommitted_size > 0
            && self.uncommitted_size > 0
            && self.uncommitted_size.saturating_add(size) > self.max_uncommitted_size
        {
            return Err(Error::UncommittedLimit);
        }
        let mut index = self.raft_log.last_index();
        for e in &mut entries {
            index += 1;
            e.term = self.term;
            e.index = index;
            if e.entry_type == EntryType::ConfChange {
                self.pending_conf_index = index;
            }
        }
        self.raft_log.append(&entries);
        self.uncommitted_size += size;
        self.needs_bcast_append = true;
        Ok(())
    }

    /// Refuses a configuration change that cannot apply when its turn
    /// comes: only one may be in flight, and it must fit the current
    /// configuration (which is the one it will apply to, since nothing else
    /// is in flight).
    fn check_conf_change(&self, entry: &Entry) -> Result<()> {
        if self.pending_conf_index > self.raft_log.applied {
            return Err(Error::ConfChangePending);
        }
        let cc =
            ConfChange::decode(&entry.data).map_err(|e| Error::InvalidConfChange(e.to_string()))?;
        confchange::apply(&self.prs, self.raft_log.last_index() + 1, &cc).map(|_| ())
    }

    /// Applies a committed configuration change; returns the new membership.
    pub(crate) fn apply_conf_change(&mut self, cc: &ConfChange) -> Result<ConfState> {
        let (config, progress) = confchange::apply(&self.prs, self.raft_log.last_index() + 1, cc)?;
        self.prs.apply(config, progress);
        Ok(self.after_config_change())
    }

    fn after_config_change(&mut self) -> ConfState {
        let cs = self.prs.config.to_conf_state();
        let member = self.prs.progress.get(&self.id).map(|p| p.is_learner);
        self.is_learner = member == Some(true);
        if self.state != StateRole::Leader {
            return cs;
        }
        if member != Some(false) {
            // Removed or demoted: step down, and let the remaining voters
            // elect a leader among themselves (thesis §4.2.2).
            self.become_follower(self.term, NO_PEER);
            return cs;
        }
        // The quorum changed: the commit index may move, and new peers need
        // the log.
        if !self.maybe_commit() {
            for to in self
                .prs
                .progress
                .keys()
                .copied()
                .filter(|&id| id != self.id)
                .collect::<Vec<_>>()
            {
                self.maybe_send_append(to, false);
            }
        }
        if self.lead_transferee != NO_PEER
            && !self
                .prs
                .config
                .voters
                .incoming
                .contains(self.lead_transferee)
        {
            self.abort_leader_transfer();
        }
        cs
    }

    /// Records that the host applied entries up to `index`; a leader then
    /// leaves an auto-leave joint configuration once it is applied.
    pub(crate) fn applied_to(&mut self, index: u64) {
        self.raft_log.applied_to(index);
        if self.state == StateRole::Leader
            && self.prs.config.auto_leave
            && self.raft_log.applied >= self.pending_conf_index
        {
            let leave = Entry {
                entry_type: EntryType::ConfChange,
                data: ConfChange::leave_joint().encode(),
                ..Entry::default()
            };
            // Refused only while a transfer is in progress; the next applied
            // entry retries.
            let _ = self.append_proposals(vec![leave]);
        }
    }

    /// Committed entries were handed out: they no longer count against the
    /// uncommitted size limit.
    pub(crate) fn reduce_uncommitted_size(&mut self, entries: &[Entry]) {
        if self.state != StateRole::Leader {
            return;
        }
        let size: u64 = entries.iter().map(Entry::payload_size).sum();
        self.uncommitted_size = self.uncommitted_size.saturating_sub(size);
    }
}
