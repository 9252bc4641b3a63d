//! Sequential specifications: what one operation may return from a state,
//! and the state after it.

use std::fmt::Debug;
use std::hash::Hash;

/// A sequential object the history is checked against.
pub trait Model {
    /// The object's state.
    type State: Clone + Eq + Hash + Debug;
    /// An operation's input.
    type Input: Debug;
    /// An operation's output.
    type Output: Debug;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// If `input` may return `output` when applied to `state`, the state
    /// after it. `output` is `None` when the outcome is unknown: the
    /// operation took effect here, whatever it returned.
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Option<Self::State>;

    /// Whether the operation never changes the state, so that removing it
    /// from a linearizable history leaves a linearizable history.
    fn is_read_only(&self, _input: &Self::Input) -> bool {
        false
    }

    /// A state that stands for every state, if the model has one: `step`
    /// from it must allow whatever some concrete state allows. It lets a
    /// failing window start in the middle of a history.
    fn any_state(&self) -> Option<Self::State> {
        None
    }
}

/// A register operation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RegisterOp<V> {
    /// Read the value.
    Get,
    /// Write a value.
    Put(V),
    /// Write `to` if the register holds `from`.
    Cas {
        /// The expected value.
        from: V,
        /// The new value.
        to: V,
    },
    /// Remove the value.
    Delete,
}

/// What a register operation returned.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RegisterOut<V> {
    /// A read's value (`None`: absent).
    Read(Option<V>),
    /// A put or delete was acknowledged.
    Written,
    /// Whether a CAS swapped. A CAS that did not swap still constrains
    /// the history: the register did not hold `from` at that point.
    Cas(bool),
}

/// A register's state: a value, possibly absent, or any value (only in
/// windows cut from the middle of a history).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RegisterState<V> {
    /// Unconstrained.
    Any,
    /// The register holds this (`None`: absent).
    Value(Option<V>),
}

/// Whether the register holds `v`; `None` when the state is "any".
fn holds<V: PartialEq>(state: &RegisterState<V>, v: &V) -> Option<bool> {
    match state {
        RegisterState::Any => None,
        RegisterState::Value(x) => Some(x.as_ref() == Some(v)),
    }
}

/// A register of values of type `V` that starts absent: get, put, CAS and
/// delete.
#[derive(Clone, Copy, Debug, Default)]
pub struct RegisterModel<V>(std::marker::PhantomData<V>);

impl<V> RegisterModel<V> {
    /// The model.
    pub fn new() -> Self {
        RegisterModel(std::marker::PhantomData)
    }
}

impl<V: Clone + Eq + Hash + Debug> Model for RegisterModel<V> {
    type State = RegisterState<V>;
    type Input = RegisterOp<V>;
    type Output = RegisterOut<V>;

    fn init(&self) -> Self::State {
        RegisterState::Value(None)
    }

    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Option<Self::State> {
        use RegisterOp as Op;
        use RegisterOut as Out;
        match (input, output) {
            (Op::Get, None) => Some(state.clone()),
            (Op::Get, Some(Out::Read(x))) => match state {
                RegisterState::Any => Some(RegisterState::Value(x.clone())),
                RegisterState::Value(s) => (s == x).then(|| state.clone()),
            },
            (Op::Put(v), None | Some(Out::Written)) => Some(RegisterState::Value(Some(v.clone()))),
            (Op::Delete, None | Some(Out::Written)) => Some(RegisterState::Value(None)),
            (Op::Cas { from, to }, Some(Out::Cas(true))) => holds(state, from)
                .unwrap_or(true)
                .then(|| RegisterState::Value(Some(to.clone()))),
            (Op::Cas { from, .. }, Some(Out::Cas(false))) => {
                (!holds(state, from).unwrap_or(false)).then(|| state.clone())
            }
            (Op::Cas { from, to }, None) => match holds(state, from) {
                // Either branch is possible from "any"; "any" covers both.
                None => Some(RegisterState::Any),
                Some(true) => Some(RegisterState::Value(Some(to.clone()))),
                Some(false) => Some(state.clone()),
            },
            // An output of another operation's kind is impossible.
            _ => None,
        }
    }

    fn is_read_only(&self, input: &Self::Input) -> bool {
        matches!(input, RegisterOp::Get)
    }

    fn any_state(&self) -> Option<Self::State> {
        Some(RegisterState::Any)
    }
}

/// A string operation (the Porcupine key-value corpus).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StringOp {
    /// Read the string.
    Get,
    /// Replace it.
    Put(String),
    /// Append to it.
    Append(String),
}

/// What a string operation returned.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StringOut {
    /// A read's value (absent reads as empty).
    Read(String),
    /// A put or append was acknowledged.
    Written,
}

/// A string that starts empty: get, put, append.
#[derive(Clone, Copy, Debug, Default)]
pub struct StringModel;

impl Model for StringModel {
    type State = String;
    type Input = StringOp;
    type Output = StringOut;

    fn init(&self) -> String {
        String::new()
    }

    fn step(&self, state: &String, input: &StringOp, output: Option<&StringOut>) -> Option<String> {
        match (input, output) {
            (StringOp::Get, None) => Some(state.clone()),
            (StringOp::Get, Some(StringOut::Read(x))) => (x == state).then(|| state.clone()),
            (StringOp::Put(v), None | Some(StringOut::Written)) => Some(v.clone()),
            (StringOp::Append(v), None | Some(StringOut::Written)) => Some(format!("{state}{v}")),
            _ => None,
        }
    }

    fn is_read_only(&self, input: &StringOp) -> bool {
        matches!(input, StringOp::Get)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type M = RegisterModel<u64>;
    const ABSENT: RegisterState<u64> = RegisterState::Value(None);

    fn val(v: u64) -> RegisterState<u64> {
        RegisterState::Value(Some(v))
    }

    #[test]
    fn register_steps() {
        let m = M::new();
        let cas = |from, to| RegisterOp::Cas { from, to };
        assert_eq!(
            m.step(&ABSENT, &RegisterOp::Get, Some(&RegisterOut::Read(None))),
            Some(ABSENT)
        );
        assert_eq!(
            m.step(&ABSENT, &RegisterOp::Get, Some(&RegisterOut::Read(Some(1)))),
            None
        );
        assert_eq!(
            m.step(&ABSENT, &RegisterOp::Put(1), Some(&RegisterOut::Written)),
            Some(val(1))
        );
        assert_eq!(
            m.step(&val(1), &cas(1, 2), Some(&RegisterOut::Cas(true))),
            Some(val(2))
        );
        assert_eq!(
            m.step(&val(3), &cas(1, 2), Some(&RegisterOut::Cas(true))),
            None
        );
        assert_eq!(
            m.step(&val(1), &cas(1, 2), Some(&RegisterOut::Cas(false))),
            None
        );
        assert_eq!(
            m.step(&val(3), &cas(1, 2), Some(&RegisterOut::Cas(false))),
            Some(val(3))
        );
        assert_eq!(m.step(&val(1), &cas(1, 2), None), Some(val(2)));
        assert_eq!(m.step(&val(3), &cas(1, 2), None), Some(val(3)));
        assert_eq!(m.step(&val(3), &RegisterOp::Delete, None), Some(ABSENT));
        // An output of the wrong kind never fits.
        assert_eq!(
            m.step(&val(3), &RegisterOp::Put(4), Some(&RegisterOut::Cas(true))),
            None
        );
    }

    #[test]
    fn any_allows_what_some_state_allows() {
        let m = M::new();
        let any = RegisterState::Any;
        let read = |v| Some(RegisterOut::Read(v));
        assert_eq!(
            m.step(&any, &RegisterOp::Get, read(Some(7)).as_ref()),
            Some(val(7))
        );
        assert_eq!(
            m.step(&any, &RegisterOp::Get, read(None).as_ref()),
            Some(ABSENT)
        );
        let cas = RegisterOp::Cas { from: 1, to: 2 };
        assert_eq!(
            m.step(&any, &cas, Some(&RegisterOut::Cas(true))),
            Some(val(2))
        );
        assert_eq!(
            m.step(&any, &cas, Some(&RegisterOut::Cas(false))),
            Some(any.clone())
        );
        assert_eq!(m.step(&any, &cas, None), Some(any));
    }

    #[test]
    fn string_steps() {
        let m = StringModel;
        let s = m
            .step(&m.init(), &StringOp::Append("x".into()), None)
            .unwrap();
        let s = m
            .step(&s, &StringOp::Append("y".into()), Some(&StringOut::Written))
            .unwrap();
        assert_eq!(s, "xy");
        assert!(m
            .step(&s, &StringOp::Get, Some(&StringOut::Read("x".into())))
            .is_none());
        assert_eq!(m.step(&s, &StringOp::Put("z".into()), None).unwrap(), "z");
    }
}
