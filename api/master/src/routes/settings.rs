//! `/corral/v1/settings`: the cluster-wide knobs every replica decides timeouts by (agent
//! heartbeat timeout, offer timeout, retention of completed work). They live in the log, so
//! they are changed here, never by a master's flags.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use corral_log::ReadConsistency;
use corral_state::model::{Settings, SettingsChange};
use corral_state::{Actor, Command, Event};
use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::master::{new_request_id, Master};
use axum::routing::get;
use axum::Router;

pub async fn get_settings(State(master): State<Master>) -> Result<Response, ApiError> {
    let settings =
        master.read_state(ReadConsistency::Local, |state| state.settings().clone()).await?;
    Ok(Json(render(&settings)).into_response())
}

/// Changes the settings the body names and keeps the rest; answers with all of them.
pub async fn patch_settings(
    State(master): State<Master>,
    body: Bytes,
) -> Result<Response, ApiError> {
    master.redirect_if_follower()?;
    let change = parse_change(&body)?;
    let committed = master
        .propose(
            new_request_id(),
            Actor::Operator { principal: None },
            Command::ChangeSettings { change },
        )
        .await?;
    if let Some(rejection) = committed.outcome.rejection() {
        return Err(ApiError::Rejected(rejection.clone()));
    }
    let settings = committed.outcome.events().iter().find_map(|event| match event {
        Event::SettingsUpdated { settings } => Some(settings.clone()),
        _ => None,
    });
    let settings = settings.ok_or_else(|| ApiError::Internal("no settings event".to_owned()))?;
    Ok(Json(render(&settings)).into_response())
}

fn render(settings: &Settings) -> Value {
    json!({
        "cluster_id": settings.cluster_id,
        "offer_timeout_seconds": settings.offer_timeout.map(|timeout| timeout.as_secs_f64()),
        "agent_heartbeat_timeout_seconds": settings.agent_heartbeat_timeout.as_secs_f64(),
        "agent_unreachable_to_gone_seconds": settings.agent_unreachable_to_gone.as_secs_f64(),
        "dedup_window_seconds": settings.dedup_window.as_secs_f64(),
        "dedup_capacity": settings.dedup_capacity,
        "max_completed_tasks_per_framework": settings.max_completed_tasks_per_framework,
        "max_completed_frameworks": settings.max_completed_frameworks,
        "max_statuses_per_task": settings.max_statuses_per_task,
    })
}

fn parse_change(body: &[u8]) -> Result<SettingsChange, ApiError> {
    let fields: Map<String, Value> = serde_json::from_slice(body)
        .map_err(|error| ApiError::bad_request("body", format!("not a JSON object: {error}")))?;
    let mut change = SettingsChange::default();
    for (field, value) in &fields {
        match field.as_str() {
            "offer_timeout_seconds" => {
                change.offer_timeout =
                    Some(if value.is_null() { None } else { Some(seconds(field, value)?) });
            }
            "agent_heartbeat_timeout_seconds" => {
                change.agent_heartbeat_timeout = Some(seconds(field, value)?);
            }
            "agent_unreachable_to_gone_seconds" => {
                change.agent_unreachable_to_gone = Some(seconds(field, value)?);
            }
            "dedup_window_seconds" => change.dedup_window = Some(seconds(field, value)?),
            "dedup_capacity" => change.dedup_capacity = Some(count(field, value)?),
            "max_completed_tasks_per_framework" => {
                change.max_completed_tasks_per_framework = Some(count(field, value)?);
            }
            "max_completed_frameworks" => {
                change.max_completed_frameworks = Some(count(field, value)?);
            }
            "max_statuses_per_task" => change.max_statuses_per_task = Some(count(field, value)?),
            "cluster_id" => {
                return Err(ApiError::bad_request(field, "is fixed once the cluster has started"))
            }
            _ => return Err(ApiError::bad_request(field, "is not a setting")),
        }
    }
    Ok(change)
}

fn seconds(field: &str, value: &Value) -> Result<Duration, ApiError> {
    value
        .as_f64()
        .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
        .ok_or_else(|| ApiError::bad_request(field, "must be a non-negative number of seconds"))
}

fn count(field: &str, value: &Value) -> Result<u32, ApiError> {
    value
        .as_u64()
        .and_then(|count| u32::try_from(count).ok())
        .ok_or_else(|| ApiError::bad_request(field, "must be a whole number up to 4294967295"))
}

/// `GET` and `PATCH /corral/v1/settings`.
pub(crate) fn router() -> Router<Master> {
    Router::new().route("/corral/v1/settings", get(get_settings).patch(patch_settings))
}
