//! Driving nodes: one `Ready` per call following the documented protocol,
//! message delivery, and `stabilize`.

use bytes::Bytes;
use raftcore::{ConfChange, Entry, EntryType, MemStorage, Message, MessageType, RawNode, Ready};

use crate::args::ScriptResult;
use crate::env::{describe, Env, Life, Node, StateMachine};

/// Shows bytes as a quoted string, escaping what is not printable.
pub fn escaped(data: &[u8]) -> String {
    let mut s = String::from("\"");
    for &b in data {
        if (b.is_ascii_graphic() && b != b'"' && b != b'\\') || b == b' ' {
            s.push(b as char);
        } else {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    s.push('"');
    s
}

pub fn entry_list(entries: &[Entry]) -> String {
    let parts: Vec<String> = entries.iter().map(ToString::to_string).collect();
    parts.join(", ")
}

/// Handles one `Ready` of `id`, if it has one, in the order `Ready`
/// documents: send, persist, send what waited for the persist, apply,
/// advance.
pub fn process_ready(env: &mut Env, id: u64, out: &mut Vec<String>) -> ScriptResult<()> {
    let Node { life, sm, .. } = env.node(id)?;
    let Life::Up(raw) = life else {
        return Err(format!("node {id} is down"));
    };
    if !raw.has_ready() {
        out.push(format!("> {id} has no Ready"));
        return Ok(());
    }
    let mut rd = raw.ready();
    print_ready(id, &rd, out);
    if rd.is_empty() {
        // has_ready() promised work: worth seeing in a transcript.
        out.push("  (empty)".into());
    }
    // 1. Messages that may leave before the persist.
    let early = std::mem::take(&mut rd.messages);
    // 2. Persist.
    let store = raw.storage_mut();
    if let Some(snap) = rd.snapshot.clone() {
        store
            .apply_snapshot(snap.clone())
            .map_err(|e| format!("apply_snapshot: {e}"))?;
        sm.restore(&snap);
    }
    store.append(&rd.entries);
    if let Some(hs) = rd.hard_state {
        store.set_hard_state(hs);
    }
    // 3. Messages that waited for the persist.
    let late = std::mem::take(&mut rd.persisted_messages);
    for rs in &rd.read_states {
        out.push(format!("  read: {rs}"));
    }
    // 4. Apply, now or later.
    let committed = std::mem::take(&mut rd.committed_entries);
    let node = env.node(id)?;
    if !committed.is_empty() {
        let deferred = if node.async_apply {
            " (apply later)"
        } else {
            ""
        };
        out.push(format!("  committed: {}{deferred}", entry_list(&committed)));
    }
    if node.async_apply {
        node.pending_apply.extend(committed);
    } else {
        apply_entries(node, &committed, out);
    }
    // 5. Acknowledge.
    let raw = node.raw_mut().expect("up");
    raw.advance(rd);
    if !node.async_apply {
        node.raw_mut().expect("up").advance_apply();
    }
    queue(env, early, "msg", out);
    queue(env, late, "msg after persist", out);
    Ok(())
}

/// What the host must persist, in the order it does it.
fn print_ready(id: u64, rd: &Ready, out: &mut Vec<String>) {
    out.push(format!("> {id} handling Ready must_sync={}", rd.must_sync));
    if let Some(ss) = rd.soft_state {
        out.push(format!("  soft: {ss}"));
    }
    if let Some(hs) = rd.hard_state {
        out.push(format!("  hard: {hs}"));
    }
    if let Some(s) = &rd.snapshot {
        out.push(format!(
            "  snapshot: {} data={}",
            s.metadata,
            escaped(&s.data)
        ));
    }
    if !rd.entries.is_empty() {
        out.push(format!("  entries: {}", entry_list(&rd.entries)));
    }
}

fn queue(env: &mut Env, msgs: Vec<Message>, tag: &str, out: &mut Vec<String>) {
    for m in msgs {
        let line = format!("  {tag}: {m}");
        let dropped = env.send(m);
        out.push(format!("{line}{dropped}"));
    }
}

/// Applies committed entries to the state machine; configuration changes
/// go through `RawNode::apply_conf_change` and are persisted with
/// `MemStorage::set_conf_state`.
pub fn apply_entries(node: &mut Node, entries: &[Entry], out: &mut Vec<String>) {
    let Node { life, sm, .. } = node;
    let Life::Up(raw) = life else {
        unreachable!("applying on a down node")
    };
    for e in entries {
        match e.entry_type {
            EntryType::Normal if !e.data.is_empty() => sm.data.push((e.index, e.data.clone())),
            EntryType::Normal => {}
            EntryType::ConfChange => apply_conf_change(raw, sm, e, out),
        }
        sm.applied = e.index;
    }
}

fn apply_conf_change(
    raw: &mut RawNode<MemStorage>,
    sm: &mut StateMachine,
    e: &Entry,
    out: &mut Vec<String>,
) {
    let cc = match ConfChange::decode(&e.data) {
        Ok(cc) => cc,
        Err(err) => {
            out.push(format!(
                "  conf change {}/{}: error: {err}",
                e.term, e.index
            ));
            return;
        }
    };
    match raw.apply_conf_change(&cc) {
        Ok(cs) => {
            out.push(format!("  conf change {}/{} {cc}: {cs}", e.term, e.index));
            raw.storage_mut().set_conf_state(cs.clone());
            sm.confs.push((e.index, cs));
        }
        Err(err) => out.push(format!(
            "  conf change {}/{} {cc}: error: {err}",
            e.term, e.index
        )),
    }
}

/// Async apply: applies handed-out entries up to `index` (all by default)
/// and reports them applied.
pub fn apply(env: &mut Env, id: u64, index: Option<u64>) -> ScriptResult<String> {
    let node = env.node(id)?;
    let upto = index.unwrap_or(u64::MAX);
    let mut entries = Vec::new();
    while node.pending_apply.front().is_some_and(|e| e.index <= upto) {
        entries.push(node.pending_apply.pop_front().expect("checked"));
    }
    let Some(last) = entries.last().map(|e| e.index) else {
        return Ok("nothing to apply".into());
    };
    let mut out = vec![format!("applying: {}", entry_list(&entries))];
    apply_entries(node, &entries, &mut out);
    node.raw_mut()
        .ok_or_else(|| format!("node {id} is down"))?
        .advance_apply_to(last);
    out.push(format!("applied={last}"));
    Ok(out.join("\n"))
}

/// Which queued messages a delivery takes.
#[derive(Default)]
pub struct Filter {
    pub msg_type: Option<MessageType>,
    pub from: Option<Vec<u64>>,
}

impl Filter {
    fn keep(&self, m: &Message) -> bool {
        self.msg_type.is_none_or(|t| m.msg_type == t)
            && self.from.as_ref().is_none_or(|f| f.contains(&m.from))
    }
}

/// Delivers (or, with `drop`, discards) the queued messages to `to` that
/// `filter` selects. Returns whether there were any.
pub fn deliver(env: &mut Env, to: u64, filter: &Filter, drop: bool, out: &mut Vec<String>) -> bool {
    let msgs = env.take_msgs(to, |m| filter.keep(m));
    if msgs.is_empty() {
        return false;
    }
    out.push(format!("> {to} receiving messages"));
    for m in msgs {
        let line = format!("  {m}");
        if drop {
            out.push(format!("{line} (dropped)"));
        } else if env.partitioned(m.from, m.to) {
            out.push(format!("{line} (dropped: isolated)"));
        } else if !env.is_up(to) {
            out.push(format!("{line} (dropped: node down)"));
        } else {
            out.push(line);
            let raw = env.raw(to).expect("up");
            step_and_report(raw, m, out);
        }
    }
    true
}

/// Steps a message, printing an error or the change of role it caused.
pub fn step_and_report(raw: &mut RawNode<MemStorage>, m: Message, out: &mut Vec<String>) {
    let before = describe(raw);
    if let Err(e) = raw.step(m) {
        out.push(format!("  error: {e}"));
    }
    let after = describe(raw);
    if after != before {
        out.push(format!("  => {after}"));
    }
}

/// Processes Readies and delivers messages among `ids` until nothing
/// changes.
pub fn stabilize(env: &mut Env, ids: &[u64], out: &mut Vec<String>) -> ScriptResult<()> {
    for _ in 0..1000 {
        let mut busy = false;
        for &id in ids {
            if env.raw(id).is_ok_and(|r| r.has_ready()) {
                process_ready(env, id, out)?;
                busy = true;
            }
        }
        for &id in ids {
            busy |= deliver(env, id, &Filter::default(), false, out);
        }
        if !busy {
            return Ok(());
        }
    }
    Err("stabilize: still busy after 1000 rounds".into())
}

/// Reads the bytes of a script argument.
pub fn bytes(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}
