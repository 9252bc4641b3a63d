//! `flotilla ctl` against real processes: one PD (`--max-replicas 1`) and
//! one store, administered by running `flotilla ctl` as a subprocess —
//! lists for people and JSON for scripts, a split that really splits, a
//! config change PD keeps, and failures that print one line and exit
//! non-zero (a refused operator, an unreachable PD).

mod common;

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::store::StoreProc;
use common::*;
use serde_json::Value;

/// Longest one `ctl` run may take; its own deadline is 10 s at most.
const RUN_LIMIT: Duration = Duration::from_secs(30);

/// How long a cluster change (bootstrap, split) may take to show in PD.
const CHANGE_LIMIT: Duration = Duration::from_secs(60);

/// What one `flotilla ctl` run did.
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self, what: &str) -> Run {
        assert!(
            self.status.success(),
            "{what} failed ({}): {}",
            self.status,
            self.stderr
        );
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

/// Runs `flotilla ctl --pd <pd> <args>`, killed (and the test failed) if
/// it outlives [`RUN_LIMIT`].
fn ctl(pd: &str, args: &[&str]) -> Run {
    let mut child = Command::new(BIN)
        .args(["ctl", "--pd", pd])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the flotilla binary starts");
    // Drained on threads so a chatty run cannot block on a full pipe.
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`flotilla ctl {}` ran over {RUN_LIMIT:?}", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    })
}

/// Asserts a failed run: non-zero exit, nothing on stdout, and exactly one
/// line on stderr in `main`'s format, which is returned.
fn assert_one_line_failure(run: &Run) -> String {
    assert!(!run.status.success(), "expected a failure: {}", run.stdout);
    assert!(run.stdout.is_empty(), "stdout: {}", run.stdout);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "stderr: {}", run.stderr);
    assert!(lines[0].starts_with("flotilla: "), "stderr: {}", run.stderr);
    lines[0].to_string()
}

/// The regions PD lists, once every one of them has a leader.
fn regions_with_leaders(pd: &str) -> Option<Vec<Value>> {
    let run = ctl(pd, &["regions", "--compact"]);
    let regions = run.status.success().then(|| run.json())?["regions"]
        .as_array()
        .cloned()?;
    let led = !regions.is_empty() && regions.iter().all(|r| !r["leader"].is_null());
    led.then_some(regions)
}

#[test]
fn ctl_administers_a_live_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let ports = (free_port(), free_port(), free_port());
    let _pd = Pd::start_with(&dir.path().join("pd"), ports, &["--max-replicas", "1"]);
    let store = StoreProc::start(&dir.path().join("store"), ports.0, None);
    let pd = format!("127.0.0.1:{}", ports.0);
    let mut regions = Vec::new();
    wait_for("the first region and its leader", CHANGE_LIMIT, || {
        regions = regions_with_leaders(&pd).unwrap_or_default();
        !regions.is_empty()
    });

    check_members_and_stores(&pd, store.addr);
    let region_id = check_region_for_key(&pd);
    check_split(&pd, regions.len());
    check_config(&pd);
    check_schedulers(&pd);

    let refused = ctl(&pd, &["transfer-leader", &region_id.to_string(), "999999"]);
    let line = assert_one_line_failure(&refused);
    assert!(line.contains("999999"), "{line}");
}

fn check_members_and_stores(pd: &str, store_port: u16) {
    let members = ctl(pd, &["members"]).ok("members");
    assert!(members.stdout.contains("solo"), "{}", members.stdout);
    assert!(members.stdout.contains("leader"), "{}", members.stdout);

    let stores = ctl(pd, &["stores"]).ok("stores");
    let address = format!("127.0.0.1:{store_port}");
    let row = stores
        .stdout
        .lines()
        .find(|l| l.contains(&address))
        .unwrap_or_else(|| panic!("no row for {address}: {}", stores.stdout));
    assert!(row.split_whitespace().any(|c| c == "up"), "{row}");

    let listed = ctl(pd, &["stores", "--json"]).ok("stores --json").json();
    let id = listed["stores"][0]["id"].as_u64().expect("a store id");
    let one = ctl(pd, &["store", &id.to_string()]).ok("store");
    assert!(one.stdout.contains(&address), "{}", one.stdout);
}

/// `region-for-key` answers in both forms; returns the region's id.
fn check_region_for_key(pd: &str) -> u64 {
    let text = ctl(pd, &["region-for-key", "some/key ?%"]).ok("region-for-key");
    assert!(text.stdout.starts_with("id:"), "{}", text.stdout);
    let json = ctl(pd, &["region-for-key", "some/key ?%", "--json"])
        .ok("region-for-key --json")
        .json();
    json["id"].as_u64().expect("a region id")
}

/// `split` makes one more region, starting at the key.
fn check_split(pd: &str, before: usize) {
    let split = ctl(pd, &["split", "key050"]).ok("split");
    assert!(split.stdout.contains("split"), "{}", split.stdout);
    wait_for("the split to show in PD", CHANGE_LIMIT, || {
        regions_with_leaders(pd).is_some_and(|r| r.len() > before)
    });
    let region = ctl(pd, &["region-for-key", "key050", "--json"])
        .ok("region-for-key")
        .json();
    assert_eq!(region["start_key"], "key050", "{region}");

    let again = ctl(pd, &["split", "key050"]);
    let line = assert_one_line_failure(&again);
    assert!(line.contains("already starts region"), "{line}");
}

/// `config set` converts numbers and keeps durations as text; PD keeps both.
fn check_config(pd: &str) {
    let set = ctl(pd, &["config", "set", "leader-schedule-limit", "9"]).ok("config set");
    assert_eq!(set.stdout.trim(), "leader-schedule-limit = 9");
    ctl(pd, &["config", "set", "max-store-down-time", "45m"]).ok("config set");
    let config = ctl(pd, &["config", "--json"]).ok("config --json").json();
    assert_eq!(config["schedule"]["leader-schedule-limit"], 9, "{config}");
    assert_eq!(config["schedule"]["max-store-down-time"], "45m", "{config}");

    let bad = ctl(pd, &["config", "set", "max-replicas", "0"]);
    let line = assert_one_line_failure(&bad);
    assert!(line.contains("max-replicas"), "{line}");
}

fn check_schedulers(pd: &str) {
    let list = ctl(pd, &["schedulers"]).ok("schedulers");
    assert!(list.stdout.contains("balance-region"), "{}", list.stdout);
    let json = ctl(pd, &["schedulers", "--json"])
        .ok("schedulers --json")
        .json();
    assert!(
        json["known"].as_array().is_some_and(|k| !k.is_empty()),
        "{json}"
    );
}

#[test]
fn ctl_fails_with_one_line_when_pd_is_unreachable() {
    let nobody = format!("127.0.0.1:{}", free_port());
    let start = Instant::now();
    let run = ctl(&nobody, &["--timeout", "2s", "members"]);
    let line = assert_one_line_failure(&run);
    assert!(line.contains(&nobody), "{line}");
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "took {:?} to give up",
        start.elapsed()
    );
}
