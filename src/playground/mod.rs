//! A local cluster on loopback: PD members and stores as child processes
//! of the `flotilla` binary, each with its own data directory and log
//! file under one root. `flotilla playground` runs one for a user; the
//! end-to-end tests and the benchmarks run the same code.
//!
//! The layout of the data root (reused by the next run):
//!
//! ```text
//! <data-dir>/pd-0/        PD member 0's data     <data-dir>/pd-0.log
//! <data-dir>/store-0/     store 0's data         <data-dir>/store-0.log
//! ```

mod node;
mod ports;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};
use flotilla_client::{Config, RawClient};
use tokio::time::Instant;

pub use node::{Node, NodeKind};
pub use ports::{free_port, PdPorts, StorePorts};

/// Most PD members a playground runs.
pub const MAX_PDS: usize = 7;
/// Most stores a playground runs (their default ports are 20160 + i and
/// 20180 + i, so more would collide).
pub const MAX_STORES: usize = 20;

/// What to start, and where.
#[derive(Clone, Debug)]
pub struct PlaygroundConfig {
    /// The `flotilla` binary to run the members and stores with.
    pub bin: PathBuf,
    /// Root of every member's and store's data and logs.
    pub data_dir: PathBuf,
    /// Each PD member's ports; their count is the number of members.
    pub pds: Vec<PdPorts>,
    /// Each store's ports; their count is the number of stores.
    pub stores: Vec<StorePorts>,
    /// Extra arguments for every store (`--region-split-size 1MiB`).
    pub store_args: Vec<String>,
    /// Extra arguments for every PD member.
    pub pd_args: Vec<String>,
    /// How long [`Playground::start`] waits for the cluster to serve.
    pub ready_timeout: Duration,
}

impl PlaygroundConfig {
    /// `pds` members and `stores` stores on the default ports (PD member
    /// `i`: 2379/2380/2381 + 100·i; store `i`: 20160 + i and 20180 + i).
    pub fn new(bin: PathBuf, data_dir: PathBuf, pds: usize, stores: usize) -> PlaygroundConfig {
        PlaygroundConfig {
            bin,
            data_dir,
            pds: (0..pds).map(PdPorts::default_for).collect(),
            stores: (0..stores).map(StorePorts::default_for).collect(),
            store_args: Vec::new(),
            pd_args: Vec::new(),
            ready_timeout: Duration::from_secs(60),
        }
    }

    /// The same cluster on free ports the OS picked (for tests, which run
    /// side by side).
    pub fn on_free_ports(mut self) -> anyhow::Result<PlaygroundConfig> {
        for p in &mut self.pds {
            *p = PdPorts::free()?;
        }
        for s in &mut self.stores {
            *s = StorePorts::free()?;
        }
        Ok(self)
    }

    fn check(&self) -> anyhow::Result<()> {
        if self.pds.is_empty() || self.pds.len() > MAX_PDS {
            bail!(
                "a playground runs 1 to {MAX_PDS} PD members, not {}",
                self.pds.len()
            );
        }
        if self.stores.is_empty() || self.stores.len() > MAX_STORES {
            bail!(
                "a playground runs 1 to {MAX_STORES} stores, not {}",
                self.stores.len()
            );
        }
        if !self.bin.exists() {
            bail!("no flotilla binary at {}", self.bin.display());
        }
        Ok(())
    }

    /// Every PD member's client endpoint (`host:port`).
    pub fn pd_endpoints(&self) -> Vec<String> {
        self.pds.iter().map(|p| p.client_addr()).collect()
    }
}

/// A running playground. Dropping it kills every process (SIGKILL);
/// [`Playground::stop`] stops them cleanly.
pub struct Playground {
    config: PlaygroundConfig,
    pds: Vec<Node>,
    stores: Vec<Node>,
}

impl Playground {
    /// Starts every PD member and store and waits until the cluster serves
    /// reads (PD elected, the first region bootstrapped and led, every
    /// store registered), or fails after `config.ready_timeout` naming the
    /// logs to read.
    pub async fn start(config: PlaygroundConfig) -> anyhow::Result<Playground> {
        config.check()?;
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating {}", config.data_dir.display()))?;
        let mut playground = Playground {
            pds: Vec::new(),
            stores: Vec::new(),
            config,
        };
        for i in 0..playground.config.pds.len() {
            let node = Node::start(&playground.config, NodeKind::Pd, i)?;
            playground.pds.push(node);
        }
        for i in 0..playground.config.stores.len() {
            let node = Node::start(&playground.config, NodeKind::Store, i)?;
            playground.stores.push(node);
        }
        playground.wait_ready().await?;
        Ok(playground)
    }

    /// The configuration it runs.
    pub fn config(&self) -> &PlaygroundConfig {
        &self.config
    }

    /// Every PD member's client endpoint.
    pub fn pd_endpoints(&self) -> Vec<String> {
        self.config.pd_endpoints()
    }

    /// PD member `i`.
    pub fn pd(&mut self, i: usize) -> &mut Node {
        &mut self.pds[i]
    }

    /// Store `i`.
    pub fn store(&mut self, i: usize) -> &mut Node {
        &mut self.stores[i]
    }

    /// A client of the cluster.
    pub async fn client(&self, config: Config) -> anyhow::Result<RawClient> {
        RawClient::connect(self.pd_endpoints(), config)
            .await
            .context("connecting to the playground's PD")
    }

    /// Waits until a client can read and PD knows every store.
    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + self.config.ready_timeout;
        let outcome = tokio::time::timeout_at(deadline, self.ready()).await;
        let problem = match outcome {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => format!("{e:#}"),
            Err(_) => format!("not serving after {:?}", self.config.ready_timeout),
        };
        let exited = self.exited();
        bail!(
            "the playground did not come up: {problem}{exited}; see the logs in {}",
            self.config.data_dir.display()
        )
    }

    async fn ready(&mut self) -> anyhow::Result<()> {
        let config = Config::builder().timeout(self.config.ready_timeout).build();
        let client = loop {
            match RawClient::connect(self.pd_endpoints(), config.clone()).await {
                Ok(c) => break c,
                Err(e) if e.is_retryable() && self.exited().is_empty() => continue,
                Err(e) => bail!("PD: {e}{}", self.exited()),
            }
        };
        client.get("").await.context("a first read")?;
        loop {
            let up = client.pd().get_all_stores(true).await?;
            if up.len() >= self.stores.len() {
                return Ok(());
            }
            if !self.exited().is_empty() {
                bail!("{}", self.exited());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// "pd-0 (exit status: 1)" for every process that exited by itself
    /// (one killed through [`Node::kill`] is not counted: it was reaped).
    pub fn exited_nodes(&mut self) -> Vec<String> {
        let nodes = self.pds.iter_mut().chain(self.stores.iter_mut());
        nodes
            .filter_map(|node| {
                let status = node.exit_status()?;
                Some(format!("{} ({status})", node.name()))
            })
            .collect()
    }

    /// ", pd-0 (exit status: 1) exited" for every process that is gone.
    fn exited(&mut self) -> String {
        self.exited_nodes()
            .iter()
            .map(|n| format!(", {n} exited"))
            .collect()
    }

    /// Stops every process cleanly (SIGTERM; SIGKILL after 10 s): the
    /// stores first, then PD.
    pub fn stop(mut self) {
        for node in self.stores.iter_mut().chain(self.pds.iter_mut()) {
            node.terminate();
        }
        for node in self.stores.iter_mut().chain(self.pds.iter_mut()) {
            node.wait_stopped(Duration::from_secs(10));
        }
    }

    /// Prints where everything listens, for a person.
    pub fn describe(&self) -> String {
        let c = &self.config;
        let pds: Vec<String> = c.pds.iter().map(|p| p.client_addr()).collect();
        let https: Vec<String> = c
            .pds
            .iter()
            .map(|p| format!("http://{}/", p.http_addr()))
            .collect();
        let stores: Vec<String> = c.stores.iter().map(|s| s.addr()).collect();
        let status: Vec<String> = c
            .stores
            .iter()
            .map(|s| format!("http://{}/metrics", s.status_addr()))
            .collect();
        format!(
            "  PD endpoints   {}\n  PD HTTP        {}  (dashboard; JSON API under /pd/api/v1; /metrics)\n  stores (gRPC)  {}\n  store status   {}\n  data and logs  {}",
            pds.join(" "),
            https.join(" "),
            stores.join(" "),
            status.join(" "),
            c.data_dir.display()
        )
    }
}
