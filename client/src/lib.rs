//! # flotilla-client: the Rust client SDK
//!
//! The SDK talks to Flotilla the way TiKV's clients do: it asks the
//! placement driver (PD) where a key lives, caches the answer, and talks to
//! the region's leader directly. It depends only on `flotilla-proto`, so a
//! client never compiles RocksDB.
//!
//! ## A tour
//!
//! - [`RawClient`]: the key-value API. `get`, `put`, `delete`,
//!   `compare_and_swap`; `batch_get`, `batch_put`, `batch_delete`; `scan`,
//!   `scan_keys`, `scan_reverse`, `scan_keys_reverse` and `delete_range` over
//!   Rust range syntax.
//!   Keys and values are anything that converts into `Vec<u8>` (`&str`,
//!   `String`, `&[u8]`, `Vec<u8>`, `Bytes`); reads return [`bytes::Bytes`].
//! - [`Config`]: deadlines, backoff, connections per store, batch
//!   concurrency, follower reads, and combining concurrent `get`s and
//!   `put`s into batches (on by default); built with [`Config::builder`].
//!   One call can take another deadline with [`RawClient::with_timeout`].
//! - [`Error`]: one error type whose predicates say what to do —
//!   [`Error::is_retryable`], [`Error::is_undetermined`] (a write whose
//!   outcome is unknown), [`Error::is_invalid_argument`].
//! - [`pd`]: the PD client underneath, shared with the store daemon.
//!
//! ### How a call finds its region
//!
//! The client keeps a **region cache**: regions ordered by start key, each
//! with the peer believed to lead. A miss asks PD once for the region and
//! its neighbours, and concurrent misses for one key share that request.
//! Stores correct the cache as they refuse requests: a split comes back
//! with the new regions (`EpochNotMatch`), a leader change with the new
//! leader (`NotLeader`), so a busy client rarely asks PD at all. Batches
//! are grouped by region and sent concurrently; scans walk the regions of
//! their range in order.
//!
//! ### Retries and unknown outcomes
//!
//! Every call has a deadline ([`Config::timeout`], 10 s by default) and
//! retries within it, with exponential backoff and jitter, whatever is safe
//! to retry. Reads are retried even when an attempt may have been served.
//! Writes are not — not even `put`: a put that landed, was overwritten by
//! another client, then landed again from a retry would undo that write.
//! When a write's attempt may have applied (a lost connection, a timeout,
//! a leader change while it was in flight) it fails with
//! [`Error::Undetermined`] instead of guessing. A caller that is a key's
//! only writer may put again.
//!
//! ## Example
//!
//! A one-store cluster in this process (a real deployment runs `flotilla
//! pd` and `flotilla store`, or `flotilla playground` for a local one):
//!
//! ```
//! use flotilla_client::{Config, RawClient};
//! # use flotilla_pd::{config::PdConfig, server::PdServer};
//! # use flotilla_store::{config::StoreConfig, server::Store};
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
//! # let dir = tempfile::tempdir()?;
//! # let mut pd_config = PdConfig {
//! #     name: "pd1".into(),
//! #     data_dir: dir.path().join("pd"),
//! #     client_addr: format!("127.0.0.1:{port}"),
//! #     peer_addr: "127.0.0.1:0".into(),
//! #     http_addr: "127.0.0.1:0".into(),
//! #     ..PdConfig::default()
//! # };
//! # pd_config.schedule.max_replicas = 1;
//! # let pd = PdServer::start(pd_config).await?;
//! # let pd_endpoint = format!("127.0.0.1:{port}");
//! # let store = Store::start(StoreConfig {
//! #     pd: vec![pd_endpoint.clone()],
//! #     addr: "127.0.0.1:0".into(),
//! #     status_addr: "127.0.0.1:0".into(),
//! #     data_dir: dir.path().join("store"),
//! #     ..StoreConfig::default()
//! # }).await?;
//! let client = RawClient::connect([pd_endpoint], Config::default()).await?;
//!
//! client.put("fruit/apple", "red").await?;
//! client.batch_put([("fruit/banana", "yellow"), ("fruit/cherry", "dark red")]).await?;
//! assert_eq!(client.get("fruit/apple").await?.as_deref(), Some(&b"red"[..]));
//!
//! // Scans take Rust range syntax and a limit.
//! let fruit = client.scan("fruit/".."fruit0", 10).await?;
//! assert_eq!(fruit.len(), 3);
//! let last = client.scan_reverse("fruit/".., 1).await?;
//! assert_eq!(last[0].key, "fruit/cherry");
//!
//! // Compare-and-swap returns what was there and whether it swapped.
//! let (previous, swapped) = client
//!     .compare_and_swap("fruit/apple", Some("red"), "green")
//!     .await?;
//! assert!(swapped && previous.as_deref() == Some(&b"red"[..]));
//! let (_, swapped) = client
//!     .compare_and_swap("fruit/apple", Some("red"), "blue")
//!     .await?;
//! assert!(!swapped);
//!
//! // Bad input is refused before anything is sent.
//! let err = client.put("", "no key").await.unwrap_err();
//! assert!(err.is_invalid_argument());
//!
//! client.delete_range("fruit/"..).await?;
//! assert!(client.scan(.., 10).await?.is_empty());
//! # store.stop().await;
//! # pd.stop().await;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod cache;
mod config;
mod conn;
mod error;
mod key;
pub mod pd;
mod raw;
mod retry;
mod rpc;

pub use bytes::Bytes;
pub use config::{Config, ConfigBuilder};
pub use error::{Error, Result};
pub use key::{key_after, IntoKeyRange, KeyRange, KvPair};
pub use raw::RawClient;
