//! What a workload does: its mix of operations and how it picks keys —
//! YCSB's core workloads A–F, the load phase, and custom mixes.
//!
//! | workload | mix                              | keys            |
//! |----------|----------------------------------|-----------------|
//! | load     | insert 100 %                     | in order        |
//! | a        | read 50 %, update 50 %           | zipfian         |
//! | b        | read 95 %, update 5 %            | zipfian         |
//! | c        | read 100 %                       | zipfian         |
//! | d        | read 95 %, insert 5 %            | latest          |
//! | e        | scan 95 %, insert 5 %            | zipfian         |
//! | f        | read 50 %, read-modify-write 50 % | zipfian        |
//!
//! Keys are YCSB's: item `n` is `user<fnv64(n)>`, so inserts in item
//! order land all over the key space, and a scan starts at a random point.

use std::fmt;
use std::str::FromStr;

use super::generator::fnv_hash64;
use crate::pd_scale::rng::XorShift;

/// One kind of operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpKind {
    /// `get` of an existing key.
    Read,
    /// `put` of a new value under an existing key.
    Update,
    /// `put` of a new key.
    Insert,
    /// `scan` of up to `--scan-length` pairs from an existing key.
    Scan,
    /// `get`, then `put` of the same key; timed as one operation.
    ReadModifyWrite,
}

impl OpKind {
    /// Every kind, in report order.
    pub const ALL: [OpKind; 5] = [
        OpKind::Read,
        OpKind::Update,
        OpKind::Insert,
        OpKind::Scan,
        OpKind::ReadModifyWrite,
    ];

    /// The name used in `--mix`, reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Read => "read",
            OpKind::Update => "update",
            OpKind::Insert => "insert",
            OpKind::Scan => "scan",
            OpKind::ReadModifyWrite => "rmw",
        }
    }

    /// Whether it writes (inserts, updates, read-modify-writes).
    pub fn is_write(self) -> bool {
        matches!(
            self,
            OpKind::Insert | OpKind::Update | OpKind::ReadModifyWrite
        )
    }

    /// Position in [`OpKind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    fn parse(name: &str) -> Option<OpKind> {
        match name {
            "read" => Some(OpKind::Read),
            "update" => Some(OpKind::Update),
            "insert" => Some(OpKind::Insert),
            "scan" => Some(OpKind::Scan),
            "rmw" | "readmodifywrite" | "read-modify-write" => Some(OpKind::ReadModifyWrite),
            _ => None,
        }
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The proportion of each kind of operation; they sum to 1.
#[derive(Clone, Debug, PartialEq)]
pub struct Mix {
    /// `(kind, proportion)`, proportions positive, in [`OpKind::ALL`]
    /// order.
    parts: Vec<(OpKind, f64)>,
}

impl Mix {
    /// A mix of `parts` (proportions > 0, summing to 1 within 0.1 %).
    pub fn new(parts: &[(OpKind, f64)]) -> Result<Mix, String> {
        let mut sorted: Vec<(OpKind, f64)> = Vec::new();
        for &(kind, p) in parts {
            if !(p.is_finite() && p >= 0.0) {
                return Err(format!("{kind}: proportion {p} is not a number ≥ 0"));
            }
            if sorted.iter().any(|(k, _)| *k == kind) {
                return Err(format!("{kind} given twice"));
            }
            if p > 0.0 {
                sorted.push((kind, p));
            }
        }
        sorted.sort_by_key(|(k, _)| *k);
        let sum: f64 = sorted.iter().map(|(_, p)| p).sum();
        if (sum - 1.0).abs() > 1e-3 {
            return Err(format!("the proportions sum to {sum}, not 1"));
        }
        Ok(Mix { parts: sorted })
    }

    /// The operation for a uniform draw `u` in `[0, 1)`.
    pub fn pick(&self, u: f64) -> OpKind {
        let mut acc = 0.0;
        for &(kind, p) in &self.parts {
            acc += p;
            if u < acc {
                return kind;
            }
        }
        self.parts.last().expect("a mix is never empty").0
    }

    /// The proportion of `kind` (0 when absent).
    pub fn proportion(&self, kind: OpKind) -> f64 {
        self.parts
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0.0, |(_, p)| *p)
    }

    /// The kinds in the mix.
    pub fn kinds(&self) -> impl Iterator<Item = OpKind> + '_ {
        self.parts.iter().map(|(k, _)| *k)
    }
}

impl FromStr for Mix {
    type Err = String;

    /// `read=0.9,update=0.1`.
    fn from_str(s: &str) -> Result<Mix, String> {
        let mut parts = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: expected kind=proportion"))?;
            let kind = OpKind::parse(name.trim()).ok_or_else(|| {
                format!("unknown operation {name:?} (read, update, insert, scan, rmw)")
            })?;
            let p: f64 = value
                .trim()
                .parse()
                .map_err(|_| format!("{part:?}: {value:?} is not a number"))?;
            parts.push((kind, p));
        }
        if parts.is_empty() {
            return Err("an empty mix".into());
        }
        Mix::new(&parts)
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.parts.iter().map(|(k, p)| format!("{k}={p}")).collect();
        f.write_str(&parts.join(","))
    }
}

/// How existing keys are picked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Distribution {
    /// Scrambled zipfian (θ = 0.99): a few hot keys spread over the space.
    Zipfian,
    /// Every key alike.
    Uniform,
    /// The most recently inserted keys hottest.
    Latest,
}

/// A named workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// Insert `--records` keys (run it first).
    Load,
    /// Update heavy: read 50 %, update 50 %.
    A,
    /// Read mostly: read 95 %, update 5 %.
    B,
    /// Read only.
    C,
    /// Read latest: read 95 %, insert 5 %, newest keys hottest.
    D,
    /// Short ranges: scan 95 %, insert 5 %.
    E,
    /// Read-modify-write: read 50 %, read-modify-write 50 %.
    F,
}

impl Preset {
    /// The preset's mix and key distribution.
    pub fn definition(self) -> (Mix, Distribution) {
        use OpKind::*;
        let (parts, dist): (&[(OpKind, f64)], Distribution) = match self {
            Preset::Load => (&[(Insert, 1.0)], Distribution::Uniform),
            Preset::A => (&[(Read, 0.5), (Update, 0.5)], Distribution::Zipfian),
            Preset::B => (&[(Read, 0.95), (Update, 0.05)], Distribution::Zipfian),
            Preset::C => (&[(Read, 1.0)], Distribution::Zipfian),
            Preset::D => (&[(Read, 0.95), (Insert, 0.05)], Distribution::Latest),
            Preset::E => (&[(Scan, 0.95), (Insert, 0.05)], Distribution::Zipfian),
            Preset::F => (
                &[(Read, 0.5), (ReadModifyWrite, 0.5)],
                Distribution::Zipfian,
            ),
        };
        (Mix::new(parts).expect("presets are valid"), dist)
    }

    /// The lowercase name (`load`, `a`, …).
    pub fn name(self) -> &'static str {
        match self {
            Preset::Load => "load",
            Preset::A => "a",
            Preset::B => "b",
            Preset::C => "c",
            Preset::D => "d",
            Preset::E => "e",
            Preset::F => "f",
        }
    }
}

/// The key of item `n`: YCSB's `user` followed by the item's FNV hash.
pub fn key_of(item: u64) -> String {
    format!("user{}", fnv_hash64(item))
}

/// A scan's length: uniform in `1..=max`, as YCSB's default
/// `scanlengthdistribution`.
pub fn scan_length(max: u32, rng: &mut XorShift) -> u32 {
    1 + rng.below(u64::from(max.max(1))) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_have_ycsbs_proportions() {
        let (a, dist) = Preset::A.definition();
        assert_eq!(
            (a.proportion(OpKind::Read), a.proportion(OpKind::Update)),
            (0.5, 0.5)
        );
        assert_eq!(dist, Distribution::Zipfian);
        let (d, dist) = Preset::D.definition();
        assert_eq!(d.proportion(OpKind::Insert), 0.05);
        assert_eq!(dist, Distribution::Latest);
        let (e, _) = Preset::E.definition();
        assert_eq!(e.proportion(OpKind::Scan), 0.95);
        let (f, _) = Preset::F.definition();
        assert_eq!(f.proportion(OpKind::ReadModifyWrite), 0.5);
        let (c, _) = Preset::C.definition();
        assert_eq!(c.kinds().collect::<Vec<_>>(), vec![OpKind::Read]);
    }

    #[test]
    fn picks_follow_the_proportions() {
        for preset in [Preset::A, Preset::B, Preset::D, Preset::E, Preset::F] {
            let (mix, _) = preset.definition();
            let mut rng = XorShift::new(11);
            let draws = 100_000;
            let mut counts = [0u32; 5];
            for _ in 0..draws {
                counts[mix.pick(rng.unit()).index()] += 1;
            }
            for kind in OpKind::ALL {
                let want = mix.proportion(kind) * draws as f64;
                let got = counts[kind.index()] as f64;
                assert!(
                    (got - want).abs() <= 0.01 * draws as f64,
                    "{}: {kind} drawn {got}, want {want}",
                    preset.name()
                );
            }
        }
    }

    #[test]
    fn custom_mixes_parse_and_bad_ones_say_why() {
        let mix: Mix = "read=0.9, update=0.1".parse().unwrap();
        assert_eq!(mix.proportion(OpKind::Read), 0.9);
        assert_eq!(mix.to_string(), "read=0.9,update=0.1");
        let rmw: Mix = "rmw=1".parse().unwrap();
        assert_eq!(rmw.pick(0.99), OpKind::ReadModifyWrite);
        for (bad, says) in [
            ("read=0.5", "sum to 0.5"),
            ("read=0.5,write=0.5", "unknown operation"),
            ("read", "expected kind=proportion"),
            ("read=x", "not a number"),
            ("read=1.5,update=-0.5", "≥ 0"),
            ("read=0.5,read=0.5", "twice"),
            ("", "empty"),
        ] {
            let err = bad.parse::<Mix>().unwrap_err();
            assert!(err.contains(says), "{bad:?}: {err}");
        }
    }

    #[test]
    fn keys_are_ycsbs() {
        assert_eq!(key_of(0), "user6284781860667377211");
        let mut rng = XorShift::new(2);
        for _ in 0..1000 {
            assert!((1..=100).contains(&scan_length(100, &mut rng)));
        }
    }
}
