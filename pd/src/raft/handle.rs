//! The async side's view of the Raft loop.

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Sender, TrySendError};
use flotilla_proto::pdpb;
use parking_lot::RwLock;
use raftcore::{ConfChangeSingle, ConfState, Message, SnapshotStatus, StateRole};
use tokio::sync::{oneshot, watch};

use crate::storage::meta::Op;

/// Why a proposal did not (verifiably) apply.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    /// raftcore refused it (not leader, a conf change already pending, ...).
    #[error("proposal refused: {0}")]
    Refused(String),
    /// Leadership changed while it was in flight: it may or may not apply.
    #[error("leadership changed; the proposal's outcome is unknown")]
    Dropped,
    /// No apply within the deadline: it may or may not apply later.
    #[error("proposal timed out; its outcome is unknown")]
    Timeout,
    /// The loop's input queue is full.
    #[error("the Raft loop is overloaded")]
    Busy,
    /// The member is shutting down.
    #[error("the PD member is stopping")]
    Stopped,
}

/// What the async side asks of the loop.
pub enum Input {
    /// Replicate and apply these operations.
    Propose {
        /// The operations, applied atomically.
        ops: Vec<Op>,
        /// If set, propose only while this member leads in this term:
        /// refused (never forwarded to another leader) otherwise.
        leader_term: Option<u64>,
        /// Completed when the command applies here, or fails.
        done: oneshot::Sender<Result<(), ProposeError>>,
    },
    /// Change membership (one change; joint consensus is not needed for
    /// one member at a time).
    ConfChange {
        /// The change.
        change: ConfChangeSingle,
        /// The member record to store, for additions.
        member: Option<pdpb::Member>,
        /// Completed when the change applies here, or fails.
        done: oneshot::Sender<Result<(), ProposeError>>,
    },
    /// A message from another member.
    Message(Message),
    /// A member could not be reached.
    Unreachable(u64),
    /// How sending a snapshot to a member ended.
    SnapshotStatus(u64, SnapshotStatus),
    /// Hand leadership to this member.
    TransferLeader(u64),
    /// Stop the loop.
    Shutdown,
}

/// The loop's state, published after every Ready.
#[derive(Clone, Debug, Default)]
pub struct RaftStatus {
    /// This member's ID.
    pub id: u64,
    /// Current term.
    pub term: u64,
    /// Current role.
    pub role: StateRole,
    /// The leader this member knows of, 0 if none.
    pub leader_id: u64,
    /// Last applied index.
    pub applied: u64,
    /// Last committed index.
    pub commit: u64,
    /// The current membership.
    pub conf_state: ConfState,
}

/// Leadership as the server cares about it: `ready` means this member
/// leads in `term` and has applied every entry of earlier terms, so its
/// state machine is complete and it may start serving.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LeaderEvent {
    /// The term.
    pub term: u64,
    /// Whether this member leads, caught up, in `term`.
    pub ready: bool,
}

/// A cheap, cloneable handle to the Raft loop.
#[derive(Clone)]
pub struct RaftHandle {
    pub(super) tx: Sender<Input>,
    pub(super) status: Arc<RwLock<RaftStatus>>,
    pub(super) leader: watch::Receiver<LeaderEvent>,
}

impl RaftHandle {
    /// Proposes `ops` and waits until they apply on this member. On a
    /// follower the proposal is forwarded to the leader.
    pub async fn propose(&self, ops: Vec<Op>, timeout: Duration) -> Result<(), ProposeError> {
        let (done, rx) = oneshot::channel();
        self.send(Input::Propose {
            ops,
            leader_term: None,
            done,
        })?;
        wait(rx, timeout).await
    }

    /// Proposes `ops` only if this member still leads in `term`, and waits
    /// until they apply. For writes derived from a leader's in-memory
    /// state (ID and TSO high-water marks, regions, stores): a deposed
    /// leader's write, forwarded to its successor, would overwrite newer
    /// state with older — e.g. lower the persisted TSO bound below what
    /// the new leader already handed out.
    pub async fn propose_as_leader(
        &self,
        ops: Vec<Op>,
        term: u64,
        timeout: Duration,
    ) -> Result<(), ProposeError> {
        let (done, rx) = oneshot::channel();
        self.send(Input::Propose {
            ops,
            leader_term: Some(term),
            done,
        })?;
        wait(rx, timeout).await
    }

    /// Proposes a membership change and waits until it applies here.
    pub async fn change_member(
        &self,
        change: ConfChangeSingle,
        member: Option<pdpb::Member>,
        timeout: Duration,
    ) -> Result<(), ProposeError> {
        let (done, rx) = oneshot::channel();
        self.send(Input::ConfChange {
            change,
            member,
            done,
        })?;
        wait(rx, timeout).await
    }

    /// Hands a message from another member to the loop; false if the
    /// queue is full (the message is dropped; Raft retransmits).
    pub fn step(&self, m: Message) -> bool {
        self.tx.try_send(Input::Message(m)).is_ok()
    }

    /// Sends a control input (unreachable and snapshot reports, leader
    /// transfer).
    pub fn send(&self, input: Input) -> Result<(), ProposeError> {
        self.tx.try_send(input).map_err(|e| match e {
            TrySendError::Full(_) => ProposeError::Busy,
            TrySendError::Disconnected(_) => ProposeError::Stopped,
        })
    }

    /// The loop's latest published state.
    pub fn status(&self) -> RaftStatus {
        self.status.read().clone()
    }

    /// A receiver of leadership changes.
    pub fn leadership(&self) -> watch::Receiver<LeaderEvent> {
        self.leader.clone()
    }

    /// Stops the loop (it finishes the Ready in hand first).
    pub fn shutdown(&self) {
        // A full queue is drained by a live loop, and a dead loop needs no
        // stopping, so blocking here is never needed.
        let _ = self.tx.send(Input::Shutdown);
    }
}

async fn wait(
    rx: oneshot::Receiver<Result<(), ProposeError>>,
    timeout: Duration,
) -> Result<(), ProposeError> {
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(ProposeError::Stopped),
        Err(_) => Err(ProposeError::Timeout),
    }
}
