//! A compact binary encoding of raftcore's types, for a host to persist
//! entries, hard state and snapshot metadata, and to send messages as
//! opaque bytes, without raftcore depending on a serialization library.
//!
//! Decoding is meant for untrusted input: a peer's bytes off the network, or
//! a record read back from a disk that may be corrupt. Any input either
//! decodes or returns a [`DecodeError`]; it never panics, and allocates at
//! most in proportion to the input (every count is checked against the bytes
//! left before anything is reserved). Byte payloads (entry and snapshot
//! `data`, message `context`) are zero-copy [`Bytes::slice`]s of the input.
//!
//! ```
//! use bytes::Bytes;
//! use raftcore::codec::{decode_message, encode_message};
//! use raftcore::{Entry, Message, MessageType};
//!
//! let m = Message {
//!     msg_type: MessageType::Append,
//!     to: 2,
//!     from: 1,
//!     term: 3,
//!     entries: vec![Entry::normal(&b"put x=1"[..])],
//!     ..Message::default()
//! };
//! let mut buf = Vec::new();
//! encode_message(&m, &mut buf);
//! assert_eq!(decode_message(&Bytes::from(buf)), Ok(m));
//! ```
//!
//! # Format
//!
//! Every top-level encoding (what an `encode_*` function writes) starts with
//! one format-version byte, currently `1`, and the decoder rejects any
//! other. The rest is a *body*; bodies nest without their own version byte.
//!
//! - Integers are LEB128 varints (seven bits a byte, low group first), in
//!   their minimal encoding: at most 10 bytes, no value above `u64::MAX`.
//! - Byte fields are a varint length, then that many bytes.
//! - Lists are a varint count, then the items.
//! - Enums are one byte; booleans are bits of one flags byte. Unknown enum
//!   values and unknown flag bits are rejected, as are trailing bytes.
//!
//! Because every rule is strict, each value has exactly one encoding: equal
//! values have equal bytes, and re-encoding what decoded reproduces the
//! input.
//!
//! | body | fields, in order |
//! | --- | --- |
//! | `Entry` | `term`, `index`, type byte (0 `Normal`, 1 `ConfChange`), `data` bytes |
//! | `HardState` | `term`, `vote`, `commit` |
//! | `ConfState` | lists `voters`, `learners`, `voters_outgoing`, `learners_next`; flags (bit 0 `auto_leave`) |
//! | `SnapshotMetadata` | `index`, `term`, `ConfState` body |
//! | `Snapshot` | `SnapshotMetadata` body, `data` bytes |
//! | `Message` | type byte, `to`, `from`, `term`, `log_term`, `index`, `commit`, `reject_hint`, `stamp`, flags, `entries` list of `Entry` bodies, `Snapshot` body if flag bit 3, `context` bytes |
//!
//! Message flags: bit 0 `reject`, bit 1 `leader_transfer`, bit 2
//! `hibernate`, bit 3 a snapshot follows the entries. Message type bytes
//! number [`MessageType`](crate::MessageType)'s variants in declaration
//! order, `Append` = 0 to `ReadIndexResponse` = 12.
//!
//! [`ConfChange`](crate::ConfChange) payloads keep their own encoding (see
//! [`ConfChange::encode`](crate::ConfChange::encode)), built from the same
//! varints.
//!
//! # Changing the format
//!
//! Stored records outlive the binary that wrote them. A change that old
//! decoders cannot read needs a new version byte, and decoders must go on
//! reading every version still on disk.

mod message;
mod reader;
mod state;
mod varint;

#[cfg(test)]
mod tests;

use bytes::Bytes;

use crate::types::{ConfState, Entry, HardState, Message, Snapshot, SnapshotMetadata};
use reader::Reader;

pub(crate) use varint::{put_varint, take_byte, take_varint};

/// The version byte every top-level encoding starts with.
const FORMAT_VERSION: u8 = 1;

/// Bytes that are not a valid encoding: truncated, corrupt, or written by an
/// incompatible format version.
///
/// Retrying cannot help. Drop a message that fails to decode (Raft tolerates
/// lost messages); treat a stored record that fails to decode as disk
/// corruption.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed {what}: {reason}")]
pub struct DecodeError {
    what: &'static str,
    reason: &'static str,
}

impl DecodeError {
    /// An error for which the outermost decoder fills in `what`.
    pub(crate) fn new(reason: &'static str) -> DecodeError {
        DecodeError {
            what: "input",
            reason,
        }
    }

    /// Names the record that was being decoded.
    pub(crate) fn within(self, what: &'static str) -> DecodeError {
        DecodeError { what, ..self }
    }
}

/// Appends the encoding of an entry to `out`.
pub fn encode_entry(e: &Entry, out: &mut Vec<u8>) {
    out.push(FORMAT_VERSION);
    message::put_entry(e, out);
}

/// Decodes an entry written by [`encode_entry`]; `data` shares `buf`.
pub fn decode_entry(buf: &Bytes) -> Result<Entry, DecodeError> {
    decode_versioned("entry", buf, message::read_entry)
}

/// Appends the encoding of a hard state to `out`.
pub fn encode_hard_state(hs: &HardState, out: &mut Vec<u8>) {
    out.push(FORMAT_VERSION);
    state::put_hard_state(hs, out);
}

/// Decodes a hard state written by [`encode_hard_state`].
pub fn decode_hard_state(buf: &Bytes) -> Result<HardState, DecodeError> {
    decode_versioned("hard state", buf, state::read_hard_state)
}

/// Appends the encoding of a membership to `out`.
pub fn encode_conf_state(cs: &ConfState, out: &mut Vec<u8>) {
    out.push(FORMAT_VERSION);
    state::put_conf_state(cs, out);
}

/// Decodes a membership written by [`encode_conf_state`].
pub fn decode_conf_state(buf: &Bytes) -> Result<ConfState, DecodeError> {
    decode_versioned("conf state", buf, state::read_conf_state)
}

/// Appends the encoding of snapshot metadata to `out`.
pub fn encode_snapshot_metadata(md: &SnapshotMetadata, out: &mut Vec<u8>) {
    out.push(FORMAT_VERSION);
    state::put_snapshot_metadata(md, out);
}

/// Decodes snapshot metadata written by [`encode_snapshot_metadata`].
pub fn decode_snapshot_metadata(buf: &Bytes) -> Result<SnapshotMetadata, DecodeError> {
    decode_versioned("snapshot metadata", buf, state::read_snapshot_metadata)
}

/// Appends the encoding of a snapshot, metadata and data, to `out`.
pub fn encode_snapshot(s: &Snapshot, out: &mut Vec<u8>) {
    out.push(FORMAT_VERSION);
    state::put_snapshot(s, out);
}

/// Decodes a snapshot written by [`encode_snapshot`]; `data` shares `buf`.
pub fn decode_snapshot(buf: &Bytes) -> Result<Snapshot, DecodeError> {
    decode_versioned("snapshot", buf, state::read_snapshot)
}

/// Appends the encoding of a message, with its entries and snapshot, to
/// `out`.
pub fn encode_message(m: &Message, out: &mut Vec<u8>) {
    out.push(FORMAT_VERSION);
    message::put_message(m, out);
}

/// Decodes a message written by [`encode_message`]; entry data, snapshot
/// data and `context` share `buf`.
pub fn decode_message(buf: &Bytes) -> Result<Message, DecodeError> {
    decode_versioned("message", buf, message::read_message)
}

/// Checks the version byte, reads one body that must use up all of `buf`,
/// and names `what` in any error.
fn decode_versioned<T>(
    what: &'static str,
    buf: &Bytes,
    read_body: fn(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    let mut r = Reader::new(buf);
    let decoded = match r.byte() {
        Ok(FORMAT_VERSION) => read_body(&mut r).and_then(|v| r.finish().map(|()| v)),
        Ok(_) => Err(DecodeError::new("unknown format version")),
        Err(e) => Err(e),
    };
    decoded.map_err(|e| e.within(what))
}
