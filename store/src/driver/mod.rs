//! The multi-Raft driver: the shared state every peer sees
//! ([`context`]), the poller handler that runs a round for the regions with
//! work ([`handler`]), and the system that starts pollers, apply pool and
//! the one store-wide ticker ([`system`]).

pub mod context;
pub mod handler;
pub mod system;
