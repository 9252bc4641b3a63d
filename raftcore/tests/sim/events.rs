//! Simulated time: message deliveries, ticks at each node's clock rate,
//! planned crashes, restarts and the end of pauses, in time order.

use raftcore::{Error, MessageType};

use crate::checker::Violation;
use crate::cluster::Cluster;
use crate::network::InFlight;
use crate::node::Life;
use crate::params::TICK;
use crate::workload;

/// Workload and fault actions per tick, on average.
const ACTIONS_PER_TICK: u64 = 4;

/// The next timed event.
enum Event {
    Deliver,
    /// A tick (running node) or a restart (crashed node).
    Node(u64),
    Crash(u64),
    Resume(u64),
    /// A workload or fault action (first phase only).
    Action,
    /// A host-initiated election (`RawNode::campaign`) planned earlier.
    Campaign(u64),
}

impl Cluster {
    /// Lets time pass to the next event and handles it.
    pub(crate) fn advance(&mut self) -> Result<(), Violation> {
        let Some((t, event)) = self.next_event() else {
            return Ok(());
        };
        self.now = self.now.max(t);
        match event {
            Event::Deliver => {
                let f = self.net.pop().expect("next_time saw it");
                self.deliver(f)
            }
            Event::Resume(id) => self.resume(id),
            Event::Campaign(id) => {
                self.campaigns.pop_first();
                if let Some(node) = self.nodes.get_mut(&id).filter(|n| n.is_up()) {
                    let result = node.raw_mut().expect("up").campaign();
                    self.log(|| format!("node {id} campaigns: {result:?}"));
                }
                Ok(())
            }
            Event::Action => {
                // Actions arrive at a rate per simulated time, however
                // busy the network is.
                self.next_action_at = self.now + self.rng.range(1, 2 * TICK / ACTIONS_PER_TICK);
                workload::act(self)
            }
            Event::Crash(id) => {
                let delay = self.nodes[&id].crash_at.map_or(0, |(_, d)| d);
                self.crash(id, delay);
                Ok(())
            }
            Event::Node(id) => {
                let node = self.nodes.get_mut(&id).expect("exists");
                if !node.is_up() {
                    return self.restart(id);
                }
                if node.tick() {
                    self.stats.hibernating_ticks += 1;
                }
                Ok(())
            }
        }
    }

    /// The earliest event: a delivery, an action, a planned campaign, or a
    /// node's tick, planned crash, restart or end of pause.
    fn next_event(&self) -> Option<(u64, Event)> {
        let mut next = self.net.next_time().map(|t| (t, Event::Deliver));
        let mut consider = |t: u64, event: Event| {
            if next.as_ref().is_none_or(|&(best, _)| t < best) {
                next = Some((t, event));
            }
        };
        if self.faults {
            consider(self.next_action_at, Event::Action);
        }
        if let Some(&(t, id)) = self.campaigns.first() {
            consider(t, Event::Campaign(id));
        }
        for (&id, n) in &self.nodes {
            match (&n.life, n.paused_until, n.crash_at) {
                (Life::Up(_), Some(until), _) => consider(until, Event::Resume(id)),
                (Life::Up(_), None, Some((at, _))) if at < n.next_tick_at => {
                    consider(at, Event::Crash(id))
                }
                (Life::Up(_), ..) => consider(n.next_tick_at, Event::Node(id)),
                (Life::Down { restart_at, .. }, ..) => consider(*restart_at, Event::Node(id)),
                (Life::Stopped, ..) => {}
            }
        }
        next
    }

    /// Ends a pause: the host first delivers the ticks it missed (as
    /// `Config::lease_ticks` requires), then the messages that arrived.
    pub fn resume(&mut self, id: u64) -> Result<(), Violation> {
        let now = self.now;
        let node = self.nodes.get_mut(&id).expect("exists");
        node.paused_until = None;
        let mut missed = 0;
        while node.next_tick_at <= now {
            let _ = node.tick();
            missed += 1;
        }
        self.log(|| format!("node {id} resumes after missing {missed} ticks"));
        for f in self.inboxes.remove(&id).unwrap_or_default() {
            self.deliver(f)?;
        }
        Ok(())
    }

    pub(crate) fn deliver(&mut self, f: InFlight) -> Result<(), Violation> {
        let (from, to, ty) = (f.msg.from, f.msg.to, f.msg.msg_type);
        if self
            .nodes
            .get(&to)
            .is_some_and(|n| n.paused_until.is_some())
        {
            // A paused process reads its socket when it resumes.
            self.inboxes.entry(to).or_default().push(f);
            return Ok(());
        }
        let mut delivered = false;
        if self.net.link_ok(from, to) {
            if let Some(raw) = self.raw_mut(to) {
                delivered = true;
                // Other errors (a message from a removed peer) drop it.
                if let Err(Error::InvalidMessage(why)) = raw.step(f.msg) {
                    return Err(Violation(format!(
                        "node {to} refused a {ty:?} from {from} as invalid: {why}"
                    )));
                }
            }
        }
        if ty == MessageType::Snapshot {
            self.report_snapshot(from, to, f.incarnation, delivered);
        }
        Ok(())
    }
}
