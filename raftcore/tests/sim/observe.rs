//! The invariants checked after every step, over all nodes.

use crate::checker::Violation;
use crate::cluster::Cluster;
use crate::node::Life;

impl Cluster {
    /// Every invariant after a step.
    pub(crate) fn check(&mut self) -> Result<(), Violation> {
        let mut elected = None;
        for (&id, node) in &self.nodes {
            if let Some(raw) = node.raw() {
                if self.checker.observe(id, raw, &mut self.rng)? {
                    self.stats.elections += 1;
                    elected = Some(id);
                    let term = raw.raft().term;
                    self.log(|| format!("node {id} leads term {term}"));
                }
            }
        }
        if let Some(id) = elected.filter(|_| self.faults) {
            crate::faults::disturb_new_leader(self, id);
        }
        self.check_leases()?;
        let up = self.up_ids();
        if up.len() >= 2 {
            let a = self.rng.pick(&up).expect("non-empty");
            let b = self.rng.pick(&up).expect("non-empty");
            if a != b {
                let (ra, rb) = (self.nodes[&a].raw(), self.nodes[&b].raw());
                let (ra, rb) = (ra.expect("up"), rb.expect("up"));
                self.checker
                    .spot_check_log_matching((a, ra), (b, rb), &mut self.rng)?;
            }
        }
        if self.checker.founding_membership() {
            self.check_electable()?;
        }
        if self.stats.steps % 256 == 0 {
            self.check_prefixes()?;
        }
        Ok(())
    }

    /// Lease safety (thesis §6.4.1): while a leader holds a lease, a read
    /// served from its state machine at its commit index is linearizable,
    /// so nothing may be committed beyond that index (by a newer leader).
    /// As if every leader served a lease read after every step. A paused
    /// node serves nothing until it has caught up on its ticks.
    fn check_leases(&self) -> Result<(), Violation> {
        let top = self.checker.max_committed();
        for (id, node) in self.nodes.iter().filter(|(_, n)| n.is_up()) {
            let raw = node.raw().expect("up");
            let committed = raw.raft().raft_log.committed;
            if committed < top && raw.has_valid_lease() {
                return Err(Violation(format!(
                    "lease safety (thesis §6.4.1): node {id} holds a lease in term {} with \
                     commit index {committed}, but {top} is committed; {}",
                    raw.raft().term,
                    raw.status()
                )));
            }
        }
        Ok(())
    }

    /// Whether a founding voter lacking the last committed entry could be
    /// elected (see `Checker::check_electable`).
    fn check_electable(&self) -> Result<(), Violation> {
        use raftcore::{Storage, StorageError};
        let Some((top, want)) = self.checker.last_committed() else {
            return Ok(());
        };
        // A log compacted past `top` holds it in its snapshot.
        let holds =
            |t: Result<u64, StorageError>| t == Ok(want) || t == Err(StorageError::Compacted);
        let mut logs = Vec::with_capacity(self.p.voters as usize);
        for id in 1..=self.p.voters {
            let view = match &self.nodes[&id].life {
                Life::Up(raw) => {
                    let log = raw.log();
                    (log.last_term(), log.last_index(), holds(log.term(top)))
                }
                Life::Down { storage, .. } => {
                    let last = storage.last_index().expect("mem storage");
                    let last_term = storage.term(last).expect("the last entry has a term");
                    (last_term, last, holds(storage.term(top)))
                }
                Life::Stopped => continue,
            };
            logs.push((id, view.0, view.1, view.2));
        }
        self.checker.check_electable(self.p.voters as usize, &logs)
    }

    /// State machine safety across all nodes.
    pub fn check_prefixes(&self) -> Result<(), Violation> {
        let sms = self
            .nodes
            .iter()
            .filter(|(_, n)| n.is_up())
            .map(|(&id, n)| (id, &n.sm));
        self.checker.check_prefixes(sms)
    }
}
