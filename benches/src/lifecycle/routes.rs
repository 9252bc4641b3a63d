//! Which store leads which range, from every store's `/regions`, shared by
//! the writers and refreshed when a request meets a region error.

use std::sync::{Arc, RwLock};

use anyhow::bail;
use flotilla_proto::kvrpcpb::kv_client::KvClient;
use flotilla_proto::kvrpcpb::{Context, KvPair, RawBatchPutRequest, RawPutRequest};
use flotilla_proto::metapb::RegionEpoch;
use tonic::transport::Channel;

use crate::idle_regions::layout;
use crate::store_bench::cluster::StoreAddrs;

/// One led region.
#[derive(Clone, Debug)]
pub struct Route {
    /// First key.
    pub start: Vec<u8>,
    /// End key (empty: the end of the key space).
    pub end: Vec<u8>,
    /// Index of the leading store.
    pub store: usize,
    /// Region ID.
    pub id: u64,
    /// Its epoch.
    pub epoch: RegionEpoch,
}

impl Route {
    /// A request context for this region.
    pub fn context(&self) -> Context {
        Context {
            region_id: self.id,
            region_epoch: Some(self.epoch),
            ..Default::default()
        }
    }
}

/// The routing table and a client per store.
#[derive(Clone)]
pub struct Routes {
    stores: Arc<Vec<StoreAddrs>>,
    table: Arc<RwLock<Vec<Route>>>,
    /// One client per store (clones share the connection).
    pub clients: Vec<KvClient<Channel>>,
}

impl Routes {
    /// Connects to every store and reads the table.
    pub async fn connect(stores: &[StoreAddrs]) -> anyhow::Result<Routes> {
        let routes = Routes {
            stores: Arc::new(stores.to_vec()),
            table: Arc::new(RwLock::new(Vec::new())),
            clients: layout::clients(stores).await?,
        };
        routes.refresh().await?;
        Ok(routes)
    }

    /// Reads every store's `/regions` again.
    pub async fn refresh(&self) -> anyhow::Result<()> {
        let mut table = Vec::new();
        for (i, s) in self.stores.iter().enumerate() {
            for r in layout::held(s).await? {
                if r.is_leader {
                    table.push(Route {
                        start: r.start,
                        end: r.end,
                        store: i,
                        id: r.id,
                        epoch: r.epoch,
                    });
                }
            }
        }
        table.sort_by(|a, b| a.start.cmp(&b.start));
        *self.table.write().expect("routing table lock") = table;
        Ok(())
    }

    /// The led region holding `key`, if known.
    pub fn route(&self, key: &[u8]) -> Option<Route> {
        let table = self.table.read().expect("routing table lock");
        let i = table.partition_point(|r| r.start.as_slice() <= key);
        let r = table.get(i.checked_sub(1)?)?;
        (r.end.is_empty() || key < r.end.as_slice()).then(|| r.clone())
    }

    /// Puts one pair through the leader of its region.
    pub async fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> anyhow::Result<()> {
        let Some(route) = self.route(&key) else {
            bail!("no leader known for {key:?}");
        };
        let resp = self.clients[route.store]
            .raw_put(RawPutRequest {
                context: Some(route.context()),
                key: key.into(),
                value: value.into(),
            })
            .await?
            .into_inner();
        if let Some(e) = resp.region_error {
            bail!("put: {}", e.message);
        }
        Ok(())
    }

    /// Puts pairs that all belong to one region.
    pub async fn batch_put(&mut self, pairs: Vec<(Vec<u8>, Vec<u8>)>) -> anyhow::Result<()> {
        let Some(route) = pairs.first().and_then(|(k, _)| self.route(k)) else {
            bail!("no leader known for the batch");
        };
        let pairs = pairs
            .into_iter()
            .map(|(k, v)| KvPair {
                key: k.into(),
                value: v.into(),
            })
            .collect();
        let resp = self.clients[route.store]
            .raw_batch_put(RawBatchPutRequest {
                context: Some(route.context()),
                pairs,
            })
            .await?
            .into_inner();
        if let Some(e) = resp.region_error {
            bail!("batch put: {}", e.message);
        }
        Ok(())
    }
}
