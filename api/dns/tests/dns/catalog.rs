//! The service catalog from states built with real commands, and the change index a long
//! poll waits on.

use std::collections::BTreeMap;
use std::time::Duration;

use corral_dns::{Catalog, ChangeIndex, Endpoint, EndpointPort, Service};
use corral_state::model::{
    AgentInfo, AppSpec, Attributes, Backoff, DiscoveryInfo, DiscoveryPort, DiscoveryVisibility,
    Filters, HealthCheck, HealthCheckKind, KillPolicy, TaskInfo, TaskState, TcpCheck,
    UnreachablePolicy, UpgradeBounds,
};
use corral_state::{
    Actor, AgentId, AppId, Command, DeploymentId, Event, Force, KillScaling, OfferSpec, PutMode,
    Role, ServiceLaunch, TaskId, Wipe,
};
use corral_testkit::state::StateBuilder;

const WEB: &str = "/shop/web";
const API: &str = "/shop/api";
const DEFINITION: &str = r#"{"id": "/shop/web", "labels": {"HAPROXY_GROUP": "external",
    "HAPROXY_0_VHOST": "web.example.com", "weight": 3}}"#;

fn operator() -> Actor {
    Actor::Operator { principal: Some("ops".to_owned()) }
}

fn spec(instances: u32, health_checked: bool) -> AppSpec {
    AppSpec {
        instances,
        role: Role::parse("*").unwrap(),
        health_checked,
        upgrade: UpgradeBounds {
            minimum_health_capacity_permille: 1000,
            maximum_over_capacity_permille: 1000,
        },
        backoff: Backoff {
            initial: Duration::from_secs(1),
            factor_permille: 2000,
            maximum: Duration::from_secs(5),
        },
        unreachable: UnreachablePolicy::MARATHON_DEFAULT,
        service_ports: vec![0],
    }
}

fn put(builder: &mut StateBuilder, app_id: &str, spec: AppSpec, definition: &str) {
    let deployment_id = DeploymentId::new(format!("d{}", builder.next_number()));
    builder.accepted(
        operator(),
        Command::PutApp {
            app_id: AppId::new(app_id),
            spec,
            definition: definition.to_owned(),
            mode: PutMode::CreateOrReplace,
            force: Force::No,
            deployment_id,
        },
    );
}

/// Launches `task_id` of `/shop/web` on host port `port`, named `http` in its discovery info.
fn launch(builder: &mut StateBuilder, agent_id: &AgentId, task_id: &str, port: u32) {
    launch_with_policy(builder, agent_id, task_id, port, None);
}

/// `launch`, with the kill policy Marathon gives a task from `taskKillGracePeriodSeconds`.
fn launch_with_policy(
    builder: &mut StateBuilder,
    agent_id: &AgentId,
    task_id: &str,
    port: u32,
    kill_policy: Option<KillPolicy>,
) {
    let framework_id = builder.state.service_framework_id();
    let resources = format!("cpus:0.1;mem:16;ports:[{port}-{port}]");
    let offer = OfferSpec {
        framework_id,
        agent_id: agent_id.clone(),
        role: Role::parse("*").unwrap(),
        resources: resources.parse().unwrap(),
    };
    let offer_id = match &builder
        .accepted(Actor::Leader, Command::OfferResources { offers: vec![offer] })[..]
    {
        [Event::OfferCreated { offer }] => offer.id.clone(),
        other => panic!("no offer: {other:?}"),
    };
    let mut health_check = HealthCheck::new(HealthCheckKind::Tcp);
    health_check.tcp = Some(TcpCheck { port });
    let app = builder.state.services().app(&AppId::new(WEB)).expect("the app exists");
    let launch = ServiceLaunch {
        app_id: AppId::new(WEB),
        config_version: app.config_version,
        task_info: TaskInfo {
            name: "web.shop".into(),
            health_check: Some(health_check),
            kill_policy,
            discovery: Some(DiscoveryInfo {
                visibility: DiscoveryVisibility::Framework,
                name: Some("web.shop".into()),
                ports: vec![DiscoveryPort {
                    number: port,
                    name: Some("http".into()),
                    protocol: Some("tcp".into()),
                    labels: Vec::new(),
                }],
                labels: Vec::new(),
            }),
            ..TaskInfo::shell(task_id.into(), agent_id.clone(), resources.parse().unwrap(), "serve")
        },
    };
    builder.accepted(
        Actor::Leader,
        Command::LaunchServiceTasks {
            offer_ids: vec![offer_id],
            launches: vec![launch],
            filters: Filters::default(),
        },
    );
}

/// `/shop/web` scaled to three instances over its running deployment.
fn make_room_for_a_third(builder: &mut StateBuilder) {
    let deployment_id = DeploymentId::new(format!("d{}", builder.next_number()));
    builder.accepted(
        operator(),
        Command::PutApp {
            app_id: AppId::new(WEB),
            spec: spec(3, true),
            definition: DEFINITION.to_owned(),
            mode: PutMode::CreateOrReplace,
            force: Force::Yes,
            deployment_id,
        },
    );
}

/// `/shop/web` with two instances on `node-7`: `.1` running and healthy, `.2` running and
/// not yet checked; and `/shop/api` with none.
fn shop() -> (StateBuilder, AgentId) {
    let mut builder = StateBuilder::default();
    let info = AgentInfo {
        hostname: "node-7".into(),
        address: "10.0.0.7:5051".into(),
        attributes: Attributes::default(),
    };
    let agent_id =
        builder.register_agent(info, "cpus:4;mem:4096;ports:[31000-31099]".parse().unwrap());
    put(&mut builder, WEB, spec(2, true), DEFINITION);
    put(&mut builder, API, spec(0, false), r#"{"id": "/shop/api"}"#);
    launch(&mut builder, &agent_id, "shop_web.1", 31001);
    launch(&mut builder, &agent_id, "shop_web.2", 31002);
    let framework_id = builder.state.service_framework_id();
    for task in ["shop_web.1", "shop_web.2"] {
        builder.report(framework_id.clone(), &TaskId::new(task), TaskState::Running, None);
    }
    builder.report(framework_id, &TaskId::new("shop_web.1"), TaskState::Running, Some(true));
    (builder, agent_id)
}

fn endpoint(builder: &StateBuilder, agent_id: &AgentId, task: &str, port: u16) -> Endpoint {
    let app = builder.state.services().app(&AppId::new(WEB)).unwrap();
    Endpoint {
        task_id: TaskId::new(task),
        agent_id: agent_id.clone(),
        host: Some("node-7".into()),
        ip: Some("10.0.0.7".parse().unwrap()),
        ports: vec![EndpointPort {
            number: port,
            name: Some("http".into()),
            protocol: "tcp".into(),
        }],
        state: TaskState::Running,
        healthy: None,
        ready: false,
        draining: false,
        kill_grace: None,
        config_version: app.config_version,
    }
}

#[test]
fn every_app_is_listed_with_its_instances_health_and_service_ports() {
    let (builder, agent_id) = shop();
    let catalog = Catalog::build(&builder.state);
    let web = builder.state.services().app(&AppId::new(WEB)).unwrap();
    let api = builder.state.services().app(&AppId::new(API)).unwrap();
    let expected = Catalog {
        services: BTreeMap::from([
            (
                AppId::new(API),
                Service {
                    id: AppId::new(API),
                    version: api.version,
                    config_version: api.config_version,
                    service_ports: vec![10001],
                    labels: BTreeMap::new(),
                    health_checked: false,
                    instances: Vec::new(),
                },
            ),
            (
                AppId::new(WEB),
                Service {
                    id: AppId::new(WEB),
                    version: web.version,
                    config_version: web.config_version,
                    service_ports: vec![10000],
                    labels: BTreeMap::from([
                        ("HAPROXY_0_VHOST".to_owned(), "web.example.com".to_owned()),
                        ("HAPROXY_GROUP".to_owned(), "external".to_owned()),
                    ]),
                    health_checked: true,
                    instances: vec![
                        Endpoint {
                            healthy: Some(true),
                            ready: true,
                            ..endpoint(&builder, &agent_id, "shop_web.1", 31001)
                        },
                        endpoint(&builder, &agent_id, "shop_web.2", 31002),
                    ],
                },
            ),
        ]),
    };
    assert_eq!(catalog, expected);
}

#[test]
fn an_instance_being_killed_is_draining_and_not_ready() {
    let (mut builder, agent_id) = shop();
    let deployment_id = DeploymentId::new("kill");
    builder.accepted(
        operator(),
        Command::KillServiceTasks {
            task_ids: vec![TaskId::new("shop_web.1")],
            scaling: KillScaling::ScaleDown,
            wipe: Wipe::Keep,
            force: Force::Yes,
            deployment_id,
        },
    );
    let catalog = Catalog::build(&builder.state);
    let web = &catalog.services[&AppId::new(WEB)];
    assert_eq!(
        web.instances[0],
        Endpoint {
            healthy: Some(true),
            ready: false,
            draining: true,
            ..endpoint(&builder, &agent_id, "shop_web.1", 31001)
        }
    );
    assert_eq!(web.instances[1], endpoint(&builder, &agent_id, "shop_web.2", 31002));
}

#[test]
fn an_instance_carries_its_kill_grace_and_a_drain_may_shorten_it() {
    let (mut builder, agent_id) = shop();
    make_room_for_a_third(&mut builder);
    let thirty = Some(KillPolicy { grace_period: Some(Duration::from_secs(30)) });
    launch_with_policy(&mut builder, &agent_id, "shop_web.3", 31003, thirty);
    let framework_id = builder.state.service_framework_id();
    builder.report(framework_id, &TaskId::new("shop_web.3"), TaskState::Running, None);
    let grace_of = |catalog: &Catalog, task: &str| {
        let web = &catalog.services[&AppId::new(WEB)];
        let instance = web.instances.iter().find(|i| i.task_id.as_str() == task).unwrap();
        (instance.draining, instance.kill_grace)
    };

    let catalog = Catalog::build(&builder.state);
    assert_eq!(grace_of(&catalog, "shop_web.3"), (false, Some(Duration::from_secs(30))));
    assert_eq!(grace_of(&catalog, "shop_web.2"), (false, None));

    // Draining the agent kills every instance with the drain's cap when it is shorter.
    builder.accepted(
        operator(),
        Command::DrainAgent {
            agent_id: agent_id.clone(),
            max_grace_period: Some(Duration::from_secs(5)),
            mark_gone: false,
        },
    );
    let catalog = Catalog::build(&builder.state);
    assert_eq!(grace_of(&catalog, "shop_web.3"), (true, Some(Duration::from_secs(5))));
    assert_eq!(grace_of(&catalog, "shop_web.2"), (true, Some(Duration::from_secs(5))));
}

#[test]
fn a_killed_instance_keeps_its_own_kill_grace() {
    let (mut builder, agent_id) = shop();
    make_room_for_a_third(&mut builder);
    let thirty = Some(KillPolicy { grace_period: Some(Duration::from_secs(30)) });
    launch_with_policy(&mut builder, &agent_id, "shop_web.3", 31003, thirty);
    builder.accepted(
        operator(),
        Command::KillServiceTasks {
            task_ids: vec![TaskId::new("shop_web.3")],
            scaling: KillScaling::ScaleDown,
            wipe: Wipe::Keep,
            force: Force::Yes,
            deployment_id: DeploymentId::new("kill"),
        },
    );
    let catalog = Catalog::build(&builder.state);
    let web = &catalog.services[&AppId::new(WEB)];
    let killed = web.instances.iter().find(|i| i.task_id.as_str() == "shop_web.3").unwrap();
    assert!(killed.draining);
    assert_eq!(killed.kill_grace, Some(Duration::from_secs(30)));
}

#[test]
fn the_change_index_moves_only_for_the_services_that_changed() {
    let (mut builder, _) = shop();
    let first = Catalog::build(&builder.state);
    let mut index = ChangeIndex::first(&first, 10);
    assert_eq!(
        (index.latest(), index.of(&AppId::new(WEB)), index.of(&AppId::new(API))),
        (10, 10, 10)
    );

    // The same catalog built again changes nothing.
    index.record(&first, &Catalog::build(&builder.state), 11);
    assert_eq!(index, ChangeIndex::first(&first, 10));

    // `.2` turns healthy: only `/shop/web` moves.
    let framework_id = builder.state.service_framework_id();
    builder.report(framework_id, &TaskId::new("shop_web.2"), TaskState::Running, Some(true));
    let healthy = Catalog::build(&builder.state);
    index.record(&first, &healthy, 12);
    assert_eq!(
        (index.latest(), index.of(&AppId::new(WEB)), index.of(&AppId::new(API))),
        (12, 12, 10)
    );

    // `/shop/api` (no instances) is deleted: it moves to its removal; a name never seen
    // answers with the first index.
    builder.accepted(
        operator(),
        Command::DeleteApp {
            app_id: AppId::new(API),
            force: Force::No,
            deployment_id: DeploymentId::new("delete"),
        },
    );
    let deleted = Catalog::build(&builder.state);
    assert!(!deleted.services.contains_key(&AppId::new(API)), "{deleted:?}");
    index.record(&healthy, &deleted, 13);
    assert_eq!(
        (
            index.latest(),
            index.of(&AppId::new(WEB)),
            index.of(&AppId::new(API)),
            index.of(&AppId::new("/never"))
        ),
        (13, 12, 13, 10)
    );

    // Put back, it moves again.
    put(&mut builder, API, spec(0, false), r#"{"id": "/shop/api"}"#);
    index.record(&deleted, &Catalog::build(&builder.state), 14);
    assert_eq!((index.latest(), index.of(&AppId::new(API))), (14, 14));
}
