use std::time::Duration;

use corral_state::model::{
    AgentMode, Liveness, MachineId, MachineMode, MaintenanceWindow, QuotaConfig, Settings,
    SettingsChange, TaskState, Unavailability,
};
use corral_state::{Actor, Command, Event, Quantities, Rejection, Scalar, TaskId};

use super::support::{assert_not_overcommitted, dynamic, res, role, World};

fn ops() -> Actor {
    Actor::Operator { principal: None }
}

#[test]
fn weights_must_be_positive() {
    let mut world = World::new();
    let events = world.operator(Command::UpdateWeights {
        weights: vec![(role("eng"), Scalar::from_milli(2500))],
    });
    assert_eq!(
        events,
        vec![Event::WeightUpdated { role: role("eng"), weight: Scalar::from_milli(2500) }]
    );
    assert_eq!(world.state.role_config(&role("eng")).weight, Scalar::from_milli(2500));
    let rejection = world
        .rejected(ops(), Command::UpdateWeights { weights: vec![(role("eng"), Scalar::ZERO)] });
    assert!(rejection.to_string().contains("must be positive"), "{rejection}");
    let rejection = world.rejected(
        Actor::Framework("f".into()),
        Command::UpdateWeights { weights: vec![(role("eng"), Scalar::from_units(1))] },
    );
    assert!(matches!(rejection, Rejection::NotPermitted { .. }));
}

#[test]
fn quota_guarantees_may_not_exceed_limits() {
    let mut world = World::new();
    let config = QuotaConfig {
        role: role("eng"),
        guarantees: Quantities::from_pairs(&[("cpus", Scalar::from_units(2))]),
        limits: Quantities::from_pairs(&[("cpus", Scalar::from_units(4))]),
    };
    world.operator(Command::UpdateQuota { configs: vec![config.clone()] });
    assert_eq!(world.state.role_config(&role("eng")).limits, config.limits);
    let bad = QuotaConfig {
        limits: Quantities::from_pairs(&[("cpus", Scalar::from_units(1))]),
        ..config
    };
    let rejection = world.rejected(ops(), Command::UpdateQuota { configs: vec![bad] });
    assert_eq!(
        rejection.to_string(),
        "quota_configs.guarantees: cpus guarantee 2 of eng exceeds its limit 1"
    );
    let star = QuotaConfig {
        role: role("*"),
        guarantees: Quantities::default(),
        limits: Quantities::default(),
    };
    assert!(world
        .rejected(ops(), Command::UpdateQuota { configs: vec![star] })
        .to_string()
        .contains("'*'"));
}

#[test]
fn draining_kills_with_a_capped_grace_period_then_drains_and_goes() {
    let mut world = World::new();
    let agent_id = world.add_agent("h1", "cpus:4;mem:1024");
    let framework_id = world.subscribe("f", &["*"]);
    world.launch(&framework_id, &agent_id, "t1", "cpus:1;mem:128");
    world.report(&framework_id, &agent_id, "t1", TaskState::Running, "u1");
    let events = world.operator(Command::DrainAgent {
        agent_id: agent_id.clone(),
        max_grace_period: Some(Duration::from_secs(2)),
        mark_gone: true,
    });
    let kinds: Vec<&str> = events.iter().map(Event::kind).collect();
    assert_eq!(kinds, vec!["agent_draining", "task_kill_requested"]);
    assert!(matches!(world.state.agent(&agent_id).unwrap().mode, AgentMode::Draining(_)));
    let rejection = world.rejected(
        ops(),
        Command::DrainAgent {
            agent_id: agent_id.clone(),
            max_grace_period: None,
            mark_gone: false,
        },
    );
    assert!(rejection.to_string().contains("already draining"));

    let outcome = world.report(&framework_id, &agent_id, "t1", TaskState::Killed, "u2");
    let kinds: Vec<&str> = outcome.events().iter().map(Event::kind).collect();
    assert_eq!(kinds, vec!["task_updated", "agent_drained", "agent_removed"]);
    assert!(matches!(
        world.state.agent(&agent_id).unwrap().liveness,
        Liveness::Gone { by_operator: true, .. }
    ));
}

#[test]
fn deactivated_agents_get_no_offers_until_reactivated() {
    let mut world = World::new();
    let agent_id = world.add_agent("h1", "cpus:4;mem:1024");
    let framework_id = world.subscribe("f", &["*"]);
    world.offer(&framework_id, &agent_id, "*", "cpus:1");
    let events = world.operator(Command::DeactivateAgent { agent_id: agent_id.clone() });
    assert_eq!(
        events.iter().map(Event::kind).collect::<Vec<_>>(),
        vec!["agent_deactivated", "offer_rescinded"]
    );
    assert!(!world.state.agent(&agent_id).unwrap().is_offerable());
    assert!(world
        .rejected(ops(), Command::DeactivateAgent { agent_id: agent_id.clone() })
        .to_string()
        .contains("not active"));
    world.operator(Command::ReactivateAgent { agent_id: agent_id.clone() });
    world.offer(&framework_id, &agent_id, "*", "cpus:1");
}

#[test]
fn marking_an_agent_gone_ends_its_tasks() {
    let mut world = World::new();
    let agent_id = world.add_agent("h1", "cpus:4;mem:1024");
    let framework_id = world.subscribe("f", &["*"]);
    world.launch(&framework_id, &agent_id, "t1", "cpus:1;mem:128");
    world.operator(Command::MarkAgentGone { agent_id: agent_id.clone() });
    assert!(world.state.task(&framework_id, &TaskId::new("t1")).is_none());
    let completed = world.state.framework(&framework_id).unwrap().completed_tasks.back().unwrap();
    assert_eq!(completed.state, TaskState::Lost);
    assert_eq!(
        world.rejected(ops(), Command::MarkAgentGone { agent_id: agent_id.clone() }),
        Rejection::AgentGone(agent_id)
    );
}

#[test]
fn operators_reserve_and_unreserve_free_resources() {
    let mut world = World::new();
    let agent_id = world.add_agent("h1", "cpus:4;mem:1024");
    world.operator(Command::ReserveResources {
        agent_id: agent_id.clone(),
        resources: dynamic("cpus:3", "eng"),
    });
    assert_eq!(
        world.state.agent(&agent_id).unwrap().total,
        res("cpus:1;mem:1024").plus(&dynamic("cpus:3", "eng"))
    );
    let rejection = world.rejected(
        ops(),
        Command::ReserveResources {
            agent_id: agent_id.clone(),
            resources: dynamic("cpus:2", "ops"),
        },
    );
    assert_eq!(rejection.to_string(), "not enough cpus: needed 2, available 1");
    let rejection = world.rejected(
        ops(),
        Command::ReserveResources { agent_id: agent_id.clone(), resources: res("cpus:1") },
    );
    assert!(rejection.to_string().contains("dynamic reservation"));
    world.operator(Command::UnreserveResources {
        agent_id: agent_id.clone(),
        resources: dynamic("cpus:3", "eng"),
    });
    assert_eq!(world.state.agent(&agent_id).unwrap().total, res("cpus:4;mem:1024"));
    assert_not_overcommitted(&world.state);
}

#[test]
fn maintenance_schedules_drains_then_takes_machines_down() {
    let mut world = World::new();
    let agent_id = world.add_agent("h1", "cpus:4;mem:1024");
    let machine = MachineId { hostname: Some("h1".to_owned()), ip: None };
    let window = MaintenanceWindow {
        machine_ids: vec![machine.clone()],
        unavailability: Unavailability {
            start: world.clock,
            duration: Some(Duration::from_secs(3600)),
        },
    };
    let rejection =
        world.rejected(ops(), Command::StartMaintenance { machines: vec![machine.clone()] });
    assert!(rejection.to_string().contains("not scheduled"));
    world.operator(Command::UpdateMaintenanceSchedule { windows: vec![window.clone()] });
    assert_eq!(world.state.machine_modes()[&machine], MachineMode::Draining);
    let twice = MaintenanceWindow { machine_ids: vec![machine.clone()], ..window.clone() };
    let rejection = world.rejected(
        ops(),
        Command::UpdateMaintenanceSchedule { windows: vec![window.clone(), twice] },
    );
    assert!(rejection.to_string().contains("more than one window"));

    let events = world.operator(Command::StartMaintenance { machines: vec![machine.clone()] });
    assert_eq!(events[0].kind(), "maintenance_started");
    assert!(world.state.agent(&agent_id).unwrap().is_gone());
    let rejection = world.rejected(
        Actor::Leader,
        Command::RegisterAgent {
            info: world.state.agent(&agent_id).unwrap().info.clone(),
            resources: res("cpus:1"),
        },
    );
    assert_eq!(rejection, Rejection::MachineDown("h1".to_owned()));
    let rejection = world.rejected(ops(), Command::UpdateMaintenanceSchedule { windows: vec![] });
    assert!(rejection.to_string().contains("is DOWN"));

    world.operator(Command::StopMaintenance { machines: vec![machine.clone()] });
    assert!(world.state.machine_modes().is_empty());
    assert!(world.state.maintenance_windows().is_empty());
    world.add_agent("h1", "cpus:4;mem:1024");
}

#[test]
fn settings_are_validated() {
    let mut world = World::new();
    let mut settings = world.state.settings().clone();
    settings.cluster_id = "bad id".to_owned();
    let rejection = world.rejected(ops(), Command::UpdateSettings { settings: settings.clone() });
    assert!(rejection.to_string().starts_with("settings.cluster_id"));
    settings.cluster_id = "prod".to_owned();
    world.operator(Command::UpdateSettings { settings });
    assert_eq!(world.add_agent("h", "cpus:1").as_str(), "prod-S1");
}

#[test]
fn a_settings_change_keeps_what_it_does_not_name_and_a_bad_one_changes_nothing() {
    let mut world = World::new();
    let change = SettingsChange {
        agent_heartbeat_timeout: Some(Duration::from_secs(3)),
        offer_timeout: Some(Some(Duration::from_secs(30))),
        ..SettingsChange::default()
    };
    let events = world.operator(Command::ChangeSettings { change });
    let expected = Settings {
        agent_heartbeat_timeout: Duration::from_secs(3),
        offer_timeout: Some(Duration::from_secs(30)),
        ..Settings::default()
    };
    assert_eq!(events, vec![Event::SettingsUpdated { settings: expected.clone() }]);
    assert_eq!(world.state.settings(), &expected);

    let change = SettingsChange {
        agent_heartbeat_timeout: Some(Duration::ZERO),
        max_statuses_per_task: Some(4),
        ..SettingsChange::default()
    };
    let rejection = world.rejected(ops(), Command::ChangeSettings { change });
    assert!(rejection.to_string().starts_with("settings.agent_heartbeat_timeout"), "{rejection}");
    assert_eq!(world.state.settings(), &expected);
}
