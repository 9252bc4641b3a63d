//! Admin commands on the apply thread: what a split does to the region and
//! to the store's records, decided alike by every replica from the region
//! as it stands at the entry.
//!
//! A split is one atomic write with the entry's apply state: the original
//! region's new (shrunk) local state, and for each new region a local
//! state and an apply state at [`INIT_INDEX`] — so a crash leaves either
//! the whole split or none of it, and the log replays it. No hard state
//! is written for a new region: a peer of it may already exist on this
//! store (created by a message from the new region's leader, which applied
//! the split sooner) and may have voted; its persisted vote must survive
//! (TiKV #9579, two leaders in one term). A new region that already has a
//! local state here (say, a tombstone: its peer was created and removed
//! before this replica applied the split) is left alone.

use flotilla_proto::metapb;
use flotilla_proto::raft_cmdpb::BatchSplitRequest;
use flotilla_proto::raft_serverpb::{PeerState, RaftApplyState, RegionLocalState};
use prost::Message as _;
use rocksdb::WriteBatch;

use super::exec::Refusal;
use crate::engine::keys::{apply_state_key, region_state_key};
use crate::engine::{Engine, EngineError, CF_META};
use crate::peer::storage::{INIT_INDEX, INIT_TERM};
use crate::region_error;

pub use flotilla_proto::limits::MAX_SPLIT_KEYS;

/// What applying an admin command changed, for the region's peer.
#[derive(Clone, Debug)]
pub enum ExecResult {
    /// The region split: `regions` in key order, the original (shrunk)
    /// first; `created` are the new regions whose records this apply
    /// wrote (the others already had state on this store).
    Split {
        /// Every region after the split, in key order.
        regions: Vec<metapb::Region>,
        /// IDs of the new regions initialized by this split here.
        created: Vec<u64>,
    },
    /// A membership change applied: hand `cc` to raftcore; the region's
    /// peers and `conf_ver` are now `region`'s.
    ChangePeer {
        /// The change, as raftcore takes it.
        cc: raftcore::ConfChange,
        /// The region after it.
        region: metapb::Region,
    },
}

/// The regions `region` becomes when cut as `req` says, or why not.
pub fn split_regions(
    region: &metapb::Region,
    req: &BatchSplitRequest,
) -> Result<Vec<metapb::Region>, String> {
    let cuts = &req.requests;
    if cuts.is_empty() {
        return Err("no split keys".into());
    }
    if cuts.len() > MAX_SPLIT_KEYS {
        return Err(format!(
            "{} split keys (at most {MAX_SPLIT_KEYS})",
            cuts.len()
        ));
    }
    let joint = region.peers.iter().any(|p| {
        matches!(
            metapb::PeerRole::try_from(p.role),
            Ok(metapb::PeerRole::IncomingVoter | metapb::PeerRole::DemotingVoter)
        )
    });
    if joint {
        return Err("region is in a joint configuration".into());
    }
    let mut previous = &region.start_key;
    for cut in cuts {
        let key = &cut.split_key;
        if key.is_empty() || key <= previous {
            return Err(
                "split keys must be non-empty, increasing and above the region's start".into(),
            );
        }
        if !region.end_key.is_empty() && *key >= region.end_key {
            return Err("split key at or beyond the region's end".into());
        }
        if cut.new_region_id == 0 || cut.new_region_id == region.id {
            return Err("bad new region id".into());
        }
        if cut.new_peer_ids.len() != region.peers.len() {
            return Err(format!(
                "{} new peer ids for {} peers",
                cut.new_peer_ids.len(),
                region.peers.len()
            ));
        }
        previous = key;
    }
    let epoch = region.region_epoch.unwrap_or_default();
    let epoch = metapb::RegionEpoch {
        conf_ver: epoch.conf_ver,
        version: epoch.version + cuts.len() as u64,
    };
    let mut derived = region.clone();
    derived.end_key = cuts[0].split_key.clone();
    derived.region_epoch = Some(epoch);
    let mut out = vec![derived];
    for (i, cut) in cuts.iter().enumerate() {
        let end = cuts
            .get(i + 1)
            .map_or(region.end_key.clone(), |next| next.split_key.clone());
        let peers = region
            .peers
            .iter()
            .zip(&cut.new_peer_ids)
            .map(|(p, &id)| metapb::Peer { id, ..*p })
            .collect();
        out.push(metapb::Region {
            id: cut.new_region_id,
            start_key: cut.split_key.clone(),
            end_key: end,
            region_epoch: Some(epoch),
            peers,
        });
    }
    Ok(out)
}

/// Applies a split of `region` into `wb`: the new regions' records and the
/// original's new local state. Returns the regions (or the refusal every
/// replica agrees on).
pub fn exec_split(
    engine: &Engine,
    region: &metapb::Region,
    proposed: metapb::RegionEpoch,
    req: &BatchSplitRequest,
    wb: &mut WriteBatch,
) -> Result<Result<ExecResult, Refusal>, EngineError> {
    let current = region.region_epoch.unwrap_or_default();
    if proposed != current {
        // A split's peer IDs follow the peer list it was proposed against:
        // any membership change since voids it.
        return Ok(Err(region_error::epoch_not_match(
            Some(&proposed),
            vec![region.clone()],
        )));
    }
    let regions = match split_regions(region, req) {
        Ok(r) => r,
        Err(why) => {
            tracing::warn!(region = region.id, %why, "split refused");
            let mut err = region_error::stale_command();
            err.message = format!("split of region {} refused: {why}", region.id);
            return Ok(Err(err));
        }
    };
    let meta = engine.cf(CF_META);
    let mut created = Vec::new();
    for new in &regions[1..] {
        if engine.get(CF_META, &region_state_key(new.id))?.is_some() {
            tracing::info!(
                region = new.id,
                "split target already has state here; left alone"
            );
            continue;
        }
        wb.put_cf(meta, region_state_key(new.id), local_state(new));
        let apply = RaftApplyState {
            applied_index: INIT_INDEX,
            truncated_index: INIT_INDEX,
            truncated_term: INIT_TERM,
        };
        wb.put_cf(meta, apply_state_key(new.id), apply.encode_to_vec());
        created.push(new.id);
    }
    put_local_state(engine, wb, &regions[0]);
    Ok(Ok(ExecResult::Split { regions, created }))
}

/// Adds `region`'s (normal) local state to `wb`.
pub fn put_local_state(engine: &Engine, wb: &mut WriteBatch, region: &metapb::Region) {
    wb.put_cf(
        engine.cf(CF_META),
        region_state_key(region.id),
        local_state(region),
    );
}

fn local_state(region: &metapb::Region) -> Vec<u8> {
    RegionLocalState {
        state: PeerState::Normal as i32,
        region: Some(region.clone()),
    }
    .encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_proto::raft_cmdpb::SplitRequest;

    fn region() -> metapb::Region {
        metapb::Region {
            id: 1,
            start_key: "b".into(),
            end_key: "y".into(),
            region_epoch: Some(metapb::RegionEpoch {
                conf_ver: 3,
                version: 7,
            }),
            peers: (1..=3)
                .map(|i| metapb::Peer {
                    id: 10 + i,
                    store_id: i,
                    role: 0,
                })
                .collect(),
        }
    }

    fn cut(key: &str, id: u64) -> SplitRequest {
        SplitRequest {
            split_key: key.to_owned().into_bytes().into(),
            new_region_id: id,
            new_peer_ids: vec![id * 10 + 1, id * 10 + 2, id * 10 + 3],
        }
    }

    #[test]
    fn a_split_covers_the_range_exactly_and_bumps_every_version() {
        let req = BatchSplitRequest {
            requests: vec![cut("f", 2), cut("m", 3)],
        };
        let out = split_regions(&region(), &req).unwrap();
        let ranges: Vec<(&[u8], &[u8])> = out
            .iter()
            .map(|r| (&r.start_key[..], &r.end_key[..]))
            .collect();
        assert_eq!(
            ranges,
            vec![
                (&b"b"[..], &b"f"[..]),
                (&b"f"[..], &b"m"[..]),
                (&b"m"[..], &b"y"[..])
            ]
        );
        assert!(out.iter().all(|r| r.region_epoch.unwrap().version == 9));
        assert!(out.iter().all(|r| r.region_epoch.unwrap().conf_ver == 3));
        assert_eq!(out[0].id, 1);
        let stores: Vec<u64> = out[2].peers.iter().map(|p| p.store_id).collect();
        assert_eq!(stores, vec![1, 2, 3]);
        assert_eq!(out[2].peers[0].id, 31);
    }

    #[test]
    fn bad_cuts_are_refused() {
        let bad = [
            vec![cut("b", 2)],              // at the start
            vec![cut("a", 2)],              // below it
            vec![cut("y", 2)],              // at the end
            vec![cut("m", 2), cut("f", 3)], // not increasing
            vec![cut("m", 2), cut("m", 3)], // repeated
            vec![cut("m", 1)],              // reuses the region's id
            vec![],
        ];
        for requests in bad {
            let req = BatchSplitRequest {
                requests: requests.clone(),
            };
            assert!(split_regions(&region(), &req).is_err(), "{requests:?}");
        }
        let mut short = cut("m", 2);
        short.new_peer_ids.pop();
        let req = BatchSplitRequest {
            requests: vec![short],
        };
        assert!(split_regions(&region(), &req).is_err());
    }

    #[test]
    fn a_stale_epoch_or_existing_target_is_respected() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        let req = BatchSplitRequest {
            requests: vec![cut("f", 2), cut("m", 3)],
        };
        let mut wb = WriteBatch::default();
        let stale = metapb::RegionEpoch {
            conf_ver: 2,
            version: 7,
        };
        let refused = exec_split(&engine, &region(), stale, &req, &mut wb).unwrap();
        assert!(refused.unwrap_err().epoch_not_match.is_some());
        assert!(wb.is_empty());
        // Region 3 was created and destroyed here before: its tombstone
        // stays.
        let tombstone = RegionLocalState {
            state: PeerState::Tombstone as i32,
            region: None,
        };
        let mut pre = WriteBatch::default();
        pre.put_cf(
            engine.cf(CF_META),
            region_state_key(3),
            tombstone.encode_to_vec(),
        );
        engine.write(pre, false).unwrap();
        let epoch = region().region_epoch.unwrap();
        let done = exec_split(&engine, &region(), epoch, &req, &mut wb)
            .unwrap()
            .unwrap();
        let ExecResult::Split { regions, created } = done else {
            panic!("a split")
        };
        assert_eq!(regions.len(), 3);
        assert_eq!(created, vec![2]);
        engine.write(wb, false).unwrap();
        let kept: RegionLocalState = engine
            .get_msg(CF_META, &region_state_key(3))
            .unwrap()
            .unwrap();
        assert_eq!(kept.state, PeerState::Tombstone as i32);
    }
}
