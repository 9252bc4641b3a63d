//! # flotilla-store: the store daemon
//!
//! A store hosts thousands of regions — each a raftcore group — over **one
//! RocksDB** and **one batched transport**, and serves the raw KV API.
//!
//! Being built (issue #4), in this order: the storage layout and each
//! peer's Raft storage ([`engine`], [`peer::storage`]) and snapshot files
//! ([`snap`]); the multi-Raft driver (router, poller pool, one write batch
//! and one fsync per round, apply pool); the transport; the KV service; the
//! daemon.
//!
//! ## Storage layout
//!
//! One RocksDB with three column families (see [`engine::keys`]):
//! - `default`: user data, keyed by the user key;
//! - `raft`: each region's log entries and hard state;
//! - `meta`: each region's local state (range, epoch, peers, tombstone) and
//!   apply state (applied index, truncated index and term), and the store's
//!   identity.
#![deny(missing_docs)]

pub mod cli;
pub mod config;
pub mod engine;
pub mod peer;
pub mod poll;
pub mod snap;
