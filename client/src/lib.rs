//! The Rust client SDK: a region cache, routing by key, retries and batching.
//! It depends only on `flotilla-proto`, so a client never compiles RocksDB.
//!
//! The client arrives with its own issue; until then the crate is empty.
