//! # flotilla-store: the store daemon
//!
//! A store hosts thousands of regions — each a raftcore group — over **one
//! RocksDB** and **one batched transport**, and serves the raw KV API.
//!
//! ## A tour
//!
//! - [`server::Store`] starts everything: identity from PD (kept in the data
//!   directory), the Raft system, the peers of every region held, gRPC
//!   (`Kv`, `Raft`), the status port, and the PD worker (bootstrap,
//!   heartbeats).
//! - [`driver`]: the multi-Raft driver. [`poll::router`] maps regions to
//!   mailboxes; a fixed pool of pollers runs *rounds* over the regions with
//!   work — one write batch and one fsync for all of them, then one message
//!   batch per destination store ([`driver::handler`]). One ticker for all.
//! - [`peer`]: one region's peer — raftcore over [`peer::storage`], with a
//!   file per operation: [`peer::propose`], [`peer::read`] (lease,
//!   ReadIndex, follower reads), [`peer::ready`], [`peer::snapshot`]. Every
//!   peer is made by [`driver::system::RaftSystem::create_peer`].
//! - [`apply`]: the apply pool — data and apply state in one unsynced batch;
//!   [`apply::admin`]: what a split does on every replica.
//! - Region lifecycle: [`split_check`] measures led regions and picks cut
//!   keys; [`peer::split`] asks PD for IDs (through the [`pd_task`] queue),
//!   proposes the split and starts the new regions' peers.
//! - [`transport`]: one gRPC stream per destination store, snapshots on
//!   their own RPC, a filter chain for tests; [`snap`]: snapshot files.
//! - [`kv`]: the raw KV service and its limits; [`region_error`]: the typed
//!   errors that tell a client how to reroute.
//! - [`metrics`], [`config`], [`cli`], [`fail`] (crash points for tests),
//!   and [`planted`] (known bugs for the fault harness's self-test).
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
pub mod pd_task;
pub mod peer;
pub mod planted;
pub mod poll;
pub mod region_error;
pub mod server;
pub mod snap;
pub mod split_check;
pub mod transport;
