//! The v0 master reads that are smaller than `/master/state`, in Mesos 1.11's shapes:
//! `/master/slaves`, `/master/frameworks`, `/master/roles`, `/master/flags`,
//! `/master/state-summary`, `/master/maintenance/schedule` and `/master/maintenance/status`.

use std::collections::BTreeMap;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{json, Value as Json};

use corral_state::model::{MachineId, MachineMode, Task, TaskState};
use corral_state::{AgentId, ClusterState, FrameworkId, Quantities, Resources, Role};

use super::{AgentV0, FrameworkV0, ResourceMap, Sequence};

/// `{"slaves": [...], "recovered_slaves": []}`; with `slave_id`, that agent alone (an empty
/// list when it is unknown, as Mesos answers).
pub fn slaves(state: &ClusterState, slave_id: Option<&AgentId>) -> Json {
    let agents = state
        .agents()
        .values()
        .filter(|agent| !agent.is_gone())
        .filter(|agent| slave_id.is_none_or(|id| *id == agent.id))
        .map(AgentV0);
    json!({
        "slaves": serde_json::to_value(Sequence::new(agents)).expect("agents render as JSON"),
        "recovered_slaves": [],
    })
}

struct Frameworks<'a> {
    state: &'a ClusterState,
    framework_id: Option<&'a FrameworkId>,
}

impl Serialize for Frameworks<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let state = self.state;
        let wanted = |id: &FrameworkId| self.framework_id.is_none_or(|wanted| wanted == id);
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry(
            "frameworks",
            &Sequence::new(
                state
                    .frameworks()
                    .values()
                    .filter(|f| wanted(&f.id))
                    .map(|framework| FrameworkV0 { framework, state }),
            ),
        )?;
        map.serialize_entry(
            "completed_frameworks",
            &Sequence::new(
                state
                    .completed_frameworks()
                    .values()
                    .filter(|c| wanted(&c.framework.id))
                    .map(|c| FrameworkV0 { framework: &c.framework, state }),
            ),
        )?;
        map.serialize_entry("unregistered_frameworks", &[(); 0])?;
        map.end()
    }
}

/// `{"frameworks", "completed_frameworks", "unregistered_frameworks"}`, each framework with
/// its tasks as in `/master/state`; with `framework_id`, that framework alone.
pub fn write_frameworks(
    state: &ClusterState,
    framework_id: Option<&FrameworkId>,
    out: impl std::io::Write,
) -> serde_json::Result<()> {
    serde_json::to_writer(out, &Frameworks { state, framework_id })
}

/// A flat v0 map of quantities: `{"cpus": 1.5, "mem": 256.0}`.
fn quantities_v0(quantities: &Quantities) -> Json {
    let map: serde_json::Map<String, Json> =
        quantities.iter().map(|(name, amount)| (name.to_owned(), json!(amount.as_f64()))).collect();
    Json::Object(map)
}

fn resources_v0(resources: &Resources) -> Json {
    serde_json::to_value(ResourceMap(resources)).expect("resources render as JSON")
}

#[derive(Default)]
struct RoleSums {
    frameworks: Vec<String>,
    allocated: Resources,
    offered: Resources,
    reserved: Resources,
}

/// `{"roles": [{name, weight, frameworks, resources, allocated, offered, reserved, quota}]}`:
/// every role that has a weight or quota, a framework, or a task.
pub fn roles(state: &ClusterState) -> Json {
    let mut roles: BTreeMap<Role, RoleSums> = BTreeMap::new();
    for role in state.role_configs().keys() {
        roles.entry(role.clone()).or_default();
    }
    for framework in state.frameworks().values() {
        for role in &framework.info.roles {
            roles.entry(role.clone()).or_default().frameworks.push(framework.id.to_string());
        }
    }
    for task in state.tasks().filter(|task| !task.state.is_terminal()) {
        roles.entry(task.role.clone()).or_default().allocated.add(task.resources());
    }
    for offer in state.offers().values() {
        roles.entry(offer.role.clone()).or_default().offered.add(&offer.resources);
    }
    for agent in state.agents().values().filter(|agent| !agent.is_gone()) {
        for resource in agent.total.iter() {
            if let Some(role) = resource.reservation.role() {
                let single = Resources::from_list(vec![resource.clone()])
                    .expect("one resource of a normalized bag is a valid bag");
                roles.entry(role.clone()).or_default().reserved.add(&single);
            }
        }
    }
    let list: Vec<Json> = roles
        .into_iter()
        .map(|(role, sums)| {
            let config = state.role_config(&role);
            json!({
                "name": role.to_string(),
                "weight": config.weight.as_f64(),
                "frameworks": sums.frameworks,
                "resources": resources_v0(&sums.allocated),
                "allocated": resources_v0(&sums.allocated),
                "offered": resources_v0(&sums.offered),
                "reserved": resources_v0(&sums.reserved),
                "quota": {
                    "role": role.to_string(),
                    "guarantee": quantities_v0(&config.guarantees),
                    "limit": quantities_v0(&config.limits),
                    "consumed": resources_v0(&sums.allocated),
                },
            })
        })
        .collect();
    json!({"roles": list})
}

/// `{"flags": {name: value}}`: Mesos renders every flag's value as a string.
pub fn flags<'a>(flags: impl IntoIterator<Item = (&'a str, String)>) -> Json {
    let map: serde_json::Map<String, Json> =
        flags.into_iter().map(|(name, value)| (name.to_owned(), Json::String(value))).collect();
    json!({"flags": map})
}

/// The task states `/master/state-summary` counts, under their Mesos names.
const SUMMARY_STATES: [TaskState; 10] = [
    TaskState::Staging,
    TaskState::Starting,
    TaskState::Running,
    TaskState::Killing,
    TaskState::Finished,
    TaskState::Killed,
    TaskState::Failed,
    TaskState::Lost,
    TaskState::Error,
    TaskState::Unreachable,
];

#[derive(Default)]
struct Counts {
    by_state: [u64; SUMMARY_STATES.len()],
}

impl Counts {
    fn count(&mut self, task: &Task) {
        if let Some(index) = SUMMARY_STATES.iter().position(|state| *state == task.state) {
            self.by_state[index] += 1;
        }
    }

    fn write_into(&self, json: &mut Json) {
        for (state, count) in SUMMARY_STATES.iter().zip(self.by_state) {
            json[state.as_mesos_str()] = json!(count);
        }
    }
}

/// `/master/state-summary`: agents and frameworks without their tasks, with task counts per
/// state and which frameworks run on which agents. One pass over the tasks.
pub fn state_summary(state: &ClusterState, hostname: &str, cluster: &str) -> Json {
    let mut agent_counts: BTreeMap<&AgentId, (Counts, Vec<&FrameworkId>)> = BTreeMap::new();
    let mut framework_counts: BTreeMap<&FrameworkId, (Counts, Vec<&AgentId>)> = BTreeMap::new();
    let all_frameworks = state
        .frameworks()
        .values()
        .chain(state.completed_frameworks().values().map(|c| &c.framework));
    for framework in all_frameworks {
        for task in framework.tasks.values().chain(framework.completed_tasks.iter()) {
            let (counts, frameworks) = agent_counts.entry(task.agent_id()).or_default();
            counts.count(task);
            if !frameworks.contains(&&framework.id) {
                frameworks.push(&framework.id);
            }
            let (counts, agents) = framework_counts.entry(&framework.id).or_default();
            counts.count(task);
            if !agents.contains(&task.agent_id()) {
                agents.push(task.agent_id());
            }
        }
    }
    let slaves: Vec<Json> = state
        .agents()
        .values()
        .filter(|agent| !agent.is_gone())
        .map(|agent| {
            let mut json = serde_json::to_value(AgentV0(agent)).expect("an agent renders as JSON");
            // An agent without tasks has none in any state.
            let (counts, frameworks) = agent_counts.remove(&agent.id).unwrap_or_default();
            counts.write_into(&mut json);
            json["framework_ids"] =
                json!(frameworks.iter().map(|id| id.as_str()).collect::<Vec<_>>());
            json
        })
        .collect();
    let frameworks: Vec<Json> = state
        .frameworks()
        .values()
        .map(|framework| {
            let full = serde_json::to_value(FrameworkV0 { framework, state })
                .expect("a framework renders as JSON");
            let mut json = json!({});
            for key in [
                "id",
                "name",
                "used_resources",
                "offered_resources",
                "capabilities",
                "hostname",
                "webui_url",
                "active",
                "connected",
                "recovered",
            ] {
                json[key] = full[key].clone();
            }
            json["pid"] = Json::Null;
            let (counts, agents) = framework_counts.remove(&framework.id).unwrap_or_default();
            counts.write_into(&mut json);
            json["slave_ids"] = json!(agents.iter().map(|id| id.as_str()).collect::<Vec<_>>());
            json
        })
        .collect();
    json!({"hostname": hostname, "cluster": cluster, "slaves": slaves, "frameworks": frameworks})
}

fn machine_v0(machine: &MachineId) -> Json {
    let mut json = json!({});
    if let Some(hostname) = &machine.hostname {
        json["hostname"] = json!(hostname);
    }
    if let Some(ip) = &machine.ip {
        json["ip"] = json!(ip);
    }
    json
}

/// `/master/maintenance/schedule`: Mesos's `maintenance::Schedule` as JSON.
pub fn maintenance_schedule(state: &ClusterState) -> Json {
    let windows: Vec<Json> = state
        .maintenance_windows()
        .iter()
        .map(|window| {
            let mut unavailability =
                json!({"start": {"nanoseconds": window.unavailability.start.nanos()}});
            if let Some(duration) = window.unavailability.duration {
                let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
                unavailability["duration"] = json!({"nanoseconds": nanos});
            }
            json!({
                "machine_ids": window.machine_ids.iter().map(machine_v0).collect::<Vec<_>>(),
                "unavailability": unavailability,
            })
        })
        .collect();
    json!({"windows": windows})
}

/// `/master/maintenance/status`: machines draining (with no inverse offers outstanding, as
/// Corral sends none) and machines down.
pub fn maintenance_status(state: &ClusterState) -> Json {
    let modes = state.machine_modes();
    let draining: Vec<Json> = modes
        .iter()
        .filter(|(_, mode)| **mode == MachineMode::Draining)
        .map(|(machine, _)| json!({"id": machine_v0(machine), "statuses": []}))
        .collect();
    let down: Vec<Json> = modes
        .iter()
        .filter(|(_, mode)| **mode == MachineMode::Down)
        .map(|(machine, _)| machine_v0(machine))
        .collect();
    json!({"draining_machines": draining, "down_machines": down})
}
