//! The store daemon: thousands of raftcore groups over one RocksDB, a batched
//! transport between stores, and the raw KV service.
//!
//! The store arrives with its own issue; until then the crate is empty.
