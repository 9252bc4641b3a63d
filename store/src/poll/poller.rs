//! A poller: one thread of the store's small fixed pool. Each *round* it
//! takes a batch of scheduled regions, lets the handler process each one's
//! messages (collecting their Raft work into shared round state), then ends
//! the round once for all of them — one write batch, one fsync, one message
//! batch per destination store — and only then releases the regions. A
//! region's next round therefore starts after its previous Ready is
//! durable, which is what raftcore's one-outstanding-Ready rule needs.

use std::sync::Arc;
use std::time::Duration;

use super::router::{Router, Slot};

/// What a poller does with regions and rounds.
pub trait Handler<F, M> {
    /// Handles one region's messages within the current round.
    fn handle(&mut self, region_id: u64, fsm: &mut F, msgs: Vec<M>);

    /// Ends the round: persists and sends what the handled regions
    /// produced, then finishes each one (`fsm` again, after the persist).
    fn end_round(&mut self, regions: &mut [(u64, &mut F)]);

    /// Whether `fsm` needs no ticks until its next message (asked after
    /// every round it took part in).
    fn hibernating(&self, _fsm: &F) -> bool {
        false
    }
}

/// Limits of one round.
#[derive(Clone, Copy, Debug)]
pub struct RoundLimits {
    /// Most regions per round.
    pub max_regions: usize,
    /// Most messages taken from one mailbox per round (the rest wait for
    /// the next round, so one busy region cannot starve the others).
    pub max_messages: usize,
}

/// Runs rounds until the router's ready queue is closed or `stop` returns
/// true (checked at least every `idle_check`).
pub fn run<F, M, H: Handler<F, M>>(
    router: &Router<F, M>,
    handler: &mut H,
    limits: RoundLimits,
    idle_check: Duration,
    stop: &dyn Fn() -> bool,
) {
    while !stop() {
        let Ok(first) = router.ready().recv_timeout(idle_check) else {
            continue;
        };
        let mut batch: Vec<Arc<Slot<F, M>>> = vec![first];
        while batch.len() < limits.max_regions {
            match router.ready().try_recv() {
                Ok(slot) => batch.push(slot),
                Err(_) => break,
            }
        }
        round(router, handler, &batch, limits);
    }
}

fn round<F, M, H: Handler<F, M>>(
    router: &Router<F, M>,
    handler: &mut H,
    batch: &[Arc<Slot<F, M>>],
    limits: RoundLimits,
) {
    // Only this poller holds these slots (they were scheduled, and the
    // router queues a slot once), so the locks are uncontended.
    let mut guards: Vec<_> = batch
        .iter()
        .map(|slot| (slot.id, slot.fsm.lock()))
        .collect();
    for (slot, (id, fsm)) in batch.iter().zip(guards.iter_mut()) {
        let msgs = slot.drain(limits.max_messages);
        handler.handle(*id, fsm, msgs);
    }
    let mut regions: Vec<(u64, &mut F)> =
        guards.iter_mut().map(|(id, g)| (*id, &mut **g)).collect();
    handler.end_round(&mut regions);
    drop(regions);
    for (slot, (_, fsm)) in batch.iter().zip(guards.iter()) {
        slot.set_hibernating(handler.hibernating(fsm));
    }
    drop(guards);
    for slot in batch {
        router.release(slot);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// Records which regions each round covered and checks that no region
    /// is handled again before its round ended.
    #[derive(Default)]
    struct Recorder {
        in_round: Vec<u64>,
        rounds: Vec<Vec<u64>>,
        handled: u64,
    }

    impl Handler<u64, u64> for Recorder {
        fn handle(&mut self, region_id: u64, fsm: &mut u64, msgs: Vec<u64>) {
            assert!(
                !self.in_round.contains(&region_id),
                "region twice in one round"
            );
            self.in_round.push(region_id);
            *fsm += msgs.len() as u64;
            self.handled += msgs.len() as u64;
        }

        fn end_round(&mut self, regions: &mut [(u64, &mut u64)]) {
            let ids: Vec<u64> = regions.iter().map(|(id, _)| *id).collect();
            assert_eq!(ids, self.in_round, "end_round sees the handled regions");
            self.rounds.push(std::mem::take(&mut self.in_round));
        }
    }

    #[test]
    fn rounds_batch_regions_and_bound_messages_per_region() {
        let router: Router<u64, u64> = Router::new(1024);
        for id in 0..10 {
            router.register(id, 0);
        }
        for i in 0..100 {
            router.send(i % 10, i).unwrap();
        }
        let mut recorder = Recorder::default();
        let stopped = AtomicBool::new(false);
        let limits = RoundLimits {
            max_regions: 4,
            max_messages: 3,
        };
        let stop = || {
            // Stop once everything was handled.
            let done = stopped.load(Ordering::Relaxed);
            stopped.store(router.ready().is_empty(), Ordering::Relaxed);
            done
        };
        run(
            &router,
            &mut recorder,
            limits,
            Duration::from_millis(10),
            &stop,
        );
        assert_eq!(recorder.handled, 100);
        assert!(recorder.rounds.iter().all(|r| r.len() <= 4));
        // 10 messages per region, at most 3 per round: at least 4 rounds each.
        let per_region = |id: u64| recorder.rounds.iter().filter(|r| r.contains(&id)).count();
        assert!((0..10).all(|id| per_region(id) >= 4));
    }
}
