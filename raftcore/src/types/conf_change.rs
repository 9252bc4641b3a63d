use std::fmt;

use bytes::Bytes;

use super::message::DisplayList;
use crate::codec::{put_varint, take_byte, take_varint, DecodeError};

/// One membership change of one peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfChangeType {
    /// Make the peer a voter (adding it, or promoting a learner).
    AddNode,
    /// Make the peer a learner (adding it, or demoting a voter).
    AddLearnerNode,
    /// Remove the peer.
    RemoveNode,
}

/// A change of one peer's membership.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConfChangeSingle {
    /// What to do.
    pub change_type: ConfChangeType,
    /// To whom.
    pub node_id: u64,
}

impl ConfChangeSingle {
    /// Shorthand for a [`ConfChangeSingle`].
    pub fn new(change_type: ConfChangeType, node_id: u64) -> ConfChangeSingle {
        ConfChangeSingle {
            change_type,
            node_id,
        }
    }
}

impl fmt::Display for ConfChangeSingle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.change_type {
            ConfChangeType::AddNode => "v",
            ConfChangeType::AddLearnerNode => "l",
            ConfChangeType::RemoveNode => "r",
        };
        write!(f, "{op}{}", self.node_id)
    }
}

/// How a configuration change moves through joint consensus.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ConfChangeTransition {
    /// A single voter change applies directly; anything larger enters a joint
    /// configuration that the leader leaves automatically.
    #[default]
    Auto,
    /// Always enter a joint configuration; leave it automatically.
    Implicit,
    /// Always enter a joint configuration; stay until the host proposes an
    /// empty change ([`ConfChange::leave_joint`]).
    Explicit,
}

/// A membership change: what a `ConfChange` entry carries.
///
/// A change with no `changes` and the `Auto` transition leaves a joint
/// configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfChange {
    /// How to move through joint consensus.
    pub transition: ConfChangeTransition,
    /// The changes, applied in order.
    pub changes: Vec<ConfChangeSingle>,
    /// Opaque data for the host (for example the new peer's address).
    pub context: Bytes,
}

/// Format version written first by [`ConfChange::encode`].
const ENCODING_VERSION: u8 = 1;

impl ConfChange {
    /// A change applying `changes` with the `Auto` transition.
    pub fn new(changes: impl IntoIterator<Item = ConfChangeSingle>) -> ConfChange {
        ConfChange {
            changes: changes.into_iter().collect(),
            ..ConfChange::default()
        }
    }

    /// The change that leaves a joint configuration.
    pub fn leave_joint() -> ConfChange {
        ConfChange::default()
    }

    /// Whether this change leaves a joint configuration.
    pub fn is_leave_joint(&self) -> bool {
        self.transition == ConfChangeTransition::Auto && self.changes.is_empty()
    }

    /// If this change enters a joint configuration, whether it leaves it
    /// automatically; `None` if it is a simple (or leaving) change.
    pub fn enters_joint(&self) -> Option<bool> {
        let joint = self.transition != ConfChangeTransition::Auto || self.changes.len() > 1;
        joint.then_some(self.transition != ConfChangeTransition::Explicit)
    }

    /// Encodes the change as an entry payload.
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(8 + self.changes.len() * 4 + self.context.len());
        out.push(ENCODING_VERSION);
        out.push(match self.transition {
            ConfChangeTransition::Auto => 0,
            ConfChangeTransition::Implicit => 1,
            ConfChangeTransition::Explicit => 2,
        });
        put_varint(&mut out, self.changes.len() as u64);
        for c in &self.changes {
            out.push(match c.change_type {
                ConfChangeType::AddNode => 0,
                ConfChangeType::AddLearnerNode => 1,
                ConfChangeType::RemoveNode => 2,
            });
            put_varint(&mut out, c.node_id);
        }
        put_varint(&mut out, self.context.len() as u64);
        out.extend_from_slice(&self.context);
        out.into()
    }

    /// Decodes an entry payload written by [`encode`](Self::encode).
    pub fn decode(buf: &[u8]) -> Result<ConfChange, DecodeError> {
        let mut rest = buf;
        ConfChange::decode_fields(&mut rest).map_err(|e| e.within("conf change"))
    }

    fn decode_fields(buf: &mut &[u8]) -> Result<ConfChange, DecodeError> {
        if take_byte(buf)? != ENCODING_VERSION {
            return Err(DecodeError::new("unknown encoding version"));
        }
        let transition = match take_byte(buf)? {
            0 => ConfChangeTransition::Auto,
            1 => ConfChangeTransition::Implicit,
            2 => ConfChangeTransition::Explicit,
            _ => return Err(DecodeError::new("unknown transition")),
        };
        let n = take_varint(buf)?;
        if n > buf.len() as u64 {
            return Err(DecodeError::new("change count exceeds payload"));
        }
        let mut changes = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let change_type = match take_byte(buf)? {
                0 => ConfChangeType::AddNode,
                1 => ConfChangeType::AddLearnerNode,
                2 => ConfChangeType::RemoveNode,
                _ => return Err(DecodeError::new("unknown change type")),
            };
            let node_id = take_varint(buf)?;
            changes.push(ConfChangeSingle {
                change_type,
                node_id,
            });
        }
        let len = take_varint(buf)?;
        if len != buf.len() as u64 {
            return Err(DecodeError::new("context length does not match payload"));
        }
        let context = Bytes::copy_from_slice(buf);
        Ok(ConfChange {
            transition,
            changes,
            context,
        })
    }
}

impl fmt::Display for ConfChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_leave_joint() {
            return f.write_str("leave-joint");
        }
        write!(f, "{}", DisplayList(&self.changes))?;
        match self.transition {
            ConfChangeTransition::Auto => Ok(()),
            ConfChangeTransition::Implicit => f.write_str(" implicit"),
            ConfChangeTransition::Explicit => f.write_str(" explicit"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        let cc = ConfChange {
            transition: ConfChangeTransition::Explicit,
            changes: vec![
                ConfChangeSingle::new(ConfChangeType::AddNode, 1),
                ConfChangeSingle::new(ConfChangeType::AddLearnerNode, u64::MAX),
                ConfChangeSingle::new(ConfChangeType::RemoveNode, 300),
            ],
            context: Bytes::from_static(b"ctx"),
        };
        assert_eq!(ConfChange::decode(&cc.encode()).unwrap(), cc);
        assert_eq!(
            ConfChange::decode(&ConfChange::leave_joint().encode()).unwrap(),
            ConfChange::leave_joint()
        );
    }

    #[test]
    fn malformed_payloads_are_errors() {
        let good = ConfChange::new([ConfChangeSingle::new(ConfChangeType::AddNode, 7)]).encode();
        for cut in 0..good.len() {
            assert!(
                ConfChange::decode(&good[..cut]).is_err(),
                "prefix {cut} decoded"
            );
        }
        assert!(ConfChange::decode(&[9, 0, 0, 0]).is_err());
        assert!(ConfChange::decode(&[
            1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f
        ])
        .is_err());
        let mut trailing = good.to_vec();
        trailing.push(0);
        assert!(ConfChange::decode(&trailing).is_err());
    }

    #[test]
    fn joint_classification() {
        let one = ConfChange::new([ConfChangeSingle::new(ConfChangeType::AddNode, 2)]);
        assert_eq!(one.enters_joint(), None);
        let two = ConfChange::new([
            ConfChangeSingle::new(ConfChangeType::AddNode, 2),
            ConfChangeSingle::new(ConfChangeType::RemoveNode, 3),
        ]);
        assert_eq!(two.enters_joint(), Some(true));
        let explicit = ConfChange {
            transition: ConfChangeTransition::Explicit,
            ..one
        };
        assert_eq!(explicit.enters_joint(), Some(false));
        assert!(ConfChange::leave_joint().is_leave_joint());
    }
}
