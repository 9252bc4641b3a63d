//! Messages for a split's new region that reach this store before its own
//! copy of the split applies. The new region's leader-to-be (on the store
//! that led the parent) campaigns at once; its vote requests arrive here
//! while the parent region still covers their range, so no peer can be
//! created for them (the split will create it). Dropped, the candidate
//! would wait a whole election timeout before asking again — a stall of
//! a second or more after every split. Held here instead, they are handed
//! to the new peer the moment the split creates it.
//!
//! Bounded: a few messages per region, a few hundred regions, and only
//! for a while — a message older than [`MAX_AGE`] is stale anyway (Raft
//! tolerates a message lost, never one it did not expect).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::peer::msg::InboundRaft;

/// Messages kept per region.
const PER_REGION: usize = 8;
/// Regions with messages kept at once.
const MAX_REGIONS: usize = 256;
/// How long a message is kept.
pub const MAX_AGE: Duration = Duration::from_secs(2);

/// The held messages, by region.
#[derive(Default)]
pub struct Deferred {
    by_region: Mutex<HashMap<u64, Vec<(Instant, InboundRaft)>>>,
}

impl Deferred {
    /// Holds `msg` for its region's peer-to-be; false if there is no room
    /// (the message is then dropped, as before).
    pub fn hold(&self, msg: InboundRaft) -> bool {
        let now = Instant::now();
        let mut by_region = self.by_region.lock();
        by_region.retain(|_, msgs| {
            msgs.retain(|(at, _)| now.duration_since(*at) < MAX_AGE);
            !msgs.is_empty()
        });
        let region = msg.envelope.region_id;
        if !by_region.contains_key(&region) && by_region.len() >= MAX_REGIONS {
            return false;
        }
        let msgs = by_region.entry(region).or_default();
        if msgs.len() >= PER_REGION {
            return false;
        }
        msgs.push((now, msg));
        true
    }

    /// The messages held for `region_id` that are still fresh, oldest
    /// first.
    pub fn take(&self, region_id: u64) -> Vec<InboundRaft> {
        let now = Instant::now();
        self.by_region
            .lock()
            .remove(&region_id)
            .unwrap_or_default()
            .into_iter()
            .filter(|(at, _)| now.duration_since(*at) < MAX_AGE)
            .map(|(_, m)| m)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_proto::raft_serverpb::RaftMessage;

    fn msg(region_id: u64) -> InboundRaft {
        InboundRaft {
            envelope: RaftMessage {
                region_id,
                ..Default::default()
            },
            message: raftcore::Message::default(),
        }
    }

    #[test]
    fn held_messages_go_to_their_region_once_and_in_bounds() {
        let d = Deferred::default();
        assert!(d.hold(msg(7)) && d.hold(msg(7)) && d.hold(msg(8)));
        assert_eq!(d.take(7).len(), 2);
        assert!(d.take(7).is_empty());
        for _ in 0..PER_REGION {
            d.hold(msg(9));
        }
        assert!(!d.hold(msg(9)), "a region's messages are bounded");
        for r in 100..100 + MAX_REGIONS as u64 {
            d.hold(msg(r));
        }
        assert!(!d.hold(msg(1)), "the regions held are bounded");
    }
}
