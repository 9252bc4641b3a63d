//! Client writes: checked against the region, encoded as one command,
//! proposed, and answered by the apply pool once the entry applies.

use flotilla_proto::raft_cmdpb::{self, request::Cmd, RaftCmdHeader, RaftCmdRequest};
use prost::Message as _;

use super::msg::{KeyCheck, WriteCallback, WriteCmd};
use super::Peer;
use crate::apply::Proposal;
use crate::driver::context::PeerContext;
use crate::region_error;

/// How long a client should wait before retrying a proposal the leader
/// refused for load.
const BUSY_BACKOFF_MS: u64 = 20;

/// The keys a write touches, for the range check.
pub fn write_keys(requests: &[raft_cmdpb::Request]) -> Vec<KeyCheck> {
    let mut keys = Vec::new();
    let mut points = Vec::new();
    for r in requests {
        match &r.cmd {
            Some(Cmd::Put(p)) => points.push(p.key.clone()),
            Some(Cmd::Delete(d)) => points.push(d.key.clone()),
            Some(Cmd::Cas(c)) => points.push(c.key.clone()),
            Some(Cmd::DeleteRange(d)) => {
                keys.push(KeyCheck::Range(d.start_key.clone(), d.end_key.clone()))
            }
            None => {}
        }
    }
    keys.push(KeyCheck::Keys(points));
    keys
}

impl Peer {
    pub(super) fn on_write(&mut self, cx: &mut PeerContext, cmd: WriteCmd) {
        let WriteCmd { ctx, requests, cb } = cmd;
        for keys in write_keys(&requests) {
            if let Err(e) = self.check_request(cx, &ctx, &keys) {
                let _ = cb.send(Err(e));
                return;
            }
        }
        if !self.is_leader() {
            let _ = cb.send(Err(self.not_leader()));
            return;
        }
        let cmd = RaftCmdRequest {
            header: Some(self.cmd_header()),
            requests,
            admin: None,
        };
        self.propose_cmd(cx, cmd, cb);
    }

    /// The header of a command this peer proposes now.
    pub(super) fn cmd_header(&self) -> RaftCmdHeader {
        let region = self.region();
        RaftCmdHeader {
            region_id: region.id,
            peer: Some(self.me),
            region_epoch: region.region_epoch,
        }
    }

    /// Proposes `cmd`; `cb` hears the outcome once it applies (or at once,
    /// if the proposal is refused). Returns the entry's index.
    pub(super) fn propose_cmd(
        &mut self,
        cx: &mut PeerContext,
        cmd: RaftCmdRequest,
        cb: WriteCallback,
    ) -> Option<u64> {
        let data = cmd.encode_to_vec();
        let max = cx.store.cfg.raft.max_entry_size.as_u64();
        if data.len() as u64 > max {
            let _ = cb.send(Err(region_error::raft_entry_too_large(
                self.region().id,
                data.len() as u64,
            )));
            return None;
        }
        let started = std::time::Instant::now();
        match self.node.propose(data) {
            Ok(()) => {
                cx.store
                    .metrics
                    .propose_duration
                    .observe(started.elapsed().as_secs_f64());
                cx.store.metrics.proposals.inc();
                let index = self.node.log().last_index();
                tracing::trace!(region = self.region().id, index, "proposed");
                self.proposals.push_back(Proposal {
                    index,
                    term: self.node.raft().term,
                    cb,
                });
                Some(index)
            }
            Err(e) => {
                let err = match e {
                    raftcore::Error::UncommittedLimit => {
                        region_error::server_is_busy("uncommitted log full", BUSY_BACKOFF_MS)
                    }
                    raftcore::Error::TransferInProgress { .. } => {
                        region_error::server_is_busy("leader transfer in progress", BUSY_BACKOFF_MS)
                    }
                    _ => self.not_leader(),
                };
                let _ = cb.send(Err(err));
                None
            }
        }
    }
}
