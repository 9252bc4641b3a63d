//! `flotilla store` command-line flags. Every flag overrides the same key
//! of the `--config` file, which overrides the defaults.

use std::path::PathBuf;

use crate::config::{parse_labels, StoreConfig};

/// Start a store.
#[derive(clap::Args, Debug, Default)]
pub struct StoreArgs {
    /// TOML configuration file (see --print-default-config).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Print the default configuration, with comments, and exit.
    #[arg(long)]
    pub print_default_config: bool,
    /// PD endpoints, comma-separated (default 127.0.0.1:2379).
    #[arg(long)]
    pub pd: Option<String>,
    /// gRPC address (default 127.0.0.1:20160).
    #[arg(long)]
    pub addr: Option<String>,
    /// Address others should use, if different.
    #[arg(long)]
    pub advertise_addr: Option<String>,
    /// HTTP status address: /metrics, /status, /regions (default 127.0.0.1:20180).
    #[arg(long)]
    pub status_addr: Option<String>,
    /// Data directory.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Location labels, e.g. zone=a,host=h1.
    #[arg(long)]
    pub labels: Option<String>,
    /// Time between Raft ticks, e.g. 100ms.
    #[arg(long)]
    pub raft_tick_interval: Option<String>,
    /// Election timeout in ticks.
    #[arg(long)]
    pub raft_election_ticks: Option<usize>,
    /// Leader heartbeat interval in ticks.
    #[arg(long)]
    pub raft_heartbeat_ticks: Option<usize>,
    /// Split regions larger than this, e.g. 96MiB.
    #[arg(long)]
    pub region_split_size: Option<String>,
}

impl StoreArgs {
    /// The configuration: defaults, then the file, then the flags.
    pub fn resolve(&self) -> Result<StoreConfig, String> {
        let mut cfg = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("reading {}: {e}", path.display()))?;
                StoreConfig::from_toml(&text)?
            }
            None => StoreConfig::default(),
        };
        if let Some(pd) = &self.pd {
            cfg.pd = pd
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect();
        }
        for (slot, flag) in [
            (&mut cfg.addr, &self.addr),
            (&mut cfg.advertise_addr, &self.advertise_addr),
            (&mut cfg.status_addr, &self.status_addr),
        ] {
            if let Some(v) = flag {
                *slot = v.clone();
            }
        }
        if let Some(d) = &self.data_dir {
            cfg.data_dir = d.clone();
        }
        if let Some(l) = &self.labels {
            cfg.labels = parse_labels(l).map_err(|e| format!("--labels: {e}"))?;
        }
        if let Some(t) = &self.raft_tick_interval {
            cfg.raft.tick_interval =
                humantime::parse_duration(t).map_err(|e| format!("--raft-tick-interval: {e}"))?;
        }
        if let Some(n) = self.raft_election_ticks {
            cfg.raft.election_ticks = n;
        }
        if let Some(n) = self.raft_heartbeat_ticks {
            cfg.raft.heartbeat_ticks = n;
        }
        if let Some(s) = &self.region_split_size {
            cfg.split.region_split_size =
                s.parse().map_err(|e| format!("--region-split-size: {e}"))?;
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

/// The default configuration as a commented TOML file.
pub fn default_toml() -> String {
    let d = StoreConfig::default();
    let dur = |x| humantime::format_duration(x).to_string();
    let size = |b: bytesize::ByteSize| exact_size(b.as_u64());
    let (r, s, sp, h) = (&d.raft, &d.snapshot, &d.split, &d.heartbeat);
    format!(
        r#"# flotilla store — default configuration. Every key is optional.

# PD endpoints (any member).
pd = ["{pd}"]
# gRPC address: the KV service, and Raft from other stores.
addr = "{addr}"
# Address others use to reach `addr`, if different (empty: the same).
advertise-addr = ""
# HTTP address: /metrics, /status, /regions.
status-addr = "{status}"
# Where the store keeps its RocksDB.
data-dir = "{data_dir}"

# Location labels, matched by PD's location-labels, e.g. zone = "a".
[labels]

[engine]
# One RocksDB block cache shared by all column families.
block-cache-size = "{block_cache}"

[raft]
# One store-wide ticker; elections after election-ticks (randomized up to
# twice that), leader heartbeats every heartbeat-ticks.
tick-interval = "{tick}"
election-ticks = {election}
heartbeat-ticks = {heartbeat}
# Largest append message, and appends in flight per follower.
max-size-per-msg = "{msg}"
max-inflight-msgs = {inflight}
# Largest Raft entry; bigger requests get RaftEntryTooLarge.
max-entry-size = "{entry}"
# Threads that drive regions with work, and threads that apply.
poller-threads = {pollers}
apply-threads = {appliers}
# A region's mailbox; when full, clients get ServerIsBusy.
mailbox-capacity = {mailbox}
# Most regions one poller round handles (one fsync per round).
max-regions-per-round = {per_round}
# Log truncation: keep this many entries behind the applied index, once
# this many more have accumulated; checked this often.
log-gc-keep-entries = {keep}
log-gc-threshold-entries = {threshold}
log-gc-interval = "{gc}"

[snapshot]
# Snapshots sent (and, separately, received) at once.
max-concurrent = {snap_n}
# Bandwidth for sending snapshots, and the chunk size on the wire.
max-bytes-per-sec = "{snap_bw}"
chunk-size = "{chunk}"

[split]
# Split a region once it is larger than this; check led regions that grew
# this often.
region-split-size = "{split}"
split-check-interval = "{split_check}"

[heartbeat]
# Store heartbeats to PD, and the slow cadence of unchanged regions'
# heartbeats (changed regions are reported at once, batched).
store-interval = "{store_hb}"
region-interval = "{region_hb}"
"#,
        pd = d.pd[0],
        addr = d.addr,
        status = d.status_addr,
        data_dir = d.data_dir.display(),
        block_cache = size(d.engine.block_cache_size),
        tick = dur(r.tick_interval),
        election = r.election_ticks,
        heartbeat = r.heartbeat_ticks,
        msg = size(r.max_size_per_msg),
        inflight = r.max_inflight_msgs,
        entry = size(r.max_entry_size),
        pollers = r.poller_threads,
        appliers = r.apply_threads,
        mailbox = r.mailbox_capacity,
        per_round = r.max_regions_per_round,
        keep = r.log_gc_keep_entries,
        threshold = r.log_gc_threshold_entries,
        gc = dur(r.log_gc_interval),
        snap_n = s.max_concurrent,
        snap_bw = size(s.max_bytes_per_sec),
        chunk = size(s.chunk_size),
        split = size(sp.region_split_size),
        split_check = dur(sp.split_check_interval),
        store_hb = dur(h.store_interval),
        region_hb = dur(h.region_interval),
    )
}

/// A byte count in the largest binary unit that divides it exactly.
fn exact_size(bytes: u64) -> String {
    for (unit, name) in [(1u64 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")] {
        if bytes >= unit && bytes % unit == 0 {
            return format!("{}{name}", bytes / unit);
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_defaults_parse_back_to_the_defaults() {
        let text = default_toml();
        assert!(text.contains("region-split-size = \"96MiB\""), "{text}");
        assert_eq!(
            StoreConfig::from_toml(&text).unwrap(),
            StoreConfig::default()
        );
    }

    #[test]
    fn sizes_print_exactly() {
        assert_eq!(exact_size(96 << 20), "96MiB");
        assert_eq!(exact_size((1 << 30) + (1 << 20)), "1025MiB");
        assert_eq!(exact_size(1500), "1500B");
        assert_eq!(exact_size(0), "0B");
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.toml");
        std::fs::write(
            &path,
            "addr = \"127.0.0.1:1\"\n[raft]\nelection-ticks = 20\n",
        )
        .unwrap();
        let args = StoreArgs {
            config: Some(path),
            addr: Some("127.0.0.1:2".into()),
            pd: Some("a:1, b:2".into()),
            labels: Some("zone=z1".into()),
            region_split_size: Some("64KiB".into()),
            ..StoreArgs::default()
        };
        let cfg = args.resolve().unwrap();
        assert_eq!(cfg.addr, "127.0.0.1:2");
        assert_eq!(cfg.raft.election_ticks, 20);
        assert_eq!(cfg.pd, vec!["a:1", "b:2"]);
        assert_eq!(cfg.labels["zone"], "z1");
        assert_eq!(cfg.split.region_split_size.as_u64(), 64 << 10);
    }

    #[test]
    fn bad_flags_name_themselves() {
        let args = StoreArgs {
            raft_tick_interval: Some("soon".into()),
            ..StoreArgs::default()
        };
        assert!(args.resolve().unwrap_err().contains("--raft-tick-interval"));
        let args = StoreArgs {
            region_split_size: Some("big".into()),
            ..StoreArgs::default()
        };
        assert!(args.resolve().unwrap_err().contains("--region-split-size"));
        let args = StoreArgs {
            labels: Some("zone".into()),
            ..StoreArgs::default()
        };
        assert!(args.resolve().unwrap_err().contains("--labels"));
    }
}
