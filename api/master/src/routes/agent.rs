//! The agent-facing API: agents send commands (register, re-register, heartbeat, status
//! updates, executor messages) and follow their own events from a cursor.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use bytes::Bytes;
use corral_log::{EventFilter, Standing, SubscriptionEnded};
use corral_state::{Actor, AgentId, Command, Event, RequestId};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::error::ApiError;
use crate::master::Master;
use crate::native::{ndjson_line, resume_cursor};
use crate::stream::{channel_body, ndjson_response, pump, Heartbeat, Step, StreamClient};
use axum::routing::{get, post};
use axum::Router;

/// One agent command. The request id makes retries safe: agents use a status update's
/// uuid, so an update retried after a leader change is applied once.
#[derive(Debug, Deserialize)]
pub(crate) struct AgentCommand {
    pub request_id: String,
    /// Absent only on first registration.
    pub agent_id: Option<AgentId>,
    pub command: Command,
}

#[derive(Debug, Serialize)]
pub(crate) struct AgentCommandResult {
    pub index: u64,
    pub first_event: String,
    pub outcome: corral_state::Outcome,
}

pub(crate) async fn command(
    State(master): State<Master>,
    Json(request): Json<AgentCommand>,
) -> Result<Response, ApiError> {
    if request.request_id.trim().is_empty() {
        return Err(ApiError::bad_request("request_id", "must not be empty"));
    }
    let allowed = matches!(
        request.command,
        Command::RegisterAgent { .. }
            | Command::ReregisterAgent { .. }
            | Command::AgentHeartbeat { .. }
            | Command::UpdateStatus { .. }
            | Command::ExecutorMessage { .. }
    );
    if !allowed {
        return Err(ApiError::bad_request(
            "command",
            format!("{} is not an agent command", request.command.kind()),
        ));
    }
    let actor = match request.agent_id {
        Some(agent_id) => Actor::Agent(agent_id),
        // A new agent has no id yet; the master registers it.
        None => Actor::Leader,
    };
    // A master cut off from the cluster would redirect to a leader long gone, or (the
    // leader itself) hold the command until its quorum returns: the agent goes elsewhere.
    if master.node().standing() == Standing::Adrift {
        return Err(ApiError::Adrift);
    }
    master.redirect_if_follower()?;
    let committed =
        master.propose(RequestId::new(request.request_id), actor, request.command).await?;
    let status =
        if committed.outcome.is_rejected() { StatusCode::CONFLICT } else { StatusCode::OK };
    let result = AgentCommandResult {
        index: committed.index,
        first_event: committed.first_event.to_string(),
        outcome: committed.outcome,
    };
    Ok((status, Json(result)).into_response())
}

/// How often an agent's event stream says it is alive; agents give up on a stream silent
/// for a few of these (`corral_agent::daemon`'s stream read timeout).
const AGENT_STREAM_HEARTBEAT: std::time::Duration = std::time::Duration::from_millis(500);

/// The agent streams' heartbeat line, `{"kind":"heartbeat","leader":"host:port"}`, kept
/// current as this master's standing changes; one task per master, started by the first
/// stream. Naming the leader lets an agent whose commands wait on a leader that paused or
/// was cut off send them to the new one as soon as the master it reads from knows it.
fn agent_beat(master: &Master) -> watch::Receiver<Bytes> {
    let line = |node: &corral_log::LogNode| {
        let leader = match node.standing() {
            Standing::Adrift => None,
            Standing::Leading | Standing::Following { .. } => node.status().leader_address,
        };
        Bytes::from(format!("{}\n", serde_json::json!({"kind": "heartbeat", "leader": leader})))
    };
    let beat = master.inner.agent_beat.get_or_init(|| {
        let node = master.node().clone();
        let (sender, receiver) = watch::channel(line(&node));
        tokio::spawn(async move {
            let mut standing = node.watch_standing();
            while standing.changed().await.is_ok() {
                if sender.send(line(&node)).is_err() {
                    return;
                }
            }
        });
        receiver
    });
    beat.clone()
}

/// Resolves once this master becomes adrift (see [`Standing`]) after the stream opened.
/// The watch's value at the start is not taken: the route has just read the standing at
/// once, and the watch trails it by up to a poll (a leader elected a moment ago).
async fn adrift(mut standing: watch::Receiver<Standing>) {
    standing.mark_unchanged();
    // An error (the log shut down) ends the wait too, and that ends streams anyway.
    while standing.changed().await.is_ok() {
        if *standing.borrow_and_update() == Standing::Adrift {
            return;
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AgentEventsQuery {
    from: Option<String>,
}

/// NDJSON of the agent's own events after `from`; any master serves it.
pub(crate) async fn events(
    State(master): State<Master>,
    Extension(client): Extension<StreamClient>,
    Path(agent_id): Path<String>,
    Query(query): Query<AgentEventsQuery>,
) -> Result<Response, ApiError> {
    let admitted = client.admit_agent()?;
    let from = resume_cursor(None, query.from.as_deref())?;
    // A master cut off from the cluster serves a journal that no longer grows.
    if master.node().standing() == Standing::Adrift {
        return Err(ApiError::Adrift);
    }
    let beat = agent_beat(&master);
    let stop = adrift(master.node().watch_standing());
    let filter = EventFilter { agent_id: Some(AgentId::from(agent_id)), ..EventFilter::default() };
    let subscription = match master.node().subscribe(from, filter) {
        Ok(subscription) => subscription,
        Err(SubscriptionEnded::TooOld { oldest }) => {
            let body = serde_json::json!({"error": "gone", "field": "from", "oldest": oldest.to_string(), "message": format!("resume from {oldest} or re-register")});
            return Ok((StatusCode::GONE, Json(body)).into_response());
        }
        Err(other) => return Err(ApiError::Internal(other.to_string())),
    };
    let (sender, body) = channel_body();
    tokio::spawn(async move {
        let _counted_while_open = admitted;
        pump(
            sender,
            Vec::new(),
            subscription,
            |event: &Event, cursor| Step::Send(vec![Bytes::from(ndjson_line(cursor, event))]),
            // Often, so an agent whose master went quiet (paused) notices within a second or
            // two and follows another master from its cursor; a master that knows itself
            // cut off ends the stream at once.
            Some(Heartbeat::watched(AGENT_STREAM_HEARTBEAT, beat)),
            stop,
            |ended| {
                Some(Bytes::from(format!(
                    "{}\n",
                    serde_json::json!({"disconnected": ended.to_string()})
                )))
            },
        )
        .await;
    });
    Ok(ndjson_response(body))
}

/// The agent-facing API: commands in, each agent's events out.
pub(crate) fn router() -> Router<Master> {
    Router::new()
        .route("/corral/v1/agent/commands", post(command))
        .route("/corral/v1/agent/{agent_id}/events", get(events))
}
