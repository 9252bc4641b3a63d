//! What the history says: per-key linearizability (the checker), and the
//! plainer anomaly classes a person reads first.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use flotilla_checker::model::{RegisterOp, RegisterOut};
use flotilla_checker::{check_keys, Options, RegisterModel, Report, Verdict};

use crate::history::Op;
use crate::register::FINAL_READER;

/// The anomalies found, by class.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Anomalies {
    /// Keys whose final read lost the last acknowledged write (no write
    /// followed or overlapped it, none had an unknown outcome).
    pub lost_ack_write: u64,
    /// Keys whose history is not linearizable.
    pub non_linearizable_keys: u64,
    /// Keys the checker could not decide within its budget.
    pub undecided_keys: u64,
    /// Regions led by two stores in one term (the stores' journals).
    pub split_brain: u64,
    /// Region epochs that went backwards on a store (the journals).
    pub epoch_violation: u64,
    /// Processes that exited without being killed.
    pub crash: u64,
}

impl Anomalies {
    /// Any at all.
    pub fn any(&self) -> bool {
        self.lost_ack_write
            + self.non_linearizable_keys
            + self.undecided_keys
            + self.split_brain
            + self.epoch_violation
            + self.crash
            > 0
    }
}

/// The checker's account.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Checked {
    /// Keys checked.
    pub keys: usize,
    /// Operations checked.
    pub ops_checked: usize,
    /// `linearizable`, `illegal` or `unknown`.
    pub verdict: &'static str,
    /// Time the checker took.
    pub checker_ms: u64,
}

/// The account and anomalies of a workload with its own check (set,
/// queue): `objects` checked over `ops` operations, `lost` acknowledged
/// writes lost and `wrong` objects with another anomaly.
pub fn account(
    objects: usize,
    ops: usize,
    lost: u64,
    wrong: u64,
    started: Instant,
) -> (Checked, Anomalies) {
    let checked = Checked {
        keys: objects,
        ops_checked: ops,
        verdict: if lost + wrong == 0 {
            "linearizable"
        } else {
            "illegal"
        },
        checker_ms: started.elapsed().as_millis() as u64,
    };
    let anomalies = Anomalies {
        lost_ack_write: lost,
        non_linearizable_keys: wrong,
        ..Anomalies::default()
    };
    (checked, anomalies)
}

/// Checks the history; returns the account, the anomalies (without
/// crashes), and a description of each failing key.
pub fn analyse(history: BTreeMap<String, Vec<Op>>) -> (Checked, Anomalies, String) {
    let lost = history.values().filter(|ops| lost_ack_write(ops)).count() as u64;
    let started = Instant::now();
    let opts = Options {
        per_key_budget: Duration::from_secs(30),
        ..Options::default()
    };
    let report: Report<String, _, _> = check_keys(&RegisterModel::new(), history, &opts);
    let checked = Checked {
        keys: report.keys.len(),
        ops_checked: report.ops_checked(),
        verdict: match report.verdict() {
            Verdict::Linearizable => "linearizable",
            Verdict::Illegal => "illegal",
            Verdict::Unknown => "unknown",
        },
        checker_ms: started.elapsed().as_millis() as u64,
    };
    let anomalies = Anomalies {
        lost_ack_write: lost,
        non_linearizable_keys: report.keys_with(Verdict::Illegal).len() as u64,
        undecided_keys: report.keys_with(Verdict::Unknown).len() as u64,
        ..Anomalies::default()
    };
    (checked, anomalies, report.describe_failures())
}

/// Whether the key's final read misses its last acknowledged write: the
/// acknowledged write that every other write precedes in real time, with no
/// write of unknown outcome that could have followed it.
fn lost_ack_write(ops: &[Op]) -> bool {
    let is_write = |o: &Op| !matches!(o.input, RegisterOp::Get);
    if ops.iter().any(|o| is_write(o) && o.output.is_none()) {
        return false;
    }
    // What an acknowledged write left (a delete leaves nothing).
    let written = |o: &Op| match (&o.input, &o.output) {
        (RegisterOp::Put(v), Some(_)) => Some(Some(*v)),
        (RegisterOp::Delete, Some(_)) => Some(None),
        (RegisterOp::Cas { to, .. }, Some(RegisterOut::Cas(true))) => Some(Some(*to)),
        _ => None,
    };
    let writes: Vec<&Op> = ops.iter().filter(|o| written(o).is_some()).collect();
    let Some(last) = writes.iter().max_by_key(|o| o.ret) else {
        return false;
    };
    if writes
        .iter()
        .any(|o| !std::ptr::eq(*o, *last) && o.ret >= last.call)
    {
        return false;
    }
    let final_read = ops
        .iter()
        .filter(|o| o.client == FINAL_READER && o.call > last.ret)
        .find_map(|o| match &o.output {
            Some(RegisterOut::Read(v)) => Some(*v),
            _ => None,
        });
    matches!(final_read, Some(v) if Some(v) != written(last))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_checker::Operation;

    fn put(call: u64, ret: u64, v: u64) -> Op {
        Operation::done(1, call, ret, RegisterOp::Put(v), RegisterOut::Written)
    }

    fn final_read(call: u64, v: Option<u64>) -> Op {
        Operation::done(
            FINAL_READER,
            call,
            call + 1,
            RegisterOp::Get,
            RegisterOut::Read(v),
        )
    }

    #[test]
    fn a_final_read_without_the_last_acknowledged_write_is_a_loss() {
        assert!(lost_ack_write(&[
            put(0, 1, 1),
            put(2, 3, 2),
            final_read(10, Some(1))
        ]));
        assert!(lost_ack_write(&[put(0, 1, 1), final_read(10, None)]));
        assert!(!lost_ack_write(&[
            put(0, 1, 1),
            put(2, 3, 2),
            final_read(10, Some(2))
        ]));
        // Overlapping last writes: either may win.
        assert!(!lost_ack_write(&[
            put(0, 5, 1),
            put(2, 6, 2),
            final_read(10, Some(1))
        ]));
        // An acknowledged delete leaves nothing to read.
        let delete = Operation::done(1, 2, 3, RegisterOp::Delete, RegisterOut::Written);
        assert!(!lost_ack_write(&[
            put(0, 1, 1),
            delete.clone(),
            final_read(10, None)
        ]));
        assert!(lost_ack_write(&[
            put(0, 1, 1),
            delete,
            final_read(10, Some(1))
        ]));
        // A write of unknown outcome may have come last.
        let unknown = Operation::unknown(2, 4, RegisterOp::Put(3));
        assert!(!lost_ack_write(&[
            put(0, 1, 1),
            unknown,
            final_read(10, Some(3))
        ]));
    }

    #[test]
    fn the_analysis_counts_illegal_keys_and_losses() {
        let mut history = BTreeMap::new();
        history.insert(
            "good".to_string(),
            vec![put(0, 1, 1), final_read(10, Some(1))],
        );
        history.insert("lost".to_string(), vec![put(0, 1, 7), final_read(10, None)]);
        let (checked, anomalies, text) = analyse(history);
        assert_eq!(
            (checked.keys, checked.ops_checked, checked.verdict),
            (2, 4, "illegal")
        );
        assert_eq!(
            (anomalies.lost_ack_write, anomalies.non_linearizable_keys),
            (1, 1)
        );
        assert!(text.contains("\"lost\""), "{text}");
    }
}
