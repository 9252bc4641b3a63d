use std::collections::BTreeSet;

use super::{MajorityConfig, VoteResult};

/// Two majority configurations that must both agree (thesis §4.3). Outside a
/// joint configuration, `outgoing` is empty and only `incoming` decides.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JointConfig {
    /// The new (or only) voters.
    pub incoming: MajorityConfig,
    /// The old voters while joint; empty otherwise.
    pub outgoing: MajorityConfig,
}

impl JointConfig {
    /// Whether this is a joint configuration.
    pub fn is_joint(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// Whether `id` votes in either half.
    pub fn contains(&self, id: u64) -> bool {
        self.incoming.contains(id) || self.outgoing.contains(id)
    }

    /// All voters of both halves, in ID order.
    pub fn ids(&self) -> BTreeSet<u64> {
        self.incoming
            .ids()
            .union(self.outgoing.ids())
            .copied()
            .collect()
    }

    /// Whether one voter decides alone.
    pub fn is_singleton(&self) -> bool {
        self.outgoing.is_empty() && self.incoming.len() == 1
    }

    /// The largest value that both halves have reached by majority.
    pub fn committed_index(&self, mut acked: impl FnMut(u64) -> u64) -> u64 {
        let a = self.incoming.committed_index(&mut acked);
        let b = self.outgoing.committed_index(&mut acked);
        a.min(b)
    }

    /// Won if both halves won, lost if either lost.
    pub fn vote_result(&self, mut vote: impl FnMut(u64) -> Option<bool>) -> VoteResult {
        let a = self.incoming.vote_result(&mut vote);
        let b = self.outgoing.vote_result(&mut vote);
        match (a, b) {
            (VoteResult::Won, VoteResult::Won) => VoteResult::Won,
            (VoteResult::Lost, _) | (_, VoteResult::Lost) => VoteResult::Lost,
            _ => VoteResult::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joint(inc: &[u64], out: &[u64]) -> JointConfig {
        JointConfig {
            incoming: MajorityConfig::new(inc.iter().copied().collect()),
            outgoing: MajorityConfig::new(out.iter().copied().collect()),
        }
    }

    #[test]
    fn joint_commit_is_the_minimum_of_both_halves() {
        // Incoming {1,2,3} has majority value 7; outgoing {3,4,5} has 2.
        let acked = |id: u64| [0, 9, 7, 2, 1, 2][id as usize];
        assert_eq!(joint(&[1, 2, 3], &[3, 4, 5]).committed_index(acked), 2);
        assert_eq!(joint(&[1, 2, 3], &[]).committed_index(acked), 7);
    }

    #[test]
    fn joint_votes_need_both_halves() {
        let j = joint(&[1, 2, 3], &[3, 4, 5]);
        assert_eq!(
            j.vote_result(|id| [1, 2].contains(&id).then_some(true)),
            VoteResult::Pending
        );
        assert_eq!(
            j.vote_result(|id| [1, 3, 4].contains(&id).then_some(true)),
            VoteResult::Won
        );
        assert_eq!(
            j.vote_result(|id| [4, 5].contains(&id).then_some(false)),
            VoteResult::Lost
        );
    }
}
