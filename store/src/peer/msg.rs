//! What a peer's mailbox carries, and how answers get back to callers.

use bytes::Bytes;
use flotilla_proto::kvrpcpb::{Context, RegionError};
use flotilla_proto::metapb;
use flotilla_proto::raft_cmdpb;
use flotilla_proto::raft_serverpb::{RaftApplyState, RaftMessage};
use tokio::sync::oneshot;

use crate::split_check::SplitCheckOutcome;

/// A message for one region's peer.
pub enum PeerMsg {
    /// A Raft message from another store (envelope and decoded message).
    Raft(Box<InboundRaft>),
    /// A client write to propose.
    Write(WriteCmd),
    /// A client read to make linearizable.
    Read(ReadCmd),
    /// The apply pool finished entries.
    Applied(ApplyResult),
    /// The transport could not reach a peer.
    Unreachable {
        /// The peer's ID.
        to_peer: u64,
    },
    /// How sending a snapshot to a peer ended.
    SnapshotSent {
        /// The peer's ID.
        to_peer: u64,
        /// Whether the receiver took it.
        ok: bool,
    },
    /// Nothing but "look at your state again" (e.g. more Ready work).
    Wake,
    /// The split checker measured the region.
    SplitCheckResult(SplitCheckOutcome),
    /// Split the region (PD's operator, the API): at `keys`, or — with no
    /// keys — wherever the checker finds the middle.
    Split(SplitCmd),
    /// PD handed out the IDs for a split this peer asked for: propose it.
    ProposeSplit(ProposeSplit),
    /// Campaign now (a split's new region, on the store that led the
    /// original: it has applied the split, so it may take over at once).
    Campaign,
    /// Change the region's membership (a PD operator step; no changes:
    /// leave the joint configuration).
    ChangePeer {
        /// The epoch the step was meant for.
        epoch: metapb::RegionEpoch,
        /// The changes.
        changes: Vec<flotilla_proto::pdpb::ChangePeer>,
    },
    /// This (uninitialized) peer's region was written here — by a split,
    /// or by the cluster's bootstrap: load it.
    InitFromSplit,
    /// Stores this hibernating region depends on went silent — its
    /// leader's (a follower) or a quorum of its voters' (a leader): wake,
    /// to elect a new leader or to step down.
    PeersUnheard,
    /// Move leadership to the peer on `to_store` (a PD operator step).
    TransferLeader {
        /// The epoch the step was meant for.
        epoch: metapb::RegionEpoch,
        /// The peer to lead.
        to: metapb::Peer,
    },
}

/// A request to split a region.
pub struct SplitCmd {
    /// The epoch the requester knew (a mismatch refuses the split).
    pub epoch: metapb::RegionEpoch,
    /// The requester's routing context, checked like a client request's
    /// (`None` for PD's operator steps).
    pub ctx: Option<Context>,
    /// Cut keys; empty: the middle.
    pub keys: Vec<Bytes>,
    /// Who waits for the outcome.
    pub cb: Option<WriteCallback>,
}

/// A split with its IDs, ready to propose.
pub struct ProposeSplit {
    /// The epoch the IDs were asked for.
    pub epoch: metapb::RegionEpoch,
    /// Cut keys, sorted.
    pub keys: Vec<Bytes>,
    /// One per key: the new region's ID and its peers' IDs.
    pub ids: Vec<flotilla_proto::pdpb::SplitId>,
    /// Who waits for the outcome.
    pub cb: Option<WriteCallback>,
}

/// A Raft message as the transport received it.
pub struct InboundRaft {
    /// The envelope (peers, epoch, range).
    pub envelope: RaftMessage,
    /// The raftcore message, decoded off the poller threads.
    pub message: raftcore::Message,
}

/// Keys a request touches, checked against the region's range.
#[derive(Clone, Debug)]
pub enum KeyCheck {
    /// Each key must be in the region.
    Keys(Vec<Bytes>),
    /// The range's start must be in the region; its end may exceed it
    /// (reads are clamped to the region).
    RangeStart(Bytes),
    /// A reverse scan's exclusive upper bound (empty: the key space's
    /// end): the keys just below it must be in the region.
    Below(Bytes),
    /// The whole range must be in the region (an empty end means the
    /// region's end).
    Range(Bytes, Bytes),
}

/// A client write.
pub struct WriteCmd {
    /// Where the client meant it to go.
    pub ctx: Context,
    /// The commands, applied atomically in order.
    pub requests: Vec<raft_cmdpb::Request>,
    /// Who waits for the outcome.
    pub cb: WriteCallback,
}

/// The outcome of an applied write: one result per request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WriteResponse {
    /// For each compare-and-swap, in request order.
    pub cas: Vec<CasOutcome>,
    /// For a split: the regions after it, in key order.
    pub regions: Vec<metapb::Region>,
}

/// What a compare-and-swap found and did.
#[derive(Clone, Debug, PartialEq)]
pub struct CasOutcome {
    /// Whether the value was swapped in.
    pub succeed: bool,
    /// The value before (`None`: the key did not exist).
    pub previous: Option<Bytes>,
}

/// Receives a write's outcome.
pub type WriteCallback = oneshot::Sender<Result<WriteResponse, RegionError>>;

/// A client read: once this peer may serve it linearizably, the callback
/// gets the region as it is now and the caller reads the engine.
pub struct ReadCmd {
    /// Where the client meant it to go (and whether a follower read).
    pub ctx: Context,
    /// Keys it reads.
    pub keys: KeyCheck,
    /// Who waits for the go-ahead.
    pub cb: ReadCallback,
}

/// Receives the go-ahead for a read: the region whose range bounds it.
pub type ReadCallback = oneshot::Sender<Result<metapb::Region, RegionError>>;

/// What the apply pool reports after applying entries of a region.
#[derive(Clone, Debug)]
pub struct ApplyResult {
    /// The apply state now persisted (unsynced).
    pub apply_state: RaftApplyState,
    /// Term of the entry at `apply_state.applied_index`.
    pub applied_term: u64,
    /// Bytes of commands applied since the region was registered (how
    /// much it may have grown).
    pub written_bytes: u64,
}
