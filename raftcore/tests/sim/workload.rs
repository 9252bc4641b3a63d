//! The random workload of the first phase, and the choice of each action
//! (faults in `faults.rs`): proposals, ReadIndex and lease reads, membership
//! changes, leader transfers, hibernation and waking, compaction,
//! host-initiated campaigns, idle periods.

use bytes::Bytes;
use raftcore::{
    ConfChange, ConfChangeSingle, ConfChangeTransition, ConfChangeType, ConfState, MemStorage,
};

use crate::checker::Violation;
use crate::cluster::Cluster;
use crate::faults;
use crate::node::Node;
use crate::params::TICK;

type Action = fn(&mut Cluster) -> Result<(), Violation>;

/// Most peers a group may name at once (voters and learners).
const MAX_MEMBERS: usize = 7;
/// Voters are kept within these bounds by the membership changes.
const MIN_VOTERS: usize = 3;
const MAX_VOTERS: usize = 5;
/// Proposals stop while this many entries wait to commit.
const MAX_BACKLOG: u64 = 32;

/// Performs one action, chosen by the seed's weights.
pub fn act(c: &mut Cluster) -> Result<(), Violation> {
    let w = &c.p.weights;
    let actions: [(u64, Action); 17] = [
        (w.propose, propose),
        (w.read, read_index),
        (w.lease_read, lease_read),
        (w.compact, compact),
        (w.conf_change, conf_change),
        (w.transfer, transfer),
        (w.hibernate, hibernate),
        (w.wake, wake),
        (w.crash, faults::crash_any),
        (w.crash_leader, faults::crash_leader),
        (w.pause, faults::pause),
        (w.figure8, faults::figure8),
        (w.partition, faults::partition),
        (w.bridge_restart, faults::bridge_restart),
        (w.campaign, campaign),
        (w.quiet, quiet),
        (w.heal_partition, faults::heal_partition),
    ];
    let mut r = c.rng.below(w.total());
    for (weight, action) in actions {
        if r < weight {
            return action(c);
        }
        r -= weight;
    }
    Ok(())
}

/// The leader most of the time, else any running node.
fn target(c: &mut Cluster) -> Option<u64> {
    match c.leader() {
        Some(l) if c.rng.chance(700) => Some(l),
        _ => c.rng.pick(&c.up_ids()),
    }
}

/// A client write (unless the clients are idle).
fn propose(c: &mut Cluster) -> Result<(), Violation> {
    if c.now < c.quiet_until {
        return Ok(());
    }
    if let Some(id) = target(c) {
        propose_at(c, id);
    }
    Ok(())
}

/// Proposes one to four fresh payloads at node `id`.
pub fn propose_at(c: &mut Cluster, id: u64) {
    // Clients wait for their writes: a bounded backlog, so that slow
    // configurations (one entry per append, one append in flight) keep up.
    let log = c.nodes[&id].raw().expect("up").log();
    if log.last_index() > log.committed + MAX_BACKLOG {
        return;
    }
    let n = if c.rng.chance(800) {
        1
    } else {
        c.rng.range(2, 4)
    };
    let payloads: Vec<Bytes> = (0..n)
        .map(|i| Bytes::from((c.next_payload + i).to_le_bytes().to_vec()))
        .collect();
    c.next_payload += n;
    if c.raw_mut(id).expect("up").propose_batch(payloads).is_ok() {
        c.stats.proposals += n;
    }
}

/// Issues a ReadIndex read (a lease read, on lease seeds, if the leader
/// holds one).
fn read_index(c: &mut Cluster) -> Result<(), Violation> {
    if c.now < c.quiet_until {
        return Ok(());
    }
    let Some(id) = target(c) else { return Ok(()) };
    let read = c.next_read;
    c.next_read += 1;
    c.checker.read_issued(read);
    let ctx = read.to_le_bytes().to_vec();
    let _ = c.raw_mut(id).expect("up").read_index(ctx);
    Ok(())
}

/// A read served straight from the leader's state machine under its lease
/// (thesis §6.4.1), at the commit index.
fn lease_read(c: &mut Cluster) -> Result<(), Violation> {
    if !c.p.lease_reads || c.now < c.quiet_until {
        return read_index(c);
    }
    // Any node that believes it leads: a stale leader must know its lease
    // is gone.
    let Some(id) = c.rng.pick(&c.leaders()) else {
        return Ok(());
    };
    let raw = c.nodes[&id].raw().expect("up");
    if !raw.has_valid_lease() {
        return Ok(());
    }
    let index = raw.raft().raft_log.committed;
    let read = c.next_read;
    c.next_read += 1;
    c.checker.read_issued(read);
    c.checker.read_answered(id, read, index)?;
    c.stats.lease_reads += 1;
    c.nodes
        .get_mut(&id)
        .expect("up")
        .pending_reads
        .push((read, index));
    c.serve_reads(id)
}

/// Compacts a random node's log behind a snapshot of its state machine.
pub fn compact(c: &mut Cluster) -> Result<(), Violation> {
    let Some(id) = c.rng.pick(&c.up_ids()) else {
        return Ok(());
    };
    if c.nodes.get_mut(&id).expect("up").compact() {
        c.stats.compactions += 1;
    }
    Ok(())
}

/// Proposes a random membership change at the leader (sometimes at a
/// follower, which refuses it).
fn conf_change(c: &mut Cluster) -> Result<(), Violation> {
    let Some(id) = target(c) else { return Ok(()) };
    let cs = c.nodes[&id].raw().expect("up").status().conf_state;
    let cc = if cs.is_joint() {
        if cs.auto_leave {
            return Ok(());
        }
        ConfChange::leave_joint()
    } else {
        match choose_change(c, &cs) {
            Some(cc) => cc,
            None => return Ok(()),
        }
    };
    // Peers the change adds start empty, and fill from a snapshot.
    let mut created = Vec::new();
    for ch in &cc.changes {
        if ch.change_type != ConfChangeType::RemoveNode && !c.nodes.contains_key(&ch.node_id) {
            let node = Node::start(
                ch.node_id,
                MemStorage::new(),
                &c.p,
                &mut c.rng,
                c.now,
                c.planted,
            )?;
            c.nodes.insert(ch.node_id, node);
            created.push(ch.node_id);
        }
    }
    let result = c.raw_mut(id).expect("up").propose_conf_change(&cc);
    c.log(|| format!("node {id} proposes {cc:?}: {result:?}"));
    if result.is_err() {
        for new in created {
            c.nodes.remove(&new);
        }
    }
    Ok(())
}

/// A random change that keeps voters and members within bounds.
fn choose_change(c: &mut Cluster, cs: &ConfState) -> Option<ConfChange> {
    use ConfChangeType::{AddLearnerNode, AddNode, RemoveNode};
    let single = ConfChangeSingle::new;
    let members = crate::node::all_ids(cs).len();
    let new_id = c.next_id;
    let voter = c.rng.pick(&cs.voters);
    let learner = c.rng.pick(&cs.learners);
    let mut options: Vec<Vec<ConfChangeSingle>> = Vec::new();
    if members < MAX_MEMBERS {
        options.push(vec![single(AddLearnerNode, new_id)]);
        if cs.voters.len() < MAX_VOTERS {
            options.push(vec![single(AddNode, new_id)]);
        }
    }
    if let Some(l) = learner {
        options.push(vec![single(RemoveNode, l)]);
        if cs.voters.len() < MAX_VOTERS {
            options.push(vec![single(AddNode, l)]);
        }
        if let Some(v) = voter {
            // Swap roles, through joint consensus.
            options.push(vec![single(AddNode, l), single(AddLearnerNode, v)]);
        }
    }
    if let Some(v) = voter.filter(|_| cs.voters.len() > MIN_VOTERS) {
        options.push(vec![single(RemoveNode, v)]);
        options.push(vec![single(AddLearnerNode, v)]);
    }
    if let Some(v) = voter.filter(|_| members < MAX_MEMBERS) {
        // Replace a voter, through joint consensus.
        options.push(vec![single(AddNode, new_id), single(RemoveNode, v)]);
    }
    if options.is_empty() {
        return None;
    }
    let changes = options.swap_remove(c.rng.below(options.len() as u64) as usize);
    if changes.iter().any(|ch| ch.node_id == new_id) {
        c.next_id += 1;
    }
    let transition = match c.rng.below(4) {
        0 => ConfChangeTransition::Explicit,
        1 => ConfChangeTransition::Implicit,
        _ => ConfChangeTransition::Auto,
    };
    Some(ConfChange {
        transition,
        changes,
        context: Bytes::new(),
    })
}

/// Moves leadership to a random voter.
fn transfer(c: &mut Cluster) -> Result<(), Violation> {
    let Some(id) = c.leader() else { return Ok(()) };
    let voters = c.nodes[&id].raw().expect("up").status().conf_state.voters;
    let Some(to) = c.rng.pick(&voters) else {
        return Ok(());
    };
    if c.raw_mut(id).expect("up").transfer_leader(to).is_ok() && to != id {
        c.stats.transfers += 1;
        c.log(|| format!("node {id} transfers leadership to {to}"));
    }
    Ok(())
}

/// Hibernates the leader if the group is idle (or, sometimes, a follower).
fn hibernate(c: &mut Cluster) -> Result<(), Violation> {
    let Some(id) = target(c) else { return Ok(()) };
    if c.raw_mut(id).expect("up").hibernate().is_ok() {
        c.stats.hibernations += 1;
        c.log(|| format!("node {id} hibernates"));
    }
    Ok(())
}

/// The host suspects the leader is gone and wakes a node.
fn wake(c: &mut Cluster) -> Result<(), Violation> {
    if let Some(id) = c.rng.pick(&c.up_ids()) {
        c.raw_mut(id).expect("up").wake();
    }
    Ok(())
}

/// The clients go idle for a while: groups that can hibernate, and logs
/// that stop moving.
fn quiet(c: &mut Cluster) -> Result<(), Violation> {
    let timeout = c.p.election_ticks as u64 * TICK;
    c.quiet_until = c.now + c.rng.range(timeout, 4 * timeout);
    Ok(())
}

/// A host-initiated election at a random node (an operator moving
/// leadership by hand): pre-vote and leases must keep it harmless.
fn campaign(c: &mut Cluster) -> Result<(), Violation> {
    if let Some(id) = c.rng.pick(&c.up_ids()) {
        c.campaigns.insert((c.now, id));
    }
    Ok(())
}
