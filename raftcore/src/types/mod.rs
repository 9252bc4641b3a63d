//! The plain data types raftcore exchanges with its host: log entries,
//! messages, persistent and volatile state, snapshots and configuration
//! changes.
//!
//! They are ordinary Rust structs with opaque [`Bytes`](bytes::Bytes) payloads; the host
//! converts them to and from its wire format at its own boundary, so the core
//! never depends on a serialization library. [`codec`](crate::codec) gives
//! them a compact binary encoding of raftcore's own for storage and transport.
//! Each type has a compact, canonical [`Display`](std::fmt::Display) used by
//! the scripted tests.

mod conf_change;
mod entry;
mod message;
mod state;

// `DecodeError` lived here before the codec module existed; the path stays
// valid for existing callers.
pub use crate::codec::DecodeError;
pub use conf_change::{ConfChange, ConfChangeSingle, ConfChangeTransition, ConfChangeType};
pub use entry::{Entry, EntryType};
pub use message::{Message, MessageType};
pub use state::{
    ConfState, HardState, ReadState, Snapshot, SnapshotMetadata, SoftState, StateRole,
};

/// The ID that means "no peer": no vote cast, no leader known. Peer IDs are
/// never zero.
pub const NO_PEER: u64 = 0;
