//! The harness's self-test: with a bug planted in the stores (a test-only
//! build switch, `planted-bugs`, and `FLOTILLA_PLANTED_BUG`), a scenario
//! must find anomalies. A harness that passes a broken store proves
//! nothing about a sound one.
//!
//! `ack-before-persist` (the stores acknowledge what a kill then loses) is
//! caught here by `crash-all`. The planted lease and epoch bugs need a
//! narrower timing than random faults hit in a short run; the store's
//! in-process scenario tests catch them (`store/tests/regressions.rs`).
#![cfg(feature = "planted-bugs")]

use std::process::Command;

use serde_json::Value;

/// Runs a scenario with `bug` planted; returns the exit code and summary.
fn run_planted(bug: &str, args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_flotilla-jepsen"))
        .args(args)
        .env("FLOTILLA_PLANTED_BUG", bug)
        .output()
        .expect("running flotilla-jepsen");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let summary =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), summary, stderr)
}

#[test]
fn acknowledging_before_persisting_is_caught_by_crash_all() {
    let (code, summary, stderr) = run_planted(
        "ack-before-persist",
        &[
            "--nemesis",
            "crash-all",
            "--duration",
            "30",
            "--interval",
            "3",
        ],
    );
    assert_eq!(code, 1, "the planted bug went unnoticed: {stderr}");
    let a = &summary["anomalies"];
    let found = ["lost_ack_write", "non_linearizable_keys", "split_brain"]
        .iter()
        .map(|k| a[k].as_u64().unwrap_or(0))
        .sum::<u64>();
    assert!(found > 0, "exit 1 without a safety anomaly: {summary}");
    // Keep the failing cluster's directory out of /tmp.
    if let Some(dir) = summary["data_dir"].as_str() {
        let _ = std::fs::remove_dir_all(dir);
    }
    eprintln!(
        "ack-before-persist caught: {}",
        stderr
            .lines()
            .find(|l| l.starts_with("register/"))
            .unwrap_or_default()
    );
}
