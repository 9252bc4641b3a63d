//! PD's JSON answers as text for people: one table per list, `key: value`
//! lines per item. Only what matters for a decision is shown; `--json` has
//! everything.
//!
//! The views read PD's JSON leniently (a missing field shows as `-`): the
//! API may grow fields or lose one across versions, and an admin tool that
//! refuses to print anything during a rolling upgrade helps nobody.

use serde_json::Value;

use super::table::{bytes, cell, fields, Table};

/// `GET members`: who is in the cluster and who leads.
pub fn members(v: &Value) -> String {
    let leader = v["leader"]["id"].as_u64();
    let voters = list(&v["voters"]);
    let mut t = Table::new(&["ID", "NAME", "ROLE", "CLIENT URLS", "PEER URLS", "HTTP URL"]);
    for m in list(&v["members"]) {
        let id = m["id"].as_u64();
        let role = if id.is_some() && id == leader {
            "leader"
        } else if voters.iter().any(|x| x.as_u64() == id) {
            "follower"
        } else {
            "-"
        };
        t.row(vec![
            cell(&m["id"]),
            cell(&m["name"]),
            role.to_string(),
            cell(&m["client_urls"]),
            cell(&m["peer_urls"]),
            cell(&m["http_url"]),
        ]);
    }
    format!("cluster id: {}\n{}", cell(&v["cluster_id"]), t.render())
}

/// `GET stores`: one row per store.
pub fn stores(v: &Value) -> String {
    let mut t = Table::new(&[
        "ID",
        "ADDRESS",
        "STATE",
        "REGIONS",
        "LEADERS",
        "REGION SIZE",
        "CAPACITY",
        "AVAILABLE",
        "HEARTBEAT AGO",
        "LABELS",
    ]);
    for s in list(&v["stores"]) {
        t.row(vec![
            cell(&s["id"]),
            cell(&s["address"]),
            cell(&s["state"]),
            cell(&s["region_count"]),
            cell(&s["leader_count"]),
            size(&s["region_size"]),
            size(&s["capacity"]),
            size(&s["available"]),
            millis(&s["ms_since_heartbeat"]),
            cell(&s["labels"]),
        ]);
    }
    t.render()
}

/// `GET store/{id}`: one store.
pub fn store(s: &Value) -> String {
    fields(&[
        ("id", cell(&s["id"])),
        ("address", cell(&s["address"])),
        ("status address", cell(&s["status_address"])),
        ("version", cell(&s["version"])),
        ("state", cell(&s["state"])),
        ("labels", cell(&s["labels"])),
        ("regions", cell(&s["region_count"])),
        ("leaders", cell(&s["leader_count"])),
        ("region size", size(&s["region_size"])),
        ("capacity", size(&s["capacity"])),
        ("available", size(&s["available"])),
        ("heartbeat ago", millis(&s["ms_since_heartbeat"])),
    ])
}

/// `GET regions`: one row per region, in key order.
pub fn regions(v: &Value) -> String {
    let mut t = Table::new(&[
        "ID",
        "START KEY",
        "END KEY",
        "VERSION",
        "CONF VER",
        "LEADER STORE",
        "PEER STORES",
        "SIZE",
        "KEYS",
    ]);
    let rows = list(&v["regions"]);
    for r in &rows {
        t.row(vec![
            cell(&r["id"]),
            start_key(&r["start_key"]),
            end_key(&r["end_key"]),
            cell(&r["epoch"]["version"]),
            cell(&r["epoch"]["conf-ver"]),
            cell(&r["leader"]["store-id"]),
            peer_stores(r),
            size(&r["approximate_size"]),
            cell(&r["approximate_keys"]),
        ]);
    }
    let mut text = t.render();
    let total = v["count"].as_u64().unwrap_or(rows.len() as u64);
    if total > rows.len() as u64 {
        text.push_str(&format!("\n(showing {} of {total} regions)", rows.len()));
    }
    text
}

/// `GET region/id/{id}` and `GET region/key/{key}`: one region.
pub fn region(r: &Value) -> String {
    let leader = &r["leader"];
    let leader = match leader["id"].as_u64() {
        Some(id) => format!("peer {id} on store {}", cell(&leader["store-id"])),
        None => "-".to_string(),
    };
    let peers: Vec<String> = list(&r["peers"])
        .iter()
        .map(|p| {
            let (id, store, role) = (cell(&p["id"]), cell(&p["store-id"]), cell(&p["role"]));
            format!("{id} on store {store} ({role})")
        })
        .collect();
    fields(&[
        ("id", cell(&r["id"])),
        ("start key", start_key(&r["start_key"])),
        ("end key", end_key(&r["end_key"])),
        ("start key hex", cell(&r["start_key_hex"])),
        ("end key hex", cell(&r["end_key_hex"])),
        ("version", cell(&r["epoch"]["version"])),
        ("conf ver", cell(&r["epoch"]["conf-ver"])),
        ("leader", leader),
        ("peers", peers.join(", ")),
        ("down peers", cell(&r["down_peers"])),
        ("pending peers", cell(&r["pending_peers"])),
        ("approximate size", size(&r["approximate_size"])),
        ("approximate keys", cell(&r["approximate_keys"])),
    ])
}

/// Store ids of a region's peers; a peer that is not a plain healthy
/// voter says what it is, since that is what an operator is waiting on.
fn peer_stores(r: &Value) -> String {
    let down = list(&r["down_peers"]);
    let pending = list(&r["pending_peers"]);
    list(&r["peers"])
        .iter()
        .map(|p| {
            let mut notes: Vec<String> = Vec::new();
            if p["role"].as_str().is_some_and(|role| role != "voter") {
                notes.push(cell(&p["role"]));
            }
            if down.contains(&p["id"]) {
                notes.push("down".into());
            }
            if pending.contains(&p["id"]) {
                notes.push("pending".into());
            }
            let store = cell(&p["store-id"]);
            if notes.is_empty() {
                store
            } else {
                format!("{store}({})", notes.join(","))
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `GET operators`: the running ones, then the recently ended ones.
pub fn operators(v: &Value) -> String {
    let running = list(&v["running"]);
    let recent = list(&v["recent"]);
    format!(
        "running ({}):\n{}\n\nrecently ended ({}):\n{}",
        running.len(),
        operator_table(&running),
        recent.len(),
        operator_table(&recent)
    )
}

fn operator_table(ops: &[Value]) -> String {
    if ops.is_empty() {
        return "none".to_string();
    }
    let mut t = Table::new(&["ID", "REGION", "KIND", "DESC", "STATUS", "STEP", "PLAN"]);
    for op in ops {
        t.row(operator_row(op));
    }
    t.render()
}

fn operator_row(op: &Value) -> Vec<String> {
    let steps = list(&op["steps"]);
    vec![
        cell(&op["id"]),
        cell(&op["region-id"]),
        cell(&op["kind"]),
        cell(&op["desc"]),
        status(&op["status"]),
        format!("{}/{}", cell(&op["current"]), steps.len()),
        steps.iter().map(step).collect::<Vec<_>>().join("; "),
    ]
}

/// `POST operators`: what PD accepted.
pub fn operator_created(v: &Value) -> String {
    let op = &v["operator"];
    if op.is_null() {
        // PD returns no operator when it already ended by the time it
        // answered (e.g. replaced at once).
        return "PD accepted the operator".to_string();
    }
    let row = operator_row(op);
    format!(
        "operator {} on region {}: {} ({}): {}",
        row[0], row[1], row[3], row[4], row[6]
    )
}

/// An operator's status: `running`, or `cancelled: why`.
fn status(v: &Value) -> String {
    match v.as_object().and_then(|m| m.iter().next()) {
        Some((name, why)) => format!("{name}: {}", cell(why)),
        None => cell(v),
    }
}

/// One step, e.g. `transfer-leader from_store=1 to_store=2`; split keys as
/// escaped text (PD sends them as byte arrays).
fn step(v: &Value) -> String {
    let Some((name, args)) = v.as_object().and_then(|m| m.iter().next()) else {
        return cell(v);
    };
    let Some(args) = args.as_object() else {
        return format!("{name} {}", cell(args));
    };
    let args: Vec<String> = args
        .iter()
        .map(|(k, a)| match k.as_str() {
            "keys" => format!("keys={}", split_keys(a)),
            _ => format!("{k}={}", cell(a)),
        })
        .collect();
    format!("{name} {}", args.join(" "))
}

fn split_keys(v: &Value) -> String {
    let keys: Vec<String> = list(v)
        .iter()
        .map(|k| {
            let raw: Vec<u8> = list(k)
                .iter()
                .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect();
            format!("\"{}\"", raw.escape_ascii())
        })
        .collect();
    format!("[{}]", keys.join(","))
}

/// `GET schedulers`: the active ones and the names PD knows.
pub fn schedulers(v: &Value) -> String {
    let mut t = Table::new(&["NAME", "STATE"]);
    for s in list(&v["schedulers"]) {
        let state = match s["paused-until-ms"].as_u64() {
            Some(until) => format!("paused (until PD clock {until} ms)"),
            None => "running".to_string(),
        };
        t.row(vec![cell(&s["name"]), state]);
    }
    format!(
        "{}\n\nknown: {}",
        t.render(),
        cell(&v["known"]).replace(',', ", ")
    )
}

/// `GET config`: TOML-like, `[section]` then `key = value`, so a line can
/// be pasted into PD's config file.
pub fn config(v: &Value) -> String {
    let Some(sections) = v.as_object() else {
        return cell(v);
    };
    sections
        .iter()
        .map(|(name, keys)| format!("[{name}]\n{}", config_lines(keys)))
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn config_lines(keys: &Value) -> String {
    match keys.as_object() {
        Some(map) => map
            .iter()
            .map(|(k, value)| format!("{k} = {value}"))
            .collect::<Vec<_>>()
            .join("\n"),
        None => keys.to_string(),
    }
}

/// `POST config`: the key as PD now holds it.
pub fn config_set(v: &Value, key: &str) -> String {
    format!("{key} = {}", v["schedule"][key])
}

fn list(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

fn start_key(v: &Value) -> String {
    key_or(v, "(-inf)")
}

fn end_key(v: &Value) -> String {
    key_or(v, "(+inf)")
}

/// A region bound: PD sends keys already escaped; the empty key means
/// unbounded on that side.
fn key_or(v: &Value, unbounded: &str) -> String {
    match v.as_str() {
        Some("") => unbounded.to_string(),
        _ => cell(v),
    }
}

/// A byte count; zero or absent as `-` (a store that has not reported its
/// disk yet says 0, which is not the same as a full disk).
fn size(v: &Value) -> String {
    match v.as_u64() {
        Some(n) if n > 0 => bytes(n),
        _ => "-".to_string(),
    }
}

fn millis(v: &Value) -> String {
    match v.as_u64() {
        Some(ms) => humantime::format_duration(std::time::Duration::from_millis(ms)).to_string(),
        None => "-".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn region_json() -> Value {
        json!({
            "id": 2, "start_key": "", "end_key": "k\\x01",
            "start_key_hex": "", "end_key_hex": "6b01",
            "epoch": {"conf-ver": 3, "version": 5},
            "peers": [
                {"id": 4, "store-id": 1, "role": "voter"},
                {"id": 9, "store-id": 2, "role": "learner"}
            ],
            "leader": {"id": 4, "store-id": 1, "role": "voter"},
            "down_peers": [], "pending_peers": [9],
            "approximate_size": 0, "approximate_keys": 0
        })
    }

    #[test]
    fn regions_show_bounds_epoch_and_peers() {
        let text = regions(&json!({"count": 3, "regions": [region_json()]}));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("ID  START KEY  END KEY"), "{text}");
        let row: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            row,
            [
                "2",
                "(-inf)",
                "k\\x01",
                "5",
                "3",
                "1",
                "1,2(learner,pending)",
                "-",
                "0"
            ]
        );
        assert_eq!(lines[2], "(showing 1 of 3 regions)");
        let one = region(&region_json());
        assert!(one.contains("leader:           peer 4 on store 1"), "{one}");
        assert!(
            one.contains("4 on store 1 (voter), 9 on store 2 (learner)"),
            "{one}"
        );
    }

    #[test]
    fn operator_steps_read_as_text() {
        let op = json!({
            "id": 7, "region-id": 2, "kind": "admin", "desc": "admin-split",
            "steps": [{"split-region": {"keys": [[107, 48, 10]]}}, "leave-joint"],
            "current": 1, "status": {"cancelled": "epoch changed"}
        });
        let text = operator_created(&json!({ "operator": op }));
        assert_eq!(
            text,
            "operator 7 on region 2: admin-split (cancelled: epoch changed): \
             split-region keys=[\"k0\\n\"]; leave-joint"
        );
    }

    #[test]
    fn config_reads_like_the_config_file() {
        let text = config(&json!({"schedule": {"max-replicas": 3, "max-store-down-time": "30m"}}));
        assert_eq!(
            text,
            "[schedule]\nmax-replicas = 3\nmax-store-down-time = \"30m\""
        );
    }
}
