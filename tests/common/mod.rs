//! Helpers for the end-to-end tests that run real `flotilla` processes:
//! free ports, a tiny HTTP/1.1 client, waits with deadlines, and a PD
//! process that is killed when dropped.
#![allow(dead_code)] // each test binary uses a different part of it

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub mod store;

pub const BIN: &str = env!("CARGO_BIN_EXE_flotilla");

/// A port no other part of this test process was given; see
/// [`flotilla::playground::free_port`].
pub fn free_port() -> u16 {
    flotilla::playground::free_port().expect("a free port")
}

/// A GET over HTTP/1.1; `None` if the server is not answering yet.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
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

/// Where a child process's stderr goes: a file under `$FLOTILLA_TEST_LOGS`
/// (named after the process and its port) when that is set, else nowhere.
/// Set it to read the logs of a failing run.
pub fn log_sink(name: &str, port: u16) -> Stdio {
    let Some(dir) = std::env::var_os("FLOTILLA_TEST_LOGS") else {
        return Stdio::null();
    };
    let path = Path::new(&dir).join(format!("{name}-{port}.log"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    Stdio::from(file)
}

pub fn wait_for(what: &str, deadline: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub struct Pd {
    pub child: Child,
    pub http: u16,
}

impl Pd {
    pub fn start(dir: &Path, ports: (u16, u16, u16)) -> Pd {
        Pd::start_with(dir, ports, &[])
    }

    /// Starts a one-member PD with extra flags.
    pub fn start_with(dir: &Path, ports: (u16, u16, u16), extra: &[&str]) -> Pd {
        let child = Command::new(BIN)
            .args(["pd", "--name", "solo", "--data-dir"])
            .arg(dir)
            .args(extra)
            .args(["--client-addr", &format!("127.0.0.1:{}", ports.0)])
            .args(["--peer-addr", &format!("127.0.0.1:{}", ports.1)])
            .args(["--http-addr", &format!("127.0.0.1:{}", ports.2)])
            .stdout(Stdio::null())
            .stderr(log_sink("pd", ports.0))
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

    pub fn terminate(mut self) -> std::process::ExitStatus {
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
