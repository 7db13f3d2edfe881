use corral_state::model::{KillPolicy, TaskSource, TaskState};
use corral_state::{
    Actor, Command, Entry, Event, Outcome, Rejection, RequestId, TaskId, UpdateUuid,
};

use super::support::{agent_status, World};

#[test]
fn updates_are_tracked_until_acknowledged_and_terminal_frees_resources() {
    let mut world = World::new();
    let agent_id = world.add_agent("h1", "cpus:4;mem:1024");
    let framework_id = world.subscribe("f", &["*"]);
    world.launch(&framework_id, &agent_id, "t1", "cpus:1;mem:128");

    let Outcome::Accepted(events) =
        world.report(&framework_id, &agent_id, "t1", TaskState::Running, "u1")
    else {
        panic!()
    };
    let [Event::TaskUpdated { status, previous: TaskState::Staging, .. }] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(status.timestamp, world.clock);
    let framework = world.state.framework(&framework_id).unwrap();
    assert_eq!(framework.pending_updates[&TaskId::new("t1")].len(), 1);

    world.report(&framework_id, &agent_id, "t1", TaskState::Finished, "u2");
    assert!(
        world.state.agent(&agent_id).unwrap().allocated.is_empty(),
        "terminal updates free resources at once"
    );
    assert!(
        world.state.task(&framework_id, &TaskId::new("t1")).is_some(),
        "kept until acknowledged"
    );

    let events = world.ack(&framework_id, &agent_id, "t1", "u1");
    assert_eq!(events.len(), 1);
    let events = world.ack(&framework_id, &agent_id, "t1", "u2");
    assert_eq!(
        events.iter().map(Event::kind).collect::<Vec<_>>(),
        vec!["status_acknowledged", "task_completed"]
    );
    assert!(world.state.task(&framework_id, &TaskId::new("t1")).is_none());
    let framework = world.state.framework(&framework_id).unwrap();
    assert_eq!(framework.completed_tasks.len(), 1);
    assert!(world.state.agent(&agent_id).unwrap().tasks.is_empty());
}

#[test]
fn a_terminal_state_never_changes() {
    let mut world = World::new();
    let agent_id = world.add_agent("h1", "cpus:4;mem:1024");
    let framework_id = world.subscribe("f", &["*"]);
    world.launch(&framework_id, &agent_id, "t1", "cpus:1;mem:128");
    world.report(&framework_id, &agent_id, "t1", TaskState::Failed, "u1");
    for next in [TaskState::Running, TaskState::Finished, TaskState::Killed] {
        let status = agent_status("t1", &agent_id, next, "u-again");
        let rejection = world.rejected(
            Actor::Agent(agent_id.clone()),
            Command::UpdateStatus { framework_id: framework_id.clone(), status },
        );
        assert_eq!(
            rejection,
            Rejection::InvalidTransition {
                task_id: TaskId::new("t1"),
                from: TaskState::Failed,
                to: next
            }
        );
    }
    assert_eq!(
        Rejection::InvalidTransition {
            task_id: TaskId::new("t1"),
            from: TaskState::Failed,
            to: TaskState::Running
        }
        .to_string(),
        "task t1 cannot go from TASK_FAILED to TASK_RUNNING"
    );
}

#[test]
fn updates_from_the_wrong_agent_or_in_the_masters_name_are_refused() {
    let mut world = World::new();
    let agent_id = world.add_agent("h1", "cpus:4;mem:1024");
    let other = world.add_agent("h2", "cpus:4;mem:1024");
    let framework_id = world.subscribe("f", &["*"]);
    world.launch(&framework_id, &agent_id, "t1", "cpus:1;mem:128");

    let status = agent_status("t1", &other, TaskState::Running, "u1");
    let rejection = world.rejected(
        Actor::Agent(other.clone()),
        Command::UpdateStatus { framework_id: framework_id.clone(), status },
    );
    assert_eq!(
        rejection,
        Rejection::WrongAgent {
            task_id: TaskId::new("t1"),
            claimed: other.clone(),
            actual: agent_id.clone()
        }
    );

    let status = agent_status("t1", &agent_id, TaskState::Running, "u1");
    let rejection = world.rejected(
        Actor::Agent(other),
        Command::UpdateStatus { framework_id: framework_id.clone(), status },
    );
    assert!(matches!(rejection, Rejection::NotPermitted { .. }));

    let mut status = agent_status("t1", &agent_id, TaskState::Running, "u1");
    status.source = TaskSource::Master;
    let rejection = world.rejected(
        Actor::Agent(agent_id.clone()),
        Command::UpdateStatus { framework_id: framework_id.clone(), status },
    );
    assert_eq!(
        rejection,
        Rejection::invalid("status.source", "agents report SOURCE_AGENT or SOURCE_EXECUTOR")
    );

    let status = agent_status("nope", &agent_id, TaskState::Running, "u1");
    let rejection = world.rejected(
        Actor::Agent(agent_id.clone()),
        Command::UpdateStatus { framework_id: framework_id.clone(), status },
    );
    assert_eq!(rejection, Rejection::UnknownTask { framework_id, task_id: TaskId::new("nope") });
}

#[test]
fn acknowledging_an_unknown_update_is_refused() {
    let mut world = World::new();
    let agent_id = world.add_agent("h1", "cpus:4;mem:1024");
    let framework_id = world.subscribe("f", &["*"]);
    world.launch(&framework_id, &agent_id, "t1", "cpus:1;mem:128");
    world.report(&framework_id, &agent_id, "t1", TaskState::Running, "u1");
    let rejection = world.rejected(
        Actor::Framework(framework_id.clone()),
        Command::Acknowledge {
            framework_id: framework_id.clone(),
            agent_id: agent_id.clone(),
            task_id: TaskId::new("t1"),
            uuid: UpdateUuid::new("zzz"),
        },
    );
    assert_eq!(
        rejection,
        Rejection::UnknownUpdate { task_id: TaskId::new("t1"), uuid: UpdateUuid::new("zzz") }
    );
}

#[test]
fn kill_asks_the_agent_with_the_policy() {
    let mut world = World::new();
    let agent_id = world.add_agent("h1", "cpus:4;mem:1024");
    let framework_id = world.subscribe("f", &["*"]);
    world.launch(&framework_id, &agent_id, "t1", "cpus:1;mem:128");
    let policy = KillPolicy { grace_period: Some(std::time::Duration::from_secs(7)) };
    let events = world.as_framework(
        &framework_id,
        Command::Kill {
            framework_id: framework_id.clone(),
            task_id: TaskId::new("t1"),
            agent_id: Some(agent_id.clone()),
            kill_policy: Some(policy),
        },
    );
    assert_eq!(
        events,
        vec![Event::TaskKillRequested {
            framework_id: framework_id.clone(),
            task_id: TaskId::new("t1"),
            agent_id: agent_id.clone(),
            kill_policy: Some(policy)
        }]
    );
    assert_eq!(
        world.state.task(&framework_id, &TaskId::new("t1")).unwrap().kill_requested,
        Some(policy)
    );
    world.report(&framework_id, &agent_id, "t1", TaskState::Killing, "u1");
    world.report(&framework_id, &agent_id, "t1", TaskState::Killed, "u2");
    let rejection = world.rejected(
        Actor::Framework(framework_id.clone()),
        Command::Kill {
            framework_id: framework_id.clone(),
            task_id: TaskId::new("t1"),
            agent_id: None,
            kill_policy: None,
        },
    );
    assert!(matches!(rejection, Rejection::InvalidTransition { from: TaskState::Killed, .. }));
    let rejection = world.rejected(
        Actor::Framework(framework_id.clone()),
        Command::Kill {
            framework_id: framework_id.clone(),
            task_id: TaskId::new("other"),
            agent_id: None,
            kill_policy: None,
        },
    );
    assert_eq!(rejection, Rejection::UnknownTask { framework_id, task_id: TaskId::new("other") });
}

#[test]
fn killing_cannot_go_back_to_running() {
    assert!(!TaskState::Killing.may_become(TaskState::Running));
    assert!(TaskState::Staging.may_become(TaskState::Running));
    assert!(!TaskState::Running.may_become(TaskState::Starting));
    assert!(TaskState::Lost.may_become(TaskState::Finished));
    assert!(!TaskState::Lost.may_become(TaskState::Running));
    for state in TaskState::ALL {
        assert!(!state.may_become(TaskState::Staging));
        if state.is_terminal() && state != TaskState::Lost {
            assert!(TaskState::ALL.iter().all(|next| !state.may_become(*next)), "{state:?}");
        }
    }
}

#[test]
fn reconciliation_answers_latest_states_without_uuids() {
    let mut world = World::new();
    let agent_id = world.add_agent("h1", "cpus:4;mem:1024");
    let framework_id = world.subscribe("f", &["*"]);
    world.launch(&framework_id, &agent_id, "t1", "cpus:1;mem:128");
    world.launch(&framework_id, &agent_id, "t2", "cpus:1;mem:128");
    world.report(&framework_id, &agent_id, "t1", TaskState::Running, "u1");

    let events = world.as_framework(
        &framework_id,
        Command::Reconcile { framework_id: framework_id.clone(), tasks: vec![] },
    );
    let states: Vec<(String, TaskState, bool)> = events
        .iter()
        .map(|e| match e {
            Event::TaskReconciled { status, .. } => {
                (status.task_id.to_string(), status.state, status.uuid.is_none())
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        states,
        vec![
            ("t1".to_owned(), TaskState::Running, true),
            ("t2".to_owned(), TaskState::Staging, true)
        ]
    );

    let events = world.as_framework(
        &framework_id,
        Command::Reconcile {
            framework_id: framework_id.clone(),
            tasks: vec![(TaskId::new("t1"), None), (TaskId::new("ghost"), Some(agent_id.clone()))],
        },
    );
    let states: Vec<TaskState> = events
        .iter()
        .map(|e| match e {
            Event::TaskReconciled { status, .. } => status.state,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(states, vec![TaskState::Running, TaskState::Lost]);
}

#[test]
fn a_retried_request_returns_the_first_outcome_and_changes_nothing() {
    let mut world = World::new();
    let agent_id = world.add_agent("h1", "cpus:4;mem:1024");
    let framework_id = world.subscribe("f", &["*"]);
    world.launch(&framework_id, &agent_id, "t1", "cpus:1;mem:128");
    let entry = Entry {
        request_id: RequestId::new("status-u1"),
        actor: Actor::Agent(agent_id.clone()),
        at: world.clock,
        command: Command::UpdateStatus {
            framework_id: framework_id.clone(),
            status: agent_status("t1", &agent_id, TaskState::Running, "u1"),
        },
    };
    let first = world.state.apply(&entry);
    assert!(matches!(first, Outcome::Accepted(ref events) if events.len() == 1));
    let before = world.state.without_bookkeeping();
    let second = world.state.apply(&entry);
    // The verdict is remembered; the events went out once, with the first application.
    assert_eq!(second, Outcome::Duplicate(Box::new(Outcome::Accepted(vec![]))));
    assert!(second.events().is_empty());
    assert_eq!(world.state.without_bookkeeping(), before);
    assert_eq!(
        world.state.framework(&framework_id).unwrap().pending_updates[&TaskId::new("t1")].len(),
        1
    );
}

#[test]
fn a_retried_subscribe_returns_the_framework_id_it_was_given() {
    let mut world = World::new();
    let entry = Entry {
        request_id: RequestId::new("subscribe-1"),
        actor: Actor::Leader,
        at: world.clock,
        command: Command::Subscribe {
            framework_id: None,
            info: super::support::framework_info("f", &["*"]),
        },
    };
    let first = world.state.apply(&entry);
    let second = world.state.apply(&entry);
    assert_eq!(second.original(), &first);
    assert!(matches!(second.original().events(), [Event::FrameworkAdded { .. }]));
    assert_eq!(world.state.frameworks().len(), 1);
}
