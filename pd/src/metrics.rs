//! PD's Prometheus metrics (`flotilla_pd_*`), served at `/metrics`.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::cluster::Cluster;
use crate::schedule::{OpKind, StoreState};

/// Every PD metric, registered in one registry per member (so several
/// members in one test process do not collide).
pub struct Metrics {
    registry: Registry,
    /// Regions PD knows.
    pub regions: IntGauge,
    /// Stores by state.
    pub stores: IntGaugeVec,
    /// Operator events by kind and event (created, finished, ...).
    pub operators: IntCounterVec,
    /// Region heartbeats processed, by result.
    pub region_heartbeats: IntCounterVec,
    /// Store heartbeats processed.
    pub store_heartbeats: IntCounter,
    /// TSO requests served.
    pub tso_requests: IntCounter,
    /// Timestamps handed out.
    pub tso_timestamps: IntCounter,
    /// ID allocation requests served.
    pub id_requests: IntCounter,
    /// Times this member became a serving leader.
    pub leader_changes: IntCounter,
    /// 1 while this member is the serving leader.
    pub is_leader: IntGauge,
    /// Region records persisted.
    pub regions_persisted: IntCounter,
    /// gRPC request latency by method.
    pub grpc_duration: HistogramVec,
    /// Messages dropped because a bounded queue was full, by queue
    /// (`raft_input`: the Raft loop's inbox; `peer_link`: a link to another
    /// member; `heartbeat_stream`: operator steps pushed to a store).
    pub queue_drops: IntCounterVec,
    /// Operator counters as of the last export, to turn the controller's
    /// running totals into counter increments.
    last_operator_counts: parking_lot::Mutex<Vec<(String, &'static str, u64)>>,
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("metric names are valid");
    registry
        .register(Box::new(c.clone()))
        .expect("registered once");
    c
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("metric names are valid");
    registry
        .register(Box::new(g.clone()))
        .expect("registered once");
    g
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let stores = IntGaugeVec::new(
            Opts::new("flotilla_pd_stores", "Stores by state."),
            &["state"],
        )
        .expect("valid");
        registry
            .register(Box::new(stores.clone()))
            .expect("registered once");
        let operators = IntCounterVec::new(
            Opts::new(
                "flotilla_pd_operators_total",
                "Operator events by kind and event.",
            ),
            &["kind", "event"],
        )
        .expect("valid");
        registry
            .register(Box::new(operators.clone()))
            .expect("registered once");
        let region_heartbeats = IntCounterVec::new(
            Opts::new(
                "flotilla_pd_region_heartbeats_total",
                "Region heartbeats processed, by result.",
            ),
            &["result"],
        )
        .expect("valid");
        registry
            .register(Box::new(region_heartbeats.clone()))
            .expect("registered once");
        let grpc_duration = HistogramVec::new(
            HistogramOpts::new(
                "flotilla_pd_grpc_request_duration_seconds",
                "gRPC request latency.",
            )
            .buckets(prometheus::exponential_buckets(0.00005, 2.0, 18).expect("valid buckets")),
            &["method"],
        )
        .expect("valid");
        registry
            .register(Box::new(grpc_duration.clone()))
            .expect("registered once");
        let queue_drops = IntCounterVec::new(
            Opts::new(
                "flotilla_pd_queue_drops_total",
                "Messages dropped because a bounded queue was full, by queue.",
            ),
            &["queue"],
        )
        .expect("valid");
        registry
            .register(Box::new(queue_drops.clone()))
            .expect("registered once");
        Metrics {
            regions: gauge(&registry, "flotilla_pd_regions", "Regions PD knows."),
            store_heartbeats: counter(
                &registry,
                "flotilla_pd_store_heartbeats_total",
                "Store heartbeats processed.",
            ),
            tso_requests: counter(
                &registry,
                "flotilla_pd_tso_requests_total",
                "TSO requests served.",
            ),
            tso_timestamps: counter(
                &registry,
                "flotilla_pd_tso_timestamps_total",
                "Timestamps handed out.",
            ),
            id_requests: counter(
                &registry,
                "flotilla_pd_id_requests_total",
                "ID allocation requests served.",
            ),
            leader_changes: counter(
                &registry,
                "flotilla_pd_leader_changes_total",
                "Times this member became the serving leader.",
            ),
            is_leader: gauge(
                &registry,
                "flotilla_pd_is_leader",
                "1 while this member is the serving leader.",
            ),
            regions_persisted: counter(
                &registry,
                "flotilla_pd_regions_persisted_total",
                "Region records persisted.",
            ),
            stores,
            operators,
            region_heartbeats,
            grpc_duration,
            queue_drops,
            registry,
            last_operator_counts: parking_lot::Mutex::new(Vec::new()),
        }
    }

    /// Updates the gauges and operator counters from the leader's cluster.
    pub fn observe_cluster(&self, cluster: &Cluster) {
        self.regions.set(cluster.view.regions.len() as i64);
        for state in [
            StoreState::Up,
            StoreState::Disconnected,
            StoreState::Down,
            StoreState::Offline,
            StoreState::Tombstone,
        ] {
            let n = cluster
                .view
                .stores
                .values()
                .filter(|s| s.state == state)
                .count();
            self.stores
                .with_label_values(&[state_name(state)])
                .set(n as i64);
        }
        let mut last = self.last_operator_counts.lock();
        for (kind, c) in cluster.controller.counters() {
            let kind = kind_name(*kind);
            for (event, value) in [
                ("created", c.created),
                ("finished", c.finished),
                ("cancelled", c.cancelled),
                ("timed_out", c.timed_out),
                ("replaced", c.replaced),
                ("refused", c.refused),
            ] {
                let prev = last.iter_mut().find(|(k, e, _)| k == &kind && *e == event);
                let delta = match prev {
                    Some((_, _, seen)) => {
                        let d = value.saturating_sub(*seen);
                        *seen = value;
                        d
                    }
                    None => {
                        last.push((kind.clone(), event, value));
                        value
                    }
                };
                if delta > 0 {
                    self.operators
                        .with_label_values(&[kind.as_str(), event])
                        .inc_by(delta);
                }
            }
        }
    }

    /// Forgets the operator totals (a new leader's controller starts at 0).
    pub fn reset_operator_baseline(&self) {
        self.last_operator_counts.lock().clear();
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metrics.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

fn state_name(s: StoreState) -> &'static str {
    match s {
        StoreState::Up => "up",
        StoreState::Disconnected => "disconnected",
        StoreState::Down => "down",
        StoreState::Offline => "offline",
        StoreState::Tombstone => "tombstone",
    }
}

fn kind_name(k: OpKind) -> String {
    format!("{k:?}").to_lowercase()
}
