//! The router: region ID → the region's mailbox, and the queue of regions
//! with work that the pollers take from.
//!
//! Each region has one [`Slot`]: a bounded mailbox and its state machine
//! (the peer). A message to an idle region marks it *scheduled* and puts
//! its slot on the ready queue exactly once; a poller takes the slot,
//! drains the mailbox, and [`Router::release`]s it — rescheduling it if
//! messages arrived meanwhile. So each region is handled by at most one
//! poller at a time (its state needs no further locking in practice), no
//! region has a thread, task or timer of its own, and an idle region costs
//! nothing but its map entry. (TiKV's batch-system, simplified.)
//!
//! A slot whose state machine *hibernates* (an idle Raft group whose
//! timers stopped) is left out of the store-wide tick; any message still
//! schedules it. The poller sets the flag after each round.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use parking_lot::{Mutex, RwLock};

/// Why a message was not delivered.
#[derive(Debug, PartialEq, Eq)]
pub enum SendError<M> {
    /// No region with this ID is registered.
    NotFound(M),
    /// The region's mailbox is full: the caller backs off (for client
    /// requests, `ServerIsBusy`) or drops (Raft messages are retransmitted).
    Full(M),
}

/// One region's mailbox and state machine.
pub struct Slot<F, M> {
    /// The region's ID.
    pub id: u64,
    tx: Sender<M>,
    rx: Receiver<M>,
    /// The state machine; only the poller holding the slot locks it.
    pub fsm: Mutex<F>,
    /// Invariant: true exactly while the slot is on the ready queue or
    /// held by a poller.
    scheduled: AtomicBool,
    /// The state machine needs no ticks (see [`Router::schedule_ticking`]).
    hibernating: AtomicBool,
    capacity: usize,
}

impl<F, M> Slot<F, M> {
    /// Takes up to `max` waiting messages.
    pub fn drain(&self, max: usize) -> Vec<M> {
        self.rx.try_iter().take(max).collect()
    }

    /// Messages waiting.
    pub fn pending(&self) -> usize {
        self.rx.len()
    }

    /// Leaves the slot out of (or back in) the store-wide tick.
    pub fn set_hibernating(&self, hibernating: bool) {
        self.hibernating.store(hibernating, Ordering::Release);
    }

    /// Whether the slot is left out of the store-wide tick.
    pub fn is_hibernating(&self) -> bool {
        self.hibernating.load(Ordering::Acquire)
    }
}

/// Routes messages to regions and hands regions with work to pollers.
pub struct Router<F, M> {
    slots: RwLock<HashMap<u64, Arc<Slot<F, M>>>>,
    ready_tx: Sender<Arc<Slot<F, M>>>,
    ready_rx: Receiver<Arc<Slot<F, M>>>,
    mailbox_capacity: usize,
}

impl<F, M> Router<F, M> {
    /// A router whose mailboxes hold up to `mailbox_capacity` messages.
    pub fn new(mailbox_capacity: usize) -> Router<F, M> {
        // Unbounded, yet bounded in fact: a slot is queued at most once
        // while scheduled, so the queue never exceeds the region count.
        let (ready_tx, ready_rx) = crossbeam_channel::unbounded();
        Router {
            slots: RwLock::new(HashMap::new()),
            ready_tx,
            ready_rx,
            mailbox_capacity,
        }
    }

    /// Registers region `id` with its state machine; false (and no change)
    /// if it is already registered.
    pub fn register(&self, id: u64, fsm: F) -> bool {
        let mut slots = self.slots.write();
        if slots.contains_key(&id) {
            return false;
        }
        // Unbounded with a length check rather than `bounded`: a bounded
        // channel allocates its whole capacity up front, which ten
        // thousand idle regions cannot afford.
        let (tx, rx) = crossbeam_channel::unbounded();
        let slot = Slot {
            id,
            tx,
            rx,
            fsm: Mutex::new(fsm),
            scheduled: AtomicBool::new(false),
            hibernating: AtomicBool::new(false),
            capacity: self.mailbox_capacity,
        };
        slots.insert(id, Arc::new(slot));
        true
    }

    /// Removes region `id`; messages still in its mailbox are dropped.
    pub fn unregister(&self, id: u64) -> Option<Arc<Slot<F, M>>> {
        self.slots.write().remove(&id)
    }

    /// Whether region `id` is registered.
    pub fn contains(&self, id: u64) -> bool {
        self.slots.read().contains_key(&id)
    }

    /// How many regions are registered.
    pub fn len(&self) -> usize {
        self.slots.read().len()
    }

    /// Whether no region is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Delivers `msg` to region `id` and schedules the region.
    pub fn send(&self, id: u64, msg: M) -> Result<(), SendError<M>> {
        let Some(slot) = self.slots.read().get(&id).cloned() else {
            return Err(SendError::NotFound(msg));
        };
        if slot.rx.len() >= slot.capacity {
            return Err(SendError::Full(msg));
        }
        match slot.tx.try_send(msg) {
            Ok(()) => {}
            Err(TrySendError::Full(m)) | Err(TrySendError::Disconnected(m)) => {
                return Err(SendError::Full(m))
            }
        }
        self.schedule(&slot);
        Ok(())
    }

    /// Schedules every registered region that does not hibernate (the
    /// store-wide tick); returns how many hibernate.
    pub fn schedule_ticking(&self) -> usize {
        let mut hibernating = 0;
        for slot in self.slots.read().values() {
            if slot.is_hibernating() {
                hibernating += 1;
            } else {
                self.schedule(slot);
            }
        }
        hibernating
    }

    /// Whether region `id` hibernates (false if it is not registered).
    pub fn is_hibernating(&self, id: u64) -> bool {
        self.slots
            .read()
            .get(&id)
            .is_some_and(|slot| slot.is_hibernating())
    }

    fn schedule(&self, slot: &Arc<Slot<F, M>>) {
        if !slot.scheduled.swap(true, Ordering::AcqRel) {
            // The receiver lives as long as the router.
            let _ = self.ready_tx.send(slot.clone());
        }
    }

    /// The queue pollers take scheduled regions from.
    pub fn ready(&self) -> &Receiver<Arc<Slot<F, M>>> {
        &self.ready_rx
    }

    /// Hands a slot back after a poller handled it; reschedules it if
    /// messages arrived in the meantime (they would otherwise wait for the
    /// next message or tick).
    pub fn release(&self, slot: &Arc<Slot<F, M>>) {
        slot.scheduled.store(false, Ordering::Release);
        if !slot.rx.is_empty() {
            self.schedule(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_region_is_queued_once_however_many_messages_arrive() {
        let router: Router<u64, u32> = Router::new(16);
        assert!(router.register(1, 0));
        assert!(!router.register(1, 0), "registered twice");
        for i in 0..5 {
            router.send(1, i).unwrap();
        }
        let slot = router.ready().try_recv().unwrap();
        assert!(router.ready().try_recv().is_err(), "queued once");
        assert_eq!(slot.drain(3), vec![0, 1, 2]);
        router.release(&slot);
        let again = router
            .ready()
            .try_recv()
            .expect("messages left: rescheduled");
        assert_eq!(again.drain(10), vec![3, 4]);
        router.release(&again);
        assert!(router.ready().try_recv().is_err(), "empty mailbox: idle");
    }

    #[test]
    fn full_and_unknown_mailboxes_hand_the_message_back() {
        let router: Router<(), u32> = Router::new(2);
        assert_eq!(router.send(9, 1), Err(SendError::NotFound(1)));
        router.register(9, ());
        router.send(9, 1).unwrap();
        router.send(9, 2).unwrap();
        assert_eq!(router.send(9, 3), Err(SendError::Full(3)));
        assert!(router.unregister(9).is_some());
        assert_eq!(router.send(9, 4), Err(SendError::NotFound(4)));
    }

    #[test]
    fn the_tick_schedules_each_ticking_region_once() {
        let router: Router<(), ()> = Router::new(4);
        for id in 1..=4 {
            router.register(id, ());
        }
        router.send(2, ()).unwrap();
        let slot4 = router.slots.read()[&4].clone();
        slot4.set_hibernating(true);
        assert!(router.is_hibernating(4) && !router.is_hibernating(1));
        assert_eq!(router.schedule_ticking(), 1, "one region hibernates");
        let mut ids: Vec<u64> = router.ready().try_iter().map(|s| s.id).collect();
        ids.sort();
        assert_eq!(ids, vec![1, 2, 3], "no tick for the hibernating one");
        for slot in [1, 2, 3].map(|id| router.slots.read()[&id].clone()) {
            slot.drain(8);
            router.release(&slot);
        }
        // A message still reaches a hibernating region.
        router.send(4, ()).unwrap();
        let ids: Vec<u64> = router.ready().try_iter().map(|s| s.id).collect();
        assert_eq!(ids, vec![4]);
    }

    /// Many senders, two pollers: every message is handled exactly once and
    /// no region is ever held by two pollers at the same time.
    #[test]
    fn concurrent_senders_and_pollers_handle_everything_once() {
        const REGIONS: u64 = 50;
        const PER_SENDER: u64 = 2_000;
        let router: Arc<Router<u64, u64>> = Arc::new(Router::new(64));
        for id in 0..REGIONS {
            router.register(id, 0);
        }
        let senders_done = Arc::new(AtomicBool::new(false));
        let pollers: Vec<_> = (0..2)
            .map(|_| {
                let router = router.clone();
                let senders_done = senders_done.clone();
                std::thread::spawn(move || {
                    let mut handled = 0u64;
                    loop {
                        // Stop only once nothing more can arrive and the
                        // queue is empty.
                        let done = senders_done.load(Ordering::Acquire);
                        let Ok(slot) = router.ready().recv_timeout(Duration::from_millis(20))
                        else {
                            if done {
                                break;
                            }
                            continue;
                        };
                        let mut fsm = slot
                            .fsm
                            .try_lock()
                            .expect("one poller per region at a time");
                        let msgs = slot.drain(32);
                        *fsm += msgs.len() as u64;
                        handled += msgs.len() as u64;
                        drop(fsm);
                        router.release(&slot);
                    }
                    handled
                })
            })
            .collect();
        let senders: Vec<_> = (0..3)
            .map(|s| {
                let router = router.clone();
                std::thread::spawn(move || {
                    for i in 0..PER_SENDER {
                        let mut msg = s * PER_SENDER + i;
                        // A full mailbox hands the message back: retry it.
                        while let Err(SendError::Full(m)) = router.send(msg % REGIONS, msg) {
                            msg = m;
                            std::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        for s in senders {
            s.join().unwrap();
        }
        senders_done.store(true, Ordering::Release);
        let handled: u64 = pollers.into_iter().map(|p| p.join().unwrap()).sum();
        assert_eq!(handled, 3 * PER_SENDER);
        let per_region: u64 = (0..REGIONS)
            .map(|id| *router.slots.read()[&id].fsm.lock())
            .sum();
        assert_eq!(per_region, 3 * PER_SENDER);
    }
}
