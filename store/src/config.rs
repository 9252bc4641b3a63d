//! `flotilla store` configuration: defaults, an optional TOML file, then
//! flags. Durations are written like `"100ms"` or `"10m"`, sizes like
//! `"96MiB"`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

/// Everything a store needs to start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
pub struct StoreConfig {
    /// PD endpoints (`host:port`), any member.
    pub pd: Vec<String>,
    /// gRPC address: the KV service and Raft from other stores.
    pub addr: String,
    /// Address others use to reach `addr` (defaults to it).
    pub advertise_addr: String,
    /// HTTP address: `/metrics`, `/status`, `/regions`.
    pub status_addr: String,
    /// Where the store keeps its RocksDB.
    pub data_dir: PathBuf,
    /// Location labels, e.g. `zone = "a"`, `host = "h1"`.
    pub labels: BTreeMap<String, String>,
    /// The store's RocksDB.
    pub engine: EngineConfig,
    /// Raft and the multi-Raft driver.
    pub raft: RaftConfig,
    /// Snapshot transfer.
    pub snapshot: SnapshotConfig,
    /// Region splitting.
    pub split: SplitConfig,
    /// Heartbeats to PD.
    pub heartbeat: HeartbeatConfig,
}

/// The store's RocksDB.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
pub struct EngineConfig {
    /// One LRU cache of table blocks shared by every column family. Reads
    /// that miss it copy and checksum blocks from the OS page cache.
    pub block_cache_size: ByteSize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            block_cache_size: ByteSize::mib(512),
        }
    }
}

/// Raft and the multi-Raft driver.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
pub struct RaftConfig {
    /// Time between ticks of every region (one store-wide ticker).
    #[serde(with = "humantime_serde")]
    pub tick_interval: Duration,
    /// Election timeout, in ticks (randomized in `[n, 2n)`).
    pub election_ticks: usize,
    /// Leader heartbeat interval, in ticks.
    pub heartbeat_ticks: usize,
    /// Largest append message.
    pub max_size_per_msg: ByteSize,
    /// Appends in flight per follower.
    pub max_inflight_msgs: usize,
    /// Largest Raft entry (a bigger request gets `RaftEntryTooLarge`).
    pub max_entry_size: ByteSize,
    /// Poller threads (the regions with work are spread over them).
    pub poller_threads: usize,
    /// Apply threads.
    pub apply_threads: usize,
    /// Messages a region's mailbox holds before senders get `ServerIsBusy`.
    pub mailbox_capacity: usize,
    /// Most regions one poller round handles.
    pub max_regions_per_round: usize,
    /// Log entries kept behind the applied index when the log is truncated.
    pub log_gc_keep_entries: u64,
    /// Truncate once this many applied entries beyond the kept ones exist.
    pub log_gc_threshold_entries: u64,
    /// How often log truncation is considered.
    #[serde(with = "humantime_serde")]
    pub log_gc_interval: Duration,
    /// Idle regions stop ticking and heartbeating (after an election
    /// timeout with nothing to do) until a request or message arrives.
    pub hibernate_regions: bool,
}

/// Snapshot transfer limits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
pub struct SnapshotConfig {
    /// Snapshots sent (and, separately, received) at once.
    pub max_concurrent: usize,
    /// Bandwidth for sending snapshots.
    pub max_bytes_per_sec: ByteSize,
    /// Chunk size on the wire.
    pub chunk_size: ByteSize,
}

/// Region splitting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
pub struct SplitConfig {
    /// A region is split once it is larger than this.
    pub region_split_size: ByteSize,
    /// How often led regions that grew are size-checked.
    #[serde(with = "humantime_serde")]
    pub split_check_interval: Duration,
}

/// Heartbeats to PD.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
pub struct HeartbeatConfig {
    /// Store heartbeat interval.
    #[serde(with = "humantime_serde")]
    pub store_interval: Duration,
    /// Regions that did not change are heartbeated at this slow cadence;
    /// changed ones at once (batched).
    #[serde(with = "humantime_serde")]
    pub region_interval: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            pd: vec!["127.0.0.1:2379".into()],
            addr: "127.0.0.1:20160".into(),
            advertise_addr: String::new(),
            status_addr: "127.0.0.1:20180".into(),
            data_dir: PathBuf::from("store-data"),
            labels: BTreeMap::new(),
            engine: EngineConfig::default(),
            raft: RaftConfig::default(),
            snapshot: SnapshotConfig::default(),
            split: SplitConfig::default(),
            heartbeat: HeartbeatConfig::default(),
        }
    }
}

impl Default for RaftConfig {
    fn default() -> Self {
        RaftConfig {
            tick_interval: Duration::from_millis(100),
            election_ticks: 10,
            heartbeat_ticks: 2,
            max_size_per_msg: ByteSize::mib(1),
            max_inflight_msgs: 256,
            // Above the 32 MiB batch limit, so a legal batch always fits.
            max_entry_size: ByteSize::mib(40),
            poller_threads: 2,
            apply_threads: 1,
            mailbox_capacity: 4096,
            max_regions_per_round: 256,
            log_gc_keep_entries: 1000,
            log_gc_threshold_entries: 5000,
            log_gc_interval: Duration::from_secs(1),
            hibernate_regions: true,
        }
    }
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        SnapshotConfig {
            max_concurrent: 4,
            max_bytes_per_sec: ByteSize::mib(100),
            chunk_size: ByteSize::mib(1),
        }
    }
}

impl Default for SplitConfig {
    fn default() -> Self {
        SplitConfig {
            region_split_size: ByteSize::mib(96),
            split_check_interval: Duration::from_secs(10),
        }
    }
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        HeartbeatConfig {
            store_interval: Duration::from_secs(10),
            region_interval: Duration::from_secs(60),
        }
    }
}

impl StoreConfig {
    /// Reads a TOML file over the defaults.
    pub fn from_toml(text: &str) -> Result<StoreConfig, String> {
        toml::from_str(text).map_err(|e| format!("bad store config: {e}"))
    }

    /// The configuration as TOML (every key).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// Checks every value; the message names the offending key.
    pub fn validate(&self) -> Result<(), String> {
        if self.pd.is_empty() {
            return Err("pd needs at least one endpoint".into());
        }
        for (key, addr) in [("addr", &self.addr), ("status-addr", &self.status_addr)] {
            addr.parse::<std::net::SocketAddr>()
                .map_err(|e| format!("{key} {addr:?} is not host:port ({e})"))?;
        }
        for (k, v) in &self.labels {
            let ok = |s: &str| !s.is_empty() && s.len() <= 128 && !s.contains(['=', ',']);
            if !ok(k) || !ok(v) {
                return Err(format!("label {k:?}={v:?}: 1 to 128 bytes, no '=' or ','"));
            }
        }
        if self.engine.block_cache_size.as_u64() < (1 << 20) {
            return Err("engine.block-cache-size must be at least 1MiB".into());
        }
        let r = &self.raft;
        if r.tick_interval < Duration::from_millis(1) {
            return Err("raft.tick-interval must be at least 1ms".into());
        }
        if r.heartbeat_ticks == 0 || r.election_ticks <= r.heartbeat_ticks {
            return Err(
                "raft.election-ticks must exceed raft.heartbeat-ticks, which must be > 0".into(),
            );
        }
        for (key, n) in [
            ("raft.poller-threads", r.poller_threads),
            ("raft.apply-threads", r.apply_threads),
            ("raft.mailbox-capacity", r.mailbox_capacity),
            ("raft.max-regions-per-round", r.max_regions_per_round),
            ("raft.max-inflight-msgs", r.max_inflight_msgs),
            ("snapshot.max-concurrent", self.snapshot.max_concurrent),
        ] {
            if n == 0 {
                return Err(format!("{key} must be positive"));
            }
        }
        if r.max_entry_size.as_u64() < (32 << 20) + (1 << 20) {
            return Err("raft.max-entry-size must exceed the 32 MiB batch limit".into());
        }
        if self.snapshot.chunk_size.as_u64() == 0 || self.snapshot.max_bytes_per_sec.as_u64() == 0 {
            return Err(
                "snapshot.chunk-size and snapshot.max-bytes-per-sec must be positive".into(),
            );
        }
        if self.split.region_split_size.as_u64() < 1024 {
            return Err("split.region-split-size must be at least 1KiB".into());
        }
        Ok(())
    }
}

/// Parses `zone=a,host=h1` into labels.
pub fn parse_labels(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut labels = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("label {part:?} is not key=value"))?;
        if labels
            .insert(k.trim().to_string(), v.trim().to_string())
            .is_some()
        {
            return Err(format!("label {k:?} given twice"));
        }
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_round_trip_through_toml() {
        let d = StoreConfig::default();
        d.validate().unwrap();
        assert_eq!(StoreConfig::from_toml(&d.to_toml()).unwrap(), d);
    }

    #[test]
    fn human_units_parse() {
        let cfg = StoreConfig::from_toml(
            "[raft]\ntick-interval = \"50ms\"\n[split]\nregion-split-size = \"64KiB\"\n[labels]\nzone = \"a\"\n",
        )
        .unwrap();
        assert_eq!(cfg.raft.tick_interval, Duration::from_millis(50));
        assert_eq!(cfg.split.region_split_size.as_u64(), 64 << 10);
        assert_eq!(cfg.labels["zone"], "a");
        cfg.validate().unwrap();
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(StoreConfig::from_toml("adr = \"x\"")
            .unwrap_err()
            .contains("adr"));
        assert!(StoreConfig::from_toml("[raft]\ntick-interval = \"soon\"").is_err());
        let cfg = StoreConfig {
            addr: "nowhere".into(),
            ..StoreConfig::default()
        };
        assert!(cfg.validate().unwrap_err().contains("addr"));
        let mut cfg = StoreConfig::default();
        cfg.raft.poller_threads = 0;
        assert!(cfg.validate().unwrap_err().contains("poller-threads"));
        let mut cfg = StoreConfig::default();
        cfg.engine.block_cache_size = bytesize::ByteSize::kib(4);
        assert!(cfg.validate().unwrap_err().contains("block-cache-size"));
        let cfg = StoreConfig::from_toml("[engine]\nblock-cache-size = \"64MiB\"").unwrap();
        assert_eq!(cfg.engine.block_cache_size, bytesize::ByteSize::mib(64));
    }

    #[test]
    fn labels_parse_from_flags() {
        let labels = parse_labels("zone=a, host=h1").unwrap();
        assert_eq!(labels.len(), 2);
        assert!(parse_labels("zone").is_err());
        assert!(parse_labels("zone=a,zone=b").is_err());
    }
}
