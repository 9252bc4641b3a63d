//! # flotilla-client: the Rust client SDK
//!
//! The SDK talks to Flotilla the way TiKV's clients do: it asks the
//! placement driver (PD) where a key lives, caches the answer, and talks to
//! the region's leader directly. It depends only on `flotilla-proto`, so a
//! client never compiles RocksDB.
//!
//! ## A tour
//!
//! - [`pd`]: a robust PD client, shared by the SDK and the store daemon.
//!   It finds the PD leader from any member, follows it across leader
//!   changes, retries with capped, jittered backoff inside a per-call
//!   deadline, and returns typed errors ([`pd::PdError`]) that say whether
//!   to retry. Timestamps come over one long-lived `Tso` stream; a store's
//!   region heartbeats over a stream handle that reopens itself on the new
//!   leader.
//! - The region cache, key routing and the KV API arrive with their own
//!   issue.
//!
//! ## Talking to PD
//!
//! ```
//! use flotilla_client::pd::{PdClient, PdClientConfig};
//! use flotilla_pd::config::PdConfig;
//! use flotilla_pd::server::PdServer;
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A one-member PD in this process (a real deployment runs `flotilla pd`).
//! // Its client port must be a real one: the member publishes it, and the
//! // client follows the published address of the leader.
//! let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
//! let dir = tempfile::tempdir()?;
//! let pd = PdServer::start(PdConfig {
//!     name: "pd1".into(),
//!     data_dir: dir.path().into(),
//!     client_addr: format!("127.0.0.1:{port}"),
//!     peer_addr: "127.0.0.1:0".into(),
//!     http_addr: "127.0.0.1:0".into(),
//!     ..PdConfig::default()
//! })
//! .await?;
//!
//! // `connect` waits (up to the configured timeout, 10 s by default) for
//! // the member to elect itself and publish its address.
//! let endpoints = vec![format!("127.0.0.1:{port}")];
//! let client = PdClient::connect(&endpoints, PdClientConfig::default()).await?;
//! assert_ne!(client.cluster_id(), 0);
//!
//! let ids = client.alloc_id(3).await?;
//! assert_eq!(ids.end - ids.start, 3);
//! let (t1, t2) = (client.get_tso(1).await?, client.get_tso(1).await?);
//! assert!(t1 < t2);
//! assert!(!client.is_bootstrapped().await?);
//!
//! pd.stop().await;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod pd;
