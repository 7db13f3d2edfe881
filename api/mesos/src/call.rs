//! The Mesos v1 scheduler `Call` as JSON, and its translation into a state command.

use serde::Deserialize;

use super::convert::{
    decode_base64, framework_info_from_json, kill_policy_from_json, operation_from_json, role_list,
};
use super::json::{FiltersJson, FrameworkInfoJson, IdJson, KillPolicyJson, OperationJson};
use crate::error::FieldError;
use corral_state::model::{Filters, FrameworkInfo};
use corral_state::{AgentId, Command, ExecutorId, FrameworkId, OfferId, TaskId, UpdateUuid};

#[derive(Clone, Debug, Default, Deserialize)]
pub struct SubscribeJson {
    pub framework_info: FrameworkInfoJson,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct AcceptJson {
    #[serde(default)]
    pub offer_ids: Vec<IdJson>,
    #[serde(default)]
    pub operations: Vec<OperationJson>,
    #[serde(default)]
    pub filters: Option<FiltersJson>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct DeclineJson {
    #[serde(default)]
    pub offer_ids: Vec<IdJson>,
    #[serde(default)]
    pub filters: Option<FiltersJson>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct RolesJson {
    #[serde(default)]
    pub roles: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct KillJson {
    pub task_id: IdJson,
    #[serde(default)]
    pub agent_id: Option<IdJson>,
    #[serde(default)]
    pub kill_policy: Option<KillPolicyJson>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ShutdownJson {
    pub executor_id: IdJson,
    pub agent_id: IdJson,
}

#[derive(Clone, Debug, Deserialize)]
pub struct AcknowledgeJson {
    pub agent_id: IdJson,
    pub task_id: IdJson,
    pub uuid: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ReconcileTaskJson {
    pub task_id: IdJson,
    #[serde(default)]
    pub agent_id: Option<IdJson>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct ReconcileJson {
    #[serde(default)]
    pub tasks: Vec<ReconcileTaskJson>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct MessageJson {
    pub agent_id: IdJson,
    pub executor_id: IdJson,
    #[serde(default)]
    pub data: String,
}

/// Mesos `scheduler.Call`.
#[derive(Clone, Debug, Deserialize)]
pub struct CallJson {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub framework_id: Option<IdJson>,
    #[serde(default)]
    pub subscribe: Option<SubscribeJson>,
    #[serde(default)]
    pub accept: Option<AcceptJson>,
    #[serde(default)]
    pub decline: Option<DeclineJson>,
    #[serde(default)]
    pub revive: Option<RolesJson>,
    #[serde(default)]
    pub suppress: Option<RolesJson>,
    #[serde(default)]
    pub kill: Option<KillJson>,
    #[serde(default)]
    pub shutdown: Option<ShutdownJson>,
    #[serde(default)]
    pub acknowledge: Option<AcknowledgeJson>,
    #[serde(default)]
    pub reconcile: Option<ReconcileJson>,
    #[serde(default)]
    pub message: Option<MessageJson>,
}

/// What a scheduler call asks of the master.
#[derive(Clone, Debug, PartialEq)]
pub enum SchedulerCall {
    /// Opens (or re-opens, with an id) the framework's event stream.
    Subscribe { framework_id: Option<FrameworkId>, info: FrameworkInfo },
    /// Any other call: one command for the log, on behalf of this framework.
    Command { framework_id: FrameworkId, command: Command },
}

fn required<T>(value: Option<T>, field: &str) -> Result<T, FieldError> {
    value.ok_or_else(|| FieldError::new(field, "is required for this call type"))
}

fn filters(json: Option<FiltersJson>) -> Result<Filters, FieldError> {
    let Some(seconds) = json.and_then(|f| f.refuse_seconds) else { return Ok(Filters::default()) };
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(FieldError::new("filters.refuse_seconds", "must be a non-negative number"));
    }
    // Mesos caps refuse_seconds at a year; beyond that it means "forever" in practice.
    let capped = seconds.min(365.0 * 24.0 * 3600.0);
    Ok(Filters { refuse: std::time::Duration::from_secs_f64(capped) })
}

fn offer_ids(ids: Vec<IdJson>) -> Vec<OfferId> {
    ids.into_iter().map(|id| OfferId::from(id.value)).collect()
}

impl CallJson {
    /// Validates the call's shape and turns it into what the master should do.
    pub fn into_call(self) -> Result<SchedulerCall, FieldError> {
        if self.kind == "SUBSCRIBE" {
            let subscribe = required(self.subscribe, "subscribe")?;
            let info = framework_info_from_json(&subscribe.framework_info)?;
            let framework_id = self
                .framework_id
                .or(subscribe.framework_info.id)
                .map(|id| FrameworkId::from(id.value));
            return Ok(SchedulerCall::Subscribe { framework_id, info });
        }
        let framework_id = FrameworkId::from(required(self.framework_id, "framework_id")?.value);
        let command = match self.kind.as_str() {
            "TEARDOWN" => Command::Teardown { framework_id: framework_id.clone() },
            "ACCEPT" => {
                let accept = required(self.accept, "accept")?;
                let operations = accept
                    .operations
                    .iter()
                    .enumerate()
                    .map(|(index, operation)| operation_from_json(operation, &format!("accept.operations[{index}]")))
                    .collect::<Result<Vec<_>, _>>()?;
                Command::Accept {
                    framework_id: framework_id.clone(),
                    offer_ids: offer_ids(accept.offer_ids),
                    operations,
                    filters: filters(accept.filters)?,
                }
            }
            "DECLINE" => {
                let decline = required(self.decline, "decline")?;
                Command::Decline {
                    framework_id: framework_id.clone(),
                    offer_ids: offer_ids(decline.offer_ids),
                    filters: filters(decline.filters)?,
                }
            }
            "REVIVE" => Command::Revive {
                framework_id: framework_id.clone(),
                roles: role_list(&self.revive.unwrap_or_default().roles, "revive.roles")?,
            },
            "SUPPRESS" => Command::Suppress {
                framework_id: framework_id.clone(),
                roles: role_list(&self.suppress.unwrap_or_default().roles, "suppress.roles")?,
            },
            "KILL" => {
                let kill = required(self.kill, "kill")?;
                Command::Kill {
                    framework_id: framework_id.clone(),
                    task_id: TaskId::from(kill.task_id.value),
                    agent_id: kill.agent_id.map(|id| AgentId::from(id.value)),
                    kill_policy: kill.kill_policy.as_ref().map(kill_policy_from_json).transpose()?,
                }
            }
            "SHUTDOWN" => {
                let shutdown = required(self.shutdown, "shutdown")?;
                Command::Shutdown {
                    framework_id: framework_id.clone(),
                    executor_id: ExecutorId::from(shutdown.executor_id.value),
                    agent_id: AgentId::from(shutdown.agent_id.value),
                }
            }
            "ACKNOWLEDGE" => {
                let acknowledge = required(self.acknowledge, "acknowledge")?;
                if acknowledge.uuid.is_empty() {
                    return Err(FieldError::new("acknowledge.uuid", "must not be empty"));
                }
                Command::Acknowledge {
                    framework_id: framework_id.clone(),
                    agent_id: AgentId::from(acknowledge.agent_id.value),
                    task_id: TaskId::from(acknowledge.task_id.value),
                    uuid: UpdateUuid::from(acknowledge.uuid),
                }
            }
            "RECONCILE" => {
                let reconcile = self.reconcile.unwrap_or_default();
                let tasks = reconcile
                    .tasks
                    .into_iter()
                    .map(|task| (TaskId::from(task.task_id.value), task.agent_id.map(|id| AgentId::from(id.value))))
                    .collect();
                Command::Reconcile { framework_id: framework_id.clone(), tasks }
            }
            "MESSAGE" => {
                let message = required(self.message, "message")?;
                Command::Message {
                    framework_id: framework_id.clone(),
                    agent_id: AgentId::from(message.agent_id.value),
                    executor_id: ExecutorId::from(message.executor_id.value),
                    data: decode_base64(&message.data, "message.data")?,
                }
            }
            "REQUEST" => {
                return Err(FieldError::new("type", "REQUEST is not supported (Mesos ignores it too)"))
            }
            other => {
                return Err(FieldError::new(
                    "type",
                    format!(
                        "unknown call type '{other}'; expected one of SUBSCRIBE, TEARDOWN, ACCEPT, DECLINE, \
                         REVIVE, SUPPRESS, KILL, SHUTDOWN, ACKNOWLEDGE, RECONCILE, MESSAGE"
                    ),
                ))
            }
        };
        Ok(SchedulerCall::Command { framework_id, command })
    }
}
