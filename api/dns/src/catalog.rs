//! The service catalog: every Marathon app with the instances a client or a load balancer may
//! send traffic to, a pure function of the state, and the log index at which each service
//! last changed, so a long poll wakes exactly when what it watches changed.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use corral_state::model::{Task, TaskState};
use corral_state::{AgentId, AppId, ClusterState, TaskId, Timestamp};

/// Every app, by id.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Catalog {
    pub services: BTreeMap<AppId, Service>,
}

/// One app and where its instances answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Service {
    pub id: AppId,
    /// Changes with every change of the app, scaling included (Marathon's `version`).
    pub version: Timestamp,
    /// Changes when the configuration does; instances of an older one are being replaced.
    pub config_version: Timestamp,
    /// The app's service ports, in port order: where a load balancer listens for it.
    pub service_ports: Vec<u16>,
    /// The app's labels with string values (marathon-lb's `HAPROXY_*` among them).
    pub labels: BTreeMap<String, String>,
    pub health_checked: bool,
    /// Every instance not ended yet, by task id.
    pub instances: Vec<Endpoint>,
}

/// One instance of a service.
#[derive(Clone, Debug, PartialEq)]
pub struct Endpoint {
    pub task_id: TaskId,
    pub agent_id: AgentId,
    /// The agent's hostname.
    pub host: Option<String>,
    /// The agent's address, when it has a parseable one.
    pub ip: Option<IpAddr>,
    /// The host ports, in the task's port order.
    pub ports: Vec<EndpointPort>,
    pub state: TaskState,
    pub healthy: Option<bool>,
    /// Traffic may go here: running, not being killed, healthy when checked.
    pub ready: bool,
    /// A kill was asked: send no new connections, let the open ones finish.
    pub draining: bool,
    /// How long the instance gets between SIGTERM and SIGKILL when it is (or will be)
    /// killed: Marathon's `taskKillGracePeriodSeconds`, or the kill's own grace period.
    /// `None` when neither sets one. A load balancer lets a draining instance's open
    /// connections go on this long.
    pub kill_grace: Option<Duration>,
    /// The app configuration the instance runs.
    pub config_version: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointPort {
    pub number: u16,
    pub name: Option<String>,
    /// `tcp` or `udp`.
    pub protocol: String,
}

impl Catalog {
    pub fn build(state: &ClusterState) -> Catalog {
        let services = state.services();
        let framework_id = services.framework_id.as_ref();
        let catalog = services.apps.values().map(|app| {
            let instances = services
                .instances_of(&app.id)
                .filter_map(|(task_id, instance)| {
                    let task = state.task(framework_id?, task_id)?;
                    Some(endpoint(state, task, instance.config_version, app.spec.health_checked))
                })
                .collect();
            let service = Service {
                id: app.id.clone(),
                version: app.version,
                config_version: app.config_version,
                service_ports: app.service_ports.clone(),
                labels: labels(&app.definition),
                health_checked: app.spec.health_checked,
                instances,
            };
            (app.id.clone(), service)
        });
        Catalog { services: catalog.collect() }
    }
}

fn endpoint(
    state: &ClusterState,
    task: &Task,
    config_version: Timestamp,
    health_checked: bool,
) -> Endpoint {
    let agent = state.agent(task.agent_id());
    let ip = agent.and_then(|agent| agent.info.address.parse::<SocketAddr>().ok()).map(|a| a.ip());
    Endpoint {
        task_id: task.id().clone(),
        agent_id: task.agent_id().clone(),
        host: agent.map(|agent| agent.info.hostname.clone()),
        ip,
        ports: ports(task),
        state: task.state,
        healthy: task.health(),
        ready: task.is_ready(health_checked),
        draining: task.kill_requested.is_some(),
        kill_grace: task.kill_grace(),
        config_version,
    }
}

/// The discovery ports (named, with their protocol) when the task has them, else its port
/// resources as plain TCP ports.
fn ports(task: &Task) -> Vec<EndpointPort> {
    if let Some(discovery) = task.info.discovery.as_ref().filter(|d| !d.ports.is_empty()) {
        return discovery
            .ports
            .iter()
            .filter_map(|port| {
                Some(EndpointPort {
                    number: u16::try_from(port.number).ok()?,
                    name: port.name.clone(),
                    protocol: match port.protocol.as_deref().map(str::to_ascii_lowercase) {
                        Some(protocol) if protocol == "udp" => "udp".to_owned(),
                        _ => "tcp".to_owned(),
                    },
                })
            })
            .collect();
    }
    task.resources()
        .ranges("ports")
        .as_slice()
        .iter()
        .flat_map(|&(begin, end)| begin..=end)
        .filter_map(|port| u16::try_from(port).ok())
        .map(|number| EndpointPort { number, name: None, protocol: "tcp".to_owned() })
        .collect()
}

/// The `labels` of an app's Marathon definition that have string values. The definition
/// was validated when the app was put, so one that does not parse has no labels to give.
fn labels(definition: &str) -> BTreeMap<String, String> {
    let Ok(serde_json::Value::Object(definition)) = serde_json::from_str(definition) else {
        return BTreeMap::new();
    };
    let Some(serde_json::Value::Object(labels)) = definition.get("labels") else {
        return BTreeMap::new();
    };
    labels
        .iter()
        .filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_owned())))
        .collect()
}

/// How many deleted services keep their own change index; older ones fold into the floor.
const REMEMBERED_REMOVALS: usize = 4096;

/// The log index at which the catalog, and each service in it, last changed, as one master
/// saw it: a service changed at index `i` is different in every build at `i` or later from
/// what it was in every build before. Indexes are log indexes, so a client may carry one
/// from one master to another; the worst it gets is one early wake-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeIndex {
    /// What a service never seen (or forgotten after its removal) answers with.
    floor: u64,
    changed: BTreeMap<AppId, u64>,
    removed: BTreeMap<AppId, u64>,
    latest: u64,
}

impl ChangeIndex {
    /// The index of the first catalog a master builds: nothing is known to be older.
    pub fn first(catalog: &Catalog, at: u64) -> ChangeIndex {
        ChangeIndex {
            floor: at,
            changed: catalog.services.keys().map(|id| (id.clone(), at)).collect(),
            removed: BTreeMap::new(),
            latest: at,
        }
    }

    /// Records the build at `at` that replaced `old` with `new`.
    pub fn record(&mut self, old: &Catalog, new: &Catalog, at: u64) {
        for (id, service) in &new.services {
            if old.services.get(id) != Some(service) {
                self.changed.insert(id.clone(), at);
                self.removed.remove(id);
                self.latest = at;
            }
        }
        for id in old.services.keys().filter(|id| !new.services.contains_key(*id)) {
            self.changed.remove(id);
            self.removed.insert(id.clone(), at);
            self.latest = at;
        }
        while self.removed.len() > REMEMBERED_REMOVALS {
            let oldest = self
                .removed
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(id, at)| (id.clone(), *at))
                .expect("more removals than the bound means at least one");
            self.removed.remove(&oldest.0);
            self.floor = self.floor.max(oldest.1);
        }
    }

    /// When anything in the catalog last changed.
    pub fn latest(&self) -> u64 {
        self.latest
    }

    /// When the service `id` last changed: appeared, changed or went away.
    pub fn of(&self, id: &AppId) -> u64 {
        self.changed.get(id).or_else(|| self.removed.get(id)).copied().unwrap_or(self.floor)
    }
}
