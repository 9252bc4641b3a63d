//! The simulated world: nodes, network and time, driven one step at a time
//! by the seed's random stream, with the invariants checked after every
//! step.

use std::collections::BTreeMap;

use raftcore::{
    ConfState, MemStorage, Message, MessageType, PlantedBugs, RawNode, ReadState, SnapshotStatus,
    StateRole,
};

use crate::checker::{Checker, Violation};
use crate::network::{Loss, Network};
use crate::node::{ApplyOut, Life, Node};
use crate::params::{Params, TICK};
use crate::rng::Rng;
use crate::stats::Stats;

pub struct Cluster {
    pub rng: Rng,
    pub p: Params,
    pub nodes: BTreeMap<u64, Node>,
    pub net: Network,
    pub checker: Checker,
    pub stats: Stats,
    /// Simulated time, in thousandths of a nominal tick (`TICK` units).
    pub now: u64,
    pub next_payload: u64,
    pub next_read: u64,
    pub next_id: u64,
    pub planted: PlantedBugs,
    /// Messages that arrived at paused nodes.
    pub inboxes: BTreeMap<u64, Vec<crate::network::InFlight>>,
    /// The clients send nothing until then.
    pub quiet_until: u64,
    /// Planned host-initiated elections: `(time, node)`.
    pub campaigns: std::collections::BTreeSet<(u64, u64)>,
    /// When the next workload or fault action is due.
    pub next_action_at: u64,
    /// Faults and the random workload are on (the first phase).
    pub faults: bool,
    trace: bool,
}

impl Cluster {
    /// The world of `seed`: a group of 3 or 5 founding voters.
    pub fn new(seed: u64, planted: PlantedBugs, trace: bool) -> Result<Cluster, Violation> {
        let mut rng = Rng::new(seed);
        let p = Params::draw(&mut rng);
        let voters: Vec<u64> = (1..=p.voters).collect();
        let mut nodes = BTreeMap::new();
        for &id in &voters {
            let storage = MemStorage::with_conf_state(ConfState::with_voters(voters.clone()));
            nodes.insert(id, Node::start(id, storage, &p, &mut rng, 0, planted)?);
        }
        let mut c = Cluster {
            net: Network::new(&p),
            next_id: p.voters + 1,
            rng,
            p,
            nodes,
            checker: Checker::new(ConfState::with_voters(voters)),
            stats: Stats::default(),
            now: 0,
            next_payload: 1,
            next_read: 1,
            planted,
            inboxes: BTreeMap::new(),
            next_action_at: 0,
            campaigns: Default::default(),
            quiet_until: 0,
            faults: true,
            trace,
        };
        c.stats.seeds = 1;
        c.log(|| format!("params {:?}", c.p));
        Ok(c)
    }

    /// Prints a trace line when tracing (replay with `SIM_TRACE=1`).
    pub fn log(&self, line: impl FnOnce() -> String) {
        if self.trace {
            eprintln!("[t={:.3}] {}", self.now as f64 / TICK as f64, line());
        }
    }

    /// Both phases: faults, then heal and check liveness.
    pub fn run(&mut self) -> Result<(), Violation> {
        let end = self.p.fault_ticks * TICK;
        while self.now < end {
            self.step()?;
        }
        crate::liveness::heal_and_check(self)?;
        self.stats.committed = self.checker.max_committed();
        Ok(())
    }

    /// One step: handle a Ready, apply, or let time pass to the next event
    /// (which may be a workload or fault action); then check every
    /// invariant.
    pub fn step(&mut self) -> Result<(), Violation> {
        self.stats.steps += 1;
        let acted = match self.rng.below(1000) {
            0..300 => self.ready_any()?,
            300..380 => self.apply_any()?,
            _ => false,
        };
        if !acted {
            self.advance()?;
        }
        self.check()
    }

    /// The ids of running nodes.
    pub fn up_ids(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.is_up())
            .map(|(&id, _)| id)
            .collect()
    }

    pub fn raw_mut(&mut self, id: u64) -> Option<&mut RawNode<MemStorage>> {
        self.nodes.get_mut(&id).and_then(Node::raw_mut)
    }

    /// The running leader of the highest term, if any.
    pub fn leader(&self) -> Option<u64> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.is_up())
            .filter_map(|(&id, n)| n.raw().map(|r| (id, r.raft())))
            .filter(|(_, r)| r.state == StateRole::Leader)
            .max_by_key(|(_, r)| r.term)
            .map(|(id, _)| id)
    }

    /// Every running node that believes it leads, stale leaders included.
    pub fn leaders(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.is_up())
            .filter(|(_, n)| n.raw().is_some_and(|r| r.raft().state == StateRole::Leader))
            .map(|(&id, _)| id)
            .collect()
    }

    /// Handles the Ready of a random node that has one.
    fn ready_any(&mut self) -> Result<bool, Violation> {
        let ready: Vec<u64> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.is_up() && n.raw().is_some_and(|r| r.has_ready()))
            .map(|(&id, _)| id)
            .collect();
        let Some(id) = self.rng.pick(&ready) else {
            return Ok(false);
        };
        self.handle_ready(id)?;
        Ok(true)
    }

    fn handle_ready(&mut self, id: u64) -> Result<(), Violation> {
        let node = self.nodes.get_mut(&id).expect("ready node exists");
        let out = node.handle_ready(&self.p, &mut self.rng, self.faults)?;
        let inc = node.incarnation;
        for m in out.messages {
            self.send(inc, m)?;
        }
        if out.crashed {
            self.stats.mid_ready_crashes += 1;
            // Usually a quick restart, so that the node is back while the
            // messages of the same election are still in flight.
            let delay = if self.rng.chance(700) {
                self.rng.below(TICK / 5)
            } else {
                self.rng.below(2 * TICK)
            };
            self.log(|| format!("node {id} crashes in the middle of a Ready"));
            self.crash(id, delay);
            return Ok(());
        }
        if let Some(index) = out.snapshot {
            self.stats.snapshots_installed += 1;
            self.log(|| format!("node {id} installs snapshot {index}"));
            self.checker.check_image(id, &self.nodes[&id].sm)?;
            let raw = self.nodes[&id].raw().expect("up");
            let cs = raw.raft().prs.config.to_conf_state();
            self.checker.check_conf_at(id, index, &cs)?;
        }
        for rs in out.read_states {
            self.read_answered(id, rs)?;
        }
        self.after_apply(id, out.applied)
    }

    /// Applies a random number of committed entries on a random node.
    fn apply_any(&mut self) -> Result<bool, Violation> {
        let lagging: Vec<u64> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.has_unapplied())
            .map(|(&id, _)| id)
            .collect();
        let Some(id) = self.rng.pick(&lagging) else {
            return Ok(false);
        };
        // A random lag, but bounded: often everything handed out.
        let max = if self.rng.coin() {
            usize::MAX
        } else {
            self.rng.range(1, 8) as usize
        };
        let out = self.nodes.get_mut(&id).expect("exists").apply(max)?;
        self.after_apply(id, out)?;
        Ok(true)
    }

    fn after_apply(&mut self, id: u64, out: ApplyOut) -> Result<(), Violation> {
        // (Not running: no term to record, so never counted as earlier.)
        let term = self.nodes[&id].raw().map_or(u64::MAX, |r| r.raft().term);
        self.checker.on_applied(id, term, &out.entries)?;
        for (index, cs) in &out.confs {
            self.checker.on_conf_applied(id, *index, cs)?;
        }
        for index in out.conf_changes {
            if self.checker.on_conf_change(index) {
                self.stats.conf_changes += 1;
                let cs = self.nodes[&id].raw().map(|r| r.status().conf_state);
                self.log(|| format!("conf change {index} applied: {cs:?}"));
            }
        }
        for removed in out.removed {
            if let Some(n) = self.nodes.get_mut(&removed) {
                if !matches!(n.life, Life::Stopped) {
                    n.stop();
                    self.stats.removed += 1;
                    self.log(|| format!("node {removed} removed and stopped"));
                }
            }
        }
        self.serve_reads(id)
    }

    /// Sends a message; reports a lost snapshot, and sometimes an
    /// unreachable peer, as a transport would.
    pub fn send(&mut self, incarnation: u64, m: Message) -> Result<(), Violation> {
        let (from, to, ty) = (m.from, m.to, m.msg_type);
        if ty == MessageType::Snapshot {
            self.stats.snapshots_sent += 1;
        }
        if matches!(
            ty,
            MessageType::Vote | MessageType::VoteResponse | MessageType::PreVoteResponse
        ) {
            self.log(|| format!("send {m}"));
        }
        if ty == MessageType::VoteResponse && !m.reject {
            self.checker.on_vote_granted(from, m.term, to)?;
        }
        let lost = self.net.send(&mut self.rng, self.now, m, incarnation);
        if lost.is_none() {
            return Ok(());
        }
        if ty == MessageType::Snapshot {
            self.report_snapshot(from, to, incarnation, false);
        } else if lost == Some(Loss::Cut) && ty == MessageType::Append && self.rng.coin() {
            if let Some(raw) = self.raw_mut(from) {
                raw.report_unreachable(to);
            }
        }
        Ok(())
    }

    pub(crate) fn report_snapshot(
        &mut self,
        from: u64,
        to: u64,
        incarnation: u64,
        delivered: bool,
    ) {
        let Some(node) = self.nodes.get_mut(&from) else {
            return;
        };
        if node.incarnation != incarnation {
            return;
        }
        let status = if delivered {
            SnapshotStatus::Finish
        } else {
            SnapshotStatus::Failure
        };
        if let Some(raw) = node.raw_mut() {
            raw.report_snapshot(to, status);
        }
    }

    /// Crashes a running node; it restarts after `delay`.
    pub fn crash(&mut self, id: u64, delay: u64) {
        let now = self.now;
        if let Some(node) = self.nodes.get_mut(&id).filter(|n| n.is_up()) {
            node.crash(now + delay);
            self.stats.crashes += 1;
            self.log(|| format!("node {id} crashes"));
        }
    }

    pub fn restart(&mut self, id: u64) -> Result<(), Violation> {
        let node = self.nodes.get_mut(&id).expect("exists");
        node.restart(&self.p, &mut self.rng, self.now)?;
        if node.sm.applied > 0 {
            // (A peer added empty has no membership until it restores one.)
            let raw = node.raw().expect("restarted");
            let cs = raw.raft().prs.config.to_conf_state();
            self.checker.check_conf_at(id, node.sm.applied, &cs)?;
        }
        self.log(|| format!("node {id} restarts"));
        Ok(())
    }

    /// A read answered on node `id`: check its index, then serve it once
    /// applied.
    fn read_answered(&mut self, id: u64, rs: ReadState) -> Result<(), Violation> {
        let read = crate::state_machine::decode_payload(&rs.context)?;
        self.checker.read_answered(id, read, rs.index)?;
        if let Some(node) = self.nodes.get_mut(&id) {
            node.pending_reads.push((read, rs.index));
        }
        self.serve_reads(id)
    }

    /// Serves the reads whose index node `id` has applied.
    pub fn serve_reads(&mut self, id: u64) -> Result<(), Violation> {
        let Some(node) = self.nodes.get_mut(&id) else {
            return Ok(());
        };
        let applied = node.sm.applied;
        let mut i = 0;
        while i < node.pending_reads.len() {
            let (read, index) = node.pending_reads[i];
            if index <= applied {
                self.checker.read_served(id, read, &node.sm)?;
                self.stats.reads_checked += 1;
                node.pending_reads.swap_remove(i);
            } else {
                i += 1;
            }
        }
        Ok(())
    }
}
