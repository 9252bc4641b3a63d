//! Probes of a running cluster's state, as its stores publish it: each
//! store's view of a region (role, term, epoch, peers), the apply state and
//! snapshot counts, and checks that several stores agree.

use flotilla_proto::kvrpcpb::Context;
use flotilla_proto::metapb;
use flotilla_proto::raft_serverpb::RaftApplyState;
use flotilla_store::driver::context::RegionMeta;
use flotilla_store::engine::keys::apply_state_key;
use flotilla_store::engine::CF_META;

use super::Cluster;

/// Store `i`'s published metadata of `region`.
pub fn meta(cluster: &Cluster, i: usize, region: u64) -> Option<RegionMeta> {
    cluster
        .store(i)
        .context()
        .regions
        .read()
        .get(&region)
        .cloned()
}

/// Whether store `i` leads `region`, by its own account.
pub fn leads(cluster: &Cluster, i: usize, region: u64) -> bool {
    meta(cluster, i, region).is_some_and(|m| m.is_leader)
}

/// The request context for store `i`'s peer of a region.
pub fn context_of(m: &RegionMeta) -> Context {
    Context {
        region_id: m.region.id,
        region_epoch: m.region.region_epoch,
        peer: Some(m.peer),
        follower_read: false,
    }
}

/// Every running store holds a peer of `region` that follows (or is) one
/// leader in one term: the same leader peer, the same term, and exactly
/// one of them leading.
pub fn agree_on_one_leader(cluster: &Cluster, region: u64) -> bool {
    let metas: Vec<RegionMeta> = (0..cluster.stores.len())
        .filter(|&i| cluster.stores[i].is_some())
        .filter_map(|i| meta(cluster, i, region))
        .collect();
    let running = cluster.stores.iter().flatten().count();
    let leaders = metas.iter().filter(|m| m.is_leader).count();
    metas.len() == running
        && leaders == 1
        && metas.windows(2).all(|w| {
            w[0].term == w[1].term && w[0].leader.map(|p| p.id) == w[1].leader.map(|p| p.id)
        })
}

/// Store `i`'s apply state of `region`.
pub fn apply_state(cluster: &Cluster, i: usize, region: u64) -> RaftApplyState {
    cluster
        .store(i)
        .context()
        .engine
        .get_msg::<RaftApplyState>(CF_META, &apply_state_key(region))
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Store `i`'s count of snapshot `event`s (`generated`, `sent`,
/// `received`, `applied`).
pub fn snapshots(cluster: &Cluster, i: usize, event: &str) -> u64 {
    let metrics = &cluster.store(i).context().metrics;
    metrics.snapshots.with_label_values(&[event]).get()
}

/// The region of `cluster` starting at `start`, as its leader publishes
/// it.
pub fn region_starting_at(cluster: &Cluster, start: &[u8]) -> Option<metapb::Region> {
    cluster.stores.iter().flatten().find_map(|s| {
        let regions = s.context().regions.read();
        regions
            .values()
            .find(|m| m.is_leader && m.region.start_key == start)
            .map(|m| m.region.clone())
    })
}

/// The peer of `region` on `store`, if it has one.
pub fn peer_on(region: &metapb::Region, store: u64) -> Option<metapb::Peer> {
    region.peers.iter().find(|p| p.store_id == store).copied()
}

/// Whether `regions`, sorted by start key, share no key.
pub fn disjoint(regions: &[metapb::Region]) -> bool {
    regions
        .windows(2)
        .all(|w| !w[0].end_key.is_empty() && w[0].end_key <= w[1].start_key)
}
