//! State Machine Safety and configuration agreement (thesis §3.6.3, §4).

use std::collections::btree_map::Entry as MapEntry;

use raftcore::{ConfState, Entry, EntryType};

use super::{Checker, Violation};
use crate::state_machine::{decode_payload, StateMachine};

impl Checker {
    /// State Machine Safety (thesis §3.6.3): a node applies at each index
    /// the entry committed there, and nothing else. `term` is the node's.
    pub fn on_applied(&mut self, id: u64, term: u64, entries: &[Entry]) -> Result<(), Violation> {
        let what = "state machine safety (thesis §3.6.3)";
        for e in entries {
            let content = Some((e.entry_type, e.data.clone()));
            self.record((id, term), e.index, e.term, content, what)?;
        }
        Ok(())
    }

    /// Configuration agreement (thesis §4.1, applied at apply time as in
    /// §4.3's joint consensus): every peer that applies the same log
    /// prefix ends up with the same membership.
    pub fn on_conf_applied(
        &mut self,
        id: u64,
        index: u64,
        cs: &ConfState,
    ) -> Result<(), Violation> {
        match self.confs.entry(index) {
            MapEntry::Vacant(v) => {
                v.insert(cs.clone());
                Ok(())
            }
            MapEntry::Occupied(o) if o.get() == cs => Ok(()),
            MapEntry::Occupied(o) => Err(Violation(format!(
                "configuration agreement (thesis §4.1): after applying {index}, node {id} has \
                 {cs}, another node had {}",
                o.get()
            ))),
        }
    }

    /// Configuration agreement for a peer restored at `index` (snapshot or
    /// restart): its membership is the one in effect there.
    pub fn check_conf_at(&self, id: u64, index: u64, cs: &ConfState) -> Result<(), Violation> {
        let (at, want) = self
            .confs
            .range(..=index)
            .next_back()
            .expect("index 0 is known");
        if want != cs {
            return Err(Violation(format!(
                "configuration agreement (thesis §4.1): node {id} restored at {index} has {cs}, \
                 but {want} is in effect since {at}"
            )));
        }
        Ok(())
    }

    /// Notes a configuration change applied at `index`; true the first time.
    pub fn on_conf_change(&mut self, index: u64) -> bool {
        self.conf_changes.insert(index, ()).is_none()
    }

    /// State Machine Safety for an installed snapshot: its image holds
    /// exactly the committed payloads up to its index.
    pub fn check_image(&self, id: u64, sm: &StateMachine) -> Result<(), Violation> {
        let what = "state machine safety (thesis §3.6.3, snapshot image)";
        for &(i, p) in &sm.entries {
            let Some(known) = self.committed.get(&i) else {
                return Err(Violation(format!(
                    "{what}: node {id} installed payload {p} at {i}, never committed"
                )));
            };
            if let Some((t, d)) = &known.content {
                if *t != EntryType::Normal || decode_payload(d) != Ok(p) {
                    return Err(Violation(format!(
                        "{what}: node {id} installed payload {p} at {i}, committed is {t:?} {d:?}"
                    )));
                }
            }
        }
        let have = sm.count_upto(sm.applied);
        let want = self.payloads_upto(sm.applied);
        if have < want {
            return Err(Violation(format!(
                "{what}: node {id}'s image at {} holds {have} payloads, {want} are committed",
                sm.applied
            )));
        }
        Ok(())
    }

    /// The number of committed payloads (with known content) up to `index`.
    pub(super) fn payloads_upto(&self, index: u64) -> usize {
        self.committed
            .range(..=index)
            .filter(|(_, c)| matches!(&c.content, Some((EntryType::Normal, d)) if !d.is_empty()))
            .count()
    }

    /// State Machine Safety across nodes: every applied sequence is a
    /// prefix of the longest.
    pub fn check_prefixes<'a>(
        &self,
        sms: impl Iterator<Item = (u64, &'a StateMachine)>,
    ) -> Result<(), Violation> {
        let sms: Vec<(u64, &StateMachine)> = sms.collect();
        let Some(&(long_id, longest)) = sms.iter().max_by_key(|(_, sm)| sm.applied) else {
            return Ok(());
        };
        for &(id, sm) in &sms {
            let n = longest.count_upto(sm.applied);
            if sm.entries[..] != longest.entries[..n] {
                return Err(Violation(format!(
                    "state machine safety (thesis §3.6.3): node {id}'s applied sequence \
                     (to {}) is not a prefix of node {long_id}'s (to {})",
                    sm.applied, longest.applied
                )));
            }
        }
        Ok(())
    }
}
