//! Mesos's v0 master reads, with Mesos's JSON shapes (`corral_mesos::v0`) and query
//! parameters. Mesos serves each under `/master/NAME` and `/NAME`, with or without a
//! trailing slash; so does this router.
//!
//! - `state` — everything (written from a copy of the state, streamed).
//! - `slaves` (`?slave_id=`) — agents.
//! - `frameworks` (`?framework_id=`) — `frameworks`, `completed_frameworks`,
//!   `unregistered_frameworks`, each with its tasks (streamed).
//! - `tasks` (`?limit=` default 100, `-1` for all; `offset`; `order=asc|desc`;
//!   `framework_id`; `task_id`) — a page of tasks. A page of up to `PAGE_UNDER_LOCK` tasks is
//!   rendered in place (it costs O(limit), less than copying the state would); a larger one
//!   is written from a copy, streamed.
//! - `roles`, `flags`, `state-summary`, `maintenance/schedule`, `maintenance/status`.
//! - `redirect` — 307 to the leader (`Location: //host:port`, plus whatever path follows
//!   `redirect`), 503 without one; on every master, the leader included, as Mesos does.
//!
//! Like every read, a follower answers with a 307 to the leader unless asked
//! `?consistency=local`. Bad parameters (a negative offset, an unknown order) are a 400
//! naming the parameter.

use axum::extract::{Query, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::{Json, Router};
use corral_mesos::v0::reads::{
    flags, maintenance_schedule, maintenance_status, roles, slaves, state_summary, write_frameworks,
};
use corral_mesos::v0::tasks::{write_tasks, TaskQueryParams};
use corral_mesos::v0::write_master_state;
use corral_state::{AgentId, FrameworkId};
use serde::Deserialize;

use super::misc::ReadOptions;
use crate::error::ApiError;
use crate::master::Master;

/// The largest page of `/master/tasks` rendered while holding the state.
const PAGE_UNDER_LOCK: usize = 10_000;

async fn master_state(
    State(master): State<Master>,
    Query(options): Query<ReadOptions>,
) -> Result<Response, ApiError> {
    let consistency = options.consistency(&master)?;
    let status = master.node().status();
    let info = master.master_info();
    let leader = status.leader_address.clone().unwrap_or_default();
    let mut about = serde_json::Map::new();
    about.insert("id".into(), info["id"].clone());
    about.insert("pid".into(), format!("master@{}", master.inner.address).into());
    about.insert("hostname".into(), info["hostname"].clone());
    about.insert("leader".into(), format!("master@{leader}").into());
    about.insert("leader_info".into(), serde_json::json!({"address": leader}));
    about.insert("start_time".into(), master.inner.started_at.as_secs_f64().into());
    about.insert("log_index".into(), serde_json::json!(status.applied_index));
    master
        .respond_off_lock(consistency, "/master/state", move |state, out| {
            write_master_state(state, &about, out)
        })
        .await
}

#[derive(Deserialize)]
struct SlaveParams {
    slave_id: Option<String>,
}

async fn master_slaves(
    State(master): State<Master>,
    Query(options): Query<ReadOptions>,
    Query(params): Query<SlaveParams>,
) -> Result<Response, ApiError> {
    let consistency = options.consistency(&master)?;
    let slave_id = params.slave_id.filter(|id| !id.is_empty()).map(AgentId::from);
    master
        .respond_off_lock(consistency, "/master/slaves", move |state, out| {
            serde_json::to_writer(out, &slaves(state, slave_id.as_ref()))
        })
        .await
}

#[derive(Deserialize)]
struct FrameworkParams {
    framework_id: Option<String>,
}

async fn master_frameworks(
    State(master): State<Master>,
    Query(options): Query<ReadOptions>,
    Query(params): Query<FrameworkParams>,
) -> Result<Response, ApiError> {
    let consistency = options.consistency(&master)?;
    let framework_id = params.framework_id.filter(|id| !id.is_empty()).map(FrameworkId::from);
    master
        .respond_off_lock(consistency, "/master/frameworks", move |state, out| {
            write_frameworks(state, framework_id.as_ref(), out)
        })
        .await
}

async fn master_tasks(
    State(master): State<Master>,
    Query(options): Query<ReadOptions>,
    Query(params): Query<TaskQueryParams>,
) -> Result<Response, ApiError> {
    let query = params.validate()?;
    let consistency = options.consistency(&master)?;
    match query.bound() {
        Some(limit) if limit <= PAGE_UNDER_LOCK => {
            let body = master
                .read_visible(consistency, |state, _| {
                    let mut body = Vec::new();
                    write_tasks(state, &query, &mut body).map(|()| body)
                })
                .await?
                .map_err(|error| ApiError::Internal(format!("tasks do not render: {error}")))?;
            Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
        }
        _ => {
            master
                .respond_off_lock(consistency, "/master/tasks", move |state, out| {
                    write_tasks(state, &query, out)
                })
                .await
        }
    }
}

async fn master_roles(
    State(master): State<Master>,
    Query(options): Query<ReadOptions>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let consistency = options.consistency(&master)?;
    let answer = master
        .read_visible(consistency, |state, hidden| {
            let mut answer = roles(state);
            super::retain_visible_roles(&mut answer["roles"], hidden);
            answer
        })
        .await?;
    Ok(Json(answer))
}

async fn master_flags(
    State(master): State<Master>,
    Query(options): Query<ReadOptions>,
) -> Result<Json<serde_json::Value>, ApiError> {
    options.consistency(&master)?;
    Ok(Json(flags(master.flags())))
}

async fn master_state_summary(
    State(master): State<Master>,
    Query(options): Query<ReadOptions>,
) -> Result<Response, ApiError> {
    let consistency = options.consistency(&master)?;
    let address = &master.inner.address;
    let hostname = address.rsplit_once(':').map_or(address.as_str(), |(host, _)| host).to_owned();
    master
        .respond_off_lock(consistency, "/master/state-summary", move |state, out| {
            let cluster = state.settings().cluster_id.clone();
            serde_json::to_writer(out, &state_summary(state, &hostname, &cluster))
        })
        .await
}

async fn master_maintenance_schedule(
    State(master): State<Master>,
    Query(options): Query<ReadOptions>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let consistency = options.consistency(&master)?;
    Ok(Json(master.read_state(consistency, maintenance_schedule).await?))
}

async fn master_maintenance_status(
    State(master): State<Master>,
    Query(options): Query<ReadOptions>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let consistency = options.consistency(&master)?;
    Ok(Json(master.read_state(consistency, maintenance_status).await?))
}

/// 307 to the leader, keeping whatever path follows `redirect` and the query.
async fn master_redirect(State(master): State<Master>, uri: Uri) -> Result<Response, ApiError> {
    let leader = if master.node().is_leader() {
        master.inner.address.clone()
    } else {
        master.node().status().leader_address.ok_or(ApiError::NoLeader)?
    };
    let path = uri.path();
    let rest = path.split_once("/redirect").map_or("", |(_, rest)| rest);
    let rest = if rest == "/" { "" } else { rest };
    let query = uri.query().map(|query| format!("?{query}")).unwrap_or_default();
    let location = format!("//{leader}{rest}{query}");
    Ok((StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, location)]).into_response())
}

/// Serves `handler` at `/master/NAME` and `/NAME`, each with and without a trailing slash.
fn mesos_paths(
    router: Router<Master>,
    name: &str,
    handler: MethodRouter<Master>,
) -> Router<Master> {
    let mut router = router;
    for prefix in ["/master", ""] {
        for slash in ["", "/"] {
            router = router.route(&format!("{prefix}/{name}{slash}"), handler.clone());
        }
    }
    router
}

/// The v0 reads under Mesos's paths.
pub(crate) fn router() -> Router<Master> {
    let mut router = Router::new();
    for (name, handler) in [
        ("state", get(master_state)),
        ("slaves", get(master_slaves)),
        ("frameworks", get(master_frameworks)),
        ("tasks", get(master_tasks)),
        ("roles", get(master_roles)),
        ("flags", get(master_flags)),
        ("state-summary", get(master_state_summary)),
        ("maintenance/schedule", get(master_maintenance_schedule)),
        ("maintenance/status", get(master_maintenance_status)),
        ("redirect", get(master_redirect)),
    ] {
        router = mesos_paths(router, name, handler);
    }
    router.route("/master/redirect/{*rest}", get(master_redirect))
}
