//! Store liveness: which stores this store still hears from.
//!
//! Hibernating followers stop their election timers, so a leader's death
//! would go unnoticed in every idle region it led. Instead of per-region
//! heartbeats, stores watch each other: every store sends a tiny probe to
//! each store it shares a region with every heartbeat interval, and any
//! batch received from a store (probe or Raft traffic) counts as hearing
//! from it. A store not heard from for an election timeout is
//! *unreachable*: the ticker wakes the hibernating followers whose leader
//! is there (only those — the regions that merely lost a follower stay
//! asleep), and leaders may hibernate leaving peers there behind. The cost
//! is one probe per store pair per heartbeat interval, whatever the number
//! of regions. (CockroachDB's quiesced replicas consult node liveness the
//! same way; TiKV wakes regions on a store's unreachable report.)

use std::collections::{HashMap, HashSet};

use flotilla_proto::metapb;
use flotilla_proto::raft_serverpb::RaftMessage;
use parking_lot::Mutex;

/// When each other store was last heard from, in store-wide ticks.
#[derive(Default)]
pub struct StoreLiveness {
    last_heard: Mutex<HashMap<u64, u64>>,
}

impl StoreLiveness {
    /// Notes that `store_id` was heard from at tick `now`.
    pub fn heard(&self, store_id: u64, now: u64) {
        if store_id != 0 {
            let mut heard = self.last_heard.lock();
            let last = heard.entry(store_id).or_insert(now);
            *last = (*last).max(now);
        }
    }

    /// Starts watching the given stores (a store first seen counts as
    /// heard now, so it gets a full timeout) and stops watching the rest.
    pub fn watch(&self, stores: &HashSet<u64>, now: u64) {
        let mut heard = self.last_heard.lock();
        heard.retain(|id, _| stores.contains(id));
        for &id in stores {
            heard.entry(id).or_insert(now);
        }
    }

    /// The watched stores not heard from for more than `timeout` ticks.
    pub fn unreachable(&self, now: u64, timeout: u64) -> HashSet<u64> {
        self.last_heard
            .lock()
            .iter()
            .filter(|(_, &last)| now.saturating_sub(last) > timeout)
            .map(|(&id, _)| id)
            .collect()
    }

    /// Whether `store_id` is watched and unreachable.
    pub fn is_unreachable(&self, store_id: u64, now: u64, timeout: u64) -> bool {
        self.last_heard
            .lock()
            .get(&store_id)
            .is_some_and(|&last| now.saturating_sub(last) > timeout)
    }
}

/// Whether at most half of `region`'s voters are on stores not `silent`.
pub fn lost_quorum(region: &flotilla_proto::metapb::Region, silent: &HashSet<u64>) -> bool {
    let voters: Vec<_> = region
        .peers
        .iter()
        .filter(|p| p.role != flotilla_proto::metapb::PeerRole::Learner as i32)
        .collect();
    let heard = voters
        .iter()
        .filter(|p| !silent.contains(&p.store_id))
        .count();
    heard * 2 <= voters.len()
}

/// The probe from store `from` to store `to`.
pub fn probe(from: u64, to: u64) -> RaftMessage {
    let store = |store_id| metapb::Peer {
        store_id,
        ..Default::default()
    };
    RaftMessage {
        from_peer: Some(store(from)),
        to_peer: Some(store(to)),
        is_store_heartbeat: true,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_is_unreachable_once_silent_past_the_timeout() {
        let live = StoreLiveness::default();
        live.watch(&HashSet::from([2, 3]), 100);
        assert!(live.unreachable(110, 10).is_empty(), "a full timeout first");
        live.heard(2, 105);
        assert_eq!(live.unreachable(111, 10), HashSet::from([3]));
        assert!(live.is_unreachable(3, 111, 10) && !live.is_unreachable(2, 111, 10));
        assert!(!live.is_unreachable(9, 111, 10), "an unwatched store");
        live.heard(3, 112);
        assert!(live.unreachable(112, 10).is_empty(), "heard again");
        live.heard(3, 50);
        assert!(
            !live.is_unreachable(3, 115, 10),
            "older news changes nothing"
        );
        live.watch(&HashSet::from([2]), 200);
        assert_eq!(live.unreachable(300, 10), HashSet::from([2]), "3 unwatched");
    }

    #[test]
    fn a_quorum_is_lost_when_half_the_voters_or_more_are_silent() {
        let peer = |store_id, role: metapb::PeerRole| metapb::Peer {
            id: store_id * 10,
            store_id,
            role: role as i32,
        };
        let region = metapb::Region {
            peers: vec![
                peer(1, metapb::PeerRole::Voter),
                peer(2, metapb::PeerRole::Voter),
                peer(3, metapb::PeerRole::Voter),
                peer(4, metapb::PeerRole::Learner),
            ],
            ..Default::default()
        };
        assert!(!lost_quorum(&region, &HashSet::from([3, 4])));
        assert!(lost_quorum(&region, &HashSet::from([2, 3])));
        assert!(!lost_quorum(&region, &HashSet::new()));
    }
}
