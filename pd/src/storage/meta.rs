//! The replicated state machine's key layout and its command format.
//!
//! Every change to PD's metadata is a [`Command`]: a list of key operations
//! proposed through Raft and applied, in log order, to the `meta` column
//! family on every member. Keys are readable strings so `ldb` dumps and
//! snapshots can be inspected by eye.

use bytes::{Buf, BufMut, Bytes};

/// Internal: the index of the last applied entry (u64, big-endian).
pub const APPLIED_KEY: &[u8] = b"!applied";
/// Internal: the membership as of the applied index (raftcore codec).
pub const CONF_STATE_KEY: &[u8] = b"!conf_state";
/// Every replicated application key starts with this prefix; snapshots
/// carry exactly these keys.
pub const DATA_PREFIX: &[u8] = b"/";
/// One past the last data key (for range deletes).
pub const DATA_END: &[u8] = b"0";

/// The cluster ID (u64, big-endian).
pub const CLUSTER_ID_KEY: &[u8] = b"/cluster/id";
/// The first region as created by bootstrap (`metapb::Region`).
pub const BOOTSTRAP_KEY: &[u8] = b"/cluster/bootstrap";
/// The ID allocator's persisted high-water mark: no ID at or above it was
/// handed out (u64, big-endian).
pub const ALLOC_ID_KEY: &[u8] = b"/alloc/id";
/// The TSO's persisted upper bound in physical milliseconds: no timestamp
/// at or above it was handed out (u64, big-endian).
pub const TSO_KEY: &[u8] = b"/alloc/tso";
/// The scheduling configuration (JSON).
pub const SCHEDULE_CONFIG_KEY: &[u8] = b"/config/schedule";
/// The scheduler list with pause state (JSON).
pub const SCHEDULERS_KEY: &[u8] = b"/config/schedulers";
/// Prefix of member records (`pdpb::Member`).
pub const MEMBER_PREFIX: &[u8] = b"/member/";
/// Prefix of store records (`metapb::Store`).
pub const STORE_PREFIX: &[u8] = b"/store/";
/// Prefix of region records (`pdpb::RegionInfo`: region and leader).
pub const REGION_PREFIX: &[u8] = b"/region/";

/// The key of member `id`.
pub fn member_key(id: u64) -> Vec<u8> {
    id_key(MEMBER_PREFIX, id)
}

/// The key of store `id`.
pub fn store_key(id: u64) -> Vec<u8> {
    id_key(STORE_PREFIX, id)
}

/// The key of region `id`.
pub fn region_key(id: u64) -> Vec<u8> {
    id_key(REGION_PREFIX, id)
}

fn id_key(prefix: &[u8], id: u64) -> Vec<u8> {
    // Zero-padded decimal: key order is ID order, and still readable.
    let mut key = prefix.to_vec();
    key.extend_from_slice(format!("{id:020}").as_bytes());
    key
}

/// Encodes a u64 value.
pub fn encode_u64(v: u64) -> [u8; 8] {
    v.to_be_bytes()
}

/// Decodes a u64 value written by [`encode_u64`].
pub fn decode_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// One key operation of a [`Command`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Sets `key` to `value`.
    Put(Bytes, Bytes),
    /// Removes `key`.
    Delete(Bytes),
    /// Sets `key` to `value` only if it has no value yet (first writer
    /// wins, e.g. the cluster ID).
    Insert(Bytes, Bytes),
}

impl Op {
    /// The key the operation touches.
    pub fn key(&self) -> &[u8] {
        match self {
            Op::Put(k, _) | Op::Delete(k) | Op::Insert(k, _) => k,
        }
    }
}

/// A replicated change: key operations applied atomically, tagged with who
/// proposed it so the proposer can tell when its own command applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// The proposing member.
    pub proposer: u64,
    /// A number unique per proposer process run (with `proposer`, it
    /// identifies the proposal).
    pub seq: u64,
    /// The operations.
    pub ops: Vec<Op>,
}

const COMMAND_VERSION: u8 = 1;

impl Command {
    /// Encodes the command as an entry payload.
    pub fn encode(&self) -> Bytes {
        let size: usize = self.ops.iter().map(|op| 9 + op.key().len() + 64).sum();
        let mut out = Vec::with_capacity(24 + size);
        out.put_u8(COMMAND_VERSION);
        out.put_u64(self.proposer);
        out.put_u64(self.seq);
        out.put_u32(self.ops.len() as u32);
        for op in &self.ops {
            match op {
                Op::Put(k, v) => put_kv(&mut out, 0, k, Some(v)),
                Op::Delete(k) => put_kv(&mut out, 1, k, None),
                Op::Insert(k, v) => put_kv(&mut out, 2, k, Some(v)),
            }
        }
        out.into()
    }

    /// Decodes an entry payload written by [`encode`](Self::encode).
    pub fn decode(data: &Bytes) -> Result<Command, String> {
        let mut buf = data.clone();
        if buf.remaining() < 21 {
            return Err("command shorter than its header".into());
        }
        if buf.get_u8() != COMMAND_VERSION {
            return Err("unknown command version".into());
        }
        let proposer = buf.get_u64();
        let seq = buf.get_u64();
        let n = buf.get_u32() as usize;
        if n > buf.remaining() {
            return Err("operation count exceeds payload".into());
        }
        let mut ops = Vec::with_capacity(n);
        for _ in 0..n {
            ops.push(take_op(&mut buf)?);
        }
        if buf.has_remaining() {
            return Err("trailing bytes after the last operation".into());
        }
        Ok(Command { proposer, seq, ops })
    }
}

fn put_kv(out: &mut Vec<u8>, tag: u8, key: &[u8], value: Option<&Bytes>) {
    out.put_u8(tag);
    out.put_u32(key.len() as u32);
    out.put_slice(key);
    if let Some(v) = value {
        out.put_u32(v.len() as u32);
        out.put_slice(v);
    }
}

fn take_op(buf: &mut Bytes) -> Result<Op, String> {
    if !buf.has_remaining() {
        return Err("truncated operation".into());
    }
    let tag = buf.get_u8();
    let key = take_bytes(buf)?;
    match tag {
        0 => Ok(Op::Put(key, take_bytes(buf)?)),
        1 => Ok(Op::Delete(key)),
        2 => Ok(Op::Insert(key, take_bytes(buf)?)),
        t => Err(format!("unknown operation tag {t}")),
    }
}

fn take_bytes(buf: &mut Bytes) -> Result<Bytes, String> {
    if buf.remaining() < 4 {
        return Err("truncated length".into());
    }
    let len = buf.get_u32() as usize;
    if len > buf.remaining() {
        return Err("length exceeds payload".into());
    }
    Ok(buf.split_to(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Command {
        Command {
            proposer: 7,
            seq: 42,
            ops: vec![
                Op::Put(Bytes::from_static(b"/a"), Bytes::from_static(b"1")),
                Op::Delete(Bytes::from_static(b"/b")),
                Op::Insert(Bytes::from_static(b"/c"), Bytes::new()),
            ],
        }
    }

    #[test]
    fn command_round_trips() {
        let cmd = sample();
        assert_eq!(Command::decode(&cmd.encode()), Ok(cmd));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let data = sample().encode();
        for len in 0..data.len() {
            assert!(Command::decode(&data.slice(..len)).is_err(), "len {len}");
        }
        let mut longer = data.to_vec();
        longer.push(0);
        assert!(Command::decode(&Bytes::from(longer)).is_err());
    }

    #[test]
    fn id_keys_sort_by_id() {
        assert!(store_key(9) < store_key(10));
        assert!(region_key(u64::MAX).starts_with(REGION_PREFIX));
        assert!(DATA_PREFIX < DATA_END && REGION_PREFIX < DATA_END);
    }
}
