//! One playground process: how it is started, signalled and restarted.

use std::fs::OpenOptions;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::PlaygroundConfig;

/// What a process is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// A PD member.
    Pd,
    /// A store.
    Store,
}

/// A PD member or store process, restartable with the same arguments.
pub struct Node {
    kind: NodeKind,
    index: usize,
    name: String,
    args: Vec<String>,
    log: std::path::PathBuf,
    bin: std::path::PathBuf,
    child: Option<Child>,
}

impl Node {
    /// Starts process `index` of `kind` as `config` describes.
    pub(super) fn start(
        config: &PlaygroundConfig,
        kind: NodeKind,
        index: usize,
    ) -> anyhow::Result<Node> {
        let name = match kind {
            NodeKind::Pd => format!("pd-{index}"),
            NodeKind::Store => format!("store-{index}"),
        };
        let args = match kind {
            NodeKind::Pd => pd_args(config, index, &name),
            NodeKind::Store => store_args(config, index, &name),
        };
        let mut node = Node {
            kind,
            index,
            log: config.data_dir.join(format!("{name}.log")),
            name,
            args,
            bin: config.bin.clone(),
            child: None,
        };
        node.spawn()?;
        Ok(node)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        let child = Command::new(&self.bin)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.name))?;
        self.child = Some(child);
        Ok(())
    }

    /// `pd-0`, `store-2`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// PD member or store.
    pub fn kind(&self) -> NodeKind {
        self.kind
    }

    /// Its index among its kind.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Its process ID while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Its log file.
    pub fn log(&self) -> &std::path::Path {
        &self.log
    }

    /// How it exited, if it has (reaping it).
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    fn signal(&self, signal: libc::c_int) {
        if let Some(pid) = self.pid() {
            // SAFETY: kill(2) has no memory effects; the PID is our child's
            // (not yet reaped, so not reused).
            unsafe {
                libc::kill(pid as libc::pid_t, signal);
            }
        }
    }

    /// SIGKILL, and reaps it: a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM: asks for a clean stop (see [`Node::wait_stopped`]).
    pub fn terminate(&mut self) {
        self.signal(libc::SIGTERM);
    }

    /// SIGSTOP: freezes it (a long GC pause, a stuck disk).
    pub fn pause(&mut self) {
        self.signal(libc::SIGSTOP);
    }

    /// SIGCONT: thaws a paused process.
    pub fn resume(&mut self) {
        self.signal(libc::SIGCONT);
    }

    /// Waits up to `timeout` for it to exit, then kills it. Returns its
    /// exit status if it exited by itself.
    pub fn wait_stopped(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                self.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts it again with the same arguments and data (killing it first
    /// if it still runs).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.spawn()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

fn pd_args(config: &PlaygroundConfig, i: usize, name: &str) -> Vec<String> {
    let me = config.pds[i];
    let initial: Vec<String> = config
        .pds
        .iter()
        .enumerate()
        .map(|(j, p)| format!("pd-{j}={}", p.peer_addr()))
        .collect();
    let mut args: Vec<String> = vec![
        "pd".into(),
        "--name".into(),
        name.into(),
        "--data-dir".into(),
        config.data_dir.join(name).display().to_string(),
        "--client-addr".into(),
        me.client_addr(),
        "--peer-addr".into(),
        me.peer_addr(),
        "--http-addr".into(),
        me.http_addr(),
        "--initial-cluster".into(),
        initial.join(","),
    ];
    if !config
        .pd_args
        .iter()
        .any(|a| a.starts_with("--max-replicas"))
    {
        let replicas = config.stores.len().min(3);
        args.extend(["--max-replicas".into(), replicas.to_string()]);
    }
    args.extend(config.pd_args.iter().cloned());
    args
}

fn store_args(config: &PlaygroundConfig, i: usize, name: &str) -> Vec<String> {
    let me = config.stores[i];
    let mut args: Vec<String> = vec![
        "store".into(),
        "--pd".into(),
        config.pd_endpoints().join(","),
        "--addr".into(),
        me.addr(),
        "--status-addr".into(),
        me.status_addr(),
        "--data-dir".into(),
        config.data_dir.join(name).display().to_string(),
    ];
    args.extend(config.store_args.iter().cloned());
    args
}
