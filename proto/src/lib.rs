//! Flotilla's wire protocol: the `.proto` definitions of the PD, store and
//! Raft transport services, and the Rust code tonic and prost generate from
//! them.
//!
//! This crate depends on nothing else of Flotilla's. The services arrive with
//! the PD and store issues; until then the crate is empty.
