//! The regions as the stores describe them (`GET /regions`, `/metrics`),
//! and requests routed by that description.

use std::collections::HashMap;

use anyhow::{bail, Context as _};
use flotilla_proto::kvrpcpb::kv_client::KvClient;
use flotilla_proto::kvrpcpb::{Context, RawGetRequest, RawPutRequest};
use flotilla_proto::metapb::RegionEpoch;
use serde_json::Value;
use tonic::transport::Channel;

use crate::http;
use crate::store_bench::cluster::StoreAddrs;

/// One region as one store holds it.
#[derive(Clone, Debug)]
pub struct Held {
    /// Region ID.
    pub id: u64,
    /// Start key (raw bytes).
    pub start: Vec<u8>,
    /// End key (raw bytes; empty: the end of the key space).
    pub end: Vec<u8>,
    /// Its epoch.
    pub epoch: RegionEpoch,
    /// Whether this store's peer leads it.
    pub is_leader: bool,
    /// Whether this store's peer knows a leader.
    pub knows_leader: bool,
}

/// Every region store `addrs` holds.
pub async fn held(addrs: &StoreAddrs) -> anyhow::Result<Vec<Held>> {
    let body = http::get(&addrs.status, "/regions").await?;
    let v: Value = serde_json::from_str(&body).context("parsing /regions")?;
    let list = v["regions"]
        .as_array()
        .context("/regions lists no regions")?;
    list.iter().map(parse_region).collect()
}

fn parse_region(r: &Value) -> anyhow::Result<Held> {
    let key = |field: &str| -> anyhow::Result<Vec<u8>> {
        let hex = r[field].as_str().context("key is not a string")?;
        unhex(hex).with_context(|| format!("bad hex in {field}"))
    };
    Ok(Held {
        id: r["id"].as_u64().context("region without id")?,
        start: key("start_key")?,
        end: key("end_key")?,
        epoch: RegionEpoch {
            conf_ver: r["epoch"]["conf_ver"].as_u64().unwrap_or(0),
            version: r["epoch"]["version"].as_u64().unwrap_or(0),
        },
        is_leader: r["is_leader"].as_bool().unwrap_or(false),
        knows_leader: !r["leader_peer_id"].is_null(),
    })
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// One value of a store's `/metrics` (summed over label sets).
pub async fn metric(addrs: &StoreAddrs, family: &str) -> anyhow::Result<f64> {
    let text = http::get(&addrs.status, "/metrics").await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with(family) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// Where each region's leader is: region start key → (store index,
/// region ID, epoch).
pub type Leaders = HashMap<Vec<u8>, (usize, u64, RegionEpoch)>;

/// The leaders the stores report.
pub async fn leaders(stores: &[StoreAddrs]) -> anyhow::Result<Leaders> {
    let mut out = Leaders::new();
    for (i, s) in stores.iter().enumerate() {
        for r in held(s).await? {
            if r.is_leader {
                out.insert(r.start, (i, r.id, r.epoch));
            }
        }
    }
    Ok(out)
}

/// A gRPC client of every store.
pub async fn clients(stores: &[StoreAddrs]) -> anyhow::Result<Vec<KvClient<Channel>>> {
    let mut out = Vec::new();
    for s in stores {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", s.kv))?
            .connect()
            .await
            .with_context(|| format!("connecting to {}", s.kv))?;
        out.push(KvClient::new(channel).max_decoding_message_size(64 << 20));
    }
    Ok(out)
}

fn context(id: u64, epoch: RegionEpoch) -> Context {
    Context {
        region_id: id,
        region_epoch: Some(epoch),
        ..Default::default()
    }
}

/// Puts `key = value` in the region starting at `start`, through its
/// leader in `leaders`.
pub async fn put(
    clients: &mut [KvClient<Channel>],
    leaders: &Leaders,
    start: &[u8],
    value: &[u8],
) -> anyhow::Result<()> {
    let Some(&(i, id, epoch)) = leaders.get(start) else {
        bail!("no leader known for the region at {start:?}");
    };
    let resp = clients[i]
        .raw_put(RawPutRequest {
            context: Some(context(id, epoch)),
            key: start.to_vec().into(),
            value: value.to_vec().into(),
        })
        .await?
        .into_inner();
    if let Some(e) = resp.region_error {
        bail!("put: {}", e.message);
    }
    Ok(())
}

/// Reads the region's start key through its leader.
pub async fn get(
    clients: &mut [KvClient<Channel>],
    leaders: &Leaders,
    start: &[u8],
) -> anyhow::Result<Vec<u8>> {
    let Some(&(i, id, epoch)) = leaders.get(start) else {
        bail!("no leader known for the region at {start:?}");
    };
    let resp = clients[i]
        .raw_get(RawGetRequest {
            context: Some(context(id, epoch)),
            key: start.to_vec().into(),
        })
        .await?
        .into_inner();
    if let Some(e) = resp.region_error {
        bail!("get: {}", e.message);
    }
    Ok(resp.value.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_keys_decode() {
        assert_eq!(unhex("6b6579").unwrap(), b"key");
        assert_eq!(unhex("").unwrap(), b"");
        assert!(unhex("6").is_none() && unhex("zz").is_none());
    }
}
