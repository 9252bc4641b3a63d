//! Whole-cluster convergence: checkers and schedulers in a loop with a
//! mock store that carries out every step.

use std::collections::BTreeMap;

use super::Sim;
use crate::schedule::mock::MockCluster;
use crate::schedule::{OpKind, ScheduleConfig, SchedulerRegistry, StoreState};

fn stores(n: u64) -> MockCluster {
    let mut c = MockCluster::new();
    for id in 1..=n {
        c.add_store(id);
    }
    c
}

fn region_counts(sim: &Sim) -> BTreeMap<u64, u64> {
    sim.cluster
        .view()
        .stores
        .values()
        .map(|s| (s.id, s.region_count))
        .collect()
}

fn leader_counts(sim: &Sim) -> BTreeMap<u64, u64> {
    sim.cluster
        .view()
        .stores
        .values()
        .map(|s| (s.id, s.leader_count))
        .collect()
}

fn spread(counts: &BTreeMap<u64, u64>) -> u64 {
    counts.values().max().copied().unwrap_or(0) - counts.values().min().copied().unwrap_or(0)
}

#[test]
fn balance_region_spreads_1000_regions_onto_new_stores() {
    let mut c = stores(5);
    c.add_regions_evenly(1000, &[1, 2, 3]);
    let mut sim = Sim::new(
        c,
        ScheduleConfig::default(),
        SchedulerRegistry::with_defaults(),
    );
    let rounds = sim.run_until_quiet(1000);
    sim.assert_replicas_healthy();
    let counts = region_counts(&sim);
    let mean = 3000 / 5;
    for (store, &n) in &counts {
        // tolerant-size-ratio 5 with equal-sized regions: 5 regions' slack.
        assert!(
            n.abs_diff(mean) <= 5,
            "store {store} holds {n}, mean {mean}: {counts:?}"
        );
    }
    let leaders = leader_counts(&sim);
    assert!(spread(&leaders) <= 10, "leaders {leaders:?}");
    // Stores 4 and 5 need ~600 replicas each: ~1,200 moves at 8 a round.
    assert!(rounds <= 250, "took {rounds} rounds");
    let moved = sim.controller.counters()[&OpKind::Region].finished;
    assert!(
        (1190..=1210).contains(&moved),
        "{moved} moves for 1,200 replicas to place"
    );
}

#[test]
fn balance_region_settles_and_then_stays_put() {
    // With tolerance 0 only the "source - size >= target + size" rule stops
    // a move that would just swap which store is bigger.
    for (ratio, max_spread) in [(5.0, 5), (0.0, 1)] {
        let mut c = stores(4);
        // 303 replicas over 4 stores: no exact balance exists, so a
        // scheduler that moved on any difference would never stop.
        c.add_regions_evenly(101, &[1, 2, 3]);
        let mut registry = SchedulerRegistry::new();
        registry.add("balance-region").expect("known");
        let cfg = ScheduleConfig {
            tolerant_size_ratio: ratio,
            ..Default::default()
        };
        let mut sim = Sim::new(c, cfg, registry);
        sim.run_until_quiet(300);
        sim.assert_replicas_healthy();
        let counts = region_counts(&sim);
        assert!(spread(&counts) <= max_spread, "ratio {ratio}: {counts:?}");
        let moves = sim.controller.counters()[&OpKind::Region].finished;
        assert!(
            moves <= 76,
            "ratio {ratio}: {moves} moves for a fair share of 75.75"
        );
        for later in 1..=3 {
            let view = sim.cluster.view();
            let now = sim.now_ms + later * 60_000;
            let report = sim
                .registry
                .run(view, &sim.cfg, &mut sim.controller, &mut sim.ids, now);
            assert_eq!(
                report.schedulers,
                vec![("balance-region".to_string(), 0, 0)]
            );
        }
    }
}

#[test]
fn balance_leader_converges_without_flapping() {
    let mut c = stores(3);
    // 301 does not divide by 3: a scheduler without tolerance would swap
    // the odd leader back and forth forever.
    for id in 1..=301 {
        c.add_region(id, b"", b"", &[1, 2, 3], 1);
    }
    let mut registry = SchedulerRegistry::new();
    registry.add("balance-leader").expect("known");
    let mut sim = Sim::new(c, ScheduleConfig::default(), registry);
    let mut previous = leader_counts(&sim);
    let mut rounds = 0;
    while sim.round() {
        rounds += 1;
        assert!(rounds < 500, "no convergence");
        let now = leader_counts(&sim);
        assert!(
            now[&1] <= previous[&1],
            "a leader came back to store 1: {previous:?} -> {now:?}"
        );
        previous = now;
    }
    let leaders = leader_counts(&sim);
    // Tolerance: ceil(leader-tolerance-ratio 0.05 × mean 100.3) = 6.
    assert!(spread(&leaders) <= 6, "leaders {leaders:?}");
    let transfers = sim.controller.counters()[&OpKind::Leader].finished;
    assert!(
        transfers <= 201,
        "{transfers} transfers to move at most 201 leaders"
    );
    let view = sim.cluster.view();
    let report = sim.registry.run(
        view,
        &sim.cfg,
        &mut sim.controller,
        &mut sim.ids,
        sim.now_ms + 1000,
    );
    assert_eq!(
        report.schedulers,
        vec![("balance-leader".to_string(), 0, 0)]
    );
}

#[test]
fn down_store_replicas_are_recreated_on_live_stores() {
    let mut c = stores(5);
    c.add_regions_evenly(500, &[1, 2, 3, 4, 5]);
    c.set_store_state(2, StoreState::Down);
    let mut sim = Sim::new(
        c,
        ScheduleConfig::default(),
        SchedulerRegistry::with_defaults(),
    );
    sim.run_until_quiet(500);
    sim.assert_replicas_healthy();
    assert_eq!(sim.cluster.view().stores[&2].region_count, 0);
    let repaired = sim.controller.counters()[&OpKind::Replica].finished;
    assert_eq!(
        repaired, 300,
        "one replace-down-peer per region that had a replica there"
    );
}

#[test]
fn offline_store_is_drained() {
    let mut c = stores(5);
    c.add_regions_evenly(500, &[1, 2, 3, 4, 5]);
    c.set_store_state(5, StoreState::Offline);
    let mut sim = Sim::new(
        c,
        ScheduleConfig::default(),
        SchedulerRegistry::with_defaults(),
    );
    sim.run_until_quiet(500);
    sim.assert_replicas_healthy();
    let drained = &sim.cluster.view().stores[&5];
    assert_eq!((drained.region_count, drained.leader_count), (0, 0));
    let counts = region_counts(&sim);
    for store in 1..=4 {
        assert!(counts[&store].abs_diff(375) <= 5, "{counts:?}");
    }
}

#[test]
fn same_inputs_give_the_same_schedule() {
    let run = || {
        let mut c = stores(6);
        c.add_regions_evenly(300, &[1, 2, 3, 4]);
        c.set_store_state(3, StoreState::Down);
        let mut sim = Sim::new(
            c,
            ScheduleConfig::default(),
            SchedulerRegistry::with_defaults(),
        );
        sim.run_until_quiet(500);
        let history: Vec<String> = sim
            .controller
            .history()
            .map(|op| format!("{op:?}"))
            .collect();
        (
            serde_json::to_string(sim.cluster.view()).expect("serializes"),
            history,
        )
    };
    assert_eq!(run(), run());
}
