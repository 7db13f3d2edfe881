use std::time::Duration;

use corral_state::model::{ExecutorInfo, Filters, TaskReason, TaskState};
use corral_state::{Actor, Command, Event, OfferId, OfferSpec, Operation, Rejection};

use super::support::{assert_not_overcommitted, dynamic, res, role, task_info, World};

#[test]
fn offers_hold_resources_until_used() {
    let mut world = World::new();
    let agent_id = world.add_agent("h1", "cpus:4;mem:1024;ports:[31000-31009]");
    let framework_id = world.subscribe("f", &["*"]);
    let spec = OfferSpec {
        framework_id: framework_id.clone(),
        agent_id: agent_id.clone(),
        role: role("*"),
        resources: res("cpus:3;mem:512"),
    };
    let events = world.leader(Command::OfferResources { offers: vec![spec] });
    let [Event::OfferCreated { offer }] = &events[..] else { panic!("{events:?}") };
    assert_eq!(offer.id, OfferId::new("corral-O1"));
    assert_eq!(offer.hostname, "h1");
    assert_eq!(offer.created_at, world.clock);
    let agent = world.state.agent(&agent_id).unwrap();
    assert_eq!(agent.offered, res("cpus:3;mem:512"));
    assert_eq!(agent.free(), res("cpus:1;mem:512;ports:[31000-31009]"));
}

#[test]
fn offers_that_no_longer_fit_are_skipped() {
    let mut world = World::new();
    let agent_id = world.add_agent("h1", "cpus:4;mem:1024");
    let framework_id = world.subscribe("f", &["*"]);
    world.offer(&framework_id, &agent_id, "*", "cpus:3");
    let too_big = OfferSpec {
        framework_id: framework_id.clone(),
        agent_id: agent_id.clone(),
        role: role("*"),
        resources: res("cpus:2"),
    };
    let fits = OfferSpec {
        framework_id: framework_id.clone(),
        agent_id: agent_id.clone(),
        role: role("*"),
        resources: res("cpus:1"),
    };
    let wrong_role = OfferSpec {
        framework_id: framework_id.clone(),
        agent_id: agent_id.clone(),
        role: role("eng"),
        resources: res("mem:1"),
    };
    let events = world.leader(Command::OfferResources { offers: vec![too_big, fits, wrong_role] });
    assert_eq!(events.len(), 1);
    assert_not_overcommitted(&world.state);
    let rejection = world
        .rejected(Actor::Operator { principal: None }, Command::OfferResources { offers: vec![] });
    assert!(matches!(rejection, Rejection::NotPermitted { .. }));
}

/// An ACCEPT that leaves no refusal filter, so the test can offer the same agent again.
fn accept(
    framework_id: &corral_state::FrameworkId,
    offer_id: OfferId,
    operations: Vec<Operation>,
) -> Command {
    Command::Accept {
        framework_id: framework_id.clone(),
        offer_ids: vec![offer_id],
        operations,
        filters: Filters { refuse: Duration::ZERO },
    }
}

#[test]
fn accepting_launches_tasks_and_filters_the_rest_for_refuse_seconds() {
    let mut world = World::new();
    let agent_id = world.add_agent("h1", "cpus:4;mem:1024");
    let framework_id = world.subscribe("f", &["*"]);
    let offer_id = world.offer(&framework_id, &agent_id, "*", "cpus:4;mem:1024");
    let launch =
        vec![Operation::Launch { task_infos: vec![task_info("t1", &agent_id, "cpus:1;mem:256")] }];
    let events = world.as_framework(
        &framework_id,
        Command::Accept {
            framework_id: framework_id.clone(),
            offer_ids: vec![offer_id.clone()],
            operations: launch,
            filters: Filters::default(),
        },
    );
    let kinds: Vec<&str> = events.iter().map(Event::kind).collect();
    assert_eq!(kinds, vec!["offer_accepted", "task_added", "offer_filter_added"]);
    assert_eq!(
        events[0],
        Event::OfferAccepted {
            offer_id,
            framework_id: framework_id.clone(),
            agent_id: agent_id.clone()
        }
    );
    let Event::TaskAdded { task } = &events[1] else { panic!() };
    assert_eq!(task.state, TaskState::Staging);
    assert_eq!(task.role, role("*"));
    assert_eq!(
        events[2],
        Event::OfferFilterAdded {
            framework_id: framework_id.clone(),
            agent_id: agent_id.clone(),
            resources: res("cpus:3;mem:768"),
            until: world.clock.plus(Filters::DEFAULT_REFUSE),
        }
    );
    let agent = world.state.agent(&agent_id).unwrap();
    assert_eq!(agent.allocated, res("cpus:1;mem:256"));
    assert!(agent.offered.is_empty());
    assert!(world.state.offers().is_empty());
}

#[test]
fn accepting_unknown_or_foreign_offers_changes_nothing() {
    let mut world = World::new();
    let agent_id = world.add_agent("h1", "cpus:4;mem:1024");
    let first = world.subscribe("a", &["*"]);
    let second = world.subscribe("b", &["*"]);
    let offer_id = world.offer(&first, &agent_id, "*", "cpus:1;mem:128");
    let launch =
        vec![Operation::Launch { task_infos: vec![task_info("t", &agent_id, "cpus:1;mem:128")] }];
    let rejection = world.rejected(
        Actor::Framework(first.clone()),
        accept(&first, "corral-O99".into(), launch.clone()),
    );
    assert_eq!(rejection, Rejection::UnknownOffer("corral-O99".into()));
    assert_eq!(rejection.to_string(), "unknown offer corral-O99");
    let rejection =
        world.rejected(Actor::Framework(second.clone()), accept(&second, offer_id.clone(), launch));
    assert_eq!(rejection, Rejection::OfferNotOwned { offer_id, owner: first, claimed: second });
}

#[test]
fn a_launch_bigger_than_the_offer_is_dropped_with_an_error() {
    let mut world = World::new();
    let agent_id = world.add_agent("h1", "cpus:4;mem:1024");
    let framework_id = world.subscribe("f", &["*"]);
    let offer_id = world.offer(&framework_id, &agent_id, "*", "cpus:1;mem:128");
    let events = world.as_framework(
        &framework_id,
        Command::Accept {
            framework_id: framework_id.clone(),
            offer_ids: vec![offer_id],
            operations: vec![Operation::Launch {
                task_infos: vec![
                    task_info("big", &agent_id, "cpus:2;mem:128"),
                    task_info("small", &agent_id, "cpus:0.5;mem:64"),
                ],
            }],
            filters: Filters { refuse: Duration::ZERO },
        },
    );
    let kinds: Vec<&str> = events.iter().map(Event::kind).collect();
    assert_eq!(kinds, vec!["offer_accepted", "task_dropped", "task_added"]);
    let Event::TaskDropped { status, .. } = &events[1] else { panic!() };
    assert_eq!(status.state, TaskState::Error);
    assert_eq!(status.reason, Some(TaskReason::TaskInvalid));
    assert_eq!(
        status.message.as_deref(),
        Some("task uses more than the offers hold: not enough cpus: needed 2, available 1")
    );
    assert_eq!(world.state.agent(&agent_id).unwrap().allocated, res("cpus:0.5;mem:64"));
    assert_not_overcommitted(&world.state);
}

#[test]
fn duplicate_task_ids_and_shapeless_tasks_are_dropped() {
    let mut world = World::new();
    let agent_id = world.add_agent("h1", "cpus:4;mem:1024");
    let framework_id = world.subscribe("f", &["*"]);
    world.launch(&framework_id, &agent_id, "t1", "cpus:1;mem:128");
    let offer_id = world.offer(&framework_id, &agent_id, "*", "cpus:1;mem:128");
    let mut no_command = task_info("t2", &agent_id, "cpus:0.5;mem:64");
    no_command.command = None;
    let events = world.as_framework(
        &framework_id,
        accept(
            &framework_id,
            offer_id,
            vec![Operation::Launch {
                task_infos: vec![task_info("t1", &agent_id, "cpus:0.5;mem:64"), no_command],
            }],
        ),
    );
    let messages: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            Event::TaskDropped { status, .. } => status.message.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(
        messages,
        vec![
            "task id t1 is already in use".to_owned(),
            "task needs a command or an executor".to_owned()
        ]
    );
}

#[test]
fn declining_returns_resources_and_adds_a_filter() {
    let mut world = World::new();
    let agent_id = world.add_agent("h1", "cpus:4;mem:1024");
    let framework_id = world.subscribe("f", &["*"]);
    let offer_id = world.offer(&framework_id, &agent_id, "*", "cpus:4;mem:1024");
    let events = world.as_framework(
        &framework_id,
        Command::Decline {
            framework_id: framework_id.clone(),
            offer_ids: vec![offer_id.clone()],
            filters: Filters { refuse: Duration::from_secs(10) },
        },
    );
    assert_eq!(
        events,
        vec![
            Event::OfferDeclined {
                offer_id,
                framework_id: framework_id.clone(),
                agent_id: agent_id.clone()
            },
            Event::OfferFilterAdded {
                framework_id: framework_id.clone(),
                agent_id: agent_id.clone(),
                resources: res("cpus:4;mem:1024"),
                until: world.clock.plus(Duration::from_secs(10)),
            },
        ]
    );
    // The state itself refuses to re-offer the declined resources before the filter expires.
    let spec = OfferSpec {
        framework_id: framework_id.clone(),
        agent_id: agent_id.clone(),
        role: role("*"),
        resources: res("cpus:4;mem:1024"),
    };
    assert!(world.state.check_offer_spec(&spec).is_err());
    world.advance(Duration::from_secs(10));
    assert_eq!(
        world.state.check_offer_spec(&spec),
        Err(Rejection::invalid(
            "agent_id",
            "the framework refused these resources until its filter expires"
        ))
    );
    world.leader(Command::Tick);
    assert_eq!(world.state.check_offer_spec(&spec), Ok(()));
}

#[test]
fn a_task_group_launches_whole_and_its_executor_counts_once() {
    let mut world = World::new();
    let agent_id = world.add_agent("h1", "cpus:4;mem:1024");
    let framework_id = world.subscribe("f", &["*"]);
    let executor = ExecutorInfo {
        executor_id: "ex".into(),
        name: None,
        command: None,
        container: None,
        resources: res("cpus:0.1;mem:32"),
    };
    let group = |ids: &[&str], cpus: &str| Operation::LaunchGroup {
        executor: Box::new(executor.clone()),
        task_infos: ids
            .iter()
            .map(|id| task_info(id, &agent_id, &format!("cpus:{cpus};mem:64")))
            .collect(),
    };
    let offer_id = world.offer(&framework_id, &agent_id, "*", "cpus:1;mem:256");
    let events = world.as_framework(
        &framework_id,
        accept(&framework_id, offer_id, vec![group(&["g1", "g2"], "5")]),
    );
    assert_eq!(events.iter().filter(|e| e.kind() == "task_dropped").count(), 2);
    assert!(world.state.executors().is_empty());

    let offer_id = world.offer(&framework_id, &agent_id, "*", "cpus:1;mem:256");
    let events = world.as_framework(
        &framework_id,
        accept(&framework_id, offer_id, vec![group(&["g1", "g2"], "0.2")]),
    );
    assert_eq!(events.iter().filter(|e| e.kind() == "task_added").count(), 2);
    assert_eq!(world.state.agent(&agent_id).unwrap().allocated, res("cpus:0.5;mem:160"));
    world.report(&framework_id, &agent_id, "g1", TaskState::Finished, "u1");
    world.report(&framework_id, &agent_id, "g2", TaskState::Finished, "u2");
    assert!(world.state.agent(&agent_id).unwrap().allocated.is_empty());
    assert!(world.state.executors().is_empty());
}

#[test]
fn a_framework_can_reserve_from_its_offer() {
    let mut world = World::new();
    let agent_id = world.add_agent("h1", "cpus:4;mem:1024");
    let framework_id = world.subscribe("f", &["eng"]);
    let offer_id = world.offer(&framework_id, &agent_id, "eng", "cpus:4;mem:1024");
    let reserved = dynamic("cpus:2", "eng");
    let mut task = task_info("t", &agent_id, "cpus:1;mem:128");
    task.resources = dynamic("cpus:1", "eng").plus(&res("mem:128"));
    let events = world.as_framework(
        &framework_id,
        accept(
            &framework_id,
            offer_id,
            vec![
                Operation::Reserve { resources: reserved.clone() },
                Operation::Launch { task_infos: vec![task] },
            ],
        ),
    );
    assert!(events.contains(&Event::ResourcesReserved {
        agent_id: agent_id.clone(),
        resources: reserved.clone()
    }));
    assert!(events.iter().any(|e| e.kind() == "task_added"));
    let agent = world.state.agent(&agent_id).unwrap();
    assert_eq!(agent.total, res("cpus:2;mem:1024").plus(&reserved));
    assert_not_overcommitted(&world.state);

    // Reserving for a role the offer is not for is refused.
    let offer_id = world.offer(&framework_id, &agent_id, "eng", "cpus:1");
    let other = dynamic("cpus:1", "ops");
    let rejection = world.rejected(
        Actor::Framework(framework_id.clone()),
        accept(&framework_id, offer_id, vec![Operation::Reserve { resources: other }]),
    );
    assert!(rejection.to_string().contains("only for the offer's role"), "{rejection}");
}

#[test]
fn the_leader_can_rescind_offers() {
    let mut world = World::new();
    let agent_id = world.add_agent("h1", "cpus:4;mem:1024");
    let framework_id = world.subscribe("f", &["*"]);
    let offer_id = world.offer(&framework_id, &agent_id, "*", "cpus:4");
    let rejection = world.rejected(
        Actor::Leader,
        Command::RescindOffers { offer_ids: vec![offer_id.clone(), "corral-O7".into()] },
    );
    assert_eq!(rejection, Rejection::UnknownOffer("corral-O7".into()));
    let events = world.leader(Command::RescindOffers { offer_ids: vec![offer_id] });
    assert_eq!(events.len(), 1);
    assert!(world.state.agent(&agent_id).unwrap().offered.is_empty());
}
