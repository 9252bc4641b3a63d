//! The multi-Raft driver: the shared state every peer sees
//! ([`context`]), the poller handler that runs a round for the regions with
//! work ([`handler`]), and the system that starts pollers, apply pool and
//! the one store-wide ticker ([`system`], [`ticker`]), which stores this
//! store still hears from ([`liveness`]), and peers created by a message
//! from a new region's leader ([`create`]) or held until a split creates
//! them ([`deferred`]), and the state journal fault
//! tests read ([`journal`]).

pub mod context;
pub mod create;
pub mod deferred;
pub mod handler;
pub mod journal;
pub mod liveness;
pub mod system;
pub mod ticker;
