//! Key layout. Every per-region key starts with the region ID (big-endian),
//! so one region's records are contiguous and a range delete removes them.
//!
//! | CF | key | value |
//! | --- | --- | --- |
//! | `raft` | `region_id · 0x01 · index` | log entry (raftcore codec) |
//! | `raft` | `region_id · 0x02` | hard state (raftcore codec) |
//! | `meta` | `region_id · 0x01` | `RegionLocalState` |
//! | `meta` | `region_id · 0x02` | `RaftApplyState` |
//! | `meta` | `0xff · "store_ident"` | `StoreIdent` |
//!
//! User keys live unchanged in `default`.

const LOG_SUFFIX: u8 = 0x01;
const HARD_STATE_SUFFIX: u8 = 0x02;
const REGION_STATE_SUFFIX: u8 = 0x01;
const APPLY_STATE_SUFFIX: u8 = 0x02;

/// The store's identity record (outside every region's prefix: region IDs
/// never reach 0xff00...).
pub const STORE_IDENT_KEY: &[u8] = b"\xffstore_ident";

fn region_key(region_id: u64, suffix: u8) -> [u8; 9] {
    let mut key = [0; 9];
    key[..8].copy_from_slice(&region_id.to_be_bytes());
    key[8] = suffix;
    key
}

/// The key of `region_id`'s log entry at `index`.
pub fn log_key(region_id: u64, index: u64) -> [u8; 17] {
    let mut key = [0; 17];
    key[..9].copy_from_slice(&region_key(region_id, LOG_SUFFIX));
    key[9..].copy_from_slice(&index.to_be_bytes());
    key
}

/// The index in a log key, if `key` is one of `region_id`'s.
pub fn log_index(region_id: u64, key: &[u8]) -> Option<u64> {
    if key.len() != 17 || key[..9] != region_key(region_id, LOG_SUFFIX) {
        return None;
    }
    Some(u64::from_be_bytes(key[9..].try_into().ok()?))
}

/// The key of `region_id`'s hard state.
pub fn hard_state_key(region_id: u64) -> [u8; 9] {
    region_key(region_id, HARD_STATE_SUFFIX)
}

/// The key of `region_id`'s local state.
pub fn region_state_key(region_id: u64) -> [u8; 9] {
    region_key(region_id, REGION_STATE_SUFFIX)
}

/// The key of `region_id`'s apply state.
pub fn apply_state_key(region_id: u64) -> [u8; 9] {
    region_key(region_id, APPLY_STATE_SUFFIX)
}

/// Decodes the region ID of a `meta` region-state key.
pub fn region_id_of_state_key(key: &[u8]) -> Option<u64> {
    if key.len() != 9 || key[8] != REGION_STATE_SUFFIX {
        return None;
    }
    Some(u64::from_be_bytes(key[..8].try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_keys_sort_by_region_then_index() {
        assert!(log_key(1, u64::MAX) < log_key(2, 0));
        assert!(log_key(1, 9) < log_key(1, 10));
        assert!(log_key(1, u64::MAX).as_slice() < hard_state_key(1).as_slice());
        assert_eq!(log_index(7, &log_key(7, 42)), Some(42));
        assert_eq!(log_index(8, &log_key(7, 42)), None);
    }

    #[test]
    fn state_keys_decode() {
        assert_eq!(region_id_of_state_key(&region_state_key(9)), Some(9));
        assert_eq!(region_id_of_state_key(&apply_state_key(9)), None);
    }
}
