//! Where requests go: the regions and their leaders, learnt from every
//! store's `GET /regions`, and gRPC clients to each store.
//!
//! A request carries its region's ID, epoch and leader peer. When a store
//! answers with a region error, the client calls [`Router::refresh`] with
//! the table version it used: the first caller asks the stores again, the
//! others (which failed on the same stale table) wait for that answer.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use flotilla_proto::kvrpcpb::kv_client::KvClient;
use flotilla_proto::kvrpcpb::Context;
use flotilla_proto::metapb::{Peer, RegionEpoch};
use serde_json::Value;
use tonic::transport::{Channel, Endpoint};

use super::cluster::StoreAddrs;
use super::REPLICAS;
use crate::http;

/// How long to wait for every region to have a leader (first discovery:
/// also for the first region's voters).
const DISCOVERY_DEADLINE: Duration = Duration::from_secs(60);

/// One region as its leader describes it.
#[derive(Clone, Debug)]
pub struct RegionRoute {
    /// Region ID.
    pub id: u64,
    /// First key (inclusive).
    pub start: Vec<u8>,
    /// End key (exclusive; empty: unbounded).
    pub end: Vec<u8>,
    /// The request context for its leader.
    pub ctx: Context,
    /// Index of the leading store.
    pub leader_store: usize,
    /// Voters in the region.
    pub voters: usize,
}

impl RegionRoute {
    fn contains(&self, key: &[u8]) -> bool {
        self.start.as_slice() <= key && (self.end.is_empty() || key < self.end.as_slice())
    }
}

/// The routing table at one moment.
#[derive(Debug, Default)]
struct Table {
    version: u64,
    regions: Vec<RegionRoute>,
}

/// Where to send one request.
pub struct Target {
    /// The table version this came from (for [`Router::refresh`]).
    pub version: u64,
    /// The request's context.
    pub ctx: Context,
    /// A client of the leading store.
    pub client: KvClient<Channel>,
    /// Index of that store.
    pub store: usize,
}

/// The routing table and the stores' clients.
pub struct Router {
    stores: Vec<StoreAddrs>,
    clients: Vec<Vec<KvClient<Channel>>>,
    table: RwLock<Arc<Table>>,
    refreshing: tokio::sync::Mutex<()>,
    next: AtomicUsize,
    refreshes: AtomicU64,
}

impl Router {
    /// Clients of every store over `connections` connections each, and the
    /// first table: waits until the cluster's regions have leaders and the
    /// first region has its [`REPLICAS`] voters.
    pub async fn connect(stores: Vec<StoreAddrs>, connections: usize) -> anyhow::Result<Router> {
        let mut clients = Vec::new();
        for s in &stores {
            let mut per_store = Vec::new();
            for _ in 0..connections.max(1) {
                let channel = Endpoint::from_shared(format!("http://{}", s.kv))?
                    .tcp_nodelay(true)
                    .connect_timeout(Duration::from_secs(5))
                    .connect_lazy();
                per_store.push(KvClient::new(channel));
            }
            clients.push(per_store);
        }
        let router = Router {
            stores,
            clients,
            table: RwLock::new(Arc::new(Table::default())),
            refreshing: tokio::sync::Mutex::new(()),
            next: AtomicUsize::new(0),
            refreshes: AtomicU64::new(0),
        };
        let regions = router.discover(REPLICAS).await?;
        *router.table.write().expect("not poisoned") = Arc::new(Table {
            version: 1,
            regions,
        });
        Ok(router)
    }

    /// Where a request for `key` goes, or `None` if no known region holds
    /// it (call [`refresh`](Self::refresh) with [`version`](Self::version)).
    pub fn route(&self, key: &[u8]) -> Option<Target> {
        let table = self.table.read().expect("not poisoned").clone();
        let r = table.regions.iter().find(|r| r.contains(key))?;
        let conns = &self.clients[r.leader_store];
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        Some(Target {
            version: table.version,
            ctx: r.ctx,
            client: conns[n % conns.len()].clone(),
            store: r.leader_store,
        })
    }

    /// The current table's version.
    pub fn version(&self) -> u64 {
        self.table.read().expect("not poisoned").version
    }

    /// Asks the stores again, unless someone already did since table
    /// `seen` was current.
    pub async fn refresh(&self, seen: u64) -> anyhow::Result<()> {
        let _guard = self.refreshing.lock().await;
        if self.version() != seen {
            return Ok(());
        }
        let regions = self.discover(1).await?;
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        let mut table = self.table.write().expect("not poisoned");
        *table = Arc::new(Table {
            version: table.version + 1,
            regions,
        });
        Ok(())
    }

    /// Table refreshes after the first (each one follows a region error).
    pub fn refreshes(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }

    /// The store leading the first region (the one holding the empty key).
    pub fn leader_store(&self) -> Option<usize> {
        let table = self.table.read().expect("not poisoned").clone();
        let r = table.regions.iter().find(|r| r.contains(b""))?;
        Some(r.leader_store)
    }

    /// The first region's ID.
    pub fn first_region_id(&self) -> Option<u64> {
        let table = self.table.read().expect("not poisoned").clone();
        table.regions.iter().find(|r| r.contains(b"")).map(|r| r.id)
    }

    /// Polls every store's `/regions` until each region reported has a
    /// leader and the first region has `min_voters` voters.
    async fn discover(&self, min_voters: usize) -> anyhow::Result<Vec<RegionRoute>> {
        let started = Instant::now();
        loop {
            let mut answers = Vec::new();
            let mut last_error = None;
            for (i, s) in self.stores.iter().enumerate() {
                match http::get(&s.status, "/regions").await {
                    Ok(body) => answers.push((i, body)),
                    Err(e) => last_error = Some(e),
                }
            }
            let why = match leaders(&answers) {
                Ok(regions) => match regions.iter().find(|r| r.contains(b"")) {
                    Some(first) if first.voters >= min_voters => return Ok(regions),
                    Some(first) => format!(
                        "region {} has {} voters, waiting for {min_voters}",
                        first.id, first.voters
                    ),
                    None => "no region holds the first key yet".to_string(),
                },
                Err(e) => format!("{e:#}"),
            };
            if started.elapsed() > DISCOVERY_DEADLINE {
                let stores = match last_error {
                    Some(e) => format!("; last store error: {e:#}"),
                    None => String::new(),
                };
                bail!("no usable region leaders after {DISCOVERY_DEADLINE:?}: {why}{stores}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The regions in `answers` (store index, `/regions` body), each with its
/// leader: the peer claiming leadership in the highest term. Fails if
/// some region has no leader.
fn leaders(answers: &[(usize, String)]) -> anyhow::Result<Vec<RegionRoute>> {
    let mut best: Vec<(u64, RegionRoute)> = Vec::new();
    let mut seen = Vec::new();
    for (store, body) in answers {
        let v: Value = serde_json::from_str(body).context("parsing /regions")?;
        let list = v["regions"]
            .as_array()
            .ok_or_else(|| anyhow!("/regions has no \"regions\" list"))?;
        for r in list {
            let id = r["id"]
                .as_u64()
                .ok_or_else(|| anyhow!("region without id"))?;
            if !seen.contains(&id) {
                seen.push(id);
            }
            if r["is_leader"].as_bool() != Some(true) {
                continue;
            }
            let term = r["term"].as_u64().unwrap_or(0);
            let route = parse_route(r, *store)?;
            match best.iter_mut().find(|(_, b)| b.id == id) {
                Some(slot) if slot.0 < term => *slot = (term, route),
                Some(_) => {}
                None => best.push((term, route)),
            }
        }
    }
    if let Some(id) = seen
        .iter()
        .find(|id| !best.iter().any(|(_, b)| b.id == **id))
    {
        bail!("region {id} has no leader yet");
    }
    let mut regions: Vec<RegionRoute> = best.into_iter().map(|(_, r)| r).collect();
    regions.sort_by(|a, b| a.start.cmp(&b.start));
    Ok(regions)
}

fn parse_route(r: &Value, store: usize) -> anyhow::Result<RegionRoute> {
    let id = r["id"].as_u64().unwrap_or(0);
    let peer_id = r["peer_id"]
        .as_u64()
        .ok_or_else(|| anyhow!("region {id} without peer_id"))?;
    let peers = r["peers"].as_array().cloned().unwrap_or_default();
    let me = peers
        .iter()
        .find(|p| p["id"].as_u64() == Some(peer_id))
        .ok_or_else(|| anyhow!("region {id}: peer {peer_id} not among its peers"))?;
    let peer = Peer {
        id: peer_id,
        store_id: me["store_id"].as_u64().unwrap_or(0),
        role: me["role"].as_i64().unwrap_or(0) as i32,
    };
    // Voters and (in joint configurations) incoming voters.
    let voters = peers
        .iter()
        .filter(|p| matches!(p["role"].as_i64(), None | Some(0) | Some(2)))
        .count();
    let epoch = RegionEpoch {
        conf_ver: r["epoch"]["conf_ver"].as_u64().unwrap_or(0),
        version: r["epoch"]["version"].as_u64().unwrap_or(0),
    };
    Ok(RegionRoute {
        id,
        start: unhex(r["start_key"].as_str().unwrap_or(""))?,
        end: unhex(r["end_key"].as_str().unwrap_or(""))?,
        ctx: Context {
            region_id: id,
            region_epoch: Some(epoch),
            peer: Some(peer),
            follower_read: false,
        },
        leader_store: store,
        voters,
    })
}

fn unhex(s: &str) -> anyhow::Result<Vec<u8>> {
    anyhow::ensure!(s.len() % 2 == 0, "odd-length hex key {s:?}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).context("bad hex key"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(is_leader: bool, term: u64) -> String {
        format!(
            r#"{{"count":1,"regions":[{{"id":2,"start_key":"","end_key":"","epoch":{{"conf_ver":1,"version":1}},
            "peers":[{{"id":3,"store_id":1,"role":0}},{{"id":4,"store_id":2,"role":0}},{{"id":5,"store_id":3,"role":0}}],
            "peer_id":{},"is_leader":{is_leader},"leader_peer_id":3,"term":{term}}}]}}"#,
            3 + term
        )
    }

    #[test]
    fn picks_the_newest_leader() {
        let answers = vec![(0, body(true, 1)), (1, body(true, 2)), (2, body(false, 2))];
        let regions = leaders(&answers).unwrap();
        assert_eq!(regions.len(), 1);
        let r = &regions[0];
        assert_eq!((r.id, r.leader_store, r.voters), (2, 1, 3));
        let peer = r.ctx.peer.unwrap();
        assert_eq!((peer.id, peer.store_id), (5, 3));
        assert!(r.contains(b"anything"));
        assert!(leaders(&[(2, body(false, 2))]).is_err());
    }

    #[test]
    fn decodes_hex_keys() {
        assert_eq!(unhex("6b30").unwrap(), b"k0");
        assert!(unhex("6").is_err());
    }
}
