//! How a [`RawClient`](crate::RawClient) times, retries, connects and
//! reads: [`Config`] and its builder.

use std::time::Duration;

use crate::pd::PdClientConfig;

/// The client's settings. Build one with [`Config::builder`], or take
/// [`Config::default`].
#[derive(Clone, Debug)]
pub struct Config {
    /// Deadline of one call, retries included (default 10 s). A call can
    /// override it: [`RawClient::with_timeout`](crate::RawClient::with_timeout).
    pub timeout: Duration,
    /// Deadline of one RPC attempt to a store (default 5 s): a hung store
    /// costs this much before the client tries again elsewhere.
    pub rpc_timeout: Duration,
    /// Deadline of one TCP connect to a store (default 1 s).
    pub connect_timeout: Duration,
    /// First backoff delay after a retryable failure (default 10 ms).
    pub backoff_base: Duration,
    /// Largest backoff delay (default 500 ms).
    pub backoff_max: Duration,
    /// gRPC connections per store (default 2). Each is one HTTP/2
    /// connection carrying many concurrent requests; more spread the
    /// load over more sockets and server threads.
    pub connections_per_store: usize,
    /// Most requests a batch call or a region-crossing delete sends at
    /// once (default 16).
    pub batch_concurrency: usize,
    /// Regions fetched from PD per cache miss, the missing one and those
    /// after it (default 32): a scan or batch over a cold cache costs one
    /// PD round trip per this many regions.
    pub region_prefetch: u32,
    /// Serve reads from followers, spread over a region's voters, after a
    /// ReadIndex round with the leader (default off). Still linearizable;
    /// moves read work off the leaders, at the cost of one more round
    /// trip inside the cluster.
    pub follower_reads: bool,
    /// Send concurrent `get`s (and `put`s) as batches (default on): a call
    /// joins a queue, and whatever queued up while the previous batch was
    /// being sent goes out as one request per region — one gRPC request
    /// and, for puts, one Raft entry for many calls. A lone call is sent
    /// at once; results and errors are per call as without it.
    pub combine_calls: bool,
    /// How the embedded PD client times and retries its calls.
    pub pd: PdClientConfig,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            timeout: Duration::from_secs(10),
            rpc_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(1),
            backoff_base: Duration::from_millis(10),
            backoff_max: Duration::from_millis(500),
            connections_per_store: 2,
            batch_concurrency: 16,
            region_prefetch: 32,
            follower_reads: false,
            combine_calls: true,
            pd: PdClientConfig::default(),
        }
    }
}

impl Config {
    /// A builder starting from the defaults.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder {
            config: Config::default(),
        }
    }
}

/// Builds a [`Config`]:
///
/// ```
/// use std::time::Duration;
/// let config = flotilla_client::Config::builder()
///     .timeout(Duration::from_secs(3))
///     .connections_per_store(4)
///     .follower_reads(true)
///     .build();
/// assert_eq!(config.timeout, Duration::from_secs(3));
/// ```
#[derive(Clone, Debug)]
pub struct ConfigBuilder {
    config: Config,
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty),* $(,)?) => {$(
        $(#[$doc])*
        pub fn $name(mut self, value: $ty) -> ConfigBuilder {
            self.config.$name = value;
            self
        }
    )*};
}

impl ConfigBuilder {
    setters! {
        /// See [`Config::timeout`].
        timeout: Duration,
        /// See [`Config::rpc_timeout`].
        rpc_timeout: Duration,
        /// See [`Config::connect_timeout`].
        connect_timeout: Duration,
        /// See [`Config::backoff_base`].
        backoff_base: Duration,
        /// See [`Config::backoff_max`].
        backoff_max: Duration,
        /// See [`Config::connections_per_store`] (at least 1).
        connections_per_store: usize,
        /// See [`Config::batch_concurrency`] (at least 1).
        batch_concurrency: usize,
        /// See [`Config::region_prefetch`] (at least 1).
        region_prefetch: u32,
        /// See [`Config::follower_reads`].
        follower_reads: bool,
        /// See [`Config::combine_calls`].
        combine_calls: bool,
        /// See [`Config::pd`].
        pd: PdClientConfig,
    }

    /// The config; counts of zero are raised to one.
    pub fn build(self) -> Config {
        let mut c = self.config;
        c.connections_per_store = c.connections_per_store.max(1);
        c.batch_concurrency = c.batch_concurrency.max(1);
        c.region_prefetch = c.region_prefetch.max(1);
        c
    }
}
