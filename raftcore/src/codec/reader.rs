//! A cursor over the input that checks every length before trusting it.

use bytes::Bytes;

use super::varint::{take_byte, take_varint};
use super::DecodeError;

/// The unread tail of an input buffer.
pub(super) struct Reader<'a> {
    /// The whole input, kept so byte fields can be sliced out without a copy.
    buf: &'a Bytes,
    /// Invariant: a suffix of `buf`.
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a Bytes) -> Reader<'a> {
        Reader { buf, rest: buf }
    }

    pub(super) fn byte(&mut self) -> Result<u8, DecodeError> {
        take_byte(&mut self.rest)
    }

    pub(super) fn varint(&mut self) -> Result<u64, DecodeError> {
        take_varint(&mut self.rest)
    }

    /// A flags byte; any bit outside `known` is an error, since it would
    /// mean a field this decoder would silently drop.
    pub(super) fn flags(&mut self, known: u8, unknown: &'static str) -> Result<u8, DecodeError> {
        let flags = self.byte()?;
        if flags & !known != 0 {
            return Err(DecodeError::new(unknown));
        }
        Ok(flags)
    }

    /// A length-prefixed byte field, as a slice of the input.
    pub(super) fn bytes(&mut self, too_long: &'static str) -> Result<Bytes, DecodeError> {
        let len = self.varint()?;
        if len > self.rest.len() as u64 {
            return Err(DecodeError::new(too_long));
        }
        // Cannot truncate: `len` is at most `rest.len()`.
        let len = len as usize;
        let start = self.buf.len() - self.rest.len();
        self.rest = &self.rest[len..];
        Ok(self.buf.slice(start..start + len))
    }

    /// A list count, refused if the bytes left cannot hold that many items
    /// of at least `min_item_bytes` each. This is what keeps a corrupt
    /// count from reserving gigabytes before the items run out.
    pub(super) fn count(
        &mut self,
        min_item_bytes: usize,
        too_many: &'static str,
    ) -> Result<usize, DecodeError> {
        let n = self.varint()?;
        if n > (self.rest.len() / min_item_bytes.max(1)) as u64 {
            return Err(DecodeError::new(too_many));
        }
        // Cannot truncate: `n` is at most `rest.len()`.
        Ok(n as usize)
    }

    /// A list of varints.
    pub(super) fn varints(&mut self, too_many: &'static str) -> Result<Vec<u64>, DecodeError> {
        let n = self.count(1, too_many)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.varint()?);
        }
        Ok(out)
    }

    /// Ends the read: a valid encoding has nothing after its last field.
    pub(super) fn finish(self) -> Result<(), DecodeError> {
        if !self.rest.is_empty() {
            return Err(DecodeError::new("trailing bytes after the encoding"));
        }
        Ok(())
    }
}
