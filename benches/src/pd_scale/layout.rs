//! The synthetic cluster: fake stores, regions with disjoint ranges covering
//! the whole key space, their peers and leaders, and the heartbeats the
//! stores send for them.
//!
//! Region `i` of `n` covers `[key(i), key(i + 1))` with `key(i)` =
//! `k{i:08}`, except that the first starts at `""` and the last ends at
//! `""`, so every key is routable. Its three voters sit on stores `i`,
//! `i + 1` and `i + 2` (mod the store count): each store holds the same
//! number of peers and leads the same number of regions.
//!
//! A few regions (`leader_churn_pct`) move their leader each round of
//! heartbeats — peer `round % 3` leads — so some heartbeats change region
//! metadata and PD persists them; the rest only refresh statistics.

use flotilla_proto::bytes::Bytes;
use flotilla_proto::{metapb, pdpb};

use super::rng::{mix64, XorShift};

/// Voters per region.
pub const REPLICAS: usize = 3;
/// Rounds after which the churning regions' leaders are back where they
/// started: one round per voter.
pub const LEADER_PHASES: usize = REPLICAS;
/// Every synthetic region carries this epoch version: newer than the
/// bootstrap region's 1, so the first heartbeats replace it.
pub const REGION_VERSION: u64 = 2;

/// A fake store.
#[derive(Clone, Debug)]
pub struct FakeStore {
    /// Its ID, allocated by PD.
    pub id: u64,
    /// Its (never dialled) gRPC address.
    pub address: String,
}

/// The whole synthetic cluster.
pub struct Layout {
    /// The fake stores.
    pub stores: Vec<FakeStore>,
    /// Region `i` in wire form (without leader).
    pub regions: Vec<metapb::Region>,
    /// Whether region `i` moves its leader every round.
    churning: Vec<bool>,
    /// `by_leader[phase][store index]`: the regions that store leads in
    /// that leader phase, in key order.
    by_leader: Vec<Vec<Vec<u32>>>,
}

/// The routing key inside region `i` (its start key, except for region 0,
/// which starts at `""`).
pub fn key(i: usize) -> Bytes {
    Bytes::from(format!("k{i:08}"))
}

impl Layout {
    /// Builds the layout for `stores` and `region_count` regions whose IDs
    /// (one region ID and [`REPLICAS`] peer IDs each) come from `ids`.
    pub fn new(
        stores: Vec<FakeStore>,
        region_count: usize,
        ids: &[u64],
        leader_churn_pct: f64,
        seed: u64,
    ) -> Layout {
        assert!(stores.len() >= REPLICAS, "need at least {REPLICAS} stores");
        assert_eq!(ids.len(), region_count * (1 + REPLICAS), "IDs per region");
        let n_stores = stores.len();
        let mut regions = Vec::with_capacity(region_count);
        for i in 0..region_count {
            let id = &ids[i * (1 + REPLICAS)..(i + 1) * (1 + REPLICAS)];
            let peers = (0..REPLICAS)
                .map(|r| metapb::Peer {
                    id: id[1 + r],
                    store_id: stores[(i + r) % n_stores].id,
                    role: metapb::PeerRole::Voter as i32,
                })
                .collect();
            regions.push(metapb::Region {
                id: id[0],
                start_key: if i == 0 { Bytes::new() } else { key(i) },
                end_key: if i + 1 == region_count {
                    Bytes::new()
                } else {
                    key(i + 1)
                },
                region_epoch: Some(metapb::RegionEpoch {
                    conf_ver: 1,
                    version: REGION_VERSION,
                }),
                peers,
            });
        }
        let threshold = (leader_churn_pct.clamp(0.0, 100.0) * 100.0) as u64;
        let churning: Vec<bool> = (0..region_count)
            .map(|i| mix64(seed ^ i as u64) % 10_000 < threshold)
            .collect();
        let mut layout = Layout {
            stores,
            regions,
            churning,
            by_leader: Vec::new(),
        };
        layout.by_leader = (0..LEADER_PHASES)
            .map(|phase| {
                let mut lists = vec![Vec::new(); n_stores];
                for i in 0..region_count {
                    lists[layout.leader_index(i, phase)].push(i as u32);
                }
                lists
            })
            .collect();
        layout
    }

    /// How many regions move their leader every round.
    pub fn churning_regions(&self) -> usize {
        self.churning.iter().filter(|c| **c).count()
    }

    /// The store index (into [`Layout::stores`]) leading region `i` in
    /// `phase`.
    fn leader_index(&self, i: usize, phase: usize) -> usize {
        let replica = if self.churning[i] {
            phase % REPLICAS
        } else {
            0
        };
        (i + replica) % self.stores.len()
    }

    /// The regions store `store` leads in round `round`.
    pub fn led_by(&self, store: usize, round: u64) -> &[u32] {
        &self.by_leader[round as usize % LEADER_PHASES][store]
    }

    /// The leader phase of `round`.
    fn phase(round: u64) -> usize {
        round as usize % LEADER_PHASES
    }

    /// Region `i`'s heartbeat in `round`, with statistics drawn from `rng`
    /// (sizes stay well inside what PD accepts).
    pub fn heartbeat(&self, i: usize, round: u64, rng: &mut XorShift) -> pdpb::RegionHeartbeat {
        let region = &self.regions[i];
        let leader = self.leader_index(i, Self::phase(round));
        let leader_store = self.stores[leader].id;
        let leader_peer = region
            .peers
            .iter()
            .find(|p| p.store_id == leader_store)
            .copied();
        const MIB: u64 = 1 << 20;
        let size = 64 * MIB + rng.below(32 * MIB);
        pdpb::RegionHeartbeat {
            region: Some(region.clone()),
            leader: leader_peer,
            term: 6 + round,
            down_peers: Vec::new(),
            pending_peers: Vec::new(),
            approximate_size: size,
            approximate_keys: size / 100,
            written_bytes: rng.below(4 * MIB),
            written_keys: rng.below(40_000),
            read_bytes: rng.below(4 * MIB),
            read_keys: rng.below(40_000),
        }
    }

    /// Which region holds key `k{i:08}`: region `i`, by construction.
    pub fn region_id(&self, i: usize) -> u64 {
        self.regions[i].id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(regions: usize, churn: f64) -> Layout {
        let stores = (0..10)
            .map(|s| FakeStore {
                id: 1000 + s,
                address: format!("127.0.0.1:{}", 20_000 + s),
            })
            .collect();
        let ids: Vec<u64> = (1..=(regions * 4) as u64).collect();
        Layout::new(stores, regions, &ids, churn, 7)
    }

    #[test]
    fn ranges_tile_the_key_space() {
        let l = layout(50, 0.0);
        assert!(l.regions[0].start_key.is_empty());
        assert!(l.regions[49].end_key.is_empty());
        for pair in l.regions.windows(2) {
            assert_eq!(pair[0].end_key, pair[1].start_key);
            assert!(pair[0].start_key < pair[0].end_key);
        }
    }

    #[test]
    fn every_round_sends_each_region_once_from_its_leader() {
        let l = layout(1000, 10.0);
        assert!(l.churning_regions() > 0);
        let mut rng = XorShift::new(1);
        for round in 0..LEADER_PHASES as u64 {
            let mut seen = vec![0; 1000];
            for s in 0..l.stores.len() {
                for &i in l.led_by(s, round) {
                    seen[i as usize] += 1;
                    let hb = l.heartbeat(i as usize, round, &mut rng);
                    assert_eq!(hb.leader.unwrap().store_id, l.stores[s].id);
                }
            }
            assert!(seen.iter().all(|c| *c == 1));
        }
    }

    #[test]
    fn leaders_are_spread_evenly_without_churn() {
        let l = layout(1000, 0.0);
        for s in 0..l.stores.len() {
            assert_eq!(l.led_by(s, 0).len(), 100);
        }
    }
}
