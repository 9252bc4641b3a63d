//! The scheduler registry: names, pausing, and limits within one round.

use crate::schedule::mock::{CountingIds, MockCluster};
use crate::schedule::{
    OpKind, OpStep, OperatorController, RegistryError, ScheduleConfig, SchedulerRegistry,
};

/// Stores 1..=5, 100 regions on stores 1..=3 led from store 1: both
/// schedulers have work.
fn unbalanced() -> MockCluster {
    let mut c = MockCluster::new();
    for id in 1..=5 {
        c.add_store(id);
    }
    for id in 1..=100 {
        c.add_region(id, b"", b"", &[1, 2, 3], 1);
    }
    c
}

#[test]
fn add_remove_and_list_by_name() {
    let mut registry = SchedulerRegistry::new();
    assert_eq!(
        registry.add("shuffle-leader"),
        Err(RegistryError::Unknown("shuffle-leader".into()))
    );
    registry.add("balance-region").expect("known");
    registry.add("balance-leader").expect("known");
    assert_eq!(
        registry.add("balance-leader"),
        Err(RegistryError::AlreadyAdded("balance-leader".into()))
    );
    let names: Vec<String> = registry.list(0).into_iter().map(|s| s.name).collect();
    assert_eq!(names, vec!["balance-region", "balance-leader"]);
    registry.remove("balance-region").expect("added");
    assert_eq!(
        registry.remove("balance-region"),
        Err(RegistryError::NotAdded("balance-region".into()))
    );
    assert_eq!(registry.list(0).len(), 1);
}

#[test]
fn paused_schedulers_do_not_run_until_the_pause_ends() {
    let c = unbalanced();
    let cfg = ScheduleConfig::default();
    let mut ctl = OperatorController::new();
    let mut ids = CountingIds::default();
    let mut registry = SchedulerRegistry::with_defaults();
    registry
        .pause("balance-leader", 60_000, 1_000)
        .expect("added");
    registry
        .pause("balance-region", 60_000, 1_000)
        .expect("added");
    assert_eq!(registry.list(2_000)[0].paused_until_ms, Some(61_000));
    assert!(registry
        .run(c.view(), &cfg, &mut ctl, &mut ids, 2_000)
        .schedulers
        .is_empty());
    registry.resume("balance-region").expect("added");
    let report = registry.run(c.view(), &cfg, &mut ctl, &mut ids, 3_000);
    assert_eq!(report.schedulers.len(), 1);
    assert_eq!(ctl.running_count(OpKind::Leader), 0);
    assert_eq!(
        registry.list(61_000)[0].paused_until_ms,
        None,
        "pause expired"
    );
    let report = registry.run(c.view(), &cfg, &mut ctl, &mut ids, 61_000);
    assert_eq!(report.schedulers[0].0, "balance-leader");
    assert!(ctl.running_count(OpKind::Leader) > 0);
}

#[test]
fn one_round_stays_within_kind_and_snapshot_limits() {
    let c = unbalanced();
    let cfg = ScheduleConfig {
        region_schedule_limit: 5,
        leader_schedule_limit: 2,
        max_snapshot_count: 2,
        ..Default::default()
    };
    let mut ctl = OperatorController::new();
    let mut ids = CountingIds::default();
    let mut registry = SchedulerRegistry::with_defaults();
    let report = registry.run(c.view(), &cfg, &mut ctl, &mut ids, 0);
    // Two snapshots each for stores 4 and 5: four region moves, not five.
    assert_eq!(ctl.running_count(OpKind::Region), 4, "{report:?}");
    assert_eq!(ctl.running_count(OpKind::Leader), 2);
    for store in [4, 5] {
        let receiving = ctl
            .operators()
            .flat_map(|op| op.remaining_steps())
            .filter(|s| matches!(s, OpStep::AddLearner { store_id, .. } if *store_id == store))
            .count();
        assert_eq!(receiving, 2, "store {store}");
    }
    // Every proposal was admitted: the schedulers planned within the limits.
    assert!(
        report
            .schedulers
            .iter()
            .all(|(_, proposed, admitted)| proposed == admitted),
        "{report:?}"
    );
}

#[test]
fn a_blocked_store_costs_a_bounded_scan_that_resumes_next_pass() {
    let mut c = MockCluster::new();
    for id in 1..=3 {
        c.add_store(id);
    }
    for id in 1..=1000 {
        c.add_region(id, b"", b"", &[1, 2, 3], 1);
        if id <= 600 {
            // Unhealthy regions are the checkers' business, not balance's.
            c.update_region(id, |r| r.pending_peers.push(r.peers[2].id));
        }
    }
    let cfg = ScheduleConfig::default();
    let mut ctl = OperatorController::new();
    let mut ids = CountingIds::default();
    let mut registry = SchedulerRegistry::new();
    registry.add("balance-leader").expect("known");
    let first = registry.run(c.view(), &cfg, &mut ctl, &mut ids, 0);
    assert_eq!(
        first.schedulers,
        vec![("balance-leader".to_string(), 0, 0)],
        "512 blocked regions scanned"
    );
    let second = registry.run(c.view(), &cfg, &mut ctl, &mut ids, 1);
    assert_eq!(
        second.schedulers,
        vec![("balance-leader".to_string(), 4, 4)]
    );
    let picked: Vec<u64> = ctl.operators().map(|op| op.region_id).collect();
    assert_eq!(picked, vec![601, 602, 603, 604]);
}
