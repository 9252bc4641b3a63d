//! One scheduling pass: refresh store states, expire operators, run the
//! checkers (a batch of regions per pass) and the balance schedulers, and
//! turn the operators they start into commands for the regions' leaders.

use std::collections::BTreeSet;

use flotilla_proto::{metapb, pdpb};

use super::{convert, Cluster};
use crate::schedule::IdSource;

/// Regions the checkers look at per pass; a full sweep of 100,000 regions
/// takes ten passes.
const PATROL_BATCH: usize = 10_000;

/// What a pass produced for the server to carry out.
#[derive(Default)]
pub struct PassReport {
    /// First steps of new operators, by the store leading the region.
    pub commands: Vec<(u64, pdpb::RegionCommand)>,
    /// Drained offline stores to persist as tombstones.
    pub tombstones: Vec<metapb::Store>,
    /// Operators that timed out this pass.
    pub timed_out: usize,
}

impl Cluster {
    /// Runs one pass at `now_ms`, drawing new peer IDs from `ids`.
    pub fn schedule_pass(&mut self, ids: &mut dyn IdSource, now_ms: u64) -> PassReport {
        self.refresh_store_states(now_ms);
        let mut report = PassReport {
            timed_out: self.controller.check_timeouts(now_ms).len(),
            ..PassReport::default()
        };
        if !self.is_bootstrapped() {
            return report;
        }
        let before: BTreeSet<u64> = self.controller.operators().map(|op| op.region_id).collect();
        let cfg = self.schedule_config.clone();
        self.patrol.run(
            &self.view,
            &cfg,
            &mut self.controller,
            ids,
            now_ms,
            PATROL_BATCH,
        );
        self.registry
            .run(&self.view, &cfg, &mut self.controller, ids, now_ms);
        let started: Vec<u64> = self
            .controller
            .operators()
            .map(|op| op.region_id)
            .filter(|id| !before.contains(id))
            .collect();
        for region_id in started {
            if let Some(command) = self.first_command(region_id, now_ms) {
                report.commands.push(command);
            }
        }
        report.tombstones = self.drained_offline_stores();
        report
    }

    /// The step an operator wants sent now, addressed to the region's
    /// leader store (used for new operators and manual ones).
    pub fn first_command(
        &mut self,
        region_id: u64,
        now_ms: u64,
    ) -> Option<(u64, pdpb::RegionCommand)> {
        let region = self.view.region(region_id)?.clone();
        let leader_store = region.leader_store()?;
        let step = self.controller.dispatch(&region, now_ms)?;
        let op = self.controller.get(region_id)?;
        Some((leader_store, convert::step_to_command(&region, op, &step)))
    }
}
