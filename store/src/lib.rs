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
// Region errors are protocol values handed to clients as they are; boxing
// them on the (rare) error path would only add an allocation.
#![allow(clippy::result_large_err)]

pub mod apply;
pub mod cli;
pub mod config;
pub mod driver;
pub mod engine;
pub mod fail;
pub mod kv;
pub mod metrics;
pub mod peer;
pub mod poll;
pub mod region_error;
pub mod server;
pub mod snap;
pub mod transport;
