//! Key choosers, as YCSB defines them (`site.ycsb.generator`), so that a
//! workload here draws the same key popularity as YCSB's against any other
//! store.
//!
//! - [`Zipfian`]: item `i` (0-based) drawn with probability proportional
//!   to `1 / (i+1)^θ`, by the closed-form approximation of Gray et al.,
//!   "Quickly Generating Billion-Record Synthetic Databases" (SIGMOD '94),
//!   as `ZipfianGenerator` does — item 0 the most popular.
//! - [`ScrambledZipfian`]: the same popularity, spread over the key space:
//!   a zipfian draw over 10 billion items, hashed (FNV-64) onto the item
//!   count, as `ScrambledZipfianGenerator` does. Workloads A, B, C, E, F.
//! - [`SkewedLatest`]: a zipfian distance back from the newest inserted
//!   item (`SkewedLatestGenerator`). Workload D.
//! - [`Uniform`]: every item alike.
//! - [`InsertCounter`]: hands out the next item to insert, and tells which
//!   items are surely inserted (`AcknowledgedCounterGenerator`): reads
//!   never pick an item whose insert is still in flight.
//!
//! One departure: when a [`Zipfian`]'s item count grows (workload D's
//! inserts), `eta` is recomputed with the new count; YCSB recomputes it
//! with the count it started with, a known slip that makes the tail
//! slightly off.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::pd_scale::rng::XorShift;

/// YCSB's `zipfian` constant θ.
pub const ZIPFIAN_CONSTANT: f64 = 0.99;

/// Items behind a [`ScrambledZipfian`] draw (YCSB's `ITEM_COUNT`).
const SCRAMBLED_ITEMS: u64 = 10_000_000_000;
/// ζ(10 billion, 0.99), precomputed as YCSB does (`ZETAN`).
const SCRAMBLED_ZETAN: f64 = 26.469_028_201_783_02;

/// YCSB's 64-bit FNV hash of a number's eight bytes, low byte first
/// (`Utils.fnvhash64`), made non-negative as Java's `Math.abs` does.
pub fn fnv_hash64(mut value: u64) -> u64 {
    let mut hash: u64 = 0xCBF2_9CE4_8422_2325;
    for _ in 0..8 {
        hash ^= value & 0xff;
        hash = hash.wrapping_mul(1_099_511_628_211);
        value >>= 8;
    }
    (hash as i64).unsigned_abs()
}

/// `Σ_{i=from}^{to-1} 1/(i+1)^θ`, added to `sum`.
fn zeta(from: u64, to: u64, theta: f64, sum: f64) -> f64 {
    (from..to).fold(sum, |acc, i| acc + 1.0 / ((i + 1) as f64).powf(theta))
}

/// Zipfian over `0..items`, item 0 the most popular.
#[derive(Clone, Debug)]
pub struct Zipfian {
    theta: f64,
    alpha: f64,
    zeta2: f64,
    /// ζ(`counted`, θ).
    zetan: f64,
    counted: u64,
    eta: f64,
}

impl Zipfian {
    /// Over `0..items` with constant `theta` (computes ζ: O(items)).
    pub fn new(items: u64, theta: f64) -> Zipfian {
        Zipfian::with_zeta(items, theta, zeta(0, items, theta, 0.0))
    }

    /// Over `0..items`, given ζ(items, θ) already computed.
    fn with_zeta(items: u64, theta: f64, zetan: f64) -> Zipfian {
        let zeta2 = zeta(0, 2, theta, 0.0);
        let mut z = Zipfian {
            theta,
            alpha: 1.0 / (1.0 - theta),
            zeta2,
            zetan,
            counted: items,
            eta: 0.0,
        };
        z.eta = z.eta_for(items);
        z
    }

    fn eta_for(&self, items: u64) -> f64 {
        (1.0 - (2.0 / items as f64).powf(1.0 - self.theta)) / (1.0 - self.zeta2 / self.zetan)
    }

    /// An item in `0..items` (`items` may grow between calls; ζ is then
    /// extended incrementally).
    pub fn next(&mut self, items: u64, rng: &mut XorShift) -> u64 {
        if items > self.counted {
            self.zetan = zeta(self.counted, items, self.theta, self.zetan);
            self.counted = items;
            self.eta = self.eta_for(items);
        }
        let u = rng.unit();
        let uz = u * self.zetan;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return 1;
        }
        let drawn = items as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha);
        (drawn as u64).min(items - 1)
    }
}

/// Zipfian popularity scattered over `0..items` by hashing.
#[derive(Clone, Debug)]
pub struct ScrambledZipfian {
    items: u64,
    zipfian: Zipfian,
}

impl ScrambledZipfian {
    /// Over `0..items`.
    pub fn new(items: u64) -> ScrambledZipfian {
        ScrambledZipfian {
            items: items.max(1),
            zipfian: Zipfian::with_zeta(SCRAMBLED_ITEMS, ZIPFIAN_CONSTANT, SCRAMBLED_ZETAN),
        }
    }

    /// An item in `0..items`.
    pub fn next(&mut self, rng: &mut XorShift) -> u64 {
        fnv_hash64(self.zipfian.next(SCRAMBLED_ITEMS, rng)) % self.items
    }
}

/// Recent items most popular: a zipfian distance back from the newest.
#[derive(Clone, Debug)]
pub struct SkewedLatest {
    zipfian: Zipfian,
}

impl SkewedLatest {
    /// For a key space that starts with `items` items.
    pub fn new(items: u64) -> SkewedLatest {
        SkewedLatest {
            zipfian: Zipfian::new(items.max(1), ZIPFIAN_CONSTANT),
        }
    }

    /// An item in `0..=newest`, `newest` most likely.
    pub fn next(&mut self, newest: u64, rng: &mut XorShift) -> u64 {
        let items = newest + 1;
        newest - self.zipfian.next(items, rng)
    }
}

/// Every item in `0..items` alike.
#[derive(Clone, Copy, Debug)]
pub struct Uniform {
    items: u64,
}

impl Uniform {
    /// Over `0..items`.
    pub fn new(items: u64) -> Uniform {
        Uniform {
            items: items.max(1),
        }
    }

    /// An item in `0..items`.
    pub fn next(&self, rng: &mut XorShift) -> u64 {
        rng.below(self.items)
    }
}

/// The items to insert, in order, and how far they are all acknowledged.
#[derive(Debug)]
pub struct InsertCounter {
    next: AtomicU64,
    /// Every item below this one is inserted.
    acknowledged: AtomicU64,
    /// Inserted items above `acknowledged` (arrived out of order).
    done_above: Mutex<BTreeSet<u64>>,
}

impl InsertCounter {
    /// Items `0..start` exist; inserts hand out `start`, `start + 1`, …
    pub fn new(start: u64) -> InsertCounter {
        InsertCounter {
            next: AtomicU64::new(start),
            acknowledged: AtomicU64::new(start),
            done_above: Mutex::new(BTreeSet::new()),
        }
    }

    /// The next item to insert.
    pub fn next(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// `item` was inserted (or its insert failed for good: it then counts
    /// as existing, as YCSB's counter does, and a read of it finds
    /// nothing).
    pub fn acknowledge(&self, item: u64) {
        let mut above = self.done_above.lock();
        above.insert(item);
        let mut limit = self.acknowledged.load(Ordering::Acquire);
        while above.remove(&limit) {
            limit += 1;
        }
        self.acknowledged.store(limit, Ordering::Release);
    }

    /// The number of items surely present: `0..count()` exist.
    pub fn count(&self) -> u64 {
        self.acknowledged.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(draws: usize, items: u64, mut next: impl FnMut() -> u64) -> Vec<u64> {
        let mut counts = vec![0u64; items as usize];
        for _ in 0..draws {
            let i = next();
            assert!(i < items, "drew {i} of {items}");
            counts[i as usize] += 1;
        }
        counts
    }

    /// The exact zipfian probability of item `i` of `items`.
    fn zipf_p(i: u64, items: u64) -> f64 {
        1.0 / ((i + 1) as f64).powf(ZIPFIAN_CONSTANT) / zeta(0, items, ZIPFIAN_CONSTANT, 0.0)
    }

    #[test]
    fn fnv_matches_ycsb() {
        // YCSB's first hashed keys are user6284781860667377211 and
        // user8517097267634966620.
        assert_eq!(fnv_hash64(0), 6_284_781_860_667_377_211);
        assert_eq!(fnv_hash64(1), 8_517_097_267_634_966_620);
        // Hashing scatters neighbours.
        assert!(fnv_hash64(2).abs_diff(fnv_hash64(3)) > 1 << 20);
    }

    #[test]
    fn zeta_of_ten_billion_is_ycsbs_constant() {
        // Summing 10^10 terms takes too long; check the constant against
        // the integral approximation ζ(n) ≈ ζ(m) + ∫_m^n x^-θ dx.
        let m = 1_000_000u64;
        let head = zeta(0, m, ZIPFIAN_CONSTANT, 0.0);
        let tail = |x: f64| x.powf(1.0 - ZIPFIAN_CONSTANT) / (1.0 - ZIPFIAN_CONSTANT);
        let approx = head + tail(SCRAMBLED_ITEMS as f64 + 0.5) - tail(m as f64 + 0.5);
        assert!((approx - SCRAMBLED_ZETAN).abs() < 1e-3, "{approx}");
    }

    #[test]
    fn zipfian_frequencies_follow_the_power_law() {
        let items = 1000;
        let mut z = Zipfian::new(items, ZIPFIAN_CONSTANT);
        let mut rng = XorShift::new(7);
        let draws = 400_000;
        let c = counts(draws, items, || z.next(items, &mut rng));
        // The head is exact in Gray's method (items 0 and 1); the rest is
        // an approximation, checked in aggregate.
        for i in [0, 1] {
            let want = zipf_p(i, items) * draws as f64;
            let got = c[i as usize] as f64;
            assert!(
                (got - want).abs() < 0.03 * want,
                "item {i}: {got} vs {want}"
            );
        }
        let top10: u64 = c[..10].iter().sum();
        let want10: f64 = (0..10).map(|i| zipf_p(i, items)).sum::<f64>() * draws as f64;
        assert!(
            (top10 as f64 - want10).abs() < 0.05 * want10,
            "{top10} vs {want10}"
        );
        assert!(c[0] > c[9] && c[9] > c[99] && c[99] > c[999]);
    }

    #[test]
    fn a_growing_zipfian_reaches_new_items() {
        let mut z = Zipfian::new(100, ZIPFIAN_CONSTANT);
        let mut rng = XorShift::new(1);
        let c = counts(200_000, 200, || z.next(200, &mut rng));
        assert!(c[150..].iter().sum::<u64>() > 0, "new items drawn");
        assert!(c[0] > c[100]);
    }

    #[test]
    fn scrambled_zipfian_is_skewed_but_scattered() {
        let items = 10_000;
        let mut z = ScrambledZipfian::new(items);
        let mut rng = XorShift::new(3);
        let draws = 200_000;
        let c = counts(draws, items, || z.next(&mut rng));
        let mut sorted = c.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        // Skewed: the 1% most popular items take a large share (about a
        // third for θ = 0.99 over 10 billion hashed items).
        let top: u64 = sorted[..100].iter().sum();
        assert!(top as f64 > 0.2 * draws as f64, "top 1% drew {top}");
        // Scattered: the most popular item is not item 0, and the hottest
        // ten are spread across the key space.
        let hottest: Vec<usize> = {
            let mut idx: Vec<usize> = (0..c.len()).collect();
            idx.sort_unstable_by(|&a, &b| c[b].cmp(&c[a]));
            idx.truncate(10);
            idx
        };
        let spread = hottest.iter().max().unwrap() - hottest.iter().min().unwrap();
        assert!(spread > items as usize / 4, "hottest items {hottest:?}");
        // Hash of the zipfian head: YCSB's hottest key is fnv(0) % items.
        assert_eq!(hottest[0] as u64, fnv_hash64(0) % items);
    }

    #[test]
    fn skewed_latest_favours_the_newest() {
        let mut z = SkewedLatest::new(1000);
        let mut rng = XorShift::new(5);
        let c = counts(100_000, 1500, || z.next(1499, &mut rng));
        assert!(c[1499] > c[1498] && c[1498] > c[1400] && c[1400] > c[0]);
        let want = zipf_p(0, 1500) * 100_000.0;
        assert!((c[1499] as f64 - want).abs() < 0.05 * want);
    }

    #[test]
    fn uniform_is_flat() {
        let u = Uniform::new(10);
        let mut rng = XorShift::new(9);
        for n in counts(100_000, 10, || u.next(&mut rng)) {
            assert!((9_000..11_000).contains(&n), "{n}");
        }
    }

    #[test]
    fn the_counter_acknowledges_only_a_complete_prefix() {
        let c = InsertCounter::new(10);
        let (a, b, d) = (c.next(), c.next(), c.next());
        assert_eq!((a, b, d), (10, 11, 12));
        assert_eq!(c.count(), 10);
        c.acknowledge(b);
        assert_eq!(c.count(), 10, "11 done, 10 still in flight");
        c.acknowledge(a);
        assert_eq!(c.count(), 12);
        c.acknowledge(d);
        assert_eq!(c.count(), 13);
    }
}
