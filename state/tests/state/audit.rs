//! Entities, verdicts and diffs: what the audit trail is built from.

use corral_state::model::{Filters, TaskState};
use corral_state::{
    diff, Actor, AgentId, AppId, AppPut, Change, Command, Entity, EntityChange, EntityKind, Event,
    Force, FrameworkId, Outcome, PutMode, Rejection, TaskId, Verdict,
};

use super::support::{role, task_info, World};

fn task(id: &str) -> Entity {
    Entity::new(EntityKind::Task, id)
}

fn agent(id: &AgentId) -> Entity {
    Entity::agent(id)
}

fn framework(id: &FrameworkId) -> Entity {
    Entity::framework(id)
}

fn change(entity: Entity, change: Change) -> EntityChange {
    EntityChange { entity, change }
}

/// One agent, one framework, task `t1` running on it.
fn running_world() -> (World, AgentId, FrameworkId) {
    let mut world = World::new();
    let agent_id = world.add_agent("host-a", "cpus:4;mem:4096");
    let framework_id = world.subscribe("batch", &["*"]);
    world.launch(&framework_id, &agent_id, "t1", "cpus:1;mem:128");
    world.report(&framework_id, &agent_id, "t1", TaskState::Running, "u1");
    (world, agent_id, framework_id)
}

#[test]
fn a_kill_names_its_framework_task_agent_and_sender() {
    let (mut world, agent_id, framework_id) = running_world();
    let entry = world.entry(
        Actor::Framework(framework_id.clone()),
        Command::Kill {
            framework_id: framework_id.clone(),
            task_id: TaskId::new("t1"),
            agent_id: Some(agent_id.clone()),
            kill_policy: None,
        },
    );
    assert_eq!(entry.entities(), vec![agent(&agent_id), framework(&framework_id), task("t1")]);
}

#[test]
fn an_operator_is_an_entity_by_principal() {
    let mut world = World::new();
    let put = |id: &str| AppPut {
        app_id: AppId::new(id),
        spec: corral_state::model::AppSpec {
            instances: 1,
            role: role("*"),
            health_checked: false,
            upgrade: corral_state::model::UpgradeBounds {
                minimum_health_capacity_permille: 1000,
                maximum_over_capacity_permille: 1000,
            },
            backoff: corral_state::model::Backoff {
                initial: std::time::Duration::from_secs(1),
                factor_permille: 2000,
                maximum: std::time::Duration::from_secs(5),
            },
            unreachable: corral_state::model::UnreachablePolicy::MARATHON_DEFAULT,
            service_ports: Vec::new(),
        },
        definition: "{}".to_owned(),
        mode: PutMode::CreateOrReplace,
        force: Force::No,
        deployment_id: corral_state::DeploymentId::new(format!("d{id}")),
    };
    let named = world.entry(
        Actor::Operator { principal: Some("alice".to_owned()) },
        Command::PutApps { apps: vec![put("/web"), put("/db")] },
    );
    assert_eq!(
        named.entities(),
        vec![
            Entity::new(EntityKind::App, "/db"),
            Entity::new(EntityKind::App, "/web"),
            Entity::new(EntityKind::Operator, "alice"),
            Entity::new(EntityKind::Deployment, "d/db"),
            Entity::new(EntityKind::Deployment, "d/web"),
        ]
    );
    let anonymous = world.entry(Actor::Operator { principal: None }, Command::Tick);
    assert_eq!(anonymous.entities(), vec![Entity::new(EntityKind::Operator, "anonymous")]);
    assert_eq!(world.entry(Actor::Leader, Command::Tick).entities(), vec![]);
}

#[test]
fn a_launch_concerns_the_task_its_agent_framework_and_role() {
    let mut world = World::new();
    let agent_id = world.add_agent("host-a", "cpus:4;mem:4096");
    let framework_id = world.subscribe("batch", &["eng"]);
    let offer_id = world.offer(&framework_id, &agent_id, "eng", "cpus:1;mem:128");
    let events = world.as_framework(
        &framework_id,
        Command::Accept {
            framework_id: framework_id.clone(),
            offer_ids: vec![offer_id],
            operations: vec![corral_state::Operation::Launch {
                task_infos: vec![task_info("t1", &agent_id, "cpus:1;mem:128")],
            }],
            filters: Filters::default(),
        },
    );
    let added = events.iter().find(|event| matches!(event, Event::TaskAdded { .. })).unwrap();
    assert_eq!(
        added.concerns(),
        vec![agent(&agent_id), framework(&framework_id), task("t1"), Entity::role(&role("eng"))]
    );
    let accepted = events.iter().find(|event| matches!(event, Event::OfferAccepted { .. }));
    assert_eq!(accepted.unwrap().concerns(), vec![agent(&agent_id), framework(&framework_id)]);
}

#[test]
fn verdicts_follow_outcomes() {
    let (mut world, _, framework_id) = running_world();
    let kill = Command::Kill {
        framework_id: framework_id.clone(),
        task_id: TaskId::new("ghost"),
        agent_id: None,
        kill_policy: None,
    };
    let entry = world.entry(Actor::Framework(framework_id.clone()), kill);
    let rejected = world.state.apply(&entry);
    let rejection = Rejection::UnknownTask { framework_id, task_id: TaskId::new("ghost") };
    assert_eq!(Verdict::of(&rejected), Verdict::Rejected(rejection.clone()));
    assert_eq!(Verdict::of(&rejected).as_str(), "rejected");
    assert_eq!(Verdict::of(&world.state.apply(&entry)), Verdict::Duplicate);
    assert_eq!(Verdict::of(&Outcome::Accepted(Vec::new())), Verdict::Accepted);
    assert_eq!(Verdict::of(&rejected).rejection(), Some(&rejection));
}

#[test]
fn a_diff_lists_added_changed_and_removed_by_kind() {
    let (mut world, agent_id, framework_id) = running_world();
    let before = world.state.clone();
    // t1 is killed and its end acknowledged (it leaves the live tasks), t2 starts,
    // a weight is set; heartbeats change nothing a diff reports.
    world.as_framework(
        &framework_id,
        Command::Kill {
            framework_id: framework_id.clone(),
            task_id: TaskId::new("t1"),
            agent_id: None,
            kill_policy: None,
        },
    );
    world.report(&framework_id, &agent_id, "t1", TaskState::Killed, "u2");
    world.ack(&framework_id, &agent_id, "t1", "u1");
    world.ack(&framework_id, &agent_id, "t1", "u2");
    world.launch(&framework_id, &agent_id, "t2", "cpus:1;mem:128");
    world.as_agent(&agent_id, Command::AgentHeartbeat { agent_id: agent_id.clone() });
    world.operator(Command::UpdateWeights { weights: vec![(role("eng"), "2".parse().unwrap())] });
    let middle = world.state.clone();
    assert_eq!(
        diff(&before, &middle),
        vec![
            change(task("t1"), Change::Removed),
            change(task("t2"), Change::Added),
            change(Entity::role(&role("eng")), Change::Added),
        ]
    );
    world.report(&framework_id, &agent_id, "t2", TaskState::Running, "u3");
    world.as_framework(&framework_id, Command::Teardown { framework_id: framework_id.clone() });
    assert_eq!(
        diff(&middle, &world.state),
        vec![
            change(agent(&agent_id), Change::Changed),
            change(framework(&framework_id), Change::Removed),
            change(task("t2"), Change::Removed),
        ]
    );
    assert_eq!(diff(&world.state, &world.state), vec![]);
}

#[test]
fn times_read_and_write_as_rfc_3339_or_epoch_seconds() {
    use corral_state::Timestamp;
    let at = Timestamp::from_secs(1_764_472_320);
    assert_eq!(at.to_rfc3339(), "2025-11-30T03:12:00Z");
    assert_eq!(Timestamp::parse("2025-11-30T03:12:00Z"), Ok(at));
    assert_eq!(Timestamp::parse("2025-11-30T04:12:00+01:00"), Ok(at));
    assert_eq!(Timestamp::parse("1764472320"), Ok(at));
    let later = Timestamp(at.0 + 250_000_000);
    assert_eq!(later.to_rfc3339(), "2025-11-30T03:12:00.250Z");
    assert_eq!(Timestamp::parse("2025-11-30T03:12:00.25Z"), Ok(later));
    assert_eq!(Timestamp::parse("1764472320.25"), Ok(later));
    assert_eq!(Timestamp(1).to_rfc3339(), "1970-01-01T00:00:00.000000001Z");
    assert_eq!(at.to_rfc3339_millis(), "2025-11-30T03:12:00.000Z");
    assert_eq!(Timestamp(at.0 + 250_999_999).to_rfc3339_millis(), "2025-11-30T03:12:00.250Z");
    assert_eq!(Timestamp::parse("2000-02-29T00:00:00Z"), Ok(Timestamp::from_secs(951_782_400)));
    assert!(Timestamp::parse("yesterday").unwrap_err().contains("RFC 3339"));
    assert!(Timestamp::parse("2025-13-30T03:12:00Z").is_err());
    assert!(Timestamp::parse("2025-11-30T03:12:00").is_err());
    assert!(Timestamp::parse("-5").is_err());
}

#[test]
fn a_diff_of_excerpts_agrees_with_the_diff_of_whole_states() {
    let (mut world, agent_id, framework_id) = running_world();
    let before = world.state.clone();
    world.launch(&framework_id, &agent_id, "t2", "cpus:1;mem:128");
    world.report(&framework_id, &agent_id, "t1", TaskState::Finished, "u9");
    let touched = [task("t1"), task("t2"), agent(&agent_id), framework(&framework_id)];
    let by_excerpt = corral_state::diff_excerpts(
        &before.excerpt(touched.iter()),
        &world.state.excerpt(touched.iter()),
    );
    assert_eq!(by_excerpt, diff(&before, &world.state));
    assert_eq!(
        by_excerpt,
        vec![change(task("t1"), Change::Changed), change(task("t2"), Change::Added)]
    );
}
