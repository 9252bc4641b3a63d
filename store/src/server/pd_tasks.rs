//! The PD worker's other half: carrying out what the Raft side queued
//! ([`PdTask`]) and the operator steps PD sends back on the region
//! heartbeat stream.
//!
//! Each step goes to its region's leader as a message; the peer checks it
//! still applies (the epoch PD saw, its leadership) and proposes it. PD
//! learns the outcome from the next heartbeats — a step that did not
//! happen is simply sent again, or the operator times out.

use std::sync::Arc;

use flotilla_client::pd::{PdClient, RegionHeartbeatReceiver};
use flotilla_proto::pdpb::{self, region_command::Step};
use tokio::sync::{mpsc, watch};

use crate::driver::handler::PeerRouter;
use crate::pd_task::PdTask;
use crate::peer::msg::{PeerMsg, ProposeSplit, SplitCmd};
use crate::region_error;

/// Runs queued PD tasks until shutdown (each on its own task, so one slow
/// PD call holds up nothing else).
pub async fn run_tasks(
    pd: PdClient,
    router: Arc<PeerRouter>,
    mut tasks: mpsc::Receiver<PdTask>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let task = tokio::select! {
            task = tasks.recv() => task,
            _ = shutdown.wait_for(|s| *s) => None,
        };
        let Some(task) = task else { return };
        let (pd, router) = (pd.clone(), router.clone());
        tokio::spawn(async move { run_task(&pd, &router, task).await });
    }
}

async fn run_task(pd: &PdClient, router: &PeerRouter, task: PdTask) {
    match task {
        PdTask::AskSplit { region, keys, cb } => {
            let count = keys.len() as u32;
            match pd.ask_batch_split(region.clone(), count).await {
                Ok(ids) => {
                    let msg = PeerMsg::ProposeSplit(ProposeSplit {
                        epoch: region.region_epoch.unwrap_or_default(),
                        keys,
                        ids,
                        cb,
                    });
                    // A full mailbox or a gone region: the split is
                    // retried by the next check (its IDs are wasted).
                    let _ = router.send(region.id, msg);
                }
                Err(e) => {
                    tracing::warn!(region = region.id, error = %e, "asking PD for split IDs failed");
                    if let Some(cb) = cb {
                        let busy = region_error::server_is_busy(format!("PD: {e}"), 200);
                        let _ = cb.send(Err(busy));
                    }
                }
            }
        }
        PdTask::ReportSplit { regions } => {
            let first = regions.first().map_or(0, |r| r.id);
            if let Err(e) = pd.report_batch_split(regions).await {
                tracing::debug!(region = first, error = %e, "split report failed; heartbeats will tell");
            }
        }
    }
}

/// Hands each operator step PD sends to its region's leader.
pub async fn follow_commands(mut responses: RegionHeartbeatReceiver, router: Arc<PeerRouter>) {
    while let Some(resp) = responses.recv().await {
        for rejected in &resp.rejected {
            tracing::debug!(region = rejected.region_id, error = ?rejected.error, "PD refused a region heartbeat");
        }
        for cmd in resp.commands {
            dispatch(&router, cmd);
        }
    }
}

fn dispatch(router: &PeerRouter, cmd: pdpb::RegionCommand) {
    let region_id = cmd.region_id;
    let epoch = cmd.region_epoch.unwrap_or_default();
    tracing::debug!(region = region_id, operator = cmd.operator_id, step = ?cmd.step, "operator step");
    let msg = match cmd.step {
        Some(Step::TransferLeader(t)) => match t.peer {
            Some(to) => PeerMsg::TransferLeader { epoch, to },
            None => return,
        },
        Some(Step::SplitRegion(s)) => PeerMsg::Split(SplitCmd {
            epoch,
            ctx: None,
            keys: s.keys,
            cb: None,
        }),
        Some(Step::ChangePeer(c)) => PeerMsg::ChangePeer {
            epoch,
            changes: vec![c],
        },
        Some(Step::ChangePeerV2(c)) => PeerMsg::ChangePeer {
            epoch,
            changes: c.changes,
        },
        None => return,
    };
    let _ = router.send(region_id, msg);
}
