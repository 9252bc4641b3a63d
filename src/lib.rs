//! The `flotilla` package's library side: what the binary's commands, the
//! end-to-end tests and the benchmarks share.
//!
//! - [`playground`]: a local cluster of PD and store processes on
//!   loopback, started and waited for in one call.
#![deny(missing_docs)]

pub mod playground;
