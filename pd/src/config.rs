//! `flotilla pd` configuration: defaults, an optional TOML file
//! (`--config`), then command-line flags, in that order of precedence.
//! `--print-default-config` prints every key with its default and a
//! comment; that output parses back to the defaults (tested).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::schedule::ScheduleConfig;

/// Everything a PD member needs to start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
pub struct PdConfig {
    /// This member's name, unique in the PD cluster.
    pub name: String,
    /// Where the member keeps its RocksDB.
    pub data_dir: PathBuf,
    /// gRPC address for stores and clients.
    pub client_addr: String,
    /// Raft transport address for the other PD members.
    pub peer_addr: String,
    /// HTTP address: JSON API, `/metrics`, `/health`.
    pub http_addr: String,
    /// Address others use to reach `client-addr` (defaults to it).
    pub advertise_client_addr: String,
    /// Address others use to reach `peer-addr` (defaults to it).
    pub advertise_peer_addr: String,
    /// Address others use to reach `http-addr` (defaults to it).
    pub advertise_http_addr: String,
    /// The founding members, `name=peer-url,...`; empty means this member
    /// alone.
    pub initial_cluster: String,
    /// `new` to found a cluster, `existing` to join one this member was
    /// added to (through the members API).
    pub initial_cluster_state: String,
    /// Time between Raft ticks.
    #[serde(with = "humantime_serde")]
    pub tick_interval: Duration,
    /// Election timeout in ticks (randomized in `[n, 2n)`).
    pub election_ticks: usize,
    /// Leader heartbeat interval in ticks.
    pub heartbeat_ticks: usize,
    /// How long a write to the replicated metadata may take before the
    /// request fails with an unknown outcome.
    #[serde(with = "humantime_serde")]
    pub propose_timeout: Duration,
    /// How often changed regions are persisted (batched).
    #[serde(with = "humantime_serde")]
    pub region_persist_interval: Duration,
    /// How often the checkers and schedulers run.
    #[serde(with = "humantime_serde")]
    pub schedule_interval: Duration,
    /// How far ahead of the clock the TSO persists its upper bound.
    #[serde(with = "humantime_serde")]
    pub tso_save_window: Duration,
    /// Scheduling knobs.
    pub schedule: ScheduleConfig,
}

impl Default for PdConfig {
    fn default() -> Self {
        PdConfig {
            name: "pd".into(),
            data_dir: PathBuf::from("pd-data"),
            client_addr: "127.0.0.1:2379".into(),
            peer_addr: "127.0.0.1:2380".into(),
            http_addr: "127.0.0.1:2381".into(),
            advertise_client_addr: String::new(),
            advertise_peer_addr: String::new(),
            advertise_http_addr: String::new(),
            initial_cluster: String::new(),
            initial_cluster_state: "new".into(),
            tick_interval: Duration::from_millis(100),
            election_ticks: 10,
            heartbeat_ticks: 2,
            propose_timeout: Duration::from_secs(5),
            region_persist_interval: Duration::from_millis(100),
            schedule_interval: Duration::from_millis(500),
            tso_save_window: Duration::from_secs(3),
            schedule: ScheduleConfig::default(),
        }
    }
}

/// One founding member from `--initial-cluster`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitialMember {
    /// Its name.
    pub name: String,
    /// Its peer URL (`http://host:port`).
    pub peer_url: String,
    /// Its member ID (derived from the name).
    pub id: u64,
}

impl PdConfig {
    /// Reads a TOML file over the defaults.
    pub fn from_toml(text: &str) -> Result<PdConfig, String> {
        toml::from_str(text).map_err(|e| format!("bad PD config: {e}"))
    }

    /// The advertised client address, as a URL.
    pub fn client_url(&self) -> String {
        url(or(&self.advertise_client_addr, &self.client_addr))
    }

    /// The advertised peer address, as a URL.
    pub fn peer_url(&self) -> String {
        url(or(&self.advertise_peer_addr, &self.peer_addr))
    }

    /// The advertised HTTP address, as a URL.
    pub fn http_url(&self) -> String {
        url(or(&self.advertise_http_addr, &self.http_addr))
    }

    /// Whether this member founds a new cluster.
    pub fn is_new_cluster(&self) -> bool {
        self.initial_cluster_state == "new"
    }

    /// The founding members; this member alone when `initial-cluster` is
    /// empty.
    pub fn initial_members(&self) -> Result<Vec<InitialMember>, String> {
        if self.initial_cluster.trim().is_empty() {
            return Ok(vec![InitialMember {
                name: self.name.clone(),
                peer_url: self.peer_url(),
                id: member_id(&self.name),
            }]);
        }
        let mut members: Vec<InitialMember> = Vec::new();
        for part in self.initial_cluster.split(',').map(str::trim) {
            let (name, addr) = part
                .split_once('=')
                .ok_or_else(|| format!("initial-cluster entry {part:?} is not name=peer-url"))?;
            if name.is_empty() || addr.is_empty() {
                return Err(format!(
                    "initial-cluster entry {part:?} is not name=peer-url"
                ));
            }
            if members.iter().any(|m| m.name == name) {
                return Err(format!("initial-cluster names {name:?} twice"));
            }
            members.push(InitialMember {
                name: name.to_string(),
                peer_url: url(addr),
                id: member_id(name),
            });
        }
        if !members.iter().any(|m| m.name == self.name) {
            return Err(format!(
                "initial-cluster does not include this member ({:?})",
                self.name
            ));
        }
        Ok(members)
    }

    /// Checks every value; the message names the offending key.
    pub fn validate(&self) -> Result<(), String> {
        if self.name.is_empty() {
            return Err("name must not be empty".into());
        }
        for (key, addr) in [
            ("client-addr", &self.client_addr),
            ("peer-addr", &self.peer_addr),
            ("http-addr", &self.http_addr),
        ] {
            addr.parse::<std::net::SocketAddr>()
                .map_err(|e| format!("{key} {addr:?} is not host:port ({e})"))?;
        }
        if !matches!(self.initial_cluster_state.as_str(), "new" | "existing") {
            return Err("initial-cluster-state must be \"new\" or \"existing\"".into());
        }
        if self.tick_interval < Duration::from_millis(1) {
            return Err("tick-interval must be at least 1ms".into());
        }
        if self.heartbeat_ticks == 0 || self.election_ticks <= self.heartbeat_ticks {
            return Err("election-ticks must exceed heartbeat-ticks, which must be > 0".into());
        }
        if self.tso_save_window < Duration::from_millis(100) {
            return Err("tso-save-window must be at least 100ms".into());
        }
        for (key, d) in [
            ("propose-timeout", self.propose_timeout),
            ("region-persist-interval", self.region_persist_interval),
            ("schedule-interval", self.schedule_interval),
        ] {
            if d.is_zero() {
                return Err(format!("{key} must be positive"));
            }
        }
        self.initial_members()?;
        self.schedule.validate()
    }

    /// The default configuration as a commented TOML file.
    pub fn default_toml() -> String {
        let d = PdConfig::default();
        let s = &d.schedule;
        let dur = |d| humantime::format_duration(d).to_string();
        format!(
            r#"# flotilla pd — default configuration. Every key is optional.

# This member's name, unique in the PD cluster.
name = "{name}"
# Where this member keeps its RocksDB.
data-dir = "{data_dir}"
# gRPC address for stores and clients.
client-addr = "{client}"
# Raft transport address for the other PD members.
peer-addr = "{peer}"
# HTTP address: JSON API (/pd/api/v1/...), /metrics, /health.
http-addr = "{http}"
# Addresses others should use, when they differ from the listen addresses
# (empty: same as the listen address).
advertise-client-addr = ""
advertise-peer-addr = ""
advertise-http-addr = ""
# Founding members, "name=peer-url,...". Empty: this member alone.
initial-cluster = ""
# "new" founds a cluster; "existing" joins one this member was added to.
initial-cluster-state = "{state}"

# Raft: a tick every tick-interval; elections after election-ticks
# (randomized up to twice that), leader heartbeats every heartbeat-ticks.
tick-interval = "{tick}"
election-ticks = {election}
heartbeat-ticks = {heartbeat}
# A metadata write not applied within this fails with an unknown outcome.
propose-timeout = "{propose}"
# Changed regions are persisted in batches this often.
region-persist-interval = "{persist}"
# Checkers and schedulers run this often.
schedule-interval = "{sched}"
# The TSO persists its upper bound this far ahead of the clock.
tso-save-window = "{tso}"

[schedule]
# Voters every region should have.
max-replicas = {max_replicas}
# Store label keys, widest failure domain first, e.g. ["zone", "host"].
location-labels = []
# Concurrent operators: leader moves, balance moves, repairs.
leader-schedule-limit = {leader_limit}
region-schedule-limit = {region_limit}
replica-schedule-limit = {replica_limit}
# Concurrent snapshots one store may receive from operators.
max-snapshot-count = {snap}
# Most operators one balance scheduler proposes per pass.
scheduler-batch-size = {batch}
# Balance regions while stores differ by more than this many average
# regions' worth of size.
tolerant-size-ratio = {tolerant:?}
# Balance leaders while counts differ by more than max(1, ratio x mean).
leader-tolerance-ratio = {leader_tol:?}
# A store using more than this fraction of its disk gets no new regions.
low-space-ratio = {low_space:?}
# Silence after which a store is Down and its replicas are replaced.
max-store-down-time = "{down}"
# Silence after which a store is Disconnected and gets nothing new.
store-disconnect-time = "{disconnect}"
# Lifetimes of operators that move leaders / move data.
leader-operator-timeout = "{leader_to}"
region-operator-timeout = "{region_to}"
"#,
            name = d.name,
            data_dir = d.data_dir.display(),
            client = d.client_addr,
            peer = d.peer_addr,
            http = d.http_addr,
            state = d.initial_cluster_state,
            tick = dur(d.tick_interval),
            election = d.election_ticks,
            heartbeat = d.heartbeat_ticks,
            propose = dur(d.propose_timeout),
            persist = dur(d.region_persist_interval),
            sched = dur(d.schedule_interval),
            tso = dur(d.tso_save_window),
            max_replicas = s.max_replicas,
            leader_limit = s.leader_schedule_limit,
            region_limit = s.region_schedule_limit,
            replica_limit = s.replica_schedule_limit,
            snap = s.max_snapshot_count,
            batch = s.scheduler_batch_size,
            tolerant = s.tolerant_size_ratio,
            leader_tol = s.leader_tolerance_ratio,
            low_space = s.low_space_ratio,
            down = dur(s.max_store_down_time),
            disconnect = dur(s.store_disconnect_time),
            leader_to = dur(s.leader_operator_timeout),
            region_to = dur(s.region_operator_timeout),
        )
    }
}

fn or<'a>(preferred: &'a str, fallback: &'a str) -> &'a str {
    if preferred.is_empty() {
        fallback
    } else {
        preferred
    }
}

/// `host:port` → `http://host:port`; URLs pass through.
pub fn url(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

/// A member's ID: a stable 64-bit FNV-1a hash of its name, so every
/// founding member derives the same IDs from `initial-cluster` without
/// talking. Never 0 (raftcore's "no peer").
pub fn member_id(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_defaults_parse_back_to_the_defaults() {
        let parsed = PdConfig::from_toml(&PdConfig::default_toml()).unwrap();
        assert_eq!(parsed, PdConfig::default());
        PdConfig::default().validate().unwrap();
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = PdConfig::from_toml("nmae = \"x\"").unwrap_err();
        assert!(err.contains("nmae"), "{err}");
    }

    #[test]
    fn initial_cluster_parses_and_checks() {
        let mut cfg = PdConfig {
            name: "b".into(),
            initial_cluster: "a=127.0.0.1:1,b=http://127.0.0.1:2".into(),
            ..PdConfig::default()
        };
        let members = cfg.initial_members().unwrap();
        assert_eq!(members[0].peer_url, "http://127.0.0.1:1");
        assert_eq!(members[1].id, member_id("b"));
        cfg.name = "c".into();
        assert!(cfg.validate().unwrap_err().contains("does not include"));
        cfg.initial_cluster = "c=x,c=y".into();
        assert!(cfg.validate().unwrap_err().contains("twice"));
    }

    #[test]
    fn bad_values_name_their_key() {
        let cfg = PdConfig {
            client_addr: "nowhere".into(),
            ..PdConfig::default()
        };
        assert!(cfg.validate().unwrap_err().contains("client-addr"));
        let cfg = PdConfig {
            election_ticks: 1,
            ..PdConfig::default()
        };
        assert!(cfg.validate().unwrap_err().contains("election-ticks"));
    }
}
