//! The Mesos v1 operator API (`POST /api/v1`): calls in, responses rendered from the state.
//! Shapes follow `mesos/v1/master/master.proto`.

use std::io::Write;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Map, Value as Json};

use super::borrowed::{AgentRef, FrameworkRef, TaskRef};
use super::convert::{
    framework_info_to_json, resources_from_json, resources_to_json, role_from_json,
    task_status_to_json,
};
use super::json::{DurationInfoJson, IdJson, ResourceJson};
use super::v0::Sequence;
use crate::error::FieldError;
use corral_state::model::{
    MachineId, MachineMode, MaintenanceWindow, QuotaConfig, Task, Unavailability,
};
use corral_state::{
    AgentId, ClusterState, Command, FrameworkId, Quantities, Role, Scalar, Timestamp,
};

/// Calls that only read. Everything else becomes a command for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OperatorQuery {
    Health,
    Version,
    Flags,
    Metrics,
    State,
    Agents,
    Frameworks,
    Executors,
    Tasks,
    Roles,
    Weights,
    Quota,
    MaintenanceStatus,
    MaintenanceSchedule,
}

#[derive(Clone, Debug, PartialEq)]
pub enum OperatorCall {
    Query(OperatorQuery),
    Command(Box<Command>),
    Subscribe,
}

#[derive(Clone, Debug, Deserialize)]
pub struct OperatorCallJson {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(flatten)]
    pub body: Map<String, Json>,
}

#[derive(Deserialize)]
struct AgentIdBody {
    agent_id: IdJson,
}

#[derive(Deserialize)]
struct WeightInfoJson {
    role: String,
    weight: f64,
}

#[derive(Deserialize)]
struct UpdateWeightsJson {
    #[serde(default)]
    weight_infos: Vec<WeightInfoJson>,
}

#[derive(Deserialize)]
struct ValueJson {
    value: f64,
}

#[derive(Deserialize)]
struct QuotaConfigJson {
    role: String,
    #[serde(default)]
    guarantees: std::collections::BTreeMap<String, ValueJson>,
    #[serde(default)]
    limits: std::collections::BTreeMap<String, ValueJson>,
}

#[derive(Deserialize)]
struct UpdateQuotaJson {
    #[serde(default)]
    quota_configs: Vec<QuotaConfigJson>,
}

#[derive(Clone, Deserialize, serde::Serialize)]
struct MachineIdJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ip: Option<String>,
}

#[derive(Deserialize)]
struct UnavailabilityJson {
    start: TimeInfoJson,
    #[serde(default)]
    duration: Option<DurationInfoJson>,
}

#[derive(Deserialize)]
struct TimeInfoJson {
    nanoseconds: i64,
}

#[derive(Deserialize)]
struct WindowJson {
    #[serde(default)]
    machine_ids: Vec<MachineIdJson>,
    unavailability: UnavailabilityJson,
}

#[derive(Deserialize)]
struct ScheduleJson {
    #[serde(default)]
    windows: Vec<WindowJson>,
}

#[derive(Deserialize)]
struct UpdateScheduleJson {
    schedule: ScheduleJson,
}

#[derive(Deserialize)]
struct MachinesJson {
    #[serde(default)]
    machines: Vec<MachineIdJson>,
}

#[derive(Deserialize)]
struct DrainAgentJson {
    agent_id: IdJson,
    #[serde(default)]
    max_grace_period: Option<DurationInfoJson>,
    #[serde(default)]
    mark_gone: Option<bool>,
}

#[derive(Deserialize)]
struct ReserveJson {
    agent_id: IdJson,
    #[serde(default)]
    resources: Vec<ResourceJson>,
}

#[derive(Deserialize)]
struct TeardownJson {
    framework_id: IdJson,
}

fn body<T: serde::de::DeserializeOwned>(
    call: &OperatorCallJson,
    key: &str,
) -> Result<T, FieldError> {
    let value = call
        .body
        .get(key)
        .cloned()
        .ok_or_else(|| FieldError::new(key, "is required for this call type"))?;
    serde_json::from_value(value).map_err(|error| FieldError::new(key, error.to_string()))
}

fn quantities(
    map: &std::collections::BTreeMap<String, ValueJson>,
    field: &str,
) -> Result<Quantities, FieldError> {
    let mut quantities = Quantities::default();
    for (name, value) in map {
        let amount = Scalar::from_f64(value.value)
            .filter(|amount| amount.milli() >= 0)
            .ok_or_else(|| {
                FieldError::new(&format!("{field}.{name}"), "must be a finite, non-negative number")
            })?;
        quantities.add_one(name, amount);
    }
    Ok(quantities)
}

fn machine(json: &MachineIdJson, field: &str) -> Result<MachineId, FieldError> {
    if json.hostname.is_none() && json.ip.is_none() {
        return Err(FieldError::new(field, "a machine needs a hostname or an ip"));
    }
    Ok(MachineId { hostname: json.hostname.clone(), ip: json.ip.clone() })
}

fn machines(list: &[MachineIdJson], field: &str) -> Result<Vec<MachineId>, FieldError> {
    list.iter().enumerate().map(|(index, m)| machine(m, &format!("{field}[{index}]"))).collect()
}

fn non_negative_nanos(nanos: i64, field: &str) -> Result<u64, FieldError> {
    u64::try_from(nanos).map_err(|_| FieldError::new(field, "must not be negative"))
}

impl OperatorCallJson {
    pub fn into_call(self) -> Result<OperatorCall, FieldError> {
        use OperatorQuery as Q;
        let query = |query| Ok(OperatorCall::Query(query));
        let command = match self.kind.as_str() {
            "GET_HEALTH" => return query(Q::Health),
            "GET_VERSION" => return query(Q::Version),
            "GET_FLAGS" => return query(Q::Flags),
            "GET_METRICS" => return query(Q::Metrics),
            "GET_STATE" => return query(Q::State),
            "GET_AGENTS" => return query(Q::Agents),
            "GET_FRAMEWORKS" => return query(Q::Frameworks),
            "GET_EXECUTORS" => return query(Q::Executors),
            "GET_TASKS" => return query(Q::Tasks),
            "GET_ROLES" => return query(Q::Roles),
            "GET_WEIGHTS" => return query(Q::Weights),
            "GET_QUOTA" => return query(Q::Quota),
            "GET_MAINTENANCE_STATUS" => return query(Q::MaintenanceStatus),
            "GET_MAINTENANCE_SCHEDULE" => return query(Q::MaintenanceSchedule),
            "SUBSCRIBE" => return Ok(OperatorCall::Subscribe),
            "UPDATE_WEIGHTS" => {
                let update: UpdateWeightsJson = body(&self, "update_weights")?;
                let weights = update
                    .weight_infos
                    .iter()
                    .enumerate()
                    .map(|(index, info)| {
                        let field = format!("update_weights.weight_infos[{index}]");
                        let role = role_from_json(&info.role, &format!("{field}.role"))?;
                        let weight = Scalar::from_f64(info.weight)
                            .filter(|w| w.milli() > 0)
                            .ok_or_else(|| {
                                FieldError::new(
                                    &format!("{field}.weight"),
                                    "must be a positive number",
                                )
                            })?;
                        Ok((role, weight))
                    })
                    .collect::<Result<Vec<_>, FieldError>>()?;
                Command::UpdateWeights { weights }
            }
            "UPDATE_QUOTA" => {
                let update: UpdateQuotaJson = body(&self, "update_quota")?;
                let configs = update
                    .quota_configs
                    .iter()
                    .enumerate()
                    .map(|(index, config)| {
                        let field = format!("update_quota.quota_configs[{index}]");
                        Ok(QuotaConfig {
                            role: role_from_json(&config.role, &format!("{field}.role"))?,
                            guarantees: quantities(
                                &config.guarantees,
                                &format!("{field}.guarantees"),
                            )?,
                            limits: quantities(&config.limits, &format!("{field}.limits"))?,
                        })
                    })
                    .collect::<Result<Vec<_>, FieldError>>()?;
                Command::UpdateQuota { configs }
            }
            "UPDATE_MAINTENANCE_SCHEDULE" => {
                let update: UpdateScheduleJson = body(&self, "update_maintenance_schedule")?;
                let windows = update
                    .schedule
                    .windows
                    .iter()
                    .enumerate()
                    .map(|(index, window)| {
                        let field =
                            format!("update_maintenance_schedule.schedule.windows[{index}]");
                        let start = non_negative_nanos(
                            window.unavailability.start.nanoseconds,
                            &format!("{field}.unavailability.start"),
                        )?;
                        let duration = window
                            .unavailability
                            .duration
                            .as_ref()
                            .map(|d| {
                                non_negative_nanos(
                                    d.nanoseconds,
                                    &format!("{field}.unavailability.duration"),
                                )
                                .map(Duration::from_nanos)
                            })
                            .transpose()?;
                        Ok(MaintenanceWindow {
                            machine_ids: machines(
                                &window.machine_ids,
                                &format!("{field}.machine_ids"),
                            )?,
                            unavailability: Unavailability { start: Timestamp(start), duration },
                        })
                    })
                    .collect::<Result<Vec<_>, FieldError>>()?;
                Command::UpdateMaintenanceSchedule { windows }
            }
            "START_MAINTENANCE" => {
                let start: MachinesJson = body(&self, "start_maintenance")?;
                Command::StartMaintenance {
                    machines: machines(&start.machines, "start_maintenance.machines")?,
                }
            }
            "STOP_MAINTENANCE" => {
                let stop: MachinesJson = body(&self, "stop_maintenance")?;
                Command::StopMaintenance {
                    machines: machines(&stop.machines, "stop_maintenance.machines")?,
                }
            }
            "DRAIN_AGENT" => {
                let drain: DrainAgentJson = body(&self, "drain_agent")?;
                let max_grace_period = drain
                    .max_grace_period
                    .map(|d| {
                        non_negative_nanos(d.nanoseconds, "drain_agent.max_grace_period")
                            .map(Duration::from_nanos)
                    })
                    .transpose()?;
                Command::DrainAgent {
                    agent_id: AgentId::from(drain.agent_id.value),
                    max_grace_period,
                    mark_gone: drain.mark_gone.unwrap_or(false),
                }
            }
            "DEACTIVATE_AGENT" => {
                let agent: AgentIdBody = body(&self, "deactivate_agent")?;
                Command::DeactivateAgent { agent_id: AgentId::from(agent.agent_id.value) }
            }
            "REACTIVATE_AGENT" => {
                let agent: AgentIdBody = body(&self, "reactivate_agent")?;
                Command::ReactivateAgent { agent_id: AgentId::from(agent.agent_id.value) }
            }
            "MARK_AGENT_GONE" => {
                let agent: AgentIdBody = body(&self, "mark_agent_gone")?;
                Command::MarkAgentGone { agent_id: AgentId::from(agent.agent_id.value) }
            }
            "RESERVE_RESOURCES" => {
                let reserve: ReserveJson = body(&self, "reserve_resources")?;
                Command::ReserveResources {
                    agent_id: AgentId::from(reserve.agent_id.value),
                    resources: resources_from_json(
                        &reserve.resources,
                        "reserve_resources.resources",
                    )?,
                }
            }
            "UNRESERVE_RESOURCES" => {
                let unreserve: ReserveJson = body(&self, "unreserve_resources")?;
                Command::UnreserveResources {
                    agent_id: AgentId::from(unreserve.agent_id.value),
                    resources: resources_from_json(
                        &unreserve.resources,
                        "unreserve_resources.resources",
                    )?,
                }
            }
            "TEARDOWN" => {
                let teardown: TeardownJson = body(&self, "teardown")?;
                Command::Teardown { framework_id: FrameworkId::from(teardown.framework_id.value) }
            }
            other => {
                return Err(FieldError::new(
                    "type",
                    format!("unknown or unsupported operator call type '{other}'"),
                ))
            }
        };
        Ok(OperatorCall::Command(Box::new(command)))
    }
}

fn nanos(at: Timestamp) -> Json {
    json!({"nanoseconds": at.nanos()})
}

pub fn task_json(task: &Task) -> Json {
    serde_json::to_value(TaskRef(task)).expect("a task's JSON has string keys only")
}

/// GET_TASKS, written straight from the state. Tasks of frameworks that were torn down stay
/// visible under `completed_tasks`, as Mesos shows them.
/// The three lists of GET_TASKS. The tally counts tracked tasks by state (never fewer than
/// the copy holds): the walks for unreachable and terminal ones, usually none of 100,000, are
/// skipped when it counts none.
fn live_tasks(state: &ClusterState) -> impl Iterator<Item = &Task> {
    use corral_state::model::TaskState;
    state
        .frameworks()
        .values()
        .flat_map(|f| f.tasks.values())
        .filter(|task| !task.state.is_terminal() && task.state != TaskState::Unreachable)
        .map(|task| &**task)
}

fn unreachable_tasks(state: &ClusterState) -> impl Iterator<Item = &Task> {
    use corral_state::model::TaskState;
    let any = state.tally().tasks(TaskState::Unreachable) > 0;
    state
        .frameworks()
        .values()
        .filter(move |_| any)
        .flat_map(|f| f.tasks.values())
        .filter(|task| task.state == TaskState::Unreachable)
        .map(|task| &**task)
}

fn completed_tasks(state: &ClusterState) -> impl Iterator<Item = &Task> {
    use corral_state::model::TaskState;
    let tally = state.tally();
    let any_terminal = TaskState::ALL.iter().any(|s| s.is_terminal() && tally.tasks(*s) > 0);
    let tracked = state.frameworks().values().flat_map(move |f| {
        let tracked = any_terminal.then(|| f.tasks.values()).into_iter().flatten();
        let tracked = tracked.filter(|t| t.state.is_terminal()).map(|task| &**task);
        tracked.chain(f.completed_tasks.iter().map(|task| &**task))
    });
    let of_completed_frameworks = state.completed_frameworks().values().flat_map(|c| {
        let framework = &c.framework;
        framework.tasks.values().chain(framework.completed_tasks.iter()).map(|task| &**task)
    });
    tracked.chain(of_completed_frameworks)
}

/// GET_TASKS's body through serde, for `render_query`'s `Value`.
struct TasksRef<'a>(&'a ClusterState);

impl serde::Serialize for TasksRef<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let state = self.0;
        let mut map = serializer.serialize_map(Some(5))?;
        map.serialize_entry("pending_tasks", &[(); 0])?;
        map.serialize_entry("tasks", &Sequence::new(live_tasks(state).map(TaskRef)))?;
        let unreachable = unreachable_tasks(state).map(TaskRef);
        map.serialize_entry("unreachable_tasks", &Sequence::new(unreachable))?;
        map.serialize_entry(
            "completed_tasks",
            &Sequence::new(completed_tasks(state).map(TaskRef)),
        )?;
        map.serialize_entry("orphan_tasks", &[(); 0])?;
        map.end()
    }
}

/// GET_TASKS's body as `TasksRef` writes it, with the live tasks, most of the bytes,
/// rendered on two threads.
fn write_tasks(state: &ClusterState, block: usize, out: &mut impl Write) -> serde_json::Result<()> {
    write_raw(out, br#"{"pending_tasks":[],"tasks":["#)?;
    crate::parallel::write_elements(live_tasks(state).map(TaskRef), block, out)?;
    write_raw(out, br#"],"unreachable_tasks":"#)?;
    serde_json::to_writer(&mut *out, &Sequence::new(unreachable_tasks(state).map(TaskRef)))?;
    write_raw(out, br#","completed_tasks":"#)?;
    serde_json::to_writer(&mut *out, &Sequence::new(completed_tasks(state).map(TaskRef)))?;
    write_raw(out, br#","orphan_tasks":[]}"#)
}

fn write_raw(out: &mut impl Write, bytes: &[u8]) -> serde_json::Result<()> {
    out.write_all(bytes).map_err(serde_json::Error::io)
}

fn get_agents(state: &ClusterState) -> Json {
    serde_json::to_value(AgentsRef(state)).expect("agents render as JSON")
}

fn get_frameworks(state: &ClusterState) -> Json {
    serde_json::to_value(FrameworksRef(state)).expect("frameworks render as JSON")
}

fn get_executors(state: &ClusterState) -> Json {
    serde_json::to_value(ExecutorsRef(state)).expect("executors render as JSON")
}

/// GET_FRAMEWORKS, one framework at a time, in the order of the keys `get_frameworks` had as
/// a `Value`.
struct FrameworksRef<'a>(&'a ClusterState);

impl serde::Serialize for FrameworksRef<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let state = self.0;
        let completed = state.completed_frameworks().values().map(|completed| FrameworkRef {
            framework: &completed.framework,
            removed_at: Some(completed.removed_at),
            state,
        });
        let active = state.frameworks().values().map(|framework| FrameworkRef {
            framework,
            removed_at: None,
            state,
        });
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("completed_frameworks", &Sequence::new(completed))?;
        map.serialize_entry("frameworks", &Sequence::new(active))?;
        map.end()
    }
}

/// GET_EXECUTORS, one executor at a time. Each is still built as a `Value` (command and
/// container have no borrowed writer); there is at most one per custom executor, not one per
/// task.
struct ExecutorsRef<'a>(&'a ClusterState);

impl serde::Serialize for ExecutorsRef<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let executors = self.0.executors().values().map(|executor| {
            json!({
                "agent_id": IdJson::new(&executor.agent_id),
                "executor_info": super::convert::executor_to_json(&executor.info),
            })
        });
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("executors", &Sequence::new(executors))?;
        map.serialize_entry("orphan_executors", &[(); 0])?;
        map.end()
    }
}

fn get_tasks(state: &ClusterState) -> Json {
    serde_json::to_value(TasksRef(state)).expect("tasks render as JSON")
}

fn quantities_json(quantities: &Quantities) -> Json {
    let map: Map<String, Json> = quantities
        .iter()
        .map(|(name, amount)| (name.to_owned(), json!({"value": amount.as_f64()})))
        .collect();
    Json::Object(map)
}

fn get_roles(state: &ClusterState) -> Json {
    let mut roles: std::collections::BTreeMap<Role, (Vec<Json>, corral_state::Resources)> =
        std::collections::BTreeMap::new();
    for role in state.role_configs().keys() {
        roles.entry(role.clone()).or_default();
    }
    for framework in state.frameworks().values() {
        for role in &framework.info.roles {
            roles.entry(role.clone()).or_default().0.push(json!(IdJson::new(&framework.id)));
        }
    }
    for task in state.tasks().filter(|task| !task.state.is_terminal()) {
        roles.entry(task.role.clone()).or_default().1.add(task.resources());
    }
    let list: Vec<Json> = roles
        .into_iter()
        .map(|(role, (frameworks, allocated))| {
            let config = state.role_config(&role);
            json!({
                "name": role.to_string(),
                "weight": config.weight.as_f64(),
                "frameworks": frameworks,
                "resources": resources_to_json(&allocated, None),
                "allocated": resources_to_json(&allocated, Some(&role)),
                "quota": {
                    "role": role.to_string(),
                    "guarantee": quantities_json(&config.guarantees),
                    "limit": quantities_json(&config.limits),
                },
            })
        })
        .collect();
    json!({"roles": list})
}

fn get_weights(state: &ClusterState) -> Json {
    let infos: Vec<Json> = state
        .role_configs()
        .iter()
        .map(|(role, config)| json!({"role": role.to_string(), "weight": config.weight.as_f64()}))
        .collect();
    json!({"weight_infos": infos})
}

fn get_quota(state: &ClusterState) -> Json {
    let configs: Vec<Json> = state
        .role_configs()
        .iter()
        .filter(|(_, config)| !config.guarantees.is_empty() || !config.limits.is_empty())
        .map(|(role, config)| {
            json!({"role": role.to_string(), "guarantees": quantities_json(&config.guarantees), "limits": quantities_json(&config.limits)})
        })
        .collect();
    json!({"status": {"configs": configs}})
}

fn machine_json(machine: &MachineId) -> Json {
    serde_json::to_value(MachineIdJson {
        hostname: machine.hostname.clone(),
        ip: machine.ip.clone(),
    })
    .expect("a machine id's JSON has string keys only")
}

fn get_maintenance_status(state: &ClusterState) -> Json {
    let draining: Vec<Json> = state
        .machine_modes()
        .iter()
        .filter(|(_, mode)| **mode == MachineMode::Draining)
        .map(|(machine, _)| json!({"id": machine_json(machine), "statuses": []}))
        .collect();
    let down: Vec<Json> = state
        .machine_modes()
        .iter()
        .filter(|(_, mode)| **mode == MachineMode::Down)
        .map(|(machine, _)| machine_json(machine))
        .collect();
    json!({"status": {"draining_machines": draining, "down_machines": down}})
}

fn get_maintenance_schedule(state: &ClusterState) -> Json {
    let windows: Vec<Json> = state
        .maintenance_windows()
        .iter()
        .map(|window| {
            let mut unavailability = json!({"start": nanos(window.unavailability.start)});
            if let Some(duration) = window.unavailability.duration {
                unavailability["duration"] = json!({"nanoseconds": duration.as_nanos() as u64});
            }
            json!({"machine_ids": window.machine_ids.iter().map(machine_json).collect::<Vec<_>>(), "unavailability": unavailability})
        })
        .collect();
    json!({"schedule": {"windows": windows}})
}

/// The `GET_STATE` body, also the first event of an operator SUBSCRIBE.
pub fn get_state(state: &ClusterState) -> Json {
    json!({
        "get_tasks": get_tasks(state),
        "get_executors": get_executors(state),
        "get_frameworks": get_frameworks(state),
        "get_agents": get_agents(state),
    })
}

/// Renders a read-only call's response from the state. Health, version, flags and metrics
/// come from the master process, not the state, and are filled in by the caller.
pub fn render_query(query: OperatorQuery, state: &ClusterState) -> Json {
    let (kind, key, body) = match query {
        OperatorQuery::State => ("GET_STATE", "get_state", get_state(state)),
        OperatorQuery::Agents => ("GET_AGENTS", "get_agents", get_agents(state)),
        OperatorQuery::Frameworks => ("GET_FRAMEWORKS", "get_frameworks", get_frameworks(state)),
        OperatorQuery::Executors => ("GET_EXECUTORS", "get_executors", get_executors(state)),
        OperatorQuery::Tasks => ("GET_TASKS", "get_tasks", get_tasks(state)),
        OperatorQuery::Roles => ("GET_ROLES", "get_roles", get_roles(state)),
        OperatorQuery::Weights => ("GET_WEIGHTS", "get_weights", get_weights(state)),
        OperatorQuery::Quota => ("GET_QUOTA", "get_quota", get_quota(state)),
        OperatorQuery::MaintenanceStatus => {
            ("GET_MAINTENANCE_STATUS", "get_maintenance_status", get_maintenance_status(state))
        }
        OperatorQuery::MaintenanceSchedule => (
            "GET_MAINTENANCE_SCHEDULE",
            "get_maintenance_schedule",
            get_maintenance_schedule(state),
        ),
        OperatorQuery::Health => ("GET_HEALTH", "get_health", json!({"healthy": true})),
        OperatorQuery::Version => ("GET_VERSION", "get_version", version_json()),
        OperatorQuery::Flags => ("GET_FLAGS", "get_flags", json!({"flags": []})),
        OperatorQuery::Metrics => ("GET_METRICS", "get_metrics", json!({"metrics": []})),
    };
    json!({"type": kind, key: body})
}

/// Writes a read-only call's response as JSON into `out`. GET_STATE and GET_TASKS, which
/// grow with the number of tasks, are written straight from the state, one record at a time,
/// the tasks on two threads.
pub fn write_query(
    query: OperatorQuery,
    state: &ClusterState,
    out: impl Write,
) -> serde_json::Result<()> {
    write_query_in_blocks(query, state, crate::parallel::BLOCK, out)
}

/// `write_query` with the tasks handed between threads in blocks of `block`: a block at
/// least as long as the task list renders it on one thread (benchmarks compare the two).
pub fn write_query_in_blocks(
    query: OperatorQuery,
    state: &ClusterState,
    block: usize,
    mut out: impl Write,
) -> serde_json::Result<()> {
    let out = &mut out;
    match query {
        OperatorQuery::Tasks => {
            write_raw(out, br#"{"type":"GET_TASKS","get_tasks":"#)?;
            write_tasks(state, block, out)?;
            write_raw(out, b"}")
        }
        // The keys in the order `render_query`'s callers have always had them.
        OperatorQuery::State => {
            write_raw(out, br#"{"type":"GET_STATE","get_state":{"get_tasks":"#)?;
            write_tasks(state, block, out)?;
            write_raw(out, br#","get_executors":"#)?;
            serde_json::to_writer(&mut *out, &ExecutorsRef(state))?;
            write_raw(out, br#","get_frameworks":"#)?;
            serde_json::to_writer(&mut *out, &FrameworksRef(state))?;
            write_raw(out, br#","get_agents":"#)?;
            serde_json::to_writer(&mut *out, &AgentsRef(state))?;
            write_raw(out, b"}}")
        }
        _ => serde_json::to_writer(out, &render_query(query, state)),
    }
}

/// GET_AGENTS, one agent's JSON at a time.
struct AgentsRef<'a>(&'a ClusterState);

impl serde::Serialize for AgentsRef<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let agents = self.0.agents().values().filter(|agent| !agent.is_gone()).map(AgentRef);
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("agents", &Sequence::new(agents))?;
        map.serialize_entry("recovered_agents", &[(); 0])?;
        map.end()
    }
}

/// The Mesos release whose APIs Corral speaks, and Corral's own version.
pub const MESOS_API_VERSION: &str = "1.11.0";

pub fn version_json() -> Json {
    json!({"version_info": {"version": MESOS_API_VERSION, "corral_version": env!("CARGO_PKG_VERSION")}})
}

/// The operator stream's event for a log event, if operators see one.
pub fn operator_event(event: &corral_state::Event) -> Option<Json> {
    use corral_state::Event as E;
    Some(match event {
        E::TaskAdded { task } => {
            json!({"type": "TASK_ADDED", "task_added": {"task": task_json(task)}})
        }
        E::TaskUpdated { framework_id, status, .. } => json!({
            "type": "TASK_UPDATED",
            "task_updated": {
                "framework_id": IdJson::new(framework_id),
                "status": task_status_to_json(status),
                "state": status.state.as_mesos_str(),
            }
        }),
        E::AgentAdded { agent_id, info, total }
        | E::AgentReregistered { agent_id, info, total, .. } => json!({
            "type": "AGENT_ADDED",
            "agent_added": {"agent": {
                "agent_info": {"hostname": info.hostname, "id": IdJson::new(agent_id), "resources": resources_to_json(total, None)},
                "active": true,
                "total_resources": resources_to_json(total, None),
            }}
        }),
        E::AgentRemoved { agent_id, .. } => {
            json!({"type": "AGENT_REMOVED", "agent_removed": {"agent_id": IdJson::new(agent_id)}})
        }
        E::FrameworkAdded { framework_id, info } => json!({
            "type": "FRAMEWORK_ADDED",
            "framework_added": {"framework": {"framework_info": framework_info_to_json(info, framework_id), "active": true, "connected": true}}
        }),
        E::FrameworkResubscribed { framework_id, info } => json!({
            "type": "FRAMEWORK_UPDATED",
            "framework_updated": {"framework": {"framework_info": framework_info_to_json(info, framework_id), "active": true, "connected": true}}
        }),
        E::FrameworkDisconnected { framework_id } => json!({
            "type": "FRAMEWORK_UPDATED",
            "framework_updated": {"framework": {"framework_info": {"id": IdJson::new(framework_id)}, "active": false, "connected": false}}
        }),
        E::FrameworkRemoved { framework_id, .. } => json!({
            "type": "FRAMEWORK_REMOVED",
            "framework_removed": {"framework_info": {"id": IdJson::new(framework_id)}}
        }),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use corral_state::model::TaskState;
    use corral_testkit::state::{StateBuilder, FRAMEWORK};

    use super::*;

    // GET_STATE and GET_TASKS as one serde pass writes them: the reference for the bytes.

    struct TypedAnswer<T> {
        kind: &'static str,
        key: &'static str,
        body: T,
    }

    impl<T: serde::Serialize> serde::Serialize for TypedAnswer<T> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut map = serializer.serialize_map(Some(2))?;
            map.serialize_entry("type", self.kind)?;
            map.serialize_entry(self.key, &self.body)?;
            map.end()
        }
    }

    struct StateRef<'a> {
        tasks: TasksRef<'a>,
        executors: ExecutorsRef<'a>,
        frameworks: FrameworksRef<'a>,
        agents: AgentsRef<'a>,
    }

    impl serde::Serialize for StateRef<'_> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut map = serializer.serialize_map(Some(4))?;
            map.serialize_entry("get_tasks", &self.tasks)?;
            map.serialize_entry("get_executors", &self.executors)?;
            map.serialize_entry("get_frameworks", &self.frameworks)?;
            map.serialize_entry("get_agents", &self.agents)?;
            map.end()
        }
    }

    /// One framework with running tasks, one finished: more tasks than the small blocks hold.
    fn cluster() -> StateBuilder {
        let mut cluster = StateBuilder::default();
        cluster.agent("h1", "", "cpus:64;mem:65536").framework("web", "*");
        for n in 0..11 {
            let task_id = format!("t{n}");
            cluster.launch(&task_id, "cpus:1;mem:128").running(&task_id, &format!("dT{n}="));
        }
        cluster.report(FRAMEWORK.into(), &"t4".into(), TaskState::Finished, None);
        cluster
    }

    #[test]
    fn tasks_written_on_two_threads_are_the_bytes_of_one_serde_pass() {
        let cluster = cluster();
        let state = &cluster.state;
        let tasks = TypedAnswer { kind: "GET_TASKS", key: "get_tasks", body: TasksRef(state) };
        let whole = StateRef {
            tasks: TasksRef(state),
            executors: ExecutorsRef(state),
            frameworks: FrameworksRef(state),
            agents: AgentsRef(state),
        };
        let whole = TypedAnswer { kind: "GET_STATE", key: "get_state", body: whole };
        for (query, expected) in [
            (OperatorQuery::Tasks, serde_json::to_string(&tasks).expect("renders")),
            (OperatorQuery::State, serde_json::to_string(&whole).expect("renders")),
        ] {
            for block in [1, 2, 3, 1024] {
                let mut written = Vec::new();
                write_query_in_blocks(query, state, block, &mut written).expect("renders");
                let written = String::from_utf8(written).expect("UTF-8");
                assert_eq!(written, expected, "{query:?} in blocks of {block}");
            }
        }
    }
}
