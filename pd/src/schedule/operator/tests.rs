//! Step completion, cancellation, timeouts and the builders' shapes.

use super::*;
use crate::schedule::mock::MockCluster;

const NEW_PEER: u64 = 1000;

/// Stores 1..=4, region 1 with voters on 1, 2, 3 led from 1.
fn cluster() -> MockCluster {
    let mut c = MockCluster::new();
    for id in 1..=4 {
        c.add_store(id);
    }
    c.add_region(1, b"a", b"z", &[1, 2, 3], 1);
    c
}

fn peer_on(c: &MockCluster, store: u64) -> u64 {
    c.region(1)
        .peer_on_store(store)
        .map(|p| p.id)
        .unwrap_or_default()
}

fn running(op: Operator) -> Operator {
    Operator {
        timeout_ms: 60_000,
        ..op
    }
}

/// Applies whatever `check` returns until the operator stops; returns the
/// commands sent.
fn drive(c: &mut MockCluster, op: &mut Operator) -> Vec<OpStep> {
    let mut sent = Vec::new();
    for now in 0..20 {
        let Some(step) = op.check(&c.region(op.region_id), now) else {
            break;
        };
        c.apply_step(op.region_id, &step)
            .expect("the store accepts every command");
        sent.push(step);
    }
    sent
}

#[test]
fn add_learner_waits_while_pending() {
    let mut c = cluster();
    let mut op =
        running(Operator::add_peer(&c.region(1), 4, NEW_PEER, OpKind::Replica, "t").unwrap());
    let add = op.check(&c.region(1), 0);
    assert_eq!(
        add,
        Some(OpStep::AddLearner {
            store_id: 4,
            peer_id: NEW_PEER
        })
    );
    c.apply_step(
        1,
        &OpStep::AddLearner {
            store_id: 4,
            peer_id: NEW_PEER,
        },
    )
    .unwrap();
    c.update_region(1, |r| r.pending_peers.push(NEW_PEER));
    assert_eq!(
        op.check(&c.region(1), 1),
        add,
        "pending learner is not done"
    );
    assert_eq!(op.current, 0);
    c.update_region(1, |r| r.pending_peers.clear());
    let promote = OpStep::PromoteLearner {
        peer_id: NEW_PEER,
        demote: None,
    };
    assert_eq!(op.check(&c.region(1), 2), Some(promote.clone()));
    c.apply_step(1, &promote).unwrap();
    assert_eq!(op.check(&c.region(1), 3), None);
    assert_eq!(op.status, OpStatus::Finished);
    assert_eq!(op.ended_ms, Some(3));
}

#[test]
fn move_peer_swaps_in_one_joint_change() {
    let mut c = cluster();
    let old = peer_on(&c, 2);
    let mut op =
        running(Operator::move_peer(&c.region(1), 2, 4, NEW_PEER, OpKind::Region, "t").unwrap());
    let sent = drive(&mut c, &mut op);
    assert_eq!(
        sent,
        vec![
            OpStep::AddLearner {
                store_id: 4,
                peer_id: NEW_PEER
            },
            OpStep::PromoteLearner {
                peer_id: NEW_PEER,
                demote: Some(old)
            },
            OpStep::RemovePeer {
                peer_id: old,
                store_id: 2
            },
        ]
    );
    assert_eq!(op.status, OpStatus::Finished);
    let stores: Vec<u64> = c.region(1).voters().map(|p| p.store_id).collect();
    assert_eq!(stores, vec![1, 3, 4]);
}

#[test]
fn moving_the_leader_transfers_it_first() {
    let mut c = cluster();
    let mut op =
        running(Operator::move_peer(&c.region(1), 1, 4, NEW_PEER, OpKind::Region, "t").unwrap());
    assert!(matches!(
        op.steps[1],
        OpStep::TransferLeader {
            from_store: 1,
            to_store: 2
        }
    ));
    drive(&mut c, &mut op);
    assert_eq!(op.status, OpStatus::Finished);
    assert_eq!(c.region(1).leader_store(), Some(2));
    assert!(c.region(1).peer_on_store(1).is_none());
}

#[test]
fn moving_a_lone_voter_promotes_then_transfers() {
    let mut c = MockCluster::new();
    c.add_store(1);
    c.add_store(2);
    c.add_region(1, b"", b"", &[1], 1);
    let mut op =
        running(Operator::move_peer(&c.region(1), 1, 2, NEW_PEER, OpKind::Admin, "t").unwrap());
    let kinds: Vec<&str> = op
        .steps
        .iter()
        .map(|s| match s {
            OpStep::AddLearner { .. } => "add",
            OpStep::PromoteLearner { demote: None, .. } => "promote",
            OpStep::TransferLeader { .. } => "transfer",
            OpStep::RemovePeer { .. } => "remove",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, vec!["add", "promote", "transfer", "remove"]);
    drive(&mut c, &mut op);
    assert_eq!(op.status, OpStatus::Finished);
    assert_eq!(c.region(1).leader, Some(NEW_PEER));
}

#[test]
fn promote_with_demote_waits_for_the_demotion() {
    let mut c = cluster();
    let old = peer_on(&c, 3);
    let mut op =
        running(Operator::move_peer(&c.region(1), 3, 4, NEW_PEER, OpKind::Region, "t").unwrap());
    c.apply_step(
        1,
        &OpStep::AddLearner {
            store_id: 4,
            peer_id: NEW_PEER,
        },
    )
    .unwrap();
    // A plain promotion happened, the old voter still votes: not done.
    c.apply_step(
        1,
        &OpStep::PromoteLearner {
            peer_id: NEW_PEER,
            demote: None,
        },
    )
    .unwrap();
    let swap = OpStep::PromoteLearner {
        peer_id: NEW_PEER,
        demote: Some(old),
    };
    assert_eq!(op.check(&c.region(1), 1), Some(swap.clone()));
    assert_eq!(op.current, 1);
    c.apply_step(1, &swap).unwrap();
    assert_eq!(
        op.check(&c.region(1), 2),
        Some(OpStep::RemovePeer {
            peer_id: old,
            store_id: 3
        })
    );
}

#[test]
fn joint_state_in_progress_is_finished_with_leave_joint() {
    let mut c = cluster();
    let old = peer_on(&c, 3);
    let mut op =
        running(Operator::move_peer(&c.region(1), 3, 4, NEW_PEER, OpKind::Region, "t").unwrap());
    c.apply_step(
        1,
        &OpStep::AddLearner {
            store_id: 4,
            peer_id: NEW_PEER,
        },
    )
    .unwrap();
    // The store entered the joint state but did not leave it yet.
    c.update_region(1, |r| {
        for p in &mut r.peers {
            if p.id == NEW_PEER {
                p.role = PeerRole::IncomingVoter;
            } else if p.id == old {
                p.role = PeerRole::DemotingVoter;
            }
        }
        r.epoch.conf_ver += 2;
    });
    assert_eq!(op.check(&c.region(1), 1), Some(OpStep::LeaveJoint));
    assert_eq!(op.current, 1);
    c.apply_step(1, &OpStep::LeaveJoint).unwrap();
    assert_eq!(
        op.check(&c.region(1), 2),
        Some(OpStep::RemovePeer {
            peer_id: old,
            store_id: 3
        })
    );
}

#[test]
fn removing_a_peer_that_became_leader_moves_leadership_away() {
    let mut c = cluster();
    let victim = peer_on(&c, 2);
    let mut op = running(Operator::remove_peer(&c.region(1), 2, OpKind::Replica, "t").unwrap());
    c.apply_step(
        1,
        &OpStep::TransferLeader {
            from_store: 1,
            to_store: 2,
        },
    )
    .unwrap();
    let sent = op.check(&c.region(1), 0);
    assert_eq!(
        sent,
        Some(OpStep::TransferLeader {
            from_store: 2,
            to_store: 1
        })
    );
    drive(&mut c, &mut op);
    assert_eq!(op.status, OpStatus::Finished);
    assert!(c.region(1).peer(victim).is_none());
}

#[test]
fn transfer_leader_and_leave_joint_and_split_complete() {
    let mut c = cluster();
    let mut op = running(Operator::transfer_leader(&c.region(1), 3, OpKind::Leader, "t").unwrap());
    drive(&mut c, &mut op);
    assert_eq!(
        (op.status.clone(), c.region(1).leader_store()),
        (OpStatus::Finished, Some(3))
    );

    c.update_region(1, |r| r.peers[1].role = PeerRole::DemotingVoter);
    let mut op = running(Operator::leave_joint(&c.region(1), OpKind::Replica, "t"));
    assert_eq!(drive(&mut c, &mut op), vec![OpStep::LeaveJoint]);
    assert_eq!(op.status, OpStatus::Finished);
    assert!(!c.region(1).is_joint());

    let mut op =
        running(Operator::split(&c.region(1), vec![b"m".to_vec()], OpKind::Split, "t").unwrap());
    let version = c.region(1).epoch.version;
    assert_eq!(drive(&mut c, &mut op).len(), 1);
    assert_eq!(op.status, OpStatus::Finished);
    assert_eq!(c.region(1).epoch.version, version + 1);
    assert_eq!(c.region(1).start_key, b"m".to_vec());
}

#[test]
fn split_keys_must_lie_inside_the_region() {
    let c = cluster();
    let r = c.region(1);
    for bad in [
        vec![b"a".to_vec()],
        vec![b"z".to_vec()],
        vec![b"q".to_vec(), b"c".to_vec()],
    ] {
        assert_eq!(
            Operator::split(&r, bad, OpKind::Split, "t").err(),
            Some(BuildError::BadSplitKeys)
        );
    }
    assert!(Operator::split(&r, vec![], OpKind::Split, "t").is_ok());
}

#[test]
fn outside_split_cancels_a_membership_operator() {
    let mut c = cluster();
    let mut op =
        running(Operator::add_peer(&c.region(1), 4, NEW_PEER, OpKind::Replica, "t").unwrap());
    c.update_region(1, |r| r.epoch.version += 1);
    assert_eq!(op.check(&c.region(1), 5), None);
    assert_eq!(
        op.status,
        OpStatus::Cancelled("region split or merged".into())
    );
}

#[test]
fn unexplained_conf_change_cancels_but_own_changes_do_not() {
    let mut c = cluster();
    let mut op =
        running(Operator::move_peer(&c.region(1), 2, 4, NEW_PEER, OpKind::Region, "t").unwrap());
    c.apply_step(
        1,
        &OpStep::AddLearner {
            store_id: 4,
            peer_id: NEW_PEER,
        },
    )
    .unwrap();
    c.update_region(1, |r| r.pending_peers.push(NEW_PEER));
    assert!(
        op.check(&c.region(1), 1).is_some(),
        "own AddLearner explains conf_ver + 1"
    );
    // Someone else removes and re-adds a peer: two bumps nobody planned.
    c.update_region(1, |r| r.epoch.conf_ver += 2);
    assert_eq!(op.check(&c.region(1), 2), None);
    assert_eq!(
        op.status,
        OpStatus::Cancelled("membership changed by someone else".into())
    );
}

#[test]
fn impossible_steps_cancel() {
    let mut c = cluster();
    let mut op = running(Operator::transfer_leader(&c.region(1), 3, OpKind::Leader, "t").unwrap());
    let third = peer_on(&c, 3);
    c.apply_step(
        1,
        &OpStep::RemovePeer {
            peer_id: third,
            store_id: 3,
        },
    )
    .unwrap();
    op.region_epoch = c.region(1).epoch;
    assert_eq!(op.check(&c.region(1), 0), None);
    assert_eq!(
        op.status,
        OpStatus::Cancelled("transfer target holds no voter".into())
    );

    let mut c = cluster();
    let mut op =
        running(Operator::add_peer(&c.region(1), 4, NEW_PEER, OpKind::Replica, "t").unwrap());
    c.apply_step(
        1,
        &OpStep::AddLearner {
            store_id: 4,
            peer_id: 77,
        },
    )
    .unwrap();
    assert_eq!(op.check(&c.region(1), 0), None);
    assert!(
        matches!(op.status, OpStatus::Cancelled(_)),
        "{:?}",
        op.status
    );
}

#[test]
fn times_out_and_ignores_stale_heartbeats() {
    let mut c = cluster();
    let stale = c.region(1);
    c.update_region(1, |r| r.epoch.conf_ver += 1);
    let mut op = Operator::add_peer(&c.region(1), 4, NEW_PEER, OpKind::Replica, "t").unwrap();
    op.created_ms = 1000;
    op.timeout_ms = 500;
    assert_eq!(op.check(&stale, 2000), None, "older epoch: ignored");
    assert!(op.is_running());
    assert!(op.check(&c.region(1), 1499).is_some());
    assert_eq!(op.check(&c.region(1), 1500), None);
    assert_eq!(op.status, OpStatus::TimedOut);
    // A stopped operator stays stopped.
    op.end(OpStatus::Finished, 1600);
    assert_eq!(
        (op.status.clone(), op.ended_ms),
        (OpStatus::TimedOut, Some(1500))
    );
}

#[test]
fn builders_refuse_impossible_shapes() {
    let mut c = cluster();
    let r = c.region(1);
    assert_eq!(
        Operator::add_peer(&r, 2, NEW_PEER, OpKind::Replica, "t").err(),
        Some(BuildError::StoreHasPeer(2))
    );
    assert_eq!(
        Operator::remove_peer(&r, 4, OpKind::Replica, "t").err(),
        Some(BuildError::NoPeerOnStore(4))
    );
    assert_eq!(
        Operator::transfer_leader(&r, 1, OpKind::Leader, "t").err(),
        Some(BuildError::AlreadyLeader(1))
    );
    c.update_region(1, |r| r.peers[2].role = PeerRole::IncomingVoter);
    let joint = c.region(1);
    assert_eq!(
        Operator::move_peer(&joint, 2, 4, NEW_PEER, OpKind::Region, "t").err(),
        Some(BuildError::Joint)
    );
    c.update_region(1, |r| r.leader = None);
    assert_eq!(
        Operator::transfer_leader(&c.region(1), 2, OpKind::Leader, "t").err(),
        Some(BuildError::NoLeader)
    );
}
