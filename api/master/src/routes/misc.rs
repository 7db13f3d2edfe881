//! `/health`, `/version`, `/metrics` (Prometheus), `/metrics/snapshot` (Mesos's keys),
//! and the read options every read shares.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use corral_log::ReadConsistency;
use serde::Deserialize;

use crate::error::ApiError;
use crate::master::wall_clock;
use crate::master::Master;
use crate::metrics::{mesos_snapshot, MasterFacts, StateGauges};
use axum::routing::get;
use axum::Router;
use corral_mesos::operator::version_json;

/// `?consistency=local` lets any master answer a read from what it has applied;
/// `linearizable` confirms leadership with a quorum first. Without it, reads go to the leader.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ReadOptions {
    pub consistency: Option<String>,
}

impl ReadOptions {
    /// Redirects to the leader unless the client settled for local reads.
    pub(crate) fn consistency(&self, master: &Master) -> Result<ReadConsistency, ApiError> {
        match self.consistency.as_deref() {
            Some("local") => Ok(ReadConsistency::Local),
            Some("linearizable") => {
                master.redirect_if_follower()?;
                Ok(ReadConsistency::Linearizable)
            }
            None => {
                master.redirect_if_follower()?;
                Ok(ReadConsistency::Local)
            }
            Some(other) => Err(ApiError::bad_request(
                "consistency",
                format!("'{other}' is not 'local' or 'linearizable'"),
            )),
        }
    }
}

pub(crate) async fn health() -> impl IntoResponse {
    Json(serde_json::json!({"healthy": true}))
}

pub(crate) async fn version() -> impl IntoResponse {
    let info = version_json();
    Json(serde_json::json!({
        "version": info["version_info"]["version"],
        "corral_version": info["version_info"]["corral_version"],
        "build_user": "corral",
    }))
}

pub(crate) async fn metrics(State(master): State<Master>) -> Result<Response, ApiError> {
    let text = scrape(&master).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

/// Brings every gauge up to date and renders the exposition. The cluster gauges come from
/// the running totals the state keeps, read under the read lock without a copy (see
/// `metrics::gauges`): microseconds, at any cluster size.
pub(crate) async fn scrape(master: &Master) -> Result<String, ApiError> {
    let metrics = &master.inner.metrics;
    let gauges = master.read_state(ReadConsistency::Local, StateGauges::compute).await?;
    metrics.set_state(&gauges);
    let journal_bounds = master
        .node()
        .journal()
        .bounds()
        .map_err(|error| ApiError::Internal(format!("journal bounds unreadable: {error}")))?;
    metrics.set_raft_status(&master.node().status(), master.node().is_leader(), journal_bounds);
    metrics
        .stream_subscribers
        .with_label_values(&["framework"])
        .set(master.inner.scheduler_streams.count() as i64);
    master.inner.event_streams.set_metrics(metrics, master.node().applied_index());
    let usage = master
        .inner
        .usage
        .metric_families()
        .map_err(|error| ApiError::Internal(format!("usage metrics do not build: {error}")))?;
    metrics
        .render_with(usage)
        .map_err(|error| ApiError::Internal(format!("metrics do not render: {error}")))
}

/// Mesos's metric keys and values, for `/metrics/snapshot` and the operator's `GET_METRICS`.
pub(crate) async fn mesos_metrics(master: &Master) -> Result<BTreeMap<String, f64>, ApiError> {
    let gauges = master.read_state(ReadConsistency::Local, StateGauges::compute).await?;
    let facts = MasterFacts {
        elected: master.node().is_leader(),
        uptime_secs: wall_clock().since(master.inner.started_at).as_secs_f64(),
    };
    Ok(mesos_snapshot(&gauges, &facts, &master.inner.metrics))
}

/// `GET /metrics/snapshot`: this master's numbers under Mesos's keys. Any master answers
/// for itself, as each Mesos master does.
pub(crate) async fn metrics_snapshot(
    State(master): State<Master>,
) -> Result<Json<BTreeMap<String, f64>>, ApiError> {
    Ok(Json(mesos_metrics(&master).await?))
}

/// `/health`, `/version`, `/metrics`, `/metrics/snapshot`.
pub(crate) fn router() -> Router<Master> {
    Router::new()
        .route("/health", get(health))
        .route("/version", get(version))
        .route("/metrics", get(metrics))
        .route("/metrics/snapshot", get(metrics_snapshot))
}
