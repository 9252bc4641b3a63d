//! Building the synthetic cluster in PD through its public API: register
//! the fake stores, bootstrap, allocate region and peer IDs, create every
//! region by heartbeat, then check that every region is routable and
//! persisted before anything is measured.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _};
use flotilla_proto::bytes::Bytes;
use flotilla_proto::{metapb, pdpb};
use tokio::task::JoinHandle;

use super::client::{check, Pd};
use super::heartbeat::HeartbeatLoad;
use super::layout::{key, FakeStore, Layout, REPLICAS};
use super::rng::XorShift;
use super::{Params, OK_SERIES, PERSISTED_SERIES, REJECTED_SERIES};

/// Most IDs one `AllocId` hands out.
const ID_BATCH: u32 = 10_000;
/// How long region creation and persistence may take before the
/// benchmark gives up.
const SETUP_DEADLINE: Duration = Duration::from_secs(300);
/// How often each fake store heartbeats (well inside PD's 20 s
/// disconnect time).
const STORE_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// Regions looked up one by one to check routing.
const ROUTE_SAMPLE: usize = 1000;

/// The fake stores' periodic store heartbeats; they stop when this drops.
pub struct StoreHeartbeats(JoinHandle<()>);

impl Drop for StoreHeartbeats {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Registers `count` fake stores and starts their store heartbeats.
pub async fn register_stores(
    pd: &Pd,
    count: usize,
) -> anyhow::Result<(Vec<FakeStore>, StoreHeartbeats)> {
    let mut client = pd.client();
    let bootstrapped = client
        .is_bootstrapped(pdpb::IsBootstrappedRequest {
            header: pd.header(),
        })
        .await?
        .into_inner();
    check(bootstrapped.header.as_ref())?;
    ensure!(
        !bootstrapped.bootstrapped,
        "the PD at {} is already bootstrapped: pd-scale needs a fresh one",
        pd.client_addr
    );
    let first = alloc_ids(pd, count).await?;
    let mut stores = Vec::with_capacity(count);
    for (n, id) in first.into_iter().enumerate() {
        let store = FakeStore {
            id,
            address: format!("127.0.0.1:{}", 20_160 + n),
        };
        let resp = client
            .put_store(pdpb::PutStoreRequest {
                header: pd.header(),
                store: Some(metapb::Store {
                    id,
                    address: store.address.clone(),
                    version: "pd-scale".into(),
                    ..Default::default()
                }),
            })
            .await?
            .into_inner();
        check(resp.header.as_ref()).with_context(|| format!("PutStore {id}"))?;
        stores.push(store);
    }
    store_heartbeats(pd, &stores).await?;
    let (pd2, stores2) = (pd.clone(), stores.clone());
    let beats = tokio::spawn(async move {
        let mut tick = tokio::time::interval(STORE_HEARTBEAT_INTERVAL);
        tick.tick().await;
        loop {
            tick.tick().await;
            // A failed store heartbeat only matters if it keeps failing;
            // the stores then show as disconnected in the PD's metrics.
            let _ = store_heartbeats(&pd2, &stores2).await;
        }
    });
    Ok((stores, StoreHeartbeats(beats)))
}

async fn store_heartbeats(pd: &Pd, stores: &[FakeStore]) -> anyhow::Result<()> {
    const GIB: u64 = 1 << 30;
    let mut client = pd.client();
    for s in stores {
        let resp = client
            .store_heartbeat(pdpb::StoreHeartbeatRequest {
                header: pd.header(),
                stats: Some(pdpb::StoreStats {
                    store_id: s.id,
                    capacity: 1024 * GIB,
                    available: 768 * GIB,
                    used_size: 256 * GIB,
                    ..Default::default()
                }),
            })
            .await?
            .into_inner();
        check(resp.header.as_ref()).with_context(|| format!("StoreHeartbeat {}", s.id))?;
    }
    Ok(())
}

/// Bootstraps the cluster from the first store.
pub async fn bootstrap(pd: &Pd, store: &FakeStore) -> anyhow::Result<metapb::Region> {
    let resp = pd
        .client()
        .bootstrap(pdpb::BootstrapRequest {
            header: pd.header(),
            store_id: store.id,
        })
        .await?
        .into_inner();
    check(resp.header.as_ref()).context("Bootstrap")?;
    resp.region.context("Bootstrap returned no region")
}

/// `count` fresh IDs from PD, in batches.
pub async fn alloc_ids(pd: &Pd, count: usize) -> anyhow::Result<Vec<u64>> {
    let mut client = pd.client();
    let mut ids = Vec::with_capacity(count);
    while ids.len() < count {
        let want = (count - ids.len()).min(ID_BATCH as usize) as u32;
        let resp = client
            .alloc_id(pdpb::AllocIdRequest {
                header: pd.header(),
                count: want,
            })
            .await?
            .into_inner();
        check(resp.header.as_ref()).context("AllocId")?;
        ensure!(
            resp.count == want,
            "AllocId gave {} IDs, not {want}",
            resp.count
        );
        ids.extend(resp.id..resp.id + u64::from(want));
    }
    Ok(ids)
}

/// Allocates IDs for every region and builds the layout.
pub async fn plan(pd: &Pd, stores: Vec<FakeStore>, p: &Params) -> anyhow::Result<Layout> {
    let ids = alloc_ids(pd, p.regions * (1 + REPLICAS)).await?;
    Ok(Layout::new(
        stores,
        p.regions,
        &ids,
        p.leader_churn_pct,
        p.seed,
    ))
}

/// Creates every region with one round of heartbeats, then waits until
/// PD has processed them all, routes every key, and has persisted every
/// region. Returns how long creation took.
pub async fn create_regions(pd: &Pd, layout: &Arc<Layout>, p: &Params) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let ok_before = pd.metric(OK_SERIES).await?;
    let rejected_before = pd.metric(REJECTED_SERIES).await?;
    let mut load = HeartbeatLoad::start(pd, layout.clone(), p.batch, Some(1), None, p.seed).await?;
    load.join_senders().await?;
    let want = ok_before + layout.regions.len() as f64;
    loop {
        let rejected = pd.metric(REJECTED_SERIES).await? - rejected_before;
        if rejected > 0.0 {
            let counters = load.close().await?;
            let reason = counters
                .first_rejection
                .lock()
                .expect("not poisoned")
                .clone();
            bail!(
                "PD refused {rejected} heartbeats while creating regions: {}",
                reason.unwrap_or_default()
            );
        }
        if pd.metric(OK_SERIES).await? >= want {
            break;
        }
        ensure!(
            started.elapsed() < SETUP_DEADLINE,
            "PD processed too few heartbeats within {SETUP_DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    load.close().await?;
    let elapsed = started.elapsed();
    check_routable(pd, layout, p.seed).await?;
    wait_persisted(pd, layout.regions.len()).await?;
    Ok(elapsed)
}

/// Every region is in PD's tree, in order, with nothing else there; a
/// sample of keys routes to the right region; the HTTP API counts them.
async fn check_routable(pd: &Pd, layout: &Layout, seed: u64) -> anyhow::Result<()> {
    let mut client = pd.client();
    let mut start = Bytes::new();
    let mut seen = 0usize;
    loop {
        let resp = client
            .scan_regions(pdpb::ScanRegionsRequest {
                header: pd.header(),
                start_key: start.clone(),
                end_key: Bytes::new(),
                limit: 0,
            })
            .await?
            .into_inner();
        check(resp.header.as_ref()).context("ScanRegions")?;
        ensure!(
            !resp.regions.is_empty(),
            "ScanRegions from {start:?} found nothing"
        );
        for info in &resp.regions {
            let region = info.region.as_ref().context("ScanRegions: no region")?;
            let expected = layout.regions.get(seen).map(|r| r.id);
            ensure!(
                Some(region.id) == expected,
                "region #{seen} in key order is {}, expected {expected:?}",
                region.id
            );
            seen += 1;
        }
        let last = resp.regions.last().and_then(|i| i.region.as_ref());
        match last {
            Some(r) if !r.end_key.is_empty() => start = r.end_key.clone(),
            _ => break,
        }
    }
    ensure!(
        seen == layout.regions.len(),
        "ScanRegions counted {seen} regions, expected {}",
        layout.regions.len()
    );
    let mut rng = XorShift::new(seed ^ 0x5eed);
    for _ in 0..ROUTE_SAMPLE.min(layout.regions.len()) {
        let i = rng.below(layout.regions.len() as u64) as usize;
        let resp = client
            .get_region(pdpb::GetRegionRequest {
                header: pd.header(),
                region_key: key(i),
            })
            .await?
            .into_inner();
        check(resp.header.as_ref()).context("GetRegion")?;
        let got = resp.region.and_then(|r| r.region).map(|r| r.id);
        ensure!(
            got == Some(layout.region_id(i)),
            "key {:?} routed to {got:?}, expected region {}",
            key(i),
            layout.region_id(i)
        );
    }
    let body = crate::http::get(&pd.http_addr, "/pd/api/v1/regions?limit=0").await?;
    let count = json_count(&body).context("no count in /pd/api/v1/regions")?;
    ensure!(
        count == layout.regions.len() as u64,
        "/pd/api/v1/regions counts {count}, expected {}",
        layout.regions.len()
    );
    Ok(())
}

/// The `"count":N` field of a JSON object.
fn json_count(body: &str) -> Option<u64> {
    let rest = body.split_once("\"count\":")?.1.trim_start();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Waits until PD has persisted at least `regions` region records (each
/// region was new, so each was written once).
async fn wait_persisted(pd: &Pd, regions: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    while pd.metric(PERSISTED_SERIES).await? < regions as f64 {
        ensure!(
            started.elapsed() < SETUP_DEADLINE,
            "PD did not persist {regions} regions within {SETUP_DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_count() {
        assert_eq!(
            json_count(r#"{"count": 100000,"regions":[]}"#),
            Some(100_000)
        );
        assert_eq!(json_count(r#"{"regions":[]}"#), None);
    }
}
