use std::collections::BTreeSet;

use super::VoteResult;

/// A set of voters deciding by simple majority.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MajorityConfig {
    voters: BTreeSet<u64>,
}

impl MajorityConfig {
    /// A majority configuration of the given voters.
    pub fn new(voters: BTreeSet<u64>) -> MajorityConfig {
        MajorityConfig { voters }
    }

    /// The voters, in ID order.
    pub fn ids(&self) -> &BTreeSet<u64> {
        &self.voters
    }

    pub(crate) fn ids_mut(&mut self) -> &mut BTreeSet<u64> {
        &mut self.voters
    }

    /// Whether `id` votes here.
    pub fn contains(&self, id: u64) -> bool {
        self.voters.contains(&id)
    }

    /// The number of voters.
    pub fn len(&self) -> usize {
        self.voters.len()
    }

    /// Whether there are no voters.
    pub fn is_empty(&self) -> bool {
        self.voters.is_empty()
    }

    /// The largest value that a majority of voters has reached, where
    /// `acked(id)` gives each voter's value (missing counts as 0). An empty
    /// configuration returns `u64::MAX`, so that it never limits a joint
    /// configuration.
    pub fn committed_index(&self, mut acked: impl FnMut(u64) -> u64) -> u64 {
        let n = self.voters.len();
        if n == 0 {
            return u64::MAX;
        }
        // Groups have a handful of voters: sort on the stack when we can.
        let mut stack = [0u64; 7];
        let mut heap;
        let values: &mut [u64] = if n <= stack.len() {
            &mut stack[..n]
        } else {
            heap = vec![0u64; n];
            &mut heap
        };
        for (slot, &id) in values.iter_mut().zip(&self.voters) {
            *slot = acked(id);
        }
        values.sort_unstable();
        // The value at position n - (n/2 + 1) is held by n/2 + 1 voters.
        values[n - (n / 2 + 1)]
    }

    /// Counts votes: `vote(id)` is `Some(granted)` for voters that answered.
    pub fn vote_result(&self, mut vote: impl FnMut(u64) -> Option<bool>) -> VoteResult {
        if self.voters.is_empty() {
            return VoteResult::Won;
        }
        let (mut granted, mut missing) = (0, 0);
        for &id in &self.voters {
            match vote(id) {
                Some(true) => granted += 1,
                Some(false) => {}
                None => missing += 1,
            }
        }
        let quorum = self.voters.len() / 2 + 1;
        if granted >= quorum {
            VoteResult::Won
        } else if granted + missing >= quorum {
            VoteResult::Pending
        } else {
            VoteResult::Lost
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(ids: &[u64]) -> MajorityConfig {
        MajorityConfig::new(ids.iter().copied().collect())
    }

    #[test]
    fn committed_index_is_the_majority_value() {
        let acked = |id: u64| [0, 5, 3, 9, 1, 7][id as usize];
        assert_eq!(cfg(&[]).committed_index(acked), u64::MAX);
        assert_eq!(cfg(&[1]).committed_index(acked), 5);
        assert_eq!(cfg(&[1, 2]).committed_index(acked), 3);
        assert_eq!(cfg(&[1, 2, 3]).committed_index(acked), 5);
        assert_eq!(cfg(&[1, 2, 3, 4]).committed_index(acked), 3);
        assert_eq!(cfg(&[1, 2, 3, 4, 5]).committed_index(acked), 5);
        let big: Vec<u64> = (1..=9).collect();
        assert_eq!(cfg(&big).committed_index(|id| id), 5);
    }

    #[test]
    fn vote_result_counts() {
        let c = cfg(&[1, 2, 3]);
        assert_eq!(
            c.vote_result(|id| (id == 1).then_some(true)),
            VoteResult::Pending
        );
        assert_eq!(
            c.vote_result(|id| (id <= 2).then_some(true)),
            VoteResult::Won
        );
        assert_eq!(
            c.vote_result(|id| (id >= 2).then_some(false)),
            VoteResult::Lost
        );
        assert_eq!(cfg(&[]).vote_result(|_| None), VoteResult::Won);
    }
}
