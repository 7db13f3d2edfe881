//! Why a task or a deployment is where it is, rebuilt from the journal by whichever master
//! is asked:
//!
//! - `GET /corral/v1/explain/task/{id}`: the offer the task came from (its agent and role,
//!   and the allocator's reasons at that cycle, recomputed by running the allocator on the
//!   state right before the offer), the ACCEPT (or the service scheduler's launch) and who
//!   sent it, each status update with its source and reason, each kill request and who
//!   asked, and the final state.
//! - `GET /corral/v1/explain/deployment/{id}`: the deployment's own commands, each plan step
//!   the service scheduler took for its app while it ran (launches and kills, refused ones
//!   with the reason), and how it ended.
//!
//! Both also answer `steps`: one line per step (`cursor`, `time`, `step`, `actor`, `why`),
//! what `corral explain` prints. A task or deployment the journal never saw is a 404 naming
//! `id`.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use corral_allocator::Allocator;
use corral_log::journal::Journal;
use corral_log::CommandRecord;
use corral_state::model::{Offer, TaskStatus};
use corral_state::{
    ClusterState, Command, Entity, EntityKind, Event, FrameworkId, OfferId, TaskId,
};
use serde_json::{json, Value};

use super::audit::{audit_error, record_json};
use crate::error::ApiError;
use crate::master::Master;

/// How far back from a launch the offer it used is looked for, in entries naming its agent.
const OFFER_SEARCH_LIMIT: usize = 100_000;
const HISTORY_LIMIT: usize = 100_000;

fn step(record: &CommandRecord, step: &str, why: String) -> Value {
    let body = record_json(record);
    json!({
        "cursor": body["cursor"],
        "time": body["time"],
        "step": step,
        "actor": body["actor"],
        "why": why,
    })
}

fn status_json(record: &CommandRecord, status: &TaskStatus) -> Value {
    json!({
        "cursor": record.cursor.to_string(),
        "time": record.entry.at.to_rfc3339(),
        "state": status.state.as_mesos_str(),
        "source": format!("{:?}", status.source).to_uppercase(),
        "reason": status.reason.map(|reason| reason.as_mesos_str()),
        "message": status.message,
        "actor": record_json(record)["actor"],
    })
}

/// The offers a launch command used and the framework it launched for.
fn launched_from(command: &Command) -> Option<(FrameworkId, Vec<OfferId>)> {
    match command {
        Command::Accept { framework_id, offer_ids, .. } => {
            Some((framework_id.clone(), offer_ids.clone()))
        }
        Command::LaunchServiceTasks { offer_ids, .. } => {
            Some((FrameworkId::new(""), offer_ids.clone()))
        }
        _ => None,
    }
}

/// The command that created `offer_id`, walking back from `before` through the entries
/// that name `agent`.
fn offer_origin(
    journal: &Journal,
    agent: &Entity,
    offer_id: &OfferId,
    before: u64,
) -> Result<Option<(CommandRecord, Offer)>, ApiError> {
    let internal = |error: corral_log::journal::JournalError| ApiError::Internal(error.to_string());
    for index in journal.indexes_of(agent, 0..=before).rev().take(OFFER_SEARCH_LIMIT) {
        let index = index.map_err(internal)?;
        let records = journal
            .history(agent, index..=index, HISTORY_LIMIT)
            .map_err(|error| audit_error(error, "id"))?;
        for record in records {
            let created = record.events.iter().find_map(|(_, event)| match event {
                Event::OfferCreated { offer } if offer.id == *offer_id => Some(offer.clone()),
                _ => None,
            });
            if let Some(offer) = created {
                return Ok(Some((record, offer)));
            }
        }
    }
    Ok(None)
}

/// Runs the allocator on the state right before the offer, as the leader did then.
fn allocator_at(
    state: &ClusterState,
    config: corral_allocator::AllocatorConfig,
    record: &CommandRecord,
    offer: &Offer,
) -> Value {
    let mut allocator = Allocator::from_state(config, state);
    let allocation = allocator.allocate(state, record.entry.at);
    let reproduced = allocation.offers.iter().any(|spec| {
        spec.framework_id == offer.framework_id
            && spec.agent_id == offer.agent_id
            && spec.role == offer.role
    });
    json!({
        "reproduced": reproduced,
        "cycle": allocation.summary,
        "framework": allocator.explain_framework(&offer.framework_id),
        "role": allocator.explain_role(&offer.role),
    })
}

pub(crate) async fn explain_task(
    State(master): State<Master>,
    Path(task_id): Path<String>,
) -> Result<Response, ApiError> {
    let task = Entity::new(EntityKind::Task, task_id.as_str());
    let journal = master.node().journal().clone();
    let records = {
        let journal = journal.clone();
        let task = task.clone();
        tokio::task::spawn_blocking(move || {
            let start = journal.audit_start();
            journal.history(&task, start..=u64::MAX, HISTORY_LIMIT)
        })
        .await
        .map_err(|error| ApiError::Internal(format!("explain stopped: {error}")))?
        .map_err(|error| audit_error(error, "id"))?
    };
    if records.is_empty() {
        return Err(ApiError::Missing {
            field: "id".to_owned(),
            problem: format!("no task {task_id} in this master's journal"),
        });
    }
    let mut steps = Vec::new();
    let mut statuses = Vec::new();
    let mut kills = Vec::new();
    let mut launch = Value::Null;
    let mut offer_json = Value::Null;
    let mut launched = None;
    let mut last_state = None;
    for record in &records {
        for (_, event) in &record.events {
            match event {
                Event::TaskAdded { task } => {
                    launched = Some((record.clone(), task.clone()));
                    let framework = launched_from(&record.entry.command)
                        .map(|(framework_id, _)| framework_id)
                        .filter(|framework_id| !framework_id.as_str().is_empty())
                        .unwrap_or_else(|| task.framework_id.clone());
                    launch = json!({
                        "cursor": record.cursor.to_string(),
                        "time": record.entry.at.to_rfc3339(),
                        "command": record.entry.command.kind(),
                        "actor": record_json(record)["actor"],
                        "framework_id": framework.as_str(),
                        "agent_id": task.agent_id().as_str(),
                    });
                    steps.push(step(
                        record,
                        "launched",
                        format!(
                            "{} by {} on agent {}",
                            record.entry.command.kind(),
                            framework,
                            task.agent_id()
                        ),
                    ));
                }
                Event::TaskUpdated { status, .. } | Event::TaskDropped { status, .. } => {
                    last_state = Some(status.state);
                    let why = match (&status.reason, &status.message) {
                        (Some(reason), Some(message)) => {
                            format!("{} ({message})", reason.as_mesos_str())
                        }
                        (Some(reason), None) => reason.as_mesos_str().to_owned(),
                        (None, Some(message)) => message.clone(),
                        (None, None) => {
                            format!("reported by the {:?}", status.source).to_lowercase()
                        }
                    };
                    steps.push(step(record, status.state.as_mesos_str(), why));
                    statuses.push(status_json(record, status));
                }
                Event::TaskKillRequested { .. } => {
                    let body = record_json(record);
                    steps.push(step(
                        record,
                        "kill requested",
                        record.entry.command.kind().to_owned(),
                    ));
                    kills.push(json!({
                        "cursor": body["cursor"],
                        "time": body["time"],
                        "actor": body["actor"],
                        "command": body["command"],
                        "request_id": body["request_id"],
                    }));
                }
                _ => {}
            }
        }
        if let Some(rejection) = record.verdict.rejection() {
            steps.push(step(
                record,
                &format!("{} refused", record.entry.command.kind()),
                rejection.to_string(),
            ));
        }
    }
    if let Some((record, task_added)) = &launched {
        if let Some((_, offer_ids)) = launched_from(&record.entry.command) {
            let agent = Entity::agent(task_added.agent_id());
            let config = master.inner.allocator_config.clone();
            let node = master.node().clone();
            let journal = journal.clone();
            let before = record.cursor.index.saturating_sub(1);
            let found = tokio::task::spawn_blocking(move || {
                for offer_id in &offer_ids {
                    if let Some(found) = offer_origin(&journal, &agent, offer_id, before)? {
                        return Ok(Some(found));
                    }
                }
                Ok::<_, ApiError>(None)
            })
            .await
            .map_err(|error| ApiError::Internal(format!("explain stopped: {error}")))??;
            if let Some((offer_record, offer)) = found {
                let state = node
                    .state_at(offer_record.cursor.index.saturating_sub(1))
                    .await
                    .map_err(|error| audit_error(error, "id"));
                let allocator = match state {
                    Ok(state) => {
                        let (record, offer) = (offer_record.clone(), offer.clone());
                        tokio::task::spawn_blocking(move || {
                            allocator_at(&state, config, &record, &offer)
                        })
                        .await
                        .map_err(|error| ApiError::Internal(format!("explain stopped: {error}")))?
                    }
                    // The state before the offer is older than this master keeps.
                    Err(ApiError::Gone { oldest, .. }) => {
                        json!({"unavailable": format!("the state before the offer is older than the journal keeps (oldest {oldest})")})
                    }
                    Err(other) => return Err(other),
                };
                steps.insert(
                    0,
                    step(
                        &offer_record,
                        "offered",
                        format!(
                            "offer {} of agent {} ({}) to {} in role {}",
                            offer.id,
                            offer.agent_id,
                            offer.hostname,
                            offer.framework_id,
                            offer.role
                        ),
                    ),
                );
                offer_json = json!({
                    "offer_id": offer.id.as_str(),
                    "agent_id": offer.agent_id.as_str(),
                    "hostname": offer.hostname,
                    "framework_id": offer.framework_id.as_str(),
                    "role": offer.role.as_str(),
                    "resources": offer.resources.to_string(),
                    "cursor": offer_record.cursor.to_string(),
                    "time": offer_record.entry.at.to_rfc3339(),
                    "allocator": allocator,
                });
            }
        }
    }
    let final_state = last_state.map(|state| state.as_mesos_str());
    let summary = match (&launched, final_state) {
        (Some((_, task)), Some(state)) => {
            format!("task {task_id} of {} on agent {}: {state}", task.framework_id, task.agent_id())
        }
        (Some((_, task)), None) => {
            format!(
                "task {task_id} of {} on agent {}: TASK_STAGING",
                task.framework_id,
                task.agent_id()
            )
        }
        (None, _) => format!("task {task_id}: its launch is older than this master's journal"),
    };
    Ok(Json(json!({
        "task_id": task_id,
        "summary": summary,
        "offer": offer_json,
        "launch": launch,
        "statuses": statuses,
        "kills": kills,
        "final_state": final_state,
        "steps": steps,
    }))
    .into_response())
}

pub(crate) async fn explain_deployment(
    State(master): State<Master>,
    Path(deployment_id): Path<String>,
) -> Result<Response, ApiError> {
    let deployment = Entity::new(EntityKind::Deployment, deployment_id.as_str());
    let journal = master.node().journal().clone();
    let explained = tokio::task::spawn_blocking(move || -> Result<Value, ApiError> {
        let start = journal.audit_start();
        let own = journal
            .history(&deployment, start..=u64::MAX, HISTORY_LIMIT)
            .map_err(|error| audit_error(error, "id"))?;
        let Some(first) = own.first() else {
            return Err(ApiError::Missing {
                field: "id".to_owned(),
                problem: format!("no deployment {deployment_id} in this master's journal"),
            });
        };
        let app = own.iter().flat_map(|record| &record.events).find_map(|(_, event)| match event {
            Event::DeploymentStarted { deployment } => Some(deployment.app_id.clone()),
            _ => None,
        });
        let ended = own.iter().find_map(|record| {
            record.events.iter().find_map(|(_, event)| match event {
                Event::DeploymentSucceeded { .. } => Some((record.cursor.index, "succeeded")),
                Event::DeploymentCanceled { .. } => Some((record.cursor.index, "canceled")),
                _ => None,
            })
        });
        let mut steps: Vec<Value> = Vec::new();
        let mut records: Vec<&CommandRecord> = own.iter().collect();
        let app_records = match &app {
            Some(app_id) => {
                let end = ended.map_or(u64::MAX, |(index, _)| index);
                journal
                    .history(&Entity::app(app_id), first.cursor.index..=end, HISTORY_LIMIT)
                    .map_err(|error| audit_error(error, "id"))?
            }
            None => Vec::new(),
        };
        records.extend(app_records.iter().filter(|record| {
            matches!(
                record.entry.command,
                Command::LaunchServiceTasks { .. } | Command::KillServiceTasks { .. }
            ) && !own.iter().any(|mine| mine.cursor == record.cursor)
        }));
        records.sort_by_key(|record| (record.cursor.index, record.position));
        for record in &records {
            let kind = record.entry.command.kind();
            let why = match (&record.verdict.rejection(), &record.entry.command) {
                (Some(rejection), _) => format!("refused: {rejection}"),
                (None, Command::LaunchServiceTasks { launches, .. }) => format!(
                    "launched {}",
                    launches
                        .iter()
                        .map(|launch| launch.task_info.task_id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                (None, Command::AutoscaleApp { scaling, .. }) => format!(
                    "autoscaler: {}",
                    crate::routes::autoscaler::scaling_reason(scaling)
                ),
                (None, Command::KillServiceTasks { task_ids, .. }) => format!(
                    "killed {}",
                    task_ids.iter().map(TaskId::as_str).collect::<Vec<_>>().join(", ")
                ),
                (None, _) => record
                    .events
                    .iter()
                    .map(|(_, event)| event.kind())
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            steps.push(step(record, kind, why));
        }
        let outcome = match ended {
            Some((_, how)) => how,
            None => "running",
        };
        Ok(json!({
            "deployment_id": deployment_id,
            "app_id": app.as_ref().map(|app| app.as_str()),
            "summary": format!("deployment {deployment_id} of {}: {outcome}", app.as_ref().map_or("?", |app| app.as_str())),
            "outcome": outcome,
            "steps": steps,
        }))
    })
    .await
    .map_err(|error| ApiError::Internal(format!("explain stopped: {error}")))??;
    Ok(Json(explained).into_response())
}

/// `/corral/v1/explain/task/{id}`, `/corral/v1/explain/deployment/{id}`.
pub(crate) fn router() -> Router<Master> {
    Router::new()
        .route("/corral/v1/explain/task/{id}", get(explain_task))
        .route("/corral/v1/explain/deployment/{id}", get(explain_deployment))
}
