//! `flotilla pd` command-line flags. Every flag overrides the same key of
//! the `--config` file, which overrides the defaults.

use std::path::PathBuf;

use crate::config::PdConfig;

/// Start a placement driver (PD) member.
#[derive(clap::Args, Debug, Default)]
pub struct PdArgs {
    /// TOML configuration file (see --print-default-config).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Print the default configuration, with comments, and exit.
    #[arg(long)]
    pub print_default_config: bool,
    /// This member's name, unique in the PD cluster.
    #[arg(long)]
    pub name: Option<String>,
    /// Data directory.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// gRPC address for stores and clients (default 127.0.0.1:2379).
    #[arg(long)]
    pub client_addr: Option<String>,
    /// Raft transport address for the other members (default 127.0.0.1:2380).
    #[arg(long)]
    pub peer_addr: Option<String>,
    /// HTTP API, dashboard and /metrics address (default 127.0.0.1:2381).
    #[arg(long)]
    pub http_addr: Option<String>,
    /// Client address others should use, if different.
    #[arg(long)]
    pub advertise_client_addr: Option<String>,
    /// Peer address others should use, if different.
    #[arg(long)]
    pub advertise_peer_addr: Option<String>,
    /// HTTP address others should use, if different.
    #[arg(long)]
    pub advertise_http_addr: Option<String>,
    /// Founding members: name=peer-url,... (empty: this member alone).
    #[arg(long)]
    pub initial_cluster: Option<String>,
    /// "new" to found a cluster, "existing" to join one.
    #[arg(long)]
    pub initial_cluster_state: Option<String>,
    /// Voters per region.
    #[arg(long)]
    pub max_replicas: Option<usize>,
    /// Store label keys, widest first, comma-separated (e.g. zone,host).
    #[arg(long)]
    pub location_labels: Option<String>,
    /// Silence after which a store is Down, e.g. 30m.
    #[arg(long)]
    pub max_store_down_time: Option<String>,
    /// Silence after which a store is Disconnected, e.g. 20s.
    #[arg(long)]
    pub store_disconnect_time: Option<String>,
    /// Concurrent leader-transfer operators.
    #[arg(long)]
    pub leader_schedule_limit: Option<u64>,
    /// Concurrent balance operators.
    #[arg(long)]
    pub region_schedule_limit: Option<u64>,
    /// Concurrent repair operators.
    #[arg(long)]
    pub replica_schedule_limit: Option<u64>,
    /// How often schedulers run, e.g. 500ms.
    #[arg(long)]
    pub schedule_interval: Option<String>,
}

impl PdArgs {
    /// The configuration: defaults, then the file, then the flags.
    pub fn resolve(&self) -> Result<PdConfig, String> {
        let mut cfg = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("reading {}: {e}", path.display()))?;
                PdConfig::from_toml(&text)?
            }
            None => PdConfig::default(),
        };
        let set = |slot: &mut String, v: &Option<String>| {
            if let Some(v) = v {
                *slot = v.clone();
            }
        };
        set(&mut cfg.name, &self.name);
        set(&mut cfg.client_addr, &self.client_addr);
        set(&mut cfg.peer_addr, &self.peer_addr);
        set(&mut cfg.http_addr, &self.http_addr);
        set(&mut cfg.advertise_client_addr, &self.advertise_client_addr);
        set(&mut cfg.advertise_peer_addr, &self.advertise_peer_addr);
        set(&mut cfg.advertise_http_addr, &self.advertise_http_addr);
        set(&mut cfg.initial_cluster, &self.initial_cluster);
        set(&mut cfg.initial_cluster_state, &self.initial_cluster_state);
        if let Some(d) = &self.data_dir {
            cfg.data_dir = d.clone();
        }
        let s = &mut cfg.schedule;
        if let Some(v) = self.max_replicas {
            s.max_replicas = v;
        }
        if let Some(v) = &self.location_labels {
            s.location_labels = v
                .split(',')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect();
        }
        let dur =
            |v: &str, key: &str| humantime::parse_duration(v).map_err(|e| format!("--{key}: {e}"));
        if let Some(v) = &self.max_store_down_time {
            s.max_store_down_time = dur(v, "max-store-down-time")?;
        }
        if let Some(v) = &self.store_disconnect_time {
            s.store_disconnect_time = dur(v, "store-disconnect-time")?;
        }
        if let Some(v) = self.leader_schedule_limit {
            s.leader_schedule_limit = v;
        }
        if let Some(v) = self.region_schedule_limit {
            s.region_schedule_limit = v;
        }
        if let Some(v) = self.replica_schedule_limit {
            s.replica_schedule_limit = v;
        }
        if let Some(v) = &self.schedule_interval {
            cfg.schedule_interval = dur(v, "schedule-interval")?;
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pd.toml");
        std::fs::write(
            &path,
            "name = \"from-file\"\n[schedule]\nmax-replicas = 5\n",
        )
        .unwrap();
        let args = PdArgs {
            config: Some(path),
            name: Some("from-flag".into()),
            max_store_down_time: Some("90s".into()),
            ..PdArgs::default()
        };
        let cfg = args.resolve().unwrap();
        assert_eq!(cfg.name, "from-flag");
        assert_eq!(cfg.schedule.max_replicas, 5);
        assert_eq!(
            cfg.schedule.max_store_down_time,
            std::time::Duration::from_secs(90)
        );
    }

    #[test]
    fn bad_flags_are_reported() {
        let args = PdArgs {
            max_store_down_time: Some("soon".into()),
            ..PdArgs::default()
        };
        assert!(args.resolve().unwrap_err().contains("max-store-down-time"));
        let args = PdArgs {
            max_replicas: Some(0),
            ..PdArgs::default()
        };
        assert!(args.resolve().is_err());
    }
}
