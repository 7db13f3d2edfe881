use std::time::Duration;

use corral_state::model::{
    FrameworkCapability, Liveness, RemovalReason, RescindReason, Settings, TaskState,
};
use corral_state::{Actor, Command, Entry, Event, Rejection, RequestId, TaskId, Timestamp};

use super::support::{framework_info, World};

#[test]
fn only_the_leader_ticks() {
    let mut world = World::new();
    let rejection = world.rejected(Actor::Operator { principal: None }, Command::Tick);
    assert!(matches!(rejection, Rejection::NotPermitted { .. }));
}

#[test]
fn a_silent_agent_becomes_unreachable_then_gone() {
    let mut world = World::new();
    let agent_id = world.add_agent("h1", "cpus:4;mem:1024");
    let mut aware = framework_info("aware", &["*"]);
    aware.capabilities.insert(FrameworkCapability::PartitionAware);
    let framework_id = world.subscribe_info(aware);
    world.launch(&framework_id, &agent_id, "t1", "cpus:1;mem:128");
    world.report(&framework_id, &agent_id, "t1", TaskState::Running, "u1");
    let offer_id = world.offer(&framework_id, &agent_id, "*", "cpus:1");

    world.advance(Duration::from_secs(74));
    assert_eq!(world.leader(Command::Tick), vec![]);

    world.advance(Duration::from_secs(1));
    let events = world.leader(Command::Tick);
    let kinds: Vec<&str> = events.iter().map(Event::kind).collect();
    assert_eq!(kinds, vec!["agent_unreachable", "offer_rescinded", "task_updated"]);
    assert_eq!(
        events[1],
        Event::OfferRescinded {
            offer_id,
            framework_id: framework_id.clone(),
            agent_id: agent_id.clone(),
            reason: RescindReason::AgentUnreachable
        }
    );
    let Event::TaskUpdated { status, .. } = &events[2] else { panic!() };
    assert_eq!(status.state, TaskState::Unreachable);
    assert_eq!(status.uuid, None);

    world.advance(world.state.settings().agent_unreachable_to_gone);
    let events = world.leader(Command::Tick);
    assert_eq!(events[0], Event::AgentRemoved { agent_id: agent_id.clone(), by_operator: false });
    assert!(matches!(
        world.state.agent(&agent_id).unwrap().liveness,
        Liveness::Gone { by_operator: false, .. }
    ));
    // Still tracked: its RUNNING update awaits acknowledgement.
    assert_eq!(world.state.task(&framework_id, &TaskId::new("t1")).unwrap().state, TaskState::Gone);
    assert!(world.state.agent(&agent_id).unwrap().allocated.is_empty());
}

#[test]
fn a_framework_past_its_failover_timeout_is_removed_and_its_tasks_killed() {
    let mut world = World::new();
    let agent_id = world.add_agent("h1", "cpus:4;mem:1024");
    let framework_id = world.subscribe("f", &["*"]);
    world.launch(&framework_id, &agent_id, "t1", "cpus:1;mem:128");
    world.leader(Command::DisconnectFramework { framework_id: framework_id.clone() });
    world.advance(Duration::from_secs(59));
    assert_eq!(world.leader(Command::Tick), vec![]);
    world.advance(Duration::from_secs(1));
    let events = world.leader(Command::Tick);
    assert_eq!(events.first().map(Event::kind), Some("task_kill_requested"));
    assert_eq!(
        events.last(),
        Some(&Event::FrameworkRemoved {
            framework_id: framework_id.clone(),
            reason: RemovalReason::FailoverTimeout
        })
    );
    assert!(world.state.agent(&agent_id).unwrap().allocated.is_empty());
}

#[test]
fn a_framework_that_comes_back_in_time_keeps_its_tasks() {
    let mut world = World::new();
    let agent_id = world.add_agent("h1", "cpus:4;mem:1024");
    let framework_id = world.subscribe("f", &["*"]);
    world.launch(&framework_id, &agent_id, "t1", "cpus:1;mem:128");
    world.leader(Command::DisconnectFramework { framework_id: framework_id.clone() });
    world.advance(Duration::from_secs(30));
    world.as_framework(
        &framework_id,
        Command::Subscribe {
            framework_id: Some(framework_id.clone()),
            info: framework_info("f", &["*"]),
        },
    );
    world.advance(Duration::from_secs(40));
    assert_eq!(world.leader(Command::Tick), vec![]);
    assert!(world.state.task(&framework_id, &TaskId::new("t1")).is_some());
}

#[test]
fn offers_expire_when_an_offer_timeout_is_set() {
    let mut world = World::new();
    let settings = Settings { offer_timeout: Some(Duration::from_secs(30)), ..Settings::default() };
    world.operator(Command::UpdateSettings { settings });
    let agent_id = world.add_agent("h1", "cpus:4;mem:1024");
    let framework_id = world.subscribe("f", &["*"]);
    world.offer(&framework_id, &agent_id, "*", "cpus:1");
    world.advance(Duration::from_secs(29));
    assert_eq!(world.leader(Command::Tick), vec![]);
    world.advance(Duration::from_secs(1));
    let events = world.leader(Command::Tick);
    assert!(matches!(&events[..], [Event::OfferRescinded { reason: RescindReason::Expired, .. }]));
    assert!(world.state.agent(&agent_id).unwrap().offered.is_empty());
}

#[test]
fn time_never_goes_backwards() {
    let mut world = World::new();
    world.leader(Command::Tick);
    let later = world.state.now();
    let entry = Entry {
        request_id: RequestId::new("old"),
        actor: Actor::Leader,
        at: Timestamp::from_secs(1),
        command: Command::Tick,
    };
    world.state.apply(&entry);
    assert_eq!(world.state.now(), later);
}

#[test]
fn request_ids_are_forgotten_after_the_window() {
    let mut world = World::new();
    let entry = Entry {
        request_id: RequestId::new("once"),
        actor: Actor::Leader,
        at: world.clock,
        command: Command::Tick,
    };
    world.state.apply(&entry);
    assert!(world.state.outcome_of(&RequestId::new("once")).is_some());
    world.advance(world.state.settings().dedup_window);
    world.leader(Command::Tick);
    assert!(world.state.outcome_of(&RequestId::new("once")).is_none());
}

#[test]
fn at_most_dedup_capacity_request_ids_are_remembered() {
    let mut world = World::new();
    world.operator(Command::UpdateSettings {
        settings: Settings { dedup_capacity: 2, ..Settings::default() },
    });
    for name in ["a", "b", "c"] {
        let entry = Entry {
            request_id: RequestId::new(name),
            actor: Actor::Leader,
            at: world.clock,
            command: Command::Tick,
        };
        world.state.apply(&entry);
    }
    assert!(world.state.outcome_of(&RequestId::new("a")).is_none());
    assert!(world.state.outcome_of(&RequestId::new("b")).is_some());
    assert!(world.state.outcome_of(&RequestId::new("c")).is_some());
    // A forgotten id applies again; the snapshot keeps exactly what is remembered.
    let again = Entry {
        request_id: RequestId::new("a"),
        actor: Actor::Leader,
        at: world.clock,
        command: Command::Tick,
    };
    assert!(matches!(world.state.apply(&again), corral_state::Outcome::Accepted(_)));
    let restored = corral_state::ClusterState::from_snapshot(
        &world.state.snapshot().expect("the state encodes"),
    )
    .unwrap();
    assert_eq!(restored, world.state);
    assert!(restored.outcome_of(&RequestId::new("a")).is_some());
    assert!(restored.outcome_of(&RequestId::new("b")).is_none());
}
