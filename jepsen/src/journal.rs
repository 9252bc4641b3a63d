//! The stores' state journals (`<data-dir>/store-<i>/journal.jsonl`, kept
//! by stores started with `FLOTILLA_FAULT_INJECTION=1`), checked after a
//! run for the anomalies no client sees directly:
//! - **split brain**: two stores that each became leader of one region in
//!   one term (Raft allows one leader per term: two majorities voted);
//! - **epoch violation**: a region's epoch (`version`, `conf_ver`) going
//!   backwards on a store while it ran. Across a restart the check starts
//!   afresh: a store may have announced an epoch it had not persisted
//!   when it was killed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

/// What the journals show.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct JournalFindings {
    /// Lines read.
    pub events: usize,
    /// (region, term) pairs led by more than one store.
    pub split_brain: u64,
    /// Times an epoch went backwards.
    pub epoch_violation: u64,
    /// One line per anomaly.
    pub failures: String,
}

/// Reads and checks the journals of stores `0..stores` under `data_dir`.
pub fn check_dir(data_dir: &Path, stores: usize) -> JournalFindings {
    let mut lines = Vec::new();
    for i in 0..stores {
        let path = data_dir.join(format!("store-{i}")).join("journal.jsonl");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        // One store's lines in order; a torn last line (a kill mid-write)
        // does not parse and is skipped.
        lines.push(
            text.lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .collect::<Vec<_>>(),
        );
    }
    check(&lines)
}

/// Checks each store's events, in the order the store wrote them.
pub fn check(stores: &[Vec<Value>]) -> JournalFindings {
    let mut found = JournalFindings::default();
    let mut leaders: BTreeMap<(u64, u64), BTreeSet<u64>> = BTreeMap::new();
    for events in stores {
        // Per region: the last epoch seen since this store last started.
        let mut epochs: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        for e in events {
            found.events += 1;
            let field = |name: &str| e[name].as_u64().unwrap_or(0);
            match e["event"].as_str() {
                Some("start") => epochs.clear(),
                Some("leader") => {
                    leaders
                        .entry((field("region"), field("term")))
                        .or_default()
                        .insert(field("store"));
                }
                Some("epoch") => {
                    let now = (field("version"), field("conf_ver"));
                    let region = field("region");
                    if let Some(before) = epochs.insert(region, now) {
                        if now.0 < before.0 || now.1 < before.1 {
                            found.epoch_violation += 1;
                            let _ = writeln!(
                                found.failures,
                                "epoch violation: region {region} on store {} went from (version {}, conf_ver {}) to ({}, {})",
                                field("store"), before.0, before.1, now.0, now.1
                            );
                        }
                    }
                }
                _ => {}
            }
        }
    }
    for ((region, term), stores) in &leaders {
        if stores.len() > 1 {
            found.split_brain += 1;
            let _ = writeln!(
                found.failures,
                "split brain: region {region} had leaders on stores {stores:?} in term {term}"
            );
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn leader(store: u64, region: u64, term: u64) -> Value {
        json!({"event": "leader", "store": store, "region": region, "term": term})
    }

    fn epoch(store: u64, region: u64, version: u64, conf_ver: u64) -> Value {
        json!({"event": "epoch", "store": store, "region": region, "version": version, "conf_ver": conf_ver})
    }

    #[test]
    fn one_leader_per_term_and_growing_epochs_pass() {
        let found = check(&[
            vec![leader(1, 7, 2), epoch(1, 7, 1, 1), epoch(1, 7, 2, 1)],
            vec![leader(2, 7, 3), leader(2, 7, 3), epoch(2, 7, 2, 2)],
        ]);
        assert_eq!(
            (found.events, found.split_brain, found.epoch_violation),
            (6, 0, 0)
        );
    }

    #[test]
    fn two_leaders_in_a_term_are_split_brain() {
        let found = check(&[vec![leader(1, 7, 2)], vec![leader(2, 7, 2)]]);
        assert_eq!(found.split_brain, 1);
        assert!(
            found.failures.contains("stores {1, 2} in term 2"),
            "{}",
            found.failures
        );
    }

    #[test]
    fn an_epoch_going_back_is_a_violation_unless_the_store_restarted() {
        let back = check(&[vec![
            epoch(1, 7, 3, 1),
            epoch(1, 7, 2, 1),
            epoch(1, 8, 1, 2),
            epoch(1, 8, 1, 1),
        ]]);
        assert_eq!(back.epoch_violation, 2, "{}", back.failures);
        let restart = json!({"event": "start", "store": 1});
        let restarted = check(&[vec![epoch(1, 7, 3, 1), restart, epoch(1, 7, 2, 1)]]);
        assert_eq!(restarted.epoch_violation, 0);
    }
}
