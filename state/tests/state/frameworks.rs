use std::time::Duration;

use corral_state::model::{Filters, FrameworkState, RemovalReason, RescindReason, TaskState};
use corral_state::{Actor, Command, Event, FrameworkId, Rejection};

use super::support::{framework_info, role, World};

#[test]
fn subscribing_assigns_an_id() {
    let mut world = World::new();
    let info = framework_info("marathon", &["*"]);
    let events =
        world.ok(Actor::Leader, Command::Subscribe { framework_id: None, info: info.clone() });
    assert_eq!(
        events,
        vec![Event::FrameworkAdded { framework_id: FrameworkId::new("corral-0001"), info }]
    );
    assert!(world.state.framework(&FrameworkId::new("corral-0001")).unwrap().is_connected());
}

#[test]
fn invalid_framework_info_is_rejected() {
    let mut world = World::new();
    let rejection = world.rejected(
        Actor::Leader,
        Command::Subscribe { framework_id: None, info: framework_info("", &["*"]) },
    );
    assert_eq!(rejection, Rejection::invalid("framework_info.name", "must not be empty"));
    let mut info = framework_info("f", &["a", "b"]);
    info.capabilities.clear();
    let rejection = world.rejected(Actor::Leader, Command::Subscribe { framework_id: None, info });
    assert!(rejection.to_string().contains("MULTI_ROLE"), "{rejection}");
    let rejection = world.rejected(
        Actor::Leader,
        Command::Subscribe { framework_id: None, info: framework_info("f", &[]) },
    );
    assert!(rejection.to_string().contains("at least one role"));
    let rejection = world.rejected(
        Actor::Leader,
        Command::Subscribe {
            framework_id: Some("corral-0042".into()),
            info: framework_info("f", &["*"]),
        },
    );
    assert_eq!(rejection, Rejection::UnknownFramework("corral-0042".into()));
}

#[test]
fn resubscribing_rescinds_the_old_instances_offers() {
    let mut world = World::new();
    let agent_id = world.add_agent("h1", "cpus:2;mem:256");
    let framework_id = world.subscribe("f", &["*"]);
    let offer_id = world.offer(&framework_id, &agent_id, "*", "cpus:1;mem:128");
    let info = framework_info("f2", &["*"]);
    let events = world.as_framework(
        &framework_id,
        Command::Subscribe { framework_id: Some(framework_id.clone()), info: info.clone() },
    );
    assert_eq!(
        events,
        vec![
            Event::OfferRescinded {
                offer_id,
                framework_id: framework_id.clone(),
                agent_id: agent_id.clone(),
                reason: RescindReason::FrameworkResubscribed
            },
            Event::FrameworkResubscribed { framework_id: framework_id.clone(), info },
        ]
    );
    assert_eq!(world.state.agent(&agent_id).unwrap().offered, corral_state::Resources::new());
}

#[test]
fn one_framework_cannot_act_for_another() {
    let mut world = World::new();
    let first = world.subscribe("a", &["*"]);
    let second = world.subscribe("b", &["*"]);
    let rejection = world.rejected(
        Actor::Framework(second.clone()),
        Command::Teardown { framework_id: first.clone() },
    );
    assert!(matches!(rejection, Rejection::NotPermitted { .. }), "{rejection}");
    let rejection = world.rejected(
        Actor::Framework(second),
        Command::Subscribe { framework_id: Some(first), info: framework_info("a", &["*"]) },
    );
    assert!(matches!(rejection, Rejection::NotPermitted { .. }));
}

#[test]
fn disconnecting_rescinds_offers_and_only_the_leader_may_say_so() {
    let mut world = World::new();
    let agent_id = world.add_agent("h1", "cpus:2;mem:256");
    let framework_id = world.subscribe("f", &["*"]);
    world.offer(&framework_id, &agent_id, "*", "cpus:1;mem:128");
    let rejection = world.rejected(
        Actor::Framework(framework_id.clone()),
        Command::DisconnectFramework { framework_id: framework_id.clone() },
    );
    assert!(matches!(rejection, Rejection::NotPermitted { .. }));
    let events = world.leader(Command::DisconnectFramework { framework_id: framework_id.clone() });
    assert_eq!(events[0], Event::FrameworkDisconnected { framework_id: framework_id.clone() });
    assert!(matches!(
        events[1],
        Event::OfferRescinded { reason: RescindReason::FrameworkDisconnected, .. }
    ));
    assert_eq!(
        world.state.framework(&framework_id).unwrap().state,
        FrameworkState::Disconnected { since: world.clock }
    );
    // A disconnected framework gets no offers.
    let spec_events = world.leader(Command::OfferResources {
        offers: vec![corral_state::OfferSpec {
            framework_id: framework_id.clone(),
            agent_id,
            role: role("*"),
            resources: super::support::res("cpus:1"),
        }],
    });
    assert!(spec_events.is_empty());
}

#[test]
fn a_zero_failover_timeout_removes_the_framework_at_once() {
    let mut world = World::new();
    let mut info = framework_info("f", &["*"]);
    info.failover_timeout = Duration::ZERO;
    let framework_id = world.subscribe_info(info);
    let events = world.leader(Command::DisconnectFramework { framework_id: framework_id.clone() });
    assert_eq!(
        events.last(),
        Some(&Event::FrameworkRemoved {
            framework_id: framework_id.clone(),
            reason: RemovalReason::FailoverTimeout
        })
    );
    assert!(world.state.completed_frameworks().contains_key(&framework_id));
}

#[test]
fn teardown_kills_tasks_frees_resources_and_completes_the_framework() {
    let mut world = World::new();
    let agent_id = world.add_agent("h1", "cpus:4;mem:1024");
    let framework_id = world.subscribe("f", &["*"]);
    world.launch(&framework_id, &agent_id, "t1", "cpus:1;mem:128");
    world.report(&framework_id, &agent_id, "t1", TaskState::Running, "u1");
    let events =
        world.as_framework(&framework_id, Command::Teardown { framework_id: framework_id.clone() });
    let kinds: Vec<&str> = events.iter().map(Event::kind).collect();
    assert_eq!(
        kinds,
        vec!["task_kill_requested", "task_updated", "task_completed", "framework_removed"]
    );
    match &events[1] {
        Event::TaskUpdated { status, .. } => {
            assert_eq!(status.state, TaskState::Killed);
            assert_eq!(status.uuid, None);
        }
        other => panic!("{other:?}"),
    }
    assert!(world.state.frameworks().is_empty());
    let agent = world.state.agent(&agent_id).unwrap();
    assert!(agent.allocated.is_empty());
    assert!(agent.tasks.is_empty());
    let rejection = world.rejected(
        Actor::Framework(framework_id.clone()),
        Command::Subscribe {
            framework_id: Some(framework_id.clone()),
            info: framework_info("f", &["*"]),
        },
    );
    assert_eq!(rejection, Rejection::FrameworkRemoved(framework_id));
}

#[test]
fn suppress_and_revive_steer_offers_and_revive_clears_filters() {
    let mut world = World::new();
    let agent_id = world.add_agent("h1", "cpus:4;mem:1024");
    let framework_id = world.subscribe("f", &["*"]);
    let offer_id = world.offer(&framework_id, &agent_id, "*", "cpus:4;mem:1024");
    world.as_framework(
        &framework_id,
        Command::Decline {
            framework_id: framework_id.clone(),
            offer_ids: vec![offer_id],
            filters: Filters { refuse: Duration::from_secs(3600) },
        },
    );
    assert_eq!(world.state.framework(&framework_id).unwrap().filters.len(), 1);

    let events = world.as_framework(
        &framework_id,
        Command::Suppress { framework_id: framework_id.clone(), roles: vec![] },
    );
    assert_eq!(
        events,
        vec![Event::FrameworkSuppressed {
            framework_id: framework_id.clone(),
            roles: vec![role("*")]
        }]
    );
    let rejection = world.rejected(
        Actor::Framework(framework_id.clone()),
        Command::Suppress { framework_id: framework_id.clone(), roles: vec![role("other")] },
    );
    assert_eq!(
        rejection,
        Rejection::RoleNotSubscribed { framework_id: framework_id.clone(), role: role("other") }
    );

    let events = world.as_framework(
        &framework_id,
        Command::Revive { framework_id: framework_id.clone(), roles: vec![role("*")] },
    );
    assert_eq!(
        events,
        vec![Event::FrameworkRevived {
            framework_id: framework_id.clone(),
            roles: vec![role("*")]
        }]
    );
    let framework = world.state.framework(&framework_id).unwrap();
    assert!(framework.suppressed_roles.is_empty());
    assert!(framework.filters.is_empty());
    world.offer(&framework_id, &agent_id, "*", "cpus:4;mem:1024");
}

#[test]
fn messages_flow_both_ways() {
    let mut world = World::new();
    let agent_id = world.add_agent("h1", "cpus:4;mem:1024");
    let framework_id = world.subscribe("f", &["*"]);
    let events = world.as_framework(
        &framework_id,
        Command::Message {
            framework_id: framework_id.clone(),
            agent_id: agent_id.clone(),
            executor_id: "e".into(),
            data: b"hi".to_vec(),
        },
    );
    assert_eq!(events[0].kind(), "message_to_executor");
    let events = world.as_agent(
        &agent_id,
        Command::ExecutorMessage {
            agent_id: agent_id.clone(),
            framework_id: framework_id.clone(),
            executor_id: "e".into(),
            data: b"yo".to_vec(),
        },
    );
    assert_eq!(events[0].kind(), "message_to_framework");
    assert_eq!(events[0].framework_id(), Some(&framework_id));
}
