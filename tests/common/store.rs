//! A `flotilla store` process for the end-to-end tests: fixed ports kept
//! across restarts, an optional crash point (`FLOTILLA_FAILPOINTS`), its
//! status pages, and a KV client.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flotilla_proto::kvrpcpb::kv_client::KvClient;
use flotilla_proto::kvrpcpb::Context;
use flotilla_proto::metapb;
use serde_json::Value;

use super::{free_port, http_get, log_sink, wait_for, BIN};

/// A store process with fixed ports (kept across restarts).
pub struct StoreProc {
    pub child: Child,
    pub dir: PathBuf,
    pub pd_port: u16,
    pub addr: u16,
    pub status: u16,
    /// Flags beyond the defaults, kept across restarts.
    pub extra: Vec<String>,
}

impl StoreProc {
    pub fn start(dir: &Path, pd_port: u16, failpoint: Option<&str>) -> StoreProc {
        StoreProc::start_with(dir, pd_port, failpoint, &[])
    }

    /// Like [`start`](Self::start), with `extra` flags (e.g. `--config`).
    pub fn start_with(
        dir: &Path,
        pd_port: u16,
        failpoint: Option<&str>,
        extra: &[String],
    ) -> StoreProc {
        let (addr, status) = (free_port(), free_port());
        let child = spawn(dir, pd_port, (addr, status), extra, failpoint);
        StoreProc {
            child,
            dir: dir.to_path_buf(),
            pd_port,
            addr,
            status,
            extra: extra.to_vec(),
        }
    }

    /// The same store again (killed first if it runs), on its data
    /// directory, ports and flags.
    pub fn restart(mut self, failpoint: Option<&str>) -> StoreProc {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let ports = (self.addr, self.status);
        self.child = spawn(&self.dir, self.pd_port, ports, &self.extra, failpoint);
        self
    }

    pub fn status_json(&self, path: &str) -> Option<Value> {
        let (code, body) = http_get(self.status, path)?;
        (code == 200).then(|| serde_json::from_str(&body).ok())?
    }

    /// The context for the region this store leads, once it leads one.
    pub fn leader_context(&self) -> Context {
        let mut ctx = None;
        wait_for(
            "the store to lead the first region",
            Duration::from_secs(30),
            || {
                ctx = self
                    .status_json("/regions")
                    .and_then(|v| leader_context(&v));
                ctx.is_some()
            },
        );
        ctx.unwrap_or_default()
    }

    pub async fn kv(&self) -> KvClient<tonic::transport::Channel> {
        KvClient::connect(format!("http://127.0.0.1:{}", self.addr))
            .await
            .expect("connect to the store")
    }

    /// Waits for the process to end on its own (a failpoint aborting it).
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the store did not exit"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        self.wait_exit()
    }
}

/// Starts `flotilla store` on `ports` (gRPC, status).
fn spawn(
    dir: &Path,
    pd_port: u16,
    (addr, status): (u16, u16),
    extra: &[String],
    failpoint: Option<&str>,
) -> Child {
    let mut cmd = Command::new(BIN);
    cmd.args(["store", "--pd", &format!("127.0.0.1:{pd_port}")])
        .args(["--addr", &format!("127.0.0.1:{addr}")])
        .args(["--status-addr", &format!("127.0.0.1:{status}")])
        .args(["--raft-tick-interval", "20ms"])
        .arg("--data-dir")
        .arg(dir)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log_sink("store", addr));
    match failpoint {
        Some(fp) => cmd.env("FLOTILLA_FAILPOINTS", fp),
        None => cmd.env_remove("FLOTILLA_FAILPOINTS"),
    };
    cmd.spawn().expect("the flotilla binary starts")
}

impl Drop for StoreProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn leader_context(regions: &Value) -> Option<Context> {
    let r = regions["regions"]
        .as_array()?
        .iter()
        .find(|r| r["is_leader"] == true)?;
    let peer_id = r["peer_id"].as_u64()?;
    let peer = r["peers"]
        .as_array()?
        .iter()
        .find(|p| p["id"].as_u64() == Some(peer_id))?;
    Some(Context {
        region_id: r["id"].as_u64()?,
        region_epoch: Some(metapb::RegionEpoch {
            conf_ver: r["epoch"]["conf_ver"].as_u64()?,
            version: r["epoch"]["version"].as_u64()?,
        }),
        peer: Some(metapb::Peer {
            id: peer_id,
            store_id: peer["store_id"].as_u64()?,
            role: 0,
        }),
        follower_read: false,
    })
}
