//! The status HTTP server: `/metrics` (Prometheus), `/status` (who this
//! store is, health) and `/regions` (the regions here, their leaders); and,
//! for fault tests only, `/debug/links` ([`super::fault_http`]).

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::fault_http;
use crate::driver::context::StoreContext;
use crate::transport::filter::FilterChain;

/// Serves until shutdown.
pub async fn serve(
    listener: TcpListener,
    store: Arc<StoreContext>,
    addr: String,
    filters: Arc<FilterChain>,
    mut shutdown: watch::Receiver<bool>,
) {
    let faults = std::env::var(fault_http::ENABLE_VAR).is_ok_and(|v| v == "1");
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .route("/regions", get(regions))
        .with_state((store, addr))
        .merge(fault_http::router(filters, faults));
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|s| *s).await;
        })
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "status server failed");
    }
}

type AppState = (Arc<StoreContext>, String);

async fn metrics(State((store, _)): State<AppState>) -> impl IntoResponse {
    sample_engine(&store);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        store.metrics.render(),
    )
}

fn sample_engine(store: &StoreContext) {
    let db = store.engine.db();
    let int = |name: &str| db.property_int_value(name).ok().flatten().unwrap_or(0);
    store
        .metrics
        .engine_size
        .set(int("rocksdb.estimate-live-data-size") as i64);
    store
        .metrics
        .write_stall
        .set(int("rocksdb.actual-delayed-write-rate").min(1) as i64);
}

async fn status(State((store, addr)): State<AppState>) -> Json<Value> {
    let regions = store.regions.read();
    Json(json!({
        "store_id": store.store_id,
        "address": addr,
        "regions": regions.len(),
        "leaders": regions.values().filter(|m| m.is_leader).count(),
        "apply_queue": store.apply_pool.queued(),
        "busy": store.apply_pool.is_busy(),
        "uptime_seconds": store.started.elapsed().as_secs(),
    }))
}

async fn regions(State((store, _)): State<AppState>) -> Json<Value> {
    let regions = store.regions.read();
    let mut list: Vec<Value> = regions
        .values()
        .map(|m| {
            let epoch = m.region.region_epoch.unwrap_or_default();
            json!({
                "id": m.region.id,
                "start_key": hex(&m.region.start_key),
                "end_key": hex(&m.region.end_key),
                "epoch": {"conf_ver": epoch.conf_ver, "version": epoch.version},
                "peers": m.region.peers.iter().map(|p| json!({"id": p.id, "store_id": p.store_id, "role": p.role})).collect::<Vec<_>>(),
                "peer_id": m.peer.id,
                "is_leader": m.is_leader,
                "leader_peer_id": m.leader.as_ref().map(|p| p.id),
                "term": m.term,
            })
        })
        .collect();
    list.sort_by_key(|v| v["id"].as_u64());
    Json(json!({ "count": list.len(), "regions": list }))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
