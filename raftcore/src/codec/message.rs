//! Bodies of what travels between peers: entries and messages.

use super::reader::Reader;
use super::state::{put_snapshot, read_snapshot};
use super::varint::put_varint;
use super::DecodeError;
use crate::types::{Entry, EntryType, Message, MessageType};

/// The smallest entry body: term, index, type and data length, one byte
/// each.
const MIN_ENTRY_BYTES: usize = 4;

const REJECT: u8 = 1;
const LEADER_TRANSFER: u8 = 1 << 1;
const HIBERNATE: u8 = 1 << 2;
const HAS_SNAPSHOT: u8 = 1 << 3;
const MESSAGE_FLAGS: u8 = REJECT | LEADER_TRANSFER | HIBERNATE | HAS_SNAPSHOT;

// The type tables are spelled out rather than derived from declaration
// order, so reordering an enum cannot silently change what stored bytes
// mean.

fn entry_type_byte(t: EntryType) -> u8 {
    match t {
        EntryType::Normal => 0,
        EntryType::ConfChange => 1,
    }
}

fn entry_type_from_byte(b: u8) -> Option<EntryType> {
    Some(match b {
        0 => EntryType::Normal,
        1 => EntryType::ConfChange,
        _ => return None,
    })
}

fn message_type_byte(t: MessageType) -> u8 {
    use MessageType::*;
    match t {
        Append => 0,
        AppendResponse => 1,
        Vote => 2,
        VoteResponse => 3,
        PreVote => 4,
        PreVoteResponse => 5,
        Heartbeat => 6,
        HeartbeatResponse => 7,
        Snapshot => 8,
        TimeoutNow => 9,
        Propose => 10,
        ReadIndex => 11,
        ReadIndexResponse => 12,
    }
}

fn message_type_from_byte(b: u8) -> Option<MessageType> {
    use MessageType::*;
    Some(match b {
        0 => Append,
        1 => AppendResponse,
        2 => Vote,
        3 => VoteResponse,
        4 => PreVote,
        5 => PreVoteResponse,
        6 => Heartbeat,
        7 => HeartbeatResponse,
        8 => Snapshot,
        9 => TimeoutNow,
        10 => Propose,
        11 => ReadIndex,
        12 => ReadIndexResponse,
        _ => return None,
    })
}

pub(super) fn put_entry(e: &Entry, out: &mut Vec<u8>) {
    put_varint(out, e.term);
    put_varint(out, e.index);
    out.push(entry_type_byte(e.entry_type));
    put_varint(out, e.data.len() as u64);
    out.extend_from_slice(&e.data);
}

pub(super) fn read_entry(r: &mut Reader<'_>) -> Result<Entry, DecodeError> {
    let term = r.varint()?;
    let index = r.varint()?;
    let entry_type =
        entry_type_from_byte(r.byte()?).ok_or(DecodeError::new("unknown entry type"))?;
    let data = r.bytes("entry data length exceeds input")?;
    Ok(Entry {
        term,
        index,
        entry_type,
        data,
    })
}

pub(super) fn put_message(m: &Message, out: &mut Vec<u8>) {
    out.push(message_type_byte(m.msg_type));
    for v in [
        m.to,
        m.from,
        m.term,
        m.log_term,
        m.index,
        m.commit,
        m.reject_hint,
        m.stamp,
    ] {
        put_varint(out, v);
    }
    let flag = |set: bool, bit: u8| if set { bit } else { 0 };
    out.push(
        flag(m.reject, REJECT)
            | flag(m.leader_transfer, LEADER_TRANSFER)
            | flag(m.hibernate, HIBERNATE)
            | flag(m.snapshot.is_some(), HAS_SNAPSHOT),
    );
    put_varint(out, m.entries.len() as u64);
    for e in &m.entries {
        put_entry(e, out);
    }
    if let Some(s) = &m.snapshot {
        put_snapshot(s, out);
    }
    put_varint(out, m.context.len() as u64);
    out.extend_from_slice(&m.context);
}

pub(super) fn read_message(r: &mut Reader<'_>) -> Result<Message, DecodeError> {
    let msg_type =
        message_type_from_byte(r.byte()?).ok_or(DecodeError::new("unknown message type"))?;
    let to = r.varint()?;
    let from = r.varint()?;
    let term = r.varint()?;
    let log_term = r.varint()?;
    let index = r.varint()?;
    let commit = r.varint()?;
    let reject_hint = r.varint()?;
    let stamp = r.varint()?;
    let flags = r.flags(MESSAGE_FLAGS, "unknown message flags")?;
    let n = r.count(MIN_ENTRY_BYTES, "more entries than bytes")?;
    let mut entries = Vec::with_capacity(n);
    for _ in 0..n {
        entries.push(read_entry(r)?);
    }
    let snapshot = match flags & HAS_SNAPSHOT {
        0 => None,
        _ => Some(Box::new(read_snapshot(r)?)),
    };
    let context = r.bytes("context length exceeds input")?;
    Ok(Message {
        msg_type,
        to,
        from,
        term,
        log_term,
        index,
        entries,
        commit,
        snapshot,
        reject: flags & REJECT != 0,
        reject_hint,
        stamp,
        leader_transfer: flags & LEADER_TRANSFER != 0,
        hibernate: flags & HIBERNATE != 0,
        context,
    })
}
