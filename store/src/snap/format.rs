//! The snapshot file layout, version 1:
//!
//! ```text
//! file   = MAGIC VERSION record* end
//! record = 0x01 varint(key_len) key varint(value_len) value
//! end    = 0x00 varint(kv_count)
//! ```
//!
//! Varints are LEB128 (seven bits a byte, least significant group first).
//! Records hold the pairs of CF `default` in strictly ascending key order;
//! nothing follows the end marker. Each record starts with a tag byte so
//! the end marker cannot be mistaken for a pair whatever the keys are, and
//! the end marker repeats the pair count so a file cut just after a record
//! is not taken for a complete one. The file's integrity as a whole is
//! checked by size and CRC-32 against the snapshot's `SnapshotData`.

use std::io::{self, Write};

/// The first bytes of every snapshot file.
pub const MAGIC: &[u8; 8] = b"FLOTSNAP";
/// The layout version this code writes and reads.
pub const VERSION: u8 = 1;
/// The longest user key (the KV service refuses longer ones); longer keys
/// in a file are corruption.
pub const MAX_KEY_BYTES: usize = 8 << 10;

const TAG_RECORD: u8 = 0x01;
const TAG_END: u8 = 0x00;
const MAX_VARINT_BYTES: usize = 10;

/// An exclusive upper bound above every legal user key: 8193 bytes of
/// 0xff. A key of at most [`MAX_KEY_BYTES`] either has a byte below 0xff
/// within its first 8192 bytes or is a shorter run of 0xff, and sorts below
/// it either way. A region with an empty end key ends here.
pub fn key_space_end() -> Vec<u8> {
    vec![0xff; MAX_KEY_BYTES + 1]
}

/// A key and its value, borrowed from a file's bytes.
pub(crate) type Pair<'a> = (&'a [u8], &'a [u8]);

/// What a complete file is, as recorded in `SnapshotData`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Summary {
    /// Bytes in the file.
    pub size_bytes: u64,
    /// CRC-32 (IEEE) of the whole file.
    pub checksum: u32,
    /// Pairs in the file.
    pub kv_count: u64,
}

/// Writes a snapshot file, hashing and counting as it goes.
pub(crate) struct Encoder<W: Write> {
    out: W,
    hasher: crc32fast::Hasher,
    size_bytes: u64,
    kv_count: u64,
}

impl<W: Write> Encoder<W> {
    /// Starts a file: writes the header.
    pub fn new(out: W) -> io::Result<Encoder<W>> {
        let mut enc = Encoder {
            out,
            hasher: crc32fast::Hasher::new(),
            size_bytes: 0,
            kv_count: 0,
        };
        enc.emit(MAGIC)?;
        enc.emit(&[VERSION])?;
        Ok(enc)
    }

    /// Appends one pair. The caller passes keys in strictly ascending order
    /// and no longer than [`MAX_KEY_BYTES`] (the reader refuses others).
    pub fn add(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        self.emit(&[TAG_RECORD])?;
        self.emit_varint(key.len() as u64)?;
        self.emit(key)?;
        self.emit_varint(value.len() as u64)?;
        self.emit(value)?;
        self.kv_count += 1;
        Ok(())
    }

    /// Writes the end marker; returns the output and the file's summary.
    pub fn finish(mut self) -> io::Result<(W, Summary)> {
        self.emit(&[TAG_END])?;
        self.emit_varint(self.kv_count)?;
        let summary = Summary {
            size_bytes: self.size_bytes,
            checksum: self.hasher.finalize(),
            kv_count: self.kv_count,
        };
        Ok((self.out, summary))
    }

    fn emit_varint(&mut self, v: u64) -> io::Result<()> {
        let (buf, len) = varint_bytes(v);
        self.emit(&buf[..len])
    }

    fn emit(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.hasher.update(bytes);
        self.size_bytes += bytes.len() as u64;
        Ok(())
    }
}

/// Decodes a whole file into its pairs, borrowed from `buf`. Every
/// deviation from the layout is an error naming what was wrong; nothing
/// here panics or allocates by a length read from the file.
pub(crate) fn decode(buf: &[u8]) -> Result<Vec<Pair<'_>>, String> {
    let mut rest = take_header(buf)?;
    let mut pairs: Vec<Pair<'_>> = Vec::new();
    loop {
        match take_byte(&mut rest).map_err(|e| format!("{e} before the end marker"))? {
            TAG_RECORD => {
                let (key, value) = take_record(&mut rest).map_err(|e| {
                    let n = pairs.len();
                    format!("record {n}: {e}")
                })?;
                if let Some((prev, _)) = pairs.last() {
                    if *prev >= key {
                        return Err(format!("record {}: keys out of order", pairs.len()));
                    }
                }
                pairs.push((key, value));
            }
            TAG_END => break,
            tag => return Err(format!("unknown record tag {tag:#04x}")),
        }
    }
    take_end(rest, pairs.len())?;
    Ok(pairs)
}

fn take_header(buf: &[u8]) -> Result<&[u8], String> {
    let rest = buf
        .strip_prefix(MAGIC.as_slice())
        .ok_or("not a snapshot file (bad magic)")?;
    match rest.split_first() {
        Some((&VERSION, rest)) => Ok(rest),
        Some((v, _)) => Err(format!("unsupported version {v}")),
        None => Err("file ends in the header".into()),
    }
}

fn take_record<'a>(rest: &mut &'a [u8]) -> Result<Pair<'a>, String> {
    let key_len = take_varint(rest)?;
    if key_len > MAX_KEY_BYTES as u64 {
        return Err(format!("key of {key_len} bytes exceeds {MAX_KEY_BYTES}"));
    }
    let key = take_bytes(rest, key_len)?;
    let value_len = take_varint(rest)?;
    let value = take_bytes(rest, value_len)?;
    Ok((key, value))
}

fn take_end(mut rest: &[u8], pairs: usize) -> Result<(), String> {
    let count = take_varint(&mut rest).map_err(|e| format!("end marker: {e}"))?;
    if count != pairs as u64 {
        return Err(format!("end marker counts {count} pairs, file has {pairs}"));
    }
    if !rest.is_empty() {
        return Err(format!("{} bytes after the end marker", rest.len()));
    }
    Ok(())
}

fn take_bytes<'a>(rest: &mut &'a [u8], len: u64) -> Result<&'a [u8], String> {
    let len = usize::try_from(len)
        .ok()
        .filter(|&n| n <= rest.len())
        .ok_or_else(|| format!("length {len} runs past the end of the file"))?;
    let (bytes, tail) = rest.split_at(len);
    *rest = tail;
    Ok(bytes)
}

fn take_byte(rest: &mut &[u8]) -> Result<u8, String> {
    let (&b, tail) = rest.split_first().ok_or("file ends early")?;
    *rest = tail;
    Ok(b)
}

/// `v` as a LEB128 varint: the buffer and how many of its bytes are used.
fn varint_bytes(mut v: u64) -> ([u8; MAX_VARINT_BYTES], usize) {
    let mut buf = [0; MAX_VARINT_BYTES];
    let mut len = 0;
    while v >= 0x80 {
        buf[len] = (v as u8) | 0x80;
        v >>= 7;
        len += 1;
    }
    buf[len] = v as u8;
    (buf, len + 1)
}

/// Takes one LEB128 varint; refuses encodings longer than a `u64` needs
/// and bits beyond 64.
fn take_varint(rest: &mut &[u8]) -> Result<u64, String> {
    let mut v = 0u64;
    for i in 0..MAX_VARINT_BYTES {
        let b = take_byte(rest)?;
        let shift = 7 * i as u32;
        // The tenth byte holds only bit 63 and cannot continue.
        if shift == 63 && b > 1 {
            return Err("varint overflows u64".into());
        }
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    // Not reached (a tenth byte either ends the varint or is refused), but
    // an error costs nothing and a panic on file input is never right.
    Err("varint longer than 10 bytes".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put_varint(out: &mut Vec<u8>, v: u64) {
        let (buf, len) = varint_bytes(v);
        out.extend_from_slice(&buf[..len]);
    }

    fn encode(pairs: &[(&[u8], &[u8])]) -> (Vec<u8>, Summary) {
        let mut enc = Encoder::new(Vec::new()).unwrap();
        for (k, v) in pairs {
            enc.add(k, v).unwrap();
        }
        enc.finish().unwrap()
    }

    const PAIRS: &[(&[u8], &[u8])] = &[(b"a", b""), (b"b", &[7; 200]), (b"bb", b"x")];

    #[test]
    fn pairs_round_trip_and_the_summary_describes_the_bytes() {
        let (buf, summary) = encode(PAIRS);
        assert_eq!(decode(&buf).unwrap(), PAIRS);
        assert_eq!(summary.size_bytes, buf.len() as u64);
        assert_eq!(summary.checksum, crc32fast::hash(&buf));
        assert_eq!(summary.kv_count, 3);
        let (empty, summary) = encode(&[]);
        assert!(decode(&empty).unwrap().is_empty());
        assert_eq!(summary.kv_count, 0);
    }

    #[test]
    fn every_strict_prefix_is_rejected() {
        let (buf, _) = encode(PAIRS);
        for len in 0..buf.len() {
            assert!(decode(&buf[..len]).is_err(), "prefix of {len} bytes");
        }
    }

    #[test]
    fn trailing_bytes_and_wrong_counts_are_rejected() {
        let (mut buf, _) = encode(PAIRS);
        buf.push(0);
        assert!(decode(&buf).unwrap_err().contains("after the end marker"));
        let (mut buf, _) = encode(PAIRS);
        *buf.last_mut().unwrap() = 2;
        assert!(decode(&buf).unwrap_err().contains("counts 2"));
    }

    #[test]
    fn bad_headers_tags_and_orders_are_rejected() {
        let (buf, _) = encode(PAIRS);
        let mut bad_magic = buf.clone();
        bad_magic[0] ^= 1;
        assert!(decode(&bad_magic).unwrap_err().contains("magic"));
        let mut bad_version = buf.clone();
        bad_version[MAGIC.len()] = 9;
        assert!(decode(&bad_version).unwrap_err().contains("version 9"));
        let mut bad_tag = buf.clone();
        bad_tag[MAGIC.len() + 1] = 7;
        assert!(decode(&bad_tag).unwrap_err().contains("tag"));
        let (unordered, _) = encode(&[(b"b", b""), (b"a", b"")]);
        assert!(decode(&unordered).unwrap_err().contains("out of order"));
        let (duplicate, _) = encode(&[(b"a", b""), (b"a", b"")]);
        assert!(decode(&duplicate).unwrap_err().contains("out of order"));
    }

    #[test]
    fn huge_lengths_are_errors_not_allocations() {
        let mut buf = MAGIC.to_vec();
        buf.push(VERSION);
        buf.push(TAG_RECORD);
        put_varint(&mut buf, 1);
        buf.push(b'k');
        put_varint(&mut buf, u64::MAX);
        assert!(decode(&buf).unwrap_err().contains("runs past"));
        let long_key = vec![1; MAX_KEY_BYTES + 1];
        let (buf, _) = encode(&[(&long_key, b"")]);
        assert!(decode(&buf).unwrap_err().contains("exceeds"));
        let mut overflow = MAGIC.to_vec();
        overflow.extend([VERSION, TAG_RECORD]);
        overflow.extend([0xff; 9]);
        overflow.push(0x02);
        assert!(decode(&overflow).unwrap_err().contains("overflows"));
        let mut endless = MAGIC.to_vec();
        endless.extend([VERSION, TAG_RECORD]);
        endless.extend([0x80; 11]);
        assert!(decode(&endless).unwrap_err().contains("overflows"));
    }

    #[test]
    fn varints_round_trip() {
        for v in [0, 1, 127, 128, 300, 1 << 35, u64::MAX] {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            let mut rest = buf.as_slice();
            assert_eq!(take_varint(&mut rest), Ok(v));
            assert!(rest.is_empty());
        }
    }

    #[test]
    fn the_key_space_end_is_above_every_legal_key() {
        let end = key_space_end();
        assert!(vec![0xff; MAX_KEY_BYTES].as_slice() < end.as_slice());
        let mut below = vec![0xff; MAX_KEY_BYTES];
        below[MAX_KEY_BYTES - 1] = 0xfe;
        assert!(below < end);
        assert!(b"".as_slice() < end.as_slice());
    }
}
