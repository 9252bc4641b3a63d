//! The set of active schedulers, their pause state, and one scheduling
//! round over all of them.

use serde::Serialize;

use super::{create_scheduler, Scheduler, KNOWN_SCHEDULERS};
use crate::schedule::context::ScheduleContext;
use crate::schedule::controller::OperatorController;
use crate::schedule::view::ClusterView;
use crate::schedule::{IdSource, ScheduleConfig};

/// What went wrong with a registry request; the message is for the API
/// caller, who fixes the name and retries.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// No scheduler of that name exists.
    #[error("unknown scheduler {0:?} (known: balance-leader, balance-region)")]
    Unknown(String),
    /// It is already running.
    #[error("scheduler {0:?} is already added")]
    AlreadyAdded(String),
    /// It is not in the registry.
    #[error("scheduler {0:?} is not added")]
    NotAdded(String),
}

/// A scheduler as the API lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct SchedulerStatus {
    /// Registry name.
    pub name: String,
    /// PD clock until which it is paused; absent when it runs.
    pub paused_until_ms: Option<u64>,
}

/// What one [`SchedulerRegistry::run`] did, per scheduler in registry order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct RunReport {
    /// `(name, proposed, admitted)` for each scheduler that ran.
    pub schedulers: Vec<(String, u64, u64)>,
}

#[derive(Debug)]
struct Entry {
    scheduler: Box<dyn Scheduler>,
    paused_until_ms: Option<u64>,
}

/// Active schedulers in the order they were added (that order is the order
/// they run in, and so who gets a shared limit's room first).
#[derive(Debug, Default)]
pub struct SchedulerRegistry {
    entries: Vec<Entry>,
}

impl SchedulerRegistry {
    /// No schedulers.
    pub fn new() -> SchedulerRegistry {
        SchedulerRegistry::default()
    }

    /// balance-leader and balance-region, as PD starts by default.
    pub fn with_defaults() -> SchedulerRegistry {
        let mut registry = SchedulerRegistry::new();
        for name in KNOWN_SCHEDULERS {
            // Known names always build and cannot be present yet.
            let _ = registry.add(name);
        }
        registry
    }

    /// Adds the scheduler called `name`.
    pub fn add(&mut self, name: &str) -> Result<(), RegistryError> {
        if self.position(name).is_some() {
            return Err(RegistryError::AlreadyAdded(name.into()));
        }
        let scheduler =
            create_scheduler(name).ok_or_else(|| RegistryError::Unknown(name.into()))?;
        self.entries.push(Entry {
            scheduler,
            paused_until_ms: None,
        });
        Ok(())
    }

    /// Removes the scheduler called `name`.
    pub fn remove(&mut self, name: &str) -> Result<(), RegistryError> {
        let at = self
            .position(name)
            .ok_or_else(|| RegistryError::NotAdded(name.into()))?;
        self.entries.remove(at);
        Ok(())
    }

    /// Pauses `name` until `now_ms + for_ms`.
    pub fn pause(&mut self, name: &str, for_ms: u64, now_ms: u64) -> Result<(), RegistryError> {
        let at = self
            .position(name)
            .ok_or_else(|| RegistryError::NotAdded(name.into()))?;
        self.entries[at].paused_until_ms = Some(now_ms.saturating_add(for_ms));
        Ok(())
    }

    /// Resumes `name` now.
    pub fn resume(&mut self, name: &str) -> Result<(), RegistryError> {
        let at = self
            .position(name)
            .ok_or_else(|| RegistryError::NotAdded(name.into()))?;
        self.entries[at].paused_until_ms = None;
        Ok(())
    }

    /// Schedulers in run order; a pause that has expired shows as running.
    pub fn list(&self, now_ms: u64) -> Vec<SchedulerStatus> {
        self.entries
            .iter()
            .map(|e| SchedulerStatus {
                name: e.scheduler.name().to_string(),
                paused_until_ms: e.paused_until_ms.filter(|&until| until > now_ms),
            })
            .collect()
    }

    /// Runs every unpaused scheduler once, in order, handing its operators
    /// to `controller` (which may still refuse some, e.g. on a snapshot
    /// limit). Each scheduler sees the operators admitted before it.
    pub fn run(
        &mut self,
        view: &ClusterView,
        cfg: &ScheduleConfig,
        controller: &mut OperatorController,
        ids: &mut dyn IdSource,
        now_ms: u64,
    ) -> RunReport {
        let mut report = RunReport::default();
        for entry in &mut self.entries {
            if entry.paused_until_ms.is_some_and(|until| until > now_ms) {
                continue;
            }
            entry.paused_until_ms = None;
            let ops = {
                let mut ctx = ScheduleContext::new(view, cfg, controller, now_ms);
                entry.scheduler.schedule(&mut ctx, ids)
            };
            let proposed = ops.len() as u64;
            let admitted = ops
                .into_iter()
                .map(|op| controller.add(op, view, cfg, now_ms))
                .filter(Result::is_ok)
                .count() as u64;
            report
                .schedulers
                .push((entry.scheduler.name().to_string(), proposed, admitted));
        }
        report
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.entries.iter().position(|e| e.scheduler.name() == name)
    }
}
