//! From log events to what a framework's Mesos v1 stream carries.

use serde_json::{json, Value as Json};

use super::convert::{encode_base64, offer_to_json, task_status_to_json};
use super::json::IdJson;
use corral_state::model::{TaskReason, TaskSource, TaskState, TaskStatus};
use corral_state::{Event, FrameworkId};

/// The scheduler events `event` means for framework `framework_id`, in Mesos v1 JSON.
pub fn scheduler_events(framework_id: &FrameworkId, event: &Event) -> Vec<Json> {
    match event {
        Event::OfferCreated { offer } if &offer.framework_id == framework_id => {
            vec![json!({"type": "OFFERS", "offers": {"offers": [offer_to_json(offer)]}})]
        }
        Event::OfferRescinded { offer_id, framework_id: owner, .. } if owner == framework_id => {
            vec![json!({"type": "RESCIND", "rescind": {"offer_id": IdJson::new(offer_id)}})]
        }
        Event::TaskUpdated { framework_id: owner, status, .. }
        | Event::TaskDropped { framework_id: owner, status }
        | Event::TaskReconciled { framework_id: owner, status }
            if owner == framework_id =>
        {
            vec![update_event(status)]
        }
        Event::MessageToFramework { framework_id: owner, agent_id, executor_id, data }
            if owner == framework_id =>
        {
            vec![json!({
                "type": "MESSAGE",
                "message": {
                    "agent_id": IdJson::new(agent_id),
                    "executor_id": IdJson::new(executor_id),
                    "data": encode_base64(data),
                }
            })]
        }
        Event::AgentRemoved { agent_id, .. } => {
            vec![json!({"type": "FAILURE", "failure": {"agent_id": IdJson::new(agent_id)}})]
        }
        Event::FrameworkRemoved { framework_id: owner, .. } if owner == framework_id => {
            vec![error_event("Framework has been removed")]
        }
        _ => Vec::new(),
    }
}

pub fn update_event(status: &TaskStatus) -> Json {
    json!({"type": "UPDATE", "update": {"status": task_status_to_json(status)}})
}

pub fn subscribed_event(
    framework_id: &FrameworkId,
    heartbeat_interval_seconds: f64,
    master_info: Json,
) -> Json {
    json!({
        "type": "SUBSCRIBED",
        "subscribed": {
            "framework_id": IdJson::new(framework_id),
            "heartbeat_interval_seconds": heartbeat_interval_seconds,
            "master_info": master_info,
        }
    })
}

pub fn heartbeat_event() -> Json {
    json!({"type": "HEARTBEAT"})
}

pub fn error_event(message: &str) -> Json {
    json!({"type": "ERROR", "error": {"message": message}})
}

/// What Mesos sends for tasks of an ACCEPT whose offers were invalid: TASK_DROPPED for
/// partition-aware frameworks, TASK_LOST otherwise, from the master, with no uuid.
pub fn invalid_offer_status(
    task_id: &corral_state::TaskId,
    agent_id: &corral_state::AgentId,
    partition_aware: PartitionAwareness,
    message: &str,
    at: corral_state::Timestamp,
) -> TaskStatus {
    TaskStatus {
        task_id: task_id.clone(),
        state: match partition_aware {
            PartitionAwareness::Aware => TaskState::Dropped,
            PartitionAwareness::Unaware => TaskState::Lost,
        },
        message: Some(message.to_owned()),
        source: TaskSource::Master,
        reason: Some(TaskReason::InvalidOffers),
        healthy: None,
        agent_id: Some(agent_id.clone()),
        executor_id: None,
        timestamp: at,
        uuid: None,
        exit_code: None,
    }
}

/// Whether a framework declared the PARTITION_AWARE capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionAwareness {
    Aware,
    Unaware,
}
