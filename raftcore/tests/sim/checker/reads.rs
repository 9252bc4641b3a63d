//! Linearizable reads (thesis §6.4): every read reflects every write
//! acknowledged before it was issued.

use super::{Checker, Violation};
use crate::state_machine::StateMachine;

impl Checker {
    /// A read is issued: remembers every write acknowledged so far.
    pub fn read_issued(&mut self, read: u64) {
        self.read_bounds.insert(read, self.max_committed);
    }

    /// Linearizable reads (thesis §6.4): the read index covers every entry
    /// committed before the read was issued.
    pub fn read_answered(&self, id: u64, read: u64, index: u64) -> Result<(), Violation> {
        let Some(&bound) = self.read_bounds.get(&read) else {
            return Err(Violation(format!(
                "node {id}: answer to unknown read {read}"
            )));
        };
        if index < bound {
            return Err(Violation(format!(
                "linearizable read (thesis §6.4): read {read} on node {id} got read index \
                 {index}, but {bound} was committed when it was issued"
            )));
        }
        Ok(())
    }

    /// A read served from `sm` (applied past its read index) sees every
    /// write committed before it was issued.
    pub fn read_served(&self, id: u64, read: u64, sm: &StateMachine) -> Result<(), Violation> {
        let bound = self.read_bounds.get(&read).copied().unwrap_or(0);
        let (have, want) = (sm.count_upto(bound), self.payloads_upto(bound));
        if sm.applied < bound || have < want {
            return Err(Violation(format!(
                "linearizable read (thesis §6.4): read {read} served by node {id} at applied \
                 {} sees {have} of the {want} writes committed (to {bound}) before it was issued",
                sm.applied
            )));
        }
        Ok(())
    }
}
