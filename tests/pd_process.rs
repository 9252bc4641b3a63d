//! End to end with a real process: `flotilla pd` starts, elects itself,
//! serves its HTTP API and metrics, keeps its data across a restart, and
//! stops cleanly on SIGTERM.

mod common;

use std::process::Command;

use common::*;

#[test]
fn pd_serves_restarts_with_its_data_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let ports = (free_port(), free_port(), free_port());
    let pd = Pd::start(dir.path(), ports);

    let (status, members) = http_get(pd.http, "/pd/api/v1/members").unwrap();
    assert_eq!(status, 200, "{members}");
    let cluster_id = members
        .split("\"cluster_id\":")
        .nth(1)
        .and_then(|rest| rest.split([',', '}']).next())
        .expect("members carry the cluster ID")
        .to_string();
    assert_ne!(cluster_id, "0");
    let (_, metrics) = http_get(pd.http, "/metrics").unwrap();
    assert!(metrics.contains("flotilla_pd_is_leader 1"), "{metrics}");
    // Every bounded queue reports its drops, from zero.
    for queue in ["raft_input", "peer_link"] {
        let line = format!("flotilla_pd_queue_drops_total{{queue=\"{queue}\"}} 0");
        assert!(metrics.contains(&line), "missing {line:?} in:\n{metrics}");
    }
    let (_, dashboard) = http_get(pd.http, "/").unwrap();
    assert!(dashboard.contains("Flotilla placement driver"));
    let (status, _) = http_get(pd.http, "/pd/api/v1/region/id/42").unwrap();
    assert_eq!(status, 404);

    assert!(pd.terminate().success(), "SIGTERM is a clean stop");

    // Same data directory: same cluster.
    let pd = Pd::start(dir.path(), ports);
    let (_, members) = http_get(pd.http, "/pd/api/v1/members").unwrap();
    assert!(
        members.contains(&format!("\"cluster_id\":{cluster_id}")),
        "{members}"
    );
    assert!(pd.terminate().success());
}

#[test]
fn print_default_config_and_bad_flags() {
    let out = Command::new(BIN)
        .args(["pd", "--print-default-config"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for key in [
        "client-addr = \"127.0.0.1:2379\"",
        "max-replicas = 3",
        "max-store-down-time = \"30m\"",
    ] {
        assert!(text.contains(key), "missing {key:?} in:\n{text}");
    }
    let out = Command::new(BIN)
        .args(["pd", "--max-store-down-time", "soon"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("max-store-down-time"), "{err}");
}
