//! `GET /state`: the Mesos agent's v0 JSON. Resources are flat maps (`{"cpus": 4.0, "ports":
//! "[31000-32000]"}`), ids plain strings, times seconds. Every task is one executor's (the
//! command executor's, named after the task, unless the task has its own executor); an
//! executor with a live task is under `executors`, one whose tasks all ended under
//! `completed_executors`, and a framework with no live executor under
//! `completed_frameworks`.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use corral_state::{ExecutorId, FrameworkId, Resources, Value as ResourceValue};
use serde_json::{json, Map, Value};

use super::error::ApiError;
use super::{AgentApi, MESOS_VERSION};
use crate::tasks::TaskRecord;

/// Mesos v0 resource maps: scalars as numbers, ranges and sets in their text form.
pub fn resource_map(resources: &Resources) -> Value {
    let mut map = Map::new();
    for name in ["cpus", "mem", "disk", "gpus"] {
        map.insert(name.to_owned(), json!(resources.scalar(name).as_f64()));
    }
    for resource in resources.iter() {
        let name = resource.name.as_str();
        if map.contains_key(name) {
            continue;
        }
        let value = match &resource.value {
            ResourceValue::Scalar(_) => json!(resources.scalar(name).as_f64()),
            ResourceValue::Ranges(_) => json!(resources.ranges(name).to_string()),
            ResourceValue::Set(_) => json!(resource.value.to_string()),
        };
        map.insert(name.to_owned(), value);
    }
    Value::Object(map)
}

fn reserved_by_role(resources: &Resources) -> Value {
    let mut roles: BTreeMap<String, Resources> = BTreeMap::new();
    for resource in resources.iter() {
        if let Some(role) = resource.reservation.role() {
            let one = resources.filter(|candidate| candidate == resource);
            roles.entry(role.as_str().to_owned()).or_default().add(&one);
        }
    }
    Value::Object(roles.iter().map(|(role, held)| (role.clone(), resource_map(held))).collect())
}

fn task_json(record: &TaskRecord, agent_id: &str) -> Value {
    let executor_id = match &record.info.executor {
        Some(executor) => executor.executor_id.as_str(),
        // Mesos leaves a command task's executor id empty in its Task.
        None => "",
    };
    let statuses: Vec<Value> = record
        .statuses
        .iter()
        .map(|status| {
            let mut entry =
                json!({"state": status.state.as_mesos_str(), "timestamp": status.timestamp.as_secs_f64()});
            if let Some(healthy) = status.healthy {
                entry["healthy"] = json!(healthy);
            }
            entry
        })
        .collect();
    let labels: Vec<Value> = record
        .info
        .labels
        .iter()
        .map(|label| match &label.value {
            Some(value) => json!({"key": label.key, "value": value}),
            None => json!({"key": label.key}),
        })
        .collect();
    let mut task = json!({
        "id": record.info.task_id.as_str(),
        "name": record.info.name,
        "framework_id": record.framework_id.as_str(),
        "executor_id": executor_id,
        "slave_id": agent_id,
        "state": record.state.as_mesos_str(),
        "resources": resource_map(&record.info.resources),
        "statuses": statuses,
        "labels": labels,
    });
    if let Some(role) = &record.role {
        task["role"] = json!(role.as_str());
    }
    task
}

/// One executor and its tasks.
struct Executor<'a> {
    tasks: Vec<&'a TaskRecord>,
    completed: Vec<&'a TaskRecord>,
}

fn executor_json(executor_id: &ExecutorId, executor: &Executor<'_>, agent_id: &str) -> Value {
    let first = executor.tasks.first().or(executor.completed.first()).copied();
    let Some(first) = first else { return json!({"id": executor_id.as_str()}) };
    let mut resources = Resources::new();
    for record in &executor.tasks {
        resources.add(&record.info.resources);
    }
    let (name, source) = match &first.info.executor {
        Some(info) => (info.name.clone().unwrap_or_default(), executor_id.as_str().to_owned()),
        None => (
            format!("Command Executor (Task: {})", first.info.task_id),
            first.info.task_id.as_str().to_owned(),
        ),
    };
    let mut value = json!({
        "id": executor_id.as_str(),
        "name": name,
        "source": source,
        "container": crate::environment::container_name(
            &corral_state::AgentId::new(agent_id),
            &first.framework_id,
            &first.info.task_id,
        ),
        "directory": first.sandbox.display().to_string(),
        "resources": resource_map(&resources),
        "type": if first.is_command_task() { "COMMAND" } else { "DEFAULT" },
        "tasks": executor.tasks.iter().map(|record| task_json(record, agent_id)).collect::<Vec<_>>(),
        "queued_tasks": [],
        "completed_tasks": executor.completed.iter().map(|record| task_json(record, agent_id)).collect::<Vec<_>>(),
    });
    if let Some(role) = &first.role {
        value["role"] = json!(role.as_str());
    }
    value
}

fn framework_json(
    framework_id: &FrameworkId,
    executors: &BTreeMap<ExecutorId, Executor<'_>>,
    agent_id: &str,
) -> Value {
    let (live, completed): (Vec<_>, Vec<_>) =
        executors.iter().partition(|(_, executor)| !executor.tasks.is_empty());
    let render = |list: Vec<(&ExecutorId, &Executor<'_>)>| -> Vec<Value> {
        list.into_iter().map(|(id, executor)| executor_json(id, executor, agent_id)).collect()
    };
    json!({
        "id": framework_id.as_str(),
        "executors": render(live),
        "completed_executors": render(completed),
    })
}

/// `GET /state`.
pub async fn state(State(api): State<AgentApi>) -> Result<Json<Value>, ApiError> {
    let agent_id = api.agent_id().ok_or_else(|| {
        ApiError::Unavailable("the agent has not registered with a master yet".to_owned())
    })?;
    let agent_id = agent_id.as_str();
    let live = api.tasks().live();
    let completed = api.tasks().completed();
    let mut frameworks: BTreeMap<FrameworkId, BTreeMap<ExecutorId, Executor<'_>>> = BTreeMap::new();
    for record in &live {
        let executor = frameworks
            .entry(record.framework_id.clone())
            .or_default()
            .entry(record.executor_id())
            .or_insert_with(|| Executor { tasks: Vec::new(), completed: Vec::new() });
        executor.tasks.push(record);
    }
    for record in &completed {
        let executor = frameworks
            .entry(record.framework_id.clone())
            .or_default()
            .entry(record.executor_id())
            .or_insert_with(|| Executor { tasks: Vec::new(), completed: Vec::new() });
        executor.completed.push(record);
    }
    let (active, done): (Vec<_>, Vec<_>) = frameworks
        .iter()
        .partition(|(_, executors)| executors.values().any(|executor| !executor.tasks.is_empty()));
    let identity = api.identity();
    let attributes: Map<String, Value> = identity
        .attributes
        .0
        .iter()
        .map(|(key, value)| {
            let value = value.parse::<f64>().map(|number| json!(number)).unwrap_or(json!(value));
            (key.clone(), value)
        })
        .collect();
    let mut body = json!({
        "version": MESOS_VERSION,
        "corral_version": env!("CARGO_PKG_VERSION"),
        "build_user": "corral",
        "start_time": api.started_at_secs(),
        "id": agent_id,
        "pid": format!("slave(1)@{}", identity.address),
        "hostname": identity.hostname,
        "capabilities": [],
        "resources": resource_map(&identity.resources),
        "reserved_resources": reserved_by_role(&identity.resources),
        "unreserved_resources": resource_map(&identity.resources.unreserved()),
        "attributes": attributes,
        "flags": identity.flags,
        "frameworks": active
            .into_iter()
            .map(|(id, executors)| framework_json(id, executors, agent_id))
            .collect::<Vec<_>>(),
        "completed_frameworks": done
            .into_iter()
            .map(|(id, executors)| framework_json(id, executors, agent_id))
            .collect::<Vec<_>>(),
    });
    if let Some(master) = api.master_hostname() {
        body["master_hostname"] = json!(master);
    }
    Ok(Json(body))
}
