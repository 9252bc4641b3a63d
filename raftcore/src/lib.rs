//! # raftcore: Raft as a pure state machine
//!
//! raftcore implements the Raft consensus protocol (Ongaro's thesis, 2014)
//! with no I/O, no threads, no clock and no randomness it did not get from
//! its [`Config`]. The host — a store running thousands of groups, the
//! placement driver, a test — owns disks, sockets and time:
//!
//! - **time** enters as [`RawNode::tick`], called at a fixed interval;
//! - **inputs** are messages from peers ([`RawNode::step`]) and local
//!   requests ([`RawNode::propose`], [`RawNode::read_index`],
//!   [`RawNode::transfer_leader`], [`RawNode::propose_conf_change`]);
//! - **storage** is read through the [`Storage`] trait, never written;
//! - **outputs** leave in a [`Ready`]: entries and hard state to persist,
//!   messages to send (some at once, some only after the persist), a
//!   snapshot to install, committed entries to apply, confirmed reads. The
//!   host acknowledges it with [`RawNode::advance`].
//!
//! The same inputs always produce the same outputs, which is what makes the
//! deterministic simulator in `tests/sim` possible.
//!
//! ## What is implemented
//!
//! Elections with randomized timeouts, Pre-Vote and Check-Quorum; pipelined
//! replication with per-follower progress, a bounded in-flight window, a
//! byte limit per message and fast backtracking; commit by counting only
//! current-term entries; a bound on uncommitted bytes; log compaction and
//! snapshots; joint consensus and learners; leadership transfer; ReadIndex
//! and lease reads; hibernation of idle groups; asynchronous apply.
//!
//! ## The Ready loop
//!
//! A single-voter group, driven to commit one proposal. A real host
//! persists `entries` and `hard_state` to disk (one write batch for all its
//! groups) and sends `messages` over the network.
//!
//! ```
//! use raftcore::{Config, ConfState, EntryType, MemStorage, RawNode, StateRole};
//!
//! let storage = MemStorage::with_conf_state(ConfState::with_voters([1]));
//! let mut node = RawNode::new(&Config::new(1), storage).unwrap();
//! node.campaign().unwrap();
//!
//! let mut applied = Vec::new();
//! let mut proposed = false;
//! for _ in 0..10 {
//!     if node.raft().state == StateRole::Leader && !proposed {
//!         node.propose(&b"hello"[..]).unwrap();
//!         proposed = true;
//!     }
//!     if !node.has_ready() {
//!         node.tick();
//!         continue;
//!     }
//!     let mut rd = node.ready();
//!     // 1. Messages that may leave at once (none: no peers here).
//!     assert!(rd.messages.is_empty());
//!     // 2. Persist: a snapshot, new entries, the hard state.
//!     let store = node.storage_mut();
//!     if let Some(snapshot) = rd.snapshot.clone() {
//!         store.apply_snapshot(snapshot).unwrap();
//!     }
//!     store.append(&rd.entries);
//!     if let Some(hs) = rd.hard_state {
//!         store.set_hard_state(hs);
//!     }
//!     // 3. Messages that had to wait for the persist.
//!     assert!(rd.persisted_messages.is_empty());
//!     // 4. Apply what is committed.
//!     for entry in std::mem::take(&mut rd.committed_entries) {
//!         if entry.entry_type == EntryType::Normal && !entry.data.is_empty() {
//!             applied.push(entry.data.clone());
//!         }
//!     }
//!     // 5. Acknowledge.
//!     node.advance(rd);
//!     node.advance_apply();
//! }
//! assert_eq!(applied, vec![&b"hello"[..]]);
//! ```
//!
//! ## Where things are
//!
//! - [`types`]: entries, messages, hard/soft state, snapshots, conf changes.
//! - [`codec`]: their binary encoding, for the host's disk and network.
//! - [`RawNode`] and [`Ready`]: the host's API.
//! - [`Raft`]: the state machine, split by operation (election,
//!   replication, follower, propose, read, transfer, quiesce).
//! - [`log`]: the log with its unstable tail and commit/apply cursors.
//! - [`tracker`] and [`quorum`]: progress of peers and quorum arithmetic.
//! - `confchange`: joint consensus transitions.
//! - [`storage`]: the read-only [`Storage`] trait, [`MemStorage`], and the
//!   conformance suite every implementation runs.
//!
//! ## Reads and clocks
//!
//! - [`ReadOnlyOption::Safe`] (ReadIndex) assumes nothing about clocks: a
//!   read is answered after a quorum acknowledges a heartbeat round sent
//!   after the read arrived.
//! - [`ReadOnlyOption::LeaseBased`] answers at once while the leader holds a
//!   lease; it assumes bounded clock drift and that the host delivers ticks
//!   for all elapsed time. See [`Config::lease_ticks`].

#![deny(missing_docs)]

pub mod codec;
mod confchange;
mod config;
mod error;
pub mod log;
pub mod quorum;
mod raft;
mod raw_node;
mod rng;
mod status;
pub mod storage;
pub mod tracker;
pub mod types;

pub use confchange::conf_state_after;
pub use config::{Config, ReadOnlyOption};
pub use error::{Error, Result, StorageError};
#[cfg(feature = "planted-bugs")]
pub use raft::PlantedBugs;
pub use raft::Raft;
pub use raw_node::{RawNode, Ready, SnapshotStatus};
pub use status::Status;
pub use storage::{MemStorage, RaftState, Storage};
pub use types::{
    ConfChange, ConfChangeSingle, ConfChangeTransition, ConfChangeType, ConfState, Entry,
    EntryType, HardState, Message, MessageType, ReadState, Snapshot, SnapshotMetadata, SoftState,
    StateRole, NO_PEER,
};
