//! Admission limits, one operator per region, dispatch, timeouts, history.

use crate::schedule::mock::MockCluster;
use crate::schedule::{
    AddError, OpKind, OpStatus, OpStep, Operator, OperatorController, ScheduleConfig,
};

/// Stores 1..=6; regions 1..=5 on stores 1, 2, 3 led from 1.
fn cluster() -> MockCluster {
    let mut c = MockCluster::new();
    for id in 1..=6 {
        c.add_store(id);
    }
    for id in 1..=5 {
        c.add_region(id, b"", b"", &[1, 2, 3], 1);
    }
    c
}

fn transfer(c: &MockCluster, region: u64) -> Operator {
    Operator::transfer_leader(&c.region(region), 2, OpKind::Leader, "test").expect("builds")
}

fn add_peer(c: &MockCluster, region: u64, store: u64) -> Operator {
    Operator::add_peer(
        &c.region(region),
        store,
        1000 + region,
        OpKind::Replica,
        "test",
    )
    .expect("builds")
}

#[test]
fn kind_limit_refuses_one_past_the_limit() {
    let c = cluster();
    let cfg = ScheduleConfig {
        leader_schedule_limit: 2,
        ..Default::default()
    };
    let mut ctl = OperatorController::new();
    assert!(ctl.add(transfer(&c, 1), c.view(), &cfg, 0).is_ok());
    assert!(ctl.add(transfer(&c, 2), c.view(), &cfg, 0).is_ok());
    assert_eq!(
        ctl.add(transfer(&c, 3), c.view(), &cfg, 0),
        Err(AddError::KindLimit {
            kind: OpKind::Leader,
            limit: 2
        })
    );
    // Other kinds have their own room; admin operators are not limited.
    assert!(ctl.add(add_peer(&c, 3, 4), c.view(), &cfg, 0).is_ok());
    let admin = Operator::transfer_leader(&c.region(4), 3, OpKind::Admin, "api").expect("builds");
    assert!(ctl.add(admin, c.view(), &cfg, 0).is_ok());
    let counters = ctl.counters()[&OpKind::Leader];
    assert_eq!((counters.created, counters.refused), (2, 1));
    assert_eq!(ctl.running_count(OpKind::Leader), 2);
}

#[test]
fn snapshot_limit_counts_pending_learners_per_receiving_store() {
    let mut c = cluster();
    let cfg = ScheduleConfig {
        max_snapshot_count: 2,
        ..Default::default()
    };
    let mut ctl = OperatorController::new();
    assert!(ctl.add(add_peer(&c, 1, 4), c.view(), &cfg, 0).is_ok());
    assert!(ctl.add(add_peer(&c, 2, 4), c.view(), &cfg, 0).is_ok());
    assert_eq!(
        ctl.add(add_peer(&c, 3, 4), c.view(), &cfg, 0),
        Err(AddError::SnapshotLimit {
            store_id: 4,
            limit: 2
        })
    );
    assert!(
        ctl.add(add_peer(&c, 3, 5), c.view(), &cfg, 0).is_ok(),
        "store 5 has room"
    );
    // Region 1's learner arrives but is still pending: still a snapshot.
    let learner = OpStep::AddLearner {
        store_id: 4,
        peer_id: 1001,
    };
    c.apply_step(1, &learner).expect("applies");
    c.update_region(1, |r| r.pending_peers.push(1001));
    ctl.dispatch(&c.region(1), 1);
    assert!(ctl.add(add_peer(&c, 4, 4), c.view(), &cfg, 1).is_err());
    c.update_region(1, |r| r.pending_peers.clear());
    assert!(ctl.dispatch(&c.region(1), 2).is_some(), "promote is next");
    assert!(ctl.add(add_peer(&c, 4, 4), c.view(), &cfg, 2).is_ok());
}

#[test]
fn one_operator_per_region_unless_higher_priority() {
    let c = cluster();
    let cfg = ScheduleConfig::default();
    let mut ctl = OperatorController::new();
    let balance =
        Operator::move_peer(&c.region(1), 3, 4, 900, OpKind::Region, "balance").expect("builds");
    let first = ctl.add(balance, c.view(), &cfg, 0).expect("admitted");
    assert_eq!(
        ctl.add(transfer(&c, 1), c.view(), &cfg, 0),
        Err(AddError::RegionBusy(OpKind::Region))
    );
    let repair = add_peer(&c, 1, 5);
    let second = ctl
        .add(repair, c.view(), &cfg, 0)
        .expect("replica repair outranks balance");
    assert_ne!(first, second);
    assert_eq!(ctl.get(1).map(|op| op.kind), Some(OpKind::Replica));
    let replaced: Vec<_> = ctl.history().map(|op| (op.id, op.status.clone())).collect();
    assert_eq!(replaced, vec![(first, OpStatus::Replaced)]);
    assert_eq!(ctl.counters()[&OpKind::Region].replaced, 1);
    assert_eq!(
        ctl.add(add_peer(&c, 1, 6), c.view(), &cfg, 0),
        Err(AddError::RegionBusy(OpKind::Replica))
    );
}

#[test]
fn refuses_operators_built_on_an_old_epoch_or_unknown_region() {
    let mut c = cluster();
    let cfg = ScheduleConfig::default();
    let mut ctl = OperatorController::new();
    let op = transfer(&c, 1);
    c.update_region(1, |r| r.epoch.conf_ver += 1);
    assert!(matches!(
        ctl.add(op, c.view(), &cfg, 0),
        Err(AddError::StaleEpoch { .. })
    ));
    let mut ghost = transfer(&c, 2);
    ghost.region_id = 99;
    assert_eq!(
        ctl.add(ghost, c.view(), &cfg, 0),
        Err(AddError::RegionNotFound(99))
    );
    let empty = Operator::new(&c.region(2), OpKind::Admin, "empty", vec![]);
    assert_eq!(ctl.add(empty, c.view(), &cfg, 0), Err(AddError::Invalid));
}

#[test]
fn dispatch_drives_to_finish_and_counts() {
    let mut c = cluster();
    let cfg = ScheduleConfig::default();
    let mut ctl = OperatorController::new();
    ctl.add(add_peer(&c, 1, 4), c.view(), &cfg, 0)
        .expect("admitted");
    assert_eq!(
        ctl.dispatch(&c.region(2), 1),
        None,
        "no operator for region 2"
    );
    let mut sent = 0;
    while let Some(step) = ctl.dispatch(&c.region(1), 1) {
        c.apply_step(1, &step).expect("applies");
        sent += 1;
    }
    assert_eq!(sent, 2);
    assert!(ctl.get(1).is_none());
    assert_eq!(ctl.counters()[&OpKind::Replica].finished, 1);
    assert_eq!(
        ctl.history().last().map(|op| op.status.clone()),
        Some(OpStatus::Finished)
    );
}

#[test]
fn timeouts_reap_silent_regions_by_kind() {
    let c = cluster();
    let cfg = ScheduleConfig::default();
    let mut ctl = OperatorController::new();
    ctl.add(transfer(&c, 1), c.view(), &cfg, 1000)
        .expect("admitted");
    ctl.add(add_peer(&c, 2, 4), c.view(), &cfg, 1000)
        .expect("admitted");
    assert!(ctl.check_timeouts(10_999).is_empty());
    assert_eq!(
        ctl.check_timeouts(11_000),
        vec![1],
        "leader operators live 10s"
    );
    assert!(ctl.check_timeouts(600_999).is_empty());
    assert_eq!(
        ctl.check_timeouts(601_000),
        vec![2],
        "region operators live 10m"
    );
    assert_eq!(ctl.counters()[&OpKind::Leader].timed_out, 1);
    assert_eq!(ctl.counters()[&OpKind::Replica].timed_out, 1);
}

#[test]
fn cancel_and_bounded_history() {
    let c = cluster();
    let cfg = ScheduleConfig::default();
    let mut ctl = OperatorController::with_history_limit(2);
    for region in 1..=3 {
        ctl.add(add_peer(&c, region, 4), c.view(), &cfg, 0)
            .expect("admitted");
    }
    for region in 1..=3 {
        let op = ctl.cancel(region, "api", 5).expect("was running");
        assert_eq!(op.status, OpStatus::Cancelled("api".into()));
    }
    assert_eq!(ctl.cancel(1, "again", 6).map(|op| op.id), None);
    let kept: Vec<u64> = ctl.history().map(|op| op.region_id).collect();
    assert_eq!(kept, vec![2, 3]);
    assert_eq!(ctl.counters()[&OpKind::Replica].cancelled, 3);
}
