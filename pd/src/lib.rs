//! Flotilla's placement driver (PD).
#![deny(missing_docs)]

pub mod cli;
pub mod cluster;
pub mod config;
pub mod duration;
pub mod error;
pub mod metrics;
pub mod raft;
pub mod schedule;
pub mod server;
pub mod storage;
