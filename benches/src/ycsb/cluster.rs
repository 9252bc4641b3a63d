//! The cluster a run goes against: one named by `--pd`, or with
//! `--embedded` a local one started for the run — the playground's code
//! path (1 PD and `--stores` stores as child processes of this very
//! binary, on free loopback ports, in a temporary directory), stopped and
//! removed at the end.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use flotilla::playground::{Playground, PlaygroundConfig};
use flotilla_client::{Config, RawClient};

/// A connected client, and the embedded cluster if this run started one.
pub struct Cluster {
    /// The client every task shares.
    pub client: RawClient,
    /// What it is, for the report.
    pub description: String,
    embedded: Option<(Playground, tempfile::TempDir)>,
}

/// How to reach or start the cluster.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    /// PD endpoints of an existing cluster.
    pub pd: Vec<String>,
    /// Start a local cluster of this many stores instead.
    pub embedded_stores: Option<usize>,
    /// Parent directory of the embedded cluster's data.
    pub dir: Option<PathBuf>,
    /// Keep the embedded cluster's data and logs.
    pub keep: bool,
    /// The client's configuration.
    pub config: Config,
}

impl Cluster {
    /// Connects, starting the embedded cluster first if asked.
    pub async fn open(spec: &ClusterSpec) -> anyhow::Result<Cluster> {
        let Some(stores) = spec.embedded_stores else {
            let client = RawClient::connect(spec.pd.iter(), spec.config.clone())
                .await
                .with_context(|| format!("connecting to PD at {}", spec.pd.join(",")))?;
            return Ok(Cluster {
                client,
                description: format!("the cluster of PD {}", spec.pd.join(",")),
                embedded: None,
            });
        };
        let base = spec.dir.clone().unwrap_or_else(std::env::temp_dir);
        std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
        let dir = tempfile::Builder::new()
            .prefix("flotilla-ycsb-")
            .tempdir_in(&base)
            .with_context(|| format!("creating a directory in {}", base.display()))?;
        let bin = std::env::current_exe().context("finding this executable")?;
        let mut config =
            PlaygroundConfig::new(bin, dir.path().to_path_buf(), 1, stores).on_free_ports()?;
        config.ready_timeout = Duration::from_secs(60);
        let playground = Playground::start(config)
            .await
            .context("starting the embedded cluster")?;
        let client = playground.client(spec.config.clone()).await?;
        let description = format!(
            "an embedded cluster of 1 PD ({}) and {stores} stores",
            playground.pd_endpoints().join(",")
        );
        Ok(Cluster {
            client,
            description,
            embedded: Some((playground, dir)),
        })
    }

    /// Every store's status address (`host:port`), from PD.
    pub async fn status_addresses(&self) -> anyhow::Result<Vec<String>> {
        let stores = self
            .client
            .pd()
            .get_all_stores(true)
            .await
            .context("listing the stores")?;
        Ok(stores
            .into_iter()
            .filter_map(|s| s.store.map(|s| s.status_address))
            .filter(|a| !a.is_empty())
            .collect())
    }

    /// Stops the embedded cluster (keeping its directory if asked).
    pub fn close(self, keep: bool) {
        if let Some((playground, dir)) = self.embedded {
            playground.stop();
            if keep {
                eprintln!("flotilla-ycsb: kept {}", dir.keep().display());
            }
        }
    }
}
