//! The rest of Marathon's `/v2`: tasks, deployments, the launch queue, the event bus, and
//! what a client asks of the server itself (`/v2/info`, `/v2/leader`, `/ping`).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use corral_log::{EventFilter, ReadConsistency, SubscriptionEnded};
use corral_state::{Cancellation, Command, DeploymentId, Event, TaskId, Topic};
use serde_json::{json, Value};

use super::marathon_apps::{
    app_id_from_path, deployment_answer, kill_rendered, new_deployment_id, param, param_values,
    propose, Many, Params,
};
use crate::error::ApiError;
use crate::master::{wall_clock, Master, Views};
use crate::native::resume_cursor;
use crate::stream::{channel_body, pump, Heartbeat, Step, StreamClient};
use axum::routing::{delete, get, post};
use axum::Router;
use corral_marathon::events::{marathon_event, EVENT_TYPES};
use corral_marathon::render::{deployment_json, ServiceView};

pub(crate) async fn ping() -> Response {
    ([(header::CONTENT_TYPE, "text/plain")], "pong").into_response()
}

pub(crate) async fn info(State(master): State<Master>) -> Result<Response, ApiError> {
    let framework_id = master
        .read_state(ReadConsistency::Local, |state| {
            state.services().framework_id.as_ref().map(|id| id.as_str().to_owned())
        })
        .await?;
    let status = master.node().status();
    let leader = status.leader_address.clone();
    Ok(Json(json!({
        "name": "marathon",
        "version": "1.4.0",
        "buildref": concat!("corral-", env!("CARGO_PKG_VERSION")),
        "elected": master.node().is_leader(),
        "leader": leader,
        "frameworkId": framework_id,
        "marathonConfig": {
            "master": "built-in",
            "frameworkName": "marathon",
            "ha": true,
            "hostname": master.inner.address,
            "checkpoint": true,
            "mesosRole": null,
            "declineOfferDuration": 5000,
        },
        "httpConfig": {"httpPort": master.inner.address.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok())},
        "eventSubscriber": {"type": "sse", "httpEndpoints": []},
        // Corral needs no ZooKeeper; clients parse the object regardless.
        "zookeeperConfig": {},
    }))
    .into_response())
}

pub(crate) async fn leader(State(master): State<Master>) -> Result<Response, ApiError> {
    match master.node().status().leader_address {
        Some(address) => Ok(Json(json!({"leader": address})).into_response()),
        None => Err(ApiError::NotFound("there is no leader".to_owned())),
    }
}

pub(crate) async fn tasks(
    State(master): State<Master>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let wanted: Vec<String> = param_values(&params, "status")
        .map(|status| format!("task_{}", status.to_ascii_lowercase()))
        .collect();
    let tasks = master
        .render_off_lock(ReadConsistency::Local, Views::Apps, move |state| {
            let view = ServiceView::new(state);
            let mut rendered = Vec::new();
            for (app_id, instances) in &state.services().instances {
                let health_checked =
                    state.services().app(app_id).is_some_and(|app| app.spec.health_checked);
                for task_id in instances.keys() {
                    let Some(task) = view.task(task_id) else { continue };
                    let state_name = task.state.as_mesos_str().to_ascii_lowercase();
                    if !wanted.is_empty() && !wanted.contains(&state_name) {
                        continue;
                    }
                    rendered.push(view.task_json(app_id, task, health_checked));
                }
            }
            rendered
        })
        .await?;
    Ok(Json(json!({"tasks": tasks})).into_response())
}

/// `POST /v2/tasks/delete` with `{"ids": [...]}`: tasks of any app. An id that is no live
/// task of an app is refused before anything is killed.
pub(crate) async fn delete_tasks(
    State(master): State<Master>,
    Query(params): Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    #[derive(serde::Deserialize)]
    struct Ids {
        ids: Vec<String>,
    }
    let Ids { ids } = serde_json::from_slice(&body).map_err(|error| {
        ApiError::bad_request("ids", format!("expected {{\"ids\": [...]}}: {error}"))
    })?;
    let tasks = master
        .read_state(ReadConsistency::Local, move |state| {
            let view = ServiceView::new(state);
            let mut rendered = Vec::new();
            for id in &ids {
                let task_id = TaskId::new(id.as_str());
                let found = state.services().instance(&task_id).and_then(|instance| {
                    let task = view.task(&task_id)?;
                    let checked = state
                        .services()
                        .app(&instance.app_id)
                        .is_some_and(|a| a.spec.health_checked);
                    Some(view.task_json(&instance.app_id, task, checked))
                });
                rendered.push(found.ok_or_else(|| ApiError::NotFound(format!("no task {id}")))?);
            }
            Ok::<_, ApiError>(rendered)
        })
        .await??;
    kill_rendered(&master, tasks, &params, Many::List).await
}

pub(crate) async fn deployments(State(master): State<Master>) -> Result<Response, ApiError> {
    let deployments = master
        .read_apps_visible(|state, shown| {
            let deployments = state.services().deployments.values();
            deployments.filter(|d| shown(&d.app_id)).map(deployment_json).collect::<Vec<Value>>()
        })
        .await?;
    Ok(Json(deployments).into_response())
}

/// Without `force`, the app goes back to how it was before the deployment, in a new
/// deployment; with it, the deployment is forgotten and the instances stay as they are.
pub(crate) async fn cancel_deployment(
    State(master): State<Master>,
    Path(deployment_id): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let deployment_id = DeploymentId::new(deployment_id);
    if super::marathon_apps::flag(&params, "force")? {
        let command =
            Command::CancelDeployment { deployment_id, cancellation: Cancellation::Abandon };
        propose(&master, command).await?;
        return Ok(StatusCode::ACCEPTED.into_response());
    }
    let cancellation = Cancellation::RollBack { rollback_id: new_deployment_id() };
    let events =
        propose(&master, Command::CancelDeployment { deployment_id, cancellation }).await?;
    Ok(Json(deployment_answer(&events)).into_response())
}

/// What waits to be launched, and why the offers seen lately were not used. The leader's
/// scheduler keeps those reasons, so a follower sends the client there.
pub(crate) async fn queue(
    State(master): State<Master>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    master.redirect_if_follower()?;
    let embed_unused = param_values(&params, "embed").any(|value| value == "lastUnusedOffers");
    let now = wall_clock();
    let items = master
        .read_apps_visible(|state, shown| {
            let view = ServiceView::new(state);
            state
                .services()
                .apps
                .values()
                .filter(|app| shown(&app.id))
                .filter_map(|app| {
                    let offers = master.inner.service_offers.of(&app.id);
                    view.queue_item(app, offers.as_ref(), now, embed_unused)
                })
                .collect::<Vec<Value>>()
        })
        .await?;
    Ok(Json(json!({"queue": items})).into_response())
}

/// `DELETE /v2/queue/{app id}/delay`: launch again at once.
pub(crate) async fn reset_delay(
    State(master): State<Master>,
    uri: Uri,
    Path(rest): Path<String>,
) -> Result<Response, ApiError> {
    let Some(app) = rest.trim_end_matches('/').strip_suffix("/delay") else {
        return Err(ApiError::NotFound(format!("no such resource: {}", uri.path())));
    };
    let app_id = app_id_from_path(app)?;
    propose(&master, Command::ResetLaunchDelay { app_id }).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Server-sent events, Marathon's names and shapes, with each event's log cursor as its
/// `id`: a client that reconnects with `Last-Event-ID` continues exactly after it.
pub(crate) async fn events(
    State(master): State<Master>,
    Extension(client): Extension<StreamClient>,
    headers: HeaderMap,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let admitted = client.admit()?;
    let wanted: Vec<String> = param_values(&params, "event_type").map(str::to_owned).collect();
    if let Some(unknown) = wanted.iter().find(|wanted| !EVENT_TYPES.contains(&wanted.as_str())) {
        return Err(ApiError::bad_request(
            "event_type",
            format!("'{unknown}' is not one of {}", EVENT_TYPES.join(", ")),
        ));
    }
    let last_event_id = headers.get("Last-Event-ID").and_then(|value| value.to_str().ok());
    let resuming = last_event_id.is_some();
    let from = match (last_event_id, param(&params, "from")) {
        (None, None) => {
            // Marathon's bus starts now; older events are for clients that ask with a cursor.
            let applied = master.node().applied_index();
            corral_state::Cursor::new(applied, u32::MAX)
        }
        (id, from) => resume_cursor(id, from)?,
    };
    let service_framework_id =
        master.read_state(ReadConsistency::Local, |state| state.service_framework_id()).await?;
    let topics: std::collections::BTreeSet<Topic> =
        [Topic::Task, Topic::Service].into_iter().collect();
    let subscription = match master.node().subscribe(from, EventFilter::topics(topics)) {
        Ok(subscription) => subscription,
        Err(SubscriptionEnded::TooOld { oldest }) => {
            let body = json!({
                "message": format!("events after {from} are no longer retained; the oldest cursor to resume from is {oldest}"),
                "oldest": oldest.to_string(),
            });
            return Ok((StatusCode::GONE, Json(body)).into_response());
        }
        Err(other) => return Err(ApiError::Internal(other.to_string())),
    };
    let accepts =
        move |event_type: &str| wanted.is_empty() || wanted.iter().any(|w| w == event_type);
    let mut first = Vec::new();
    if !resuming && accepts("event_stream_attached") {
        let attached = json!({
            "eventType": "event_stream_attached",
            "timestamp": corral_marathon::render::iso8601(wall_clock()),
            "remoteAddress": null,
        });
        first.push(Bytes::from(format!("event: event_stream_attached\ndata: {attached}\n\n")));
    }
    let viewer = master.event_viewer(crate::master::Views::Apps);
    let (sender, body) = channel_body();
    tokio::spawn(async move {
        let _counted_while_open = admitted;
        pump(
            sender,
            first,
            subscription,
            move |event: &Event, cursor| {
                // By `view_apps` on the app the event names (an instance's by its task id).
                let instance_app = match event {
                    Event::TaskUpdated { framework_id, status, .. }
                        if *framework_id == service_framework_id =>
                    {
                        corral_marathon::events::app_of_task(&status.task_id)
                    }
                    _ => None,
                };
                if viewer.hides(event, event.app_id().or(instance_app.as_ref())) {
                    return Step::Send(Vec::new());
                }
                let frames = marathon_event(event, &service_framework_id, wall_clock())
                    .into_iter()
                    .filter(|(event_type, _)| accepts(event_type))
                    .map(|(event_type, data)| {
                        Bytes::from(format!("id: {cursor}\nevent: {event_type}\ndata: {data}\n\n"))
                    })
                    .collect();
                Step::Send(frames)
            },
            Some(Heartbeat::fixed(
                std::time::Duration::from_secs(15),
                Bytes::from_static(b": keep-alive\n\n"),
            )),
            std::future::pending::<()>(),
            |ended| {
                let reason = json!({"disconnected": ended.to_string()});
                Some(Bytes::from(format!("event: disconnected\ndata: {reason}\n\n")))
            },
        )
        .await;
    });
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// Marathon's `/v2` API and `/ping`.
pub(crate) fn router() -> Router<Master> {
    use super::marathon_apps as apps;
    Router::new()
        .route(
            "/v2/apps",
            get(apps::list).post(apps::create).put(apps::update_many).patch(apps::update_many),
        )
        .route(
            "/v2/apps/{*rest}",
            get(apps::get_under)
                .put(apps::put_under)
                .patch(apps::put_under)
                .post(apps::post_under)
                .delete(apps::delete_under),
        )
        .route("/v2/tasks", get(tasks))
        .route("/v2/tasks/delete", post(delete_tasks))
        .route("/v2/deployments", get(deployments))
        .route("/v2/deployments/{deployment_id}", delete(cancel_deployment))
        .route("/v2/queue", get(queue))
        .route("/v2/queue/{*rest}", delete(reset_delay))
        .route("/v2/events", get(events))
        .route("/v2/info", get(info))
        .route("/v2/leader", get(leader))
        .route("/ping", get(ping))
}
