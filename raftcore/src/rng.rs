//! The only source of randomness in raftcore: a small seeded generator, so
//! that the same seed and inputs always give the same outputs.

/// SplitMix64: tiny, fast and statistically good enough for election jitter.
#[derive(Clone, Debug)]
pub(crate) struct Rng {
    state: u64,
}

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `[low, high)`; `high > low`.
    pub(crate) fn range(&mut self, low: usize, high: usize) -> usize {
        debug_assert!(high > low);
        low + (self.next_u64() % (high - low) as u64) as usize
    }
}
