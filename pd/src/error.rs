//! PD's request errors and their wire form: each tells the caller what to
//! do — retry elsewhere (`NotLeader`), retry later (`Unavailable`,
//! `NotEnoughStores`), or stop and fix the request.

use flotilla_proto::pdpb::{self, ErrorType};

use crate::raft::ProposeError;

/// Why PD refused a request.
#[derive(Clone, Debug, thiserror::Error)]
pub enum PdError {
    /// This member does not lead; the leader is given when known.
    #[error("not the PD leader")]
    NotLeader(Option<pdpb::Member>),
    /// The request names another cluster.
    #[error("cluster ID mismatch: this cluster is {expected}, the request says {got}")]
    ClusterIdMismatch {
        /// This cluster's ID.
        expected: u64,
        /// The request's.
        got: u64,
    },
    /// The cluster has no first region yet.
    #[error("the cluster is not bootstrapped")]
    NotBootstrapped,
    /// The request is malformed.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// No such store.
    #[error("store {0} not found")]
    StoreNotFound(u64),
    /// The store was decommissioned.
    #[error("store {0} is a tombstone")]
    StoreTombstone(u64),
    /// No such region.
    #[error("region not found")]
    RegionNotFound,
    /// A region older than what PD knows.
    #[error("stale region: {0}")]
    StaleRegion(String),
    /// Bootstrap waits for more stores.
    #[error("bootstrap needs {need} registered stores, {have} are up")]
    NotEnoughStores {
        /// Stores up and registered.
        have: usize,
        /// `max-replicas`.
        need: usize,
    },
    /// Another live store uses the address.
    #[error("address {address} already belongs to store {owner}")]
    DuplicatedAddress {
        /// The address.
        address: String,
        /// The store holding it.
        owner: u64,
    },
    /// PD cannot serve right now; retry later.
    #[error("PD is unavailable: {0}")]
    Unavailable(String),
}

impl From<ProposeError> for PdError {
    fn from(e: ProposeError) -> PdError {
        PdError::Unavailable(e.to_string())
    }
}

impl PdError {
    /// The error type on the wire.
    pub fn error_type(&self) -> ErrorType {
        match self {
            PdError::NotLeader(_) => ErrorType::NotLeader,
            PdError::ClusterIdMismatch { .. } => ErrorType::ClusterIdMismatch,
            PdError::NotBootstrapped => ErrorType::NotBootstrapped,
            PdError::InvalidArgument(_) => ErrorType::InvalidArgument,
            PdError::StoreNotFound(_) => ErrorType::StoreNotFound,
            PdError::StoreTombstone(_) => ErrorType::StoreTombstone,
            PdError::RegionNotFound => ErrorType::RegionNotFound,
            PdError::StaleRegion(_) => ErrorType::StaleRegion,
            PdError::NotEnoughStores { .. } => ErrorType::NotEnoughStores,
            PdError::DuplicatedAddress { .. } => ErrorType::DuplicatedAddress,
            PdError::Unavailable(_) => ErrorType::Unavailable,
        }
    }

    /// The error as carried in a response header.
    pub fn to_wire(&self) -> pdpb::Error {
        pdpb::Error {
            r#type: self.error_type() as i32,
            message: self.to_string(),
            leader: match self {
                PdError::NotLeader(leader) => leader.clone(),
                _ => None,
            },
        }
    }

    /// A response header carrying this error.
    pub fn header(&self, cluster_id: u64) -> pdpb::ResponseHeader {
        pdpb::ResponseHeader {
            cluster_id,
            error: Some(self.to_wire()),
        }
    }
}

/// A successful response header.
pub fn ok_header(cluster_id: u64) -> pdpb::ResponseHeader {
    pdpb::ResponseHeader {
        cluster_id,
        error: None,
    }
}
