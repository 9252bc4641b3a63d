//! The second phase: heal every fault, then check that the group makes
//! progress again (thesis §3.4 and §3.5: with a quorum up and connected, a
//! leader is elected and commits).

use crate::checker::Violation;
use crate::cluster::Cluster;
use crate::node::Life;
use crate::params::TICK;
use crate::state_machine::StateMachine;

/// Election timeouts allowed for a leader to emerge after healing.
const LEADER_TIMEOUTS: u64 = 30;
/// Election timeouts allowed for a new proposal to apply on every member.
const COMMIT_TIMEOUTS: u64 = 80;

/// Restarts crashed nodes, removes partitions, stops loss, wakes everyone;
/// then requires a leader within a bounded time, and a new proposal
/// applied on every member of its configuration.
pub fn heal_and_check(c: &mut Cluster) -> Result<(), Violation> {
    heal_everything(c)?;
    let timeout = c.p.election_ticks as u64 * TICK;
    let start = c.now;
    while current_leader(c).is_none() {
        if c.now > start + LEADER_TIMEOUTS * timeout {
            return Err(Violation(format!(
                "liveness: no leader {LEADER_TIMEOUTS} election timeouts after healing; {}",
                describe(c)
            )));
        }
        c.step()?;
    }
    let mut probes: Vec<u64> = Vec::new();
    let mut last_probe = 0;
    let mut last_compaction = c.now;
    while !probe_applied_everywhere(c, &probes) {
        if c.now > start + COMMIT_TIMEOUTS * timeout {
            return Err(Violation(format!(
                "liveness: proposals {probes:?} not applied on every member \
                 {COMMIT_TIMEOUTS} election timeouts after healing; {}",
                describe(c)
            )));
        }
        if probes.is_empty() || c.now >= last_probe + 3 * timeout {
            if let Some(p) = propose_probe(c) {
                probes.push(p);
                last_probe = c.now;
            }
        }
        if c.now >= last_compaction + 2 * timeout {
            // Fresh snapshots, so that a peer added after the last
            // compaction can catch up (it ignores snapshots without it).
            for id in c.up_ids() {
                c.nodes.get_mut(&id).expect("up").compact();
            }
            last_compaction = c.now;
        }
        c.step()?;
    }
    c.stats.max_heal_ticks = (c.now - start) / TICK;
    c.check_prefixes()
}

/// Ends every fault: restarts crashed nodes, resumes paused ones, removes
/// partitions, stops loss and duplication, wakes everyone.
fn heal_everything(c: &mut Cluster) -> Result<(), Violation> {
    c.faults = false;
    c.campaigns.clear();
    c.net.heal();
    c.net.calm();
    let ids: Vec<u64> = c.nodes.keys().copied().collect();
    for id in ids {
        let node = &c.nodes[&id];
        if matches!(node.life, Life::Down { .. }) {
            c.restart(id)?;
        } else if node.paused_until.is_some() {
            c.resume(id)?;
        }
    }
    for id in c.up_ids() {
        c.raw_mut(id).expect("up").wake();
    }
    c.log(|| "heal: faults off".into());
    Ok(())
}

/// The leader of the highest term among running nodes, if there is one.
fn current_leader(c: &Cluster) -> Option<u64> {
    let top = c
        .nodes
        .values()
        .filter_map(|n| n.raw().map(|r| r.raft().term))
        .max()?;
    c.leader()
        .filter(|&id| c.nodes[&id].raw().is_some_and(|r| r.raft().term == top))
}

/// Proposes a fresh payload at the leader.
fn propose_probe(c: &mut Cluster) -> Option<u64> {
    let leader = current_leader(c)?;
    let payload = c.next_payload;
    c.next_payload += 1;
    let raw = c.raw_mut(leader)?;
    raw.propose(payload.to_le_bytes().to_vec()).ok()?;
    c.log(|| format!("liveness probe {payload} proposed at node {leader}"));
    Some(payload)
}

/// Whether some probe is applied on every member of the leader's
/// configuration (all of which must be running).
fn probe_applied_everywhere(c: &Cluster, probes: &[u64]) -> bool {
    let Some(leader) = current_leader(c) else {
        return false;
    };
    let members = c.nodes[&leader]
        .raw()
        .expect("up")
        .raft()
        .prs
        .config
        .all_ids();
    let sms: Option<Vec<&StateMachine>> = members
        .iter()
        .map(|id| c.nodes.get(id).filter(|n| n.is_up()).map(|n| &n.sm))
        .collect();
    let Some(sms) = sms else {
        return false;
    };
    probes.iter().any(|&p| sms.iter().all(|sm| sm.contains(p)))
}

/// Every node's status, for a liveness failure.
fn describe(c: &Cluster) -> String {
    let mut out = String::from("nodes:");
    for (id, n) in &c.nodes {
        match n.raw() {
            Some(raw) => out.push_str(&format!("\n  {} sm.applied={}", raw.status(), n.sm.applied)),
            None => out.push_str(&format!("\n  {id}: not running")),
        }
    }
    out
}
