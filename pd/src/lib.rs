//! The placement driver (PD): a small replicated service that knows every
//! store and region, hands out IDs and timestamps, and schedules replicas and
//! leaders with operators.
//!
//! PD arrives with its own issue; until then the crate is empty.
