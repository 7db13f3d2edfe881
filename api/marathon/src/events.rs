//! Marathon's event bus (`/v2/events`) as a view of the log: each log event that Marathon
//! would have announced becomes its `eventType` and JSON. Because the events come from the
//! log, a client that reconnects with `Last-Event-ID` misses nothing, which Marathon's own
//! bus never promised.

use corral_state::{AppId, Event, FrameworkId, TaskId, Timestamp};
use serde_json::{json, Value};

use super::render::{deployment_json, iso8601, revision_json};

/// Every `eventType` this bus sends, for validating `?event_type=`.
pub const EVENT_TYPES: [&str; 8] = [
    "event_stream_attached",
    "api_post_event",
    "deployment_info",
    "deployment_success",
    "deployment_failed",
    "status_update_event",
    "health_status_changed_event",
    "app_terminated_event",
];

/// The app a task of the built-in framework belongs to. Task ids are `{safe_name}.{uuid}`
/// and Marathon forbids `_` in path segments, so the prefix maps back to one app id.
pub fn app_of_task(task_id: &TaskId) -> Option<AppId> {
    let (safe_name, _) = task_id.as_str().split_once('.')?;
    Some(AppId::new(format!("/{}", safe_name.replace('_', "/"))))
}

/// Marathon's rendering of a log event: none when Marathon has no such event. `now` stamps
/// events that carry no time of their own.
pub fn marathon_event(
    event: &Event,
    service_framework_id: &FrameworkId,
    now: Timestamp,
) -> Vec<(&'static str, Value)> {
    let timestamp = iso8601(now);
    let rendered = match event {
        Event::AppUpdated { app_id, revision, .. } => (
            "api_post_event",
            json!({
                "eventType": "api_post_event",
                "timestamp": timestamp,
                "clientIp": null,
                "uri": format!("/v2/apps{app_id}"),
                "appDefinition": revision_json(app_id, revision),
            }),
        ),
        Event::AppDeleted { app_id } => (
            "app_terminated_event",
            json!({"eventType": "app_terminated_event", "timestamp": timestamp, "appId": app_id.as_str()}),
        ),
        Event::DeploymentStarted { deployment } => {
            let plan = deployment_json(deployment);
            let step = plan["steps"][0].clone();
            (
                "deployment_info",
                json!({"eventType": "deployment_info", "timestamp": timestamp, "plan": plan, "currentStep": step}),
            )
        }
        Event::DeploymentSucceeded { deployment_id, app_id } => (
            "deployment_success",
            json!({
                "eventType": "deployment_success",
                "timestamp": timestamp,
                "id": deployment_id.as_str(),
                "plan": {"id": deployment_id.as_str(), "affectedApps": [app_id.as_str()]},
            }),
        ),
        Event::DeploymentCanceled { deployment_id, app_id } => (
            "deployment_failed",
            json!({
                "eventType": "deployment_failed",
                "timestamp": timestamp,
                "id": deployment_id.as_str(),
                "plan": {"id": deployment_id.as_str(), "affectedApps": [app_id.as_str()]},
            }),
        ),
        Event::TaskUpdated { framework_id, agent_id, status, .. }
            if framework_id == service_framework_id =>
        {
            let Some(app_id) = app_of_task(&status.task_id) else { return Vec::new() };
            let update = json!({
                "eventType": "status_update_event",
                "timestamp": iso8601(status.timestamp),
                "slaveId": agent_id.as_str(),
                "taskId": status.task_id.as_str(),
                "taskStatus": status.state.as_mesos_str(),
                "message": status.message.clone().unwrap_or_default(),
                "appId": app_id.as_str(),
            });
            let Some(alive) = status.healthy else {
                return vec![("status_update_event", update)];
            };
            // Agents send a status when a task's health verdict changes: that is Marathon's
            // health event too.
            let health = json!({
                "eventType": "health_status_changed_event",
                "timestamp": iso8601(status.timestamp),
                "appId": app_id.as_str(),
                "taskId": status.task_id.as_str(),
                "instanceId": status.task_id.as_str(),
                "alive": alive,
            });
            return vec![("status_update_event", update), ("health_status_changed_event", health)];
        }
        _ => return Vec::new(),
    };
    vec![rendered]
}
