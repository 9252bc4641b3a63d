//! Applying committed entries to the state machine (the `meta` column
//! family). Applying is idempotent — every operation is a put, a delete or
//! a first-writer-wins insert of a value that never changes — so replaying
//! entries after a crash (the apply batch is not fsynced) is harmless.

use bytes::Bytes;
use flotilla_proto::pdpb;
use prost::Message as _;
use raftcore::{ConfChange, ConfChangeType, Entry, EntryType};

use crate::storage::meta::{self, Command, Op};
use crate::storage::{Engine, StorageError};

/// The context a PD member attaches to a membership change: who proposed
/// it, and the member record to store (for additions).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConfChangeContext {
    /// The proposing member.
    pub proposer: u64,
    /// The proposal's sequence number at the proposer.
    pub seq: u64,
    /// The member being added (its ID is the change's node ID).
    pub member: Option<pdpb::Member>,
}

impl ConfChangeContext {
    /// Encodes the context for [`ConfChange::context`].
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::new();
        out.extend_from_slice(&self.proposer.to_be_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
        if let Some(m) = &self.member {
            m.encode(&mut out).expect("a Vec grows as needed");
        }
        out.into()
    }

    /// Decodes a context written by [`encode`](Self::encode).
    pub fn decode(data: &[u8]) -> Result<ConfChangeContext, String> {
        if data.len() < 16 {
            return Err("conf change context shorter than 16 bytes".into());
        }
        let proposer = meta::decode_u64(&data[..8]).unwrap_or(0);
        let seq = meta::decode_u64(&data[8..16]).unwrap_or(0);
        let member = if data.len() > 16 {
            Some(pdpb::Member::decode(&data[16..]).map_err(|e| e.to_string())?)
        } else {
            None
        };
        Ok(ConfChangeContext {
            proposer,
            seq,
            member,
        })
    }
}

/// What applying one entry produced, for the loop to act on.
pub enum Applied {
    /// An empty entry (a new leader's first) or one with nothing to do.
    Nothing,
    /// A command; `(proposer, seq)` identifies it to its proposer.
    Command {
        /// The proposing member.
        proposer: u64,
        /// Its sequence number.
        seq: u64,
    },
    /// A membership change, still to be handed to raftcore.
    ConfChange(ConfChange, ConfChangeContext),
}

/// Decodes `entry` and queues its writes in `batch`.
///
/// A committed entry that does not decode is a corrupt log; continuing
/// would diverge from the other members, so it is an error the loop stops
/// on.
pub fn apply_entry(
    engine: &Engine,
    batch: &mut crate::storage::Batch<'_>,
    entry: &Entry,
) -> Result<Applied, StorageError> {
    if entry.data.is_empty() {
        return Ok(Applied::Nothing);
    }
    match entry.entry_type {
        EntryType::Normal => {
            let cmd = Command::decode(&entry.data).map_err(|e| corrupt(entry, e))?;
            for op in &cmd.ops {
                apply_op(engine, batch, op)?;
            }
            Ok(Applied::Command {
                proposer: cmd.proposer,
                seq: cmd.seq,
            })
        }
        EntryType::ConfChange => {
            let cc = ConfChange::decode(&entry.data).map_err(|e| corrupt(entry, e))?;
            let ctx = ConfChangeContext::decode(&cc.context).map_err(|e| corrupt(entry, e))?;
            apply_member_change(batch, &cc, &ctx);
            Ok(Applied::ConfChange(cc, ctx))
        }
    }
}

fn apply_op(
    engine: &Engine,
    batch: &mut crate::storage::Batch<'_>,
    op: &Op,
) -> Result<(), StorageError> {
    use crate::storage::CF_META;
    match op {
        Op::Put(k, v) => batch.put(CF_META, k, v),
        Op::Delete(k) => batch.delete(CF_META, k),
        Op::Insert(k, v) => {
            // Values written by Insert never change afterwards, so the
            // on-disk check is exact even with earlier ops in this batch
            // (no command inserts the same key twice).
            if engine.get(CF_META, k)?.is_none() {
                batch.put(CF_META, k, v);
            }
        }
    }
    Ok(())
}

fn apply_member_change(
    batch: &mut crate::storage::Batch<'_>,
    cc: &ConfChange,
    ctx: &ConfChangeContext,
) {
    use crate::storage::CF_META;
    for change in &cc.changes {
        let key = meta::member_key(change.node_id);
        match change.change_type {
            ConfChangeType::RemoveNode => batch.delete(CF_META, &key),
            ConfChangeType::AddNode | ConfChangeType::AddLearnerNode => {
                if let Some(member) = ctx
                    .member
                    .as_ref()
                    .filter(|m| m.member_id == change.node_id)
                {
                    batch.put(CF_META, &key, &member.encode_to_vec());
                }
            }
        }
    }
}

fn corrupt(entry: &Entry, detail: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt {
        what: format!("committed entry {} (term {})", entry.index, entry.term),
        detail: detail.to_string(),
    }
}
