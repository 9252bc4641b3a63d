//! PD's local persistence: one RocksDB with two column families.
//!
//! - `raft` — the Raft log (`e` + big-endian index → encoded entry), the
//!   hard state and the truncated (compacted) position. Written by the Raft
//!   loop with `sync` before any message that depends on it leaves.
//! - `meta` — the replicated state machine: every metadata key PD stores
//!   (cluster ID, members, stores, regions, ID and TSO high-water marks,
//!   configuration), plus the applied index and the membership as of that
//!   index, written in the same batch as the entries they come from.
//!
//! Only the Raft loop writes; everyone else reads (followers serve
//! `GetMembers` straight from `meta`, a new leader loads its in-memory
//! cluster view from it).

mod engine;
mod log;
pub mod meta;

pub use engine::{Batch, Engine, StorageError, CF_META, CF_RAFT};
pub use log::LogStorage;
