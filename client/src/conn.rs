//! gRPC connections to stores: a small pool per address, handed out round
//! robin. Connections are made lazily (on first use) and remake themselves
//! after a failure; a dead store costs a refused connect, not a hang.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flotilla_proto::kvrpcpb::kv_client::KvClient;
use tonic::transport::{Channel, Endpoint};

use crate::error::{Error, Result};

/// Largest message a store may send back: a 32 MiB reply plus framing.
const MAX_DECODE_BYTES: usize = 64 << 20;

/// `size` connections to one store.
struct Pool {
    clients: Vec<KvClient<Channel>>,
    next: AtomicUsize,
}

/// Connection pools by store address.
pub(crate) struct Connections {
    size: usize,
    connect_timeout: Duration,
    pools: Mutex<HashMap<String, Arc<Pool>>>,
}

impl Connections {
    pub(crate) fn new(size: usize, connect_timeout: Duration) -> Connections {
        Connections {
            size: size.max(1),
            connect_timeout,
            pools: Mutex::new(HashMap::new()),
        }
    }

    /// A client for the store at `addr` (`host:port`).
    pub(crate) fn get(&self, addr: &str) -> Result<KvClient<Channel>> {
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        let pool = match pools.get(addr) {
            Some(p) => p.clone(),
            None => {
                let pool = Arc::new(self.connect(addr)?);
                pools.insert(addr.to_string(), pool.clone());
                pool
            }
        };
        let i = pool.next.fetch_add(1, Ordering::Relaxed) % pool.clients.len();
        Ok(pool.clients[i].clone())
    }

    fn connect(&self, addr: &str) -> Result<Pool> {
        let url = if addr.contains("://") {
            addr.to_string()
        } else {
            format!("http://{addr}")
        };
        let endpoint = Endpoint::from_shared(url)
            .map_err(|e| Error::InvalidArgument(format!("bad store address {addr:?}: {e}")))?
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5));
        let clients = (0..self.size)
            .map(|_| {
                KvClient::new(endpoint.connect_lazy())
                    .max_decoding_message_size(MAX_DECODE_BYTES)
                    .max_encoding_message_size(MAX_DECODE_BYTES)
            })
            .collect();
        Ok(Pool {
            clients,
            next: AtomicUsize::new(0),
        })
    }
}
