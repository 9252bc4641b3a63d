//! A filter chain on a store's Raft traffic, for tests: drop messages by
//! region, type or direction, isolate the store, partition it from some
//! stores, or delay what it sends; switch one rule off without clearing
//! the others, or hold messages back and hand them to the test to deliver
//! later. Empty (always, in production), it costs one read lock per batch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use flotilla_proto::raft_serverpb::RaftMessage;
use parking_lot::{Mutex, RwLock};
use raftcore::{codec, MessageType};

/// Which way a batch is going, seen from the store the chain belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Leaving this store.
    Outbound,
    /// Arriving at this store.
    Inbound,
}

/// One rule of the chain.
pub trait Filter: Send + Sync {
    /// Removes the messages this rule drops. `other_store` is the
    /// destination (outbound) or the source (inbound).
    fn filter(&self, direction: Direction, other_store: u64, msgs: &mut Vec<RaftMessage>);

    /// How long to hold an outbound batch before sending it.
    fn delay(&self) -> Option<Duration> {
        None
    }
}

/// The filters installed on one store.
#[derive(Default)]
pub struct FilterChain {
    filters: RwLock<Vec<Arc<dyn Filter>>>,
}

impl FilterChain {
    /// Installs a rule.
    pub fn add(&self, filter: Arc<dyn Filter>) {
        self.filters.write().push(filter);
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.filters.write().clear();
    }

    /// Applies every rule to a batch.
    pub fn apply(&self, direction: Direction, other_store: u64, msgs: &mut Vec<RaftMessage>) {
        let filters = self.filters.read();
        for f in filters.iter() {
            if msgs.is_empty() {
                return;
            }
            f.filter(direction, other_store, msgs);
        }
    }

    /// The longest delay any rule asks for.
    pub fn delay(&self) -> Option<Duration> {
        self.filters.read().iter().filter_map(|f| f.delay()).max()
    }
}

/// The raftcore type of an envelope's message, if it decodes.
pub fn message_type(m: &RaftMessage) -> Option<MessageType> {
    codec::decode_message(&m.message).ok().map(|m| m.msg_type)
}

/// Drops everything to and from the given stores (all stores if empty):
/// isolation, or one side of a partition.
pub struct PartitionFilter {
    /// The stores cut off.
    pub stores: Vec<u64>,
}

impl Filter for PartitionFilter {
    fn filter(&self, _: Direction, other: u64, msgs: &mut Vec<RaftMessage>) {
        if self.stores.is_empty() || self.stores.contains(&other) {
            msgs.clear();
        }
    }
}

/// Drops the messages that match every set criterion.
#[derive(Default)]
pub struct DropFilter {
    /// Only this region's messages.
    pub region_id: Option<u64>,
    /// Only these message types.
    pub types: Vec<MessageType>,
    /// Only this direction.
    pub direction: Option<Direction>,
}

impl DropFilter {
    /// Whether `m`, going `direction`, matches every set criterion.
    fn matches(&self, direction: Direction, m: &RaftMessage) -> bool {
        let direction_match = self.direction.is_none_or(|d| d == direction);
        let region_match = self.region_id.is_none_or(|r| r == m.region_id);
        let type_match =
            self.types.is_empty() || message_type(m).is_some_and(|t| self.types.contains(&t));
        direction_match && region_match && type_match
    }
}

impl Filter for DropFilter {
    fn filter(&self, direction: Direction, _: u64, msgs: &mut Vec<RaftMessage>) {
        msgs.retain(|m| !self.matches(direction, m));
    }
}

/// Holds every outbound batch for a while.
pub struct DelayFilter(pub Duration);

impl Filter for DelayFilter {
    fn filter(&self, _: Direction, _: u64, _: &mut Vec<RaftMessage>) {}

    fn delay(&self) -> Option<Duration> {
        Some(self.0)
    }
}

/// A rule the test turns off (and on again) in place: one fault heals
/// while the rest of the chain — say, an observer installed before it —
/// stays, which [`FilterChain::clear`] would not allow. Starts on.
pub struct Switch {
    on: AtomicBool,
    inner: Box<dyn Filter>,
}

impl Switch {
    /// `inner`, switched on.
    pub fn new(inner: impl Filter + 'static) -> Arc<Switch> {
        Arc::new(Switch {
            on: AtomicBool::new(true),
            inner: Box::new(inner),
        })
    }

    /// Turns the rule on or off.
    pub fn set(&self, on: bool) {
        self.on.store(on, Ordering::SeqCst);
    }

    /// Whether the rule applies.
    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::SeqCst)
    }
}

impl Filter for Switch {
    fn filter(&self, direction: Direction, other_store: u64, msgs: &mut Vec<RaftMessage>) {
        if self.is_on() {
            self.inner.filter(direction, other_store, msgs);
        }
    }

    fn delay(&self) -> Option<Duration> {
        self.is_on().then(|| self.inner.delay()).flatten()
    }
}

/// Holds back the messages that match `criteria` (as [`DropFilter`] would
/// drop them) until [`release`](Self::release), which stops holding and
/// hands them to the test, oldest first, to deliver when it chooses (TiKV's
/// `reserve_dropped` and replay): a message made at one moment arrives at
/// another, after something else happened.
///
/// Held inbound, a snapshot message arrives after its file was received
/// and checked; the file stays in the store's snapshot directory (only a
/// restart or the snapshot's installation removes it), so handing the
/// message to its region later installs the snapshot then.
pub struct HoldFilter {
    criteria: DropFilter,
    holding: AtomicBool,
    held: Mutex<Vec<RaftMessage>>,
}

impl HoldFilter {
    /// Holds what matches `criteria`, from now on.
    pub fn new(criteria: DropFilter) -> Arc<HoldFilter> {
        Arc::new(HoldFilter {
            criteria,
            holding: AtomicBool::new(true),
            held: Mutex::new(Vec::new()),
        })
    }

    /// A copy of the messages held so far, oldest first.
    pub fn held(&self) -> Vec<RaftMessage> {
        self.held.lock().clone()
    }

    /// Stops holding (everything passes from now on) and returns what was
    /// held, oldest first.
    pub fn release(&self) -> Vec<RaftMessage> {
        // Under the lock, so that no message is held after the last one
        // was handed out.
        let mut held = self.held.lock();
        self.holding.store(false, Ordering::SeqCst);
        std::mem::take(&mut *held)
    }
}

impl Filter for HoldFilter {
    fn filter(&self, direction: Direction, _: u64, msgs: &mut Vec<RaftMessage>) {
        let mut held = self.held.lock();
        if !self.holding.load(Ordering::SeqCst) {
            return;
        }
        let (hold, pass): (Vec<RaftMessage>, Vec<RaftMessage>) = std::mem::take(msgs)
            .into_iter()
            .partition(|m| self.criteria.matches(direction, m));
        *msgs = pass;
        held.extend(hold);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(region_id: u64, t: MessageType) -> RaftMessage {
        let mut buf = Vec::new();
        codec::encode_message(
            &raftcore::Message {
                msg_type: t,
                to: 2,
                from: 1,
                ..Default::default()
            },
            &mut buf,
        );
        RaftMessage {
            region_id,
            message: buf.into(),
            ..Default::default()
        }
    }

    #[test]
    fn rules_drop_what_they_match_and_nothing_else() {
        let chain = FilterChain::default();
        chain.add(Arc::new(DropFilter {
            region_id: Some(1),
            types: vec![MessageType::Heartbeat],
            direction: Some(Direction::Outbound),
        }));
        let batch = || {
            vec![
                msg(1, MessageType::Heartbeat),
                msg(1, MessageType::Append),
                msg(2, MessageType::Heartbeat),
            ]
        };
        let mut out = batch();
        chain.apply(Direction::Outbound, 9, &mut out);
        assert_eq!(out.len(), 2);
        let mut inbound = batch();
        chain.apply(Direction::Inbound, 9, &mut inbound);
        assert_eq!(inbound.len(), 3, "other direction untouched");
        chain.add(Arc::new(PartitionFilter { stores: vec![9] }));
        let mut cut = batch();
        chain.apply(Direction::Inbound, 9, &mut cut);
        assert!(cut.is_empty());
        let mut other = batch();
        chain.apply(Direction::Inbound, 8, &mut other);
        assert_eq!(other.len(), 3);
        assert_eq!(chain.delay(), None);
        chain.add(Arc::new(DelayFilter(Duration::from_millis(5))));
        assert_eq!(chain.delay(), Some(Duration::from_millis(5)));
        chain.clear();
        let mut all = batch();
        chain.apply(Direction::Outbound, 9, &mut all);
        assert_eq!(all.len(), 3);
    }

    #[test]
    fn a_switched_off_rule_passes_everything_and_holds_are_handed_back() {
        let chain = FilterChain::default();
        let cut = Switch::new(PartitionFilter { stores: vec![] });
        chain.add(cut.clone());
        let batch = || vec![msg(1, MessageType::Append), msg(2, MessageType::Snapshot)];
        let mut out = batch();
        chain.apply(Direction::Outbound, 9, &mut out);
        assert!(out.is_empty());
        cut.set(false);
        let mut out = batch();
        chain.apply(Direction::Outbound, 9, &mut out);
        assert_eq!(out.len(), 2);

        let hold = HoldFilter::new(DropFilter {
            types: vec![MessageType::Snapshot],
            direction: Some(Direction::Inbound),
            ..Default::default()
        });
        chain.add(hold.clone());
        let mut outbound = batch();
        chain.apply(Direction::Outbound, 9, &mut outbound);
        assert_eq!(outbound.len(), 2, "other direction untouched");
        let mut inbound = batch();
        chain.apply(Direction::Inbound, 9, &mut inbound);
        assert_eq!(inbound.len(), 1);
        assert_eq!(hold.held().len(), 1);
        let released = hold.release();
        assert_eq!(released.len(), 1);
        assert_eq!(message_type(&released[0]), Some(MessageType::Snapshot));
        let mut after = batch();
        chain.apply(Direction::Inbound, 9, &mut after);
        assert_eq!(after.len(), 2, "nothing held after the release");
        assert!(hold.held().is_empty());
    }
}
