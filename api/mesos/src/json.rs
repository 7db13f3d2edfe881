//! Mesos v1 JSON shapes (field names from `mesos/v1/mesos.proto` and
//! `mesos/v1/scheduler/scheduler.proto`). These are wire types only: `convert.rs` turns them
//! into `corral-state` types, validating as it goes.

use serde::{Deserialize, Serialize};

/// Every Mesos id is `{"value": "..."}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IdJson {
    pub value: String,
}

impl IdJson {
    pub fn new(value: impl std::fmt::Display) -> IdJson {
        IdJson { value: value.to_string() }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ScalarJson {
    pub value: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RangeJson {
    pub begin: u64,
    pub end: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RangesJson {
    #[serde(default)]
    pub range: Vec<RangeJson>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SetJson {
    #[serde(default)]
    pub item: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReservationJson {
    /// `STATIC` or `DYNAMIC`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AllocationInfoJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceJson {
    pub name: String,
    /// `SCALAR`, `RANGES` or `SET`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scalar: Option<ScalarJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranges: Option<RangesJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<SetJson>,
    /// Pre-1.4 reservation role; still sent by old frameworks and read by old tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reservations: Vec<ReservationJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocation_info: Option<AllocationInfoJson>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LabelJson {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LabelsJson {
    #[serde(default)]
    pub labels: Vec<LabelJson>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CapabilityJson {
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FrameworkInfoJson {
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<IdJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover_timeout: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<bool>,
    /// Deprecated single role; `roles` wins when both are given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webui_url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<CapabilityJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<LabelsJson>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VariableJson {
    pub name: String,
    #[serde(default)]
    pub value: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentJson {
    #[serde(default)]
    pub variables: Vec<VariableJson>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UriJson {
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extract: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CommandInfoJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arguments: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<EnvironmentJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uris: Vec<UriJson>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PortMappingJson {
    pub host_port: u32,
    pub container_port: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ParameterJson {
    pub key: String,
    pub value: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DockerInfoJson {
    pub image: String,
    /// `HOST` (default), `BRIDGE`, `NONE` or `USER`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_mappings: Vec<PortMappingJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<ParameterJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_pull_image: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerInfoJson {
    /// `MESOS` or `DOCKER`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerInfoJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpCheckJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    pub port: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TcpCheckJson {
    pub port: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthCheckJson {
    /// `COMMAND`, `HTTP` or `TCP`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandInfoJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpCheckJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpCheckJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_failures: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period_seconds: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DurationInfoJson {
    pub nanoseconds: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KillPolicyJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period: Option<DurationInfoJson>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecutorInfoJson {
    pub executor_id: IdJson,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandInfoJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerInfoJson>,
    #[serde(default)]
    pub resources: Vec<ResourceJson>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskInfoJson {
    pub name: String,
    pub task_id: IdJson,
    pub agent_id: IdJson,
    #[serde(default)]
    pub resources: Vec<ResourceJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<ExecutorInfoJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandInfoJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerInfoJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheckJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_policy: Option<KillPolicyJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<LabelsJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery: Option<DiscoveryInfoJson>,
}

/// Mesos `DiscoveryInfo`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DiscoveryInfoJson {
    pub visibility: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<PortsJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<LabelsJson>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PortsJson {
    #[serde(default)]
    pub ports: Vec<PortJson>,
}

/// Mesos `Port`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PortJson {
    pub number: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<LabelsJson>,
}

/// Mesos `TaskStatus` as events and operator responses carry it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskStatusJson {
    pub task_id: IdJson,
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<IdJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor_id: Option<IdJson>,
    pub timestamp: f64,
    /// Base64, as protobuf `bytes` are in JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OfferJson {
    pub id: IdJson,
    pub framework_id: IdJson,
    pub agent_id: IdJson,
    pub hostname: String,
    pub resources: Vec<ResourceJson>,
    pub allocation_info: AllocationInfoJson,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FiltersJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refuse_seconds: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LaunchJson {
    #[serde(default)]
    pub task_infos: Vec<TaskInfoJson>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskGroupJson {
    #[serde(default)]
    pub tasks: Vec<TaskInfoJson>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LaunchGroupJson {
    pub executor: ExecutorInfoJson,
    pub task_group: TaskGroupJson,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReserveJson {
    #[serde(default)]
    pub resources: Vec<ResourceJson>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OperationJson {
    /// `LAUNCH`, `LAUNCH_GROUP`, `RESERVE` or `UNRESERVE`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch: Option<LaunchJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_group: Option<LaunchGroupJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserve: Option<ReserveJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreserve: Option<ReserveJson>,
}
