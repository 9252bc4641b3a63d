//! PD churn for the `schedule` nemesis, and finding PD's leader for the
//! PD faults. Everything goes through PD's HTTP API, as an operator would:
//! a manual operator PD checks against the region as it is now.
//!
//! One churn step is one of, at random:
//! - **transfer-leader** of a random region to one of its followers;
//! - **split** at a random key shaped like the workloads' keys (so it
//!   lands among them), in whichever region holds it;
//! - **move a replica**: add a peer of a random region on a store without
//!   one, or, when every store has one, remove a random follower (PD's
//!   replica checker then adds it back: a remove and a re-add).

use anyhow::{bail, Context as _};
use flotilla::playground::Playground;
use flotilla_checker::generate::Rng;
use serde_json::{json, Value};

const API: &str = "/pd/api/v1";

/// The PD member serving as leader, if one does.
pub async fn pd_leader(cluster: &Playground) -> Option<usize> {
    for (i, pd) in cluster.config().pds.iter().enumerate() {
        let Ok(body) = flotilla::http::get(&pd.http_addr(), "/health").await else {
            continue;
        };
        let health: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if health["serving_leader"] == true {
            return Some(i);
        }
    }
    None
}

/// A region as PD's API shows it.
struct Region {
    id: u64,
    start: Vec<u8>,
    end: Vec<u8>,
    leader_store: u64,
    stores: Vec<u64>,
}

impl Region {
    fn from_json(r: &Value) -> Option<Region> {
        let store_of = |p: &Value| p["store-id"].as_u64();
        Some(Region {
            id: r["id"].as_u64()?,
            start: unhex(r["start_key_hex"].as_str()?)?,
            end: unhex(r["end_key_hex"].as_str()?)?,
            leader_store: store_of(&r["leader"]).unwrap_or(0),
            stores: r["peers"].as_array()?.iter().filter_map(store_of).collect(),
        })
    }

    fn contains(&self, key: &[u8]) -> bool {
        self.start.as_slice() <= key && (self.end.is_empty() || key < self.end.as_slice())
    }

    fn followers(&self) -> Vec<u64> {
        let leader = self.leader_store;
        self.stores
            .iter()
            .copied()
            .filter(|s| *s != leader)
            .collect()
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

async fn api_get(addr: &str, path: &str) -> anyhow::Result<Value> {
    let body = flotilla::http::get(addr, &format!("{API}{path}")).await?;
    serde_json::from_str(&body).with_context(|| format!("PD's answer to {path}"))
}

/// A key like the workloads' keys, at random.
fn random_key(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => format!("reg-{}-{}", rng.below(16), rng.below(100)),
        1 => format!("set-{}/{:020}", rng.below(50), rng.next_u64() >> 20),
        2 => format!("queue/jobs/{:020}", rng.below(20_000)),
        _ => format!("queue/claims/{:020}", rng.below(20_000)),
    }
}

/// One churn step through the PD leader at `addr`; returns what it asked
/// for, or why PD refused.
pub async fn churn(addr: &str, rng: &mut Rng) -> anyhow::Result<String> {
    let regions: Vec<Region> = api_get(addr, "/regions")
        .await?
        .get("regions")
        .and_then(Value::as_array)
        .context("PD's region list")?
        .iter()
        .filter_map(Region::from_json)
        .collect();
    if regions.is_empty() {
        bail!("PD knows no region");
    }
    let stores: Vec<u64> = api_get(addr, "/stores")
        .await?
        .get("stores")
        .and_then(Value::as_array)
        .context("PD's store list")?
        .iter()
        .filter_map(|s| s["id"].as_u64())
        .collect();
    let region = &regions[rng.below(regions.len() as u64) as usize];
    let (what, body) = match rng.below(3) {
        0 => {
            let followers = region.followers();
            if followers.is_empty() {
                bail!("region {} has no follower", region.id);
            }
            let to = followers[rng.below(followers.len() as u64) as usize];
            (
                format!("transfer-leader of region {} to store {to}", region.id),
                json!({"name": "transfer-leader", "region_id": region.id, "store_id": to}),
            )
        }
        1 => {
            let key = random_key(rng);
            let Some(target) = regions.iter().find(|r| r.contains(key.as_bytes())) else {
                bail!("no region holds {key}");
            };
            if target.start == key.as_bytes() {
                bail!("{key} already starts region {}", target.id);
            }
            (
                format!("split of region {} at {key}", target.id),
                json!({"name": "split", "region_id": target.id, "keys": [key]}),
            )
        }
        _ => {
            let free: Vec<u64> = stores
                .iter()
                .copied()
                .filter(|s| !region.stores.contains(s))
                .collect();
            let followers = region.followers();
            if let Some(to) = free.get(rng.below(free.len().max(1) as u64) as usize) {
                (
                    format!("add-peer of region {} on store {to}", region.id),
                    json!({"name": "add-peer", "region_id": region.id, "store_id": to}),
                )
            } else if let Some(from) =
                followers.get(rng.below(followers.len().max(1) as u64) as usize)
            {
                (
                    format!("remove-peer of region {} from store {from}", region.id),
                    json!({"name": "remove-peer", "region_id": region.id, "store_id": from}),
                )
            } else {
                bail!("region {} has nothing to move", region.id);
            }
        }
    };
    flotilla::http::post(addr, &format!("{API}/operators"), &body.to_string())
        .await
        .with_context(|| format!("PD refused the {what}"))?;
    Ok(what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_parse_from_pds_json() {
        let r = Region::from_json(&json!({
            "id": 7, "start_key_hex": "6162", "end_key_hex": "",
            "peers": [{"id": 1, "store-id": 1}, {"id": 2, "store-id": 2}],
            "leader": {"id": 2, "store-id": 2},
        }))
        .expect("parses");
        assert_eq!((r.id, r.start.as_slice(), r.end.len()), (7, &b"ab"[..], 0));
        assert_eq!(r.followers(), vec![1]);
        assert!(r.contains(b"ab") && r.contains(b"zz") && !r.contains(b"a"));
    }

    #[test]
    fn random_keys_look_like_the_workloads() {
        let mut rng = Rng(3);
        for _ in 0..100 {
            let k = random_key(&mut rng);
            assert!(k.starts_with("reg-") || k.starts_with("set-") || k.starts_with("queue/"));
        }
    }
}
