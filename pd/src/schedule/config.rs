//! Scheduling configuration (`[schedule]` in the PD config file, and the
//! `/config/schedule` HTTP resource).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::operator::OpKind;

/// Most location labels a config may name. The distinct score weighs label
/// level `i` by `100^(levels-1-i)` in a `u64`, which stays exact up to here.
pub const MAX_LOCATION_LABELS: usize = 8;

/// Knobs of the checkers, schedulers and operator controller.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Voters every region should have.
    pub max_replicas: usize,
    /// Store label keys from the widest failure domain to the narrowest,
    /// e.g. `["zone", "host"]`. Replicas spread across them.
    pub location_labels: Vec<String>,
    /// Concurrent leader-transfer operators.
    pub leader_schedule_limit: u64,
    /// Concurrent balance (region-moving) operators.
    pub region_schedule_limit: u64,
    /// Concurrent repair operators (replica and joint checkers).
    pub replica_schedule_limit: u64,
    /// Concurrent snapshots a store may be sent by AddLearner steps. Bounds
    /// the disk and network a rebalance can take from one store.
    pub max_snapshot_count: u64,
    /// Most operators one balance scheduler proposes per pass, so one pass
    /// never acts on a view that its own operators are about to change much.
    pub scheduler_batch_size: u64,
    /// Balance regions only while two stores differ by more than this many
    /// average regions' worth of size (PD's `tolerant-size-ratio`).
    pub tolerant_size_ratio: f64,
    /// Balance leaders only while two stores' leader counts differ by more
    /// than `max(1, leader-tolerance-ratio × mean leaders per store)`.
    pub leader_tolerance_ratio: f64,
    /// A store using more than this fraction of its disk gets no new regions.
    pub low_space_ratio: f64,
    /// Silence after which a store is Down and its replicas are replaced.
    #[serde(with = "humantime_serde")]
    pub max_store_down_time: Duration,
    /// Silence after which a store is Disconnected (gets nothing new).
    #[serde(with = "humantime_serde")]
    pub store_disconnect_time: Duration,
    /// Lifetime of an operator that only moves leaders.
    #[serde(with = "humantime_serde")]
    pub leader_operator_timeout: Duration,
    /// Lifetime of an operator that moves data (snapshots take a while).
    #[serde(with = "humantime_serde")]
    pub region_operator_timeout: Duration,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            max_replicas: 3,
            location_labels: Vec::new(),
            leader_schedule_limit: 4,
            region_schedule_limit: 64,
            replica_schedule_limit: 64,
            max_snapshot_count: 64,
            scheduler_batch_size: 8,
            tolerant_size_ratio: 5.0,
            leader_tolerance_ratio: 0.05,
            low_space_ratio: 0.8,
            max_store_down_time: Duration::from_secs(30 * 60),
            store_disconnect_time: Duration::from_secs(20),
            leader_operator_timeout: Duration::from_secs(10),
            region_operator_timeout: Duration::from_secs(10 * 60),
        }
    }
}

impl ScheduleConfig {
    /// Checks the values are usable; the message names the offending key.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=7).contains(&self.max_replicas) {
            return Err(format!(
                "max-replicas must be 1..=7, got {}",
                self.max_replicas
            ));
        }
        self.validate_labels()?;
        for (key, value) in [
            ("leader-schedule-limit", self.leader_schedule_limit),
            ("region-schedule-limit", self.region_schedule_limit),
            ("replica-schedule-limit", self.replica_schedule_limit),
            ("max-snapshot-count", self.max_snapshot_count),
            ("scheduler-batch-size", self.scheduler_batch_size),
        ] {
            if value == 0 {
                return Err(format!("{key} must be > 0"));
            }
        }
        for (key, value) in [
            ("tolerant-size-ratio", self.tolerant_size_ratio),
            ("leader-tolerance-ratio", self.leader_tolerance_ratio),
        ] {
            if !value.is_finite() || value < 0.0 {
                return Err(format!("{key} must be finite and >= 0, got {value}"));
            }
        }
        if !(self.low_space_ratio > 0.0 && self.low_space_ratio <= 1.0) {
            return Err(format!(
                "low-space-ratio must be in (0, 1], got {}",
                self.low_space_ratio
            ));
        }
        self.validate_durations()
    }

    fn validate_labels(&self) -> Result<(), String> {
        if self.location_labels.len() > MAX_LOCATION_LABELS {
            return Err(format!(
                "location-labels: at most {MAX_LOCATION_LABELS} labels"
            ));
        }
        for (i, label) in self.location_labels.iter().enumerate() {
            if label.is_empty() {
                return Err("location-labels: empty label".into());
            }
            if self.location_labels[..i].contains(label) {
                return Err(format!("location-labels: {label:?} repeated"));
            }
        }
        Ok(())
    }

    fn validate_durations(&self) -> Result<(), String> {
        for (key, value) in [
            ("store-disconnect-time", self.store_disconnect_time),
            ("leader-operator-timeout", self.leader_operator_timeout),
            ("region-operator-timeout", self.region_operator_timeout),
        ] {
            if value.is_zero() {
                return Err(format!("{key} must be > 0"));
            }
        }
        if self.max_store_down_time <= self.store_disconnect_time {
            return Err("max-store-down-time must exceed store-disconnect-time".into());
        }
        Ok(())
    }

    /// Concurrent operators allowed of this kind; `None` = unlimited
    /// (admin operators: an operator asked for them explicitly). Split
    /// operators are counted on their own against `region-schedule-limit`.
    pub fn kind_limit(&self, kind: OpKind) -> Option<u64> {
        match kind {
            OpKind::Leader => Some(self.leader_schedule_limit),
            OpKind::Region => Some(self.region_schedule_limit),
            OpKind::Replica => Some(self.replica_schedule_limit),
            OpKind::Split => Some(self.region_schedule_limit),
            OpKind::Admin => None,
        }
    }

    /// How long an operator of this kind may run.
    pub fn operator_timeout(&self, kind: OpKind) -> Duration {
        match kind {
            OpKind::Leader => self.leader_operator_timeout,
            _ => self.region_operator_timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(ScheduleConfig::default().validate(), Ok(()));
    }

    #[test]
    fn reads_kebab_case_toml_and_keeps_defaults() {
        let cfg: ScheduleConfig = toml::from_str(
            "max-replicas = 5\nlocation-labels = [\"zone\", \"host\"]\n\
             max-store-down-time = \"1h\"\nleader-operator-timeout = \"500ms\"\n",
        )
        .expect("parses");
        assert_eq!(cfg.max_replicas, 5);
        assert_eq!(cfg.location_labels, vec!["zone", "host"]);
        assert_eq!(cfg.max_store_down_time, Duration::from_secs(3600));
        assert_eq!(cfg.leader_operator_timeout, Duration::from_millis(500));
        assert_eq!(cfg.region_schedule_limit, 64);
    }

    #[test]
    fn rejects_unknown_keys_and_round_trips_json() {
        assert!(toml::from_str::<ScheduleConfig>("max-replica = 3").is_err());
        let json = serde_json::to_string(&ScheduleConfig::default()).expect("serializes");
        assert!(json.contains("\"max-store-down-time\":\"30m\""), "{json}");
        let back: ScheduleConfig = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, ScheduleConfig::default());
    }

    #[test]
    fn validate_names_the_bad_key() {
        let bad = [
            ScheduleConfig {
                max_replicas: 0,
                ..Default::default()
            },
            ScheduleConfig {
                max_replicas: 8,
                ..Default::default()
            },
            ScheduleConfig {
                region_schedule_limit: 0,
                ..Default::default()
            },
            ScheduleConfig {
                tolerant_size_ratio: f64::NAN,
                ..Default::default()
            },
            ScheduleConfig {
                leader_tolerance_ratio: -1.0,
                ..Default::default()
            },
            ScheduleConfig {
                low_space_ratio: 0.0,
                ..Default::default()
            },
            ScheduleConfig {
                location_labels: vec!["a".into(), "a".into()],
                ..Default::default()
            },
            ScheduleConfig {
                max_store_down_time: Duration::from_secs(1),
                ..Default::default()
            },
        ];
        let keys = [
            "max-replicas",
            "max-replicas",
            "region-schedule-limit",
            "tolerant-size-ratio",
            "leader-tolerance-ratio",
            "low-space-ratio",
            "location-labels",
            "max-store-down-time",
        ];
        for (cfg, key) in bad.iter().zip(keys) {
            let err = cfg.validate().expect_err(key);
            assert!(err.contains(key), "{err} should name {key}");
        }
    }
}
