//! The raw KV gRPC service: request limits ([`limits`]), and the service
//! that routes each request to its region's peer and reads or answers
//! ([`service`]).

pub mod limits;
pub mod service;
