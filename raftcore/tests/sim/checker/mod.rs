//! The safety invariants, checked after every step. Each returns a
//! [`Violation`] describing what broke, citing the rule of Ongaro's thesis
//! (2014) it comes from:
//!
//! - `log.rs`: Election Safety, one vote per term, Leader Append-Only, Log
//!   Matching, Leader Completeness, and committed entries never changing;
//! - `apply.rs`: State Machine Safety and configuration agreement;
//! - `reads.rs`: linearizable reads (ReadIndex and lease).

mod apply;
mod log;
mod reads;

use std::collections::btree_map::Entry as MapEntry;
use std::collections::BTreeMap;

use bytes::Bytes;
use raftcore::{ConfState, EntryType, MemStorage, RawNode};

use crate::rng::Rng;

/// A broken invariant (or a harness failure), described for a human.
#[derive(Clone, Debug)]
pub struct Violation(pub String);

impl From<String> for Violation {
    fn from(what: String) -> Violation {
        Violation(what)
    }
}

/// An entry known committed: its term always, its content once a node
/// that holds it in its log reported it.
struct Committed {
    term: u64,
    /// The term in which it was first seen committed (the committing
    /// leader's, since the leader's commit index moves first).
    commit_term: u64,
    content: Option<(EntryType, Bytes)>,
}

/// The history the invariants are checked against.
#[derive(Default)]
pub struct Checker {
    /// Every entry ever known committed by any node.
    committed: BTreeMap<u64, Committed>,
    /// The highest index ever known committed.
    max_committed: u64,
    /// The leader of each term, over the whole history, with the end of
    /// its log when last seen: `(leader, last index, last term)`.
    leaders: BTreeMap<u64, (u64, u64, u64)>,
    /// The vote each node granted in each term: `(voter, term) -> candidate`.
    votes: BTreeMap<(u64, u64), u64>,
    /// Per node: the commit index up to which its log was checked.
    checked_commit: BTreeMap<u64, u64>,
    /// Per read: the highest index known committed when it was issued.
    read_bounds: BTreeMap<u64, u64>,
    /// Indexes of configuration changes that took effect somewhere.
    conf_changes: BTreeMap<u64, ()>,
    /// The membership after applying the log up to each configuration
    /// entry (index 0: the founding membership).
    confs: BTreeMap<u64, ConfState>,
}

impl Checker {
    /// A checker for a group founded with `conf`.
    pub fn new(conf: ConfState) -> Checker {
        Checker {
            confs: BTreeMap::from([(0, conf)]),
            ..Checker::default()
        }
    }

    /// Observes one running node after a step. Returns whether it became
    /// leader of a new term.
    pub fn observe(
        &mut self,
        id: u64,
        raw: &RawNode<MemStorage>,
        rng: &mut Rng,
    ) -> Result<bool, Violation> {
        self.check_cursors(id, raw)?;
        self.check_new_commits(id, raw)?;
        self.check_election_safety(id, raw, rng)
    }

    /// Records (or compares against) the committed entry at `index`, seen
    /// by node `id` in term `seen_in`.
    fn record(
        &mut self,
        (id, seen_in): (u64, u64),
        index: u64,
        term: u64,
        content: Option<(EntryType, Bytes)>,
        what: &str,
    ) -> Result<(), Violation> {
        match self.committed.entry(index) {
            MapEntry::Vacant(v) => {
                v.insert(Committed {
                    term,
                    commit_term: seen_in,
                    content,
                });
                self.max_committed = self.max_committed.max(index);
            }
            MapEntry::Occupied(mut o) => {
                let known = o.get_mut();
                let differs = match (&known.content, &content) {
                    (Some(a), Some(b)) => a != b,
                    _ => false,
                };
                if known.term != term || differs {
                    return Err(Violation(format!(
                        "{what}: node {id} has {term}/{index} {content:?}, but {}/{index} {:?} \
                         was committed",
                        known.term, known.content
                    )));
                }
                if known.content.is_none() {
                    known.content = content;
                }
                known.commit_term = known.commit_term.min(seen_in);
            }
        }
        Ok(())
    }

    /// Whether no configuration change has taken effect anywhere yet.
    pub fn founding_membership(&self) -> bool {
        self.conf_changes.is_empty()
    }

    /// The highest index known committed.
    pub fn max_committed(&self) -> u64 {
        self.max_committed
    }
}
