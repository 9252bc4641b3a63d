//! [`RawClient`]: the raw (non-transactional) key-value API.
//!
//! Every call routes by key through the region cache, sends to the
//! region's leader (or a follower, for follower reads), and retries within
//! its deadline as [`crate::retry`] describes. The calls live by kind:
//! single keys in `point`, batches in `batch`, ranges in `scan`; `combine`
//! turns concurrent single-key gets and puts into batches.

mod batch;
mod combine;
mod point;
mod scan;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::cache::{RegionCache, RegionRoute, Side};
use crate::config::Config;
use crate::conn::Connections;
use crate::error::Result;
use crate::pd::PdClient;
use crate::retry::{Call, Idempotence};
use crate::rpc::{self, Env, KvRequest, Target};

/// A client of a Flotilla cluster's raw key-value API.
///
/// Cheap to clone (clones share the region cache, the connections and the
/// PD client) and safe to use from many tasks at once. See the
/// [crate docs](crate) for a tour.
#[derive(Clone)]
pub struct RawClient {
    inner: Arc<Inner>,
    timeout: Duration,
}

impl std::fmt::Debug for RawClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawClient")
            .field("pd", &self.inner.pd)
            .field("timeout", &self.timeout)
            .field("cached_regions", &self.inner.cache.len())
            .finish()
    }
}

/// What the clones of one client share.
pub(crate) struct Inner {
    pd: PdClient,
    cache: RegionCache,
    conns: Connections,
    config: Config,
    /// Spreads follower reads over the replicas.
    next_replica: AtomicUsize,
    /// Queues of single-key calls sent as batches.
    combiner: combine::Combiner,
}

impl RawClient {
    /// Connects to the cluster whose PD members include `pd_endpoints`
    /// (`host:port`; any subset of the members will do). Fails if no PD
    /// leader answers within `config.pd.timeout`.
    pub async fn connect<S: AsRef<str>>(
        pd_endpoints: impl IntoIterator<Item = S>,
        config: Config,
    ) -> Result<RawClient> {
        let endpoints: Vec<String> = pd_endpoints
            .into_iter()
            .map(|s| s.as_ref().to_string())
            .collect();
        let pd = PdClient::connect(&endpoints, config.pd.clone()).await?;
        Ok(RawClient::with_pd(pd, config))
    }

    /// A client over an already connected PD client.
    pub fn with_pd(pd: PdClient, config: Config) -> RawClient {
        let inner = Inner {
            cache: RegionCache::new(pd.clone(), config.region_prefetch.max(1)),
            conns: Connections::new(config.connections_per_store, config.connect_timeout),
            pd,
            next_replica: AtomicUsize::new(0),
            combiner: combine::Combiner::default(),
            config,
        };
        RawClient {
            timeout: inner.config.timeout,
            inner: Arc::new(inner),
        }
    }

    /// A handle whose calls have `timeout` as their deadline instead of
    /// [`Config::timeout`]. It shares everything else with `self`.
    ///
    /// ```no_run
    /// # async fn f(client: flotilla_client::RawClient) -> flotilla_client::Result<()> {
    /// use std::time::Duration;
    /// let value = client.with_timeout(Duration::from_millis(200)).get("k").await?;
    /// # Ok(()) }
    /// ```
    pub fn with_timeout(&self, timeout: Duration) -> RawClient {
        RawClient {
            inner: self.inner.clone(),
            timeout,
        }
    }

    /// The deadline of this handle's calls.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The PD client underneath (cluster ID, members, regions, stores).
    pub fn pd(&self) -> &PdClient {
        &self.inner.pd
    }

    /// How many regions the cache holds (for diagnostics).
    pub fn cached_regions(&self) -> usize {
        self.inner.cache.len()
    }

    /// When a call made now must be done.
    fn deadline(&self) -> tokio::time::Instant {
        tokio::time::Instant::now() + self.timeout
    }

    fn call(&self, idempotence: Idempotence) -> Call {
        let c = &self.inner.config;
        Call::new(self.timeout, idempotence, c.backoff_base, c.backoff_max)
    }
}

impl Inner {
    fn env(&self) -> Env<'_> {
        Env {
            cache: &self.cache,
            conns: &self.conns,
            rpc_timeout: self.config.rpc_timeout,
        }
    }

    /// Where a request goes: reads to a follower when configured.
    fn target(&self, read: bool) -> Target {
        if read && self.config.follower_reads {
            Target::Replica(self.next_replica.fetch_add(1, Ordering::Relaxed))
        } else {
            Target::Leader
        }
    }

    /// Sends `req` to the region holding `key` (or, for `Side::Below`, the
    /// keys just below it), retrying within `call`. Returns the region
    /// that served it with the reply.
    async fn on_key<R: KvRequest>(
        &self,
        key: &[u8],
        side: Side,
        req: &R,
        read: bool,
        call: &mut Call,
    ) -> Result<(Arc<RegionRoute>, R::Response)> {
        loop {
            let failure = match self.cache.locate(key, side, call.deadline).await {
                Err(e) => Call::lookup_failure(e),
                Ok(route) => {
                    let (env, target) = (self.env(), self.target(read));
                    let sent = rpc::attempt(&env, &route, req.clone(), target, call.deadline);
                    match sent.await {
                        Ok(reply) => return Ok((route, reply)),
                        Err(f) => f,
                    }
                }
            };
            call.after(failure).await?;
        }
    }
}
