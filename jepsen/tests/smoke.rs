//! The CI smoke of the fault harness: three scenarios of 60 s each (one per
//! workload) against a real cluster of processes, each of which must find
//! no anomaly after checking thousands of operations under the faults it
//! injected. The
//! scenarios run one at a time (a cluster each is all two cores take).

use std::process::Command;
use std::sync::Mutex;

use serde_json::Value;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn run(args: &[&str]) -> (i32, Value, String) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new(env!("CARGO_BIN_EXE_flotilla-jepsen"))
        .args(args)
        .output()
        .expect("running flotilla-jepsen");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), summary, stderr)
}

/// Runs `workload` for 60 s under `faults` (comma-separated) and expects a
/// clean result with each fault injected.
fn scenario(workload: &str, faults: &str) {
    let (code, summary, stderr) = run(&[
        "--workload",
        workload,
        "--nemesis",
        faults,
        "--duration",
        "60",
        "--interval",
        "4",
    ]);
    assert_eq!(code, 0, "{faults}: {stderr}");
    assert_eq!(
        summary["checked"]["verdict"], "linearizable",
        "{faults}: {summary}"
    );
    let checked = summary["checked"]["ops_checked"].as_u64().unwrap_or(0);
    assert!(
        checked >= 1000,
        "{faults}: only {checked} operations checked: {summary}"
    );
    let journal = summary["journal_events"].as_u64().unwrap_or(0);
    assert!(
        journal > 0,
        "{faults}: the stores' journals are empty: {summary}"
    );
    let mut total = 0;
    for fault in faults.split(',') {
        let injected = summary["faults"][fault].as_u64().unwrap_or(0);
        assert!(injected >= 1, "{fault} never injected: {summary}");
        total += injected;
    }
    assert!(total >= 3, "{faults}: only {total} faults: {summary}");
    assert_eq!(
        summary["liveness"]["unreadable_keys"], 0,
        "{faults}: {summary}"
    );
    eprintln!("{faults}: {}", stderr.lines().last().unwrap_or_default());
}

#[test]
fn registers_under_kill_and_crash_all_show_no_anomaly() {
    scenario("register", "kill,crash-all");
}

#[test]
fn a_job_queue_under_pause_shows_no_anomaly() {
    scenario("queue", "pause");
}

#[test]
fn a_set_under_partitions_shows_no_anomaly() {
    scenario("set", "partition");
}

#[test]
fn bad_arguments_get_one_clear_error() {
    let (code, _, stderr) = run(&["--nemesis", "flood"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown fault \"flood\""), "{stderr}");
    let (code, _, stderr) = run(&["--clients", "0", "--duration", "1"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("--clients and --keys must be positive"),
        "{stderr}"
    );
}
