//! The bounded window of append messages in flight to one follower.

use std::collections::VecDeque;

/// The last index of each append message sent but not yet acknowledged,
/// oldest first. Full at `capacity` messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inflights {
    last_indexes: VecDeque<u64>,
    capacity: usize,
}

impl Inflights {
    /// An empty window of `capacity` messages.
    pub fn new(capacity: usize) -> Inflights {
        Inflights {
            last_indexes: VecDeque::new(),
            capacity,
        }
    }

    /// Whether no more messages may be sent.
    pub fn full(&self) -> bool {
        self.last_indexes.len() >= self.capacity
    }

    /// The number of messages in flight.
    pub fn count(&self) -> usize {
        self.last_indexes.len()
    }

    /// Records a message whose last entry is `last_index`.
    ///
    /// # Panics
    /// If the window is full or `last_index` does not increase: the leader
    /// must check `full()` first, and indexes only grow.
    pub fn add(&mut self, last_index: u64) {
        assert!(!self.full(), "inflight window overflow");
        if let Some(&back) = self.last_indexes.back() {
            assert!(
                last_index > back,
                "inflight index {last_index} not above {back}"
            );
        }
        self.last_indexes.push_back(last_index);
    }

    /// Frees every message whose last index is at most `index`.
    pub fn free_to(&mut self, index: u64) {
        while self.last_indexes.front().is_some_and(|&i| i <= index) {
            self.last_indexes.pop_front();
        }
    }

    /// Frees the oldest message: the follower answered a heartbeat, so
    /// the window must not stay full if appends were lost on the way.
    pub fn free_first_one(&mut self) {
        self.last_indexes.pop_front();
    }

    /// Frees everything.
    pub fn reset(&mut self) {
        self.last_indexes.clear();
    }
}
