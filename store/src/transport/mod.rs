//! Raft messages between stores.
//!
//! The driver hands each round's messages to a [`Transport`], grouped by
//! destination store; the gRPC implementation keeps one bidirectional
//! stream per destination store and batches what is queued. Tests wrap it
//! with a filter chain to drop, delay or partition.

/// Sends Raft messages to other stores. Never blocks: a message that
/// cannot be queued is dropped (Raft retransmits) and its region is told
/// the peer is unreachable.
pub trait Transport: Send + Sync + 'static {
    /// Queues `msgs` (one round's messages for one store).
    fn send(&self, store_id: u64, msgs: Vec<flotilla_proto::raft_serverpb::RaftMessage>);

    /// Sends a snapshot message, with its file, on the snapshot RPC.
    fn send_snapshot(&self, msg: flotilla_proto::raft_serverpb::RaftMessage);
}

pub mod client;
pub mod filter;
pub mod resolve;
pub mod server;
pub mod snapshot;
