use std::fmt;

use bytes::Bytes;

use super::entry::EscapedBytes;
use super::{Entry, Snapshot};

/// The kinds of message peers exchange.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageType {
    /// Leader → follower: entries after `(log_term, index)`, and the
    /// leader's commit index.
    #[default]
    Append,
    /// Follower → leader: `index` is the last index now matching the leader
    /// (or, with `reject`, the probed index, plus hints).
    AppendResponse,
    /// Candidate → voter: a request for a vote in `term`.
    Vote,
    /// Voter → candidate.
    VoteResponse,
    /// Pre-candidate → voter: "would you vote for me in `term`?" (thesis
    /// §9.6). Changes no state on the receiver.
    PreVote,
    /// Voter → pre-candidate.
    PreVoteResponse,
    /// Leader → follower: keeps followers from campaigning, carries the
    /// commit index, and numbers a round (`stamp`) that the response echoes,
    /// confirming leadership for reads and leases.
    Heartbeat,
    /// Follower → leader: echoes `stamp`.
    HeartbeatResponse,
    /// Leader → follower whose next entry the leader has compacted away.
    Snapshot,
    /// Leader → transferee: campaign now, even under a lease (thesis §3.10).
    TimeoutNow,
    /// Follower → leader: a proposal forwarded from a follower (term 0).
    Propose,
    /// Follower → leader: a read request forwarded from a follower (term 0).
    ReadIndex,
    /// Leader → follower: the read index for `context`.
    ReadIndexResponse,
}

impl MessageType {
    /// Every message type, in declaration order.
    pub const ALL: [MessageType; 13] = [
        MessageType::Append,
        MessageType::AppendResponse,
        MessageType::Vote,
        MessageType::VoteResponse,
        MessageType::PreVote,
        MessageType::PreVoteResponse,
        MessageType::Heartbeat,
        MessageType::HeartbeatResponse,
        MessageType::Snapshot,
        MessageType::TimeoutNow,
        MessageType::Propose,
        MessageType::ReadIndex,
        MessageType::ReadIndexResponse,
    ];

    /// Whether this is a request for a (pre-)vote.
    pub fn is_vote_request(self) -> bool {
        matches!(self, MessageType::Vote | MessageType::PreVote)
    }

    /// Whether this message may come only from the leader of its term.
    pub fn is_from_leader(self) -> bool {
        matches!(
            self,
            MessageType::Append
                | MessageType::Heartbeat
                | MessageType::Snapshot
                | MessageType::TimeoutNow
                | MessageType::ReadIndexResponse
        )
    }
}

/// One message between two peers of a group.
///
/// A flat struct: each message type uses the fields its doc names and leaves
/// the rest at their defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// The kind of message.
    pub msg_type: MessageType,
    /// The receiving peer.
    pub to: u64,
    /// The sending peer.
    pub from: u64,
    /// The sender's term (0 for forwarded `Propose` and `ReadIndex`).
    pub term: u64,
    /// Append: term of the entry at `index`. Vote requests: the candidate's
    /// last log term. Rejected AppendResponse: the term hint.
    pub log_term: u64,
    /// Append: index before `entries`. Vote requests: the candidate's last
    /// index. AppendResponse: see [`MessageType::AppendResponse`].
    /// ReadIndexResponse: the read index.
    pub index: u64,
    /// Append and Propose: the entries.
    pub entries: Vec<Entry>,
    /// Append and Heartbeat: the leader's commit index (bounded by what the
    /// follower is known to hold). Responses: the sender's commit index.
    pub commit: u64,
    /// Snapshot: the snapshot.
    pub snapshot: Option<Box<Snapshot>>,
    /// Responses: the request was refused.
    pub reject: bool,
    /// Rejected AppendResponse: an index at or below which the logs may
    /// match, to skip a probe per entry.
    pub reject_hint: u64,
    /// Heartbeat: the leader's round number; HeartbeatResponse: echoed.
    pub stamp: u64,
    /// Vote: sent because of a leader transfer, so voters ignore their lease.
    pub leader_transfer: bool,
    /// Heartbeat: the leader is hibernating; followers may stop their
    /// election timers until they hear anything else.
    pub hibernate: bool,
    /// ReadIndex and ReadIndexResponse: the caller's request context.
    pub context: Bytes,
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use MessageType::*;
        write!(
            f,
            "{}->{} {:?} term={}",
            self.from, self.to, self.msg_type, self.term
        )?;
        match self.msg_type {
            Append => {
                write!(
                    f,
                    " log={}/{} commit={}",
                    self.log_term, self.index, self.commit
                )?;
                if !self.entries.is_empty() {
                    write!(f, " entries=[{}]", DisplayList(&self.entries))?;
                }
            }
            AppendResponse if self.reject => write!(
                f,
                " reject index={} hint={}/{} commit={}",
                self.index, self.log_term, self.reject_hint, self.commit
            )?,
            AppendResponse => write!(f, " index={} commit={}", self.index, self.commit)?,
            Vote | PreVote => {
                write!(f, " last={}/{}", self.log_term, self.index)?;
                if self.leader_transfer {
                    f.write_str(" transfer")?;
                }
            }
            VoteResponse | PreVoteResponse => {
                f.write_str(if self.reject { " rejected" } else { " granted" })?
            }
            Heartbeat => {
                write!(f, " commit={} round={}", self.commit, self.stamp)?;
                if self.hibernate {
                    f.write_str(" hibernate")?;
                }
            }
            HeartbeatResponse => write!(f, " round={} commit={}", self.stamp, self.commit)?,
            Snapshot => match &self.snapshot {
                Some(s) => write!(f, " snapshot={}", s.metadata)?,
                None => f.write_str(" snapshot=<none>")?,
            },
            TimeoutNow => {}
            Propose => write!(f, " entries=[{}]", DisplayList(&self.entries))?,
            ReadIndex => write!(f, " ctx={}", EscapedBytes(&self.context))?,
            ReadIndexResponse => write!(
                f,
                " index={} ctx={}",
                self.index,
                EscapedBytes(&self.context)
            )?,
        }
        Ok(())
    }
}

/// Shows a slice as `a, b, c`.
pub(crate) struct DisplayList<'a, T>(pub &'a [T]);

impl<T: fmt::Display> fmt::Display for DisplayList<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, item) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{item}")?;
        }
        Ok(())
    }
}
