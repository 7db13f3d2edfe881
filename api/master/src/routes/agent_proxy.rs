//! `GET /agent/{agent_id}/...` and Mesos's spelling `/slave/{agent_id}/...`: the request,
//! path after the id and query kept, forwarded to the agent's own HTTP server at the
//! address it registered with, and its answer streamed back as it comes (status, type and
//! body). A client that can reach only the masters can read sandboxes this way
//! (`/agent/ID/files/read?path=...`).
//!
//! The caller's `Authorization` and `X-Corral-Token` go with the request: with access
//! control on, the agent asks a master about the same caller (its own API answers 401/403
//! as the masters do), after this master's own check of `access_sandboxes`/`view_tasks`.
//!
//! Any master proxies, leader or not: the agent's address is in every master's state. An
//! unknown (or gone) agent is a 404 naming `agent_id`; an agent that cannot be reached is a
//! 502, one that does not answer in time a 504, each logged with its cause.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use corral_log::ReadConsistency;
use corral_state::AgentId;

use crate::error::ApiError;
use crate::master::Master;

/// Headers of the agent's answer that the client needs (`/files/download` names its file).
const FORWARDED: [header::HeaderName; 3] =
    [header::CONTENT_TYPE, header::CONTENT_LENGTH, header::CONTENT_DISPOSITION];

/// The caller's credentials, passed on so the agent's own check (it asks a master) decides
/// for the same caller.
const CREDENTIALS: [&str; 2] = ["authorization", "x-corral-token"];

async fn proxy(
    State(master): State<Master>,
    Path((agent_id, _rest)): Path<(String, String)>,
    uri: Uri,
    request_headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = AgentId::from(agent_id.as_str());
    let address = master
        .read_state(ReadConsistency::Local, |state| {
            state
                .agent(&id)
                .filter(|agent| !agent.is_gone())
                .map(|agent| agent.info.address.clone())
        })
        .await?
        .ok_or_else(|| ApiError::Missing {
            field: "agent_id".to_owned(),
            problem: format!("no agent '{agent_id}' is registered"),
        })?;
    // Everything after `/agent/{id}`, query included, as it was sent.
    let path = uri.path();
    let prefix_end = path.match_indices('/').nth(2).map_or(path.len(), |(index, _)| index);
    let rest = &path[prefix_end..];
    let query = uri.query().map(|query| format!("?{query}")).unwrap_or_default();
    let scheme = if master.inner.serving.tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{address}{rest}{query}");
    let mut request = master.inner.agent_http.get(&url);
    for name in CREDENTIALS {
        if let Some(value) = request_headers.get(name) {
            request = request.header(name, value.as_bytes());
        }
    }
    let answer = request.send().await.map_err(|error| {
        let cause = format!("GET {url}: {error:?}");
        if error.is_timeout() {
            ApiError::AgentTimeout { agent_id: agent_id.clone(), address: address.clone(), cause }
        } else {
            ApiError::AgentUnreachable {
                agent_id: agent_id.clone(),
                address: address.clone(),
                cause,
            }
        }
    })?;
    let status = StatusCode::from_u16(answer.status().as_u16()).map_err(|error| {
        ApiError::Internal(format!("agent {agent_id} sent a bad status: {error}"))
    })?;
    let mut headers = HeaderMap::new();
    for name in FORWARDED {
        if let Some(value) = answer.headers().get(name.as_str()) {
            if let Ok(value) = header::HeaderValue::from_bytes(value.as_bytes()) {
                headers.insert(name, value);
            }
        }
    }
    let body = Body::from_stream(answer.bytes_stream());
    Ok((status, headers, body).into_response())
}

/// `/agent/{agent_id}/...` and `/slave/{agent_id}/...`.
pub(crate) fn router() -> Router<Master> {
    Router::new()
        .route("/agent/{agent_id}/{*rest}", get(proxy))
        .route("/slave/{agent_id}/{*rest}", get(proxy))
}
