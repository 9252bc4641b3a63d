//! Building stores, regions and heartbeats for tests.

use super::*;

// ---- building metadata ------------------------------------------------------------

/// A store record at `127.0.0.1:<20000 + id>`.
pub fn store(id: u64) -> metapb::Store {
    metapb::Store {
        id,
        address: format!("127.0.0.1:{}", 20000 + id),
        version: "test".into(),
        ..Default::default()
    }
}

pub fn peer(id: u64, store_id: u64) -> metapb::Peer {
    metapb::Peer {
        id,
        store_id,
        role: metapb::PeerRole::Voter as i32,
    }
}

pub fn region(
    id: u64,
    start: &[u8],
    end: &[u8],
    conf_ver: u64,
    version: u64,
    peers: Vec<metapb::Peer>,
) -> metapb::Region {
    metapb::Region {
        id,
        start_key: bytes::Bytes::copy_from_slice(start),
        end_key: bytes::Bytes::copy_from_slice(end),
        region_epoch: Some(metapb::RegionEpoch { conf_ver, version }),
        peers,
    }
}

/// A heartbeat of `region` led by its peer on `leader_store`.
pub fn heartbeat(region: &metapb::Region, leader_store: u64) -> RegionHeartbeat {
    let leader = region
        .peers
        .iter()
        .find(|p| p.store_id == leader_store)
        .copied()
        .expect("leader store holds a peer");
    RegionHeartbeat {
        region: Some(region.clone()),
        leader: Some(leader),
        term: 1,
        approximate_size: 1 << 20,
        approximate_keys: 1000,
        ..Default::default()
    }
}

/// Registers stores `ids` (with a heartbeat each).
pub async fn register_stores(client: &mut LeaderClient, ids: impl IntoIterator<Item = u64>) {
    for id in ids {
        assert_ok(&client.put_store(store(id)).await);
        assert_ok(&client.store_heartbeat(id).await);
    }
}

/// The first region's ID of `key`'s region as the leader routes it.
pub async fn region_id_of(client: &mut LeaderClient, key: &[u8]) -> u64 {
    let resp = client.get_region(key).await;
    assert_ok(&resp);
    resp.region.unwrap().region.unwrap().id
}

/// Waits until member `i` has persisted `r` (with a leader on `leader_store`).
pub async fn wait_persisted(
    c: &TestCluster,
    i: usize,
    r: &metapb::Region,
    leader_store: Option<u64>,
) {
    wait_until("regions to be persisted", LONG, || {
        let Ok(Some(v)) = c.shared(i).engine.get(
            flotilla_pd::storage::CF_META,
            &flotilla_pd::storage::meta::region_key(r.id),
        ) else {
            return false;
        };
        let info = <RegionInfo as prost::Message>::decode(&*v).unwrap();
        info.region.as_ref() == Some(r) && info.leader.map(|l| l.store_id) == leader_store
    })
    .await;
}
