use std::time::Duration;

use corral_state::model::{
    AgentInfo, Attributes, FrameworkCapability, Liveness, ReportedTask, TaskState,
};
use corral_state::{Actor, AgentId, Command, Event, Rejection, TaskId};

use super::support::{dynamic, framework_info, res, World};

fn info(hostname: &str) -> AgentInfo {
    AgentInfo {
        hostname: hostname.to_owned(),
        address: "10.0.0.9:5051".to_owned(),
        attributes: Attributes::parse("rack:a").unwrap(),
    }
}

#[test]
fn registering_assigns_an_id_and_adds_the_agent() {
    let mut world = World::new();
    let events = world
        .leader(Command::RegisterAgent { info: info("h1"), resources: res("cpus:4;mem:1024") });
    let agent_id = AgentId::new("corral-S1");
    assert_eq!(
        events,
        vec![Event::AgentAdded {
            agent_id: agent_id.clone(),
            info: info("h1"),
            total: res("cpus:4;mem:1024")
        }]
    );
    let agent = world.state.agent(&agent_id).unwrap();
    assert!(agent.is_offerable());
    assert_eq!(agent.free(), res("cpus:4;mem:1024"));
    assert_eq!(agent.info.attributes.get("rack"), Some("a"));
}

#[test]
fn registering_with_bad_input_is_rejected() {
    let mut world = World::new();
    let rejection = world.rejected(
        Actor::Leader,
        Command::RegisterAgent { info: info(" "), resources: res("cpus:1") },
    );
    assert_eq!(rejection, Rejection::invalid("info.hostname", "must not be empty"));
    let rejection = world
        .rejected(Actor::Leader, Command::RegisterAgent { info: info("h"), resources: res("") });
    assert!(
        matches!(rejection, Rejection::Invalid { ref field, .. } if field == "resources"),
        "{rejection}"
    );
    let rejection = world.rejected(
        Actor::Leader,
        Command::RegisterAgent { info: info("h"), resources: dynamic("cpus:1", "eng") },
    );
    assert!(rejection.to_string().contains("dynamic reservations"), "{rejection}");
    let rejection = world.rejected(
        Actor::Framework("f".into()),
        Command::RegisterAgent { info: info("h"), resources: res("cpus:1") },
    );
    assert!(matches!(rejection, Rejection::NotPermitted { .. }));
    assert!(world.state.agents().is_empty());
}

#[test]
fn heartbeats_are_recorded_and_checked() {
    let mut world = World::new();
    let agent_id = world.add_agent("h1", "cpus:1;mem:128");
    world.advance(Duration::from_secs(10));
    assert_eq!(
        world.as_agent(&agent_id, Command::AgentHeartbeat { agent_id: agent_id.clone() }),
        vec![]
    );
    assert_eq!(world.state.agent(&agent_id).unwrap().last_heartbeat, world.clock);

    let other = world.add_agent("h2", "cpus:1;mem:128");
    let rejection = world.rejected(
        Actor::Agent(other.clone()),
        Command::AgentHeartbeat { agent_id: agent_id.clone() },
    );
    assert!(matches!(rejection, Rejection::NotPermitted { .. }));
    let rejection =
        world.rejected(Actor::Leader, Command::AgentHeartbeat { agent_id: "nope".into() });
    assert_eq!(rejection, Rejection::UnknownAgent("nope".into()));
}

#[test]
fn an_unreachable_agent_must_reregister_and_partition_aware_tasks_come_back() {
    let mut world = World::new();
    let agent_id = world.add_agent("h1", "cpus:4;mem:1024");
    let mut aware = framework_info("aware", &["*"]);
    aware.capabilities.insert(FrameworkCapability::PartitionAware);
    let aware_id = world.subscribe_info(aware);
    let plain_id = world.subscribe("plain", &["*"]);
    world.launch(&aware_id, &agent_id, "a1", "cpus:1;mem:128");
    world.launch(&plain_id, &agent_id, "p1", "cpus:1;mem:128");
    world.report(&aware_id, &agent_id, "a1", TaskState::Running, "u1");
    world.report(&plain_id, &agent_id, "p1", TaskState::Running, "u2");

    world.advance(Duration::from_secs(76));
    world.leader(Command::Tick);
    assert!(matches!(world.state.agent(&agent_id).unwrap().liveness, Liveness::Unreachable { .. }));
    assert_eq!(
        world.state.task(&aware_id, &TaskId::new("a1")).unwrap().state,
        TaskState::Unreachable
    );
    assert_eq!(world.state.task(&plain_id, &TaskId::new("p1")).unwrap().state, TaskState::Lost);

    let rejection = world.rejected(
        Actor::Agent(agent_id.clone()),
        Command::AgentHeartbeat { agent_id: agent_id.clone() },
    );
    assert_eq!(rejection, Rejection::AgentUnreachable(agent_id.clone()));

    let reported = vec![
        ReportedTask {
            framework_id: aware_id.clone(),
            task_id: TaskId::new("a1"),
            state: TaskState::Running,
        },
        ReportedTask {
            framework_id: plain_id.clone(),
            task_id: TaskId::new("p1"),
            state: TaskState::Running,
        },
    ];
    let events = world.as_agent(
        &agent_id,
        Command::ReregisterAgent {
            agent_id: agent_id.clone(),
            info: info("h1"),
            resources: res("cpus:4;mem:1024"),
            tasks: reported,
        },
    );
    assert!(matches!(&events[0], Event::AgentReregistered { was_unreachable: true, .. }));
    assert!(events.iter().any(|e| matches!(e, Event::TaskUpdated { status, previous: TaskState::Unreachable, .. } if status.state == TaskState::Running)));
    // The non-partition-aware task was LOST; the master asks the agent to kill it.
    assert!(events.iter().any(
        |e| matches!(e, Event::TaskKillRequested { task_id, .. } if task_id.as_str() == "p1")
    ));
    assert_eq!(world.state.task(&aware_id, &TaskId::new("a1")).unwrap().state, TaskState::Running);
    assert_eq!(world.state.agent(&agent_id).unwrap().liveness, Liveness::Reachable);
}

#[test]
fn reregistering_unknown_or_gone_agents_is_refused() {
    let mut world = World::new();
    let rejection = world.rejected(
        Actor::Agent("ghost".into()),
        Command::ReregisterAgent {
            agent_id: "ghost".into(),
            info: info("h"),
            resources: res("cpus:1"),
            tasks: vec![],
        },
    );
    assert_eq!(rejection, Rejection::UnknownAgent("ghost".into()));
    let agent_id = world.add_agent("h1", "cpus:1;mem:128");
    world.operator(Command::MarkAgentGone { agent_id: agent_id.clone() });
    let rejection = world.rejected(
        Actor::Agent(agent_id.clone()),
        Command::ReregisterAgent {
            agent_id: agent_id.clone(),
            info: info("h1"),
            resources: res("cpus:1;mem:128"),
            tasks: vec![],
        },
    );
    assert_eq!(rejection, Rejection::AgentGone(agent_id));
}

#[test]
fn a_resized_agent_takes_its_new_total_and_loses_its_offers() {
    let mut world = World::new();
    let agent_id = world.add_agent("h1", "cpus:2;mem:256");
    let framework_id = world.subscribe("f", &["*"]);
    let offer_id = world.offer(&framework_id, &agent_id, "*", "cpus:2;mem:256");
    let events = world.as_agent(
        &agent_id,
        Command::ReregisterAgent {
            agent_id: agent_id.clone(),
            info: info("h1"),
            resources: res("cpus:4;mem:256"),
            tasks: vec![],
        },
    );
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::OfferRescinded { offer_id: id, .. } if *id == offer_id)));
    assert_eq!(world.state.agent(&agent_id).unwrap().total, res("cpus:4;mem:256"));
    assert!(world.state.offers().is_empty());
}
