//! `POST /api/v1`: the Mesos v1 operator API.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use corral_log::EventFilter;
use corral_state::auth::Action;
use corral_state::{Actor, Event};

use super::misc::ReadOptions;
use crate::error::ApiError;
use crate::master::{new_request_id, Master};
use crate::stream::{channel_body, leadership_lost, pump, Heartbeat, Step, StreamClient};
use axum::routing::post;
use axum::Router;
use corral_mesos::operator::{
    get_state, operator_event, render_query, write_query, OperatorCall, OperatorCallJson,
    OperatorQuery,
};
use corral_mesos::recordio::encode_record;

fn record(json: &serde_json::Value) -> Bytes {
    encode_record(json.to_string().as_bytes())
}

pub(crate) async fn call(
    State(master): State<Master>,
    Extension(client): Extension<StreamClient>,
    Query(options): Query<ReadOptions>,
    body: Bytes,
) -> Response {
    let call: OperatorCallJson = match serde_json::from_slice(&body) {
        Ok(call) => call,
        Err(error) => {
            return ApiError::bad_request("body", format!("not a valid operator call: {error}"))
                .into_response()
        }
    };
    let result = match call.into_call() {
        Err(error) => Err(error.into()),
        Ok(OperatorCall::Query(query)) => answer(&master, query, &options).await,
        Ok(OperatorCall::Command(command)) => apply(&master, *command).await,
        Ok(OperatorCall::Subscribe) => subscribe(&master, &client).await,
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn answer(
    master: &Master,
    query: OperatorQuery,
    options: &ReadOptions,
) -> Result<Response, ApiError> {
    if query == OperatorQuery::Health {
        return Ok(
            Json(render_query(query, &corral_state::ClusterState::default())).into_response()
        );
    }
    // What `view_*` cannot filter is refused whole, as Mesos does.
    let asks = match query {
        OperatorQuery::Flags => Some(Action::ViewFlags),
        OperatorQuery::MaintenanceSchedule => Some(Action::GetMaintenanceSchedules),
        OperatorQuery::MaintenanceStatus => Some(Action::GetMaintenanceStatuses),
        _ => None,
    };
    if let Some(action) = asks {
        crate::auth::authorize(master, action, None).await?;
    }
    let consistency = options.consistency(master)?;
    if matches!(query, OperatorQuery::State | OperatorQuery::Tasks) {
        // A 70 MB answer: applying must not wait for it, nor the client for all of it.
        return master
            .respond_off_lock(consistency, "operator read", move |state, out| {
                write_query(query, state, out)
            })
            .await;
    }
    let mut body = master
        .read_visible(consistency, |state, hidden| {
            let mut body = render_query(query, state);
            if query == OperatorQuery::Roles {
                super::retain_visible_roles(&mut body["get_roles"]["roles"], hidden);
            }
            body
        })
        .await?;
    match query {
        OperatorQuery::Flags => {
            let flags: Vec<serde_json::Value> = master
                .flags()
                .into_iter()
                .map(|(name, value)| serde_json::json!({"name": name, "value": value}))
                .collect();
            body["get_flags"]["flags"] = serde_json::json!(flags);
        }
        OperatorQuery::Metrics => {
            let metrics: Vec<serde_json::Value> = super::misc::mesos_metrics(master)
                .await?
                .into_iter()
                .map(|(name, value)| serde_json::json!({"name": name, "value": value}))
                .collect();
            body["get_metrics"]["metrics"] = serde_json::json!(metrics);
        }
        _ => {}
    }
    Ok(Json(body).into_response())
}

async fn apply(master: &Master, command: corral_state::Command) -> Result<Response, ApiError> {
    master.redirect_if_follower()?;
    let committed =
        master.propose(new_request_id(), Actor::Operator { principal: None }, command).await?;
    if let Some(rejection) = committed.outcome.rejection() {
        return Err(ApiError::Rejected(rejection.clone()));
    }
    Ok(StatusCode::OK.into_response())
}

async fn subscribe(master: &Master, client: &StreamClient) -> Result<Response, ApiError> {
    let admitted = client.admit()?;
    master.redirect_if_follower()?;
    let (first, subscription) = {
        // GET_STATE, then the events after exactly that state: none missed, none twice.
        // Without what the subscriber may not view (`view_*`), as GET_STATE.
        let (state_json, applied) = master.read_visible_with_cursor(get_state).await?;
        let heartbeat_seconds = master.inner.intervals.stream_heartbeat.as_secs_f64();
        let subscribed = serde_json::json!({
            "type": "SUBSCRIBED",
            "subscribed": {"get_state": state_json, "heartbeat_interval_seconds": heartbeat_seconds}
        });
        let subscription = master
            .node()
            .subscribe(applied, EventFilter::all())
            .map_err(|ended| ApiError::Internal(format!("cannot follow the log: {ended}")))?;
        (vec![record(&subscribed)], subscription)
    };
    let (sender, body) = channel_body();
    let heartbeat = Some(Heartbeat::fixed(
        master.inner.intervals.stream_heartbeat,
        record(&serde_json::json!({"type": "HEARTBEAT"})),
    ));
    let node = master.node().clone();
    let viewer = master.event_viewer(crate::master::Views::Mesos);
    let open = master.inner.event_streams.open("operator", subscription.progress());
    tokio::spawn(async move {
        let _counted_while_open = (open, admitted);
        pump(
            sender,
            first,
            subscription,
            move |event: &Event, _| {
                if viewer.hides(event, None) {
                    return Step::Send(Vec::new());
                }
                Step::Send(operator_event(event).iter().map(record).collect())
            },
            heartbeat,
            leadership_lost(node),
            |_| None,
        )
        .await;
    });
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

/// `POST /api/v1`.
pub(crate) fn router() -> Router<Master> {
    Router::new().route("/api/v1", post(call))
}
