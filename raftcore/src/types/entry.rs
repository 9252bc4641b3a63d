use std::fmt;

use bytes::Bytes;

/// What an entry's payload holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum EntryType {
    /// An application command (or the empty entry a new leader appends).
    #[default]
    Normal,
    /// An encoded [`ConfChange`](crate::ConfChange); the host applies it with
    /// [`RawNode::apply_conf_change`](crate::RawNode::apply_conf_change).
    ConfChange,
}

/// One Raft log entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    /// The term of the leader that created the entry.
    pub term: u64,
    /// The entry's position in the log, starting at 1.
    pub index: u64,
    /// How to interpret `data`.
    pub entry_type: EntryType,
    /// The opaque payload.
    pub data: Bytes,
}

impl Entry {
    /// A normal entry with the given payload; `term` and `index` are assigned
    /// by the leader when it appends the entry.
    pub fn normal(data: impl Into<Bytes>) -> Entry {
        Entry {
            data: data.into(),
            ..Entry::default()
        }
    }

    /// The bytes this entry counts for in message and memory limits.
    pub fn payload_size(&self) -> u64 {
        self.data.len() as u64
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.term, self.index)?;
        match self.entry_type {
            EntryType::Normal if self.data.is_empty() => Ok(()),
            EntryType::Normal => write!(f, " {}", EscapedBytes(&self.data)),
            EntryType::ConfChange => match crate::ConfChange::decode(&self.data) {
                Ok(cc) => write!(f, " conf:{cc}"),
                Err(_) => write!(f, " conf:<undecodable>"),
            },
        }
    }
}

/// Shows bytes as a quoted string, escaping what is not printable ASCII.
pub(crate) struct EscapedBytes<'a>(pub &'a [u8]);

impl fmt::Display for EscapedBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for &b in self.0 {
            if b.is_ascii_graphic() && b != b'"' && b != b'\\' || b == b' ' {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        f.write_str("\"")
    }
}
