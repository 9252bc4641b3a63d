//! Cutting the key space into many regions through the `SplitRegion` API.

use std::time::{Duration, Instant};

use anyhow::bail;
use flotilla_proto::kvrpcpb::{Context, SplitRegionRequest};

use super::layout;
use crate::store_bench::cluster::StoreAddrs;

/// Most keys one `SplitRegion` call takes (the store's limit).
const MAX_KEYS_PER_CALL: usize = 1_000;
/// How long one call may keep failing (say, while the region to cut still
/// elects its leader).
const CALL_DEADLINE: Duration = Duration::from_secs(60);

/// The first key of region `i` (`i >= 1`; region 0 starts at the empty
/// key).
pub fn key(i: usize) -> Vec<u8> {
    format!("r{i:08}").into_bytes()
}

/// The first keys of `count` regions spread evenly over regions
/// `1..regions`.
pub fn sample_keys(regions: usize, count: usize) -> Vec<Vec<u8>> {
    let count = count.min(regions - 1);
    (0..count)
        .map(|j| key(1 + j * (regions - 1) / count))
        .collect()
}

/// Cuts the key space into `regions` regions at [`key`]`(1..regions)`.
pub async fn cut(stores: &[StoreAddrs], regions: usize) -> anyhow::Result<()> {
    let mut clients = layout::clients(stores).await?;
    let mut next = 1;
    while next < regions {
        let end = (next + MAX_KEYS_PER_CALL).min(regions);
        let keys: Vec<_> = (next..end).map(|i| key(i).into()).collect();
        let started = Instant::now();
        loop {
            match split_once(stores, &mut clients, &key(next), keys.clone()).await {
                Ok(()) => break,
                Err(e) if started.elapsed() > CALL_DEADLINE => {
                    return Err(e.context(format!("splitting at {} keys from {next}", keys.len())))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        super::progress(&format!("{end} regions"));
        next = end;
    }
    Ok(())
}

/// One `SplitRegion` call on the leader of the region holding `first`.
async fn split_once(
    stores: &[StoreAddrs],
    clients: &mut [flotilla_proto::kvrpcpb::kv_client::KvClient<tonic::transport::Channel>],
    first: &[u8],
    keys: Vec<bytes::Bytes>,
) -> anyhow::Result<()> {
    for (i, s) in stores.iter().enumerate() {
        let Some(r) = layout::held(s).await?.into_iter().find(|r| {
            r.is_leader && r.start.as_slice() <= first && (r.end.is_empty() || first < &r.end[..])
        }) else {
            continue;
        };
        let resp = clients[i]
            .split_region(SplitRegionRequest {
                context: Some(Context {
                    region_id: r.id,
                    region_epoch: Some(r.epoch),
                    ..Default::default()
                }),
                split_keys: keys,
            })
            .await?
            .into_inner();
        if let Some(e) = resp.region_error {
            bail!("split refused: {}", e.message);
        }
        return Ok(());
    }
    bail!("no leader yet for the region holding {first:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_region_starts_spread_over_the_key_space() {
        let s = sample_keys(10_000, 100);
        assert_eq!(s.len(), 100);
        assert_eq!(s[0], key(1));
        assert!(s.windows(2).all(|w| w[0] < w[1]));
        assert!(s[99] < key(10_000));
        assert_eq!(sample_keys(3, 100), vec![key(1), key(2)]);
    }
}
