//! Mesos's v0 master JSON that dashboards, scripts and command-line tools read:
//! `/master/state` here, the smaller reads (`/master/slaves`, `/master/frameworks`,
//! `/master/roles`, `/master/state-summary`, maintenance) in `reads.rs`, `/master/tasks`
//! with its paging in `tasks.rs`. Resources are flat maps (`{"cpus": 4.0, "ports":
//! "[31000-32000]"}`), ids are plain strings, times are seconds.
//!
//! Written straight from borrowed state into a writer: at 100,000 tasks, building a
//! `serde_json::Value` tree first costs more than the whole answer is allowed to take, and a
//! writer lets the master send the first bytes while the rest is still being written.

pub mod reads;
pub mod tasks;

use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::Serialize;
use serde_json::Value as Json;

use corral_state::model::{
    Agent, AgentMode, Framework, Label, Liveness, Task, TaskState, TaskStatus,
};
use corral_state::{ClusterState, Reservation, Resources, Value};

use super::convert::capability_to_json;

/// Mesos v0 resource maps: scalars as numbers, ranges and sets as their text form.
pub struct ResourceMap<'a>(pub &'a Resources);

/// The names every v0 resource map starts with, present or not.
const FIRST_NAMES: [&str; 4] = ["cpus", "mem", "disk", "gpus"];

impl Serialize for ResourceMap<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let resources = self.0;
        // One pass for the four totals: this map is written for every task and agent.
        let mut first = [corral_state::Scalar::ZERO; 4];
        for resource in resources.iter() {
            if let Value::Scalar(amount) = resource.value {
                if let Some(index) = FIRST_NAMES.iter().position(|name| resource.name == *name) {
                    first[index] += amount;
                }
            }
        }
        let mut map = serializer.serialize_map(None)?;
        for (name, amount) in FIRST_NAMES.iter().zip(first) {
            map.serialize_entry(name, &amount.as_f64())?;
        }
        // A bag is sorted by name, so the entries of one name (one per reservation) are
        // adjacent; each name is written once, with all its reservations together.
        let mut previous: Option<&str> = None;
        for resource in resources.iter() {
            let name = resource.name.as_str();
            if FIRST_NAMES.contains(&name) || previous == Some(name) {
                continue;
            }
            previous = Some(name);
            match &resource.value {
                Value::Scalar(_) => map.serialize_entry(name, &resources.scalar(name).as_f64())?,
                Value::Ranges(_) => {
                    map.serialize_entry(name, &resources.ranges(name).to_string())?
                }
                Value::Set(items) => {
                    let text = format!(
                        "{{{}}}",
                        items.iter().map(String::as_str).collect::<Vec<_>>().join(",")
                    );
                    map.serialize_entry(name, &text)?;
                }
            }
        }
        map.end()
    }
}

pub(crate) struct ReservedByRole<'a>(pub(crate) &'a Resources);

impl Serialize for ReservedByRole<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut roles: std::collections::BTreeMap<&str, Resources> =
            std::collections::BTreeMap::new();
        for resource in self.0.iter() {
            if let Some(role) = resource.reservation.role() {
                let single = Resources::from_list(vec![resource.clone()])
                    .expect("one resource of a valid set is a valid set");
                roles.entry(role.as_str()).or_default().add(&single);
            }
        }
        let mut map = serializer.serialize_map(Some(roles.len()))?;
        for (role, resources) in &roles {
            map.serialize_entry(role, &ResourceMap(resources))?;
        }
        map.end()
    }
}

/// A task's statuses as v0 shows them: state and time only.
pub(crate) struct StatusesV0<'a>(&'a [TaskStatus]);

impl Serialize for StatusesV0<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut sequence = serializer.serialize_seq(Some(self.0.len()))?;
        for status in self.0 {
            sequence.serialize_element(&StatusV0 {
                state: status.state.as_mesos_str(),
                timestamp: status.timestamp.as_secs_f64(),
            })?;
        }
        sequence.end()
    }
}

#[derive(Serialize)]
struct StatusV0 {
    state: &'static str,
    timestamp: f64,
}

pub(crate) struct LabelsV0<'a>(&'a [Label]);

impl Serialize for LabelsV0<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut sequence = serializer.serialize_seq(Some(self.0.len()))?;
        for label in self.0 {
            sequence
                .serialize_element(&LabelV0 { key: &label.key, value: label.value.as_deref() })?;
        }
        sequence.end()
    }
}

#[derive(Serialize)]
struct LabelV0<'a> {
    key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a str>,
}

#[derive(Serialize)]
pub(crate) struct TaskV0<'a> {
    id: &'a str,
    name: &'a str,
    framework_id: &'a str,
    executor_id: &'a str,
    slave_id: &'a str,
    state: &'static str,
    resources: ResourceMap<'a>,
    role: &'a str,
    statuses: StatusesV0<'a>,
    labels: LabelsV0<'a>,
    /// Mesos-DNS reads named ports from here.
    #[serde(skip_serializing_if = "Option::is_none")]
    discovery: Option<crate::json::DiscoveryInfoJson>,
}

pub(crate) fn task_v0(task: &Task) -> TaskV0<'_> {
    TaskV0 {
        id: task.id().as_str(),
        name: &task.info.name,
        framework_id: task.framework_id.as_str(),
        executor_id: task
            .info
            .executor
            .as_ref()
            .map(|e| e.executor_id.as_str())
            .unwrap_or_default(),
        slave_id: task.agent_id().as_str(),
        state: task.state.as_mesos_str(),
        resources: ResourceMap(task.resources()),
        role: task.role.as_str(),
        statuses: StatusesV0(&task.statuses),
        labels: LabelsV0(&task.info.labels),
        discovery: task.info.discovery.as_ref().map(crate::convert::discovery_to_json),
    }
}

/// A sequence serialized from an iterator, without collecting it first.
pub(crate) struct Sequence<I>(std::cell::Cell<Option<I>>);

impl<I> Sequence<I> {
    pub(crate) fn new(items: I) -> Sequence<I> {
        Sequence(std::cell::Cell::new(Some(items)))
    }
}

impl<I, T> Serialize for Sequence<I>
where
    I: Iterator<Item = T>,
    T: Serialize,
{
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut sequence = serializer.serialize_seq(None)?;
        if let Some(items) = self.0.take() {
            for item in items {
                sequence.serialize_element(&item)?;
            }
        }
        sequence.end()
    }
}

#[derive(Serialize)]
struct OfferV0<'a> {
    id: &'a str,
    framework_id: &'a str,
    slave_id: &'a str,
    resources: ResourceMap<'a>,
}

pub(crate) struct FrameworkV0<'a> {
    pub(crate) framework: &'a Framework,
    pub(crate) state: &'a ClusterState,
}

impl Serialize for FrameworkV0<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let framework = self.framework;
        let mut used = Resources::new();
        for task in framework.tasks.values().filter(|task| !task.state.is_terminal()) {
            used.add(task.resources());
        }
        let offers: Vec<_> =
            framework.offers.iter().filter_map(|id| self.state.offer(id)).collect();
        let mut offered = Resources::new();
        for offer in &offers {
            offered.add(&offer.resources);
        }
        let roles: Vec<&str> = framework.info.roles.iter().map(|r| r.as_str()).collect();
        let capabilities: Vec<&str> =
            framework.info.capabilities.iter().map(|c| capability_to_json(*c)).collect();
        let total = used.plus(&offered);
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("id", framework.id.as_str())?;
        map.serialize_entry("name", &framework.info.name)?;
        map.serialize_entry("user", &framework.info.user)?;
        map.serialize_entry("hostname", framework.info.hostname.as_deref().unwrap_or_default())?;
        map.serialize_entry("webui_url", framework.info.webui_url.as_deref().unwrap_or_default())?;
        map.serialize_entry("principal", &framework.info.principal)?;
        map.serialize_entry("active", &framework.is_connected())?;
        map.serialize_entry("connected", &framework.is_connected())?;
        map.serialize_entry("recovered", &false)?;
        map.serialize_entry("failover_timeout", &framework.info.failover_timeout.as_secs_f64())?;
        map.serialize_entry("checkpoint", &framework.info.checkpoint)?;
        map.serialize_entry("role", roles.first().copied().unwrap_or("*"))?;
        map.serialize_entry("roles", &roles)?;
        map.serialize_entry("capabilities", &capabilities)?;
        map.serialize_entry("registered_time", &framework.registered_at.as_secs_f64())?;
        map.serialize_entry(
            "reregistered_time",
            &framework.reregistered_at.map(|t| t.as_secs_f64()),
        )?;
        map.serialize_entry("resources", &ResourceMap(&total))?;
        map.serialize_entry("used_resources", &ResourceMap(&used))?;
        map.serialize_entry("offered_resources", &ResourceMap(&offered))?;
        map.serialize_entry(
            "tasks",
            &Sequence::new(
                framework
                    .tasks
                    .values()
                    .filter(|t| t.state != TaskState::Unreachable)
                    .map(|t| task_v0(t)),
            ),
        )?;
        // The tally counts tracked tasks by state (never fewer than this copy holds): with
        // none unreachable, the framework's tasks are not walked a second time.
        let any_unreachable = self.state.tally().tasks(TaskState::Unreachable) > 0;
        map.serialize_entry(
            "unreachable_tasks",
            &Sequence::new(
                any_unreachable
                    .then(|| framework.tasks.values())
                    .into_iter()
                    .flatten()
                    .filter(|t| t.state == TaskState::Unreachable)
                    .map(|t| task_v0(t)),
            ),
        )?;
        map.serialize_entry(
            "completed_tasks",
            &Sequence::new(framework.completed_tasks.iter().map(|t| task_v0(t))),
        )?;
        map.serialize_entry(
            "offers",
            &Sequence::new(offers.iter().map(|offer| OfferV0 {
                id: offer.id.as_str(),
                framework_id: offer.framework_id.as_str(),
                slave_id: offer.agent_id.as_str(),
                resources: ResourceMap(&offer.resources),
            })),
        )?;
        map.serialize_entry("executors", &[(); 0])?;
        map.end()
    }
}

pub(crate) struct AgentV0<'a>(pub(crate) &'a Agent);

impl Serialize for AgentV0<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let agent = self.0;
        let (_, port) = agent.info.address.rsplit_once(':').unwrap_or(("", "5051"));
        let unreserved = agent.total.filter(|r| r.reservation == Reservation::Unreserved);
        let attributes: std::collections::BTreeMap<&str, &str> =
            agent.info.attributes.0.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("id", agent.id.as_str())?;
        map.serialize_entry("pid", &format!("slave(1)@{}", agent.info.address))?;
        map.serialize_entry("hostname", &agent.info.hostname)?;
        map.serialize_entry("port", &port.parse::<u32>().unwrap_or(5051))?;
        map.serialize_entry("registered_time", &agent.registered_at.as_secs_f64())?;
        map.serialize_entry("reregistered_time", &agent.reregistered_at.map(|t| t.as_secs_f64()))?;
        map.serialize_entry("resources", &ResourceMap(&agent.total))?;
        map.serialize_entry("used_resources", &ResourceMap(&agent.allocated))?;
        map.serialize_entry("offered_resources", &ResourceMap(&agent.offered))?;
        map.serialize_entry("reserved_resources", &ReservedByRole(&agent.total))?;
        map.serialize_entry("unreserved_resources", &ResourceMap(&unreserved))?;
        map.serialize_entry("attributes", &attributes)?;
        map.serialize_entry("active", &(agent.liveness == Liveness::Reachable))?;
        map.serialize_entry("deactivated", &(agent.mode != AgentMode::Active))?;
        map.serialize_entry("version", env!("CARGO_PKG_VERSION"))?;
        map.end()
    }
}

struct MasterState<'a> {
    state: &'a ClusterState,
    master: &'a serde_json::Map<String, Json>,
}

impl Serialize for MasterState<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let state = self.state;
        let count =
            |matches: fn(&Agent) -> bool| state.agents().values().filter(|a| matches(a)).count();
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("version", super::operator::MESOS_API_VERSION)?;
        for (key, value) in self.master {
            map.serialize_entry(key, value)?;
        }
        map.serialize_entry(
            "activated_slaves",
            &count(|a| a.liveness == Liveness::Reachable && a.mode == AgentMode::Active),
        )?;
        map.serialize_entry(
            "deactivated_slaves",
            &count(|a| a.liveness == Liveness::Reachable && a.mode != AgentMode::Active),
        )?;
        map.serialize_entry(
            "unreachable_slaves",
            &count(|a| matches!(a.liveness, Liveness::Unreachable { .. })),
        )?;
        map.serialize_entry(
            "slaves",
            &Sequence::new(state.agents().values().filter(|a| !a.is_gone()).map(AgentV0)),
        )?;
        map.serialize_entry(
            "frameworks",
            &Sequence::new(
                state.frameworks().values().map(|framework| FrameworkV0 { framework, state }),
            ),
        )?;
        map.serialize_entry(
            "completed_frameworks",
            &Sequence::new(
                state
                    .completed_frameworks()
                    .values()
                    .map(|c| FrameworkV0 { framework: &c.framework, state }),
            ),
        )?;
        map.serialize_entry("orphan_tasks", &[(); 0])?;
        map.serialize_entry("unregistered_frameworks", &[(); 0])?;
        map.end()
    }
}

/// The whole v0 state, written as JSON into `out`. `master` describes the answering master:
/// id, pid, hostname, leader, start time.
pub fn write_master_state(
    state: &ClusterState,
    master: &serde_json::Map<String, Json>,
    out: impl std::io::Write,
) -> serde_json::Result<()> {
    serde_json::to_writer(out, &MasterState { state, master })
}

/// The v0 state as a `Value`, for tests and callers that inspect it.
pub fn master_state(state: &ClusterState, master: &serde_json::Map<String, Json>) -> Json {
    serde_json::to_value(MasterState { state, master })
        .expect("the v0 state has string keys and finite numbers")
}
