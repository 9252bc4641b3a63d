//! The simulated network: messages in flight with a delivery time, loss,
//! duplication, reordering (by random delays), and partitions as a set of
//! cut directed links.

use std::collections::{BTreeMap, BTreeSet};

use raftcore::Message;

use crate::params::{Params, TICK};
use crate::rng::Rng;

/// A message on its way.
#[derive(Clone, Debug)]
pub struct InFlight {
    pub msg: Message,
    /// The sender's incarnation when it sent: a snapshot report goes only
    /// to the same incarnation.
    pub incarnation: u64,
}

/// Why a message never arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// The link was cut by a partition.
    Cut,
    /// Random loss.
    Dropped,
}

pub struct Network {
    /// Keyed by (delivery time, sequence number): the sequence breaks ties
    /// deterministically.
    queue: BTreeMap<(u64, u64), InFlight>,
    seq: u64,
    /// Directed links `(from, to)` that lose every message.
    cut: BTreeSet<(u64, u64)>,
    drop_pm: u64,
    dup_pm: u64,
    slow_pm: u64,
}

impl Network {
    pub fn new(p: &Params) -> Network {
        Network {
            queue: BTreeMap::new(),
            seq: 0,
            cut: BTreeSet::new(),
            drop_pm: p.drop_pm,
            dup_pm: p.dup_pm,
            slow_pm: p.slow_pm,
        }
    }

    /// Sends `msg` at time `now`; returns why it was lost, if it was.
    /// A duplicate travels with its own delay.
    pub fn send(&mut self, rng: &mut Rng, now: u64, msg: Message, inc: u64) -> Option<Loss> {
        if !self.link_ok(msg.from, msg.to) {
            return Some(Loss::Cut);
        }
        if rng.chance(self.drop_pm) {
            return Some(Loss::Dropped);
        }
        if rng.chance(self.dup_pm) {
            self.enqueue(rng, now, msg.clone(), inc);
        }
        self.enqueue(rng, now, msg, inc);
        None
    }

    fn enqueue(&mut self, rng: &mut Rng, now: u64, msg: Message, incarnation: u64) {
        let delay = if rng.chance(self.slow_pm) {
            rng.range(TICK / 2, 4 * TICK)
        } else {
            rng.range(TICK / 50, TICK / 2)
        };
        self.seq += 1;
        self.queue
            .insert((now + delay, self.seq), InFlight { msg, incarnation });
    }

    /// When the next message arrives, if any is in flight.
    pub fn next_time(&self) -> Option<u64> {
        self.queue.keys().next().map(|&(t, _)| t)
    }

    /// Takes the next message to arrive.
    pub fn pop(&mut self) -> Option<InFlight> {
        self.queue.pop_first().map(|(_, m)| m)
    }

    /// Whether messages from `from` reach `to` now.
    pub fn link_ok(&self, from: u64, to: u64) -> bool {
        !self.cut.contains(&(from, to))
    }

    /// Whether any link is cut.
    pub fn is_partitioned(&self) -> bool {
        !self.cut.is_empty()
    }

    /// Cuts every link between the two sides, both ways.
    pub fn cut_between(&mut self, a: &[u64], b: &[u64]) {
        for &x in a {
            for &y in b {
                if x != y {
                    self.cut.insert((x, y));
                    self.cut.insert((y, x));
                }
            }
        }
    }

    /// Cuts the link from `from` to `to` only.
    pub fn cut_one_way(&mut self, from: u64, to: u64) {
        self.cut.insert((from, to));
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Stops random loss and duplication, and slow messages (the heal
    /// phase).
    pub fn calm(&mut self) {
        self.drop_pm = 0;
        self.dup_pm = 0;
        self.slow_pm = 0;
    }

    /// The cut links, for traces.
    pub fn describe_cuts(&self) -> String {
        let links: Vec<String> = self.cut.iter().map(|(a, b)| format!("{a}>{b}")).collect();
        links.join(" ")
    }
}
