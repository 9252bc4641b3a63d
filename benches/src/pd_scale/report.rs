//! The benchmark's results: a human-readable summary and one JSON line.

use std::fmt::Write as _;
use std::time::Duration;

use super::route::RouteResult;
use super::Params;

/// The target for heartbeat throughput.
pub const TARGET_HEARTBEATS_PER_SEC: f64 = 50_000.0;
/// The target for `GetRegion` p99 latency, in microseconds.
pub const TARGET_P99_US: f64 = 1000.0;

/// What one heartbeat phase measured.
pub struct HeartbeatResult {
    /// Heartbeats PD processed (and accepted) in the window.
    pub processed: f64,
    /// Region records PD persisted in the window.
    pub persisted: f64,
    /// The window, between PD's two counter readings.
    pub elapsed: Duration,
    /// Heartbeats the stores queued over the whole phase, warm-up included.
    pub sent: u64,
    /// Of those, how many PD had not processed when the window closed.
    pub backlog: f64,
    /// How long PD took to process that backlog after sending stopped.
    pub drain: Duration,
    /// Operator steps PD sent back over the whole phase.
    pub commands: u64,
    /// The routing clients running in the window (mixed phase).
    pub routing: Option<RouteResult>,
}

impl HeartbeatResult {
    /// Heartbeats PD processed per second.
    pub fn heartbeats_per_sec(&self) -> f64 {
        self.processed / self.elapsed.as_secs_f64()
    }

    /// Region records PD persisted per second.
    pub fn persisted_per_sec(&self) -> f64 {
        self.persisted / self.elapsed.as_secs_f64()
    }
}

/// Everything a run measured, with its parameters.
pub struct Report {
    /// The parameters.
    pub params: Params,
    /// Regions whose leader moved every round.
    pub churning_regions: usize,
    /// Seconds from the first creating heartbeat until PD had processed
    /// them all.
    pub create_secs: f64,
    /// The heartbeat phase.
    pub heartbeats: HeartbeatResult,
    /// One routing phase per concurrency.
    pub routes: Vec<RouteResult>,
    /// The mixed phase, unless skipped.
    pub mixed: Option<HeartbeatResult>,
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "MISSED"
    }
}

fn route_line(r: &RouteResult) -> String {
    format!(
        "p50 {:.0} us, p99 {:.0} us, p99.9 {:.0} us, max {:.0} us; {:.0} ops/s, {} errors{}",
        r.quantile_us(0.50),
        r.quantile_us(0.99),
        r.quantile_us(0.999),
        r.max_us(),
        r.ops_per_sec(),
        r.errors,
        r.first_error
            .as_ref()
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default(),
    )
}

fn heartbeat_line(h: &HeartbeatResult) -> String {
    format!(
        "{:.0}/s processed by PD ({:.0} in {:.2} s), {:.0} region records persisted/s; \
         {} sent, backlog {:.0} drained in {:.2} s; {} operator steps received",
        h.heartbeats_per_sec(),
        h.processed,
        h.elapsed.as_secs_f64(),
        h.persisted_per_sec(),
        h.sent,
        h.backlog,
        h.drain.as_secs_f64(),
        h.commands,
    )
}

impl Report {
    /// The parameters, one line.
    pub fn params_line(&self) -> String {
        let p = &self.params;
        format!(
            "PD {}; regions {}, stores {}, batch {}, duration {} s (warm-up {} s), \
             concurrency {:?} over {} connection(s), route duration {} s, mixed duration {} s \
             at {} heartbeats/s offered, leader churn {}% ({} regions), seed {}",
            match &p.pd {
                Some(addr) => format!("at {addr}"),
                None => "in-process".into(),
            },
            p.regions,
            p.stores,
            p.batch,
            p.duration,
            p.warmup,
            p.concurrency,
            p.connections,
            p.route_duration,
            p.mixed_duration,
            match p.mixed_rate {
                r if r > 0.0 => format!("{r}"),
                _ => "unpaced".into(),
            },
            p.leader_churn_pct,
            self.churning_regions,
            p.seed
        )
    }

    /// The human-readable summary.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "pd-scale: {}", self.params_line());
        let _ = writeln!(
            s,
            "  create:      {} regions in {:.1} s (routable and persisted)",
            self.params.regions, self.create_secs
        );
        let hb = &self.heartbeats;
        let _ = writeln!(
            s,
            "  heartbeats:  {}  [target >= {TARGET_HEARTBEATS_PER_SEC:.0}/s: {}]",
            heartbeat_line(hb),
            verdict(hb.heartbeats_per_sec() >= TARGET_HEARTBEATS_PER_SEC)
        );
        for r in &self.routes {
            let _ = writeln!(
                s,
                "  GetRegion x{}: {}  [target p99 < {TARGET_P99_US:.0} us: {}]",
                r.concurrency,
                route_line(r),
                verdict(r.quantile_us(0.99) < TARGET_P99_US)
            );
        }
        if let Some(m) = &self.mixed {
            let _ = writeln!(s, "  mixed:       heartbeats {}", heartbeat_line(m));
            if let Some(r) = &m.routing {
                let _ = writeln!(
                    s,
                    "               GetRegion x{} meanwhile: {}",
                    r.concurrency,
                    route_line(r)
                );
            }
        }
        s
    }

    /// The results as one line of JSON.
    pub fn json(&self) -> String {
        let p = &self.params;
        let mut s = String::from("{");
        let _ = write!(
            s,
            "\"pd\":{},\"regions\":{},\"stores\":{},\"batch\":{},\"duration_s\":{},\
             \"warmup_s\":{},\"connections\":{},\"route_duration_s\":{},\
             \"mixed_duration_s\":{},\"mixed_rate\":{},\"leader_churn_pct\":{},\"churning_regions\":{},\"seed\":{},\"create_s\":{:.3},",
            match &p.pd {
                Some(addr) => format!("\"{}\"", addr.replace(['"', '\\'], "")),
                None => "\"in-process\"".into(),
            },
            p.regions,
            p.stores,
            p.batch,
            p.duration,
            p.warmup,
            p.connections,
            p.route_duration,
            p.mixed_duration,
            p.mixed_rate,
            p.leader_churn_pct,
            self.churning_regions,
            p.seed,
            self.create_secs
        );
        let _ = write!(s, "\"heartbeats\":{},", heartbeat_json(&self.heartbeats));
        let routes: Vec<String> = self.routes.iter().map(route_json).collect();
        let _ = write!(s, "\"get_region\":[{}]", routes.join(","));
        if let Some(m) = &self.mixed {
            let _ = write!(s, ",\"mixed\":{}", heartbeat_json(m));
        }
        s.push('}');
        s
    }
}

fn heartbeat_json(h: &HeartbeatResult) -> String {
    let mut s = format!(
        "{{\"per_sec\":{:.0},\"processed\":{:.0},\"window_s\":{:.3},\"persisted_per_sec\":{:.0},\
         \"sent\":{},\"backlog\":{:.0},\"drain_s\":{:.3},\"commands\":{}",
        h.heartbeats_per_sec(),
        h.processed,
        h.elapsed.as_secs_f64(),
        h.persisted_per_sec(),
        h.sent,
        h.backlog,
        h.drain.as_secs_f64(),
        h.commands
    );
    if let Some(r) = &h.routing {
        let _ = write!(s, ",\"get_region\":{}", route_json(r));
    }
    s.push('}');
    s
}

fn route_json(r: &RouteResult) -> String {
    format!(
        "{{\"concurrency\":{},\"ops\":{},\"ops_per_sec\":{:.0},\"p50_us\":{:.1},\"p99_us\":{:.1},\
         \"p999_us\":{:.1},\"max_us\":{:.1},\"errors\":{}}}",
        r.concurrency,
        r.ops,
        r.ops_per_sec(),
        r.quantile_us(0.50),
        r.quantile_us(0.99),
        r.quantile_us(0.999),
        r.max_us(),
        r.errors
    )
}

impl crate::cli::Summary for Report {
    fn summary(&self) -> String {
        Report::summary(self)
    }

    fn json(&self) -> String {
        Report::json(self)
    }
}
