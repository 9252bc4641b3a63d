//! Human-readable durations in configuration files and the HTTP API:
//! `"500ms"`, `"20s"`, `"30m"`, `"2h"`, or combinations such as `"1m30s"`.
//!
//! Use as `#[serde(with = "crate::duration")]` on a `Duration` field.

use std::time::Duration;

use serde::{de, Deserialize, Deserializer, Serializer};

/// Parses `"1h"`, `"30m"`, `"20s"`, `"250ms"` and concatenations of them.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("duration {text:?}: expected a number at {rest:?}"));
        }
        let value: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("duration {text:?}: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            "" => return Err(format!("duration {text:?}: missing unit (ms, s, m or h)")),
            other => return Err(format!("duration {text:?}: unknown unit {other:?}")),
        };
        rest = &rest[unit_len..];
        let part = u32::try_from(value)
            .ok()
            .and_then(|v| unit.checked_mul(v))
            .ok_or_else(|| format!("duration {text:?} is too long"))?;
        total = total
            .checked_add(part)
            .ok_or_else(|| format!("duration {text:?} is too long"))?;
    }
    Ok(total)
}

/// Formats a duration the way [`parse`] reads it, in the largest exact unit.
pub fn format(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if ms % 1000 != 0 {
        return format!("{ms}ms");
    }
    let secs = ms / 1000;
    match secs {
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// serde serializer for `#[serde(with = "crate::duration")]`.
pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(*d))
}

/// serde deserializer for `#[serde(with = "crate::duration")]`.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse(&text).map_err(de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_combinations() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(parse("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_bad_text() {
        for bad in ["", "10", "s", "10x", "1.5s", "-1s", "99999999999999999999s"] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn format_round_trips() {
        for d in [0, 1, 999, 1000, 20_000, 60_000, 90_000, 3_600_000] {
            let d = Duration::from_millis(d);
            assert_eq!(parse(&format(d)), Ok(d));
        }
    }
}
