//! `/corral/v1/*`: the cluster's own view, the resumable event stream, the allocator's
//! explanations.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use bytes::Bytes;
use corral_log::{EventFilter, SubscriptionEnded};
use corral_state::{Event, FrameworkId, Role};
use serde::Deserialize;

use crate::error::ApiError;
use crate::master::{ExplainQuery, ExplainRequest, Master};
use crate::native::{ndjson_line, parse_topics, resume_cursor, sse_frame};
use crate::stream::{channel_body, pump, Heartbeat, Step, StreamClient};
use axum::routing::get;
use axum::Router;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ClusterQuery {
    digest: Option<String>,
}

/// Whether `?digest=` asks for the state digest.
fn wants_digest(query: &ClusterQuery) -> Result<bool, ApiError> {
    match query.digest.as_deref() {
        None | Some("false" | "0") => Ok(false),
        Some("true" | "1" | "") => Ok(true),
        Some(other) => {
            Err(ApiError::bad_request("digest", format!("{other:?} is not true or false")))
        }
    }
}

/// Who leads, the log's position and the members: cheap, so UIs, CLIs and load balancers may
/// poll it. The state digest encodes and hashes the whole state under the state machine's
/// lock (hundreds of milliseconds at 10,000 agents, every command waiting), so it is given
/// only to whoever asks for it with `?digest=true`, as a replica comparison does.
pub(crate) async fn cluster(
    State(master): State<Master>,
    Query(query): Query<ClusterQuery>,
) -> Result<Response, ApiError> {
    let with_digest = wants_digest(&query)?;
    let status = master.node().status();
    let state_digest = with_digest.then(|| {
        let (index, digest) = master.node().applied_digest();
        serde_json::json!({"index": index, "digest": digest.to_string()})
    });
    let chain = master.node().chain_head();
    let members: Vec<serde_json::Value> = status
        .members
        .iter()
        .map(|member| {
            serde_json::json!({
                "node_id": member.node_id,
                "address": member.address,
                "voter": member.voter,
                "matched_index": member.matched_index,
                "lag": member.lag,
                "leader": Some(member.node_id) == status.leader,
            })
        })
        .collect();
    Ok(Json(serde_json::json!({
        "node_id": status.node_id,
        "role": status.role,
        "term": status.term,
        "leader": status.leader,
        "leader_address": status.leader_address,
        "last_log_index": status.last_log_index,
        "commit_index": status.committed_index,
        "applied_index": status.applied_index,
        "snapshot_index": status.snapshot_index,
        "purged_index": status.purged_index,
        // Equal on every master that applied the same entries: compare replicas with it.
        "state_digest": state_digest,
        // The journal's hash chain: equal on every master at the same index.
        "chain": {"index": chain.index, "hash": chain.hex()},
        // The oldest index audit and time travel can answer for (the UI's time slider).
        "audit_start": master.node().journal().audit_start(),
        "members": members,
    }))
    .into_response())
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct EventsQuery {
    from: Option<String>,
    topic: Option<String>,
    /// `sse` or `ndjson`; otherwise the `Accept` header decides (SSE for `text/event-stream`).
    format: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Sse,
    Ndjson,
}

pub(crate) async fn events(
    State(master): State<Master>,
    Extension(client): Extension<StreamClient>,
    headers: HeaderMap,
    Query(query): Query<EventsQuery>,
) -> Result<Response, ApiError> {
    let admitted = client.admit()?;
    let last_event_id = headers.get("Last-Event-ID").and_then(|value| value.to_str().ok());
    let from = resume_cursor(last_event_id, query.from.as_deref())?;
    let topics = parse_topics(query.topic.as_deref())?;
    let wants_sse = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/event-stream"));
    let format = match query.format.as_deref() {
        Some("sse") => Format::Sse,
        Some("ndjson") => Format::Ndjson,
        None if wants_sse => Format::Sse,
        None => Format::Ndjson,
        Some(other) => {
            return Err(ApiError::bad_request(
                "format",
                format!("'{other}' is not 'sse' or 'ndjson'"),
            ))
        }
    };
    let subscription = match master.node().subscribe(from, EventFilter::topics(topics)) {
        Ok(subscription) => subscription,
        Err(SubscriptionEnded::TooOld { oldest }) => {
            let body = serde_json::json!({
                "error": "gone",
                "field": "from",
                "message": format!("events after {from} are no longer retained; the oldest cursor to resume from is {oldest}"),
                "oldest": oldest.to_string(),
            });
            return Ok((StatusCode::GONE, Json(body)).into_response());
        }
        Err(other) => return Err(ApiError::Internal(other.to_string())),
    };
    let (sender, body) = channel_body();
    let master_for_metrics = master.clone();
    let viewer = master.event_viewer(crate::master::Views::Mesos);
    let open = master.inner.event_streams.open("events", subscription.progress());
    tokio::spawn(async move {
        let _counted_while_open = (open, admitted);
        let end = pump(
            sender,
            Vec::new(),
            subscription,
            move |event: &Event, cursor| {
                if viewer.hides(event, None) {
                    return Step::Send(Vec::new());
                }
                let frame = match format {
                    Format::Sse => sse_frame(cursor, event),
                    Format::Ndjson => ndjson_line(cursor, event),
                };
                Step::Send(vec![Bytes::from(frame)])
            },
            // A quiet stream still says it is alive, so a reader can tell a dead master
            // (nothing at all) from an idle cluster.
            Some(Heartbeat::fixed(
                master.inner.intervals.stream_heartbeat,
                Bytes::from_static(match format {
                    Format::Sse => b": keep-alive\n\n",
                    Format::Ndjson => b"{\"kind\":\"heartbeat\"}\n",
                }),
            )),
            std::future::pending::<()>(),
            move |ended| {
                let reason = serde_json::json!({"disconnected": ended.to_string()});
                Some(Bytes::from(match format {
                    Format::Sse => format!("event: disconnected\ndata: {reason}\n\n"),
                    Format::Ndjson => format!("{reason}\n"),
                }))
            },
        )
        .await;
        if let crate::stream::PumpEnd::Subscription(ended) = end {
            let reason = match ended {
                SubscriptionEnded::TooSlow { .. } => "too_slow",
                SubscriptionEnded::TooOld { .. } => "too_old",
                SubscriptionEnded::Closed => "closed",
                SubscriptionEnded::Failed(_) => "failed",
            };
            master_for_metrics.inner.metrics.stream_disconnects.with_label_values(&[reason]).inc();
        }
    });
    let content_type = match format {
        Format::Sse => "text/event-stream",
        Format::Ndjson => "application/x-ndjson",
    };
    let mut response = Response::new(body);
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ExplainParams {
    framework_id: Option<String>,
    role: Option<String>,
}

pub(crate) async fn explain(
    State(master): State<Master>,
    Query(params): Query<ExplainParams>,
) -> Result<Response, ApiError> {
    let query = match (params.framework_id, params.role) {
        (Some(framework_id), None) => ExplainQuery::Framework(FrameworkId::from(framework_id)),
        (None, Some(role)) => ExplainQuery::Role(
            Role::parse(&role).map_err(|problem| ApiError::bad_request("role", problem))?,
        ),
        _ => {
            return Err(ApiError::bad_request(
                "framework_id",
                "give exactly one of framework_id or role",
            ))
        }
    };
    master.redirect_if_follower()?;
    let sender =
        master.inner.explain.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
    let Some(sender) = sender else { return Err(ApiError::NoLeader) };
    let (reply, answer) = tokio::sync::oneshot::channel();
    sender
        .send(ExplainRequest { query: query.clone(), reply })
        .await
        .map_err(|_| ApiError::NoLeader)?;
    match answer.await.map_err(|_| ApiError::NoLeader)? {
        Some(explanation) => Ok(Json(explanation).into_response()),
        None => Err(ApiError::NotFound(format!(
            "the allocator has no record of {query:?} in its last cycle"
        ))),
    }
}

/// `/corral/v1/cluster`, `/corral/v1/events`, `/corral/v1/allocation/explain`.
pub(crate) fn router() -> Router<Master> {
    Router::new()
        .route("/corral/v1/cluster", get(cluster))
        .route("/corral/v1/events", get(events))
        .route("/corral/v1/allocation/explain", get(explain))
}
