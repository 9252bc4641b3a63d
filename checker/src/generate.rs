//! Seeded generators of register histories, for testing a checker (and a
//! harness's reporting) against known answers: concurrent clients of a
//! simulated register, each operation taking effect at a random instant
//! inside its interval — linearizable by construction — and anomalies
//! planted into them.

use crate::history::Operation;
use crate::model::{RegisterOp, RegisterOut};

/// A generated register operation.
pub type Op = Operation<RegisterOp<u64>, RegisterOut<u64>>;

/// SplitMix64: a small seeded generator, enough for test data.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// A history of `clients` clients doing `per_client` operations each on one
/// register: 50 % gets, 30 % puts, 20 % CASes (half from the current value,
/// half from a random earlier one), every written value unique, 5 % of writes with an unknown outcome
/// (half of which never took effect).
pub fn linearizable_history(rng: &mut Rng, clients: u64, per_client: usize) -> Vec<Op> {
    // (linearization point, client, op index) of every operation, and the
    // operations with their outputs filled in later.
    let mut planned = Vec::new();
    let mut ops: Vec<Op> = Vec::new();
    let mut next_value = 1;
    for client in 0..clients {
        let mut t = rng.below(10);
        for _ in 0..per_client {
            let call = t + rng.below(4);
            let at = call + 1 + rng.below(6);
            let ret = at + 1 + rng.below(6);
            t = ret + 1;
            let input = match rng.below(10) {
                0..=4 => RegisterOp::Get,
                5..=7 => {
                    next_value += 1;
                    RegisterOp::Put(next_value)
                }
                _ => {
                    next_value += 1;
                    // The expected value is chosen when the CAS takes effect.
                    RegisterOp::Cas {
                        from: 0,
                        to: next_value,
                    }
                }
            };
            planned.push((at, client, ops.len()));
            ops.push(Operation::done(
                client,
                call,
                ret,
                input,
                RegisterOut::Written,
            ));
        }
    }
    planned.sort_unstable();
    let mut state: Option<u64> = None;
    for (_, _, i) in planned {
        let unknown = !matches!(ops[i].input, RegisterOp::Get) && rng.below(20) == 0;
        let took_effect = !unknown || rng.below(2) == 0;
        let output = match ops[i].input.clone() {
            RegisterOp::Get => RegisterOut::Read(state),
            RegisterOp::Put(v) => {
                if took_effect {
                    state = Some(v);
                }
                RegisterOut::Written
            }
            RegisterOp::Cas { to, .. } => {
                let from = match state {
                    Some(current) if rng.below(2) == 0 => current,
                    _ => 1 + rng.below(next_value),
                };
                ops[i].input = RegisterOp::Cas { from, to };
                let swapped = state == Some(from);
                if swapped && took_effect {
                    state = Some(to);
                }
                RegisterOut::Cas(swapped)
            }
            RegisterOp::Delete => unreachable!("not generated"),
        };
        ops[i].output = if unknown { None } else { Some(output) };
        if unknown {
            ops[i].ret = u64::MAX;
        }
    }
    ops
}

/// Plants a stale read: a get called after two acknowledged writes, one
/// after the other, returns the first one's value. Values are unique, so
/// no order explains it. Returns the get's index, or `None` if the history
/// has no such triple.
pub fn plant_stale_read(ops: &mut [Op]) -> Option<usize> {
    let acked_write = |o: &Op| match (&o.input, &o.output) {
        (RegisterOp::Put(v), Some(_)) => Some(*v),
        (RegisterOp::Cas { to, .. }, Some(RegisterOut::Cas(true))) => Some(*to),
        _ => None,
    };
    let is_get = |o: &Op| o.input == RegisterOp::Get && o.output.is_some();
    let (g, v1) = ops
        .iter()
        .enumerate()
        .filter(|(_, o)| is_get(o))
        .find_map(|(g, get)| {
            ops.iter().find_map(|first| {
                let v1 = acked_write(first)?;
                let second_between = ops.iter().any(|second| {
                    acked_write(second).is_some()
                        && second.call > first.ret
                        && second.ret < get.call
                });
                (first.ret < get.call && second_between).then_some((g, v1))
            })
        })?;
    ops[g].output = Some(RegisterOut::Read(Some(v1)));
    Some(g)
}
