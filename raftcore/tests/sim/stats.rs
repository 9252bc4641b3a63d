//! What the simulation did, so a run shows that it exercised what it claims.

use std::fmt;

/// Counters for one seed, or summed over seeds.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub seeds: u64,
    pub steps: u64,
    /// Terms that got a leader.
    pub elections: u64,
    pub crashes: u64,
    /// Crashes after sending a Ready's early messages, before persisting.
    pub mid_ready_crashes: u64,
    pub partitions: u64,
    pub pauses: u64,
    pub snapshots_sent: u64,
    pub snapshots_installed: u64,
    /// Reads whose answer and served state were checked.
    pub reads_checked: u64,
    pub lease_reads: u64,
    /// Configuration changes that took effect (each counted once).
    pub conf_changes: u64,
    pub removed: u64,
    pub transfers: u64,
    pub hibernations: u64,
    /// Ticks that found their node hibernating (and did nothing).
    pub hibernating_ticks: u64,
    pub compactions: u64,
    pub proposals: u64,
    /// Sum over seeds of the highest committed index.
    pub committed: u64,
    /// The most ticks the heal phase needed to elect a leader and commit.
    pub max_heal_ticks: u64,
}

impl Stats {
    /// Adds another seed's counters.
    pub fn add(&mut self, o: &Stats) {
        self.seeds += o.seeds;
        self.steps += o.steps;
        self.elections += o.elections;
        self.crashes += o.crashes;
        self.mid_ready_crashes += o.mid_ready_crashes;
        self.partitions += o.partitions;
        self.pauses += o.pauses;
        self.snapshots_sent += o.snapshots_sent;
        self.snapshots_installed += o.snapshots_installed;
        self.reads_checked += o.reads_checked;
        self.lease_reads += o.lease_reads;
        self.conf_changes += o.conf_changes;
        self.removed += o.removed;
        self.transfers += o.transfers;
        self.hibernations += o.hibernations;
        self.hibernating_ticks += o.hibernating_ticks;
        self.compactions += o.compactions;
        self.proposals += o.proposals;
        self.committed += o.committed;
        self.max_heal_ticks = self.max_heal_ticks.max(o.max_heal_ticks);
    }

    /// The one-line summary printed on success.
    pub fn summary(&self) -> String {
        format!(
            "sim: {} seeds passed ({} steps, {} elections, {} crashes, {} partitions)",
            self.seeds, self.steps, self.elections, self.crashes, self.partitions
        )
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sim details: {} mid-Ready crashes, {} pauses, {} snapshots sent ({} installed), \
             {} reads checked ({} lease reads), {} conf changes applied ({} peers removed), \
             {} transfers, {} hibernations ({} ticks slept), {} compactions, {} proposals accepted, \
             {} entries committed, heal phase at most {} ticks",
            self.mid_ready_crashes,
            self.pauses,
            self.snapshots_sent,
            self.snapshots_installed,
            self.reads_checked,
            self.lease_reads,
            self.conf_changes,
            self.removed,
            self.transfers,
            self.hibernations,
            self.hibernating_ticks,
            self.compactions,
            self.proposals,
            self.committed,
            self.max_heal_ticks
        )
    }
}
