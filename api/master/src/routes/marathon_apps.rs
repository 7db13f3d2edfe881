//! Marathon's `/v2/apps`: app definitions in, deployments out.
//!
//! Every change is one command in the log; the state decides whether it starts, scales or
//! replaces, and refuses it (409) while another deployment holds the app unless `force`.
//! App ids contain slashes, so one wildcard route takes everything under `/v2/apps/` and the
//! suffix (`/restart`, `/tasks[/{id}]`, `/versions[/{version}]`) picks the action.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use corral_log::ReadConsistency;
use corral_state::model::{AppRevision, ServiceApp, Task};
use corral_state::{
    Actor, AppId, AppPut, ClusterState, Command, DeploymentId, Event, Force, KillScaling, PutMode,
    TaskId, Wipe,
};
use serde_json::{json, Map, Value};

use crate::error::ApiError;

use crate::master::{new_request_id, Master, Views};
use corral_marathon::render::{iso8601, revision_json, AppEmbeds, ServiceView};
use corral_marathon::{parse_app, AppDefinition, ValidationDetail, ValidationFailure};

/// The query parameters, repeated keys kept (`embed=a&embed=b`).
pub(crate) type Params = Query<Vec<(String, String)>>;

pub(crate) fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
}

/// Every value of a list parameter, repeated (`embed=a&embed=b`) or comma-separated
/// (`embed=a,b`), trimmed, empty ones left out.
pub(crate) fn param_values<'a>(
    params: &'a [(String, String)],
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    params
        .iter()
        .filter(move |(key, _)| key == name)
        .flat_map(|(_, value)| value.split(','))
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

/// Marathon's boolean flags; Python clients send `True`/`False`.
pub(crate) fn flag(params: &[(String, String)], name: &str) -> Result<bool, ApiError> {
    match param(params, name).map(str::to_ascii_lowercase).as_deref() {
        None | Some("false") | Some("0") | Some("") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(other) => Err(ApiError::bad_request(name, format!("'{other}' is not true or false"))),
    }
}

pub(crate) fn force(params: &[(String, String)]) -> Result<Force, ApiError> {
    Ok(if flag(params, "force")? { Force::Yes } else { Force::No })
}

pub(crate) fn new_deployment_id() -> DeploymentId {
    DeploymentId::new(uuid::Uuid::new_v4().to_string())
}

/// Proposes as an operator and turns a refusal into its Marathon status.
/// The request's path and query, as error messages quote it.
pub(crate) fn path_and_query(uri: &Uri) -> String {
    uri.path_and_query().map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned())
}

pub(crate) async fn propose(master: &Master, command: Command) -> Result<Vec<Event>, ApiError> {
    let actor = Actor::Operator { principal: None };
    let committed = master.propose(new_request_id(), actor, command).await?;
    if let Some(rejection) = committed.outcome.rejection() {
        return Err(ApiError::Rejected(rejection.clone()));
    }
    Ok(committed.outcome.into_events())
}

/// Marathon's answer to a change: the deployment it started and the version it made.
pub(crate) fn deployment_answer(events: &[Event]) -> Value {
    let started = events.iter().find_map(|event| match event {
        Event::DeploymentStarted { deployment } => Some(deployment),
        _ => None,
    });
    match started {
        Some(deployment) => json!({
            "deploymentId": deployment.id.as_str(),
            "version": iso8601(deployment.version),
        }),
        None => json!({}),
    }
}

/// `/group/app` from a path tail that may start with extra slashes (clients build
/// `/v2/apps//group/app` from absolute ids).
pub(crate) fn app_id_from_path(text: &str) -> Result<AppId, ApiError> {
    let trimmed = text.trim_matches('/');
    if trimmed.is_empty() {
        return Err(ApiError::NotFound("no app id in the path".to_owned()));
    }
    Ok(AppId::new(format!("/{trimmed}")))
}

enum AppPath {
    App(AppId),
    Restart(AppId),
    Tasks(AppId),
    Task(AppId, TaskId),
    Versions(AppId),
    Version(AppId, String),
}

impl AppPath {
    fn parse(rest: &str) -> Result<AppPath, ApiError> {
        let rest = rest.trim_end_matches('/');
        if let Some(app) = rest.strip_suffix("/restart") {
            return Ok(AppPath::Restart(app_id_from_path(app)?));
        }
        if let Some(app) = rest.strip_suffix("/versions") {
            return Ok(AppPath::Versions(app_id_from_path(app)?));
        }
        if let Some(app) = rest.strip_suffix("/tasks") {
            return Ok(AppPath::Tasks(app_id_from_path(app)?));
        }
        if let Some((app, version)) = rest.rsplit_once("/versions/") {
            if !version.contains('/') {
                return Ok(AppPath::Version(app_id_from_path(app)?, version.to_owned()));
            }
        }
        if let Some((app, task)) = rest.rsplit_once("/tasks/") {
            if !task.contains('/') {
                return Ok(AppPath::Task(app_id_from_path(app)?, TaskId::new(task)));
            }
        }
        Ok(AppPath::App(app_id_from_path(rest)?))
    }
}

/// Marathon's 422 with one problem at one JSON pointer.
fn invalid(message: &str, path: &str, error: impl Into<String>) -> ApiError {
    ApiError::Validation(ValidationFailure {
        message: message.to_owned(),
        details: vec![ValidationDetail { path: path.to_owned(), errors: vec![error.into()] }],
    })
}

fn unknown_app(app_id: &AppId) -> ApiError {
    ApiError::Rejected(corral_state::Rejection::UnknownApp(app_id.clone()))
}

pub(crate) async fn list(
    State(master): State<Master>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let embeds = AppEmbeds::parse(param_values(&params, "embed"));
    let id_filter = param(&params, "id").map(str::to_owned);
    let cmd_filter = param(&params, "cmd").map(str::to_owned);
    let label_filter = param(&params, "label").map(str::to_owned);
    let apps = master
        .render_off_lock(ReadConsistency::Local, Views::Apps, move |state| {
            let view = ServiceView::new(state);
            let apps: Vec<Value> = state
                .services()
                .apps
                .values()
                .filter(|app| id_filter.as_deref().is_none_or(|id| app.id.as_str().contains(id)))
                .map(|app| view.app_json(app, embeds))
                .filter(|app| {
                    let cmd = app["cmd"].as_str().unwrap_or("");
                    cmd_filter.as_deref().is_none_or(|wanted| cmd.contains(wanted))
                })
                .filter(|app| label_filter.as_deref().is_none_or(|wanted| has_label(app, wanted)))
                .collect();
            apps
        })
        .await?;
    Ok(Json(json!({"apps": apps})).into_response())
}

/// `label=key` or `label=key==value`.
fn has_label(app: &Value, wanted: &str) -> bool {
    let labels = &app["labels"];
    match wanted.split_once("==") {
        Some((key, value)) => labels[key.trim()].as_str() == Some(value.trim()),
        None => labels.get(wanted.trim()).is_some(),
    }
}

pub(crate) async fn create(
    State(master): State<Master>,
    Query(params): Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let definition = parse_app(&body).map_err(ApiError::Validation)?;
    let app_id = AppId::new(definition.id.clone());
    let command = Command::PutApp {
        app_id: app_id.clone(),
        spec: definition.spec(),
        definition: definition.stored_definition(),
        mode: PutMode::Create,
        force: force(&params)?,
        deployment_id: new_deployment_id(),
    };
    propose(&master, command).await?;
    let rendered = master
        .read_state(ReadConsistency::Local, move |state| {
            let app = state.services().app(&app_id)?;
            Some(ServiceView::new(state).app_json(app, AppEmbeds::parse(["deployments"])))
        })
        .await?
        .ok_or_else(|| ApiError::Internal("the created app is not in the state".to_owned()))?;
    Ok((StatusCode::CREATED, Json(rendered)).into_response())
}

/// `PUT /v2/apps` and `PATCH /v2/apps`: several apps at once. Every update is checked before
/// any is proposed, so a bad one changes nothing.
pub(crate) async fn update_many(
    State(master): State<Master>,
    Query(params): Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let updates: Vec<Map<String, Value>> = serde_json::from_slice(&body).map_err(|error| {
        invalid("Invalid JSON", "/", format!("expected an array of app updates: {error}"))
    })?;
    let force = force(&params)?;
    let puts = master
        .read_state(ReadConsistency::Local, move |state| {
            updates
                .into_iter()
                .enumerate()
                .map(|(index, update)| {
                    let Some(id) = update.get("id").and_then(Value::as_str) else {
                        let path = format!("/{index}/id");
                        let problem = "an app update in a list names its app";
                        return Err(invalid("Object is not valid", &path, problem));
                    };
                    let app_id = app_id_from_path(id)?;
                    merged_put(state, &app_id, update, force)
                })
                .collect::<Result<Vec<AppPut>, ApiError>>()
        })
        .await??;
    // One command: every app changes, or (a 409 or 422 naming the app) none does.
    let events = propose(&master, Command::PutApps { apps: puts }).await?;
    Ok(Json(deployment_answer(&events)).into_response())
}

/// The `PutApp` for an update: the body's fields over the app's current ones (Marathon 1.x's
/// partial update), or the body alone for an app that does not exist yet.
/// Marathon 1.x's partial update: the body's fields over the app's current definition.
fn merged_put(
    state: &ClusterState,
    app_id: &AppId,
    update: Map<String, Value>,
    force: Force,
) -> Result<AppPut, ApiError> {
    let existing = state.services().app(app_id);
    let current = existing
        .map(|app| AppDefinition::from_stored(&app.definition, app.spec.instances))
        .transpose()
        .map_err(|error| ApiError::Internal(format!("stored definition: {error}")))?;
    let mut merged = match &current {
        Some(current) => match serde_json::to_value(current) {
            Ok(Value::Object(object)) => object,
            Ok(other) => {
                return Err(ApiError::Internal(format!(
                    "app {app_id}'s definition renders as {other}, not an object"
                )))
            }
            Err(error) => {
                return Err(ApiError::Internal(format!(
                    "app {app_id}'s definition does not render: {error}"
                )))
            }
        },
        None => Map::new(),
    };
    merged.extend(update);
    merged.insert("id".to_owned(), json!(app_id.as_str()));
    let body = serde_json::to_vec(&Value::Object(merged))
        .map_err(|error| ApiError::Internal(error.to_string()))?;
    let mut definition = parse_app(&body).map_err(ApiError::Validation)?;
    if let (Some(app), Some(current)) = (existing, &current) {
        definition.keep_assigned_ports(current, &app.service_ports);
    }
    Ok(AppPut {
        app_id: app_id.clone(),
        spec: definition.spec(),
        definition: definition.stored_definition(),
        mode: PutMode::CreateOrReplace,
        force,
        deployment_id: new_deployment_id(),
    })
}

pub(crate) async fn get_under(
    State(master): State<Master>,
    Path(rest): Path<String>,
) -> Result<Response, ApiError> {
    let path = format!("/v2/apps/{rest}");
    match AppPath::parse(&rest)? {
        AppPath::App(app_id) => {
            let embeds = AppEmbeds::SINGLE_APP;
            let rendered = master
                .read_state(ReadConsistency::Local, move |state| {
                    let app = state.services().app(&app_id).ok_or_else(|| unknown_app(&app_id))?;
                    Ok::<_, ApiError>(ServiceView::new(state).app_json(app, embeds))
                })
                .await??;
            Ok(Json(json!({"app": rendered})).into_response())
        }
        AppPath::Tasks(app_id) => {
            let tasks = master
                .read_state(ReadConsistency::Local, move |state| {
                    app_tasks(state, &app_id, |_| true)
                })
                .await??;
            Ok(Json(json!({"tasks": tasks})).into_response())
        }
        AppPath::Versions(app_id) => {
            let versions = master
                .read_state(ReadConsistency::Local, move |state| {
                    let app = state.services().app(&app_id).ok_or_else(|| unknown_app(&app_id))?;
                    let versions: Vec<String> = app
                        .versions
                        .iter()
                        .rev()
                        .map(|revision| iso8601(revision.version))
                        .collect();
                    Ok::<_, ApiError>(versions)
                })
                .await??;
            Ok(Json(json!({"versions": versions})).into_response())
        }
        AppPath::Version(app_id, version) => {
            let rendered = master
                .read_state(ReadConsistency::Local, move |state| {
                    let app = state.services().app(&app_id).ok_or_else(|| unknown_app(&app_id))?;
                    revision_named(app, &version)
                        .map(|revision| revision_json(&app_id, revision))
                        .ok_or_else(|| {
                            ApiError::NotFound(format!("app {app_id} has no version {version}"))
                        })
                })
                .await??;
            Ok(Json(rendered).into_response())
        }
        AppPath::Restart(_) | AppPath::Task(..) => Err(not_served(&path)),
    }
}

/// Marathon answers a method a resource does not have with 404.
fn not_served(path: &str) -> ApiError {
    ApiError::NotFound(format!("no such resource for this method: {path}"))
}

/// The revision a client names by its version, which it only knows as ISO 8601 text.
fn revision_named<'a>(app: &'a ServiceApp, version: &str) -> Option<&'a AppRevision> {
    app.versions.iter().find(|revision| iso8601(revision.version) == version)
}

/// The app's tasks that `keep` selects, as Marathon renders them.
fn app_tasks(
    state: &ClusterState,
    app_id: &AppId,
    keep: impl Fn(&Task) -> bool,
) -> Result<Vec<Value>, ApiError> {
    let app = state.services().app(app_id).ok_or_else(|| unknown_app(app_id))?;
    let view = ServiceView::new(state);
    Ok(view
        .tasks_of(app_id)
        .into_iter()
        .filter(|task| keep(task))
        .map(|task| view.task_json(app_id, task, app.spec.health_checked))
        .collect())
}

pub(crate) async fn put_under(
    State(master): State<Master>,
    uri: Uri,
    Path(rest): Path<String>,
    Query(params): Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let path = path_and_query(&uri);
    let AppPath::App(app_id) = AppPath::parse(&rest)? else {
        return Err(not_served(&path));
    };
    let force = force(&params)?;
    let update: Map<String, Value> = serde_json::from_slice(&body)
        .map_err(|error| invalid("Invalid JSON", "/", error.to_string()))?;
    // `{"version": …}` alone puts that version back (Marathon's rollback).
    if let Some(version) = update.get("version").and_then(Value::as_str) {
        let found = master
            .read_state(ReadConsistency::Local, |state| {
                let app = state.services().app(&app_id).ok_or_else(|| unknown_app(&app_id))?;
                revision_named(app, version).map(|revision| revision.version).ok_or_else(|| {
                    ApiError::NotFound(format!("app {app_id} has no version {version}"))
                })
            })
            .await??;
        let command = Command::RollBackApp {
            app_id,
            version: found,
            force,
            deployment_id: new_deployment_id(),
        };
        let events = propose(&master, command).await?;
        return Ok(Json(deployment_answer(&events)).into_response());
    }
    let put = master
        .read_state(ReadConsistency::Local, |state| merged_put(state, &app_id, update, force))
        .await??;
    let command = Command::PutApp {
        app_id: put.app_id,
        spec: put.spec,
        definition: put.definition,
        mode: put.mode,
        force: put.force,
        deployment_id: put.deployment_id,
    };
    let events = propose(&master, command).await?;
    let created =
        events.iter().any(|event| matches!(event, Event::AppUpdated { created: true, .. }));
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(deployment_answer(&events))).into_response())
}

pub(crate) async fn post_under(
    State(master): State<Master>,
    uri: Uri,
    Path(rest): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let path = path_and_query(&uri);
    let AppPath::Restart(app_id) = AppPath::parse(&rest)? else {
        return Err(not_served(&path));
    };
    let command =
        Command::RestartApp { app_id, force: force(&params)?, deployment_id: new_deployment_id() };
    let events = propose(&master, command).await?;
    Ok(Json(deployment_answer(&events)).into_response())
}

pub(crate) async fn delete_under(
    State(master): State<Master>,
    uri: Uri,
    Path(rest): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let path = path_and_query(&uri);
    let force = force(&params)?;
    match AppPath::parse(&rest)? {
        AppPath::App(app_id) => {
            let command = Command::DeleteApp { app_id, force, deployment_id: new_deployment_id() };
            let events = propose(&master, command).await?;
            Ok(Json(deployment_answer(&events)).into_response())
        }
        AppPath::Tasks(app_id) => {
            let host = param(&params, "host").map(str::to_owned);
            let tasks = master
                .read_state(ReadConsistency::Local, move |state| {
                    let on_host = |task: &Task| {
                        host.as_deref().is_none_or(|host| {
                            state.agent(task.agent_id()).is_some_and(|a| a.info.hostname == host)
                        })
                    };
                    app_tasks(state, &app_id, on_host)
                })
                .await??;
            kill_rendered(&master, tasks, &params, Many::List).await
        }
        AppPath::Task(app_id, task_id) => {
            let tasks = master
                .read_state(ReadConsistency::Local, move |state| {
                    let tasks = app_tasks(state, &app_id, |task| task.id() == &task_id)?;
                    tasks.into_iter().next().ok_or_else(|| {
                        ApiError::NotFound(format!("app {app_id} has no task {task_id}"))
                    })
                })
                .await??;
            kill_rendered(&master, vec![tasks], &params, Many::One).await
        }
        AppPath::Versions(_) | AppPath::Version(..) | AppPath::Restart(_) => Err(not_served(&path)),
    }
}

/// Whether the answer lists the killed tasks (`{"tasks": […]}`) or names one (`{"task": …}`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Many {
    List,
    One,
}

/// Kills rendered tasks; `scale=true` lowers the instance count instead of replacing them.
/// `wipe=true` expunges the instances at once, so replacements need not wait for the tasks
/// to end (the way to give up on an unreachable instance before its strategy does).
pub(crate) async fn kill_rendered(
    master: &Master,
    tasks: Vec<Value>,
    params: &[(String, String)],
    many: Many,
) -> Result<Response, ApiError> {
    let scale = flag(params, "scale")?;
    let wipe = if flag(params, "wipe")? { Wipe::Expunge } else { Wipe::Keep };
    let task_ids: Vec<TaskId> =
        tasks.iter().filter_map(|task| task["id"].as_str()).map(TaskId::new).collect();
    if task_ids.is_empty() {
        return Ok(Json(json!({"tasks": []})).into_response());
    }
    let command = Command::KillServiceTasks {
        task_ids,
        scaling: if scale { KillScaling::ScaleDown } else { KillScaling::Replace },
        wipe,
        force: force(params)?,
        deployment_id: new_deployment_id(),
    };
    let events = propose(master, command).await?;
    if scale {
        return Ok(Json(deployment_answer(&events)).into_response());
    }
    let body = match many {
        Many::One => json!({"task": tasks.into_iter().next()}),
        Many::List => json!({"tasks": tasks}),
    };
    Ok(Json(body).into_response())
}
