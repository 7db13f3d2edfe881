//! `GET /master/state`: the v0 JSON that dashboards and scripts read. Resources here are
//! flat maps (`{"cpus": 4.0, "ports": "[31000-32000]"}`), ids are plain strings, times are
//! seconds.

use serde_json::{json, Map, Value as Json};

use corral_state::model::{AgentMode, Framework, Liveness, Task};
use corral_state::{ClusterState, Reservation, Resources, Value};

use super::convert::capability_to_json;

/// Mesos v0 resource maps: scalars as numbers, ranges and sets as their text form.
pub fn resource_map(resources: &Resources) -> Json {
    let mut map = Map::new();
    for name in ["cpus", "mem", "disk", "gpus"] {
        map.insert(name.to_owned(), json!(resources.scalar(name).as_f64()));
    }
    for resource in resources.iter() {
        let value = match &resource.value {
            Value::Scalar(_) => json!(resources.scalar(&resource.name).as_f64()),
            Value::Ranges(_) => json!(resources.ranges(&resource.name).to_string()),
            Value::Set(items) => {
                json!(format!("{{{}}}", items.iter().cloned().collect::<Vec<_>>().join(",")))
            }
        };
        map.insert(resource.name.to_string(), value);
    }
    Json::Object(map)
}

fn reserved_by_role(resources: &Resources) -> Json {
    let mut roles: std::collections::BTreeMap<String, Resources> =
        std::collections::BTreeMap::new();
    for resource in resources.iter() {
        if let Some(role) = resource.reservation.role() {
            let single = Resources::from_list(vec![resource.clone()]).unwrap_or_default();
            roles.entry(role.to_string()).or_default().add(&single);
        }
    }
    Json::Object(
        roles.into_iter().map(|(role, resources)| (role, resource_map(&resources))).collect(),
    )
}

fn task_v0(task: &Task) -> Json {
    json!({
        "id": task.id().to_string(),
        "name": task.info.name,
        "framework_id": task.framework_id.to_string(),
        "executor_id": task.info.executor.as_ref().map(|e| e.executor_id.to_string()).unwrap_or_default(),
        "slave_id": task.agent_id().to_string(),
        "state": task.state.as_mesos_str(),
        "resources": resource_map(task.resources()),
        "role": task.role.to_string(),
        "statuses": task.statuses.iter().map(|status| json!({
            "state": status.state.as_mesos_str(),
            "timestamp": status.timestamp.as_secs_f64(),
        })).collect::<Vec<_>>(),
        "labels": task.info.labels.iter().map(|l| json!({"key": l.key, "value": l.value})).collect::<Vec<_>>(),
    })
}

fn framework_v0(framework: &Framework, state: &ClusterState) -> Json {
    let mut used = Resources::new();
    let mut tasks = Vec::new();
    let mut unreachable = Vec::new();
    for task in framework.tasks.values() {
        if task.state == corral_state::model::TaskState::Unreachable {
            unreachable.push(task_v0(task));
            continue;
        }
        if !task.state.is_terminal() {
            used.add(task.resources());
        }
        tasks.push(task_v0(task));
    }
    let mut offered = Resources::new();
    let offers: Vec<Json> = framework
        .offers
        .iter()
        .filter_map(|id| state.offer(id))
        .map(|offer| {
            offered.add(&offer.resources);
            json!({
                "id": offer.id.to_string(),
                "framework_id": offer.framework_id.to_string(),
                "slave_id": offer.agent_id.to_string(),
                "resources": resource_map(&offer.resources),
            })
        })
        .collect();
    let roles: Vec<String> = framework.info.roles.iter().map(|r| r.to_string()).collect();
    json!({
        "id": framework.id.to_string(),
        "name": framework.info.name,
        "user": framework.info.user,
        "hostname": framework.info.hostname.clone().unwrap_or_default(),
        "webui_url": framework.info.webui_url.clone().unwrap_or_default(),
        "principal": framework.info.principal,
        "active": framework.is_connected(),
        "connected": framework.is_connected(),
        "recovered": false,
        "failover_timeout": framework.info.failover_timeout.as_secs_f64(),
        "checkpoint": framework.info.checkpoint,
        "role": roles.first().cloned().unwrap_or_else(|| "*".to_owned()),
        "roles": roles,
        "capabilities": framework.info.capabilities.iter().map(|c| capability_to_json(*c)).collect::<Vec<_>>(),
        "registered_time": framework.registered_at.as_secs_f64(),
        "reregistered_time": framework.reregistered_at.map(|t| t.as_secs_f64()),
        "resources": resource_map(&used.plus(&offered)),
        "used_resources": resource_map(&used),
        "offered_resources": resource_map(&offered),
        "tasks": tasks,
        "unreachable_tasks": unreachable,
        "completed_tasks": framework.completed_tasks.iter().map(|task| task_v0(task)).collect::<Vec<_>>(),
        "offers": offers,
        "executors": [],
    })
}

/// The whole v0 state. `master` describes the answering master: id, pid, hostname,
/// leader, flags, start and election times.
pub fn master_state(state: &ClusterState, master: Json) -> Json {
    let agents: Vec<Json> = state
        .agents()
        .values()
        .filter(|agent| !agent.is_gone())
        .map(|agent| {
            let (_, port) = agent.info.address.rsplit_once(':').unwrap_or(("", "5051"));
            let unreserved = agent.total.filter(|r| r.reservation == Reservation::Unreserved);
            json!({
                "id": agent.id.to_string(),
                "pid": format!("slave(1)@{}", agent.info.address),
                "hostname": agent.info.hostname,
                "port": port.parse::<u32>().unwrap_or(5051),
                "registered_time": agent.registered_at.as_secs_f64(),
                "reregistered_time": agent.reregistered_at.map(|t| t.as_secs_f64()),
                "resources": resource_map(&agent.total),
                "used_resources": resource_map(&agent.allocated),
                "offered_resources": resource_map(&agent.offered),
                "reserved_resources": reserved_by_role(&agent.total),
                "unreserved_resources": resource_map(&unreserved),
                "attributes": Json::Object(agent.info.attributes.0.iter().map(|(k, v)| (k.clone(), json!(v))).collect()),
                "active": agent.liveness == Liveness::Reachable,
                "deactivated": agent.mode != AgentMode::Active,
                "version": env!("CARGO_PKG_VERSION"),
            })
        })
        .collect();
    let count = |matches: fn(&corral_state::model::Agent) -> bool| {
        state.agents().values().filter(|a| matches(a)).count()
    };
    let mut json = json!({
        "version": super::operator::MESOS_API_VERSION,
        "activated_slaves": count(|a| a.liveness == Liveness::Reachable && a.mode == AgentMode::Active),
        "deactivated_slaves": count(|a| a.liveness == Liveness::Reachable && a.mode != AgentMode::Active),
        "unreachable_slaves": count(|a| matches!(a.liveness, Liveness::Unreachable { .. })),
        "slaves": agents,
        "frameworks": state.frameworks().values().map(|f| framework_v0(f, state)).collect::<Vec<_>>(),
        "completed_frameworks": state.completed_frameworks().values().map(|c| framework_v0(&c.framework, state)).collect::<Vec<_>>(),
        "orphan_tasks": [],
        "unregistered_frameworks": [],
    });
    if let (Json::Object(target), Json::Object(extra)) = (&mut json, master) {
        target.extend(extra);
    }
    json
}
