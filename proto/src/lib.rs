//! Flotilla's wire protocol: the `.proto` definitions of the PD, store and
//! Raft transport services, and the Rust code tonic and prost generate from
//! them.
//!
//! - [`metapb`]: cluster metadata shared by everyone — stores, regions,
//!   peers, epochs.
//! - [`pdpb`]: the placement driver's `Pd` service (routing, IDs, TSO,
//!   heartbeats, bootstrap) and `PdPeer` (Raft between PD members).
//! - [`kvrpcpb`]: the store's raw key-value service `Kv`, the request
//!   context and the region errors that tell a client how to reroute.
//! - [`raft_serverpb`]: the store-to-store `Raft` service (message batches,
//!   snapshots) and the records a store keeps about itself and its regions.
//! - [`raft_cmdpb`]: the commands a region's Raft log carries.
//!
//! This crate depends on nothing else of Flotilla's: a client compiles it
//! without RocksDB or Raft. Byte fields are [`bytes::Bytes`] so keys, values
//! and Raft payloads are not copied out of the receive buffer.

/// Cluster metadata: stores, regions, peers, epochs.
#[allow(missing_docs, clippy::all)]
pub mod metapb {
    tonic::include_proto!("metapb");
}

/// The placement driver's gRPC services.
#[allow(missing_docs, clippy::all)]
pub mod pdpb {
    tonic::include_proto!("pdpb");
}

/// The store's raw key-value service.
#[allow(missing_docs, clippy::all)]
pub mod kvrpcpb {
    tonic::include_proto!("kvrpcpb");
}

/// Store-to-store Raft transport and the store's local records.
#[allow(missing_docs, clippy::all)]
pub mod raft_serverpb {
    tonic::include_proto!("raft_serverpb");
}

pub use bytes;
pub use prost;
pub use tonic;

/// The commands a region's Raft log carries.
#[allow(missing_docs, clippy::all)]
pub mod raft_cmdpb {
    tonic::include_proto!("raft_cmdpb");
}

/// The raw KV service's request limits, shared by the store (which
/// enforces them) and the client (which checks them before sending, and
/// splits batches to fit). A request past one fails as a whole with
/// `INVALID_ARGUMENT`; nothing of it is written.
pub mod limits {
    /// Largest key, in bytes. Keys written must also be non-empty.
    pub const MAX_KEY_BYTES: usize = 8 << 10;
    /// Largest value, in bytes.
    pub const MAX_VALUE_BYTES: usize = 8 << 20;
    /// Most keys in one batch request.
    pub const MAX_BATCH_KEYS: usize = 10_000;
    /// Most key and value bytes in one batch request.
    pub const MAX_BATCH_BYTES: usize = 32 << 20;
    /// Largest scan limit of one request.
    pub const MAX_SCAN_LIMIT: u32 = 10_000;
    /// Most key and value bytes in one read reply: a scan stops early there
    /// (and says so, `RawScanResponse.truncated`), a batch get past it
    /// fails with `RESOURCE_EXHAUSTED`.
    pub const MAX_REPLY_BYTES: usize = 32 << 20;
    /// Most keys one split cuts at.
    pub const MAX_SPLIT_KEYS: usize = 1_000;
}
