//! The store's Prometheus metrics (`flotilla_store_*`), served at
//! `/metrics` on the status address. One registry per store, so several
//! stores in one test process do not collide.

use prometheus::{
    Counter, Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    Opts, Registry, TextEncoder,
};

/// Every store metric.
pub struct StoreMetrics {
    registry: Registry,
    /// Proposals accepted by a leader.
    pub proposals: IntCounter,
    /// Time to hand one proposal to Raft.
    pub propose_duration: Histogram,
    /// Duration of each round's log write (with its fsync, when needed).
    pub persist_duration: Histogram,
    /// Regions whose log or hard state one round's write carried.
    pub persist_batch_regions: Histogram,
    /// Log entries one round's write carried.
    pub persist_batch_entries: Histogram,
    /// From proposal to the write's answer (commit and apply).
    pub write_duration: Histogram,
    /// Duration of one apply batch's write.
    pub apply_duration: Histogram,
    /// Raft messages sent, by type.
    pub messages_sent: ByType,
    /// Raft messages received, by type.
    pub messages_received: ByType,
    /// Messages per batch sent to one store.
    pub send_batch_size: Histogram,
    /// Messages dropped because a link's queue was full or the store was
    /// unreachable.
    pub messages_dropped: IntCounter,
    /// Regions (peers) on this store.
    pub regions: IntGauge,
    /// Regions this store leads.
    pub leaders: IntGauge,
    /// Regions hibernating (left out of the store-wide tick).
    pub hibernated: IntGauge,
    /// Stores this store shares regions with and has not heard from for
    /// an election timeout.
    pub unreachable_stores: IntGauge,
    /// Snapshot events: generated, sent, received, applied, failed.
    pub snapshots: IntCounterVec,
    /// Splits carried out.
    pub splits: IntCounter,
    /// Reads served under the leader lease.
    pub lease_reads: IntCounter,
    /// Reads that needed a ReadIndex round.
    pub read_index_reads: IntCounter,
    /// KV requests by method and outcome (ok, region_error,
    /// invalid_argument, busy).
    pub kv_requests: IntCounterVec,
    /// KV request latency by method.
    pub kv_duration: HistogramVec,
    /// Live data size of the RocksDB, in bytes (sampled).
    pub engine_size: IntGauge,
    /// 1 while RocksDB stalls writes (sampled).
    pub write_stall: IntGauge,
    /// The process's CPU time, brought up to date at each scrape.
    cpu_seconds: Counter,
}

fn register<M: prometheus::core::Collector + Clone + 'static>(registry: &Registry, m: M) -> M {
    registry
        .register(Box::new(m.clone()))
        .expect("metrics are registered once");
    m
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    register(r, IntCounter::new(name, help).expect("valid metric"))
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    register(r, IntGauge::new(name, help).expect("valid metric"))
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register(
        r,
        IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
    )
}

fn seconds(r: &Registry, name: &str, help: &str) -> Histogram {
    let buckets = prometheus::exponential_buckets(0.000_05, 2.0, 18).expect("valid buckets");
    register(
        r,
        Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets)).expect("valid"),
    )
}

fn counts(r: &Registry, name: &str, help: &str) -> Histogram {
    let buckets = prometheus::exponential_buckets(1.0, 2.0, 14).expect("valid buckets");
    register(
        r,
        Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets)).expect("valid"),
    )
}

impl StoreMetrics {
    /// Creates and registers every metric.
    pub fn new() -> StoreMetrics {
        let r = Registry::new();
        let kv_duration = register(
            &r,
            HistogramVec::new(
                HistogramOpts::new(
                    "flotilla_store_kv_request_duration_seconds",
                    "KV request latency by method.",
                )
                .buckets(prometheus::exponential_buckets(0.000_05, 2.0, 18).expect("valid")),
                &["method"],
            )
            .expect("valid"),
        );
        StoreMetrics {
            proposals: counter(
                &r,
                "flotilla_store_proposals_total",
                "Proposals accepted by a leader.",
            ),
            propose_duration: seconds(
                &r,
                "flotilla_store_propose_duration_seconds",
                "Time to hand one proposal to Raft.",
            ),
            persist_duration: seconds(
                &r,
                "flotilla_store_log_persist_duration_seconds",
                "Duration of a round's log write, fsync included.",
            ),
            persist_batch_regions: counts(
                &r,
                "flotilla_store_log_persist_batch_regions",
                "Regions in one round's log write.",
            ),
            persist_batch_entries: counts(
                &r,
                "flotilla_store_log_persist_batch_entries",
                "Log entries in one round's log write.",
            ),
            write_duration: seconds(
                &r,
                "flotilla_store_write_commit_apply_duration_seconds",
                "From proposal to the applied write's answer.",
            ),
            apply_duration: seconds(
                &r,
                "flotilla_store_apply_write_duration_seconds",
                "Duration of one apply batch's write.",
            ),
            messages_sent: ByType::new(counter_vec(
                &r,
                "flotilla_store_raft_messages_sent_total",
                "Raft messages sent, by type.",
                &["type"],
            )),
            messages_received: ByType::new(counter_vec(
                &r,
                "flotilla_store_raft_messages_received_total",
                "Raft messages received, by type.",
                &["type"],
            )),
            send_batch_size: counts(
                &r,
                "flotilla_store_raft_send_batch_messages",
                "Messages per batch sent to one store.",
            ),
            messages_dropped: counter(
                &r,
                "flotilla_store_raft_messages_dropped_total",
                "Raft messages dropped (queue full or store unreachable).",
            ),
            regions: gauge(&r, "flotilla_store_regions", "Regions on this store."),
            leaders: gauge(&r, "flotilla_store_leaders", "Regions this store leads."),
            hibernated: gauge(
                &r,
                "flotilla_store_hibernated_regions",
                "Regions hibernating (left out of the store-wide tick).",
            ),
            unreachable_stores: gauge(
                &r,
                "flotilla_store_unreachable_stores",
                "Stores sharing regions with this one, silent for an election timeout.",
            ),
            snapshots: counter_vec(
                &r,
                "flotilla_store_snapshots_total",
                "Snapshot events: generated, sent, received, applied, failed.",
                &["event"],
            ),
            splits: counter(&r, "flotilla_store_splits_total", "Splits carried out."),
            lease_reads: counter(
                &r,
                "flotilla_store_lease_reads_total",
                "Reads served under the leader lease.",
            ),
            read_index_reads: counter(
                &r,
                "flotilla_store_read_index_reads_total",
                "Reads that needed a ReadIndex round.",
            ),
            kv_requests: counter_vec(
                &r,
                "flotilla_store_kv_requests_total",
                "KV requests by method and outcome.",
                &["method", "outcome"],
            ),
            kv_duration,
            engine_size: gauge(
                &r,
                "flotilla_store_engine_live_data_bytes",
                "Live data size of the RocksDB.",
            ),
            write_stall: gauge(
                &r,
                "flotilla_store_engine_write_stall",
                "1 while RocksDB stalls writes.",
            ),
            cpu_seconds: register(
                &r,
                Counter::new(
                    "process_cpu_seconds_total",
                    "User and system CPU time of the store's process, in seconds (µs resolution).",
                )
                .expect("valid metric"),
            ),
            registry: r,
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let cpu = process_cpu_seconds();
        self.cpu_seconds
            .inc_by((cpu - self.cpu_seconds.get()).max(0.0));
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// User plus system CPU time this process used, in seconds.
fn process_cpu_seconds() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage only writes the struct it is given, which is
    // zero-initialized (a valid rusage) and outlives the call.
    let usage = unsafe {
        if libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) != 0 {
            return 0.0;
        }
        usage.assume_init()
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

impl Default for StoreMetrics {
    fn default() -> Self {
        StoreMetrics::new()
    }
}

/// The metric labels of raftcore message types, in [`label_index`] order.
const MESSAGE_LABELS: [&str; 8] = [
    "append",
    "append_response",
    "heartbeat",
    "heartbeat_response",
    "snapshot",
    "vote",
    "vote_response",
    "other",
];

/// Where a message type's label sits in [`MESSAGE_LABELS`].
fn label_index(t: raftcore::MessageType) -> usize {
    use raftcore::MessageType::*;
    match t {
        Append => 0,
        AppendResponse => 1,
        Heartbeat => 2,
        HeartbeatResponse => 3,
        Snapshot => 4,
        Vote | PreVote => 5,
        VoteResponse | PreVoteResponse => 6,
        _ => 7,
    }
}

/// A counter per Raft message type, resolved once (counting a message is
/// then one atomic add, not a label lookup).
pub struct ByType {
    counters: Vec<IntCounter>,
}

impl ByType {
    fn new(vec: IntCounterVec) -> ByType {
        ByType {
            counters: MESSAGE_LABELS
                .iter()
                .map(|l| vec.with_label_values(&[*l]))
                .collect(),
        }
    }

    /// Counts one message of type `t`.
    pub fn inc(&self, t: raftcore::MessageType) {
        self.counters[label_index(t)].inc();
    }
}
