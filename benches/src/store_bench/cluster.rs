//! The cluster under test: one PD member (`max-replicas = 3`) and three
//! stores on loopback ports, with data directories under the benchmark's
//! temporary directory. Either separate `flotilla` processes, killed when
//! the [`Cluster`] is stopped or dropped (a panic or Ctrl-C included), or
//! servers inside this process, started as the store tests' harness does.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use flotilla_pd::config::PdConfig;
use flotilla_pd::server::PdServer;
use flotilla_store::config::StoreConfig;
use flotilla_store::server::Store;

use super::{progress, Params, REPLICAS};
use crate::http;
use crate::pd_scale::client::Pd;

/// How long PD and the stores get to start serving.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// Where one store serves.
#[derive(Clone, Debug)]
pub struct StoreAddrs {
    /// gRPC (`Kv`), `host:port`.
    pub kv: String,
    /// Status HTTP (`/regions`, `/metrics`), `host:port`.
    pub status: String,
}

/// A running PD and its stores.
pub struct Cluster {
    /// PD's gRPC address.
    pub pd_client: String,
    /// PD's HTTP address.
    pub pd_http: String,
    /// The stores, in start order.
    pub stores: Vec<StoreAddrs>,
    kind: Kind,
}

enum Kind {
    Processes(Processes),
    InProcess {
        pd: Option<PdServer>,
        stores: Vec<Store>,
    },
}

impl Cluster {
    /// Starts PD and [`REPLICAS`] stores under `dir`.
    pub async fn start(params: &Params, dir: &Path) -> anyhow::Result<Cluster> {
        let pd_client = free_addr()?;
        let pd_peer = free_addr()?;
        let pd_http = free_addr()?;
        if params.in_process {
            start_in_process(dir, pd_client, pd_peer, pd_http).await
        } else {
            Cluster::start_processes(params.flotilla_bin.as_deref(), dir, &[]).await
        }
    }

    /// Starts PD and [`REPLICAS`] stores under `dir` as `flotilla`
    /// processes of `bin` (default: the one next to this executable); the
    /// stores get `store_args` too (e.g. `--config FILE`).
    pub async fn start_processes(
        bin: Option<&Path>,
        dir: &Path,
        store_args: &[String],
    ) -> anyhow::Result<Cluster> {
        let bin = match bin {
            Some(b) => b.to_path_buf(),
            None => default_bin()?,
        };
        anyhow::ensure!(
            bin.is_file(),
            "no flotilla binary at {} (build it with `cargo build --release`, or pass --flotilla-bin)",
            bin.display()
        );
        let pd = (free_addr()?, free_addr()?, free_addr()?);
        start_processes(&bin, dir, pd, store_args).await
    }

    /// Starts one more store process (with the same flags); returns its
    /// index once it serves `/status`.
    pub async fn add_store(&mut self) -> anyhow::Result<usize> {
        let Kind::Processes(p) = &mut self.kind else {
            bail!("adding a store needs store processes");
        };
        let i = self.stores.len();
        let addrs = p.spawn_store(i, &self.pd_client)?;
        p.wait_serving(&addrs.status).await?;
        self.stores.push(addrs);
        Ok(i)
    }

    /// The stores' process IDs (none in-process).
    pub fn store_pids(&self) -> Vec<u32> {
        match &self.kind {
            Kind::Processes(p) => p.children[1..].iter().map(|c| c.child.id()).collect(),
            Kind::InProcess { .. } => Vec::new(),
        }
    }

    /// Kills (SIGKILL) stores `which` and starts them again on the same
    /// addresses and data, with `--config config` if given; returns once
    /// they serve `/status`. Processes only.
    pub async fn restart_stores(
        &mut self,
        which: &[usize],
        config: Option<&Path>,
    ) -> anyhow::Result<()> {
        let Kind::Processes(p) = &mut self.kind else {
            bail!("restarting needs store processes");
        };
        for &i in which {
            p.children[i + 1].kill();
        }
        for &i in which {
            let c = &p.children[i + 1];
            let mut args = c.args.clone();
            if let Some(config) = config {
                args.extend(["--config".to_string(), path_str(config)?.to_string()]);
            }
            let (name, log) = (c.name.clone(), c.log.clone());
            let child = p.launch(&name, &log, &args)?;
            p.children[i + 1] = child;
        }
        for &i in which {
            p.wait_serving(&self.stores[i].status).await?;
        }
        Ok(())
    }

    /// "processes (BIN)" or "in-process".
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Processes(p) => format!("processes ({})", p.bin.display()),
            Kind::InProcess { .. } => "in-process".into(),
        }
    }

    /// Processes that exited while they should have been running, with the
    /// end of their logs.
    pub fn problems(&mut self) -> Vec<String> {
        match &mut self.kind {
            Kind::Processes(p) => p.exited(),
            Kind::InProcess { .. } => Vec::new(),
        }
    }

    /// Stops everything (processes are killed).
    pub async fn stop(self) {
        match self.kind {
            Kind::Processes(p) => drop(p),
            Kind::InProcess { pd, stores } => {
                for s in stores {
                    s.stop().await;
                }
                if let Some(pd) = pd {
                    pd.stop().await;
                }
            }
        }
    }
}

async fn start_in_process(
    dir: &Path,
    pd_client: String,
    pd_peer: String,
    pd_http: String,
) -> anyhow::Result<Cluster> {
    let mut cfg = PdConfig {
        name: "pd-0".into(),
        data_dir: dir.join("pd"),
        client_addr: pd_client.clone(),
        peer_addr: pd_peer,
        http_addr: pd_http.clone(),
        ..PdConfig::default()
    };
    cfg.schedule.max_replicas = REPLICAS;
    let pd = PdServer::start(cfg).await.context("starting PD")?;
    Pd::connect(&pd_client, Some(&pd_http)).await?;
    let mut stores = Vec::new();
    let mut addrs = Vec::new();
    for i in 0..REPLICAS {
        let cfg = StoreConfig {
            pd: vec![pd_client.clone()],
            addr: "127.0.0.1:0".into(),
            status_addr: "127.0.0.1:0".into(),
            data_dir: dir.join(format!("store-{i}")),
            ..StoreConfig::default()
        };
        let store = Store::start(cfg)
            .await
            .with_context(|| format!("starting store {i}"))?;
        addrs.push(StoreAddrs {
            kv: store.addr().to_string(),
            status: store.status_addr().to_string(),
        });
        stores.push(store);
    }
    Ok(Cluster {
        pd_client,
        pd_http,
        stores: addrs,
        kind: Kind::InProcess {
            pd: Some(pd),
            stores,
        },
    })
}

async fn start_processes(
    bin: &Path,
    dir: &Path,
    (pd_client, pd_peer, pd_http): (String, String, String),
    store_args: &[String],
) -> anyhow::Result<Cluster> {
    let mut procs = Processes {
        bin: bin.to_path_buf(),
        dir: dir.to_path_buf(),
        store_args: store_args.to_vec(),
        children: Vec::new(),
    };
    let max_replicas = REPLICAS.to_string();
    let pd_dir = dir.join("pd");
    procs.spawn(
        "pd-0",
        &dir.join("pd.log"),
        &[
            "pd",
            "--name",
            "pd-0",
            "--data-dir",
            path_str(&pd_dir)?,
            "--client-addr",
            &pd_client,
            "--peer-addr",
            &pd_peer,
            "--http-addr",
            &pd_http,
            "--max-replicas",
            &max_replicas,
        ],
    )?;
    procs.wait_listening(&pd_client).await?;
    Pd::connect(&pd_client, Some(&pd_http)).await?;
    let mut addrs = Vec::new();
    for i in 0..REPLICAS {
        addrs.push(procs.spawn_store(i, &pd_client)?);
    }
    for a in &addrs {
        procs.wait_serving(&a.status).await?;
    }
    Ok(Cluster {
        pd_client,
        pd_http,
        stores: addrs,
        kind: Kind::Processes(procs),
    })
}

/// Child processes (PD first, then the stores), killed (SIGKILL) and
/// reaped on drop.
struct Processes {
    bin: PathBuf,
    /// Where data directories and logs go.
    dir: PathBuf,
    /// Flags every store gets.
    store_args: Vec<String>,
    children: Vec<Running>,
}

/// One child process and how it was started.
struct Running {
    name: String,
    log: PathBuf,
    args: Vec<String>,
    child: Child,
}

impl Running {
    /// SIGKILL, then reap.
    fn kill(&mut self) {
        if let Err(e) = self.child.kill() {
            progress(&format!(
                "killing {} (pid {}): {e}",
                self.name,
                self.child.id()
            ));
        }
        let _ = self.child.wait();
    }
}

impl Processes {
    /// Starts store `i` on fresh loopback ports.
    fn spawn_store(&mut self, i: usize, pd_client: &str) -> anyhow::Result<StoreAddrs> {
        let a = StoreAddrs {
            kv: free_addr()?,
            status: free_addr()?,
        };
        let data = self.dir.join(format!("store-{i}"));
        let mut args = vec![
            "store",
            "--pd",
            pd_client,
            "--addr",
            &a.kv,
            "--status-addr",
            &a.status,
            "--data-dir",
            path_str(&data)?,
        ];
        let extra = self.store_args.clone();
        args.extend(extra.iter().map(String::as_str));
        let log = self.dir.join(format!("store-{i}.log"));
        self.spawn(&format!("store-{i}"), &log, &args)?;
        Ok(a)
    }

    fn spawn(&mut self, name: &str, log: &Path, args: &[&str]) -> anyhow::Result<()> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let running = self.launch(name, log, &args)?;
        self.children.push(running);
        Ok(())
    }

    fn launch(&self, name: &str, log: &Path, args: &[String]) -> anyhow::Result<Running> {
        // Appending: a restarted process's log follows its earlier one.
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let child = Command::new(&self.bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| {
                format!("starting {name}: {} {}", self.bin.display(), args.join(" "))
            })?;
        progress(&format!("started {name} (pid {})", child.id()));
        Ok(Running {
            name: name.to_string(),
            log: log.to_path_buf(),
            args: args.to_vec(),
            child,
        })
    }

    /// Waits until a store answers `/status`.
    async fn wait_serving(&mut self, status_addr: &str) -> anyhow::Result<()> {
        self.wait_listening(status_addr).await?;
        let started = Instant::now();
        while let Err(e) = http::get(status_addr, "/status").await {
            self.check_alive()?;
            if started.elapsed() > START_DEADLINE {
                return Err(e.context(format!("store at {status_addr} never served /status")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Fails, with the end of its log, if some process has exited.
    fn check_alive(&mut self) -> anyhow::Result<()> {
        match self.exited().into_iter().next() {
            Some(problem) => bail!("{problem}"),
            None => Ok(()),
        }
    }

    /// One line (and log tail) per process that has exited.
    fn exited(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        for r in &mut self.children {
            if let Ok(Some(status)) = r.child.try_wait() {
                out.push(format!(
                    "{} (pid {}) exited ({status}); end of {} (kept only with --keep):\n{}",
                    r.name,
                    r.child.id(),
                    r.log.display(),
                    tail(&r.log, 20)
                ));
            }
        }
        out
    }

    /// Waits until something accepts TCP connections at `addr`.
    async fn wait_listening(&mut self, addr: &str) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(());
            }
            self.check_alive()?;
            if started.elapsed() > START_DEADLINE {
                bail!("nothing listens at {addr} after {START_DEADLINE:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        // Stores first, PD last (the reverse of start order).
        for r in self.children.iter_mut().rev() {
            r.kill();
        }
    }
}

/// The last `n` lines of a log file.
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn path_str(p: &Path) -> anyhow::Result<&str> {
    p.to_str()
        .with_context(|| format!("path is not UTF-8: {}", p.display()))
}

/// The `flotilla` binary next to this executable (or next to its parent,
/// when this runs from `deps/`).
fn default_bin() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating this executable")?;
    let dir = exe.parent().context("this executable has no directory")?;
    let mut candidates = vec![dir.join("flotilla")];
    if dir.file_name().is_some_and(|n| n == "deps") {
        if let Some(parent) = dir.parent() {
            candidates.push(parent.join("flotilla"));
        }
    }
    Ok(candidates
        .iter()
        .find(|c| c.is_file())
        .unwrap_or(&candidates[0])
        .clone())
}

/// A loopback address with a port nobody listens on right now.
fn free_addr() -> anyhow::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.to_string())
}
