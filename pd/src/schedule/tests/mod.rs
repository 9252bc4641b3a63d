//! Behaviour tests across the scheduling modules, driven on a
//! [`MockCluster`] the way the server would drive a real one.

mod checkers;
mod controller;
mod convergence;
mod labels;
mod registry;

use std::collections::BTreeSet;

use super::mock::{CountingIds, MockCluster};
use super::{OperatorController, Patrol, ScheduleConfig, SchedulerRegistry, StoreState};

/// A cluster, PD's scheduling state, and a clock.
pub(super) struct Sim {
    pub cluster: MockCluster,
    pub cfg: ScheduleConfig,
    pub controller: OperatorController,
    pub registry: SchedulerRegistry,
    pub patrol: Patrol,
    pub ids: CountingIds,
    pub now_ms: u64,
}

impl Sim {
    pub fn new(cluster: MockCluster, cfg: ScheduleConfig, registry: SchedulerRegistry) -> Sim {
        Sim {
            cluster,
            cfg,
            controller: OperatorController::new(),
            registry,
            patrol: Patrol::new(),
            ids: CountingIds::default(),
            now_ms: 0,
        }
    }

    fn created(&self) -> u64 {
        self.controller.counters().values().map(|c| c.created).sum()
    }

    /// One second of PD: a checker sweep over every region, a scheduler
    /// round, then one heartbeat per region with an operator, whose step the
    /// mock store carries out at once. Returns whether anything happened.
    pub fn round(&mut self) -> bool {
        self.now_ms += 1000;
        let created = self.created();
        let view = self.cluster.view();
        self.patrol.run(
            view,
            &self.cfg,
            &mut self.controller,
            &mut self.ids,
            self.now_ms,
            usize::MAX,
        );
        self.registry.run(
            view,
            &self.cfg,
            &mut self.controller,
            &mut self.ids,
            self.now_ms,
        );
        let busy: Vec<u64> = self.controller.operators().map(|op| op.region_id).collect();
        for region_id in &busy {
            let region = self.cluster.region(*region_id);
            if let Some(step) = self.controller.dispatch(&region, self.now_ms) {
                if let Err(e) = self.cluster.apply_step(*region_id, &step) {
                    panic!("region {region_id}: store refused {step}: {e}");
                }
            }
        }
        self.created() != created || !busy.is_empty()
    }

    /// Runs rounds until one changes nothing; panics after `max_rounds`.
    pub fn run_until_quiet(&mut self, max_rounds: usize) -> usize {
        for round in 1..=max_rounds {
            if !self.round() {
                return round;
            }
        }
        panic!(
            "not quiet after {max_rounds} rounds: {} operators running",
            self.controller.operators().count()
        );
    }

    /// Every region: a leader, `max_replicas` voters on distinct Up stores,
    /// no learners, not joint.
    pub fn assert_replicas_healthy(&self) {
        for region in self.cluster.view().regions.values() {
            let stores: BTreeSet<u64> = region.voters().map(|p| p.store_id).collect();
            assert_eq!(
                stores.len(),
                self.cfg.max_replicas,
                "region {} voters {:?}",
                region.id,
                region.peers
            );
            assert_eq!(
                region.peers.len(),
                self.cfg.max_replicas,
                "region {} has extra peers",
                region.id
            );
            assert!(
                !region.is_joint() && region.leader_peer().is_some(),
                "region {}",
                region.id
            );
            for store in stores {
                assert_eq!(
                    self.cluster.view().store_state(store),
                    StoreState::Up,
                    "region {}",
                    region.id
                );
            }
        }
        assert_eq!(
            self.controller
                .counters()
                .values()
                .map(|c| c.timed_out)
                .sum::<u64>(),
            0
        );
    }
}
