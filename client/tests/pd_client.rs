//! The PD client against real PD members running in this process: leader
//! routing, failover, typed errors, deadlines, TSO and the heartbeat stream.

use std::future::Future;
use std::time::{Duration, Instant};

use flotilla_client::pd::{PdClient, PdClientConfig, PdError};
use flotilla_pd::config::PdConfig;
use flotilla_pd::server::PdServer;
use flotilla_proto::metapb;
use flotilla_proto::pdpb;

/// Generous deadline for anything that should happen "soon" on a loaded
/// 2-core machine.
const LONG: Duration = Duration::from_secs(30);

// ---- harness ----------------------------------------------------------------------

/// `n` free loopback ports below the ephemeral range (as PD's own tests
/// pick them): a stopped member's port is never taken by an outgoing
/// connection.
fn free_ports(n: usize) -> Vec<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 12_000;
    const SPAN: u32 = 20_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    // A per-process start keeps concurrent test binaries apart (offset from
    // PD's tests, which use the same scheme).
    let seed = std::process::id().wrapping_mul(104_729) % SPAN;
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

async fn wait_for<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !cond().await {
        assert!(start.elapsed() < LONG, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// PD members on loopback in one temporary directory.
struct Cluster {
    _dir: tempfile::TempDir,
    endpoints: Vec<String>,
    servers: Vec<Option<PdServer>>,
}

impl Cluster {
    /// Starts `n` members with short timings (failover well under 2 s) and
    /// waits for a serving leader and every member's published address.
    async fn start(n: usize) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let ports: Vec<Vec<u16>> = (0..n).map(|_| free_ports(3)).collect();
        let initial = if n == 1 {
            String::new()
        } else {
            (0..n)
                .map(|i| format!("pd-{i}=127.0.0.1:{}", ports[i][1]))
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut servers = Vec::new();
        for (i, p) in ports.iter().enumerate() {
            let cfg = PdConfig {
                name: format!("pd-{i}"),
                data_dir: dir.path().join(format!("pd-{i}")),
                client_addr: format!("127.0.0.1:{}", p[0]),
                peer_addr: format!("127.0.0.1:{}", p[1]),
                http_addr: format!("127.0.0.1:{}", p[2]),
                initial_cluster: initial.clone(),
                tick_interval: Duration::from_millis(50),
                election_ticks: 10,
                ..PdConfig::default()
            };
            servers.push(Some(PdServer::start(cfg).await.expect("start PD member")));
        }
        let endpoints = ports
            .iter()
            .map(|p| format!("127.0.0.1:{}", p[0]))
            .collect();
        let cluster = Cluster {
            _dir: dir,
            endpoints,
            servers,
        };
        cluster.wait_ready().await;
        cluster
    }

    /// The running member that serves as leader, if exactly one does.
    fn leader(&self) -> Option<usize> {
        let serving: Vec<usize> = (0..self.servers.len())
            .filter(|i| {
                self.servers[*i]
                    .as_ref()
                    .is_some_and(|s| s.shared().serving().is_ok())
            })
            .collect();
        (serving.len() == 1).then(|| serving[0])
    }

    /// Waits for a serving leader whose member list has every voter's
    /// client URL (members publish theirs within about a second).
    async fn wait_ready(&self) -> usize {
        wait_for("a PD leader with every member published", || async {
            let Some(l) = self.leader() else { return false };
            let shared = self.servers[l].as_ref().unwrap().shared();
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
        self.leader().unwrap()
    }

    async fn stop(&mut self, i: usize) {
        self.servers[i].take().expect("running").stop().await;
    }

    async fn shutdown(mut self) {
        for i in 0..self.servers.len() {
            if self.servers[i].is_some() {
                self.stop(i).await;
            }
        }
    }
}

fn store(id: u64) -> metapb::Store {
    metapb::Store {
        id,
        address: format!("127.0.0.1:{}", 20000 + id),
        version: "test".into(),
        ..Default::default()
    }
}

/// Registers three stores and bootstraps; returns their IDs and the first
/// region.
async fn bootstrap_three(client: &PdClient) -> (Vec<u64>, metapb::Region) {
    let ids: Vec<u64> = client.alloc_id(3).await.unwrap().collect();
    for (n, id) in ids.iter().enumerate() {
        client.put_store(store(*id)).await.unwrap();
        client
            .store_heartbeat(pdpb::StoreStats {
                store_id: *id,
                capacity: 100 << 30,
                available: 50 << 30,
                ..Default::default()
            })
            .await
            .unwrap();
        if n < 2 {
            // Surfaced at once, for the store to retry on its own schedule.
            let started = Instant::now();
            let err = client.bootstrap(ids[0]).await.unwrap_err();
            assert!(matches!(err, PdError::NotEnoughStores(_)), "{err:?}");
            assert!(err.is_retryable());
            assert!(started.elapsed() < Duration::from_secs(2), "retried: {err}");
        }
    }
    let (region, already) = client.bootstrap(ids[0]).await.unwrap();
    assert!(!already);
    assert_eq!(region.peers.len(), 3);
    (ids, region)
}

// ---- tests ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_through_a_follower_and_is_routed_to_the_leader() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.wait_ready().await;
    let follower = (leader + 1) % 3;
    let client = PdClient::connect(
        &[cluster.endpoints[follower].clone()],
        PdClientConfig::default(),
    )
    .await
    .unwrap();
    assert_ne!(client.cluster_id(), 0);
    let leader_url = format!("http://{}", cluster.endpoints[leader]);
    assert_eq!(client.leader_url(), Some(leader_url));

    let members = client.members().await.unwrap();
    assert_eq!(members.members.len(), 3);
    assert_eq!(members.leader.unwrap().name, format!("pd-{leader}"));
    let ids = client.alloc_id(5).await.unwrap();
    assert_eq!(ids.end - ids.start, 5);
    assert!(!client.is_bootstrapped().await.unwrap());
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_stores_bootstraps_and_routes() {
    let cluster = Cluster::start(1).await;
    let client = PdClient::connect(&cluster.endpoints, PdClientConfig::default())
        .await
        .unwrap();
    let (ids, region) = bootstrap_three(&client).await;
    assert!(client.is_bootstrapped().await.unwrap());
    let (again, already) = client.bootstrap(ids[1]).await.unwrap();
    assert!(already);
    assert_eq!(again.id, region.id);

    assert_eq!(
        client.get_store(ids[2]).await.unwrap().store.unwrap(),
        store(ids[2])
    );
    assert_eq!(client.get_all_stores(true).await.unwrap().len(), 3);
    let err = client.get_store(ids[2] + 1_000_000).await.unwrap_err();
    assert!(matches!(err, PdError::StoreNotFound(_)), "{err:?}");

    let info = client.get_region(b"any key").await.unwrap().unwrap();
    assert_eq!(info.region.unwrap().id, region.id);
    let by_id = client.get_region_by_id(region.id).await.unwrap().unwrap();
    assert_eq!(by_id.region.unwrap().id, region.id);
    assert_eq!(
        client.get_region_by_id(region.id + 1_000_000).await,
        Ok(None)
    );
    let scanned = client.scan_regions(b"", b"", 10).await.unwrap();
    assert_eq!(scanned.len(), 1);

    let split = client.ask_batch_split(region.clone(), 2).await.unwrap();
    assert_eq!(split.len(), 2);
    assert!(split.iter().all(|s| s.new_peer_ids.len() == 3));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_and_timestamps_survive_a_leader_stop() {
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.wait_ready().await;
    let client = PdClient::connect(&cluster.endpoints, PdClientConfig::default())
        .await
        .unwrap();
    let mut ids = Vec::new();
    let mut stamps = Vec::new();
    for _ in 0..20 {
        ids.extend(client.alloc_id(3).await.unwrap());
        stamps.push(client.get_tso(10).await.unwrap());
    }
    cluster.stop(leader).await;
    // Each call rides out the election inside its own deadline.
    for _ in 0..20 {
        ids.extend(client.alloc_id(3).await.unwrap());
        stamps.push(client.get_tso(10).await.unwrap());
    }
    let new_leader = format!("http://{}", cluster.endpoints[cluster.wait_ready().await]);
    assert_eq!(client.leader_url(), Some(new_leader));

    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len(), "an ID was handed out twice");
    assert!(ids.iter().all(|id| *id != 0));
    for pair in stamps.windows(2) {
        // Each answer covers 10 timestamps: the next starts after them.
        assert!(pair[0].to_u64() + 10 <= pair[1].to_u64(), "{pair:?}");
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_share_one_client() {
    let cluster = Cluster::start(1).await;
    let client = PdClient::connect(&cluster.endpoints, PdClientConfig::default())
        .await
        .unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move {
                let mut out = Vec::new();
                for _ in 0..20 {
                    out.push((
                        c.alloc_id(1).await.unwrap().start,
                        c.get_tso(1).await.unwrap(),
                    ));
                }
                out
            })
        })
        .collect();
    let mut ids = Vec::new();
    let mut stamps = Vec::new();
    for t in tasks {
        for (id, ts) in t.await.unwrap() {
            ids.push(id);
            stamps.push(ts);
        }
    }
    ids.sort_unstable();
    ids.dedup();
    stamps.sort_unstable();
    stamps.dedup();
    assert_eq!(
        (ids.len(), stamps.len()),
        (160, 160),
        "duplicates handed out"
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_stream_survives_a_failover() {
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.wait_ready().await;
    let client = PdClient::connect(&cluster.endpoints, PdClientConfig::default())
        .await
        .unwrap();
    let (ids, region) = bootstrap_three(&client).await;
    let leader_peer = *region.peers.iter().find(|p| p.store_id == ids[0]).unwrap();
    let other_peer = *region.peers.iter().find(|p| p.store_id != ids[0]).unwrap();
    let (sender, _answers) = client.region_heartbeat_stream(ids[0]);
    let heartbeat = |pending: Vec<metapb::Peer>| pdpb::RegionHeartbeat {
        region: Some(region.clone()),
        leader: Some(leader_peer),
        term: 1,
        pending_peers: pending,
        approximate_size: 1 << 20,
        ..Default::default()
    };

    // Before the failover: the region gets its leader from our stream.
    sender.send(vec![heartbeat(vec![])]).await.unwrap();
    wait_for("the first heartbeat at the old leader", || async {
        let info = client.get_region(b"").await.unwrap().unwrap();
        info.leader == Some(leader_peer)
    })
    .await;

    cluster.stop(leader).await;
    // The store resends on its cadence; a batch in flight during the
    // failover may be lost, a later one must reach the new leader through
    // the same handle.
    wait_for("a heartbeat at the new leader", || async {
        sender
            .send(vec![heartbeat(vec![other_peer])])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let info = client.get_region(b"").await.unwrap().unwrap();
        info.pending_peers == vec![other_peer]
    })
    .await;
    let new_leader = format!("http://{}", cluster.endpoints[cluster.wait_ready().await]);
    assert_eq!(client.leader_url(), Some(new_leader));
    drop(sender);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_come_back_at_once_as_typed_errors() {
    let cluster = Cluster::start(1).await;
    let client = PdClient::connect(&cluster.endpoints, PdClientConfig::default())
        .await
        .unwrap();
    let started = Instant::now();
    let err = client.alloc_id(20_000).await.unwrap_err();
    assert!(matches!(err, PdError::InvalidArgument(_)), "{err:?}");
    assert!(!err.is_retryable());
    let err = client.get_tso(1 << 19).await.unwrap_err();
    assert!(matches!(err, PdError::InvalidArgument(_)), "{err:?}");
    // The TSO stream PD closed after the refusal is reopened.
    let ts = client.get_tso(1).await.unwrap();
    assert!(ts.physical_ms > 0);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "refusals were retried: {:?}",
        started.elapsed()
    );

    let err = PdClient::connect(&["http://bad host:1".into()], PdClientConfig::default())
        .await
        .unwrap_err();
    assert!(matches!(err, PdError::InvalidArgument(_)), "{err:?}");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_honour_their_deadline_when_pd_is_down() {
    let mut cluster = Cluster::start(1).await;
    let timeout = Duration::from_secs(2);
    let config = PdClientConfig {
        timeout,
        ..PdClientConfig::default()
    };
    let client = PdClient::connect(&cluster.endpoints, config.clone())
        .await
        .unwrap();
    client.get_tso(1).await.unwrap();
    cluster.stop(0).await;

    let within = |started: Instant| {
        let took = started.elapsed();
        assert!(
            took >= timeout / 2 && took < timeout + Duration::from_millis(1500),
            "took {took:?} for a {timeout:?} deadline"
        );
    };
    let started = Instant::now();
    let err = client.alloc_id(1).await.unwrap_err();
    assert!(
        matches!(err, PdError::Timeout { .. } | PdError::NoLeader),
        "{err:?}"
    );
    assert!(err.is_retryable());
    within(started);

    let started = Instant::now();
    let err = client.get_tso(1).await.unwrap_err();
    assert!(matches!(err, PdError::Timeout { .. }), "{err:?}");
    within(started);

    let started = Instant::now();
    let err = PdClient::connect(&cluster.endpoints, config)
        .await
        .unwrap_err();
    assert!(matches!(err, PdError::Timeout { .. }), "{err:?}");
    within(started);
    cluster.shutdown().await;
}
