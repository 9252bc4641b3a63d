//! Bodies of the persisted state: hard state, membership, snapshots.

use super::reader::Reader;
use super::varint::put_varint;
use super::DecodeError;
use crate::types::{ConfState, HardState, Snapshot, SnapshotMetadata};

const AUTO_LEAVE: u8 = 1;

pub(super) fn put_hard_state(hs: &HardState, out: &mut Vec<u8>) {
    put_varint(out, hs.term);
    put_varint(out, hs.vote);
    put_varint(out, hs.commit);
}

pub(super) fn read_hard_state(r: &mut Reader<'_>) -> Result<HardState, DecodeError> {
    Ok(HardState {
        term: r.varint()?,
        vote: r.varint()?,
        commit: r.varint()?,
    })
}

pub(super) fn put_conf_state(cs: &ConfState, out: &mut Vec<u8>) {
    for ids in [
        &cs.voters,
        &cs.learners,
        &cs.voters_outgoing,
        &cs.learners_next,
    ] {
        put_varint(out, ids.len() as u64);
        for &id in ids {
            put_varint(out, id);
        }
    }
    out.push(if cs.auto_leave { AUTO_LEAVE } else { 0 });
}

pub(super) fn read_conf_state(r: &mut Reader<'_>) -> Result<ConfState, DecodeError> {
    let voters = r.varints("more voters than bytes")?;
    let learners = r.varints("more learners than bytes")?;
    let voters_outgoing = r.varints("more outgoing voters than bytes")?;
    let learners_next = r.varints("more next learners than bytes")?;
    let flags = r.flags(AUTO_LEAVE, "unknown conf state flags")?;
    Ok(ConfState {
        voters,
        learners,
        voters_outgoing,
        learners_next,
        auto_leave: flags & AUTO_LEAVE != 0,
    })
}

pub(super) fn put_snapshot_metadata(md: &SnapshotMetadata, out: &mut Vec<u8>) {
    put_varint(out, md.index);
    put_varint(out, md.term);
    put_conf_state(&md.conf_state, out);
}

pub(super) fn read_snapshot_metadata(r: &mut Reader<'_>) -> Result<SnapshotMetadata, DecodeError> {
    Ok(SnapshotMetadata {
        index: r.varint()?,
        term: r.varint()?,
        conf_state: read_conf_state(r)?,
    })
}

pub(super) fn put_snapshot(s: &Snapshot, out: &mut Vec<u8>) {
    put_snapshot_metadata(&s.metadata, out);
    put_varint(out, s.data.len() as u64);
    out.extend_from_slice(&s.data);
}

pub(super) fn read_snapshot(r: &mut Reader<'_>) -> Result<Snapshot, DecodeError> {
    let metadata = read_snapshot_metadata(r)?;
    let data = r.bytes("snapshot data length exceeds input")?;
    Ok(Snapshot { data, metadata })
}
