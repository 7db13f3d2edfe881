//! Long-running services: apps, deployments, the built-in framework's launches and kills.

use std::time::Duration;

use corral_state::model::{
    AppSpec, Backoff, DeploymentAction, Filters, FrameworkCapability, InstanceCounts, ReportedTask,
    TaskState, UnreachablePolicy, UpgradeBounds,
};
use corral_state::{
    Actor, AgentId, AppId, AppPut, Cancellation, Command, DeploymentId, Event, Force, KillScaling,
    OfferSpec, PutMode, Rejection, ServiceLaunch, TaskId, Timestamp, Wipe,
};

use super::support::{agent_status, comparable, res, role, spec, task_info, World};

fn app(text: &str) -> AppId {
    AppId::new(text)
}

fn deployment(text: &str) -> DeploymentId {
    DeploymentId::new(text)
}

fn put(app_id: &str, spec: AppSpec, definition: &str, force: Force, id: &str) -> Command {
    Command::PutApp {
        app_id: app(app_id),
        spec,
        definition: definition.to_owned(),
        mode: PutMode::CreateOrReplace,
        force,
        deployment_id: deployment(id),
    }
}

/// A world with one agent and the app `/web` created with `instances`.
fn world_with_app(instances: u32) -> (World, AgentId) {
    let mut world = World::new();
    let agent_id = world.add_agent("host-a", "cpus:8;mem:8192;ports:[31000-31010]");
    world.operator(put("/web", spec(instances), r#"{"cmd":"v1"}"#, Force::No, "d1"));
    (world, agent_id)
}

/// Offers `resources` of the agent to the service framework and launches `task_ids` from
/// it, at the app's current configuration.
fn launch(world: &mut World, agent_id: &AgentId, task_ids: &[&str]) -> Vec<Event> {
    let outcome = try_launch(world, agent_id, task_ids);
    match outcome {
        corral_state::Outcome::Accepted(events) => events,
        other => panic!("launch refused: {other:?}"),
    }
}

fn try_launch(world: &mut World, agent_id: &AgentId, task_ids: &[&str]) -> corral_state::Outcome {
    let framework_id = world.state.service_framework_id();
    let config_version = world.state.services().app(&app("/web")).unwrap().config_version;
    let spec = OfferSpec {
        framework_id,
        agent_id: agent_id.clone(),
        role: role("*"),
        resources: res(&format!("cpus:{};mem:{}", task_ids.len(), 128 * task_ids.len())),
    };
    let offer_id = match &world.leader(Command::OfferResources { offers: vec![spec] })[..] {
        [Event::OfferCreated { offer }] => offer.id.clone(),
        other => panic!("no offer: {other:?}"),
    };
    let launches = task_ids
        .iter()
        .map(|task_id| ServiceLaunch {
            app_id: app("/web"),
            config_version,
            task_info: task_info(task_id, agent_id, "cpus:1;mem:128"),
        })
        .collect();
    world.apply(
        Actor::Leader,
        Command::LaunchServiceTasks {
            offer_ids: vec![offer_id],
            launches,
            filters: Filters::default(),
        },
    )
}

fn report(world: &mut World, agent_id: &AgentId, task_id: &str, state: TaskState) -> Vec<Event> {
    let framework_id = world.state.service_framework_id();
    let uuid = format!("{task_id}-{}", world.state.applied_commands());
    let status = agent_status(task_id, agent_id, state, &uuid);
    world.as_agent(agent_id, Command::UpdateStatus { framework_id, status })
}

fn report_healthy(
    world: &mut World,
    agent_id: &AgentId,
    task_id: &str,
    healthy: bool,
) -> Vec<Event> {
    let framework_id = world.state.service_framework_id();
    let uuid = format!("{task_id}-{}", world.state.applied_commands());
    let mut status = agent_status(task_id, agent_id, TaskState::Running, &uuid);
    status.healthy = Some(healthy);
    world.as_agent(agent_id, Command::UpdateStatus { framework_id, status })
}

fn succeeded(events: &[Event]) -> Vec<DeploymentId> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::DeploymentSucceeded { deployment_id, .. } => Some(deployment_id.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn the_first_app_creates_the_builtin_framework_and_a_start_deployment() {
    let mut world = World::new();
    let events = world.operator(put("/web", spec(2), r#"{"cmd":"v1"}"#, Force::No, "d1"));
    let framework_id = world.state.service_framework_id();
    let version = world.clock;
    match &events[..] {
        [Event::FrameworkAdded { framework_id: added, info }, Event::AppUpdated { app_id, revision, created: true }, Event::DeploymentStarted { deployment }] =>
        {
            assert_eq!(added, &framework_id);
            assert_eq!(info.roles, vec![role("*")]);
            assert!(info.capabilities.contains(&FrameworkCapability::MultiRole));
            assert_eq!(app_id, &app("/web"));
            assert_eq!((revision.version, revision.config_version), (version, version));
            assert_eq!(deployment.id, deployment_id_of("d1"));
            assert_eq!(deployment.action, DeploymentAction::StartApplication);
            assert_eq!(deployment.previous, None);
        }
        other => panic!("unexpected events {other:?}"),
    }
    let web = world.state.services().app(&app("/web")).unwrap();
    assert_eq!((web.version, web.config_version, web.versions.len()), (version, version, 1));
    assert!(world.state.framework(&framework_id).unwrap().is_connected());
}

fn deployment_id_of(text: &str) -> DeploymentId {
    deployment(text)
}

#[test]
fn creating_an_existing_app_is_refused_and_changes_nothing() {
    let (mut world, _) = world_with_app(1);
    let command = Command::PutApp {
        app_id: app("/web"),
        spec: spec(3),
        definition: r#"{"cmd":"v2"}"#.to_owned(),
        mode: PutMode::Create,
        force: Force::Yes,
        deployment_id: deployment("d2"),
    };
    let rejection = world.rejected(Actor::Operator { principal: None }, command);
    assert_eq!(rejection, Rejection::AppExists(app("/web")));
}

#[test]
fn invalid_app_ids_and_specs_are_refused() {
    let mut world = World::new();
    for bad in ["web", "/", "/web/", "/Web", "/a//b", "/a_b"] {
        let rejection = world
            .rejected(Actor::Operator { principal: None }, put(bad, spec(1), "{}", Force::No, "d"));
        assert!(
            matches!(&rejection, Rejection::Invalid { field, .. } if field == "app_id"),
            "{bad}: {rejection:?}"
        );
    }
    let mut lenient = spec(1);
    lenient.backoff.factor_permille = 500;
    let rejection = world
        .rejected(Actor::Operator { principal: None }, put("/web", lenient, "{}", Force::No, "d"));
    assert!(
        matches!(rejection, Rejection::Invalid { field, .. } if field == "spec.backoff.factor_permille")
    );
    let rejection = world.rejected(
        Actor::Framework(corral_state::FrameworkId::new("f")),
        put("/web", spec(1), "{}", Force::No, "d"),
    );
    assert!(matches!(rejection, Rejection::NotPermitted { .. }));
}

#[test]
fn the_deployment_succeeds_when_every_instance_runs() {
    let (mut world, agent_id) = world_with_app(2);
    let events = launch(&mut world, &agent_id, &["web.1", "web.2"]);
    assert_eq!(events.iter().filter(|e| matches!(e, Event::TaskAdded { .. })).count(), 2);
    assert_eq!(world.state.services().instances_of(&app("/web")).count(), 2);
    assert!(succeeded(&report(&mut world, &agent_id, "web.1", TaskState::Running)).is_empty());
    assert_eq!(
        succeeded(&report(&mut world, &agent_id, "web.2", TaskState::Running)),
        vec![deployment("d1")]
    );
    assert!(world.state.services().deployments.is_empty());
    // Nobody acknowledges the built-in framework's updates: nothing is left pending.
    let framework = world.state.framework(&world.state.service_framework_id()).unwrap();
    assert!(framework.pending_updates.is_empty());
}

#[test]
fn a_health_checked_app_deploys_only_once_its_instances_are_healthy() {
    let mut world = World::new();
    let agent_id = world.add_agent("host-a", "cpus:8;mem:8192");
    let mut checked = spec(1);
    checked.health_checked = true;
    world.operator(put("/web", checked, r#"{"cmd":"v1"}"#, Force::No, "d1"));
    launch(&mut world, &agent_id, &["web.1"]);
    assert!(succeeded(&report(&mut world, &agent_id, "web.1", TaskState::Running)).is_empty());
    assert!(succeeded(&report_healthy(&mut world, &agent_id, "web.1", false)).is_empty());
    assert_eq!(
        succeeded(&report_healthy(&mut world, &agent_id, "web.1", true)),
        vec![deployment("d1")]
    );
}

#[test]
fn launches_beyond_the_instance_count_are_refused_so_no_instance_starts_twice() {
    let (mut world, agent_id) = world_with_app(2);
    launch(&mut world, &agent_id, &["web.1", "web.2"]);
    // A deposed leader's plan for the same instances arrives after its successor's.
    let before = world.state.services().clone();
    let outcome = try_launch(&mut world, &agent_id, &["web.3"]);
    assert!(
        matches!(outcome, corral_state::Outcome::Rejected(Rejection::Invalid { ref field, .. }) if field == "launches"),
        "{outcome:?}"
    );
    assert_eq!(world.state.services(), &before);
}

#[test]
fn a_launch_of_a_stale_configuration_is_refused() {
    let (mut world, agent_id) = world_with_app(1);
    let old = world.state.services().app(&app("/web")).unwrap().config_version;
    world.advance(Duration::from_secs(1));
    world.operator(put("/web", spec(1), r#"{"cmd":"v2"}"#, Force::Yes, "d2"));
    let spec = OfferSpec {
        framework_id: world.state.service_framework_id(),
        agent_id: agent_id.clone(),
        role: role("*"),
        resources: res("cpus:1;mem:128"),
    };
    let offer_id = match &world.leader(Command::OfferResources { offers: vec![spec] })[..] {
        [Event::OfferCreated { offer }] => offer.id.clone(),
        other => panic!("{other:?}"),
    };
    let launches = vec![ServiceLaunch {
        app_id: app("/web"),
        config_version: old,
        task_info: task_info("web.1", &agent_id, "cpus:1;mem:128"),
    }];
    let rejection = world.rejected(
        Actor::Leader,
        Command::LaunchServiceTasks {
            offer_ids: vec![offer_id],
            launches,
            filters: Filters::default(),
        },
    );
    assert!(
        matches!(rejection, Rejection::Invalid { field, .. } if field == "launches[0].config_version")
    );
}

#[test]
fn task_ids_must_carry_the_app_prefix() {
    let (mut world, agent_id) = world_with_app(1);
    let outcome = try_launch(&mut world, &agent_id, &["other.1"]);
    assert!(
        matches!(outcome, corral_state::Outcome::Rejected(Rejection::Invalid { ref field, .. }) if field == "launches[0].task_info.task_id")
    );
}

#[test]
fn a_locked_app_changes_only_with_force_which_cancels_the_running_deployment() {
    let (mut world, _) = world_with_app(2);
    let rejection = world.rejected(
        Actor::Operator { principal: None },
        put("/web", spec(3), r#"{"cmd":"v1"}"#, Force::No, "d2"),
    );
    assert_eq!(
        rejection,
        Rejection::AppLocked { app_id: app("/web"), deployments: vec![deployment("d1")] }
    );
    let events = world.operator(put("/web", spec(3), r#"{"cmd":"v1"}"#, Force::Yes, "d2"));
    assert!(
        matches!(&events[0], Event::DeploymentCanceled { deployment_id, .. } if deployment_id == &deployment("d1"))
    );
    assert_eq!(
        world.state.services().deployments.keys().collect::<Vec<_>>(),
        vec![&deployment("d2")]
    );
}

#[test]
fn scaling_keeps_the_configuration_and_a_changed_definition_replaces_it() {
    let (mut world, agent_id) = world_with_app(1);
    launch(&mut world, &agent_id, &["web.1"]);
    report(&mut world, &agent_id, "web.1", TaskState::Running);
    let first = world.state.services().app(&app("/web")).unwrap().config_version;

    world.advance(Duration::from_secs(1));
    let events = world.operator(put("/web", spec(3), r#"{"cmd":"v1"}"#, Force::No, "d2"));
    let scale = events.iter().find_map(|e| match e {
        Event::DeploymentStarted { deployment } => Some(deployment.action),
        _ => None,
    });
    assert_eq!(scale, Some(DeploymentAction::ScaleApplication));
    let web = world.state.services().app(&app("/web")).unwrap();
    assert_eq!((web.config_version, web.version), (first, world.clock));

    launch(&mut world, &agent_id, &["web.2", "web.3"]);
    report(&mut world, &agent_id, "web.2", TaskState::Running);
    assert_eq!(
        succeeded(&report(&mut world, &agent_id, "web.3", TaskState::Running)),
        vec![deployment("d2")]
    );

    world.advance(Duration::from_secs(1));
    let events = world.operator(put("/web", spec(3), r#"{"cmd":"v2"}"#, Force::No, "d3"));
    let restart = events.iter().find_map(|e| match e {
        Event::DeploymentStarted { deployment } => Some(deployment.action),
        _ => None,
    });
    assert_eq!(restart, Some(DeploymentAction::RestartApplication));
    assert_eq!(world.state.services().app(&app("/web")).unwrap().config_version, world.clock);
}

#[test]
fn a_rolling_replacement_succeeds_once_only_new_instances_run() {
    let (mut world, agent_id) = world_with_app(1);
    launch(&mut world, &agent_id, &["web.1"]);
    report(&mut world, &agent_id, "web.1", TaskState::Running);
    world.advance(Duration::from_secs(1));
    world.operator(put("/web", spec(1), r#"{"cmd":"v2"}"#, Force::No, "d2"));
    // maximumOverCapacity 1.0: one new instance beside the old one.
    launch(&mut world, &agent_id, &["web.2"]);
    assert!(succeeded(&report(&mut world, &agent_id, "web.2", TaskState::Running)).is_empty());
    let framework_id = world.state.service_framework_id();
    world.leader(Command::Kill {
        framework_id,
        task_id: TaskId::new("web.1"),
        agent_id: None,
        kill_policy: None,
    });
    let events = report(&mut world, &agent_id, "web.1", TaskState::Killed);
    assert_eq!(succeeded(&events), vec![deployment("d2")]);
    // Killed on request: no backoff.
    assert!(!events.iter().any(|e| matches!(e, Event::AppLaunchDelayed { .. })));
    assert_eq!(world.state.services().instance(&TaskId::new("web.1")), None);
}

#[test]
fn failures_delay_launches_by_the_backoff_and_a_reset_lifts_it() {
    let (mut world, agent_id) = world_with_app(1);
    launch(&mut world, &agent_id, &["web.1"]);
    let events = report(&mut world, &agent_id, "web.1", TaskState::Failed);
    let now = world.clock;
    let delay = events.iter().find_map(|e| match e {
        Event::AppLaunchDelayed { delay, failure, .. } => Some((delay.clone(), failure.clone())),
        _ => None,
    });
    let (delay, failure) = delay.expect("a failure delays the next launch");
    assert_eq!(
        (delay.delay, delay.until),
        (Duration::from_secs(1), now.plus(Duration::from_secs(1)))
    );
    assert_eq!((failure.task_id, failure.state), (TaskId::new("web.1"), TaskState::Failed));

    let outcome = try_launch(&mut world, &agent_id, &["web.2"]);
    assert!(
        matches!(outcome, corral_state::Outcome::Rejected(Rejection::LaunchDelayed { .. })),
        "{outcome:?}"
    );

    world.advance(Duration::from_secs(1));
    launch(&mut world, &agent_id, &["web.3"]);
    let events = report(&mut world, &agent_id, "web.3", TaskState::Failed);
    let second = events.iter().find_map(|e| match e {
        Event::AppLaunchDelayed { delay, .. } => Some(delay.delay),
        _ => None,
    });
    assert_eq!(second, Some(Duration::from_secs(2)), "factor 2");

    let events = world.operator(Command::ResetLaunchDelay { app_id: app("/web") });
    assert_eq!(events, vec![Event::AppLaunchDelayReset { app_id: app("/web") }]);
    launch(&mut world, &agent_id, &["web.4"]);
}

#[test]
fn deleting_an_app_stops_its_instances_then_the_deployment_succeeds() {
    let (mut world, agent_id) = world_with_app(1);
    launch(&mut world, &agent_id, &["web.1"]);
    report(&mut world, &agent_id, "web.1", TaskState::Running);
    let events = world.operator(Command::DeleteApp {
        app_id: app("/web"),
        force: Force::No,
        deployment_id: deployment("d2"),
    });
    match &events[..] {
        [Event::AppDeleted { app_id }, Event::DeploymentStarted { deployment }] => {
            assert_eq!(app_id, &app("/web"));
            assert_eq!(deployment.action, DeploymentAction::StopApplication);
            assert!(deployment.previous.is_some());
        }
        other => panic!("{other:?}"),
    }
    assert!(world.state.services().app(&app("/web")).is_none());
    let framework_id = world.state.service_framework_id();
    world.leader(Command::Kill {
        framework_id,
        task_id: TaskId::new("web.1"),
        agent_id: None,
        kill_policy: None,
    });
    let events = report(&mut world, &agent_id, "web.1", TaskState::Killed);
    assert_eq!(succeeded(&events), vec![deployment("d2")]);
    assert!(world.state.services().instances.is_empty());
}

/// The property tests found this: a scale-down kill that wipes the last instance of a
/// deleted app meets the deployment stopping it, which must end then.
#[test]
fn wiping_a_deleted_apps_last_instance_ends_its_stop_deployment() {
    let (mut world, agent_id) = world_with_app(1);
    launch(&mut world, &agent_id, &["web.1"]);
    world.operator(Command::DeleteApp {
        app_id: app("/web"),
        force: Force::Yes,
        deployment_id: deployment("d2"),
    });
    let events = world.operator(Command::KillServiceTasks {
        task_ids: vec![TaskId::new("web.1")],
        scaling: KillScaling::ScaleDown,
        wipe: Wipe::Expunge,
        force: Force::No,
        deployment_id: deployment("d3"),
    });
    assert_eq!(succeeded(&events), vec![deployment("d2")]);
    assert!(world.state.services().deployments.is_empty());
}

#[test]
fn rolling_back_a_deployment_makes_the_old_instances_current_again() {
    let (mut world, agent_id) = world_with_app(1);
    launch(&mut world, &agent_id, &["web.1"]);
    report(&mut world, &agent_id, "web.1", TaskState::Running);
    let first = world.state.services().app(&app("/web")).unwrap().config_version;
    world.advance(Duration::from_secs(1));
    world.operator(put("/web", spec(1), r#"{"cmd":"broken"}"#, Force::No, "d2"));
    let events = world.operator(Command::CancelDeployment {
        deployment_id: deployment("d2"),
        cancellation: Cancellation::RollBack { rollback_id: deployment("d3") },
    });
    assert!(
        matches!(&events[0], Event::DeploymentCanceled { deployment_id, .. } if deployment_id == &deployment("d2"))
    );
    // The old instance is current and running again: the rollback is done at once.
    assert_eq!(succeeded(&events), vec![deployment("d3")]);
    let web = world.state.services().app(&app("/web")).unwrap();
    assert_eq!(web.config_version, first);
    assert_eq!(web.definition, r#"{"cmd":"v1"}"#);
    assert_eq!(web.versions.len(), 3);
}

#[test]
fn rolling_back_a_start_removes_the_app_and_abandoning_leaves_it() {
    let (mut world, _) = world_with_app(1);
    let events = world.operator(Command::CancelDeployment {
        deployment_id: deployment("d1"),
        cancellation: Cancellation::Abandon,
    });
    assert_eq!(
        events,
        vec![Event::DeploymentCanceled { deployment_id: deployment("d1"), app_id: app("/web") }]
    );
    assert!(world.state.services().app(&app("/web")).is_some());

    world.operator(put("/api", spec(1), "{}", Force::No, "d2"));
    let events = world.operator(Command::CancelDeployment {
        deployment_id: deployment("d2"),
        cancellation: Cancellation::RollBack { rollback_id: deployment("d3") },
    });
    assert!(events.contains(&Event::AppDeleted { app_id: app("/api") }));
    assert!(world.state.services().app(&app("/api")).is_none());
    let rejection = world.rejected(
        Actor::Operator { principal: None },
        Command::CancelDeployment {
            deployment_id: deployment("d9"),
            cancellation: Cancellation::Abandon,
        },
    );
    assert_eq!(rejection, Rejection::UnknownDeployment(deployment("d9")));
}

#[test]
fn killing_with_scale_lowers_the_instance_count() {
    let (mut world, agent_id) = world_with_app(2);
    launch(&mut world, &agent_id, &["web.1", "web.2"]);
    report(&mut world, &agent_id, "web.1", TaskState::Running);
    report(&mut world, &agent_id, "web.2", TaskState::Running);
    let events = world.operator(Command::KillServiceTasks {
        task_ids: vec![TaskId::new("web.2")],
        scaling: KillScaling::ScaleDown,
        wipe: Wipe::Keep,
        force: Force::No,
        deployment_id: deployment("d2"),
    });
    assert!(
        matches!(&events[0], Event::TaskKillRequested { task_id, .. } if task_id == &TaskId::new("web.2"))
    );
    assert_eq!(world.state.services().app(&app("/web")).unwrap().spec.instances, 1);
    let events = report(&mut world, &agent_id, "web.2", TaskState::Killed);
    assert_eq!(succeeded(&events), vec![deployment("d2")]);

    let rejection = world.rejected(
        Actor::Operator { principal: None },
        Command::KillServiceTasks {
            task_ids: vec![TaskId::new("nope.1")],
            scaling: KillScaling::Replace,
            wipe: Wipe::Keep,
            force: Force::No,
            deployment_id: deployment("d3"),
        },
    );
    assert!(matches!(rejection, Rejection::UnknownTask { .. }));
}

#[test]
fn versions_are_kept_and_an_earlier_one_can_be_put_back() {
    let (mut world, _) = world_with_app(1);
    let first = world.state.services().app(&app("/web")).unwrap().version;
    world.advance(Duration::from_secs(1));
    world.operator(put("/web", spec(1), r#"{"cmd":"v2"}"#, Force::Yes, "d2"));
    world.advance(Duration::from_secs(1));
    world.operator(Command::RollBackApp {
        app_id: app("/web"),
        version: first,
        force: Force::Yes,
        deployment_id: deployment("d3"),
    });
    let web = world.state.services().app(&app("/web")).unwrap();
    assert_eq!(web.definition, r#"{"cmd":"v1"}"#);
    assert_eq!(web.config_version, world.clock, "putting a version back is a new configuration");
    let rejection = world.rejected(
        Actor::Operator { principal: None },
        Command::RollBackApp {
            app_id: app("/web"),
            version: Timestamp(7),
            force: Force::Yes,
            deployment_id: deployment("d4"),
        },
    );
    assert_eq!(
        rejection,
        Rejection::UnknownAppVersion { app_id: app("/web"), version: Timestamp(7) }
    );
}

#[test]
fn two_changes_in_one_instant_get_two_versions() {
    let (mut world, _) = world_with_app(1);
    world.operator(put("/web", spec(2), r#"{"cmd":"v1"}"#, Force::Yes, "d2"));
    let web = world.state.services().app(&app("/web")).unwrap();
    assert_eq!(web.versions.len(), 2);
    assert!(web.versions[0].version < web.versions[1].version);
}

/// The property tests found this: an app deleted (here by rolling back its creation) while
/// an instance still runs, then created again in the same instant with the same definition,
/// took the old instance for one of its own, although it asked for none.
#[test]
fn an_app_created_again_in_the_same_instant_does_not_adopt_the_deleted_apps_instances() {
    let (mut world, agent_id) = world_with_app(1);
    launch(&mut world, &agent_id, &["web.1"]);
    let old_config = world.state.services().app(&app("/web")).unwrap().config_version;
    world.operator(Command::CancelDeployment {
        deployment_id: deployment("d1"),
        cancellation: Cancellation::RollBack { rollback_id: deployment("d2") },
    });
    assert!(world.state.services().app(&app("/web")).is_none());

    world.operator(put("/web", spec(0), r#"{"cmd":"v1"}"#, Force::Yes, "d3"));
    let web = world.state.services().app(&app("/web")).unwrap();
    assert!(web.config_version > old_config, "{:?} after {old_config:?}", web.config_version);
    assert_eq!(counts(&world), InstanceCounts { live: 1, current: 0 });
}

#[test]
fn the_builtin_framework_cannot_be_subscribed_as_or_torn_down() {
    let (mut world, _) = world_with_app(1);
    let framework_id = world.state.service_framework_id();
    let rejection = world.rejected(
        Actor::Operator { principal: None },
        Command::Teardown { framework_id: framework_id.clone() },
    );
    assert!(matches!(rejection, Rejection::Invalid { field, .. } if field == "framework_id"));
    let rejection = world.rejected(
        Actor::Leader,
        Command::Subscribe {
            framework_id: Some(framework_id.clone()),
            info: super::support::framework_info("impostor", &["*"]),
        },
    );
    assert!(matches!(rejection, Rejection::Invalid { field, .. } if field == "framework_id"));
    let rejection = world.rejected(Actor::Leader, Command::DisconnectFramework { framework_id });
    assert!(matches!(rejection, Rejection::Invalid { field, .. } if field == "framework_id"));
}

#[test]
fn the_framework_acts_for_every_role_its_apps_name() {
    let (mut world, _) = world_with_app(1);
    let mut analytics = spec(1);
    analytics.role = role("analytics");
    let events = world.operator(put("/batch", analytics, "{}", Force::No, "d2"));
    let roles = events.iter().find_map(|e| match e {
        Event::FrameworkResubscribed { info, .. } => Some(info.roles.clone()),
        _ => None,
    });
    assert_eq!(roles, Some(vec![role("*"), role("analytics")]));
}

#[test]
fn upgrade_bounds_and_backoff_arithmetic() {
    let bounds = |min, over| UpgradeBounds {
        minimum_health_capacity_permille: min,
        maximum_over_capacity_permille: over,
    };
    assert_eq!(bounds(500, 0).minimum_healthy(4), 2);
    assert_eq!(bounds(500, 0).minimum_healthy(3), 2, "rounded up");
    assert_eq!(bounds(500, 0).maximum_live(4), 4);
    assert_eq!(bounds(1000, 0).maximum_live(3), 4, "one extra so the replacement can progress");
    assert_eq!(bounds(1000, 1000).maximum_live(3), 6);
    assert_eq!(bounds(1000, 0).maximum_live(0), 0);
    let backoff = Backoff {
        initial: Duration::from_secs(1),
        factor_permille: 1150,
        maximum: Duration::from_secs(3),
    };
    assert_eq!(backoff.next(None), Duration::from_secs(1));
    assert_eq!(backoff.next(Some(Duration::from_secs(2))), Duration::from_millis(2300));
    assert_eq!(backoff.next(Some(Duration::from_secs(10))), Duration::from_secs(3));
}

#[test]
fn replaying_service_commands_gives_the_same_state() {
    let (mut world, agent_id) = world_with_app(2);
    launch(&mut world, &agent_id, &["web.1", "web.2"]);
    report(&mut world, &agent_id, "web.1", TaskState::Running);
    report(&mut world, &agent_id, "web.2", TaskState::Failed);
    let bytes = world.state.snapshot().expect("the state encodes");
    let decoded = corral_state::ClusterState::from_snapshot(&bytes).expect("decode");
    assert_eq!(decoded.services(), world.state.services());
    assert_eq!(decoded.digest(), world.state.digest());
}

/// `/web` with one running instance `web.1` and the given unreachable strategy, its start
/// deployment done.
fn world_with_running_instance(unreachable: UnreachablePolicy) -> (World, AgentId) {
    let mut world = World::new();
    let agent_id = world.add_agent("host-a", "cpus:8;mem:8192");
    let spec = AppSpec { unreachable, ..spec(1) };
    world.operator(put("/web", spec, r#"{"cmd":"v1"}"#, Force::No, "d1"));
    launch(&mut world, &agent_id, &["web.1"]);
    let events = report(&mut world, &agent_id, "web.1", TaskState::Running);
    assert_eq!(succeeded(&events), vec![deployment("d1")]);
    (world, agent_id)
}

/// Lets the agent miss its heartbeats until a Tick marks it unreachable.
fn partition(world: &mut World, agent_id: &AgentId) {
    world.advance(world.state.settings().agent_heartbeat_timeout);
    world.leader(Command::Tick);
    let task = world.state.task(&world.state.service_framework_id(), &TaskId::new("web.1"));
    assert_eq!(task.unwrap().state, TaskState::Unreachable, "on {agent_id}");
}

fn reregister_with_web_1_running(world: &mut World, agent_id: &AgentId) -> Vec<Event> {
    let info = world.state.agent(agent_id).unwrap().info.clone();
    let tasks = vec![ReportedTask {
        framework_id: world.state.service_framework_id(),
        task_id: TaskId::new("web.1"),
        state: TaskState::Running,
    }];
    let resources = world.state.agent(agent_id).unwrap().total.clone();
    world.as_agent(
        agent_id,
        Command::ReregisterAgent { agent_id: agent_id.clone(), info, resources, tasks },
    )
}

fn counts(world: &World) -> InstanceCounts {
    world.state.instance_counts(world.state.services().app(&app("/web")).unwrap())
}

fn kill_requested_and_expunged(task_id: &str) -> impl Fn(&[Event]) -> bool + '_ {
    move |events: &[Event]| {
        matches!(events, [Event::TaskKillRequested { task_id: killed, .. }, Event::AppInstanceExpunged { app_id, task_id: expunged }]
            if killed.as_str() == task_id && expunged.as_str() == task_id && app_id == &app("/web"))
    }
}

#[test]
fn an_unreachable_instance_holds_its_place_until_inactive_and_is_expunged_later() {
    let policy = UnreachablePolicy::Enabled {
        inactive_after: Duration::from_secs(100),
        expunge_after: Duration::from_secs(200),
    };
    let (mut world, agent_a) = world_with_running_instance(policy);
    partition(&mut world, &agent_a);
    let agent_b = world.add_agent("host-b", "cpus:8;mem:8192");
    let became_unreachable = world.state.now();
    let instance = world.state.services().instance(&TaskId::new("web.1")).unwrap();
    assert_eq!(instance.unreachable_since, Some(became_unreachable));
    assert_eq!(counts(&world), InstanceCounts { live: 1, current: 1 });
    assert!(matches!(
        try_launch(&mut world, &agent_b, &["web.2"]),
        corral_state::Outcome::Rejected(_)
    ));

    world.advance(Duration::from_secs(99));
    world.as_agent(&agent_b, Command::AgentHeartbeat { agent_id: agent_b.clone() });
    assert_eq!(counts(&world), InstanceCounts { live: 1, current: 1 });
    world.advance(Duration::from_secs(1));
    world.as_agent(&agent_b, Command::AgentHeartbeat { agent_id: agent_b.clone() });
    assert_eq!(world.leader(Command::Tick), vec![]);
    assert_eq!(counts(&world), InstanceCounts { live: 0, current: 0 });
    launch(&mut world, &agent_b, &["web.2"]);
    report(&mut world, &agent_b, "web.2", TaskState::Running);
    assert_eq!(counts(&world), InstanceCounts { live: 1, current: 1 });

    world.advance(Duration::from_secs(100));
    world.as_agent(&agent_b, Command::AgentHeartbeat { agent_id: agent_b.clone() });
    let events = world.leader(Command::Tick);
    assert!(kill_requested_and_expunged("web.1")(&events), "{events:#?}");
    assert!(world.state.services().instance(&TaskId::new("web.1")).is_none());

    // It comes back running: it is told again to die, and its end delays nothing.
    let events = reregister_with_web_1_running(&mut world, &agent_a);
    assert!(events.iter().any(|event| matches!(event, Event::TaskKillRequested { task_id, .. } if task_id.as_str() == "web.1")), "{events:#?}");
    let events = report(&mut world, &agent_a, "web.1", TaskState::Killed);
    assert!(!events.iter().any(|event| matches!(event, Event::AppLaunchDelayed { .. })));
    assert_eq!(world.state.services().app(&app("/web")).unwrap().launch_delay, None);
}

/// The property tests found this: nothing but time makes an unreachable instance inactive,
/// so the Tick that sees it so must also end the deployment that this meets.
#[test]
fn a_deployment_met_when_an_instance_turns_inactive_ends_on_that_tick() {
    let policy = UnreachablePolicy::Enabled {
        inactive_after: Duration::from_secs(100),
        expunge_after: Duration::from_secs(200),
    };
    let (mut world, agent_id) = world_with_running_instance(policy);
    partition(&mut world, &agent_id);
    let spec = AppSpec { unreachable: policy, ..spec(0) };
    let events = world.operator(put("/web", spec, r#"{"cmd":"v1"}"#, Force::No, "d2"));
    assert_eq!(succeeded(&events), vec![]);

    world.advance(Duration::from_secs(99));
    assert_eq!(succeeded(&world.leader(Command::Tick)), vec![]);
    world.advance(Duration::from_secs(1));
    let events = world.leader(Command::Tick);
    assert_eq!(
        events,
        vec![Event::DeploymentSucceeded { deployment_id: deployment("d2"), app_id: app("/web") }]
    );
}

#[test]
fn an_instance_back_before_it_is_inactive_counts_again_and_needs_no_replacement() {
    let (mut world, agent_id) = world_with_running_instance(UnreachablePolicy::MARATHON_DEFAULT);
    partition(&mut world, &agent_id);
    world.advance(Duration::from_secs(60));
    let events = reregister_with_web_1_running(&mut world, &agent_id);
    assert!(!events.iter().any(|event| matches!(event, Event::TaskKillRequested { .. })));
    let instance = world.state.services().instance(&TaskId::new("web.1")).unwrap();
    assert_eq!(instance.unreachable_since, None);
    assert_eq!(counts(&world), InstanceCounts { live: 1, current: 1 });
}

#[test]
fn with_the_strategy_disabled_an_unreachable_instance_is_never_replaced() {
    let (mut world, agent_id) = world_with_running_instance(UnreachablePolicy::Disabled);
    partition(&mut world, &agent_id);
    world.advance(Duration::from_secs(24 * 3600));
    assert_eq!(world.leader(Command::Tick), vec![]);
    assert_eq!(counts(&world), InstanceCounts { live: 1, current: 1 });
}

#[test]
fn killing_an_unreachable_instance_expunges_it_so_scaling_down_completes() {
    let (mut world, agent_id) = world_with_running_instance(UnreachablePolicy::MARATHON_DEFAULT);
    partition(&mut world, &agent_id);
    let events = world.operator(Command::KillServiceTasks {
        task_ids: vec![TaskId::new("web.1")],
        scaling: KillScaling::ScaleDown,
        wipe: Wipe::Keep,
        force: Force::No,
        deployment_id: deployment("d2"),
    });
    assert!(kill_requested_and_expunged("web.1")(&events[..2]), "{events:#?}");
    assert_eq!(succeeded(&events), vec![deployment("d2")]);
    assert_eq!(world.state.services().app(&app("/web")).unwrap().spec.instances, 0);
}

#[test]
fn a_task_being_killed_when_its_agent_goes_silent_is_expunged() {
    let (mut world, _agent_id) = world_with_running_instance(UnreachablePolicy::MARATHON_DEFAULT);
    world.operator(Command::DeleteApp {
        app_id: app("/web"),
        force: Force::No,
        deployment_id: deployment("d2"),
    });
    world.advance(world.state.settings().agent_heartbeat_timeout);
    let events = world.leader(Command::Tick);
    assert!(
        events.iter().any(|event| matches!(event, Event::AppInstanceExpunged { task_id, .. } if task_id.as_str() == "web.1")),
        "{events:#?}"
    );
    assert_eq!(succeeded(&events), vec![deployment("d2")]);
    assert!(world.state.services().instances.is_empty());
}

#[test]
fn wiping_a_running_instance_expunges_it_and_frees_its_place_at_once() {
    let (mut world, agent_id) = world_with_running_instance(UnreachablePolicy::MARATHON_DEFAULT);
    let events = world.operator(Command::KillServiceTasks {
        task_ids: vec![TaskId::new("web.1")],
        scaling: KillScaling::Replace,
        wipe: Wipe::Expunge,
        force: Force::No,
        deployment_id: deployment("d2"),
    });
    assert!(kill_requested_and_expunged("web.1")(&events), "{events:#?}");
    assert_eq!(counts(&world), InstanceCounts { live: 0, current: 0 });
    launch(&mut world, &agent_id, &["web.2"]);
    let events = report(&mut world, &agent_id, "web.1", TaskState::Killed);
    assert!(!events.iter().any(|event| matches!(event, Event::AppLaunchDelayed { .. })));
}

#[test]
fn an_expunge_shorter_than_the_inactive_time_is_refused() {
    let mut world = World::new();
    let unreachable = UnreachablePolicy::Enabled {
        inactive_after: Duration::from_secs(10),
        expunge_after: Duration::from_secs(5),
    };
    let spec = AppSpec { unreachable, ..spec(1) };
    let rejection = world
        .rejected(Actor::Operator { principal: None }, put("/web", spec, "{}", Force::No, "d1"));
    assert!(
        matches!(rejection, Rejection::Invalid { ref field, .. } if field == "spec.unreachable.expunge_after"),
        "{rejection:?}"
    );
    assert!(world.state.services().apps.is_empty());
}

fn app_put(app_id: &str, spec: AppSpec, definition: &str, force: Force, id: &str) -> AppPut {
    AppPut {
        app_id: app(app_id),
        spec,
        definition: definition.to_owned(),
        mode: PutMode::CreateOrReplace,
        force,
        deployment_id: deployment(id),
    }
}

#[test]
fn apps_put_together_give_exactly_the_events_of_putting_them_one_by_one() {
    let (mut together, _) = world_with_app(1);
    let mut one_by_one = together.clone();
    let puts = vec![
        app_put("/web", spec(3), r#"{"cmd":"v1"}"#, Force::Yes, "d2"),
        app_put("/api", spec(2), r#"{"cmd":"api"}"#, Force::No, "d3"),
    ];
    let events = together.operator(Command::PutApps { apps: puts.clone() });
    let mut expected = Vec::new();
    for put in puts {
        expected.extend(one_by_one.operator(Command::PutApp {
            app_id: put.app_id,
            spec: put.spec,
            definition: put.definition,
            mode: put.mode,
            force: put.force,
            deployment_id: put.deployment_id,
        }));
    }
    assert_eq!(events, expected);
    assert_eq!(comparable(&together.state), comparable(&one_by_one.state));
    assert_eq!(together.state.services().app(&app("/api")).unwrap().spec.instances, 2);
}

#[test]
fn one_refused_app_refuses_them_all_and_changes_nothing() {
    // `/web` is still deploying (d1), so changing it without force is refused, and `/api`
    // with it.
    let (mut world, _) = world_with_app(1);
    let locked = world.rejected(
        Actor::Operator { principal: None },
        Command::PutApps {
            apps: vec![
                app_put("/api", spec(2), r#"{"cmd":"api"}"#, Force::No, "d2"),
                app_put("/web", spec(3), r#"{"cmd":"v2"}"#, Force::No, "d3"),
            ],
        },
    );
    assert_eq!(
        locked,
        Rejection::AppLocked { app_id: app("/web"), deployments: vec![deployment("d1")] }
    );
    assert!(world.state.services().app(&app("/api")).is_none());

    let twice = world.rejected(
        Actor::Operator { principal: None },
        Command::PutApps {
            apps: vec![
                app_put("/api", spec(2), r#"{"cmd":"api"}"#, Force::No, "d4"),
                app_put("/api", spec(3), r#"{"cmd":"api"}"#, Force::No, "d5"),
            ],
        },
    );
    assert_eq!(twice, Rejection::invalid("apps[1].app_id", "/api is named twice"));
    let shared_deployment = world.rejected(
        Actor::Operator { principal: None },
        Command::PutApps {
            apps: vec![
                app_put("/api", spec(2), r#"{"cmd":"api"}"#, Force::No, "d6"),
                app_put("/db", spec(1), r#"{"cmd":"db"}"#, Force::No, "d6"),
            ],
        },
    );
    assert_eq!(shared_deployment, Rejection::invalid("apps[1].deployment_id", "is used twice"));
    let none =
        world.rejected(Actor::Operator { principal: None }, Command::PutApps { apps: vec![] });
    assert_eq!(none, Rejection::invalid("apps", "must name at least one app"));
}

#[test]
fn nobody_but_the_leader_acts_for_the_built_in_framework() {
    let (mut world, agent_id) = world_with_app(1);
    let framework_id = world.state.service_framework_id();
    let spec = OfferSpec {
        framework_id: framework_id.clone(),
        agent_id: agent_id.clone(),
        role: role("*"),
        resources: res("cpus:1;mem:128"),
    };
    let offer_id = match &world.leader(Command::OfferResources { offers: vec![spec] })[..] {
        [Event::OfferCreated { offer }] => offer.id.clone(),
        other => panic!("no offer: {other:?}"),
    };
    // A plain ACCEPT would start a task outside the instance index, counted by no app.
    let accept = Command::Accept {
        framework_id: framework_id.clone(),
        offer_ids: vec![offer_id],
        operations: vec![corral_state::Operation::Launch {
            task_infos: vec![task_info("web.stray", &agent_id, "cpus:1;mem:128")],
        }],
        filters: Filters::default(),
    };
    let by_leader = world.rejected(Actor::Leader, accept.clone());
    assert_eq!(
        by_leader,
        Rejection::NotPermitted {
            command: "accept".to_owned(),
            why: "the built-in service framework launches only its apps' instances".to_owned(),
        }
    );
    let as_itself = world.rejected(Actor::Framework(framework_id.clone()), accept);
    assert_eq!(
        as_itself,
        Rejection::NotPermitted {
            command: "accept".to_owned(),
            why: format!("only the leader acts for the built-in framework {framework_id}"),
        }
    );
}

fn put_ports(app_id: &str, ports: &[u16], definition: &str, id: &str) -> Command {
    let spec = AppSpec { service_ports: ports.to_vec(), ..spec(1) };
    put(app_id, spec, definition, Force::Yes, id)
}

fn held_ports(world: &World, app_id: &str) -> Vec<u16> {
    world.state.services().app(&app(app_id)).expect("the app exists").service_ports.clone()
}

#[test]
fn dynamic_service_ports_are_the_lowest_free_ones_and_unique_across_apps() {
    let mut world = World::new();
    world.operator(put_ports("/a", &[0, 0], "{}", "d1"));
    world.operator(put_ports("/b", &[10_003, 0], "{}", "d2"));
    let events = world.operator(put_ports("/c", &[0], "{}", "d3"));

    assert_eq!(held_ports(&world, "/a"), vec![10_000, 10_001]);
    // /b's fixed port is not given to its own dynamic one, nor to /c.
    assert_eq!(held_ports(&world, "/b"), vec![10_003, 10_002]);
    assert_eq!(held_ports(&world, "/c"), vec![10_004]);
    let revision = events.iter().find_map(|event| match event {
        Event::AppUpdated { revision, .. } => Some(revision.service_ports.clone()),
        _ => None,
    });
    assert_eq!(revision, Some(vec![10_004]));
}

#[test]
fn a_service_port_held_by_another_app_is_refused_and_changes_nothing() {
    let mut world = World::new();
    world.operator(put_ports("/a", &[0], "{}", "d1"));
    let before = world.state.without_bookkeeping();
    let rejection =
        world.rejected(Actor::Operator { principal: None }, put_ports("/b", &[10_000], "{}", "d2"));
    assert_eq!(
        rejection,
        Rejection::invalid("spec.service_ports[0]", "service port 10000 is held by /a")
    );
    assert_eq!(world.state.without_bookkeeping(), before);

    let twice =
        world.rejected(Actor::Operator { principal: None }, put_ports("/b", &[80, 80], "{}", "d3"));
    assert_eq!(
        twice,
        Rejection::invalid("spec.service_ports[1]", "service port 80 is asked for twice")
    );
}

#[test]
fn an_update_keeps_the_service_ports_and_a_delete_frees_them() {
    let mut world = World::new();
    world.operator(put_ports("/a", &[0, 0], r#"{"cmd":"v1"}"#, "d1"));
    world.operator(put_ports("/b", &[0], "{}", "d2"));
    // A new configuration with one more port: the first two stay, the third is new.
    world.operator(put_ports("/a", &[0, 0, 0], r#"{"cmd":"v2"}"#, "d3"));
    assert_eq!(held_ports(&world, "/a"), vec![10_000, 10_001, 10_003]);
    // Asking for a fixed port instead of a dynamic one gives the dynamic one up.
    world.operator(put_ports("/a", &[0, 15_000], r#"{"cmd":"v3"}"#, "d4"));
    assert_eq!(held_ports(&world, "/a"), vec![10_000, 15_000]);
    world.operator(put_ports("/c", &[0, 0], "{}", "d5"));
    assert_eq!(held_ports(&world, "/c"), vec![10_001, 10_003]);

    world.operator(Command::DeleteApp {
        app_id: app("/a"),
        force: Force::Yes,
        deployment_id: deployment("d6"),
    });
    world.operator(put_ports("/d", &[0, 15_000], "{}", "d7"));
    assert_eq!(held_ports(&world, "/d"), vec![10_000, 15_000]);
}

#[test]
fn a_rollback_gets_its_version_ports_back_unless_another_app_took_them() {
    let mut world = World::new();
    let events = world.operator(put_ports("/a", &[0], r#"{"cmd":"v1"}"#, "d1"));
    let first = events
        .iter()
        .find_map(|event| match event {
            Event::AppUpdated { revision, .. } => Some(revision.version),
            _ => None,
        })
        .expect("the app was created");
    world.operator(put_ports("/a", &[12_000], r#"{"cmd":"v2"}"#, "d2"));
    world.operator(Command::RollBackApp {
        app_id: app("/a"),
        version: first,
        force: Force::Yes,
        deployment_id: deployment("d3"),
    });
    assert_eq!(held_ports(&world, "/a"), vec![10_000]);

    world.operator(put_ports("/a", &[12_000], r#"{"cmd":"v3"}"#, "d4"));
    world.operator(put_ports("/b", &[0], "{}", "d5"));
    assert_eq!(held_ports(&world, "/b"), vec![10_000]);
    world.operator(Command::RollBackApp {
        app_id: app("/a"),
        version: first,
        force: Force::Yes,
        deployment_id: deployment("d6"),
    });
    assert_eq!(held_ports(&world, "/a"), vec![10_001]);
}

#[test]
fn a_list_of_apps_gets_distinct_dynamic_ports() {
    let mut world = World::new();
    let put_of = |id: &str, deployment_id: &str| AppPut {
        app_id: app(id),
        spec: AppSpec { service_ports: vec![0], ..spec(1) },
        definition: "{}".to_owned(),
        mode: PutMode::CreateOrReplace,
        force: Force::No,
        deployment_id: deployment(deployment_id),
    };
    world.operator(Command::PutApps { apps: vec![put_of("/a", "d1"), put_of("/b", "d2")] });
    assert_eq!(held_ports(&world, "/a"), vec![10_000]);
    assert_eq!(held_ports(&world, "/b"), vec![10_001]);
}
