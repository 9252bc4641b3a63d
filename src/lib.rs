//! The `flotilla` package's library side: what the binary's commands, the
//! end-to-end tests and the benchmarks share.
//!
//! - [`playground`]: a local cluster of PD and store processes on
//!   loopback, started and waited for in one call.
//! - [`daemon`]: the `pd` and `store` daemons as calls, so that another
//!   binary can be a playground's children too.
//! - [`http`]: a minimal HTTP/1.1 client for the status endpoints.
#![deny(missing_docs)]

pub mod daemon;
pub mod http;
pub mod playground;
