//! PD's HTTP side: the JSON API under `/pd/api/v1`, `/metrics`, `/health`
//! and a small dashboard at `/`.
//!
//! Every member answers `/health`, `/metrics` and `GET /pd/api/v1/members`.
//! Anything else needs the leader: a follower answers `307 Temporary
//! Redirect` to the same path on the leader (with the leader in the JSON
//! body), so `curl -L` follows it. A member with no leader to redirect to —
//! during an election, or before the leader published its HTTP address —
//! answers `503 Service Unavailable` of type `NotLeader`: retry later.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{members, Leader, Shared};
use crate::error::PdError;
use crate::schedule::{OpKind, Operator, RegionView, ScheduleConfig};
use crate::storage::meta::{Op, SCHEDULERS_KEY, SCHEDULE_CONFIG_KEY};

type S = State<Arc<Shared>>;

/// Serves the HTTP API until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let result = axum::serve(listener, router(shared))
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|s| *s).await;
        })
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "PD HTTP server failed");
    }
}

/// The routes (public so tests can drive them without a socket).
pub fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route("/members", get(get_members).post(add_member))
        .route("/members/{name}", axum::routing::delete(remove_member))
        .route("/stores", get(get_stores))
        .route("/store/{id}", get(get_store).delete(decommission_store))
        .route("/regions", get(get_regions))
        .route("/region/id/{id}", get(get_region_by_id))
        .route("/region/key/{key}", get(get_region_by_key))
        .route("/operators", get(get_operators).post(create_operator))
        .route("/schedulers", get(get_schedulers).post(add_scheduler))
        .route(
            "/schedulers/{name}",
            axum::routing::delete(remove_scheduler).post(pause_scheduler),
        )
        .route("/config", get(get_config).post(set_config))
        .route("/health", get(health));
    Router::new()
        .nest("/pd/api/v1", api)
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/", get(dashboard))
        .with_state(shared)
}

/// An API error: a status code and a JSON body saying what happened.
struct ApiError {
    status: StatusCode,
    body: Value,
    location: Option<String>,
}

impl From<PdError> for ApiError {
    fn from(e: PdError) -> ApiError {
        let leader = match &e {
            PdError::NotLeader(Some(m)) => Some(m.clone()),
            _ => None,
        };
        let location = leader.as_ref().and_then(redirect_url);
        let status = match &e {
            PdError::NotLeader(_) if location.is_some() => StatusCode::TEMPORARY_REDIRECT,
            // Nowhere to redirect to: the client should retry later.
            PdError::NotLeader(_) => StatusCode::SERVICE_UNAVAILABLE,
            PdError::InvalidArgument(_)
            | PdError::ClusterIdMismatch { .. }
            | PdError::DuplicatedAddress { .. } => StatusCode::BAD_REQUEST,
            PdError::StoreNotFound(_) | PdError::RegionNotFound => StatusCode::NOT_FOUND,
            PdError::StoreTombstone(_) | PdError::StaleRegion(_) => StatusCode::CONFLICT,
            PdError::NotBootstrapped
            | PdError::NotEnoughStores { .. }
            | PdError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        let error = match &e {
            PdError::NotLeader(_) if location.is_none() => NO_LEADER.to_string(),
            e => e.to_string(),
        };
        let body = json!({
            "error": error,
            "type": format!("{:?}", e.error_type()),
            "leader": leader.as_ref().map(member_json),
        });
        ApiError {
            status,
            body,
            location,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // A redirect goes out only with somewhere to go: one whose
        // `Location` is not a valid header value says "retry later" instead.
        let location = self.location.and_then(|l| HeaderValue::try_from(l).ok());
        let status = match (self.status, &location) {
            (StatusCode::TEMPORARY_REDIRECT, None) => StatusCode::SERVICE_UNAVAILABLE,
            (status, _) => status,
        };
        let mut resp = (status, Json(self.body)).into_response();
        if let (StatusCode::TEMPORARY_REDIRECT, Some(v)) = (status, location) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        resp
    }
}

/// What a non-leader says when it cannot redirect.
const NO_LEADER: &str = "not the PD leader, and no PD leader is known to redirect to \
                         (an election or a membership change is under way); retry later";

/// Where a redirect to `leader` goes: its published HTTP URL. `None` until
/// the leader published its record (a founder's record from the initial
/// configuration, or a new member's from the conf change, has none yet): a
/// `307` without a `Location` sends the client nowhere.
fn redirect_url(leader: &flotilla_proto::pdpb::Member) -> Option<String> {
    (!leader.http_url.is_empty()).then(|| leader.http_url.clone())
}

fn bad(msg: impl Into<String>) -> ApiError {
    PdError::InvalidArgument(msg.into()).into()
}

type ApiResult = Result<Json<Value>, ApiError>;

/// The leader state, or a redirect to the leader keeping the request path
/// (`503` when there is no leader to redirect to).
fn serving(shared: &Shared, path: &str) -> Result<Arc<Leader>, ApiError> {
    shared.serving().map_err(|e| {
        let mut err = ApiError::from(not_to_self(shared.id, e));
        err.location = err.location.map(|base| format!("{base}{path}"));
        err
    })
}

/// `e` without a leader that is this member itself: elected but not
/// serving yet (still applying earlier terms' entries or building its
/// leader state), it would redirect the client to itself, round and round.
fn not_to_self(own_id: u64, e: PdError) -> PdError {
    match e {
        PdError::NotLeader(Some(m)) if m.member_id == own_id => PdError::NotLeader(None),
        e => e,
    }
}

fn member_json(m: &flotilla_proto::pdpb::Member) -> Value {
    json!({
        "id": m.member_id,
        "name": m.name,
        "peer_urls": m.peer_urls,
        "client_urls": m.client_urls,
        "http_url": m.http_url,
    })
}

async fn health(State(shared): S) -> Json<Value> {
    let status = shared.raft.status();
    Json(json!({
        "health": !shared.is_stopping(),
        "name": shared.cfg.name,
        "member_id": shared.id,
        "serving_leader": shared.serving().is_ok(),
        "leader_id": status.leader_id,
        "term": status.term,
        "applied_index": status.applied,
    }))
}

async fn metrics(State(shared): S) -> impl IntoResponse {
    if let Ok(leader) = shared.serving() {
        shared.metrics.observe_cluster(&leader.cluster.read());
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        shared.metrics.render(),
    )
}

async fn get_members(State(shared): S) -> ApiResult {
    let list =
        members::list(&shared).map_err(|e| ApiError::from(PdError::Unavailable(e.to_string())))?;
    let leader = members::find(&shared, shared.raft.status().leader_id);
    Ok(Json(json!({
        "cluster_id": shared.cluster_id(),
        "members": list.iter().map(member_json).collect::<Vec<_>>(),
        "leader": leader.as_ref().map(member_json),
        "voters": shared.raft.status().conf_state.voters,
    })))
}

#[derive(Deserialize)]
struct AddMember {
    name: String,
    peer_url: String,
}

async fn add_member(State(shared): S, Json(req): Json<AddMember>) -> ApiResult {
    serving(&shared, "/pd/api/v1/members")?;
    let m = members::add(&shared, &req.name, &req.peer_url).await?;
    Ok(Json(member_json(&m)))
}

async fn remove_member(State(shared): S, Path(name): Path<String>) -> ApiResult {
    serving(&shared, &format!("/pd/api/v1/members/{name}"))?;
    members::remove(&shared, &name).await?;
    Ok(Json(json!({ "removed": name })))
}

fn store_json(leader: &Leader, id: u64, now_ms: u64) -> Option<Value> {
    let cluster = leader.cluster.read();
    let info = cluster.store_info(id, now_ms)?;
    let view = cluster.view.store(id)?;
    let store = info.store.unwrap_or_default();
    let stats = info.stats.unwrap_or_default();
    Some(json!({
        "id": id,
        "address": store.address,
        "status_address": store.status_address,
        "version": store.version,
        "state": view.state,
        "labels": view.labels,
        "capacity": stats.capacity,
        "available": stats.available,
        "region_count": view.region_count,
        "leader_count": view.leader_count,
        "region_size": view.region_size_bytes,
        "ms_since_heartbeat": info.ms_since_heartbeat,
    }))
}

async fn get_stores(State(shared): S) -> ApiResult {
    let leader = serving(&shared, "/pd/api/v1/stores")?;
    let ids: Vec<u64> = leader.cluster.read().stores.keys().copied().collect();
    let now = shared.now_ms();
    let stores: Vec<Value> = ids
        .iter()
        .filter_map(|id| store_json(&leader, *id, now))
        .collect();
    Ok(Json(json!({ "count": stores.len(), "stores": stores })))
}

async fn get_store(State(shared): S, Path(id): Path<u64>) -> ApiResult {
    let leader = serving(&shared, &format!("/pd/api/v1/store/{id}"))?;
    let store = store_json(&leader, id, shared.now_ms()).ok_or(PdError::StoreNotFound(id))?;
    Ok(Json(store))
}

async fn decommission_store(State(shared): S, Path(id): Path<u64>) -> ApiResult {
    let leader = serving(&shared, &format!("/pd/api/v1/store/{id}"))?;
    let record = leader.cluster.read().check_decommission(id)?;
    leader.save_store(&shared, record).await?;
    Ok(Json(json!({ "store": id, "state": "offline" })))
}

/// A region as the API shows it: keys both as escaped text and as hex.
fn region_json(r: &RegionView) -> Value {
    let text = |k: &[u8]| k.escape_ascii().to_string();
    let hex = |k: &[u8]| k.iter().map(|b| format!("{b:02x}")).collect::<String>();
    json!({
        "id": r.id,
        "start_key": text(&r.start_key),
        "end_key": text(&r.end_key),
        "start_key_hex": hex(&r.start_key),
        "end_key_hex": hex(&r.end_key),
        "epoch": r.epoch,
        "peers": r.peers,
        "leader": r.leader_peer(),
        "down_peers": r.down_peers,
        "pending_peers": r.pending_peers,
        "approximate_size": r.approximate_size_bytes,
        "approximate_keys": r.approximate_keys,
    })
}

#[derive(Deserialize)]
struct RegionsQuery {
    limit: Option<usize>,
}

async fn get_regions(State(shared): S, Query(q): Query<RegionsQuery>) -> ApiResult {
    let leader = serving(&shared, "/pd/api/v1/regions")?;
    let cluster = leader.cluster.read();
    let limit = q.limit.unwrap_or(usize::MAX);
    let regions: Vec<Value> = cluster
        .tree
        .scan(b"", b"", limit)
        .iter()
        .map(|r| region_json(r))
        .collect();
    Ok(Json(
        json!({ "count": cluster.view.regions.len(), "regions": regions }),
    ))
}

async fn get_region_by_id(State(shared): S, Path(id): Path<u64>) -> ApiResult {
    let leader = serving(&shared, &format!("/pd/api/v1/region/id/{id}"))?;
    let cluster = leader.cluster.read();
    let region = cluster.view.region(id).ok_or(PdError::RegionNotFound)?;
    Ok(Json(region_json(region)))
}

async fn get_region_by_key(State(shared): S, Path(key): Path<String>) -> ApiResult {
    let leader = serving(&shared, &format!("/pd/api/v1/region/key/{key}"))?;
    let cluster = leader.cluster.read();
    let region = cluster
        .tree
        .find(key.as_bytes())
        .ok_or(PdError::RegionNotFound)?;
    Ok(Json(region_json(region)))
}

fn operator_json(op: &Operator) -> Value {
    serde_json::to_value(op).unwrap_or(Value::Null)
}

async fn get_operators(State(shared): S) -> ApiResult {
    let leader = serving(&shared, "/pd/api/v1/operators")?;
    let cluster = leader.cluster.read();
    let running: Vec<Value> = cluster.controller.operators().map(operator_json).collect();
    let history: Vec<Value> = cluster
        .controller
        .history()
        .rev()
        .take(64)
        .map(operator_json)
        .collect();
    Ok(Json(json!({ "running": running, "recent": history })))
}

/// A manual operator request.
#[derive(Deserialize)]
struct NewOperator {
    /// `transfer-leader`, `add-peer`, `remove-peer` or `split`.
    name: String,
    region_id: u64,
    store_id: Option<u64>,
    /// Split keys (UTF-8); empty or absent: the store picks the middle.
    #[serde(default)]
    keys: Vec<String>,
}

async fn create_operator(State(shared): S, Json(req): Json<NewOperator>) -> ApiResult {
    let leader = serving(&shared, "/pd/api/v1/operators")?;
    let peer_id = if req.name == "add-peer" {
        Some(leader.ids.alloc(1).await?)
    } else {
        None
    };
    let now = shared.now_ms();
    let (store, command, op) = {
        let mut cluster = leader.cluster.write();
        let region = cluster
            .view
            .region(req.region_id)
            .ok_or(PdError::RegionNotFound)?
            .clone();
        let store = || {
            req.store_id
                .ok_or_else(|| bad(format!("{} needs store_id", req.name)))
        };
        let built = match req.name.as_str() {
            "transfer-leader" => {
                Operator::transfer_leader(&region, store()?, OpKind::Admin, "admin-transfer-leader")
            }
            "add-peer" => Operator::add_peer(
                &region,
                store()?,
                peer_id.unwrap_or(0),
                OpKind::Admin,
                "admin-add-peer",
            ),
            "remove-peer" => {
                Operator::remove_peer(&region, store()?, OpKind::Admin, "admin-remove-peer")
            }
            "split" => Operator::split(
                &region,
                req.keys.iter().map(|k| k.as_bytes().to_vec()).collect(),
                OpKind::Admin,
                "admin-split",
            ),
            other => return Err(bad(format!("unknown operator {other:?}"))),
        };
        let op = built.map_err(|e| bad(e.to_string()))?;
        let cluster = &mut *cluster;
        let id = cluster
            .controller
            .add(op, &cluster.view, &cluster.schedule_config, now)
            .map_err(|e| bad(e.to_string()))?;
        let op = cluster
            .controller
            .get(req.region_id)
            .filter(|o| o.id == id)
            .map(operator_json);
        let first = cluster.first_command(req.region_id, now);
        match first {
            Some((store, command)) => (Some(store), Some(command), op),
            None => (None, None, op),
        }
    };
    if let (Some(store), Some(command)) = (store, command) {
        leader.push_command(store, command);
    }
    Ok(Json(json!({ "operator": op })))
}

async fn get_schedulers(State(shared): S) -> ApiResult {
    let leader = serving(&shared, "/pd/api/v1/schedulers")?;
    let list = leader.cluster.read().registry.list(shared.now_ms());
    Ok(Json(
        json!({ "schedulers": list, "known": crate::schedule::scheduler::KNOWN_SCHEDULERS }),
    ))
}

#[derive(Deserialize)]
struct NamedScheduler {
    name: String,
}

async fn persist_schedulers(shared: &Shared, leader: &Leader) -> Result<(), ApiError> {
    let names: Vec<String> = leader
        .cluster
        .read()
        .registry
        .list(0)
        .into_iter()
        .map(|s| s.name)
        .collect();
    let value = serde_json::to_vec(&names).map_err(|e| bad(e.to_string()))?;
    let op = Op::Put(Bytes::from_static(SCHEDULERS_KEY), Bytes::from(value));
    leader.propose(shared, vec![op]).await?;
    Ok(())
}

async fn add_scheduler(State(shared): S, Json(req): Json<NamedScheduler>) -> ApiResult {
    let leader = serving(&shared, "/pd/api/v1/schedulers")?;
    leader
        .cluster
        .write()
        .registry
        .add(&req.name)
        .map_err(|e| bad(e.to_string()))?;
    persist_schedulers(&shared, &leader).await?;
    Ok(Json(json!({ "added": req.name })))
}

async fn remove_scheduler(State(shared): S, Path(name): Path<String>) -> ApiResult {
    let leader = serving(&shared, &format!("/pd/api/v1/schedulers/{name}"))?;
    leader
        .cluster
        .write()
        .registry
        .remove(&name)
        .map_err(|e| bad(e.to_string()))?;
    persist_schedulers(&shared, &leader).await?;
    Ok(Json(json!({ "removed": name })))
}

#[derive(Deserialize)]
struct Pause {
    /// How long to pause, e.g. `"10m"`; `"0s"` resumes.
    delay: String,
}

async fn pause_scheduler(
    State(shared): S,
    Path(name): Path<String>,
    Json(req): Json<Pause>,
) -> ApiResult {
    let leader = serving(&shared, &format!("/pd/api/v1/schedulers/{name}"))?;
    let delay = humantime::parse_duration(&req.delay)
        .map_err(|e| bad(format!("delay {:?}: {e}", req.delay)))?;
    let mut cluster = leader.cluster.write();
    let result = if delay.is_zero() {
        cluster.registry.resume(&name)
    } else {
        cluster
            .registry
            .pause(&name, delay.as_millis() as u64, shared.now_ms())
    };
    result.map_err(|e| bad(e.to_string()))?;
    Ok(Json(
        json!({ "name": name, "paused_for": humantime::format_duration(delay).to_string() }),
    ))
}

#[derive(Serialize)]
struct ConfigView<'a> {
    schedule: &'a ScheduleConfig,
}

async fn get_config(State(shared): S) -> ApiResult {
    let leader = serving(&shared, "/pd/api/v1/config")?;
    let cluster = leader.cluster.read();
    Ok(Json(
        serde_json::to_value(ConfigView {
            schedule: &cluster.schedule_config,
        })
        .unwrap_or(Value::Null),
    ))
}

/// Sets scheduling keys: the body is a JSON object of `[schedule]` keys
/// (e.g. `{"max-replicas": 5}`); the rest keep their values.
async fn set_config(State(shared): S, Json(patch): Json<Value>) -> ApiResult {
    let leader = serving(&shared, "/pd/api/v1/config")?;
    let Value::Object(patch) = patch else {
        return Err(bad("the body must be a JSON object of schedule keys"));
    };
    let current = leader.cluster.read().schedule_config.clone();
    let mut merged = serde_json::to_value(&current).map_err(|e| bad(e.to_string()))?;
    if let Value::Object(map) = &mut merged {
        map.extend(patch);
    }
    let next: ScheduleConfig = serde_json::from_value(merged).map_err(|e| bad(e.to_string()))?;
    next.validate().map_err(bad)?;
    let value = serde_json::to_vec(&next).map_err(|e| bad(e.to_string()))?;
    let op = Op::Put(Bytes::from_static(SCHEDULE_CONFIG_KEY), Bytes::from(value));
    leader.propose(&shared, vec![op]).await?;
    leader.cluster.write().schedule_config = next.clone();
    Ok(Json(
        serde_json::to_value(ConfigView { schedule: &next }).unwrap_or(Value::Null),
    ))
}

async fn dashboard() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        DASHBOARD_HTML,
    )
}

const DASHBOARD_HTML: &str = include_str!("dashboard.html");

#[cfg(test)]
mod tests {
    use flotilla_proto::pdpb::Member;

    use super::*;

    fn member(id: u64, http_url: &str) -> Member {
        Member {
            member_id: id,
            name: format!("pd-{id}"),
            http_url: http_url.into(),
            ..Default::default()
        }
    }

    fn answer(e: PdError) -> Response {
        ApiError::from(e).into_response()
    }

    #[test]
    fn a_follower_redirects_to_a_leader_with_an_http_url() {
        let resp = answer(PdError::NotLeader(Some(member(1, "http://127.0.0.1:1"))));
        assert_eq!(resp.status(), StatusCode::TEMPORARY_REDIRECT);
        assert_eq!(resp.headers()[header::LOCATION], "http://127.0.0.1:1");
    }

    #[test]
    fn without_a_leader_to_redirect_to_a_follower_answers_503() {
        // No leader known (an election), or one that has not published
        // its HTTP address yet.
        for leader in [None, Some(member(1, ""))] {
            let err = ApiError::from(PdError::NotLeader(leader.clone()));
            assert_eq!(err.body["type"], "NotLeader");
            assert_eq!(err.body["error"], NO_LEADER);
            assert_eq!(err.body["leader"].is_null(), leader.is_none());
            let resp = err.into_response();
            assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE, "{leader:?}");
            assert!(resp.headers().get(header::LOCATION).is_none());
        }
    }

    #[test]
    fn a_redirect_without_a_valid_location_becomes_503() {
        let mut err = ApiError::from(PdError::NotLeader(Some(member(1, "http://a"))));
        err.location = Some("http://a/pd/api/v1/region/key/\n".into());
        let resp = err.into_response();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(resp.headers().get(header::LOCATION).is_none());
    }

    #[test]
    fn an_elected_member_not_serving_yet_does_not_redirect_to_itself() {
        let own = || PdError::NotLeader(Some(member(7, "http://127.0.0.1:7")));
        assert!(matches!(not_to_self(7, own()), PdError::NotLeader(None)));
        assert!(matches!(not_to_self(8, own()), PdError::NotLeader(Some(m)) if m.member_id == 7));
    }
}
