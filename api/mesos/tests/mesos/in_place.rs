//! GET_STATE's agents, frameworks and executors are written in place from the state; they
//! were built as `serde_json::Value` trees. The old builders live on here, unchanged, as the
//! reference the writers must match: same JSON, and the same bytes (a `Value` writes its
//! keys sorted, and so do the writers).

use std::time::Duration;

use corral_mesos::convert::{
    executor_to_json, framework_info_to_json, offer_to_json, resources_to_json,
};
use corral_mesos::json::IdJson;
use corral_mesos::operator::{write_query, OperatorQuery};
use corral_state::model::{
    Agent, AgentMode, CommandInfo, ExecutorInfo, Filters, Framework, FrameworkCapability,
    FrameworkInfo, Label, Liveness, TaskInfo,
};
use corral_state::{
    Actor, ClusterState, Command, ExecutorId, Operation, Reservation, Resources, Role, Timestamp,
};
use corral_testkit::state::{StateBuilder, AGENT, FRAMEWORK};
use serde_json::{json, Value as Json};

// The Value-based renderers as they were before the in-place writers replaced them.

fn nanos(at: Timestamp) -> Json {
    json!({"nanoseconds": at.nanos()})
}

fn agent_info_json(agent: &Agent) -> Json {
    let (ip, port) =
        agent.info.address.rsplit_once(':').unwrap_or((agent.info.address.as_str(), "5051"));
    json!({
        "hostname": agent.info.hostname,
        "port": port.parse::<u32>().unwrap_or(5051),
        "id": IdJson::new(&agent.id),
        "resources": resources_to_json(&agent.total, None),
        "attributes": agent.info.attributes.0.iter().map(|(name, value)| json!({
            "name": name, "type": "TEXT", "text": {"value": value}
        })).collect::<Vec<_>>(),
        "ip": ip,
    })
}

fn agent_json(agent: &Agent) -> Json {
    let drain = match agent.mode {
        AgentMode::Draining(_) => Some("DRAINING"),
        AgentMode::Drained(_) => Some("DRAINED"),
        AgentMode::Active | AgentMode::Deactivated => None,
    };
    let mut json = json!({
        "agent_info": agent_info_json(agent),
        "active": agent.liveness == Liveness::Reachable,
        "deactivated": agent.mode != AgentMode::Active,
        "version": env!("CARGO_PKG_VERSION"),
        "pid": format!("slave(1)@{}", agent.info.address),
        "registered_time": nanos(agent.registered_at),
        "total_resources": resources_to_json(&agent.total, None),
        "allocated_resources": resources_to_json(&agent.allocated, None),
        "offered_resources": resources_to_json(&agent.offered, None),
    });
    if let Some(at) = agent.reregistered_at {
        json["reregistered_time"] = nanos(at);
    }
    if let Some(drain) = drain {
        json["drain_info"] = json!({"state": drain});
    }
    json
}

fn framework_json(framework: &Framework, state: &ClusterState) -> Json {
    let offers: Vec<Json> = framework
        .offers
        .iter()
        .filter_map(|id| state.offer(id))
        .map(|offer| serde_json::to_value(offer_to_json(offer)).unwrap())
        .collect();
    let mut allocated = Resources::new();
    for task in framework.tasks.values().filter(|task| !task.state.is_terminal()) {
        allocated.add(task.resources());
    }
    let mut offered = Resources::new();
    for id in &framework.offers {
        if let Some(offer) = state.offer(id) {
            offered.add(&offer.resources);
        }
    }
    let mut json = json!({
        "framework_info": framework_info_to_json(&framework.info, &framework.id),
        "active": framework.is_connected(),
        "connected": framework.is_connected(),
        "recovered": false,
        "registered_time": nanos(framework.registered_at),
        "offers": offers,
        "allocated_resources": resources_to_json(&allocated, None),
        "offered_resources": resources_to_json(&offered, None),
    });
    if let Some(at) = framework.reregistered_at {
        json["reregistered_time"] = nanos(at);
    }
    json
}

fn get_agents(state: &ClusterState) -> Json {
    let agents: Vec<Json> =
        state.agents().values().filter(|agent| !agent.is_gone()).map(agent_json).collect();
    json!({"agents": agents, "recovered_agents": []})
}

fn get_frameworks(state: &ClusterState) -> Json {
    let frameworks: Vec<Json> =
        state.frameworks().values().map(|f| framework_json(f, state)).collect();
    let completed: Vec<Json> = state
        .completed_frameworks()
        .values()
        .map(|completed| {
            let mut json = framework_json(&completed.framework, state);
            json["active"] = json!(false);
            json["connected"] = json!(false);
            json["unregistered_time"] = nanos(completed.removed_at);
            json
        })
        .collect();
    json!({"frameworks": frameworks, "completed_frameworks": completed})
}

fn get_executors(state: &ClusterState) -> Json {
    let executors: Vec<Json> = state
        .executors()
        .values()
        .map(|executor| {
            json!({
                "agent_id": IdJson::new(&executor.agent_id),
                "executor_info": executor_to_json(&executor.info),
            })
        })
        .collect();
    json!({"executors": executors, "orphan_executors": []})
}

// A state with every kind of object these answers show.

fn operator() -> Actor {
    Actor::Operator { principal: Some("alice".into()) }
}

fn rich_info(name: &str) -> FrameworkInfo {
    FrameworkInfo {
        user: "svc".into(),
        name: name.into(),
        roles: vec![Role::parse("eng").unwrap(), Role::parse("ops").unwrap()],
        failover_timeout: Duration::from_millis(1_500),
        checkpoint: false,
        hostname: Some("sched.example".into()),
        principal: Some("batch\"principal".into()),
        webui_url: Some("http://sched.example/ui".into()),
        capabilities: [FrameworkCapability::MultiRole, FrameworkCapability::PartitionAware]
            .into_iter()
            .collect(),
        labels: vec![
            Label { key: "team".into(), value: Some("data".into()) },
            Label { key: "flag".into(), value: None },
        ],
    }
}

/// Agents: one with attributes, static and dynamic reservations, ports and a set,
/// re-registered; one drained; one deactivated. Frameworks: a plain one with a task, an
/// executor's task group and an offer; one with every optional field and several roles,
/// re-subscribed; one torn down.
fn everything() -> StateBuilder {
    let mut cluster = StateBuilder::default();
    cluster.agent(
        "h1",
        "rack:a;zone:b",
        "cpus:8;mem:4096;disk(ops):10;ports:[31000-31010,32000-32000];colors:{blue,red}",
    );
    cluster.advance(Duration::from_secs(3));
    let info = cluster.state.agent(&AGENT.into()).unwrap().info.clone();
    let total = cluster.state.agent(&AGENT.into()).unwrap().total.clone();
    cluster.accepted(
        Actor::Leader,
        Command::ReregisterAgent { agent_id: AGENT.into(), info, resources: total, tasks: vec![] },
    );
    cluster.agent("h2", "", "cpus:2;mem:512");
    cluster.agent("h3", "", "cpus:1;mem:256");
    let agents: Vec<_> = cluster.state.agents().keys().cloned().collect();
    cluster.accepted(
        operator(),
        Command::DrainAgent {
            agent_id: agents[1].clone(),
            max_grace_period: None,
            mark_gone: false,
        },
    );
    cluster.accepted(operator(), Command::DeactivateAgent { agent_id: agents[2].clone() });
    let mut dynamic: Resources = "mem:64".parse().unwrap();
    dynamic = Resources::from_list(
        dynamic
            .iter()
            .map(|r| corral_state::Resource {
                reservation: Reservation::Dynamic {
                    role: Role::parse("eng").unwrap(),
                    principal: Some("alice".into()),
                },
                ..r.clone()
            })
            .collect(),
    )
    .unwrap();
    cluster.accepted(
        operator(),
        Command::ReserveResources { agent_id: AGENT.into(), resources: dynamic },
    );

    cluster.framework("web", "*");
    cluster.launch("t1", "cpus:1;mem:128").running("t1", "dXVpZA==");
    let offer = cluster.offer_to(
        FRAMEWORK.into(),
        &AGENT.into(),
        Role::parse("*").unwrap(),
        "cpus:1;mem:128".parse().unwrap(),
    );
    let executor = ExecutorInfo {
        executor_id: ExecutorId::new("default-executor"),
        name: Some("group".into()),
        command: Some(CommandInfo { value: Some("run".into()), ..CommandInfo::default() }),
        container: None,
        resources: "cpus:0.1;mem:32".parse().unwrap(),
    };
    let task =
        TaskInfo::shell("g1".into(), AGENT.into(), "cpus:0.5;mem:64".parse().unwrap(), "sleep 9");
    cluster.accepted(
        Actor::Framework(FRAMEWORK.into()),
        Command::Accept {
            framework_id: FRAMEWORK.into(),
            offer_ids: vec![offer],
            operations: vec![Operation::LaunchGroup {
                executor: Box::new(executor),
                task_infos: vec![task],
            }],
            filters: Filters { refuse: Duration::ZERO },
        },
    );
    cluster.offer("*", "cpus:1;ports:[31000-31005]");

    cluster.accepted(
        Actor::Leader,
        Command::Subscribe { framework_id: None, info: rich_info("batch") },
    );
    let batch = cluster.state.frameworks().keys().nth(1).unwrap().clone();
    cluster.advance(Duration::from_secs(2));
    cluster.accepted(
        Actor::Leader,
        Command::Subscribe { framework_id: Some(batch.clone()), info: rich_info("batch") },
    );
    cluster.offer_to(
        batch.clone(),
        &AGENT.into(),
        Role::parse("ops").unwrap(),
        "cpus:1;mem:64".parse().unwrap(),
    );

    cluster.framework("gone", "*");
    let gone = cluster.state.frameworks().keys().nth(2).unwrap().clone();
    cluster.advance(Duration::from_secs(1));
    cluster.accepted(operator(), Command::Teardown { framework_id: gone });
    cluster
}

#[test]
fn the_state_has_every_kind_of_object() {
    let cluster = everything();
    let state = &cluster.state;
    let agents = get_agents(state);
    let text = agents.to_string();
    for needle in ["reregistered_time", "drain_info", "\"DYNAMIC\"", "\"STATIC\"", "RANGES", "SET"]
    {
        assert!(text.contains(needle), "no {needle} in {text}");
    }
    assert_eq!(agents["agents"].as_array().unwrap().len(), 3);
    assert!(agents["agents"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["deactivated"] == true && a.get("drain_info").is_none()));
    let frameworks = get_frameworks(state);
    assert_eq!(frameworks["frameworks"].as_array().unwrap().len(), 2);
    assert_eq!(frameworks["completed_frameworks"].as_array().unwrap().len(), 1);
    let text = frameworks.to_string();
    for needle in ["reregistered_time", "unregistered_time", "webui_url", "MULTI_ROLE", "labels"] {
        assert!(text.contains(needle), "no {needle} in {text}");
    }
    assert!(frameworks["frameworks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| !f["offers"].as_array().unwrap().is_empty()));
    assert_eq!(get_executors(state)["executors"].as_array().unwrap().len(), 1);
}

#[test]
fn get_state_writes_agents_frameworks_and_executors_as_their_values_did() {
    let cluster = everything();
    let state = &cluster.state;
    let mut bytes = Vec::new();
    write_query(OperatorQuery::State, state, &mut bytes).unwrap();
    let written: Json = serde_json::from_slice(&bytes).unwrap();
    let get_state = &written["get_state"];
    assert_eq!(get_state["get_agents"], get_agents(state));
    assert_eq!(get_state["get_frameworks"], get_frameworks(state));
    assert_eq!(get_state["get_executors"], get_executors(state));
    // Byte for byte too: the same keys in the same order, the same numbers.
    let text = String::from_utf8(bytes).unwrap();
    for (key, value) in [
        ("get_agents", get_agents(state)),
        ("get_frameworks", get_frameworks(state)),
        ("get_executors", get_executors(state)),
    ] {
        let old = format!("\"{key}\":{value}");
        assert!(text.contains(&old), "{key} differs:\n{old}\nin\n{text}");
    }
}

#[test]
fn get_agents_and_get_frameworks_answer_as_their_values_did() {
    let cluster = everything();
    let state = &cluster.state;
    for (query, kind, key, old) in [
        (OperatorQuery::Agents, "GET_AGENTS", "get_agents", get_agents(state)),
        (OperatorQuery::Frameworks, "GET_FRAMEWORKS", "get_frameworks", get_frameworks(state)),
        (OperatorQuery::Executors, "GET_EXECUTORS", "get_executors", get_executors(state)),
    ] {
        let mut bytes = Vec::new();
        write_query(query, state, &mut bytes).unwrap();
        let expected = json!({"type": kind, key: old});
        assert_eq!(String::from_utf8(bytes).unwrap(), expected.to_string(), "{query:?}");
    }
}

/// One framework's task finished and another lost, a partition-aware framework's task
/// unreachable: the answers skip walks for states the tally counts none of, so each list is
/// checked here with some.
#[test]
fn tasks_are_listed_by_state_when_some_ended_or_are_unreachable() {
    let mut cluster = StateBuilder::default();
    cluster.agent("h1", "", "cpus:8;mem:4096").framework("web", "*");
    cluster.launch("t1", "cpus:1;mem:128").running("t1", "dTE=");
    cluster.launch("t2", "cpus:1;mem:128").running("t2", "dTI=");
    cluster.report(FRAMEWORK.into(), &"t2".into(), corral_state::model::TaskState::Finished, None);
    cluster.accepted(
        Actor::Leader,
        Command::Subscribe { framework_id: None, info: rich_info("batch") },
    );
    let batch = cluster.state.frameworks().keys().nth(1).unwrap().clone();
    let offer = cluster.offer_to(
        batch.clone(),
        &AGENT.into(),
        Role::parse("eng").unwrap(),
        "cpus:1;mem:64".parse().unwrap(),
    );
    let task =
        TaskInfo::shell("p1".into(), AGENT.into(), "cpus:1;mem:64".parse().unwrap(), "sleep 9");
    cluster.accepted(
        Actor::Framework(batch.clone()),
        Command::Accept {
            framework_id: batch.clone(),
            offer_ids: vec![offer],
            operations: vec![Operation::Launch { task_infos: vec![task] }],
            filters: Filters { refuse: Duration::ZERO },
        },
    );
    cluster.report(batch, &"p1".into(), corral_state::model::TaskState::Running, None);
    cluster.advance(Duration::from_secs(600));
    cluster.accepted(Actor::Leader, Command::Tick);

    let mut bytes = Vec::new();
    write_query(OperatorQuery::Tasks, &cluster.state, &mut bytes).unwrap();
    let tasks: Json = serde_json::from_slice(&bytes).unwrap();
    let listed = |list: &str| -> Vec<(String, String)> {
        tasks["get_tasks"][list]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["task_id"]["value"].as_str().unwrap().to_owned(),
                    t["state"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    assert_eq!(listed("tasks"), vec![]);
    assert_eq!(listed("unreachable_tasks"), vec![("p1".into(), "TASK_UNREACHABLE".into())]);
    let mut completed = listed("completed_tasks");
    completed.sort();
    assert_eq!(
        completed,
        vec![("t1".into(), "TASK_LOST".into()), ("t2".into(), "TASK_FINISHED".into())]
    );

    let mut bytes = Vec::new();
    corral_mesos::v0::write_master_state(&cluster.state, &serde_json::Map::new(), &mut bytes)
        .unwrap();
    let v0: Json = serde_json::from_slice(&bytes).unwrap();
    let batch = &v0["frameworks"][1];
    assert_eq!(batch["unreachable_tasks"][0]["id"], "p1");
    assert_eq!(batch["tasks"], json!([]));
}
