//! What a run reports: one JSON object for scripts, one line for a person
//! (and, when something failed, the failing windows and where the logs are).

use std::collections::BTreeMap;

use crate::analysis::{Anomalies, Checked};
use crate::history::{OpCounts, Recorder};
use crate::nemesis::Injected;

/// How fast the cluster served again.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Liveness {
    /// Median over the faults of the seconds from a fault's heal until
    /// every client had a call succeed.
    pub recovery_p50_s: f64,
    /// The longest of those.
    pub recovery_max_s: f64,
    /// The longest any client went without a successful call during a
    /// fault and its recovery: the worst unavailability a client saw.
    pub max_unavailability_s: f64,
    /// Faults after which some client had no call succeed before the run
    /// ended.
    pub unrecovered_faults: u64,
    /// Seconds from the end of the faults until every key was read.
    pub final_reads_s: f64,
    /// Keys still unreadable when the recovery time ran out.
    pub unreadable_keys: u64,
}

/// One run's result.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Summary {
    /// Workload and faults, e.g. `register/kill+pause`.
    pub scenario: String,
    /// Replays the workload's and the nemesis's choices.
    pub seed: u64,
    /// Seconds of workload under faults.
    pub duration_s: u64,
    /// Stores in the cluster.
    pub stores: usize,
    /// PD members.
    pub pd: usize,
    /// Operations by outcome.
    pub ops: OpCounts,
    /// The checker's account.
    pub checked: Checked,
    /// Lines of the stores' state journals checked.
    pub journal_events: usize,
    /// Faults injected, by kind.
    pub faults: BTreeMap<&'static str, u64>,
    /// Every fault, in order.
    pub fault_log: Vec<Injected>,
    /// Anomalies, by class.
    pub anomalies: Anomalies,
    /// Recovery.
    pub liveness: Liveness,
    /// The failing windows of non-linearizable keys.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub failures: String,
    /// Processes that exited by themselves.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub crashed: Vec<String>,
    /// Where the cluster's data and logs were kept (runs with anomalies).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<String>,
}

impl Liveness {
    /// Fills each fault's recovery time from what the clients saw, and
    /// the figures over all of them.
    pub fn recoveries(faults: &mut [Injected], recorder: &Recorder, clients: &[u64]) -> Liveness {
        let mut times = Vec::new();
        let mut unrecovered = 0;
        for f in faults.iter_mut() {
            let healed = f.healed_at();
            let recovered = recorder.everyone_served_after(clients, healed);
            f.recovered_s = recovered.map(|ns| ns as f64 / 1e9);
            let start = (f.at_s * 1e9) as u64;
            let wait = recorder.longest_wait(clients, start, healed + recovered.unwrap_or(0));
            f.longest_wait_s = Some(wait as f64 / 1e9);
            match f.recovered_s {
                Some(s) => times.push(s),
                None => unrecovered += 1,
            }
        }
        times.sort_by(f64::total_cmp);
        let max_wait = faults
            .iter()
            .filter_map(|f| f.longest_wait_s)
            .fold(0.0, f64::max);
        Liveness {
            recovery_p50_s: times.get(times.len() / 2).copied().unwrap_or(0.0),
            recovery_max_s: times.last().copied().unwrap_or(0.0),
            unrecovered_faults: unrecovered,
            max_unavailability_s: max_wait,
            ..Liveness::default()
        }
    }
}

impl Summary {
    /// The run found no anomaly.
    pub fn passed(&self) -> bool {
        !self.anomalies.any()
    }

    /// One line for a person.
    pub fn line(&self) -> String {
        let o = &self.ops;
        let faults: Vec<String> = self
            .faults
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let a = &self.anomalies;
        let anomalies = if self.passed() {
            "none".to_string()
        } else {
            format!(
                "{} lost acknowledged writes, {} non-linearizable keys, {} undecided keys, {} split brains, {} epoch violations, {} crashes",
                a.lost_ack_write,
                a.non_linearizable_keys,
                a.undecided_keys,
                a.split_brain,
                a.epoch_violation,
                a.crash
            )
        };
        format!(
            "{}: {} ops ({} ok, {} failed, {} unknown) in {} s, {} checked over {} keys: {}; faults: {}; anomalies: {}; recovery p50 {:.1} s, max {:.1} s, longest wait {:.1} s; final reads after {:.1} s (seed {})",
            self.scenario,
            o.invoked,
            o.ok,
            o.failed,
            o.unknown,
            self.duration_s,
            self.checked.ops_checked,
            self.checked.keys,
            self.checked.verdict,
            if faults.is_empty() { "none".to_string() } else { faults.join(", ") },
            anomalies,
            self.liveness.recovery_p50_s,
            self.liveness.recovery_max_s,
            self.liveness.max_unavailability_s,
            self.liveness.final_reads_s,
            self.seed,
        )
    }
}
