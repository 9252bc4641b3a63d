//! Flotilla's benchmarks. Criterion micro benchmarks live in `benches/`.
//!
//! The load tool (binary `flotilla-ycsb`, module [`ycsb`]) runs YCSB's
//! core workloads against a cluster — one given by `--pd`, or a local one
//! it starts with `--embedded` — and reports throughput and latency per
//! operation, the stores' fsync batches and CPU per operation, and a local
//! RocksDB's synced puts as the reference.
//!
//! The commit-throughput benchmark (`benches/commit.rs`) runs one workload,
//! described by [`workload`], on several Raft implementations in the same
//! criterion run so that their figures can be compared as a ratio. Each
//! implementation has its own in-memory group driver:
//!
//! - `raftrs_group` (feature `raft-rs`): TiKV's raft-rs 0.7, the baseline.
//! - [`raftcore_group`]: Flotilla's own crate; its driver mirrors
//!   `raftrs_group`.
//!
//! The tick benchmark (`benches/tick.rs`) measures what ticking many idle
//! raftcore groups costs a host, awake and hibernated; its groups are in
//! [`idle_groups`].
//!
//! The PD scale benchmark (binary `pd-scale`, module [`pd_scale`]) builds a
//! cluster of 100,000 regions in one PD member and measures region
//! heartbeats per second and `GetRegion` latency through gRPC.
//!
//! The store benchmark (binary `store-bench`, module [`store_bench`]) runs
//! a 3-store cluster and measures raw put and get throughput, the fsync
//! batches behind it, and a plain local RocksDB as the reference.
//!
//! The idle-region benchmark (binary `idle-regions`, module
//! [`idle_regions`]) cuts a 3-store cluster into 10,000 regions and measures
//! what they cost each store while they hibernate (against hibernation
//! off), and how fast the stores serve again after a restart. The
//! lifecycle benchmark (binary `lifecycle-bench`, module [`lifecycle`])
//! times a 96 MiB region's move to a new store and splits under load.

#![warn(missing_docs)]

pub mod cli;
pub use flotilla::http;
pub mod idle_groups;
pub mod idle_regions;
pub mod lifecycle;
pub mod pd_scale;
pub mod raftcore_group;
pub mod store_bench;
pub mod workload;
pub mod ycsb;

#[cfg(feature = "raft-rs")]
pub mod raftrs_group;
