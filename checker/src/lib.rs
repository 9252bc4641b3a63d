//! # flotilla-checker: is this history linearizable?
//!
//! A client history — each operation's call time, return time, input and
//! output, as clients saw them — is *linearizable* when some order of its
//! operations respects real time (an operation that returned before
//! another was called comes first) and satisfies the object's sequential
//! specification. This crate decides that for registers (get, put,
//! compare-and-swap, delete), one key at a time, as Porcupine and Knossos
//! do for Jepsen. Flotilla's fault-testing harness records histories and
//! checks them with it; nothing here needs a server.
//!
//! The parts, in reading order:
//! - [`history`]: [`Operation`]. An operation whose outcome is unknown
//!   (a timeout, a lost connection) has no output: it may have taken
//!   effect at any time after its call, or never.
//! - [`model`]: the sequential specifications, [`RegisterModel`] (and
//!   [`StringModel`] for the corpus's append histories).
//! - [`search`]: the Wing–Gong–Lowe search over one key's history, with
//!   memoisation of (linearized set, state).
//! - [`window`]: for an illegal history, the smallest failing window — the
//!   few operations that show the anomaly.
//! - [`check`]: many keys, each its own register, checked in parallel
//!   within a time budget per key.
//! - [`generate`]: seeded linearizable histories and planted anomalies,
//!   for testing the checker (`tests/generated.rs`) and what uses it.
//! - [`corpus`]: readers for the validation corpus (Jepsen etcd logs and
//!   Porcupine's key-value histories), on which every known verdict is
//!   reproduced (`tests/corpus.rs`).
//!
//! ```
//! use std::collections::BTreeMap;
//! use flotilla_checker::{check_keys, Operation, Options, RegisterModel, Verdict};
//! use flotilla_checker::model::{RegisterOp::*, RegisterOut::*};
//!
//! // Client 1 wrote 1, then client 2 wrote 2; client 3, called after both
//! // returned, still read 1: a stale read.
//! let history = vec![
//!     Operation::done(1, 0, 1, Put(1), Written),
//!     Operation::done(2, 2, 3, Put(2), Written),
//!     Operation::done(3, 4, 5, Get, Read(Some(1))),
//! ];
//! let report = check_keys(&RegisterModel::new(), BTreeMap::from([("k", history)]), &Options::default());
//! assert_eq!(report.verdict(), Verdict::Illegal);
//! print!("{}", report.describe_failures());
//! ```

pub mod check;
pub mod corpus;
pub mod generate;
pub mod history;
pub mod model;
pub mod search;
pub mod window;

pub use check::{check_keys, check_one, Options, Report};
pub use history::Operation;
pub use model::{Model, RegisterModel, StringModel};
pub use search::{search, Budget, Verdict};
pub use window::failing_window;
