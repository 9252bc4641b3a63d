//! Failure-domain isolation under `location-labels`.

use std::collections::BTreeSet;

use super::Sim;
use crate::schedule::mock::MockCluster;
use crate::schedule::{ScheduleConfig, SchedulerRegistry};

fn labelled(stores: &[(u64, &str, &str)]) -> MockCluster {
    let mut c = MockCluster::new();
    for &(id, zone, host) in stores {
        c.add_store_with_labels(id, &[("zone", zone), ("host", host)]);
    }
    c
}

fn cfg() -> ScheduleConfig {
    ScheduleConfig {
        location_labels: vec!["zone".into(), "host".into()],
        ..Default::default()
    }
}

/// For each region, the (zone, host) of each replica.
fn locations(sim: &Sim) -> Vec<Vec<(String, String)>> {
    let view = sim.cluster.view();
    view.regions
        .values()
        .map(|r| {
            r.peers
                .iter()
                .map(|p| {
                    let s = &view.stores[&p.store_id];
                    (s.label("zone").to_string(), s.label("host").to_string())
                })
                .collect()
        })
        .collect()
}

#[test]
fn three_zones_get_one_replica_each() {
    let mut c = labelled(&[
        (1, "z1", "h1"),
        (2, "z1", "h2"),
        (3, "z2", "h1"),
        (4, "z2", "h2"),
        (5, "z3", "h1"),
        (6, "z3", "h2"),
    ]);
    // Every region starts with two replicas in zone z1.
    c.add_regions_evenly(300, &[1, 2, 3]);
    let mut sim = Sim::new(c, cfg(), SchedulerRegistry::with_defaults());
    sim.run_until_quiet(1000);
    sim.assert_replicas_healthy();
    for (i, replicas) in locations(&sim).iter().enumerate() {
        let zones: BTreeSet<&String> = replicas.iter().map(|(zone, _)| zone).collect();
        assert_eq!(zones.len(), 3, "region {i}: {replicas:?}");
    }
    for store in sim.cluster.view().stores.values() {
        assert!(
            store.region_count.abs_diff(150) <= 5,
            "store {} holds {}",
            store.id,
            store.region_count
        );
    }
}

#[test]
fn two_zones_still_keep_replicas_off_a_shared_host() {
    let mut c = labelled(&[
        (1, "z1", "h1"),
        (2, "z1", "h1"),
        (3, "z1", "h2"),
        (4, "z2", "h1"),
        (5, "z2", "h1"),
        (6, "z2", "h2"),
    ]);
    for id in 1..=100 {
        let stores: &[u64] = if id % 2 == 0 { &[1, 2, 4] } else { &[4, 5, 1] };
        c.add_region(id, b"", b"", stores, stores[0]);
    }
    let mut sim = Sim::new(c, cfg(), SchedulerRegistry::with_defaults());
    sim.run_until_quiet(1000);
    sim.assert_replicas_healthy();
    for (i, replicas) in locations(&sim).iter().enumerate() {
        let hosts: BTreeSet<&(String, String)> = replicas.iter().collect();
        assert_eq!(hosts.len(), 3, "region {i} shares a host: {replicas:?}");
        let zones: BTreeSet<&String> = replicas.iter().map(|(zone, _)| zone).collect();
        assert_eq!(zones.len(), 2, "region {i}: {replicas:?}");
    }
}
