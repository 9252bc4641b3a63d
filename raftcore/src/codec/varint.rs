//! LEB128 varints: seven bits a byte, least significant group first, the
//! high bit set on every byte but the last.
//!
//! Decoding accepts only the minimal encoding of each value, which is the
//! one [`put_varint`] writes. Together with the other strict checks of the
//! codec this makes every valid input the *only* encoding of its value, so
//! equal values always have equal bytes (stored records can be compared or
//! hashed as bytes) and re-encoding a decoded value reproduces its input.

use super::DecodeError;

/// The most bytes a `u64` needs: ten groups of seven bits cover 70 bits.
const MAX_VARINT_BYTES: u32 = 10;

/// Appends `v` in its minimal encoding.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Takes one byte off the front of `buf`.
pub(crate) fn take_byte(buf: &mut &[u8]) -> Result<u8, DecodeError> {
    let (&b, rest) = buf
        .split_first()
        .ok_or(DecodeError::new("input ends early"))?;
    *buf = rest;
    Ok(b)
}

/// Takes one varint off the front of `buf`.
pub(crate) fn take_varint(buf: &mut &[u8]) -> Result<u64, DecodeError> {
    let mut v = 0u64;
    for i in 0..MAX_VARINT_BYTES {
        let b = take_byte(buf)?;
        let shift = 7 * i;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 != 0 {
            continue;
        }
        // The tenth byte holds only bit 63; anything more does not fit.
        if shift == 63 && b > 1 {
            return Err(DecodeError::new("varint overflows u64"));
        }
        // A zero final group after the first byte adds nothing: the value
        // had a shorter encoding, and accepting both would give one value
        // two encodings.
        if i > 0 && b == 0 {
            return Err(DecodeError::new("varint is not minimally encoded"));
        }
        return Ok(v);
    }
    Err(DecodeError::new("varint longer than 10 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, v);
        out
    }

    #[test]
    fn boundaries_round_trip_with_expected_lengths() {
        let cases = [
            (0, 1),
            (0x7f, 1),
            (0x80, 2),
            (0x3fff, 2),
            (0x4000, 3),
            (1 << 56, 9),
            ((1 << 63) - 1, 9),
            (1 << 63, 10),
            (u64::MAX, 10),
        ];
        for (v, len) in cases {
            let bytes = encoded(v);
            assert_eq!(bytes.len(), len, "length of {v}");
            let mut rest = &bytes[..];
            assert_eq!(take_varint(&mut rest), Ok(v));
            assert!(rest.is_empty());
        }
        assert_eq!(encoded(300), [0xac, 0x02]);
    }

    #[test]
    fn malformed_varints_are_errors() {
        let reject = |bytes: &[u8], reason: &str| {
            let mut rest = bytes;
            let err = take_varint(&mut rest).expect_err("decoded a malformed varint");
            assert!(err.to_string().contains(reason), "{err}");
        };
        reject(&[], "ends early");
        reject(&[0x80], "ends early");
        reject(&[0xff; 11], "longer than 10 bytes");
        // 2^64: the tenth byte carries a bit past 63.
        reject(
            &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02],
            "overflows",
        );
        reject(&[0x80, 0x00], "not minimally");
        reject(&[0xff, 0x80, 0x00], "not minimally");
    }
}
