//! The multi-Raft driver: mailboxes per region and a small fixed pool of
//! pollers that handle the regions with work, one round at a time.

pub mod poller;
pub mod router;
