//! The PD client's error type: one variant per PD `ErrorType`, plus what can
//! go wrong between us and PD.

use flotilla_proto::pdpb::{self, ErrorType};
use std::time::Duration;

/// What went wrong talking to PD, and whether trying again can help
/// ([`PdError::is_retryable`]).
///
/// The client itself retries `NotLeader`, `Unavailable` and transport
/// failures until the call's deadline; every other PD error is returned at
/// once, because only the caller knows whether to wait (a store retries
/// `Bootstrap` on [`PdError::NotEnoughStores`]) or give up.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PdError {
    /// The member asked does not lead and named no leader. Seen only from
    /// a call that ran out of time while following leaders.
    #[error("PD member is not the leader: {0}")]
    NotLeader(String),
    /// The request carried another cluster's ID. Do not retry: the client
    /// is pointed at the wrong cluster.
    #[error("PD cluster ID mismatch: {0}")]
    ClusterIdMismatch(String),
    /// The cluster has no first region yet; a store must bootstrap it.
    #[error("PD cluster is not bootstrapped: {0}")]
    NotBootstrapped(String),
    /// The cluster was bootstrapped already.
    #[error("PD cluster is already bootstrapped: {0}")]
    AlreadyBootstrapped(String),
    /// The request is malformed (the message says how). Fix the caller.
    #[error("invalid argument to PD: {0}")]
    InvalidArgument(String),
    /// PD knows no such store.
    #[error("store not found in PD: {0}")]
    StoreNotFound(String),
    /// The store was decommissioned and may not rejoin.
    #[error("store is a tombstone: {0}")]
    StoreTombstone(String),
    /// PD knows no such region.
    #[error("region not found in PD: {0}")]
    RegionNotFound(String),
    /// The region report is older than what PD knows; refresh and resend.
    #[error("stale region: {0}")]
    StaleRegion(String),
    /// Bootstrap needs more registered stores; retry later.
    #[error("not enough stores to bootstrap: {0}")]
    NotEnoughStores(String),
    /// Another live store registered this address already.
    #[error("duplicated store address: {0}")]
    DuplicatedAddress(String),
    /// PD cannot serve right now (no leader, leader not ready).
    #[error("PD unavailable: {0}")]
    Unavailable(String),
    /// PD answered with an error this client does not know.
    #[error("PD error: {0}")]
    Unknown(String),
    /// The network failed: connection refused or reset, an attempt timed
    /// out, a stream ended.
    #[error("PD transport error: {0}")]
    Transport(String),
    /// PD refused the call at the gRPC level in a way retrying cannot fix
    /// (unimplemented method, undecodable message).
    #[error("PD rejected the RPC: {0}")]
    Rpc(String),
    /// The members answered but none knew a leader before the deadline.
    #[error("no PD leader within the deadline")]
    NoLeader,
    /// The call's deadline passed while retrying; `last` is the last
    /// problem seen.
    #[error("PD call timed out after {after:?} (last problem: {last})")]
    Timeout {
        /// The deadline that passed.
        after: Duration,
        /// The last retryable error seen.
        last: String,
    },
}

impl PdError {
    /// True when the same call may succeed later (after a leader change,
    /// once the network heals, once enough stores registered).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            PdError::NotLeader(_)
                | PdError::Unavailable(_)
                | PdError::NotEnoughStores(_)
                | PdError::Transport(_)
                | PdError::NoLeader
                | PdError::Timeout { .. }
        )
    }

    /// The typed error for a response header's error; `None` for success.
    pub(crate) fn from_header(header: Option<&pdpb::ResponseHeader>) -> Option<PdError> {
        let err = header?.error.as_ref()?;
        let msg = err.message.clone();
        Some(match err.r#type() {
            ErrorType::Ok => return None,
            ErrorType::Unknown => PdError::Unknown(msg),
            ErrorType::NotLeader => PdError::NotLeader(msg),
            ErrorType::ClusterIdMismatch => PdError::ClusterIdMismatch(msg),
            ErrorType::NotBootstrapped => PdError::NotBootstrapped(msg),
            ErrorType::AlreadyBootstrapped => PdError::AlreadyBootstrapped(msg),
            ErrorType::InvalidArgument => PdError::InvalidArgument(msg),
            ErrorType::StoreNotFound => PdError::StoreNotFound(msg),
            ErrorType::StoreTombstone => PdError::StoreTombstone(msg),
            ErrorType::RegionNotFound => PdError::RegionNotFound(msg),
            ErrorType::StaleRegion => PdError::StaleRegion(msg),
            ErrorType::NotEnoughStores => PdError::NotEnoughStores(msg),
            ErrorType::Unavailable => PdError::Unavailable(msg),
            ErrorType::DuplicatedAddress => PdError::DuplicatedAddress(msg),
        })
    }

    /// Classifies a gRPC status. Most codes mean the connection or the
    /// member is in trouble (tonic reports a dead channel as `Unknown` or
    /// `Unavailable`), so they are retried; the few that say the request
    /// itself is wrong are not.
    pub(crate) fn from_status(status: &tonic::Status) -> PdError {
        use tonic::Code;
        let text = format!("{:?}: {}", status.code(), status.message());
        match status.code() {
            Code::Unimplemented
            | Code::InvalidArgument
            | Code::OutOfRange
            | Code::PermissionDenied
            | Code::Unauthenticated => PdError::Rpc(text),
            _ => PdError::Transport(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(t: ErrorType) -> pdpb::ResponseHeader {
        pdpb::ResponseHeader {
            cluster_id: 1,
            error: Some(pdpb::Error {
                r#type: t as i32,
                message: "m".into(),
                leader: None,
            }),
        }
    }

    #[test]
    fn headers_map_to_variants() {
        assert_eq!(PdError::from_header(None), None);
        let ok = pdpb::ResponseHeader::default();
        assert_eq!(PdError::from_header(Some(&ok)), None);
        let e = PdError::from_header(Some(&header(ErrorType::InvalidArgument))).unwrap();
        assert_eq!(e, PdError::InvalidArgument("m".into()));
        assert!(!e.is_retryable());
        let e = PdError::from_header(Some(&header(ErrorType::NotEnoughStores))).unwrap();
        assert!(e.is_retryable());
    }

    #[test]
    fn statuses_split_into_transport_and_rejected() {
        let e = PdError::from_status(&tonic::Status::unavailable("refused"));
        assert!(matches!(e, PdError::Transport(_)) && e.is_retryable());
        let e = PdError::from_status(&tonic::Status::unimplemented("no"));
        assert!(matches!(e, PdError::Rpc(_)) && !e.is_retryable());
    }
}
