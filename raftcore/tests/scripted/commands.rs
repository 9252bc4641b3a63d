//! The script commands. Each returns the text to compare with the script
//! (`ok` when empty); an `Err` means the script itself is wrong and fails
//! the test. Errors of the code under test print as `error: <Display>`.
//!
//! Cluster and host:
//! - `add-nodes N [voters=(1,2,3)] [learners=(4)] [prevote=true]
//!   [checkquorum=true] [lease=K] [read-only=safe|lease] [election=10]
//!   [heartbeat=1] [max-inflight=N] [max-msg-size=N] [max-uncommitted=N]
//!   [no-forwarding=true] [async-apply=true]`: nodes with the next IDs, seeded
//!   with their ID. The first nodes found the group (voters default to
//!   them); later ones start empty unless given voters or learners.
//! - `process-ready ID...`: one `Ready` per node, handled as documented.
//! - `deliver-msgs [drop=(IDs)] [type=T] [from=(IDs)] ID...`: deliver (or
//!   drop) the queued messages to those nodes.
//! - `stabilize [ID...]`: Readies and deliveries until nothing moves.
//! - `apply ID [INDEX]`: async apply of handed-out entries.
//! - `compact ID INDEX`: compact storage behind the state machine's image.
//! - `crash ID`, `restart ID`: lose everything not persisted; restart from
//!   storage. `isolate ID`, `heal`: drop all messages from and to a node.
//!
//! Raft API: `campaign ID`, `tick ID [N]`, `tick-election ID`,
//! `tick-heartbeat ID`, `propose ID DATA`, `propose-batch ID D...`,
//! `propose-conf-change ID [v4] [l5] [r3] [transition=auto|implicit|explicit]`
//! (no changes: leave-joint), `read-index ID CTX`, `transfer-leader ID TO`,
//! `hibernate ID [despite=(3)]`, `wake ID`, `report-unreachable ID PEER`,
//! `report-snapshot ID PEER ok|fail`, `step ID type=T from=F term=N ...`.
//!
//! Inspection: `status ID`, `raft-log ID`, `raft-state`, `state-machine ID`,
//! `lease ID`.

use raftcore::{
    ConfChange, ConfChangeSingle, ConfChangeTransition, ConfChangeType, ConfState, Config, Entry,
    MemStorage, Message, MessageType, RawNode, ReadOnlyOption, SnapshotStatus,
};

use crate::args::{Cmd, ScriptResult};
use crate::env::{describe, Env, Node};
use crate::ready::{self, bytes, escaped, Filter};

/// Runs one command.
pub fn run(env: &mut Env, mut cmd: Cmd) -> ScriptResult<String> {
    let out = match cmd.name.as_str() {
        "add-nodes" => add_nodes(env, &mut cmd)?,
        "campaign" => on_node(env, &mut cmd, |raw| raw.campaign().err())?,
        "tick" => {
            let (id, n) = (cmd.next()?, cmd.maybe_next::<usize>()?.unwrap_or(1));
            on_raw(env, id, |raw| {
                (0..n).for_each(|_| raw.tick());
                None
            })?
        }
        "tick-election" => tick_election(env, &mut cmd)?,
        "tick-heartbeat" => {
            let id = cmd.next()?;
            let n = env.node(id)?.cfg.heartbeat_ticks;
            with_change(env.raw(id)?, |raw| {
                (0..n).for_each(|_| raw.tick());
                None
            })
        }
        "propose" => {
            let (id, data) = (cmd.next()?, cmd.next_pos()?);
            result(env.raw(id)?.propose(bytes(&data)))
        }
        "propose-batch" => {
            let id = cmd.next()?;
            let data: Vec<_> = cmd.rest().iter().map(|d| bytes(d)).collect();
            result(env.raw(id)?.propose_batch(data))
        }
        "propose-conf-change" => propose_conf_change(env, &mut cmd)?,
        "read-index" => {
            let (id, ctx) = (cmd.next()?, cmd.next_pos()?);
            result(env.raw(id)?.read_index(bytes(&ctx)))
        }
        "transfer-leader" => {
            let (id, to) = (cmd.next()?, cmd.next()?);
            on_raw(env, id, |raw| raw.transfer_leader(to).err())?
        }
        "hibernate" => {
            let id = cmd.next()?;
            let despite = cmd.key_list::<u64>("despite")?.unwrap_or_default();
            on_raw(env, id, |raw| raw.hibernate_despite(&despite).err())?
        }
        "wake" => on_node(env, &mut cmd, |raw| {
            raw.wake();
            None
        })?,
        "report-unreachable" => {
            let (id, peer) = (cmd.next()?, cmd.next()?);
            on_raw(env, id, |raw| {
                raw.report_unreachable(peer);
                None
            })?
        }
        "report-snapshot" => report_snapshot(env, &mut cmd)?,
        "step" => step(env, &mut cmd)?,
        _ => return run_host(env, cmd),
    };
    cmd.finish()?;
    Ok(out)
}

/// Commands of the host and the network rather than the Raft API.
fn run_host(env: &mut Env, mut cmd: Cmd) -> ScriptResult<String> {
    let mut lines = Vec::new();
    match cmd.name.as_str() {
        "process-ready" => {
            for id in cmd.rest_ids()? {
                ready::process_ready(env, id, &mut lines)?;
            }
        }
        "deliver-msgs" => deliver_msgs(env, &mut cmd, &mut lines)?,
        "stabilize" => {
            let mut ids = cmd.rest_ids()?;
            if ids.is_empty() {
                ids = env.nodes.keys().copied().collect();
            }
            ready::stabilize(env, &ids, &mut lines)?;
        }
        "apply" => {
            let (id, index) = (cmd.next()?, cmd.maybe_next()?);
            lines.push(ready::apply(env, id, index)?);
        }
        "status" => lines.push(env.raw(cmd.next()?)?.status().to_string()),
        "raft-log" => lines.push(raft_log(env.raw(cmd.next()?)?)),
        "state-machine" => {
            let sm = &env.node(cmd.next()?)?.sm;
            let image = escaped(&sm.image(u64::MAX));
            let conf = sm.conf_at(u64::MAX);
            lines.push(format!("applied={} data={image} {conf}", sm.applied));
        }
        "raft-state" => lines.push(env.raft_state()),
        "lease" => {
            let valid = env.raw(cmd.next()?)?.has_valid_lease();
            lines.push(if valid { "valid" } else { "none" }.to_string());
        }
        "compact" => {
            let (id, index) = (cmd.next()?, cmd.next()?);
            lines.push(env.compact(id, index)?);
        }
        "crash" => env.crash(cmd.next()?)?,
        "restart" => lines.push(env.restart(cmd.next()?)?),
        "isolate" => {
            env.isolated.insert(cmd.next()?);
        }
        "heal" => env.isolated.clear(),
        other => return Err(format!("unknown command `{other}`")),
    }
    cmd.finish()?;
    Ok(lines.join("\n"))
}

/// Runs `f` on the node named by the next argument; prints an error it
/// returns, and any change of role, term or leader.
fn on_node(
    env: &mut Env,
    cmd: &mut Cmd,
    f: impl FnOnce(&mut RawNode<MemStorage>) -> Option<raftcore::Error>,
) -> ScriptResult<String> {
    let id = cmd.next()?;
    on_raw(env, id, f)
}

fn on_raw(
    env: &mut Env,
    id: u64,
    f: impl FnOnce(&mut RawNode<MemStorage>) -> Option<raftcore::Error>,
) -> ScriptResult<String> {
    Ok(with_change(env.raw(id)?, f))
}

fn with_change(
    raw: &mut RawNode<MemStorage>,
    f: impl FnOnce(&mut RawNode<MemStorage>) -> Option<raftcore::Error>,
) -> String {
    let before = describe(raw);
    let err = f(raw);
    let after = describe(raw);
    let mut lines = Vec::new();
    if let Some(e) = err {
        lines.push(format!("error: {e}"));
    }
    if after != before {
        lines.push(format!("{before} => {after}"));
    }
    lines.join("\n")
}

fn result(r: raftcore::Result<()>) -> String {
    match r {
        Ok(()) => String::new(),
        Err(e) => format!("error: {e}"),
    }
}

/// `add-nodes N [voters=(..)] [learners=(..)] [options]`. Without
/// voters or learners, the first nodes of a script found the group as its
/// voters; nodes added later start empty and join through a snapshot.
fn add_nodes(env: &mut Env, cmd: &mut Cmd) -> ScriptResult<String> {
    let n: u64 = cmd.next()?;
    let first = env.nodes.keys().last().map_or(1, |id| id + 1);
    let ids: Vec<u64> = (first..first + n).collect();
    let voters = cmd.key_list::<u64>("voters")?;
    let learners = cmd.key_list::<u64>("learners")?;
    let storage = match (voters, learners) {
        (None, None) if env.nodes.is_empty() => {
            MemStorage::with_conf_state(ConfState::with_voters(ids.clone()))
        }
        (None, None) => MemStorage::new(),
        (v, l) => MemStorage::with_conf_state(ConfState {
            voters: v.unwrap_or_default(),
            learners: l.unwrap_or_default(),
            ..ConfState::default()
        }),
    };
    let base = config(cmd)?;
    let async_apply = cmd.key("async-apply")?.unwrap_or(false);
    let mut lines = Vec::new();
    for id in ids {
        let cfg = Config {
            id,
            seed: id,
            ..base.clone()
        };
        let node = Node::new(cfg, async_apply, storage.clone())?;
        lines.push(node.raw().expect("new").status().to_string());
        env.nodes.insert(id, node);
    }
    Ok(lines.join("\n"))
}

fn config(cmd: &mut Cmd) -> ScriptResult<Config> {
    let d = Config::default();
    let read_only = match cmd.key::<String>("read-only")?.as_deref() {
        None | Some("safe") => ReadOnlyOption::Safe,
        Some("lease") => ReadOnlyOption::LeaseBased,
        Some(o) => return Err(format!("bad read-only={o}")),
    };
    Ok(Config {
        pre_vote: cmd.key("prevote")?.unwrap_or(false),
        check_quorum: cmd.key("checkquorum")?.unwrap_or(false),
        lease_ticks: cmd.key("lease")?.unwrap_or(0),
        read_only_option: read_only,
        election_ticks: cmd.key("election")?.unwrap_or(10),
        heartbeat_ticks: cmd.key("heartbeat")?.unwrap_or(1),
        max_inflight_msgs: cmd.key("max-inflight")?.unwrap_or(d.max_inflight_msgs),
        max_size_per_msg: cmd.key("max-msg-size")?.unwrap_or(d.max_size_per_msg),
        max_uncommitted_size: cmd.key("max-uncommitted")?.unwrap_or(0),
        disable_proposal_forwarding: cmd.key("no-forwarding")?.unwrap_or(false),
        ..d
    })
}

/// `tick-election ID`: a leader ticks one election timeout (a
/// Check-Quorum round); any other peer ticks until its randomized timeout
/// fires (its role or term changes, or a campaign leaves a `Ready`), at
/// most twice the timeout.
fn tick_election(env: &mut Env, cmd: &mut Cmd) -> ScriptResult<String> {
    let id = cmd.next()?;
    let election = env.node(id)?.cfg.election_ticks;
    let leader = env.raw(id)?.raft().state == raftcore::StateRole::Leader;
    let mut ticks = 0;
    let out = with_change(env.raw(id)?, |raw| {
        let start = (raw.raft().state, raw.raft().term, raw.has_ready());
        while ticks < if leader { election } else { 2 * election } {
            raw.tick();
            ticks += 1;
            let now = (raw.raft().state, raw.raft().term);
            if !leader && (now != (start.0, start.1) || (!start.2 && raw.has_ready())) {
                break;
            }
        }
        None
    });
    Ok(format!("ticks={ticks}\n{out}").trim_end().to_string())
}

fn propose_conf_change(env: &mut Env, cmd: &mut Cmd) -> ScriptResult<String> {
    let id = cmd.next()?;
    let transition = match cmd.key::<String>("transition")?.as_deref() {
        None | Some("auto") => ConfChangeTransition::Auto,
        Some("implicit") => ConfChangeTransition::Implicit,
        Some("explicit") => ConfChangeTransition::Explicit,
        Some(t) => return Err(format!("bad transition={t}")),
    };
    let mut changes = Vec::new();
    for c in cmd.rest() {
        let (kind, node) = c.split_at(1);
        let change_type = match kind {
            "v" => ConfChangeType::AddNode,
            "l" => ConfChangeType::AddLearnerNode,
            "r" => ConfChangeType::RemoveNode,
            _ => return Err(format!("bad conf change `{c}`")),
        };
        let node = node.parse().map_err(|_| format!("bad conf change `{c}`"))?;
        changes.push(ConfChangeSingle::new(change_type, node));
    }
    let cc = ConfChange {
        transition,
        changes,
        ..ConfChange::default()
    };
    Ok(result(env.raw(id)?.propose_conf_change(&cc)))
}

fn report_snapshot(env: &mut Env, cmd: &mut Cmd) -> ScriptResult<String> {
    let (id, peer) = (cmd.next()?, cmd.next()?);
    let status = match cmd.next_pos()?.as_str() {
        "ok" => SnapshotStatus::Finish,
        "fail" => SnapshotStatus::Failure,
        s => return Err(format!("bad snapshot status `{s}`")),
    };
    on_raw(env, id, |raw| {
        raw.report_snapshot(peer, status);
        None
    })
}

fn deliver_msgs(env: &mut Env, cmd: &mut Cmd, lines: &mut Vec<String>) -> ScriptResult<()> {
    let filter = Filter {
        msg_type: cmd
            .key::<String>("type")?
            .map(|t| msg_type(&t))
            .transpose()?,
        from: cmd.key_list("from")?,
    };
    for id in cmd.key_list::<u64>("drop")?.unwrap_or_default() {
        ready::deliver(env, id, &filter, true, lines);
    }
    for id in cmd.rest_ids()? {
        ready::deliver(env, id, &filter, false, lines);
    }
    Ok(())
}

fn raft_log(raw: &RawNode<MemStorage>) -> String {
    let log = raw.log();
    let (first, last) = (log.first_index(), log.last_index());
    let mut lines = vec![format!(
        "first={first} last={last} committed={} persisted={} applied={}",
        log.committed, log.persisted, log.applied
    )];
    let snap = raw.storage().latest_snapshot();
    if !snap.is_empty() {
        lines.push(format!("snapshot: {}", snap.metadata));
    }
    match log.entries(first, u64::MAX) {
        Ok(entries) => lines.extend(entries.iter().map(ToString::to_string)),
        Err(e) => lines.push(format!("error: {e}")),
    }
    lines.join("\n")
}

fn msg_type(s: &str) -> ScriptResult<MessageType> {
    MessageType::ALL
        .into_iter()
        .find(|t| format!("{t:?}") == s)
        .ok_or_else(|| format!("unknown message type `{s}`"))
}

/// `step ID type=T from=F term=N [to=X] [log=T/I] [commit=C]
/// [entries=(T/I,..)] [reject=true] [hint=H] [round=S]`: steps a
/// hand-made message.
fn step(env: &mut Env, cmd: &mut Cmd) -> ScriptResult<String> {
    let id: u64 = cmd.next()?;
    let slash = |s: &str| -> ScriptResult<(u64, u64)> {
        let (a, b) = s.split_once('/').ok_or(format!("expected T/I, got {s}"))?;
        Ok((
            a.parse().map_err(|_| format!("bad {s}"))?,
            b.parse().map_err(|_| format!("bad {s}"))?,
        ))
    };
    let (log_term, index) = match cmd.key::<String>("log")? {
        Some(l) => slash(&l)?,
        None => (0, cmd.key("index")?.unwrap_or(0)),
    };
    let mut entries = Vec::new();
    for e in cmd.key_list::<String>("entries")?.unwrap_or_default() {
        let (term, index) = slash(&e)?;
        entries.push(Entry {
            term,
            index,
            ..Entry::default()
        });
    }
    let m = Message {
        msg_type: msg_type(&cmd.key::<String>("type")?.ok_or("step: type= missing")?)?,
        to: cmd.key("to")?.unwrap_or(id),
        from: cmd.key("from")?.ok_or("step: from= missing")?,
        term: cmd.key("term")?.unwrap_or(0),
        log_term,
        index,
        entries,
        commit: cmd.key("commit")?.unwrap_or(0),
        reject: cmd.key("reject")?.unwrap_or(false),
        reject_hint: cmd.key("hint")?.unwrap_or(0),
        stamp: cmd.key("round")?.unwrap_or(0),
        ..Message::default()
    };
    let mut lines = vec![m.to_string()];
    ready::step_and_report(env.raw(id)?, m, &mut lines);
    Ok(lines.join("\n"))
}
