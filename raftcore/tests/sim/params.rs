//! What one seed simulates: the group's configuration and how hostile the
//! world is, all drawn from the seed.

use raftcore::{Config, ReadOnlyOption};

use crate::rng::Rng;

/// Simulated time units per nominal tick. Each node ticks every
/// `TICK / rate` units, its clock rate drawn from `[0.95, 1.05]`.
pub const TICK: u64 = 1000;

/// Per-seed parameters. Probabilities are per mille.
#[derive(Clone, Debug)]
pub struct Params {
    /// Founding voters: 3 or 5.
    pub voters: u64,
    pub election_ticks: usize,
    pub heartbeat_ticks: usize,
    pub pre_vote: bool,
    pub check_quorum: bool,
    /// `ReadOnlyOption::LeaseBased` with `lease_ticks` below
    /// `election_ticks`, and direct lease reads in the workload.
    pub lease_reads: bool,
    pub lease_ticks: usize,
    /// Small values put one entry in each append (Figure 8 needs a leader
    /// to replicate an old entry before its own no-op).
    pub max_size_per_msg: u64,
    pub max_inflight_msgs: usize,
    pub max_uncommitted_size: u64,
    pub disable_proposal_forwarding: bool,
    /// Network: message loss, duplication, and the share of slow messages
    /// (which reorder the rest).
    pub drop_pm: u64,
    pub dup_pm: u64,
    pub slow_pm: u64,
    /// Crash in the middle of a Ready: after sending `messages`, before
    /// persisting (thesis §10.2.1). Raised for a Ready that casts a vote.
    pub mid_ready_crash_pm: u64,
    pub vote_crash_pm: u64,
    /// Crash a newly elected leader a moment after its election, before
    /// it replicated much (the churn of the Figure 8 scenario).
    pub new_leader_crash_pm: u64,
    /// Cut a newly elected leader off before its first appends leave, so
    /// that it holds entries of its term nobody else has (Figure 8).
    pub new_leader_isolate_pm: u64,
    /// Apply committed entries inside the Ready handling (else later, with
    /// a random lag).
    pub sync_apply_pm: u64,
    /// Weights of the workload and fault actions (see `workload.rs`).
    pub weights: Weights,
    /// Length of the fault phase, in ticks.
    pub fault_ticks: u64,
}

/// Relative weights of the actions `workload::act` chooses from.
#[derive(Clone, Debug)]
pub struct Weights {
    pub propose: u64,
    pub read: u64,
    pub lease_read: u64,
    pub compact: u64,
    pub conf_change: u64,
    pub transfer: u64,
    pub hibernate: u64,
    pub wake: u64,
    pub crash: u64,
    pub crash_leader: u64,
    /// Pause a node (a stalled process) for up to a few election timeouts.
    pub pause: u64,
    /// Propose at the leader, then crash it a moment later.
    pub figure8: u64,
    pub partition: u64,
    /// Bridge the leader through one follower, then restart that follower.
    pub bridge_restart: u64,
    /// A host-initiated election at a random node.
    pub campaign: u64,
    /// The clients pause for a few election timeouts.
    pub quiet: u64,
    pub heal_partition: u64,
}

impl Params {
    /// Draws the parameters of one seed.
    pub fn draw(rng: &mut Rng) -> Params {
        let election_ticks = [8, 10, 12][rng.below(3) as usize];
        let lease_reads = rng.chance(350);
        let check_quorum = lease_reads || rng.chance(700);
        let one_entry_per_msg = rng.chance(500);
        let mut p = Params {
            voters: if rng.coin() { 3 } else { 5 },
            election_ticks,
            heartbeat_ticks: rng.range(1, 3) as usize,
            pre_vote: rng.chance(600),
            check_quorum,
            lease_reads,
            // Config::lease_ticks' clock assumption: tick rates within
            // [0.95, 1.05] differ by a factor below 1.11, and
            // election_ticks / lease_ticks >= 1.25 here. The margin also
            // covers a follower's first tick arriving up to one period
            // early after its timer reset: 4/5 * E * 1.11 <= E - 1 for E >= 8.
            lease_ticks: if lease_reads {
                election_ticks * 4 / 5
            } else {
                0
            },
            max_size_per_msg: if one_entry_per_msg { 1 } else { 1 << 20 },
            max_inflight_msgs: [1, 2, 4, 256][rng.below(4) as usize],
            max_uncommitted_size: if rng.chance(200) { 64 } else { 0 },
            disable_proposal_forwarding: rng.chance(100),
            drop_pm: [0, 10, 50, 120][rng.below(4) as usize],
            dup_pm: [0, 10, 50][rng.below(3) as usize],
            slow_pm: [0, 50, 150][rng.below(3) as usize],
            mid_ready_crash_pm: [0, 2, 6][rng.below(3) as usize],
            vote_crash_pm: [0, 200, 500][rng.below(3) as usize],
            new_leader_crash_pm: [0, 0, 150, 400][rng.below(4) as usize],
            new_leader_isolate_pm: [0, 0, 100, 250][rng.below(4) as usize],
            sync_apply_pm: [0, 500, 900][rng.below(3) as usize],
            weights: Weights::draw(rng),
            fault_ticks: rng.range(150, 600),
        };
        match rng.below(100) {
            0..25 => p.churn(),
            25..55 => p.calm(rng),
            _ => {}
        }
        p
    }

    /// Few faults, and long partitions: scenarios that take several
    /// election timeouts to play out (a lease outliving a partition, a
    /// bridged leader) are not cut short by the next fault.
    fn calm(&mut self, rng: &mut Rng) {
        let w = &mut self.weights;
        w.crash = 1;
        w.crash_leader = 0;
        w.figure8 = 0;
        w.pause = [0, 2][rng.below(2) as usize];
        w.partition = 3;
        w.bridge_restart = [0, 5][rng.below(2) as usize];
        w.heal_partition = 3;
        self.mid_ready_crash_pm = self.mid_ready_crash_pm.min(1);
        self.vote_crash_pm = self.vote_crash_pm.min(100);
        self.new_leader_crash_pm = 0;
        self.new_leader_isolate_pm = 0;
    }

    /// Leader churn: leaders crash soon after they are elected or propose,
    /// one entry per append, five voters.
    fn churn(&mut self) {
        self.voters = 5;
        self.max_size_per_msg = 1;
        self.new_leader_crash_pm = 300;
        self.new_leader_isolate_pm = 250;
        self.weights.figure8 = 60;
        self.weights.crash_leader = 20;
        self.weights.conf_change = 0;
    }

    /// The raftcore configuration of node `id`, incarnation `seed`.
    pub fn config(&self, id: u64, seed: u64) -> Config {
        Config {
            id,
            election_ticks: self.election_ticks,
            heartbeat_ticks: self.heartbeat_ticks,
            max_size_per_msg: self.max_size_per_msg,
            max_inflight_msgs: self.max_inflight_msgs,
            max_uncommitted_size: self.max_uncommitted_size,
            pre_vote: self.pre_vote,
            check_quorum: self.check_quorum,
            read_only_option: if self.lease_reads {
                ReadOnlyOption::LeaseBased
            } else {
                ReadOnlyOption::Safe
            },
            lease_ticks: self.lease_ticks,
            disable_proposal_forwarding: self.disable_proposal_forwarding,
            seed,
            ..Config::default()
        }
    }
}

impl Weights {
    fn draw(rng: &mut Rng) -> Weights {
        let partition = [2, 5, 12][rng.below(3) as usize];
        Weights {
            propose: 400,
            read: 120,
            lease_read: 60,
            // No compaction at all in some seeds: peers added then fill
            // from the log (or the bootstrap snapshot) rather than a
            // compaction snapshot.
            compact: [0, 10, 40, 120][rng.below(4) as usize],
            conf_change: [0, 15, 40][rng.below(3) as usize],
            transfer: [0, 10, 30][rng.below(3) as usize],
            hibernate: [0, 10, 30][rng.below(3) as usize],
            wake: 10,
            crash: [2, 5, 12][rng.below(3) as usize],
            crash_leader: [0, 3, 8][rng.below(3) as usize],
            pause: [0, 5, 15][rng.below(3) as usize],
            figure8: [0, 8, 25][rng.below(3) as usize],
            partition,
            bridge_restart: [0, 3, 10][rng.below(3) as usize],
            campaign: [0, 2, 6][rng.below(3) as usize],
            quiet: [0, 5, 15][rng.below(3) as usize],
            heal_partition: 15,
        }
    }

    /// The total weight.
    pub fn total(&self) -> u64 {
        self.propose
            + self.read
            + self.lease_read
            + self.compact
            + self.conf_change
            + self.transfer
            + self.hibernate
            + self.wake
            + self.crash
            + self.crash_leader
            + self.pause
            + self.figure8
            + self.partition
            + self.bridge_restart
            + self.campaign
            + self.quiet
            + self.heal_partition
    }
}
