//! `POST /api/v1/scheduler`: the Mesos v1 scheduler API.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use corral_log::{EventFilter, ReadConsistency};
use corral_state::model::FrameworkInfo;
use corral_state::{Actor, Command, Event, FrameworkId, Operation, Outcome, Rejection, Topic};

use crate::error::ApiError;
use crate::master::{new_request_id, wall_clock, Master};
use crate::stream::{channel_body, leadership_lost, pump, Heartbeat, PumpEnd, Step, StreamClient};
use axum::routing::post;
use axum::Router;
use corral_mesos::call::{CallJson, SchedulerCall};
use corral_mesos::events::{
    error_event, heartbeat_event, invalid_offer_status, update_event, PartitionAwareness,
};
use corral_mesos::recordio::encode_record;
use corral_mesos::session::{FrameworkSession, SessionStep};
use corral_state::auth::{Denial, DenialReason};

const STREAM_ID_HEADER: &str = "Mesos-Stream-Id";

fn record(json: &serde_json::Value) -> Bytes {
    encode_record(json.to_string().as_bytes())
}

pub(crate) async fn call(
    State(master): State<Master>,
    Extension(client): Extension<StreamClient>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let call: CallJson = match serde_json::from_slice(&body) {
        Ok(call) => call,
        Err(error) => {
            return ApiError::bad_request("body", format!("not a valid scheduler call: {error}"))
                .into_response()
        }
    };
    let result = match call.into_call() {
        Err(error) => Err(error.into()),
        Ok(SchedulerCall::Subscribe { framework_id, info }) => {
            subscribe(master, &client, framework_id, info).await
        }
        Ok(SchedulerCall::Command { framework_id, command }) => {
            framework_call(master, &headers, framework_id, command).await
        }
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn framework_call(
    master: Master,
    headers: &HeaderMap,
    framework_id: FrameworkId,
    command: Command,
) -> Result<Response, ApiError> {
    master.redirect_if_follower()?;
    let stream_id =
        headers.get(STREAM_ID_HEADER).and_then(|value| value.to_str().ok()).ok_or_else(|| {
            ApiError::bad_request(
                STREAM_ID_HEADER,
                "header is missing; SUBSCRIBE first and send the stream id it returned",
            )
        })?;
    if !master.inner.scheduler_streams.is_current(&framework_id, stream_id) {
        return Err(ApiError::bad_request(
            STREAM_ID_HEADER,
            format!("'{stream_id}' is not the current stream of framework {framework_id}"),
        ));
    }
    let launched_task_ids: Vec<_> = match &command {
        Command::Accept { operations, .. } => operations
            .iter()
            .flat_map(|operation| match operation {
                Operation::Launch { task_infos } | Operation::LaunchGroup { task_infos, .. } => {
                    task_infos.clone()
                }
                Operation::Reserve { .. } | Operation::Unreserve { .. } => Vec::new(),
            })
            .collect(),
        _ => Vec::new(),
    };
    let is_kill = matches!(command, Command::Kill { .. });

    let committed =
        master.propose(new_request_id(), Actor::Framework(framework_id.clone()), command).await?;
    let Some(rejection) = committed.outcome.rejection() else {
        return Ok(StatusCode::ACCEPTED.into_response());
    };
    match rejection {
        Rejection::NotPermitted { .. }
        | Rejection::FrameworkNotSubscribed(_)
        | Rejection::FrameworkRemoved(_)
        | Rejection::UnknownFramework(_) => {
            return Err(ApiError::Rejected(rejection.clone()));
        }
        _ => {}
    }
    // Mesos handles these calls asynchronously: the call is accepted and its failure shows up
    // on the stream, as TASK_DROPPED (or TASK_LOST) for tasks of an invalid ACCEPT.
    // Only an ACCEPT launches tasks.
    if !launched_task_ids.is_empty() {
        let awareness = master
            .node()
            .read(ReadConsistency::Local, |state| {
                state.framework(&framework_id).is_some_and(|f| f.info.is_partition_aware())
            })
            .await
            .map_err(|error| master.log_error(error))?;
        let awareness =
            if awareness { PartitionAwareness::Aware } else { PartitionAwareness::Unaware };
        for task in &launched_task_ids {
            let status = invalid_offer_status(
                &task.task_id,
                &task.agent_id,
                awareness,
                &format!("task launched with invalid offers: {rejection}"),
                wall_clock(),
            );
            master.inner.scheduler_streams.send_direct(&framework_id, update_event(&status));
        }
    }
    // Mesos answers KILL of a task it does not know with an update rather than an error.
    if let (true, Rejection::UnknownTask { task_id, .. }) = (is_kill, rejection) {
        let status = corral_state::model::TaskStatus {
            task_id: task_id.clone(),
            state: corral_state::model::TaskState::Lost,
            message: Some(format!("kill of an unknown task: {rejection}")),
            source: corral_state::model::TaskSource::Master,
            reason: Some(corral_state::model::TaskReason::TaskUnknown),
            healthy: None,
            agent_id: None,
            executor_id: None,
            timestamp: wall_clock(),
            uuid: None,
            exit_code: None,
        };
        master.inner.scheduler_streams.send_direct(&framework_id, update_event(&status));
    }
    let mut response = StatusCode::ACCEPTED.into_response();
    if let Ok(value) = HeaderValue::from_str(&rejection.to_string().replace(['\r', '\n'], " ")) {
        response.headers_mut().insert("Corral-Rejected", value);
    }
    Ok(response)
}

async fn subscribe(
    master: Master,
    client: &StreamClient,
    framework_id: Option<FrameworkId>,
    info: FrameworkInfo,
) -> Result<Response, ApiError> {
    master.redirect_if_follower()?;
    let admitted = client.admit()?;
    let stream_id = uuid::Uuid::new_v4().to_string();
    // Registering the new stream before the SUBSCRIBE commits keeps a closing old stream from
    // marking the framework disconnected after it has come back.
    let early =
        framework_id.as_ref().map(|id| master.inner.scheduler_streams.replace(id, &stream_id));
    let actor = match &framework_id {
        Some(id) => Actor::Framework(id.clone()),
        None => Actor::Leader,
    };
    // A refused SUBSCRIBE leaves the framework's stream as it was registered early: gone.
    let framework_id_asked = framework_id.clone();
    let forget_early = |master: &Master| {
        if let Some(id) = &framework_id_asked {
            master.inner.scheduler_streams.remove_if_current(id, &stream_id);
        }
    };
    let proposed =
        master.propose(new_request_id(), actor, Command::Subscribe { framework_id, info }).await;
    let committed = match proposed {
        Err(ApiError::Rejected(Rejection::Unauthorized(denial))) if refused_by_acls(&denial) => {
            forget_early(&master);
            return Ok(refused_stream(&denial));
        }
        Err(error) => {
            forget_early(&master);
            return Err(error);
        }
        Ok(committed) => committed,
    };
    let framework_id = match committed.outcome.original() {
        Outcome::Rejected(Rejection::Unauthorized(denial)) if refused_by_acls(denial) => {
            forget_early(&master);
            return Ok(refused_stream(denial));
        }
        Outcome::Rejected(rejection) => {
            forget_early(&master);
            return Err(ApiError::Rejected(rejection.clone()));
        }
        accepted => {
            events_name_framework(accepted.events()).into_iter().next().ok_or_else(|| {
                ApiError::Internal("SUBSCRIBE committed without naming the framework".to_owned())
            })?
        }
    };
    let (closed, direct) = match early {
        Some(closed) => {
            (closed, master.inner.scheduler_streams.direct_receiver(&framework_id, &stream_id))
        }
        None => {
            let closed = master.inner.scheduler_streams.replace(&framework_id, &stream_id);
            // The SUBSCRIBE woke the allocator when it committed, before its stream was
            // here; a cycle that ran in between passed the framework over as unreachable.
            master.inner.allocation_wanted.notify_one();
            (closed, master.inner.scheduler_streams.direct_receiver(&framework_id, &stream_id))
        }
    };
    let master_info = master.master_info();
    // The session opens from the state at or after the SUBSCRIBE entry and follows the
    // events after exactly that state.
    let opened = {
        let framework_id = framework_id.clone();
        master
            .node()
            .read_with_cursor(ReadConsistency::Local, move |state| {
                FrameworkSession::open(framework_id, state, master_info)
            })
            .await
    };
    let ((mut session, first), opened_at) = opened.map_err(|error| master.log_error(error))?;
    let filter = EventFilter::topics([Topic::Offer, Topic::Task, Topic::Framework, Topic::Agent]);
    let subscription = master
        .node()
        .subscribe(opened_at, filter)
        .map_err(|ended| ApiError::Internal(format!("cannot follow the log: {ended}")))?;

    let (sender, body) = channel_body();
    let first: Vec<Bytes> = first.iter().map(record).collect();
    let heartbeat =
        Some(Heartbeat::fixed(master.inner.intervals.stream_heartbeat, record(&heartbeat_event())));
    let task_master = master.clone();
    let task_stream_id = stream_id.clone();
    tokio::spawn(async move {
        let _counted_while_open = admitted;
        let framework_id = session.framework_id().clone();
        let direct_sender = sender.clone();
        let forward_direct = async move {
            let mut direct = direct;
            while let Some(json) = direct.recv().await {
                if direct_sender.send(record(&json)).await.is_err() {
                    break;
                }
            }
        };
        let stop = async {
            tokio::select! {
                _ = closed => {},
                () = leadership_lost(task_master.node().clone()) => {},
                () = forward_direct => {},
            }
        };
        let end = pump(
            sender,
            first,
            subscription,
            |event: &Event, _| match session.on_event(event) {
                SessionStep::Send(events) => Step::Send(events.iter().map(record).collect()),
                SessionStep::SendAndClose(events) => {
                    Step::SendAndEnd(events.iter().map(record).collect())
                }
            },
            heartbeat,
            stop,
            |_| None,
        )
        .await;
        let still_current =
            task_master.inner.scheduler_streams.remove_if_current(&framework_id, &task_stream_id);
        if end == PumpEnd::ClientGone && still_current && task_master.node().is_leader() {
            let command = Command::DisconnectFramework { framework_id: framework_id.clone() };
            if let Err(error) = task_master.propose(new_request_id(), Actor::Leader, command).await
            {
                tracing::warn!(%framework_id, %error, "could not record the framework's disconnection");
            }
        }
    });
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(value) = HeaderValue::from_str(&stream_id) {
        headers.insert(STREAM_ID_HEADER, value);
    }
    Ok(response)
}

/// A SUBSCRIBE the ACLs refuse (`register_frameworks`), as opposed to one with no valid
/// credentials (401) or a FrameworkInfo.principal other than the authenticated one (400).
fn refused_by_acls(denial: &Denial) -> bool {
    !denial.is_unauthenticated() && !matches!(denial.reason, DenialReason::PrincipalMismatch { .. })
}

/// What Mesos answers a SUBSCRIBE its authorizer refuses: the stream opens (200), carries
/// one ERROR event and closes, so a driver reports the reason through its `error` callback.
fn refused_stream(denial: &Denial) -> Response {
    let error = record(&error_event(&format!("Not authorized to subscribe: {denial}")));
    // Chunked, as every scheduler stream: pymesos refuses a stream that is not.
    let chunks = futures::stream::once(async move { Ok::<_, std::convert::Infallible>(error) });
    let mut response = Response::new(axum::body::Body::from_stream(chunks));
    response
        .headers_mut()
        .insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn events_name_framework(events: &[Event]) -> Vec<FrameworkId> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::FrameworkAdded { framework_id, .. }
            | Event::FrameworkResubscribed { framework_id, .. } => Some(framework_id.clone()),
            _ => None,
        })
        .collect()
}

/// `POST /api/v1/scheduler`.
pub(crate) fn router() -> Router<Master> {
    Router::new().route("/api/v1/scheduler", post(call))
}
