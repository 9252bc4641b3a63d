//! The replica and joint/learner checkers, one region at a time, and the
//! patrol that sweeps them.

use crate::schedule::mock::{CountingIds, MockCluster};
use crate::schedule::{
    check_region, OpKind, OpStep, Operator, OperatorController, Patrol, PeerRole, ScheduleConfig,
    ScheduleContext, StoreState,
};

/// Stores 1..=5; region 1 on 1, 2, 3 led from 1.
fn cluster() -> MockCluster {
    let mut c = MockCluster::new();
    for id in 1..=5 {
        c.add_store(id);
    }
    c.add_region(1, b"", b"", &[1, 2, 3], 1);
    c
}

fn check(c: &MockCluster, cfg: &ScheduleConfig) -> Option<Operator> {
    let ctx = ScheduleContext::idle(c.view(), cfg, 0);
    check_region(&ctx, &c.region(1), &mut CountingIds::default())
}

fn peer_on(c: &MockCluster, store: u64) -> u64 {
    c.region(1)
        .peer_on_store(store)
        .map(|p| p.id)
        .unwrap_or_default()
}

#[test]
fn healthy_region_needs_nothing() {
    assert!(check(&cluster(), &ScheduleConfig::default()).is_none());
}

#[test]
fn down_store_replica_is_replaced_on_the_emptiest_store() {
    let mut c = cluster();
    c.add_region(2, b"", b"", &[4], 4);
    c.set_store_state(2, StoreState::Down);
    let op = check(&c, &ScheduleConfig::default()).expect("repair");
    assert_eq!(
        (op.desc.as_str(), op.kind),
        ("replace-down-peer", OpKind::Replica)
    );
    assert_eq!(
        op.steps[0],
        OpStep::AddLearner {
            store_id: 5,
            peer_id: CountingIds::default().next
        }
    );
    assert_eq!(
        op.steps.last(),
        Some(&OpStep::RemovePeer {
            peer_id: peer_on(&c, 2),
            store_id: 2
        })
    );
}

#[test]
fn down_replica_waits_when_no_store_can_take_it() {
    let mut c = cluster();
    for store in [4, 5] {
        c.set_store_state(store, StoreState::Disconnected);
    }
    c.set_store_state(2, StoreState::Down);
    assert!(check(&c, &ScheduleConfig::default()).is_none());
    // ... unless the region has a voter to spare.
    let cfg = ScheduleConfig {
        max_replicas: 2,
        ..Default::default()
    };
    let op = check(&c, &cfg).expect("remove");
    assert_eq!(op.desc, "remove-down-peer");
    assert_eq!(
        op.steps,
        vec![OpStep::RemovePeer {
            peer_id: peer_on(&c, 2),
            store_id: 2
        }]
    );
}

#[test]
fn offline_leader_replica_moves_after_a_leader_transfer() {
    let mut c = cluster();
    c.set_store_state(1, StoreState::Offline);
    let op = check(&c, &ScheduleConfig::default()).expect("repair");
    assert_eq!(op.desc, "replace-offline-peer");
    assert!(op.steps.contains(&OpStep::TransferLeader {
        from_store: 1,
        to_store: 2
    }));
}

#[test]
fn missing_voter_is_added_and_extra_one_removed() {
    let c = cluster();
    let cfg = ScheduleConfig {
        max_replicas: 5,
        ..Default::default()
    };
    let op = check(&c, &cfg).expect("add");
    assert_eq!(op.desc, "add-replica");
    assert!(matches!(
        op.steps[0],
        OpStep::AddLearner { store_id: 4, .. }
    ));
    let cfg = ScheduleConfig {
        max_replicas: 1,
        ..Default::default()
    };
    let op = check(&c, &cfg).expect("remove");
    assert_eq!(op.desc, "remove-extra-replica");
    // Not the leader (store 1); the tie between 2 and 3 goes to the higher id.
    assert_eq!(
        op.steps,
        vec![OpStep::RemovePeer {
            peer_id: peer_on(&c, 3),
            store_id: 3
        }]
    );
}

#[test]
fn exhausted_ids_stop_operators_that_need_a_peer() {
    let mut c = cluster();
    c.set_store_state(2, StoreState::Down);
    let cfg = ScheduleConfig::default();
    let ctx = ScheduleContext::idle(c.view(), &cfg, 0);
    let mut none = CountingIds { next: 5, end: 5 };
    assert!(check_region(&ctx, &c.region(1), &mut none).is_none());
}

#[test]
fn joint_region_without_operator_leaves_joint() {
    let mut c = cluster();
    c.update_region(1, |r| {
        r.peers[2].role = PeerRole::DemotingVoter;
        r.epoch.conf_ver += 1;
    });
    let op = check(&c, &ScheduleConfig::default()).expect("leave");
    assert_eq!(
        (op.desc.as_str(), op.steps.clone()),
        ("leave-joint-state", vec![OpStep::LeaveJoint])
    );
}

#[test]
fn stray_learner_is_promoted_when_voters_are_missing() {
    let mut c = cluster();
    let learner = peer_on(&c, 3);
    c.update_region(1, |r| r.peers[2].role = PeerRole::Learner);
    let op = check(&c, &ScheduleConfig::default()).expect("promote");
    assert_eq!(op.desc, "promote-stray-learner");
    assert_eq!(
        op.steps,
        vec![OpStep::PromoteLearner {
            peer_id: learner,
            demote: None
        }]
    );
    // Still catching up: wait rather than add yet another replica.
    c.update_region(1, |r| r.pending_peers.push(learner));
    assert!(check(&c, &ScheduleConfig::default()).is_none());
    // On a store that is not Up it is useless: remove it.
    c.set_store_state(3, StoreState::Disconnected);
    let op = check(&c, &ScheduleConfig::default()).expect("remove");
    assert_eq!(op.desc, "remove-stray-learner");
}

#[test]
fn stray_learner_is_removed_when_voters_suffice() {
    let mut c = cluster();
    c.apply_step(
        1,
        &OpStep::AddLearner {
            store_id: 4,
            peer_id: 77,
        },
    )
    .expect("applies");
    let op = check(&c, &ScheduleConfig::default()).expect("remove");
    assert_eq!(
        (op.desc.as_str(), op.steps.clone()),
        (
            "remove-stray-learner",
            vec![OpStep::RemovePeer {
                peer_id: 77,
                store_id: 4
            }]
        )
    );
}

#[test]
fn stray_learner_takes_over_from_a_lost_voter() {
    let mut c = cluster();
    c.apply_step(
        1,
        &OpStep::AddLearner {
            store_id: 4,
            peer_id: 77,
        },
    )
    .expect("applies");
    c.set_store_state(2, StoreState::Down);
    let lost = peer_on(&c, 2);
    let op = check(&c, &ScheduleConfig::default()).expect("swap");
    assert_eq!(
        op.steps,
        vec![
            OpStep::PromoteLearner {
                peer_id: 77,
                demote: Some(lost)
            },
            OpStep::RemovePeer {
                peer_id: lost,
                store_id: 2
            },
        ]
    );
}

#[test]
fn patrol_skips_busy_regions_respects_the_limit_and_wraps() {
    let mut c = MockCluster::new();
    for id in 1..=4 {
        c.add_store(id);
    }
    for id in 1..=6 {
        c.add_region(id, b"", b"", &[1, 2, 3], 1);
    }
    c.set_store_state(3, StoreState::Offline);
    let cfg = ScheduleConfig {
        replica_schedule_limit: 4,
        max_snapshot_count: 100,
        ..Default::default()
    };
    let mut ctl = OperatorController::new();
    let balance =
        Operator::transfer_leader(&c.region(1), 2, OpKind::Leader, "balance").expect("builds");
    ctl.add(balance, c.view(), &cfg, 0).expect("admitted");
    let mut ids = CountingIds::default();
    let mut patrol = Patrol::new();
    let report = patrol.run(c.view(), &cfg, &mut ctl, &mut ids, 0, 3);
    assert_eq!(
        (report.checked, report.admitted),
        (3, 2),
        "region 1 is busy"
    );
    let report = patrol.run(c.view(), &cfg, &mut ctl, &mut ids, 0, 10);
    assert_eq!(report.admitted, 2, "limit 4 reached");
    assert_eq!(ctl.running_count(OpKind::Replica), 4);
    let busy: Vec<u64> = ctl.operators().map(|op| op.region_id).collect();
    assert_eq!(busy, vec![1, 2, 3, 4, 5]);
    for region in 2..=3 {
        ctl.cancel(region, "test", 0);
    }
    let report = patrol.run(c.view(), &cfg, &mut ctl, &mut ids, 0, 10);
    assert_eq!(
        report.admitted, 2,
        "region 6, then wrapped around to region 2"
    );
    assert!(ctl.get(6).is_some() && ctl.get(2).is_some() && ctl.get(3).is_none());
}

#[test]
fn patrol_replaces_a_balance_operator_when_a_store_is_lost() {
    let mut c = cluster();
    let cfg = ScheduleConfig::default();
    let mut ctl = OperatorController::new();
    let balance = Operator::move_peer(&c.region(1), 3, 4, 900, OpKind::Region, "balance-region")
        .expect("builds");
    ctl.add(balance, c.view(), &cfg, 0).expect("admitted");
    let mut ids = CountingIds::default();
    let report = Patrol::new().run(c.view(), &cfg, &mut ctl, &mut ids, 0, 10);
    assert_eq!(
        report.proposed, 0,
        "a busy healthy region is left to its operator"
    );
    c.set_store_state(2, StoreState::Down);
    let report = Patrol::new().run(c.view(), &cfg, &mut ctl, &mut ids, 1, 10);
    assert_eq!(report.admitted, 1);
    assert_eq!(
        ctl.get(1).map(|op| op.desc.as_str()),
        Some("replace-down-peer")
    );
    assert_eq!(ctl.counters()[&OpKind::Region].replaced, 1);
}

#[test]
fn new_replicas_avoid_full_disks_and_snapshot_limits() {
    let mut c = cluster();
    c.set_store_state(2, StoreState::Down);
    // Store 4 would win the tie with store 5, but its disk is nearly full.
    c.update_store(4, |s| s.available_bytes = s.capacity_bytes / 10);
    let cfg = ScheduleConfig {
        max_snapshot_count: 1,
        ..Default::default()
    };
    let op = check(&c, &cfg).expect("repair");
    assert!(
        matches!(op.steps[0], OpStep::AddLearner { store_id: 5, .. }),
        "{:?}",
        op.steps
    );
    // Store 5 is already receiving its one allowed snapshot.
    c.add_region(2, b"", b"", &[1, 2, 3], 1);
    let mut ctl = OperatorController::new();
    let other = Operator::add_peer(&c.region(2), 5, 901, OpKind::Replica, "t").expect("builds");
    ctl.add(other, c.view(), &cfg, 0).expect("admitted");
    let ctx = ScheduleContext::new(c.view(), &cfg, &ctl, 0);
    assert!(
        check_region(&ctx, &c.region(1), &mut CountingIds::default()).is_none(),
        "nowhere to go"
    );
}
