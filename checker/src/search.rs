//! The search for one key: Wing and Gong's backtracking over the minimal
//! operations, with Lowe's memoisation of (linearized set, state) — the
//! algorithm of Porcupine's `checkSingle`.
//!
//! The history becomes a doubly linked list of call and return events in
//! time order. The operations that may be linearized next are exactly the
//! calls before the first remaining return. Linearizing one *lifts* its
//! call and return out of the list; reaching a return whose call is still
//! listed means no order works from here, so the last choice is undone.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::history::Operation;
use crate::model::Model;

/// The result of searching one history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Some order of the operations, consistent with real time, satisfies
    /// the model.
    Linearizable,
    /// None does.
    Illegal,
    /// The search ran out of time.
    Unknown,
}

/// A search result, with its evidence.
#[derive(Clone, Debug)]
pub struct Search {
    /// The verdict.
    pub verdict: Verdict,
    /// For `Linearizable`, a witness order (indices into the operations);
    /// otherwise the longest partial order found.
    pub order: Vec<usize>,
    /// Steps taken (operations tried).
    pub steps: u64,
}

/// When a search gives up: at a deadline, or when another thread raises a
/// flag (the keyed check stops the other keys once one is illegal).
#[derive(Clone, Copy, Debug, Default)]
pub struct Budget<'a> {
    /// Give up at this instant.
    pub deadline: Option<Instant>,
    /// Give up once this is set.
    pub cancel: Option<&'a AtomicBool>,
}

impl Budget<'_> {
    /// No limit.
    pub fn unlimited() -> Budget<'static> {
        Budget::default()
    }

    /// Until `deadline`.
    pub fn until(deadline: Instant) -> Budget<'static> {
        Budget {
            deadline: Some(deadline),
            cancel: None,
        }
    }

    fn spent(&self) -> bool {
        self.cancel.is_some_and(|c| c.load(Ordering::Relaxed))
            || self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

const NONE: usize = usize::MAX;
/// How many steps between budget checks.
const BUDGET_EVERY: u64 = 1 << 12;

/// The event list: node 0 is the head sentinel, node `k + 1` is event `k`.
struct Events {
    next: Vec<usize>,
    prev: Vec<usize>,
    /// The operation of each node.
    op: Vec<usize>,
    /// For a call node, its return node; `NONE` for returns.
    ret_of: Vec<usize>,
}

impl Events {
    fn new<I, O>(ops: &[Operation<I, O>]) -> Events {
        // (time, 0 = call / 1 = return, op): calls sort before returns at
        // equal times, because intervals are closed.
        let mut order: Vec<(u64, u8, usize)> = Vec::with_capacity(2 * ops.len());
        for (i, o) in ops.iter().enumerate() {
            order.push((o.call, 0, i));
            order.push((o.return_time(), 1, i));
        }
        order.sort_unstable();
        let n = order.len() + 1;
        let mut ev = Events {
            next: (1..=n).map(|k| if k == n { NONE } else { k }).collect(),
            prev: (0..n).map(|k| k.wrapping_sub(1)).collect(),
            op: vec![NONE; n],
            ret_of: vec![NONE; n],
        };
        let mut call_node = vec![NONE; ops.len()];
        for (k, &(_, kind, i)) in order.iter().enumerate() {
            let node = k + 1;
            ev.op[node] = i;
            if kind == 0 {
                call_node[i] = node;
            } else {
                ev.ret_of[call_node[i]] = node;
            }
        }
        ev
    }

    fn unlink(&mut self, node: usize) {
        let (p, n) = (self.prev[node], self.next[node]);
        self.next[p] = n;
        if n != NONE {
            self.prev[n] = p;
        }
    }

    fn relink(&mut self, node: usize) {
        let (p, n) = (self.prev[node], self.next[node]);
        self.next[p] = node;
        if n != NONE {
            self.prev[n] = node;
        }
    }

    /// Takes an operation's call and return out of the list.
    fn lift(&mut self, call: usize) {
        self.unlink(call);
        self.unlink(self.ret_of[call]);
    }

    /// Puts them back (in the reverse order).
    fn unlift(&mut self, call: usize) {
        self.relink(self.ret_of[call]);
        self.relink(call);
    }
}

/// Searches for a linearization of `ops` from `init`, within `budget`.
pub fn search<M: Model>(
    model: &M,
    ops: &[Operation<M::Input, M::Output>],
    init: M::State,
    budget: &Budget,
) -> Search {
    let mut ev = Events::new(ops);
    let words = ops.len().div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut seen: HashSet<(Vec<u64>, M::State)> = HashSet::new();
    let mut stack: Vec<(usize, M::State)> = Vec::new();
    let mut longest: Vec<usize> = Vec::new();
    let mut state = init;
    let mut cur = ev.next[0];
    let mut steps = 0u64;
    while ev.next[0] != NONE {
        steps += 1;
        if steps % BUDGET_EVERY == 0 && budget.spent() {
            return Search {
                verdict: Verdict::Unknown,
                order: longest,
                steps,
            };
        }
        if ev.ret_of[cur] != NONE {
            let i = ev.op[cur];
            let op = &ops[i];
            if let Some(next_state) = model.step(&state, &op.input, op.output.as_ref()) {
                linearized[i / 64] |= 1 << (i % 64);
                if seen.insert((linearized.clone(), next_state.clone())) {
                    stack.push((cur, std::mem::replace(&mut state, next_state)));
                    if stack.len() > longest.len() {
                        longest = stack.iter().map(|&(c, _)| ev.op[c]).collect();
                    }
                    ev.lift(cur);
                    cur = ev.next[0];
                    continue;
                }
                linearized[i / 64] &= !(1 << (i % 64));
            }
            cur = ev.next[cur];
        } else {
            // A return whose call is still listed: that operation had to be
            // linearized before this point, and no choice made so far allows
            // it. Undo the last choice.
            let Some((call, previous)) = stack.pop() else {
                return Search {
                    verdict: Verdict::Illegal,
                    order: longest,
                    steps,
                };
            };
            state = previous;
            let i = ev.op[call];
            linearized[i / 64] &= !(1 << (i % 64));
            ev.unlift(call);
            cur = ev.next[call];
        }
    }
    Search {
        verdict: Verdict::Linearizable,
        order: stack.iter().map(|&(c, _)| ev.op[c]).collect(),
        steps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{RegisterModel, RegisterOp as Op, RegisterOut as Out};

    type O = Operation<Op<u64>, Out<u64>>;

    fn check(ops: &[O]) -> Verdict {
        let m = RegisterModel::new();
        search(&m, ops, m.init(), &Budget::unlimited()).verdict
    }

    fn put(c: u64, call: u64, ret: u64, v: u64) -> O {
        Operation::done(c, call, ret, Op::Put(v), Out::Written)
    }

    fn get(c: u64, call: u64, ret: u64, v: Option<u64>) -> O {
        Operation::done(c, call, ret, Op::Get, Out::Read(v))
    }

    fn cas(c: u64, call: u64, ret: u64, from: u64, to: u64, swapped: bool) -> O {
        Operation::done(c, call, ret, Op::Cas { from, to }, Out::Cas(swapped))
    }

    #[test]
    fn empty_and_sequential_histories() {
        assert_eq!(check(&[]), Verdict::Linearizable);
        let ops = [
            put(0, 0, 1, 1),
            get(0, 2, 3, Some(1)),
            put(0, 4, 5, 2),
            get(0, 6, 7, Some(2)),
        ];
        assert_eq!(check(&ops), Verdict::Linearizable);
    }

    #[test]
    fn a_stale_read_is_illegal() {
        let ops = [put(0, 0, 1, 1), put(1, 2, 3, 2), get(2, 4, 5, Some(1))];
        assert_eq!(check(&ops), Verdict::Illegal);
    }

    #[test]
    fn overlapping_operations_may_take_either_order() {
        // The read overlaps the second put: it may see 1 or 2.
        for seen in [1, 2] {
            let ops = [put(0, 0, 1, 1), put(1, 2, 6, 2), get(2, 3, 5, Some(seen))];
            assert_eq!(check(&ops), Verdict::Linearizable, "read {seen}");
        }
        // But once one reader saw 2, a later reader cannot see 1.
        let ops = [
            put(0, 0, 1, 1),
            put(1, 2, 9, 2),
            get(2, 3, 4, Some(2)),
            get(3, 5, 6, Some(1)),
        ];
        assert_eq!(check(&ops), Verdict::Illegal);
    }

    #[test]
    fn an_unknown_write_may_take_effect_late_or_never() {
        let unknown = Operation::unknown(0, 0, Op::Put(1));
        let late = [unknown.clone(), get(1, 5, 6, None), get(1, 7, 8, Some(1))];
        assert_eq!(check(&late), Verdict::Linearizable);
        let never = [unknown.clone(), get(1, 5, 6, None)];
        assert_eq!(check(&never), Verdict::Linearizable);
        // Not before its call, though.
        let early = [get(1, 0, 1, Some(1)), Operation::unknown(0, 2, Op::Put(1))];
        assert_eq!(check(&early), Verdict::Illegal);
        // And, once seen, not undone.
        let undone = [unknown, get(1, 5, 6, Some(1)), get(1, 7, 8, None)];
        assert_eq!(check(&undone), Verdict::Illegal);
    }

    #[test]
    fn a_failed_cas_constrains_the_history() {
        // The register held 1 throughout, so the CAS from 1 must swap.
        let ops = [put(0, 0, 1, 1), cas(1, 2, 3, 1, 2, false)];
        assert_eq!(check(&ops), Verdict::Illegal);
        let ops = [
            put(0, 0, 1, 1),
            cas(1, 2, 3, 1, 2, true),
            get(0, 4, 5, Some(2)),
        ];
        assert_eq!(check(&ops), Verdict::Linearizable);
        let unknown_cas = Operation::unknown(1, 2, Op::Cas { from: 1, to: 2 });
        let ops = [put(0, 0, 1, 1), unknown_cas, get(0, 4, 5, Some(2))];
        assert_eq!(check(&ops), Verdict::Linearizable);
    }

    #[test]
    fn the_witness_is_a_real_time_order() {
        let ops = [
            put(0, 0, 10, 1),
            get(1, 1, 2, None),
            get(2, 11, 12, Some(1)),
        ];
        let s = search(
            &RegisterModel::new(),
            &ops,
            RegisterModel::new().init(),
            &Budget::unlimited(),
        );
        assert_eq!(s.verdict, Verdict::Linearizable);
        assert_eq!(s.order, vec![1, 0, 2]);
    }

    #[test]
    fn a_deadline_in_the_past_gives_unknown() {
        // Many concurrent writes and one impossible read: a long search.
        let mut ops: Vec<O> = (0..40).map(|i| put(i, 0, 100, i)).collect();
        ops.push(get(99, 101, 102, Some(1000)));
        let m = RegisterModel::new();
        let s = search(&m, &ops, m.init(), &Budget::until(Instant::now()));
        assert_eq!(s.verdict, Verdict::Unknown);
    }
}
