//! Serializers that write Mesos v1 JSON straight from borrowed state, for the answers that
//! scale with the number of tasks (GET_TASKS, GET_STATE): no intermediate `Value` tree and no
//! copies of the records.

use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::Serialize;

use super::convert::{
    capability_to_json, container_to_json, health_check_to_json, kill_policy_to_json,
    source_to_json,
};
use corral_state::model::{
    Agent, AgentMode, CommandInfo, CommandUri, Framework, FrameworkInfo, Label, Liveness, Offer,
    Task, TaskStatus,
};
use corral_state::{
    ClusterState, FrameworkId, Reservation, Resource, Resources, Role, Timestamp, Value,
};

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

struct StatusesRef<'a>(&'a [TaskStatus]);

impl Serialize for StatusesRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut sequence = serializer.serialize_seq(Some(self.0.len()))?;
        for status in self.0 {
            sequence.serialize_element(&StatusRef(status))?;
        }
        sequence.end()
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
        map.serialize_entry("statuses", &StatusesRef(&task.statuses))?;
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
            map.serialize_entry("command", &CommandRef(command))?;
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

// The operator API's agents, frameworks and offers. Their answers used to be built as
// `serde_json::Value` trees, whose objects keep their keys sorted; these write the same keys
// in the same (sorted) order, so the bytes are unchanged.

/// One resource as `resource_to_json` renders it after a trip through a `Value`: keys sorted.
struct SortedResourceRef<'a> {
    resource: &'a Resource,
    allocation_role: Option<&'a Role>,
}

impl Serialize for SortedResourceRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let resource = self.resource;
        let mut map = serializer.serialize_map(None)?;
        if let Some(role) = self.allocation_role {
            map.serialize_entry("allocation_info", &RoleRef(role.as_str()))?;
        }
        map.serialize_entry("name", resource.name.as_str())?;
        if let Value::Ranges(ranges) = &resource.value {
            map.serialize_entry("ranges", &RangesRef(ranges.as_slice()))?;
        }
        let (role, reservation) = match &resource.reservation {
            Reservation::Unreserved => ("*", None),
            Reservation::Static { role } => (role.as_str(), Some((role.as_str(), None, "STATIC"))),
            Reservation::Dynamic { role, principal } => {
                (role.as_str(), Some((role.as_str(), principal.as_deref(), "DYNAMIC")))
            }
        };
        if let Some(reservation) = reservation {
            map.serialize_entry("reservations", &[SortedReservationRef(reservation)])?;
        }
        map.serialize_entry("role", role)?;
        match &resource.value {
            Value::Scalar(amount) => {
                map.serialize_entry("scalar", &ScalarRef(amount.as_f64()))?;
                map.serialize_entry("type", "SCALAR")?;
            }
            Value::Ranges(_) => map.serialize_entry("type", "RANGES")?,
            Value::Set(items) => {
                map.serialize_entry("set", &SetRef(items))?;
                map.serialize_entry("type", "SET")?;
            }
        }
        map.end()
    }
}

/// `(role, principal, type)` with the keys sorted.
struct SortedReservationRef<'a>((&'a str, Option<&'a str>, &'static str));

impl Serialize for SortedReservationRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (role, principal, kind) = self.0;
        let mut map = serializer.serialize_map(None)?;
        if let Some(principal) = principal {
            map.serialize_entry("principal", principal)?;
        }
        map.serialize_entry("role", role)?;
        map.serialize_entry("type", kind)?;
        map.end()
    }
}

/// `resources_to_json` as a `Value` renders it: keys sorted.
pub struct SortedResourcesRef<'a>(pub &'a Resources, pub Option<&'a Role>);

impl Serialize for SortedResourcesRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut sequence = serializer.serialize_seq(Some(self.0.as_slice().len()))?;
        for resource in self.0.iter() {
            sequence.serialize_element(&SortedResourceRef { resource, allocation_role: self.1 })?;
        }
        sequence.end()
    }
}

/// Mesos's `TimeInfo`: `{"nanoseconds": ...}`.
struct TimeRef(Timestamp);

impl Serialize for TimeRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("nanoseconds", &self.0.nanos())?;
        map.end()
    }
}

/// `{"state": ...}`.
struct StateRef(&'static str);

impl Serialize for StateRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("state", self.0)?;
        map.end()
    }
}

/// An agent's attribute as a Mesos TEXT attribute.
struct AttributeRef<'a>(&'a str, &'a str);

impl Serialize for AttributeRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("name", self.0)?;
        map.serialize_entry("text", &ValueRef(self.1))?;
        map.serialize_entry("type", "TEXT")?;
        map.end()
    }
}

/// `{"value": ...}` around any string.
struct ValueRef<'a>(&'a str);

impl Serialize for ValueRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        IdRef(self.0).serialize(serializer)
    }
}

struct AttributesRef<'a>(&'a [(String, String)]);

impl Serialize for AttributesRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut sequence = serializer.serialize_seq(Some(self.0.len()))?;
        for (name, value) in self.0 {
            sequence.serialize_element(&AttributeRef(name, value))?;
        }
        sequence.end()
    }
}

/// The ip and port of an agent's `host:port` address; an address without a port is
/// Mesos's default agent port.
fn ip_and_port(address: &str) -> (&str, u32) {
    let (ip, port) = address.rsplit_once(':').unwrap_or((address, "5051"));
    (ip, port.parse::<u32>().unwrap_or(5051))
}

/// An agent's `AgentInfo`.
pub struct AgentInfoRef<'a>(pub &'a Agent);

impl Serialize for AgentInfoRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let agent = self.0;
        let (ip, port) = ip_and_port(&agent.info.address);
        let mut map = serializer.serialize_map(Some(6))?;
        map.serialize_entry("attributes", &AttributesRef(&agent.info.attributes.0))?;
        map.serialize_entry("hostname", &agent.info.hostname)?;
        map.serialize_entry("id", &IdRef(agent.id.as_str()))?;
        map.serialize_entry("ip", ip)?;
        map.serialize_entry("port", &port)?;
        map.serialize_entry("resources", &SortedResourcesRef(&agent.total, None))?;
        map.end()
    }
}

/// `slave(1)@host:port`, the agent's libprocess pid.
struct AgentPid<'a>(&'a str);

impl Serialize for AgentPid<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!("slave(1)@{}", self.0))
    }
}

/// One agent of GET_AGENTS.
pub struct AgentRef<'a>(pub &'a Agent);

impl Serialize for AgentRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let agent = self.0;
        let drain = match agent.mode {
            AgentMode::Draining(_) => Some("DRAINING"),
            AgentMode::Drained(_) => Some("DRAINED"),
            AgentMode::Active | AgentMode::Deactivated => None,
        };
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("active", &(agent.liveness == Liveness::Reachable))?;
        map.serialize_entry("agent_info", &AgentInfoRef(agent))?;
        map.serialize_entry("allocated_resources", &SortedResourcesRef(&agent.allocated, None))?;
        map.serialize_entry("deactivated", &(agent.mode != AgentMode::Active))?;
        if let Some(drain) = drain {
            map.serialize_entry("drain_info", &StateRef(drain))?;
        }
        map.serialize_entry("offered_resources", &SortedResourcesRef(&agent.offered, None))?;
        map.serialize_entry("pid", &AgentPid(&agent.info.address))?;
        map.serialize_entry("registered_time", &TimeRef(agent.registered_at))?;
        if let Some(at) = agent.reregistered_at {
            map.serialize_entry("reregistered_time", &TimeRef(at))?;
        }
        map.serialize_entry("total_resources", &SortedResourcesRef(&agent.total, None))?;
        map.serialize_entry("version", env!("CARGO_PKG_VERSION"))?;
        map.end()
    }
}

/// `{"type": ...}`, a framework capability.
struct CapabilityRef(&'static str);

impl Serialize for CapabilityRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("type", self.0)?;
        map.end()
    }
}

/// A label with its keys sorted: `{"key": ..., "value": ...}`.
struct LabelRef<'a>(&'a Label);

impl Serialize for LabelRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("key", &self.0.key)?;
        if let Some(value) = &self.0.value {
            map.serialize_entry("value", value)?;
        }
        map.end()
    }
}

struct LabelsRef<'a>(&'a [Label]);

impl Serialize for LabelsRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let labels: Vec<LabelRef<'_>> = self.0.iter().map(LabelRef).collect();
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("labels", &labels)?;
        map.end()
    }
}

/// `framework_info_to_json` as a `Value` renders it: keys sorted.
pub struct FrameworkInfoRef<'a>(pub &'a FrameworkInfo, pub &'a FrameworkId);

impl Serialize for FrameworkInfoRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let info = self.0;
        let mut map = serializer.serialize_map(None)?;
        if !info.capabilities.is_empty() {
            let capabilities: Vec<CapabilityRef> =
                info.capabilities.iter().map(|c| CapabilityRef(capability_to_json(*c))).collect();
            map.serialize_entry("capabilities", &capabilities)?;
        }
        map.serialize_entry("checkpoint", &info.checkpoint)?;
        map.serialize_entry("failover_timeout", &info.failover_timeout.as_secs_f64())?;
        if let Some(hostname) = &info.hostname {
            map.serialize_entry("hostname", hostname)?;
        }
        map.serialize_entry("id", &IdRef(self.1.as_str()))?;
        if !info.labels.is_empty() {
            map.serialize_entry("labels", &LabelsRef(&info.labels))?;
        }
        map.serialize_entry("name", &info.name)?;
        if let Some(principal) = &info.principal {
            map.serialize_entry("principal", principal)?;
        }
        if let [role] = info.roles.as_slice() {
            map.serialize_entry("role", role.as_str())?;
        }
        if !info.roles.is_empty() {
            let roles: Vec<&str> = info.roles.iter().map(Role::as_str).collect();
            map.serialize_entry("roles", &roles)?;
        }
        map.serialize_entry("user", &info.user)?;
        if let Some(url) = &info.webui_url {
            map.serialize_entry("webui_url", url)?;
        }
        map.end()
    }
}

/// `offer_to_json` as a `Value` renders it: keys sorted.
pub struct OfferRef<'a>(pub &'a Offer);

impl Serialize for OfferRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let offer = self.0;
        let mut map = serializer.serialize_map(Some(6))?;
        map.serialize_entry("agent_id", &IdRef(offer.agent_id.as_str()))?;
        map.serialize_entry("allocation_info", &RoleRef(offer.role.as_str()))?;
        map.serialize_entry("framework_id", &IdRef(offer.framework_id.as_str()))?;
        map.serialize_entry("hostname", &offer.hostname)?;
        map.serialize_entry("id", &IdRef(offer.id.as_str()))?;
        map.serialize_entry("resources", &SortedResourcesRef(&offer.resources, Some(&offer.role)))?;
        map.end()
    }
}

/// One framework of GET_FRAMEWORKS; `removed_at` is when a completed one was torn down.
pub struct FrameworkRef<'a> {
    pub framework: &'a Framework,
    pub removed_at: Option<Timestamp>,
    pub state: &'a ClusterState,
}

impl Serialize for FrameworkRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let framework = self.framework;
        let offers: Vec<&Offer> =
            framework.offers.iter().filter_map(|id| self.state.offer(id)).collect();
        let mut allocated = Resources::new();
        for task in framework.tasks.values().filter(|task| !task.state.is_terminal()) {
            allocated.add(task.resources());
        }
        let mut offered = Resources::new();
        for offer in &offers {
            offered.add(&offer.resources);
        }
        let connected = self.removed_at.is_none() && framework.is_connected();
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("active", &connected)?;
        map.serialize_entry("allocated_resources", &SortedResourcesRef(&allocated, None))?;
        map.serialize_entry("connected", &connected)?;
        map.serialize_entry("framework_info", &FrameworkInfoRef(&framework.info, &framework.id))?;
        map.serialize_entry("offered_resources", &SortedResourcesRef(&offered, None))?;
        let offers: Vec<OfferRef<'_>> = offers.into_iter().map(OfferRef).collect();
        map.serialize_entry("offers", &offers)?;
        map.serialize_entry("recovered", &false)?;
        map.serialize_entry("registered_time", &TimeRef(framework.registered_at))?;
        if let Some(at) = framework.reregistered_at {
            map.serialize_entry("reregistered_time", &TimeRef(at))?;
        }
        if let Some(at) = self.removed_at {
            map.serialize_entry("unregistered_time", &TimeRef(at))?;
        }
        map.end()
    }
}

/// `command_to_json` without its copies, in `CommandInfoJson`'s field order.
struct CommandRef<'a>(&'a CommandInfo);

impl Serialize for CommandRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let command = self.0;
        let mut map = serializer.serialize_map(None)?;
        if let Some(value) = &command.value {
            map.serialize_entry("value", value)?;
        }
        map.serialize_entry("shell", &command.shell)?;
        if !command.arguments.is_empty() {
            map.serialize_entry("arguments", &command.arguments)?;
        }
        if !command.environment.is_empty() {
            map.serialize_entry("environment", &EnvironmentRef(&command.environment))?;
        }
        if let Some(user) = &command.user {
            map.serialize_entry("user", user)?;
        }
        if !command.uris.is_empty() {
            let uris: Vec<UriRef<'_>> = command.uris.iter().map(UriRef).collect();
            map.serialize_entry("uris", &uris)?;
        }
        map.end()
    }
}

struct EnvironmentRef<'a>(&'a [(String, String)]);

impl Serialize for EnvironmentRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let variables: Vec<VariableRef<'_>> =
            self.0.iter().map(|(name, value)| VariableRef { name, value }).collect();
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("variables", &variables)?;
        map.end()
    }
}

#[derive(Serialize)]
struct VariableRef<'a> {
    name: &'a str,
    value: &'a str,
}

struct UriRef<'a>(&'a CommandUri);

impl Serialize for UriRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("value", &self.0.value)?;
        map.serialize_entry("executable", &self.0.executable)?;
        map.serialize_entry("extract", &self.0.extract)?;
        map.end()
    }
}
