//! Where each playground process listens.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};

/// A PD member's three ports on 127.0.0.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PdPorts {
    /// gRPC for clients and stores.
    pub client: u16,
    /// Raft between members.
    pub peer: u16,
    /// HTTP API, dashboard and metrics.
    pub http: u16,
}

/// A store's two ports on 127.0.0.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StorePorts {
    /// gRPC: the KV service and Raft between stores.
    pub grpc: u16,
    /// HTTP status and metrics.
    pub status: u16,
}

/// The ports [`free_port`] hands out: above the playground's defaults and
/// below Linux's ephemeral range (32768 up), so no outgoing connection of
/// any process can be holding one when a child goes to listen on it.
const FREE_LOW: u32 = 21_000;
const FREE_SPAN: u32 = 11_000;

/// A port on 127.0.0.1 that is free now and was not handed out before in
/// this process. (Asking the OS for port 0 can give the same port to two
/// callers in a row, and gives ephemeral ports that outgoing connections
/// may take before the child binds.) Each process starts at its own
/// offset, so concurrent processes rarely probe the same ports.
pub fn free_port() -> anyhow::Result<u16> {
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let start = std::process::id().wrapping_mul(7_919) % FREE_SPAN;
    let _ = NEXT.compare_exchange(u32::MAX, start, Ordering::SeqCst, Ordering::SeqCst);
    for _ in 0..FREE_SPAN {
        let port = (FREE_LOW + NEXT.fetch_add(1, Ordering::SeqCst) % FREE_SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    anyhow::bail!("no free port in {FREE_LOW}..{}", FREE_LOW + FREE_SPAN)
}

fn loopback(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

impl PdPorts {
    /// Member `i`'s default ports: 2379, 2380, 2381, plus 100 per member.
    pub fn default_for(i: usize) -> PdPorts {
        let base = 2379 + 100 * i as u16;
        PdPorts {
            client: base,
            peer: base + 1,
            http: base + 2,
        }
    }

    /// Three free ports.
    pub fn free() -> anyhow::Result<PdPorts> {
        Ok(PdPorts {
            client: free_port()?,
            peer: free_port()?,
            http: free_port()?,
        })
    }

    /// `127.0.0.1:<client>`.
    pub fn client_addr(&self) -> String {
        loopback(self.client)
    }

    /// `127.0.0.1:<peer>`.
    pub fn peer_addr(&self) -> String {
        loopback(self.peer)
    }

    /// `127.0.0.1:<http>`.
    pub fn http_addr(&self) -> String {
        loopback(self.http)
    }
}

impl StorePorts {
    /// Store `i`'s default ports: 20160 + i and 20180 + i.
    pub fn default_for(i: usize) -> StorePorts {
        StorePorts {
            grpc: 20160 + i as u16,
            status: 20180 + i as u16,
        }
    }

    /// Two free ports.
    pub fn free() -> anyhow::Result<StorePorts> {
        Ok(StorePorts {
            grpc: free_port()?,
            status: free_port()?,
        })
    }

    /// `127.0.0.1:<grpc>`.
    pub fn addr(&self) -> String {
        loopback(self.grpc)
    }

    /// `127.0.0.1:<status>`.
    pub fn status_addr(&self) -> String {
        loopback(self.status)
    }
}
