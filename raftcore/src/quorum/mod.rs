//! Quorum arithmetic: which index a quorum has acknowledged, and whether an
//! election is won, for simple majorities and joint configurations.

mod joint;
mod majority;

pub use joint::JointConfig;
pub use majority::MajorityConfig;

/// The outcome of counting votes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoteResult {
    /// Not decided yet: enough voters have not answered.
    Pending,
    /// A quorum refused.
    Lost,
    /// A quorum granted.
    Won,
}
