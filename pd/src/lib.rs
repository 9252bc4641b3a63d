//! # flotilla-pd: the placement driver
//!
//! PD is the cluster's brain. It knows every store and every region,
//! answers "which region holds this key, and who leads it?", hands out
//! unique IDs and timestamps, and moves replicas and leaders so every region
//! keeps its replicas and the stores stay balanced.
//!
//! ## A tour
//!
//! - **Replicated metadata** ([`storage`], [`raft`]): the PD members run one
//!   raftcore group. Every durable change — a store registering, changed
//!   regions (batched), the ID and TSO high-water marks, the configuration —
//!   is a [`storage::meta::Command`] replicated through Raft and applied to
//!   the `meta` column family of each member's RocksDB.
//! - **The serving leader** ([`server`]): only the leader, once its state
//!   machine is caught up, builds a [`cluster::Cluster`] from the metadata
//!   and serves; followers answer `NotLeader` with the leader's addresses.
//!   IDs ([`server::alloc::IdAllocator`]) and timestamps
//!   ([`server::alloc::Tso`]) come from memory below a high-water mark
//!   persisted before use, so they never repeat or go back across leader
//!   changes.
//! - **The cluster view** ([`cluster`]): the region tree (by start key, for
//!   routing), stores and their liveness, updated from heartbeats by the
//!   epoch rules.
//! - **Scheduling** ([`schedule`]): pure functions from the view to
//!   operators — the replica and joint-state checkers fix invariants, the
//!   balance schedulers optimise — and the operator controller that hands
//!   each step to the region leader in heartbeat responses.
//! - **Interfaces**: the `Pd` gRPC service (in `flotilla-proto`), the JSON
//!   API and `/metrics` ([`server::http`], [`metrics`]), the `flotilla pd`
//!   flags and config file ([`cli`], [`config`]).
//!
//! ## Starting a member
//!
//! ```
//! use flotilla_pd::config::PdConfig;
//! use flotilla_pd::server::PdServer;
//! use flotilla_proto::pdpb::{pd_client::PdClient, GetMembersRequest};
//!
//! # #[tokio::main] async fn main() -> anyhow::Result<()> {
//! let dir = tempfile::tempdir()?;
//! let cfg = PdConfig {
//!     name: "pd1".into(),
//!     data_dir: dir.path().into(),
//!     client_addr: "127.0.0.1:0".into(),
//!     peer_addr: "127.0.0.1:0".into(),
//!     http_addr: "127.0.0.1:0".into(),
//!     ..PdConfig::default()
//! };
//! let pd = PdServer::start(cfg).await?;
//! let mut client = PdClient::connect(format!("http://{}", pd.addrs().client)).await?;
//! // The member elects itself and publishes its record within a second or two.
//! let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
//! loop {
//!     let resp = client.get_members(GetMembersRequest::default()).await?.into_inner();
//!     if resp.leader.as_ref().is_some_and(|l| l.name == "pd1") {
//!         break;
//!     }
//!     assert!(std::time::Instant::now() < deadline, "no leader: {resp:?}");
//!     tokio::time::sleep(std::time::Duration::from_millis(50)).await;
//! }
//! pd.stop().await;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod cli;
pub mod cluster;
pub mod config;
pub mod error;
pub mod metrics;
pub mod raft;
pub mod schedule;
pub mod server;
pub mod storage;
