//! Invariants of logs and elections (thesis §3.4 to §3.6, Figure 3.2).

use std::collections::btree_map::Entry as MapEntry;

use raftcore::{MemStorage, RawNode, StateRole, StorageError};

use super::{Checker, Violation};
use crate::rng::Rng;

/// Leader Append-Only (thesis §3.5, Figure 3.2): a leader never
/// overwrites or deletes entries in its log. `(index, term)` ended its log
/// when last seen.
fn check_append_only(
    id: u64,
    raw: &RawNode<MemStorage>,
    index: u64,
    term: u64,
) -> Result<(), Violation> {
    let log = raw.log();
    let held = log.term(index);
    if log.last_index() >= index && (held == Ok(term) || held == Err(StorageError::Compacted)) {
        return Ok(());
    }
    Err(Violation(format!(
        "leader append-only (thesis §3.5): leader {id} of term {} had {term}/{index}, now \
         {held:?} there (its log ends at {}/{})",
        raw.raft().term,
        log.last_term(),
        log.last_index()
    )))
}

impl Checker {
    /// Election Safety (thesis §3.6.3, Figure 3.2): at most one leader can
    /// be elected in a given term. Checked over the whole history.
    pub(super) fn check_election_safety(
        &mut self,
        id: u64,
        raw: &RawNode<MemStorage>,
        rng: &mut Rng,
    ) -> Result<bool, Violation> {
        let r = raw.raft();
        if r.state != StateRole::Leader {
            return Ok(false);
        }
        let (last_index, last_term) = (r.raft_log.last_index(), r.raft_log.last_term());
        match self.leaders.entry(r.term) {
            MapEntry::Occupied(o) if o.get().0 != id => Err(Violation(format!(
                "election safety (thesis §3.6.3): nodes {} and {id} both leaders of term {}",
                o.get().0,
                r.term
            ))),
            MapEntry::Occupied(mut o) => {
                let (_, index, term) = *o.get();
                check_append_only(id, raw, index, term)?;
                o.insert((id, last_index, last_term));
                Ok(false)
            }
            MapEntry::Vacant(v) => {
                v.insert((id, last_index, last_term));
                self.check_leader_completeness(id, raw, rng)?;
                Ok(true)
            }
        }
    }

    /// One vote per term (thesis §3.4, Figure 3.2): a node grants its vote
    /// to at most one candidate in a term, across crashes.
    pub fn on_vote_granted(&mut self, voter: u64, term: u64, to: u64) -> Result<(), Violation> {
        match self.votes.entry((voter, term)) {
            MapEntry::Vacant(v) => {
                v.insert(to);
                Ok(())
            }
            MapEntry::Occupied(o) if *o.get() == to => Ok(()),
            MapEntry::Occupied(o) => Err(Violation(format!(
                "one vote per term (thesis §3.4): node {voter} voted for {} and for {to} in \
                 term {term}",
                o.get()
            ))),
        }
    }

    /// The log cursors of `raftcore::log::RaftLog`:
    /// `applied <= applying <= committed <= last_index`, `persisted <=
    /// last_index`.
    pub(super) fn check_cursors(
        &self,
        id: u64,
        raw: &RawNode<MemStorage>,
    ) -> Result<(), Violation> {
        let log = raw.log();
        let last = log.last_index();
        if log.applied <= log.applying
            && log.applying <= log.committed
            && log.committed <= last
            && log.persisted <= last
        {
            return Ok(());
        }
        Err(Violation(format!(
            "log cursors: node {id} has applied={} applying={} committed={} persisted={} \
             last={last}",
            log.applied, log.applying, log.committed, log.persisted
        )))
    }

    /// Leader Completeness (thesis §3.6.3): a new leader's log holds every
    /// entry committed in earlier terms (a leader of an older term may still
    /// finish its election after a newer one committed). Checks the last
    /// such entry (which by Log Matching covers the prefix) and one random
    /// committed entry before it.
    fn check_leader_completeness(
        &self,
        id: u64,
        raw: &RawNode<MemStorage>,
        rng: &mut Rng,
    ) -> Result<(), Violation> {
        let term = raw.raft().term;
        let Some((&top, c)) = self
            .committed
            .iter()
            .rev()
            .find(|(_, c)| c.commit_term < term)
        else {
            return Ok(());
        };
        let log = raw.log();
        if log.term(top) != Ok(c.term) {
            return Err(Violation(format!(
                "leader completeness (thesis §3.6.3): node {id} became leader of term {term} \
                 with {:?} at index {top}, but entry {top} of term {} was committed in term {} \
                 (its log ends at {}/{})",
                log.term(top),
                c.term,
                c.commit_term,
                log.last_term(),
                log.last_index()
            )));
        }
        let first = log.first_index();
        if first <= top {
            let i = rng.range(first, top);
            self.check_entry_of(id, raw, i, "leader completeness (thesis §3.6.3)")?;
        }
        Ok(())
    }

    /// Leader Completeness as a property of the present state (the
    /// invariant behind thesis §3.6.3's proof): a voter whose log lacks the
    /// last committed entry is less up-to-date (§3.6.1) than a majority of
    /// the voters, so no election can make it leader. Checked while the
    /// membership is the founding one (of `voters` voters); `logs` holds
    /// each founding voter's `(id, last term, last index, holds the last
    /// committed entry)`, from its persisted log if it is down.
    pub fn check_electable(
        &self,
        voters: usize,
        logs: &[(u64, u64, u64, bool)],
    ) -> Result<(), Violation> {
        let Some((top, want)) = self.last_committed() else {
            return Ok(());
        };
        let majority = voters / 2 + 1;
        for &(id, last_term, last_index, _) in logs.iter().filter(|l| !l.3) {
            let voters: Vec<u64> = logs
                .iter()
                .filter(|&&(_, t, i, _)| last_term > t || (last_term == t && last_index >= i))
                .map(|&(v, ..)| v)
                .collect();
            if voters.len() >= majority {
                return Err(Violation(format!(
                    "leader completeness (thesis §3.6.3): node {id} (log ends at \
                     {last_term}/{last_index}) lacks committed entry {want}/{top}, yet its log \
                     is as up-to-date as those of {voters:?}, a majority that would elect it"
                )));
            }
        }
        Ok(())
    }

    /// The index and term of the last entry known committed.
    pub fn last_committed(&self) -> Option<(u64, u64)> {
        let (&index, c) = self.committed.last_key_value()?;
        Some((index, c.term))
    }

    /// Committed entries never change (thesis §3.6.3, State Machine
    /// Safety rests on it): every entry a node counts as committed matches
    /// what was ever committed at that index.
    pub(super) fn check_new_commits(
        &mut self,
        id: u64,
        raw: &RawNode<MemStorage>,
    ) -> Result<(), Violation> {
        let log = raw.log();
        let committed = log.committed;
        let checked = self.checked_commit.get(&id).copied().unwrap_or(0);
        if committed <= checked {
            return Ok(());
        }
        let what = "committed entries never change (thesis §3.6.3)";
        let first = log.first_index();
        if checked < first - 1 {
            // The node skipped ahead by a snapshot: only its boundary term
            // is known.
            let term = log
                .term(first - 1)
                .map_err(|e| Violation(format!("node {id}: term of {}: {e}", first - 1)))?;
            self.record((id, raw.raft().term), first - 1, term, None, what)?;
        }
        let low = first.max(checked + 1);
        if low <= committed {
            let entries = log.slice(low, committed + 1, u64::MAX).map_err(|e| {
                Violation(format!("node {id}: committed [{low}, {committed}]: {e}"))
            })?;
            for e in &entries {
                self.record(
                    (id, raw.raft().term),
                    e.index,
                    e.term,
                    Some((e.entry_type, e.data.clone())),
                    what,
                )?;
            }
        }
        self.checked_commit.insert(id, committed);
        Ok(())
    }

    /// Compares the entry at `index` of `raw`'s log with the committed one.
    fn check_entry_of(
        &self,
        id: u64,
        raw: &RawNode<MemStorage>,
        index: u64,
        what: &str,
    ) -> Result<(), Violation> {
        let (Some(known), Ok(mut ents)) = (
            self.committed.get(&index),
            raw.log().slice(index, index + 1, u64::MAX),
        ) else {
            return Ok(());
        };
        let e = ents.pop().expect("slice of one entry");
        let same_content = known
            .content
            .as_ref()
            .is_none_or(|(t, d)| *t == e.entry_type && *d == e.data);
        if e.term != known.term || !same_content {
            return Err(Violation(format!(
                "{what}: node {id} holds {}/{index}, committed is {}/{index}",
                e.term, known.term
            )));
        }
        Ok(())
    }

    /// Log Matching (thesis §3.5): if two logs hold an entry with the same
    /// index and term, they are identical up to it. A spot check at a
    /// random index of two nodes, then at a random earlier index.
    pub fn spot_check_log_matching(
        &self,
        (a_id, a): (u64, &RawNode<MemStorage>),
        (b_id, b): (u64, &RawNode<MemStorage>),
        rng: &mut Rng,
    ) -> Result<(), Violation> {
        let (la, lb) = (a.log(), b.log());
        let low = la.first_index().max(lb.first_index());
        let high = la.last_index().min(lb.last_index());
        if low > high {
            return Ok(());
        }
        let i = rng.range(low, high);
        if la.term(i) != lb.term(i) {
            return Ok(());
        }
        for j in [i, rng.range(low, i)] {
            let ea = la.slice(j, j + 1, u64::MAX);
            let eb = lb.slice(j, j + 1, u64::MAX);
            if ea != eb {
                return Err(Violation(format!(
                    "log matching (thesis §3.5): nodes {a_id} and {b_id} both hold \
                     term {:?} at index {i} but differ at {j}: {ea:?} vs {eb:?}",
                    la.term(i)
                )));
            }
        }
        Ok(())
    }
}
