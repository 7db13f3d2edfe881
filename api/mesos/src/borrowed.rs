//! Serializers that write Mesos v1 JSON straight from borrowed state, for the answers that
//! scale with the number of tasks (GET_TASKS, GET_STATE): no intermediate `Value` tree and no
//! copies of the records.

use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::Serialize;

use super::convert::{
    command_to_json, container_to_json, health_check_to_json, kill_policy_to_json, source_to_json,
};
use corral_state::model::{Task, TaskStatus};
use corral_state::{Reservation, Resource, Resources, Role, Value};

/// `{"value": "..."}`.
pub struct IdRef<'a>(pub &'a str);

impl Serialize for IdRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("value", self.0)?;
        map.end()
    }
}

struct Range(u64, u64);

impl Serialize for Range {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("begin", &self.0)?;
        map.serialize_entry("end", &self.1)?;
        map.end()
    }
}

/// One resource as `resource_to_json` renders it.
pub struct ResourceRef<'a> {
    pub resource: &'a Resource,
    pub allocation_role: Option<&'a Role>,
}

struct ScalarRef(f64);

impl Serialize for ScalarRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("value", &self.0)?;
        map.end()
    }
}

struct RangesRef<'a>(&'a [(u64, u64)]);

impl Serialize for RangesRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let range: Vec<Range> = self.0.iter().map(|&(begin, end)| Range(begin, end)).collect();
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("range", &range)?;
        map.end()
    }
}

struct SetRef<'a>(&'a std::collections::BTreeSet<String>);

impl Serialize for SetRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("item", self.0)?;
        map.end()
    }
}

struct ReservationRef<'a> {
    kind: &'static str,
    role: &'a str,
    principal: Option<&'a str>,
}

impl Serialize for ReservationRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("type", self.kind)?;
        map.serialize_entry("role", self.role)?;
        if let Some(principal) = self.principal {
            map.serialize_entry("principal", principal)?;
        }
        map.end()
    }
}

struct RoleRef<'a>(&'a str);

impl Serialize for RoleRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("role", self.0)?;
        map.end()
    }
}

impl Serialize for ResourceRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let resource = self.resource;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("name", resource.name.as_str())?;
        match &resource.value {
            Value::Scalar(amount) => {
                map.serialize_entry("type", "SCALAR")?;
                map.serialize_entry("scalar", &ScalarRef(amount.as_f64()))?;
            }
            Value::Ranges(ranges) => {
                map.serialize_entry("type", "RANGES")?;
                map.serialize_entry("ranges", &RangesRef(ranges.as_slice()))?;
            }
            Value::Set(items) => {
                map.serialize_entry("type", "SET")?;
                map.serialize_entry("set", &SetRef(items))?;
            }
        }
        match &resource.reservation {
            Reservation::Unreserved => map.serialize_entry("role", "*")?,
            Reservation::Static { role } => {
                map.serialize_entry("role", role.as_str())?;
                map.serialize_entry(
                    "reservations",
                    &[ReservationRef { kind: "STATIC", role: role.as_str(), principal: None }],
                )?;
            }
            Reservation::Dynamic { role, principal } => {
                map.serialize_entry("role", role.as_str())?;
                let reservation = ReservationRef {
                    kind: "DYNAMIC",
                    role: role.as_str(),
                    principal: principal.as_deref(),
                };
                map.serialize_entry("reservations", &[reservation])?;
            }
        }
        if let Some(role) = self.allocation_role {
            map.serialize_entry("allocation_info", &RoleRef(role.as_str()))?;
        }
        map.end()
    }
}

pub struct ResourcesRef<'a>(pub &'a Resources, pub Option<&'a Role>);

impl Serialize for ResourcesRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut sequence = serializer.serialize_seq(Some(self.0.as_slice().len()))?;
        for resource in self.0.iter() {
            sequence.serialize_element(&ResourceRef { resource, allocation_role: self.1 })?;
        }
        sequence.end()
    }
}

/// A `TaskStatus` as `task_status_to_json` renders it.
pub struct StatusRef<'a>(pub &'a TaskStatus);

impl Serialize for StatusRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let status = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("task_id", &IdRef(status.task_id.as_str()))?;
        map.serialize_entry("state", status.state.as_mesos_str())?;
        if let Some(message) = &status.message {
            map.serialize_entry("message", message)?;
        }
        map.serialize_entry("source", source_to_json(status.source))?;
        if let Some(reason) = status.reason {
            map.serialize_entry("reason", reason.as_mesos_str())?;
        }
        if let Some(healthy) = status.healthy {
            map.serialize_entry("healthy", &healthy)?;
        }
        if let Some(agent_id) = &status.agent_id {
            map.serialize_entry("agent_id", &IdRef(agent_id.as_str()))?;
        }
        if let Some(executor_id) = &status.executor_id {
            map.serialize_entry("executor_id", &IdRef(executor_id.as_str()))?;
        }
        map.serialize_entry("timestamp", &status.timestamp.as_secs_f64())?;
        if let Some(uuid) = &status.uuid {
            map.serialize_entry("uuid", uuid.as_str())?;
        }
        map.end()
    }
}

/// A master's `Task` record, as GET_TASKS and TASK_ADDED carry it.
pub struct TaskRef<'a>(pub &'a Task);

impl Serialize for TaskRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let task = self.0;
        let info = &task.info;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("name", &info.name)?;
        map.serialize_entry("task_id", &IdRef(info.task_id.as_str()))?;
        map.serialize_entry("framework_id", &IdRef(task.framework_id.as_str()))?;
        map.serialize_entry("agent_id", &IdRef(info.agent_id.as_str()))?;
        map.serialize_entry("state", task.state.as_mesos_str())?;
        map.serialize_entry("resources", &ResourcesRef(&info.resources, Some(&task.role)))?;
        let statuses: Vec<StatusRef<'_>> = task.statuses.iter().map(StatusRef).collect();
        map.serialize_entry("statuses", &statuses)?;
        map.serialize_entry("role", task.role.as_str())?;
        if let Some(latest) = task.latest_status() {
            if let Some(uuid) = &latest.uuid {
                map.serialize_entry("status_update_state", latest.state.as_mesos_str())?;
                map.serialize_entry("status_update_uuid", uuid.as_str())?;
            }
        }
        if let Some(executor) = &info.executor {
            map.serialize_entry("executor_id", &IdRef(executor.executor_id.as_str()))?;
        }
        if let Some(command) = &info.command {
            map.serialize_entry("command", &command_to_json(command))?;
        }
        if let Some(container) = &info.container {
            map.serialize_entry("container", &container_to_json(container))?;
        }
        if let Some(check) = &info.health_check {
            map.serialize_entry("health_check", &health_check_to_json(check))?;
        }
        if let Some(policy) = &info.kill_policy {
            map.serialize_entry("kill_policy", &kill_policy_to_json(policy))?;
        }
        if !info.labels.is_empty() {
            let labels: Vec<serde_json::Value> = info
                .labels
                .iter()
                .map(|l| serde_json::json!({"key": l.key, "value": l.value}))
                .collect();
            map.serialize_entry("labels", &serde_json::json!({"labels": labels}))?;
        }
        map.end()
    }
}
