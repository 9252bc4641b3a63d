//! Fault injection over HTTP, for the fault-testing harness
//! (`flotilla-jepsen`) that runs stores as processes: `PUT /debug/links`
//! with `{"drop_to": [store ids], "drop_from": [store ids]}` cuts this
//! store's Raft traffic to and from those stores (a partition is both
//! sides cutting each other; one side alone is a one-way loss), and
//! `DELETE /debug/links` heals it.
//!
//! Off unless the store was started with `FLOTILLA_FAULT_INJECTION=1`
//! (never in production): the routes then answer 403.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::put;
use axum::{Json, Router};
use flotilla_proto::raft_serverpb::RaftMessage;

use crate::transport::filter::{Direction, Filter, FilterChain};

/// The environment variable that turns the routes on.
pub const ENABLE_VAR: &str = "FLOTILLA_FAULT_INJECTION";

/// The links to cut.
#[derive(Clone, Debug, Default, serde::Deserialize, serde::Serialize)]
pub struct Links {
    /// Drop what this store sends to these stores.
    #[serde(default)]
    pub drop_to: Vec<u64>,
    /// Drop what this store receives from these stores.
    #[serde(default)]
    pub drop_from: Vec<u64>,
}

impl Filter for Links {
    fn filter(&self, direction: Direction, other: u64, msgs: &mut Vec<RaftMessage>) {
        let cut = match direction {
            Direction::Outbound => &self.drop_to,
            Direction::Inbound => &self.drop_from,
        };
        if cut.contains(&other) {
            msgs.clear();
        }
    }
}

/// The routes: working if `enabled`, refusing otherwise.
pub fn router(filters: Arc<FilterChain>, enabled: bool) -> Router {
    Router::new()
        .route("/debug/links", put(cut).delete(heal))
        .with_state((filters, enabled))
}

type FaultState = (Arc<FilterChain>, bool);

const OFF: &str =
    "fault injection is off (the store was not started with FLOTILLA_FAULT_INJECTION=1)";

/// Replaces every filter with these cuts.
async fn cut(
    State((filters, enabled)): State<FaultState>,
    Json(links): Json<Links>,
) -> Result<&'static str, (StatusCode, &'static str)> {
    if !enabled {
        return Err((StatusCode::FORBIDDEN, OFF));
    }
    tracing::warn!(?links, "fault injection: cutting Raft links");
    filters.clear();
    filters.add(Arc::new(links));
    Ok("cut\n")
}

/// Removes every filter.
async fn heal(
    State((filters, enabled)): State<FaultState>,
) -> Result<&'static str, (StatusCode, &'static str)> {
    if !enabled {
        return Err((StatusCode::FORBIDDEN, OFF));
    }
    tracing::warn!("fault injection: links healed");
    filters.clear();
    Ok("healed\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_cut_each_direction_on_its_own() {
        let links = Links {
            drop_to: vec![2],
            drop_from: vec![3],
        };
        let batch = || vec![RaftMessage::default()];
        let kept = |d, other| {
            let mut msgs = batch();
            links.filter(d, other, &mut msgs);
            msgs.len()
        };
        assert_eq!(kept(Direction::Outbound, 2), 0);
        assert_eq!(kept(Direction::Inbound, 2), 1);
        assert_eq!(kept(Direction::Inbound, 3), 0);
        assert_eq!(kept(Direction::Outbound, 3), 1);
    }
}
