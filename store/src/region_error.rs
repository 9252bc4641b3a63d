//! The typed region errors a store answers with when it cannot serve a
//! request for a region here — each tells the client how to fix its
//! routing (see `kvrpcpb.RegionError`).

use bytes::Bytes;
use flotilla_proto::kvrpcpb::{self, RegionError};
use flotilla_proto::metapb;

fn with_message(message: String) -> RegionError {
    RegionError {
        message,
        ..Default::default()
    }
}

/// This peer does not lead `region_id`; `leader` if known.
pub fn not_leader(region_id: u64, leader: Option<metapb::Peer>) -> RegionError {
    RegionError {
        not_leader: Some(kvrpcpb::NotLeader { region_id, leader }),
        ..with_message(format!("peer is not the leader of region {region_id}"))
    }
}

/// No peer of `region_id` on this store.
pub fn region_not_found(region_id: u64) -> RegionError {
    RegionError {
        region_not_found: Some(kvrpcpb::RegionNotFound { region_id }),
        ..with_message(format!("region {region_id} is not on this store"))
    }
}

/// The request's epoch is stale; `current` are the regions that now cover
/// the range the client knew.
pub fn epoch_not_match(
    requested: Option<&metapb::RegionEpoch>,
    current: Vec<metapb::Region>,
) -> RegionError {
    let shown = |e: Option<&metapb::RegionEpoch>| {
        e.map_or("none".to_string(), |e| {
            format!("{{conf_ver: {}, version: {}}}", e.conf_ver, e.version)
        })
    };
    let now = current.first().and_then(|r| r.region_epoch.as_ref());
    RegionError {
        epoch_not_match: Some(kvrpcpb::EpochNotMatch {
            current_regions: current.clone(),
        }),
        ..with_message(format!(
            "epoch not match: request has {}, region has {}",
            shown(requested),
            shown(now)
        ))
    }
}

/// `key` is outside `region`'s range.
pub fn key_not_in_region(key: &Bytes, region: &metapb::Region) -> RegionError {
    RegionError {
        key_not_in_region: Some(kvrpcpb::KeyNotInRegion {
            key: key.clone(),
            region_id: region.id,
            start_key: region.start_key.clone(),
            end_key: region.end_key.clone(),
        }),
        ..with_message(format!(
            "key {:?} is not in region {} [{:?}, {:?})",
            key, region.id, region.start_key, region.end_key
        ))
    }
}

/// The store is overloaded; retry after `backoff_ms`.
pub fn server_is_busy(reason: impl Into<String>, backoff_ms: u64) -> RegionError {
    let reason = reason.into();
    RegionError {
        server_is_busy: Some(kvrpcpb::ServerIsBusy {
            reason: reason.clone(),
            backoff_ms,
        }),
        ..with_message(format!("server is busy: {reason}"))
    }
}

/// The command was overtaken by a leadership change; its outcome is that
/// it did not apply. Retry.
pub fn stale_command() -> RegionError {
    RegionError {
        stale_command: Some(kvrpcpb::StaleCommand {}),
        ..with_message("stale command: leadership changed before it committed".into())
    }
}

/// The request does not fit one Raft entry.
pub fn raft_entry_too_large(region_id: u64, entry_size: u64) -> RegionError {
    RegionError {
        raft_entry_too_large: Some(kvrpcpb::RaftEntryTooLarge {
            region_id,
            entry_size,
        }),
        ..with_message(format!(
            "raft entry of {entry_size} bytes is too large for region {region_id}"
        ))
    }
}

/// The request was meant for another store.
pub fn store_not_match(request_store_id: u64, actual_store_id: u64) -> RegionError {
    RegionError {
        store_not_match: Some(kvrpcpb::StoreNotMatch {
            request_store_id,
            actual_store_id,
        }),
        ..with_message(format!(
            "request for store {request_store_id} reached store {actual_store_id}"
        ))
    }
}

/// Whether `key` lies in `[region.start_key, region.end_key)`.
pub fn key_in_region(key: &[u8], region: &metapb::Region) -> bool {
    key >= &region.start_key[..] && (region.end_key.is_empty() || key < &region.end_key[..])
}
