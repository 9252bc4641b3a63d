//! A robust client for the placement driver (PD), for stores and the SDK.
//!
//! [`PdClient::connect`] asks the given endpoints for the member list with
//! `GetMembers` (any member answers, without a cluster ID), learns the
//! cluster ID from the answer and connects to the leader. Every call then
//! carries the cluster ID and follows the leader:
//!
//! - `NOT_LEADER`: switch to the leader the error names, or ask every known
//!   member again (`GetMembers`), and retry.
//! - `UNAVAILABLE`, connection refused or reset, an attempt that takes
//!   longer than [`PdClientConfig::rpc_timeout`]: back off and rediscover.
//! - Any other PD error returns at once as a typed [`PdError`]: the caller
//!   knows best (a store retries `Bootstrap` on `NOT_ENOUGH_STORES`).
//!
//! All of it is bounded by the call's deadline, [`PdClientConfig::timeout`].
//! Backoff is exponential from [`PdClientConfig::backoff_base`], doubling
//! per failure up to [`PdClientConfig::backoff_max`], each delay drawn from
//! `[d/2, d]` (jitter), and never sleeps past the deadline. A call that runs
//! out of time returns [`PdError::Timeout`] naming the last problem (or
//! [`PdError::NoLeader`] when the members answered but knew no leader).
//!
//! The client is cheap to clone (an `Arc` inside) and can be used from many
//! tasks at once. Timestamps go over one `Tso` stream, reopened on failure;
//! region heartbeats over a [`RegionHeartbeatSender`]/[`RegionHeartbeatReceiver`]
//! pair that reopens its stream on the new leader after a failover.

pub(crate) mod backoff;
mod client;
mod error;
mod heartbeat;
mod leader;
mod retry;
mod tso;

use std::time::Duration;

pub use client::PdClient;
pub use error::PdError;
pub use heartbeat::{
    RegionHeartbeatReceiver, RegionHeartbeatSender, HEARTBEAT_BATCH_CAPACITY,
    HEARTBEAT_RESPONSE_CAPACITY,
};
pub use tso::Timestamp;

/// How a [`PdClient`] times and retries its calls.
#[derive(Clone, Debug)]
pub struct PdClientConfig {
    /// Deadline of one call, retries and rediscovery included (and of
    /// [`PdClient::connect`]).
    pub timeout: Duration,
    /// Deadline of one attempt of one call: a hung leader costs this much
    /// before the client looks elsewhere.
    pub rpc_timeout: Duration,
    /// Deadline of one TCP connect.
    pub connect_timeout: Duration,
    /// First backoff delay after a retryable failure.
    pub backoff_base: Duration,
    /// Largest backoff delay.
    pub backoff_max: Duration,
}

impl Default for PdClientConfig {
    /// 10 s per call, 3 s per attempt, 1 s per connect, backoff 20 ms
    /// doubling to 1 s: a PD leader election takes about 1 s with PD's
    /// default timings, so a failover costs a call a few retries, not its
    /// deadline.
    fn default() -> PdClientConfig {
        PdClientConfig {
            timeout: Duration::from_secs(10),
            rpc_timeout: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(1),
            backoff_base: Duration::from_millis(20),
            backoff_max: Duration::from_secs(1),
        }
    }
}

/// The PD members, as `GetMembers` reports them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Members {
    /// Every member, in ID order.
    pub members: Vec<flotilla_proto::pdpb::Member>,
    /// The leader, when there is one.
    pub leader: Option<flotilla_proto::pdpb::Member>,
}
