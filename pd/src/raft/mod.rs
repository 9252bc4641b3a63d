//! Replication of PD's metadata: one raftcore group among the PD members.
//!
//! - [`node`]: the Raft loop — a dedicated thread owning the
//!   [`RawNode`](raftcore::RawNode), its [`LogStorage`](crate::storage::LogStorage)
//!   and the state machine apply; one fsynced write per Ready.
//! - [`handle`]: how the async server talks to the loop — propose a
//!   command and wait for it to apply, change membership, read status.
//! - [`transport`]: batched Raft messages to and from other members over
//!   the `PdPeer` gRPC service.
//! - [`apply`]: turning committed entries into `meta` writes.

mod apply;
pub mod handle;
pub mod node;
pub mod transport;

pub use handle::{LeaderEvent, ProposeError, RaftHandle, RaftStatus};
pub use node::{spawn, NodeConfig};
