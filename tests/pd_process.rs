//! End to end with a real process: `flotilla pd` starts, elects itself,
//! serves its HTTP API and metrics, keeps its data across a restart, and
//! stops cleanly on SIGTERM.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_flotilla");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A GET over HTTP/1.1; `None` if the server is not answering yet.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    conn.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

fn wait_for(what: &str, deadline: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Pd {
    child: Child,
    http: u16,
}

impl Pd {
    fn start(dir: &Path, ports: (u16, u16, u16)) -> Pd {
        let child = Command::new(BIN)
            .args(["pd", "--name", "solo", "--data-dir"])
            .arg(dir)
            .args(["--client-addr", &format!("127.0.0.1:{}", ports.0)])
            .args(["--peer-addr", &format!("127.0.0.1:{}", ports.1)])
            .args(["--http-addr", &format!("127.0.0.1:{}", ports.2)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the flotilla binary starts");
        let pd = Pd {
            child,
            http: ports.2,
        };
        wait_for("the PD to serve as leader", Duration::from_secs(30), || {
            http_get(pd.http, "/health").is_some_and(|(_, b)| b.contains("\"serving_leader\":true"))
        });
        pd
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "PD did not exit on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Pd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
