//! Request limits, enforced before anything reaches a region: a request
//! past them fails as a whole with gRPC `INVALID_ARGUMENT` and a message
//! naming the limit — nothing of it is written.

use bytes::Bytes;
use flotilla_proto::kvrpcpb::{Context, KvPair};
use tonic::Status;

pub use flotilla_proto::limits::{
    MAX_BATCH_BYTES, MAX_BATCH_KEYS, MAX_KEY_BYTES, MAX_REPLY_BYTES, MAX_SCAN_LIMIT,
    MAX_SPLIT_KEYS, MAX_VALUE_BYTES,
};

fn invalid(msg: String) -> Status {
    Status::invalid_argument(msg)
}

/// The context every request needs.
pub fn context(ctx: Option<&Context>) -> Result<&Context, Status> {
    let ctx = ctx.ok_or_else(|| invalid("request has no context".into()))?;
    if ctx.region_id == 0 {
        return Err(invalid("context names no region (region_id 0)".into()));
    }
    Ok(ctx)
}

/// A key read or written; `write` keys may not be empty.
pub fn key(key: &Bytes, write: bool) -> Result<(), Status> {
    if write && key.is_empty() {
        return Err(invalid("empty key: writes need a non-empty key".into()));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(invalid(format!(
            "key of {} bytes exceeds the {MAX_KEY_BYTES}-byte limit",
            key.len()
        )));
    }
    Ok(())
}

/// The cut keys of a split: 1 to [`MAX_SPLIT_KEYS`], each a valid
/// non-empty key.
pub fn split_keys(keys: &[Bytes]) -> Result<(), Status> {
    if keys.is_empty() {
        return Err(invalid("a split needs at least one key".into()));
    }
    if keys.len() > MAX_SPLIT_KEYS {
        return Err(invalid(format!(
            "{} split keys exceed the limit of {MAX_SPLIT_KEYS}",
            keys.len()
        )));
    }
    keys.iter().try_for_each(|k| key(k, true))
}

/// A value written.
pub fn value(value: &Bytes) -> Result<(), Status> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(invalid(format!(
            "value of {} bytes exceeds the {MAX_VALUE_BYTES}-byte limit",
            value.len()
        )));
    }
    Ok(())
}

/// A batch's size: key count and total bytes.
pub fn batch(count: usize, bytes: usize) -> Result<(), Status> {
    if count == 0 {
        return Err(invalid("empty batch".into()));
    }
    if count > MAX_BATCH_KEYS {
        return Err(invalid(format!(
            "batch of {count} keys exceeds the {MAX_BATCH_KEYS}-key limit"
        )));
    }
    if bytes > MAX_BATCH_BYTES {
        return Err(invalid(format!(
            "batch of {bytes} bytes exceeds the {MAX_BATCH_BYTES}-byte limit"
        )));
    }
    Ok(())
}

/// Keys of a batch read or delete.
pub fn keys(keys: &[Bytes], write: bool) -> Result<(), Status> {
    batch(keys.len(), keys.iter().map(Bytes::len).sum())?;
    keys.iter().try_for_each(|k| key(k, write))
}

/// Pairs of a batch write.
pub fn pairs(pairs: &[KvPair]) -> Result<(), Status> {
    let bytes = pairs.iter().map(|p| p.key.len() + p.value.len()).sum();
    batch(pairs.len(), bytes)?;
    pairs.iter().try_for_each(|p| {
        key(&p.key, true)?;
        value(&p.value)
    })
}

/// A scan's limit and range. Forward: `[start, end)`; reverse: below
/// `start` down to `end`. An empty end is open.
pub fn scan(start: &Bytes, end: &Bytes, limit: u32, reverse: bool) -> Result<(), Status> {
    key(start, false)?;
    key(end, false)?;
    if limit == 0 || limit > MAX_SCAN_LIMIT {
        return Err(invalid(format!(
            "scan limit {limit} is outside 1..={MAX_SCAN_LIMIT}"
        )));
    }
    let inverted = if reverse {
        !start.is_empty() && !end.is_empty() && end >= start
    } else {
        !end.is_empty() && start >= end
    };
    if inverted {
        return Err(invalid(format!(
            "inverted scan range: start {start:?}, end {end:?}{}",
            if reverse { " (reverse)" } else { "" }
        )));
    }
    Ok(())
}

/// A range delete: `[start, end)`, end open when empty.
pub fn delete_range(start: &Bytes, end: &Bytes) -> Result<(), Status> {
    key(start, false)?;
    key(end, false)?;
    if !end.is_empty() && start >= end {
        return Err(invalid(format!(
            "inverted delete range: start {start:?} >= end {end:?}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_enforced_at_their_edges() {
        let k = |n: usize| Bytes::from(vec![b'k'; n]);
        assert!(key(&k(MAX_KEY_BYTES), true).is_ok());
        assert!(key(&k(MAX_KEY_BYTES + 1), false).is_err());
        assert!(key(&k(0), true).is_err());
        assert!(key(&k(0), false).is_ok());
        assert!(value(&Bytes::from(vec![0; MAX_VALUE_BYTES])).is_ok());
        assert!(value(&Bytes::from(vec![0; MAX_VALUE_BYTES + 1])).is_err());
        assert!(batch(MAX_BATCH_KEYS, 0).is_ok());
        assert!(batch(MAX_BATCH_KEYS + 1, 0).is_err());
        assert!(batch(1, MAX_BATCH_BYTES + 1).is_err());
        assert!(batch(0, 0).is_err());
        let err = keys(&[k(1), k(MAX_KEY_BYTES + 1)], false).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(
            err.message().contains("8192-byte limit"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn scans_need_a_sane_limit_and_range() {
        let b = |s: &str| Bytes::copy_from_slice(s.as_bytes());
        assert!(scan(&b("a"), &b("b"), 10, false).is_ok());
        assert!(scan(&b("a"), &b(""), MAX_SCAN_LIMIT, false).is_ok());
        assert!(scan(&b("b"), &b("a"), 10, false).is_err());
        assert!(scan(&b("a"), &b("a"), 10, false).is_err());
        assert!(scan(&b("b"), &b("a"), 10, true).is_ok());
        assert!(scan(&b("a"), &b("b"), 10, true).is_err());
        assert!(scan(&b(""), &b("b"), 10, true).is_ok());
        assert!(scan(&b("a"), &b("b"), 0, false).is_err());
        assert!(scan(&b("a"), &b("b"), MAX_SCAN_LIMIT + 1, false).is_err());
        assert!(delete_range(&b("b"), &b("a")).is_err());
        assert!(delete_range(&b(""), &b("")).is_ok());
    }
}
