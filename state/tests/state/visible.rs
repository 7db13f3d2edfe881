//! `view_frameworks`, `view_tasks`, `view_executors`, `view_roles`, `get_quotas` and
//! `view_apps` filter:
//! exactly what each principal may not view, and the state left once it is removed.

use std::collections::BTreeSet;

use corral_state::auth::{
    Action, AuthMode, EntityMatch, Policy, Rule, SecretHash, Token, TokenKind,
};
use corral_state::model::{CommandInfo, ExecutorInfo, Filters, QuotaConfig, TaskInfo};
use corral_state::{
    Actor, AgentId, AppId, ClusterState, Command, DeploymentId, Event, ExecutorId, Force,
    FrameworkId, Hidden, Operation, PutMode, Quantities, Role, Scalar, TaskId,
};

use super::support::{framework_info, res, role, spec, task_info, World};

fn token(accessor: &str, kind: TokenKind) -> Token {
    Token {
        accessor: accessor.to_owned(),
        principal: accessor.to_owned(),
        kind,
        secret_hash: SecretHash::of(&format!("{accessor}-secret")),
        description: String::new(),
    }
}

fn values(items: &[&str]) -> EntityMatch {
    EntityMatch::Values(items.iter().map(|item| (*item).to_owned()).collect())
}

fn operator(identity: &str) -> Actor {
    Actor::Client {
        identity: identity.to_owned(),
        acting: Box::new(Actor::Operator { principal: None }),
    }
}

/// Launches tasks `(id, user)` (`None`: the framework's user) from one offer.
fn launch(
    world: &mut World,
    (framework, role): (&FrameworkId, &str),
    agent: &AgentId,
    tasks: &[(&str, Option<&str>)],
) {
    let task_infos = tasks
        .iter()
        .map(|(id, user)| {
            let mut info = task_info(id, agent, "cpus:0.1;mem:8");
            info.command = Some(command(*user));
            info
        })
        .collect();
    launch_infos(world, (framework, role), agent, task_infos);
}

fn command(user: Option<&str>) -> CommandInfo {
    CommandInfo {
        value: Some("sleep 600".to_owned()),
        user: user.map(str::to_owned),
        ..CommandInfo::default()
    }
}

/// Launches one task on its own executor, `executor_id`, run as `user`.
fn launch_on_executor(
    world: &mut World,
    framework: (&FrameworkId, &str),
    agent: &AgentId,
    (task_id, executor_id, user): (&str, &str, &str),
) {
    let mut info = task_info(task_id, agent, "cpus:0.1;mem:8");
    info.command = None;
    info.executor = Some(ExecutorInfo {
        executor_id: ExecutorId::new(executor_id),
        name: None,
        command: Some(command(Some(user))),
        container: None,
        resources: res("cpus:0.1;mem:8"),
    });
    launch_infos(world, framework, agent, vec![info]);
}

fn launch_infos(
    world: &mut World,
    (framework, role): (&FrameworkId, &str),
    agent: &AgentId,
    task_infos: Vec<TaskInfo>,
) {
    let launched = task_infos.len();
    let offer = world.offer(framework, agent, role, "cpus:1;mem:64");
    let events = world.as_framework(
        framework,
        Command::Accept {
            framework_id: framework.clone(),
            offer_ids: vec![offer],
            operations: vec![Operation::Launch { task_infos }],
            filters: Filters::default(),
        },
    );
    let added = events.iter().filter(|event| matches!(event, Event::TaskAdded { .. })).count();
    assert_eq!(added, launched, "{events:?}");
}

struct Cluster {
    world: World,
    alice: FrameworkId,
    bob: FrameworkId,
    agent: AgentId,
}

/// Two frameworks, alice's (role `a`) with a task of hers and one run as `mallory`, and bob's
/// (role `b`) with a task and one on an executor run as `eve`; an app `/team/web` and one
/// `/other/db`; then access control: `ann` sees alice's frameworks and tasks, every executor
/// and role `a`; `bo` sees bob's frameworks, every task, bob's executors, no role, and apps
/// under `/team`; `root` is management.
fn cluster() -> Cluster {
    let mut world = World::new();
    let agent = world.add_agent("h1", "cpus:8;mem:4096");
    let mut info = framework_info("alice-fw", &["a"]);
    info.user = "alice".to_owned();
    let alice = world.subscribe_info(info);
    let mut info = framework_info("bob-fw", &["b"]);
    info.user = "bob".to_owned();
    let bob = world.subscribe_info(info);
    launch(
        &mut world,
        (&alice, "a"),
        &agent,
        &[("alice-1", None), ("as-mallory", Some("mallory"))],
    );
    launch(&mut world, (&bob, "b"), &agent, &[("bob-1", None)]);
    launch_on_executor(&mut world, (&bob, "b"), &agent, ("bob-2", "as-eve", "eve"));
    for (number, app) in ["/team/web", "/other/db"].into_iter().enumerate() {
        world.operator(Command::PutApp {
            app_id: AppId::new(app),
            spec: spec(0),
            definition: "{}".to_owned(),
            mode: PutMode::CreateOrReplace,
            force: Force::No,
            deployment_id: DeploymentId::new(format!("d{number}")),
        });
    }
    world.ok(
        Actor::Operator { principal: None },
        Command::BootstrapAcl { token: token("root", TokenKind::Management) },
    );
    for name in ["ann", "bo"] {
        world.ok(operator("root"), Command::PutToken { token: token(name, TokenKind::Client) });
    }
    let rule =
        |principal: &str, objects: EntityMatch| Rule { principals: values(&[principal]), objects };
    let rules = vec![
        (
            Action::ViewFrameworks,
            vec![rule("ann", values(&["alice"])), rule("bo", values(&["bob"]))],
        ),
        (Action::ViewTasks, vec![rule("ann", values(&["alice"])), rule("bo", EntityMatch::Any)]),
        (Action::ViewExecutors, vec![rule("ann", EntityMatch::Any), rule("bo", values(&["bob"]))]),
        (Action::ViewRoles, vec![rule("ann", values(&["a"]))]),
        (Action::ViewApps, vec![rule("bo", values(&["/team"]))]),
    ];
    let policy = Policy { name: "views".to_owned(), permissive: false, rules };
    world.ok(operator("root"), Command::PutPolicy { policy });
    world.ok(operator("root"), Command::SetAuthMode { mode: AuthMode::Enforce });
    Cluster { world, alice, bob, agent }
}

fn task(framework: &FrameworkId, id: &str) -> (FrameworkId, TaskId) {
    (framework.clone(), TaskId::new(id))
}

fn roles(names: &[&str]) -> BTreeSet<Role> {
    names.iter().map(|name| role(name)).collect()
}

/// Framework ids, task ids by framework, the agent's task list, role configs and app ids.
fn shown(
    state: &ClusterState,
    agent: &AgentId,
) -> (Vec<String>, Vec<String>, Vec<String>, Vec<String>) {
    let frameworks = state.frameworks().keys().map(ToString::to_string).collect();
    let tasks = state.tasks().map(|task| format!("{}/{}", task.framework_id, task.id())).collect();
    let on_agent = state.agents()[agent]
        .tasks
        .iter()
        .map(|(framework, task)| format!("{framework}/{task}"))
        .collect();
    let apps = state.services().apps.keys().map(ToString::to_string).collect();
    (frameworks, tasks, on_agent, apps)
}

#[test]
fn each_principal_is_shown_exactly_what_its_view_rules_allow() {
    let Cluster { world, alice, bob, agent } = cluster();
    let state = &world.state;
    // The apps' built-in framework runs as its own user, which neither may view.
    let service = state.services().framework_id.clone().expect("the apps' framework");
    let for_ann = state.hidden_from(Some("ann"));
    assert_eq!(
        for_ann,
        Hidden {
            frameworks: BTreeSet::from([bob.clone(), service.clone()]),
            tasks: BTreeSet::from([task(&alice, "as-mallory")]),
            executors: BTreeSet::new(),
            roles: roles(&["*", "b"]),
            quotas: BTreeSet::new(),
            apps: BTreeSet::from([AppId::new("/other/db"), AppId::new("/team/web")]),
        }
    );
    assert_eq!(for_ann.count(), 7);
    let mut seen_by_ann = state.without_bookkeeping();
    seen_by_ann.retain_visible(&for_ann);
    assert_eq!(
        shown(&seen_by_ann, &agent),
        (
            vec![alice.to_string()],
            vec![format!("{alice}/alice-1")],
            vec![format!("{alice}/alice-1")],
            vec![],
        )
    );

    let for_bo = state.hidden_from(Some("bo"));
    assert_eq!(
        for_bo,
        Hidden {
            frameworks: BTreeSet::from([alice.clone(), service.clone()]),
            tasks: BTreeSet::new(),
            executors: BTreeSet::from([(bob.clone(), ExecutorId::new("as-eve"))]),
            roles: roles(&["*", "a", "b"]),
            quotas: BTreeSet::new(),
            apps: BTreeSet::from([AppId::new("/other/db")]),
        }
    );
    let mut seen_by_bo = state.without_bookkeeping();
    seen_by_bo.retain_visible(&for_bo);
    assert_eq!(
        shown(&seen_by_bo, &agent),
        (
            vec![bob.to_string()],
            vec![format!("{bob}/bob-1"), format!("{bob}/bob-2")],
            vec![format!("{bob}/bob-1"), format!("{bob}/bob-2")],
            vec!["/team/web".to_owned()],
        )
    );
    // Bob's executor runs as eve: bo sees its task but not the executor; for ann it went
    // with bob's framework.
    let executors = |state: &ClusterState| state.executors().len();
    assert_eq!(executors(state), 1);
    assert_eq!((executors(&seen_by_bo), executors(&seen_by_ann)), (0, 0));
    assert!(seen_by_bo.agents()[&agent].executors.is_empty());
}

#[test]
fn management_sees_all_and_nothing_hidden_changes_nothing() {
    let Cluster { world, .. } = cluster();
    let state = &world.state;
    assert_eq!(state.hidden_from(Some("root")), Hidden::default());
    let mut copy = state.without_bookkeeping();
    copy.retain_visible(&Hidden::default());
    assert_eq!(copy, state.without_bookkeeping());
}

/// A state of the past shown under today's ACLs (the audit API's `state?at=`): what the
/// past state's own rules allowed no longer counts once the rule is gone.
#[test]
fn a_past_state_is_hidden_by_the_acls_given_not_its_own() {
    let Cluster { mut world, alice, bob, .. } = cluster();
    let past = world.state.clone();
    world.ok(operator("root"), Command::DeletePolicy { name: "views".to_owned() });
    let present = &world.state;
    // Under its own ACLs ann saw alice's framework; under today's (no view rule) she sees none.
    assert!(!past.hidden_from(Some("ann")).frameworks.contains(&alice));
    let today = past.hidden_by(present.auth(), Some("ann"));
    let service = past.services().framework_id.clone().expect("the apps' framework");
    assert_eq!(today.frameworks, BTreeSet::from([alice, bob, service]));
    assert_eq!(today, present.hidden_from(Some("ann")));
    // The same ACLs as the state's own decide the same.
    assert_eq!(past.hidden_by(past.auth(), Some("bo")), past.hidden_from(Some("bo")));
}

/// `get_quotas` decides whether a role's quota is shown, as Mesos's GET_QUOTA: ann may view
/// role `a` but may not get quotas, so she sees `a` with none; `b` she may not view at all.
#[test]
fn a_role_is_shown_without_its_quota_unless_get_quotas_allows_it() {
    let Cluster { mut world, .. } = cluster();
    let quota = |name: &str| QuotaConfig {
        role: role(name),
        guarantees: Quantities::from_pairs(&[("cpus", Scalar::from_units(1))]),
        limits: Quantities::from_pairs(&[("cpus", Scalar::from_units(2))]),
    };
    world.ok(operator("root"), Command::UpdateQuota { configs: vec![quota("a"), quota("b")] });
    let state = &world.state;
    let for_ann = state.hidden_from(Some("ann"));
    assert_eq!(for_ann.quotas, roles(&["a"]));
    assert_eq!(for_ann.roles, roles(&["*", "b"]));
    let mut seen_by_ann = state.without_bookkeeping();
    seen_by_ann.retain_visible(&for_ann);
    let configs = seen_by_ann.role_configs();
    assert!(configs[&role("a")].guarantees.is_empty() && configs[&role("a")].limits.is_empty());
    assert!(!configs.contains_key(&role("b")));
    let updated = |name: &str| Event::QuotaUpdated { config: quota(name) };
    assert_eq!(state.event_hidden_by(Some("ann"), &updated("a")), Some(Action::GetQuotas));
    assert_eq!(state.event_hidden_by(Some("ann"), &updated("b")), Some(Action::ViewRoles));

    let rules = vec![(
        Action::GetQuotas,
        vec![Rule { principals: values(&["ann"]), objects: values(&["a"]) }],
    )];
    let policy = Policy { name: "quotas".to_owned(), permissive: false, rules };
    world.ok(operator("root"), Command::PutPolicy { policy });
    let state = &world.state;
    assert_eq!(state.hidden_from(Some("ann")).quotas, BTreeSet::new());
    assert_eq!(state.event_hidden_by(Some("ann"), &updated("a")), None);
}

/// The per-event filter of event streams: which rule keeps each event from each identity.
#[test]
fn each_event_is_hidden_by_exactly_the_rule_about_its_object() {
    let Cluster { world, alice, bob, agent } = cluster();
    let state = &world.state;
    let kill = |framework: &FrameworkId, task: &str| Event::TaskKillRequested {
        framework_id: framework.clone(),
        task_id: TaskId::new(task),
        agent_id: agent.clone(),
        kill_policy: None,
    };
    let weight = |name: &str| Event::WeightUpdated {
        role: role(name),
        weight: corral_state::Scalar::from_units(2),
    };
    let events = [
        ("alice disconnected", Event::FrameworkDisconnected { framework_id: alice.clone() }),
        ("kill alice-1", kill(&alice, "alice-1")),
        ("kill as-mallory", kill(&alice, "as-mallory")),
        ("kill bob-1", kill(&bob, "bob-1")),
        (
            "shut down as-eve",
            Event::ExecutorShutdownRequested {
                framework_id: bob.clone(),
                executor_id: ExecutorId::new("as-eve"),
                agent_id: agent.clone(),
            },
        ),
        ("weight a", weight("a")),
        ("weight b", weight("b")),
        ("/team/web deleted", Event::AppDeleted { app_id: AppId::new("/team/web") }),
        ("agent deactivated", Event::AgentDeactivated { agent_id: agent.clone() }),
        (
            "a framework never known",
            Event::FrameworkDisconnected { framework_id: FrameworkId::new("nobody-knows") },
        ),
    ];
    let hidden_by = |identity: Option<&str>| -> Vec<(&str, Option<Action>)> {
        events.iter().map(|(name, event)| (*name, state.event_hidden_by(identity, event))).collect()
    };
    let frameworks = Some(Action::ViewFrameworks);
    assert_eq!(
        hidden_by(Some("ann")),
        vec![
            ("alice disconnected", None),
            ("kill alice-1", None),
            ("kill as-mallory", Some(Action::ViewTasks)),
            ("kill bob-1", frameworks),
            ("shut down as-eve", frameworks),
            ("weight a", None),
            ("weight b", Some(Action::ViewRoles)),
            ("/team/web deleted", Some(Action::ViewApps)),
            ("agent deactivated", None),
            ("a framework never known", frameworks),
        ]
    );
    assert_eq!(
        hidden_by(Some("bo")),
        vec![
            ("alice disconnected", frameworks),
            ("kill alice-1", frameworks),
            ("kill as-mallory", frameworks),
            ("kill bob-1", None),
            ("shut down as-eve", Some(Action::ViewExecutors)),
            ("weight a", Some(Action::ViewRoles)),
            ("weight b", Some(Action::ViewRoles)),
            ("/team/web deleted", None),
            ("agent deactivated", None),
            ("a framework never known", frameworks),
        ]
    );
    let all_shown: Vec<(&str, Option<Action>)> =
        events.iter().map(|(name, _)| (*name, None)).collect();
    assert_eq!(hidden_by(Some("root")), all_shown);
    // Anonymous: only what no rule is about (agents).
    let anonymous = hidden_by(None);
    assert_eq!(anonymous[8], ("agent deactivated", None));
    assert!(anonymous.iter().enumerate().all(|(at, (_, by))| at == 8 || by.is_some()));

    assert!(!state.app_hidden_from(Some("bo"), &AppId::new("/team/web")));
    assert!(state.app_hidden_from(Some("bo"), &AppId::new("/other/db")));
    assert!(state.app_hidden_from(Some("ann"), &AppId::new("/team/web")));
    assert!(!state.app_hidden_from(Some("root"), &AppId::new("/other/db")));
}
