//! A region's peer on this store: its state, independent of threads. The
//! poller drives it; everything here is plain data and functions.

pub mod storage;
