//! Keys, values, pairs and key ranges as the API takes and returns them,
//! and the request limits checked before anything is sent.

use std::ops::RangeToInclusive;
use std::ops::{Bound, Range, RangeBounds, RangeFrom, RangeFull, RangeInclusive, RangeTo};

use bytes::Bytes;
use flotilla_proto::limits::{MAX_KEY_BYTES, MAX_VALUE_BYTES};

use crate::error::{Error, Result};

/// A key and its value, as reads return them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KvPair {
    /// The key.
    pub key: Bytes,
    /// The value (empty for key-only scans).
    pub value: Bytes,
}

impl KvPair {
    /// A pair from anything that converts to bytes.
    pub fn new(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> KvPair {
        KvPair {
            key: bytes(key),
            value: bytes(value),
        }
    }
}

impl From<flotilla_proto::kvrpcpb::KvPair> for KvPair {
    fn from(p: flotilla_proto::kvrpcpb::KvPair) -> KvPair {
        KvPair {
            key: p.key,
            value: p.value,
        }
    }
}

/// Converts an API argument to `Bytes` (no copy for `Vec<u8>`, `String`
/// or a uniquely held `Bytes`).
pub(crate) fn bytes(b: impl Into<Vec<u8>>) -> Bytes {
    Bytes::from(b.into())
}

/// A half-open key range `[start, end)`; an empty `end` means the end of
/// the key space. Built from Rust's range syntax by [`IntoKeyRange`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyRange {
    /// First key of the range (inclusive).
    pub start: Bytes,
    /// End of the range (exclusive); empty for "no end".
    pub end: Bytes,
}

impl KeyRange {
    /// The range `[start, end)`; an empty `end` is unbounded.
    pub fn new(start: impl Into<Vec<u8>>, end: impl Into<Vec<u8>>) -> KeyRange {
        KeyRange {
            start: bytes(start),
            end: bytes(end),
        }
    }

    /// Every key that starts with `prefix`: up to the prefix with its
    /// last byte below 0xff raised by one (and the 0xff bytes after it
    /// dropped); unbounded when there is no such byte.
    pub fn with_prefix(prefix: impl Into<Vec<u8>>) -> KeyRange {
        let start = bytes(prefix);
        let mut end = start.to_vec();
        while end.last() == Some(&0xff) {
            end.pop();
        }
        if let Some(last) = end.last_mut() {
            *last += 1;
        }
        KeyRange {
            start,
            end: Bytes::from(end),
        }
    }

    /// Whether `key` is inside.
    pub fn contains(&self, key: &[u8]) -> bool {
        key >= &self.start[..] && (self.end.is_empty() || key < &self.end[..])
    }

    /// Fails for a range whose end is not after its start, or whose keys
    /// are past the key limit.
    pub(crate) fn check(&self) -> Result<()> {
        check_key(&self.start, false)?;
        check_key(&self.end, false)?;
        if !self.end.is_empty() && self.end <= self.start {
            return Err(Error::InvalidArgument(format!(
                "inverted or empty range: start {:?} is not before end {:?}",
                self.start, self.end
            )));
        }
        Ok(())
    }
}

/// The smallest key after `key`: `key` followed by a zero byte — where
/// the next page of a scan starts.
pub fn key_after(key: &[u8]) -> Bytes {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.extend_from_slice(key);
    k.push(0);
    Bytes::from(k)
}

/// Anything usable as a key range: `"a".."m"`, `"a"..="m"`, `"a"..`,
/// `..="m"`, `..`, a `(Bound, Bound)` pair, or a [`KeyRange`]. Keys are
/// anything that converts into `Vec<u8>` (`&str`, `String`, `&[u8]`,
/// `Vec<u8>`, `Bytes`).
pub trait IntoKeyRange {
    /// The range as `[start, end)`.
    fn into_key_range(self) -> KeyRange;
}

impl IntoKeyRange for KeyRange {
    fn into_key_range(self) -> KeyRange {
        self
    }
}

impl IntoKeyRange for RangeFull {
    fn into_key_range(self) -> KeyRange {
        KeyRange::new(Vec::new(), Vec::new())
    }
}

impl<T: Into<Vec<u8>>> IntoKeyRange for (Bound<T>, Bound<T>) {
    fn into_key_range(self) -> KeyRange {
        let start = match self.0 {
            Bound::Included(k) => bytes(k),
            Bound::Excluded(k) => key_after(&k.into()),
            Bound::Unbounded => Bytes::new(),
        };
        let end = match self.1 {
            Bound::Included(k) => key_after(&k.into()),
            Bound::Excluded(k) => bytes(k),
            Bound::Unbounded => Bytes::new(),
        };
        KeyRange { start, end }
    }
}

/// Takes a range apart into its owned bounds.
fn owned_bounds<T: Clone, R: RangeBounds<T>>(r: &R) -> (Bound<T>, Bound<T>) {
    (r.start_bound().cloned(), r.end_bound().cloned())
}

macro_rules! std_ranges {
    ($($range:ident),*) => {$(
        impl<T: Into<Vec<u8>> + Clone> IntoKeyRange for $range<T> {
            fn into_key_range(self) -> KeyRange {
                owned_bounds(&self).into_key_range()
            }
        }
    )*};
}

std_ranges!(Range, RangeFrom, RangeTo, RangeInclusive, RangeToInclusive);

/// A key read (may be empty) or written (`write`: must not be).
pub(crate) fn check_key(key: &[u8], write: bool) -> Result<()> {
    if write && key.is_empty() {
        return Err(Error::InvalidArgument(
            "empty key: writes need a non-empty key".into(),
        ));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(Error::InvalidArgument(format!(
            "key of {} bytes exceeds the {MAX_KEY_BYTES}-byte limit",
            key.len()
        )));
    }
    Ok(())
}

/// A value written.
pub(crate) fn check_value(value: &[u8]) -> Result<()> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(Error::InvalidArgument(format!(
            "value of {} bytes exceeds the {MAX_VALUE_BYTES}-byte limit",
            value.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_next_keys() {
        let r = KeyRange::with_prefix("jobs/");
        assert_eq!((&r.start[..], &r.end[..]), (&b"jobs/"[..], &b"jobs0"[..]));
        assert!(r.contains(b"jobs/\xff\xff") && !r.contains(b"jobs0"));
        let r = KeyRange::with_prefix(vec![b'a', 0xff, 0xff]);
        assert_eq!(&r.end[..], b"b");
        assert!(KeyRange::with_prefix(vec![0xff]).end.is_empty());
        assert!(KeyRange::with_prefix("").end.is_empty());
        assert_eq!(&key_after(b"k")[..], b"k\0");
    }

    fn r(range: impl IntoKeyRange) -> (Vec<u8>, Vec<u8>) {
        let r = range.into_key_range();
        (r.start.to_vec(), r.end.to_vec())
    }

    #[test]
    fn rust_ranges_become_half_open_key_ranges() {
        assert_eq!(r("a".."m"), (b"a".to_vec(), b"m".to_vec()));
        assert_eq!(r("a"..="m"), (b"a".to_vec(), b"m\0".to_vec()));
        assert_eq!(r("a"..), (b"a".to_vec(), vec![]));
        assert_eq!(r(..="m"), (vec![], b"m\0".to_vec()));
        assert_eq!(r(..), (vec![], vec![]));
        let owned = String::from("k");
        assert_eq!(r(owned.clone()..), (b"k".to_vec(), vec![]));
        assert_eq!(
            r((Bound::Excluded("a"), Bound::Unbounded)),
            (b"a\0".to_vec(), vec![])
        );
        assert_eq!(r(vec![1u8]..vec![2u8]), (vec![1], vec![2]));
    }

    #[test]
    fn bad_ranges_and_keys_are_refused() {
        assert!(KeyRange::new("b", "a").check().is_err());
        assert!(KeyRange::new("a", "a").check().is_err());
        assert!(KeyRange::new("a", "").check().is_ok());
        assert!(KeyRange::new("", "").check().is_ok());
        assert!(check_key(b"", true).is_err());
        assert!(check_key(b"", false).is_ok());
        assert!(check_key(&vec![0; MAX_KEY_BYTES + 1], false).is_err());
        assert!(check_value(&vec![0; MAX_VALUE_BYTES + 1]).is_err());
        assert!(check_value(&vec![0; MAX_VALUE_BYTES]).is_ok());
    }

    #[test]
    fn contains_honours_an_open_end() {
        let r = KeyRange::new("b", "");
        assert!(r.contains(b"b") && r.contains(b"zzz") && !r.contains(b"a"));
        let r = KeyRange::new("b", "d");
        assert!(r.contains(b"c") && !r.contains(b"d"));
    }
}
