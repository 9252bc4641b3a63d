//! Linearizable reads. The leader serves under its lease once it has
//! applied an entry of its own term (so everything earlier leaders
//! acknowledged is applied here); otherwise — or for a follower read — the
//! read waits for a ReadIndex round, then for the apply to reach that
//! index. The callback gets the go-ahead; the caller then reads RocksDB,
//! which holds at least everything applied up to that point.

use std::collections::VecDeque;

use bytes::Bytes;
use flotilla_proto::kvrpcpb::RegionError;
use flotilla_proto::metapb;

use super::msg::{ReadCallback, ReadCmd};
use super::Peer;
use crate::driver::context::PeerContext;

/// A read waiting for its ReadIndex answer, then for the apply.
struct Waiter {
    id: u64,
    /// The region's version when the read was checked.
    version: u64,
    /// The read index, once confirmed.
    index: Option<u64>,
    cb: ReadCallback,
}

/// The reads a peer has not answered yet, oldest first.
#[derive(Default)]
pub struct PendingReads {
    waiters: VecDeque<Waiter>,
    next_id: u64,
}

impl PendingReads {
    /// How many reads wait.
    pub fn len(&self) -> usize {
        self.waiters.len()
    }

    /// Whether none wait.
    pub fn is_empty(&self) -> bool {
        self.waiters.is_empty()
    }
}

impl Peer {
    pub(super) fn on_read(&mut self, cx: &mut PeerContext, cmd: ReadCmd) {
        let ReadCmd { ctx, keys, cb } = cmd;
        if let Err(e) = self.check_request(cx, &ctx, &keys) {
            let _ = cb.send(Err(e));
            return;
        }
        let follower_read = ctx.follower_read;
        tracing::trace!(
            region = self.region().id,
            follower_read,
            lease = self.node.has_valid_lease(),
            applied_term = self.applied_term,
            "read"
        );
        if !follower_read && !self.is_leader() {
            let _ = cb.send(Err(self.not_leader()));
            return;
        }
        if !follower_read && self.lease_read_ok() {
            cx.store.metrics.lease_reads.inc();
            let _ = cb.send(Ok(self.region().clone()));
            return;
        }
        let reads = &mut self.reads;
        let id = reads.next_id;
        reads.next_id += 1;
        if let Err(e) = self
            .node
            .read_index(Bytes::copy_from_slice(&id.to_be_bytes()))
        {
            tracing::debug!(region = self.region().id, error = %e, "read index refused");
            let _ = cb.send(Err(self.not_leader()));
            return;
        }
        cx.store.metrics.read_index_reads.inc();
        let version = self.region().region_epoch.map_or(0, |e| e.version);
        self.reads.waiters.push_back(Waiter {
            id,
            version,
            index: None,
            cb,
        });
    }

    /// Whether a leader read may be served now from the local state: under
    /// the lease, with an entry of this term applied (so every earlier
    /// leader's writes are), and no split of ours still unapplied (the new
    /// regions may already take writes elsewhere).
    fn lease_read_ok(&self) -> bool {
        let lease = self.node.has_valid_lease()
            || crate::planted::on(crate::planted::Bug::LeaseReadUnchecked);
        lease
            && self.applied_term == self.node.raft().term
            && self.applied_index >= self.split.barrier
    }

    /// Records confirmed read indexes from a Ready.
    pub(super) fn on_read_states(&mut self, states: Vec<raftcore::ReadState>) {
        for rs in states {
            let Ok(id) = <[u8; 8]>::try_from(&rs.context[..]).map(u64::from_be_bytes) else {
                continue;
            };
            if let Some(w) = self.reads.waiters.iter_mut().find(|w| w.id == id) {
                w.index = Some(rs.index);
            }
        }
        self.serve_applied_reads();
    }

    /// Answers every read whose index is applied.
    pub(super) fn serve_applied_reads(&mut self) {
        let applied = self.applied_index;
        let region = self.region().clone();
        let mut still = VecDeque::new();
        let version = region.region_epoch.map_or(0, |e| e.version);
        for w in std::mem::take(&mut self.reads.waiters) {
            match w.index {
                // The region split while the read waited: its keys may
                // belong to another region now.
                Some(i)
                    if i <= applied
                        && w.version != version
                        && !crate::planted::on(crate::planted::Bug::SkipEpochCheck) =>
                {
                    let err = crate::region_error::epoch_not_match(None, vec![region.clone()]);
                    let _ = w.cb.send(Err(err));
                }
                Some(i) if i <= applied => {
                    let _ = w.cb.send(Ok(region.clone()));
                }
                _ => still.push_back(w),
            }
        }
        self.reads.waiters = still;
    }

    /// Answers every waiting read with `err` (the peer is going away).
    pub(super) fn fail_all_reads(&mut self, err: RegionError) {
        for w in std::mem::take(&mut self.reads.waiters) {
            let _ = w.cb.send(Err(err.clone()));
        }
    }

    /// After a leadership change, reads without a confirmed index may
    /// never get one: turn them away so the client retries at once.
    pub(super) fn fail_unconfirmed_reads(&mut self, leader: Option<metapb::Peer>) {
        let region_id = self.region().id;
        let err: RegionError = crate::region_error::not_leader(region_id, leader);
        let mut still = VecDeque::new();
        for w in std::mem::take(&mut self.reads.waiters) {
            if w.index.is_some() {
                still.push_back(w);
            } else {
                let _ = w.cb.send(Err(err.clone()));
            }
        }
        self.reads.waiters = still;
    }
}
