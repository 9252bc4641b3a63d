//! The smallest failing window of an illegal history: the few operations
//! a person needs to read to see the anomaly.
//!
//! Two cuts are made, each *sound* — the window is illegal only if the
//! whole history is:
//!
//! - **End**: the operations called by time `t`. Of those still running
//!   at `t`, reads are dropped and writes become unknown. Any linearization
//!   of the whole history restricted to these is one of the cut (a read that
//!   returned by `t` saw a write called before its return), so an illegal
//!   cut means an illegal history.
//! - **Start** (models with an "any" state only): drop what returned before
//!   time `s`, and the reads running at `s`, starting from "any" state.
//!   Allowed only where no write with a known outcome is running at `s`,
//!   so every dropped write precedes every kept one, except writes of
//!   unknown outcome — which are kept, and may take effect at the end if
//!   they already did before `s`.
//!
//! The end is pulled in as far as the history stays illegal, then the
//! start is pushed out.

use std::time::Instant;

use crate::history::Operation;
use crate::model::Model;
use crate::search::{search, Budget, Verdict};

/// An operation of a window, with its index in the whole history.
pub type Indexed<M> = (usize, Operation<<M as Model>::Input, <M as Model>::Output>);

/// A small illegal window of the illegal history `ops`, in call order:
/// each operation with its index in `ops`, as the window checks it (a
/// write running at the end cut is unknown there). Checks that run out of
/// time count as legal, so the window only shrinks where that is proven.
pub fn failing_window<M: Model>(
    model: &M,
    ops: &[Operation<M::Input, M::Output>],
    deadline: Option<Instant>,
) -> Vec<Indexed<M>>
where
    M::Input: Clone,
    M::Output: Clone,
{
    let mut calls: Vec<u64> = ops.iter().map(|o| o.call).collect();
    calls.sort_unstable();
    calls.dedup();
    // The whole history is illegal: find the earliest end that still is.
    let mut end: Vec<Indexed<M>> = ops.iter().cloned().enumerate().collect();
    let (mut lo, mut hi) = (0, calls.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        let cut = cut_end(model, ops, calls[mid]);
        if illegal(model, &cut, model.init(), deadline) {
            end = cut;
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let Some(any) = model.any_state() else {
        return sorted(end);
    };
    // Then the latest start that still is, from "any" state, among the
    // starts where no write with a known outcome is running.
    let mut starts: Vec<u64> = end.iter().map(|(_, o)| o.call).collect();
    starts.sort_unstable();
    starts.dedup();
    starts.retain(|&t| {
        !end.iter().any(|(_, o)| {
            !model.is_read_only(&o.input) && o.output.is_some() && o.call < t && o.ret >= t
        })
    });
    let mut window = end.clone();
    let (mut lo, mut hi) = (0, starts.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        let cut = cut_start(model, &end, starts[mid]);
        if illegal(model, &cut, any.clone(), deadline) {
            window = cut;
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    sorted(window)
}

fn sorted<I, O>(mut ops: Vec<(usize, Operation<I, O>)>) -> Vec<(usize, Operation<I, O>)> {
    ops.sort_by_key(|(i, o)| (o.call, *i));
    ops
}

/// The end cut at `t`.
fn cut_end<M: Model>(model: &M, ops: &[Operation<M::Input, M::Output>], t: u64) -> Vec<Indexed<M>>
where
    M::Input: Clone,
    M::Output: Clone,
{
    let mut cut = Vec::new();
    for (i, o) in ops.iter().enumerate() {
        if o.call > t {
            continue;
        }
        let running = o.return_time() > t;
        if running && model.is_read_only(&o.input) {
            continue;
        }
        cut.push((
            i,
            if running {
                Operation::unknown(o.client, o.call, o.input.clone())
            } else {
                o.clone()
            },
        ));
    }
    cut
}

/// The start cut at `t` of the window `ops`.
fn cut_start<M: Model>(model: &M, ops: &[Indexed<M>], t: u64) -> Vec<Indexed<M>>
where
    M::Input: Clone,
    M::Output: Clone,
{
    ops.iter()
        .filter(|(_, o)| {
            let returned_before = o.return_time() < t;
            let running_read = o.call < t && model.is_read_only(&o.input);
            !returned_before && !running_read
        })
        .cloned()
        .collect()
}

fn illegal<M: Model>(
    model: &M,
    ops: &[Indexed<M>],
    init: M::State,
    deadline: Option<Instant>,
) -> bool
where
    M::Input: Clone,
    M::Output: Clone,
{
    let ops: Vec<_> = ops.iter().map(|(_, o)| o.clone()).collect();
    search(
        model,
        &ops,
        init,
        &Budget {
            deadline,
            cancel: None,
        },
    )
    .verdict
        == Verdict::Illegal
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{RegisterModel, RegisterOp as Op, RegisterOut as Out, RegisterState};

    type O = Operation<Op<u64>, Out<u64>>;

    fn put(c: u64, call: u64, ret: u64, v: u64) -> O {
        Operation::done(c, call, ret, Op::Put(v), Out::Written)
    }

    fn get(c: u64, call: u64, ret: u64, v: Option<u64>) -> O {
        Operation::done(c, call, ret, Op::Get, Out::Read(v))
    }

    #[test]
    fn the_window_holds_the_stale_read_and_the_writes_it_skipped() {
        // 100 clean sequential rounds of put and read, then one stale read,
        // then 100 more rounds.
        let mut ops = Vec::new();
        let mut t = 0;
        for v in 0..100 {
            ops.push(put(0, t, t + 1, v));
            ops.push(get(1, t + 2, t + 3, Some(v)));
            t += 4;
        }
        ops.push(put(0, t, t + 1, 1000));
        ops.push(put(0, t + 2, t + 3, 1001));
        let stale = ops.len();
        ops.push(get(1, t + 4, t + 5, Some(1000)));
        t += 6;
        for v in 2000..2100 {
            ops.push(put(0, t, t + 1, v));
            t += 2;
        }
        let m = RegisterModel::new();
        assert_eq!(
            search(&m, &ops, m.init(), &Budget::unlimited()).verdict,
            Verdict::Illegal
        );
        let w = failing_window(&m, &ops, None);
        assert!(w.iter().any(|(i, _)| *i == stale), "{w:?}");
        assert!(w.len() <= 3, "window of {} ops: {w:?}", w.len());
        let sub: Vec<O> = w.into_iter().map(|(_, o)| o).collect();
        assert_eq!(
            search(&m, &sub, RegisterState::Any, &Budget::unlimited()).verdict,
            Verdict::Illegal
        );
    }
}
