//! Shared harness for PD's server tests: clusters of real members on
//! loopback in temporary directories, a client that follows the leader the
//! way a store or SDK does, a tiny HTTP/1.1 client, and condition waits
//! with deadlines.
#![allow(dead_code)] // each test binary uses a different part of it

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flotilla_pd::config::{member_id, PdConfig};
use flotilla_pd::server::{PdServer, Shared};
use flotilla_proto::metapb;
use flotilla_proto::pdpb::pd_client::PdClient;
use flotilla_proto::pdpb::*;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

pub mod bad_input;
mod client;
mod fixtures;
mod http;

#[allow(unused_imports)] // each test binary uses a different part
pub use client::*;
#[allow(unused_imports)] // each test binary uses a different part
pub use fixtures::*;
#[allow(unused_imports)] // each test binary uses a different part
pub use http::*;

/// Generous deadline for anything that should happen "soon" on a loaded
/// 2-core machine.
pub const LONG: Duration = Duration::from_secs(20);

// ---- waiting ------------------------------------------------------------------

/// Polls `cond` until it holds; panics naming `what` after `timeout`.
/// Returns how long it took.
pub async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut cond: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if cond().await {
            return start.elapsed();
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// [`wait_for`] with a synchronous condition.
pub async fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    wait_for(what, timeout, || std::future::ready(cond())).await
}

// ---- clusters -----------------------------------------------------------------

/// `n` free loopback ports, never handed out twice in this process.
///
/// They come from below the kernel's ephemeral range (32768 and up on
/// Linux): a member keeps its ports across restarts, and while it is down
/// an outgoing connection could otherwise get its port as a local port and
/// make the restart fail with "address in use".
pub fn free_ports(n: usize) -> Vec<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 12_000;
    const SPAN: u32 = 20_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    // A per-process random start keeps concurrent test binaries apart.
    let seed = std::process::id().wrapping_mul(7919) % SPAN;
    let _ = NEXT.compare_exchange(u32::MAX, seed, Ordering::SeqCst, Ordering::SeqCst);
    let mut out = Vec::with_capacity(n);
    for _ in 0..SPAN {
        if out.len() == n {
            break;
        }
        let port = (LOW + NEXT.fetch_add(1, Ordering::SeqCst) % SPAN) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            out.push(port);
        }
    }
    assert_eq!(out.len(), n, "no free ports");
    out
}

/// One member's fixed identity: name and ports, kept across restarts.
#[derive(Clone, Debug)]
pub struct MemberSpec {
    pub name: String,
    pub client: u16,
    pub peer: u16,
    pub http: u16,
}

impl MemberSpec {
    fn new(name: String) -> MemberSpec {
        let p = free_ports(3);
        MemberSpec {
            name,
            client: p[0],
            peer: p[1],
            http: p[2],
        }
    }

    pub fn id(&self) -> u64 {
        member_id(&self.name)
    }

    pub fn client_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client)
    }

    pub fn http_addr(&self) -> String {
        format!("127.0.0.1:{}", self.http)
    }

    pub fn peer_addr(&self) -> String {
        format!("127.0.0.1:{}", self.peer)
    }
}

/// Short timings so elections and failovers take well under a second
/// (election timeout 500..1000 ms).
pub fn test_config(data_dir: &Path, spec: &MemberSpec, initial_cluster: &str) -> PdConfig {
    PdConfig {
        name: spec.name.clone(),
        data_dir: data_dir.join(&spec.name),
        client_addr: format!("127.0.0.1:{}", spec.client),
        peer_addr: spec.peer_addr(),
        http_addr: spec.http_addr(),
        initial_cluster: initial_cluster.to_string(),
        initial_cluster_state: "new".into(),
        tick_interval: Duration::from_millis(50),
        election_ticks: 10,
        heartbeat_ticks: 2,
        propose_timeout: Duration::from_secs(3),
        region_persist_interval: Duration::from_millis(50),
        schedule_interval: Duration::from_millis(200),
        tso_save_window: Duration::from_millis(1000),
        ..PdConfig::default()
    }
}

type Tweak = Box<dyn Fn(&mut PdConfig) + Send + Sync>;

/// PD members in one temporary directory, each startable and stoppable
/// while keeping its data directory and ports.
pub struct TestCluster {
    pub dir: tempfile::TempDir,
    pub specs: Vec<MemberSpec>,
    pub servers: Vec<Option<PdServer>>,
    /// `initial-cluster` of the founding members.
    pub initial_cluster: String,
    /// `initial-cluster-state` per member (`new` for founders).
    pub states: Vec<String>,
    /// `initial-cluster` per member.
    pub initials: Vec<String>,
    tweak: Tweak,
}

impl TestCluster {
    /// Starts `n` founding members with the test timings.
    pub async fn start(n: usize) -> TestCluster {
        TestCluster::start_with(n, |_| {}).await
    }

    /// Starts `n` founding members, each config adjusted by `tweak`.
    pub async fn start_with(
        n: usize,
        tweak: impl Fn(&mut PdConfig) + Send + Sync + 'static,
    ) -> TestCluster {
        let specs: Vec<MemberSpec> = (0..n).map(|i| MemberSpec::new(format!("pd-{i}"))).collect();
        let initial_cluster = if n == 1 {
            String::new()
        } else {
            specs
                .iter()
                .map(|s| format!("{}=127.0.0.1:{}", s.name, s.peer))
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut cluster = TestCluster {
            dir: tempfile::tempdir().expect("temp dir"),
            servers: (0..n).map(|_| None).collect(),
            states: vec!["new".into(); n],
            initials: vec![initial_cluster.clone(); n],
            specs,
            initial_cluster,
            tweak: Box::new(tweak),
        };
        for i in 0..n {
            cluster.restart(i).await;
        }
        cluster
    }

    /// The configuration member `i` starts with.
    pub fn config(&self, i: usize) -> PdConfig {
        let mut cfg = test_config(self.dir.path(), &self.specs[i], &self.initials[i]);
        cfg.initial_cluster_state = self.states[i].clone();
        (self.tweak)(&mut cfg);
        cfg
    }

    /// Adds a member that is not started yet (fresh ports); returns its
    /// index.
    pub fn add_spec(&mut self, name: &str) -> usize {
        self.specs.push(MemberSpec::new(name.to_string()));
        self.servers.push(None);
        self.states.push("existing".into());
        let all = self
            .specs
            .iter()
            .map(|s| format!("{}=127.0.0.1:{}", s.name, s.peer))
            .collect::<Vec<_>>()
            .join(",");
        self.initials.push(all);
        self.specs.len() - 1
    }

    /// Starts (or restarts) member `i` on its data directory.
    pub async fn restart(&mut self, i: usize) {
        assert!(self.servers[i].is_none(), "member {i} is running");
        let server = PdServer::start(self.config(i))
            .await
            .unwrap_or_else(|e| panic!("starting member {i}: {e:#}"));
        self.servers[i] = Some(server);
    }

    /// Stops member `i` (its data directory stays).
    pub async fn stop(&mut self, i: usize) {
        let server = self.servers[i].take().expect("member is running");
        server.stop().await;
    }

    /// Stops every running member.
    pub async fn shutdown(mut self) {
        for i in 0..self.servers.len() {
            if self.servers[i].is_some() {
                self.stop(i).await;
            }
        }
    }

    pub fn is_running(&self, i: usize) -> bool {
        self.servers[i].is_some()
    }

    pub fn shared(&self, i: usize) -> &Arc<Shared> {
        self.servers[i]
            .as_ref()
            .unwrap_or_else(|| panic!("member {i} is stopped"))
            .shared()
    }

    pub fn running(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.servers.len()).filter(|i| self.servers[*i].is_some())
    }

    /// The running member that serves as leader, if exactly one does.
    pub fn serving_leader(&self) -> Option<usize> {
        let serving: Vec<usize> = self
            .running()
            .filter(|i| self.shared(*i).serving().is_ok())
            .collect();
        (serving.len() == 1).then(|| serving[0])
    }

    /// Waits for one serving leader.
    pub async fn wait_leader(&self) -> usize {
        wait_until("a serving PD leader", LONG, || {
            self.serving_leader().is_some()
        })
        .await;
        self.serving_leader().unwrap()
    }

    /// Waits until every running member applied what the leader applied
    /// (or more) and agrees on the membership.
    pub async fn wait_caught_up(&self) {
        let start = Instant::now();
        loop {
            if let Some(l) = self.serving_leader() {
                let ls = self.shared(l).raft.status();
                let done = self.running().all(|i| {
                    let s = self.shared(i).raft.status();
                    s.applied >= ls.applied && s.conf_state == ls.conf_state
                });
                if done {
                    return;
                }
            }
            if start.elapsed() > LONG {
                let statuses: Vec<_> = self
                    .running()
                    .map(|i| (i, self.shared(i).raft.status()))
                    .collect();
                panic!("members did not catch up within {LONG:?}: {statuses:#?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until every voter published its member record with its client
    /// URL (the members' own background task does it within ~1 s), so a
    /// client can reach whichever becomes leader.
    pub async fn wait_members_published(&self) {
        wait_until("member records with client URLs", LONG, || {
            let Some(l) = self.serving_leader() else {
                return false;
            };
            let shared = self.shared(l);
            let voters = shared.raft.status().conf_state.voters;
            let Ok(list) = flotilla_pd::server::members::list(shared) else {
                return false;
            };
            voters.iter().all(|v| {
                list.iter()
                    .any(|m| m.member_id == *v && !m.client_urls.is_empty())
            })
        })
        .await;
    }

    /// Client endpoints of every member (running or not), as a client
    /// would be configured with.
    pub fn endpoints(&self) -> Vec<String> {
        self.specs.iter().map(|s| s.client_endpoint()).collect()
    }

    /// A leader-following client for this cluster.
    pub async fn client(&self) -> LeaderClient {
        LeaderClient::connect(self.endpoints()).await
    }
}
