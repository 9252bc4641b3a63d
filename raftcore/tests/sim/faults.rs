//! The faults of the first phase: crashes (some planned a moment after a
//! proposal), pauses, partitions, and targeted scenarios (Figure 8 churn, a
//! bridged leader whose bridge restarts).

use crate::checker::Violation;
use crate::cluster::Cluster;
use crate::params::TICK;

/// Crash delays: usually a few election timeouts, sometimes at once.
fn restart_delay(c: &mut Cluster) -> u64 {
    let timeout = c.p.election_ticks as u64 * TICK;
    if c.rng.chance(300) {
        c.rng.below(TICK)
    } else {
        c.rng.below(3 * timeout)
    }
}

pub fn crash_any(c: &mut Cluster) -> Result<(), Violation> {
    if let Some(id) = c.rng.pick(&c.up_ids()) {
        let delay = restart_delay(c);
        c.crash(id, delay);
    }
    Ok(())
}

/// Crashing leaders leaves entries of their term uncommitted for the next
/// leaders to sort out (the Figure 8 scenario, thesis §3.6.2).
pub fn crash_leader(c: &mut Cluster) -> Result<(), Violation> {
    if let Some(id) = c.leader() {
        let delay = restart_delay(c);
        c.crash(id, delay);
    }
    Ok(())
}

/// Stalls a node (the leader half of the time), as a long GC pause or a
/// frozen VM would: a stale leader that resumes must not serve reads on a
/// lease that expired meanwhile.
pub fn pause(c: &mut Cluster) -> Result<(), Violation> {
    let id = match c.leader() {
        Some(l) if c.rng.coin() => l,
        _ => match c.rng.pick(&c.up_ids()) {
            Some(id) => id,
            None => return Ok(()),
        },
    };
    let timeout = c.p.election_ticks as u64 * TICK;
    let until = c.now + c.rng.range(TICK / 2, 3 * timeout);
    c.nodes.get_mut(&id).expect("up").paused_until = Some(until);
    c.stats.pauses += 1;
    c.log(|| format!("node {id} pauses"));
    Ok(())
}

/// Figure 8 of the Raft paper (thesis §3.6.2): a leader appends entries,
/// replicates them to some followers and crashes before they commit; the
/// next leader may not have them, appends its own and crashes in turn. A
/// leader that counts replicas of such an old-term entry to commit it
/// loses a committed entry when the other side wins the next election.
pub fn figure8(c: &mut Cluster) -> Result<(), Violation> {
    let Some(id) = c.leader() else { return Ok(()) };
    crate::workload::propose_at(c, id);
    let at = c.now + c.rng.below(TICK);
    let delay = restart_delay(c);
    let node = c.nodes.get_mut(&id).expect("leader exists");
    node.crash_at = Some((at, delay));
    Ok(())
}

/// Replaces the partition by a new one: random halves, an isolated leader,
/// lost one-way links, or a bridge node between two cut-off sides.
pub fn partition(c: &mut Cluster) -> Result<(), Violation> {
    let mut ids: Vec<u64> = c.nodes.keys().copied().collect();
    if ids.len() < 2 {
        return Ok(());
    }
    c.net.heal();
    c.rng.shuffle(&mut ids);
    match c.rng.below(6) {
        0 | 1 => {
            let k = c.rng.range(1, ids.len() as u64 - 1) as usize;
            c.net.cut_between(&ids[..k], &ids[k..]);
        }
        2 | 3 => {
            // The leader alone: leases and Check-Quorum at work.
            let leader = c.leader().unwrap_or(ids[0]);
            let others: Vec<u64> = ids.iter().copied().filter(|&i| i != leader).collect();
            c.net.cut_between(&[leader], &others);
        }
        4 => {
            for _ in 0..c.rng.range(1, 3) {
                let (a, b) = (c.rng.pick(&ids), c.rng.pick(&ids));
                if let (Some(a), Some(b)) = (a, b) {
                    if a != b {
                        c.net.cut_one_way(a, b);
                    }
                }
            }
        }
        _ if ids.len() >= 3 => {
            // ids[0] bridges the rest, split in two sides that are cut.
            let k = c.rng.range(2, ids.len() as u64 - 1) as usize;
            c.net.cut_between(&ids[1..k], &ids[k..]);
        }
        _ => c.net.cut_between(&ids[..1], &ids[1..]),
    }
    c.stats.partitions += 1;
    c.log(|| format!("partition: {}", c.net.describe_cuts()));
    Ok(())
}

/// The leader reaches the others only through one follower, which then
/// restarts while a cut-off follower campaigns: having forgotten the
/// leader, the restarted bridge must still not help elect a rival while
/// the leader's lease may last (thesis §6.4.1; with leases on, raftcore's
/// restarted peers grant no vote for `election_ticks`).
pub fn bridge_restart(c: &mut Cluster) -> Result<(), Violation> {
    let Some(leader) = c.leader() else {
        return Ok(());
    };
    let mut others: Vec<u64> = c.up_ids().into_iter().filter(|&i| i != leader).collect();
    c.rng.shuffle(&mut others);
    let (Some(&bridge), Some(&rival)) = (others.first(), others.get(1)) else {
        return Ok(());
    };
    let cut_off: Vec<u64> = c
        .nodes
        .keys()
        .copied()
        .filter(|&i| i != leader && i != bridge)
        .collect();
    c.net.heal();
    c.net.cut_between(&[leader], &cut_off);
    c.stats.partitions += 1;
    let at = c.now + c.rng.below(c.p.election_ticks as u64 * TICK);
    let delay = c.rng.below(TICK / 5);
    c.nodes.get_mut(&bridge).expect("up").crash_at = Some((at, delay));
    // The rival's requests reach the bridge just after it restarts, and the
    // clients pause: with the leader writing, the rival's log would fall
    // behind the bridge's and lose the vote anyway.
    c.campaigns.insert((at + delay + 1, rival));
    c.quiet_until = c.quiet_until.max(at + 2 * TICK);
    c.log(|| {
        format!("leader {leader} bridged by {bridge}, which will restart as {rival} campaigns")
    });
    Ok(())
}

pub fn heal_partition(c: &mut Cluster) -> Result<(), Violation> {
    if c.net.is_partitioned() {
        c.net.heal();
        c.log(|| "partition healed".into());
    }
    Ok(())
}

/// Figure 8 churn: sometimes cut a new leader off before its first
/// appends leave, or crash it a moment after its election.
pub fn disturb_new_leader(c: &mut Cluster, id: u64) {
    if c.rng.chance(c.p.new_leader_isolate_pm) {
        let others: Vec<u64> = c.nodes.keys().copied().filter(|&o| o != id).collect();
        c.net.heal();
        c.net.cut_between(&[id], &others);
        c.stats.partitions += 1;
        c.log(|| format!("new leader {id} isolated"));
    } else if c.rng.chance(c.p.new_leader_crash_pm) {
        let at = c.now + c.rng.below(TICK / 2);
        let delay = c.rng.below(2 * c.p.election_ticks as u64 * TICK);
        c.nodes.get_mut(&id).expect("leader").crash_at = Some((at, delay));
    }
}
