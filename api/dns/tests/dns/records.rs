//! Records as Mesos-DNS names them, health-aware, from states built with real commands.

use std::net::SocketAddr;

use corral_dns::{DnsConfig, Masters, RecordData, Records};
use corral_state::model::{
    AgentInfo, Attributes, DiscoveryInfo, DiscoveryPort, DiscoveryVisibility, Filters, HealthCheck,
    HealthCheckKind, TaskInfo, TaskState, TcpCheck,
};
use corral_state::{Actor, AgentId, Command, FrameworkId, Operation, Role, TaskId};
use corral_testkit::state::{StateBuilder, FRAMEWORK};

pub fn cluster() -> (StateBuilder, AgentId) {
    let mut builder = StateBuilder::default();
    builder.framework("marathon", "*");
    let info = AgentInfo {
        hostname: "node-7".into(),
        address: "10.0.0.7:5051".into(),
        attributes: Attributes::default(),
    };
    let agent_id =
        builder.register_agent(info, "cpus:4;mem:4096;ports:[31000-31099]".parse().unwrap());
    (builder, agent_id)
}

/// Launches `/shop/web`'s task as the Marathon layer builds it: reversed name, a named
/// port in its `DiscoveryInfo`, optionally a health check.
pub fn launch(
    builder: &mut StateBuilder,
    agent_id: &AgentId,
    task_id: &str,
    port: u32,
    checked: bool,
) {
    let resources = format!("cpus:0.1;mem:16;ports:[{port}-{port}]");
    let offer_id = builder.offer_to(
        FrameworkId::from(FRAMEWORK),
        agent_id,
        Role::parse("*").unwrap(),
        resources.parse().unwrap(),
    );
    let mut health_check = HealthCheck::new(HealthCheckKind::Tcp);
    health_check.tcp = Some(TcpCheck { port });
    let task = TaskInfo {
        name: "web.shop".into(),
        health_check: checked.then_some(health_check),
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
    };
    builder.accepted(
        Actor::Framework(FRAMEWORK.into()),
        Command::Accept {
            framework_id: FRAMEWORK.into(),
            offer_ids: vec![offer_id],
            operations: vec![Operation::Launch { task_infos: vec![task] }],
            filters: Filters::default(),
        },
    );
}

pub fn masters() -> Masters {
    let member = |text: &str| text.parse::<SocketAddr>().unwrap();
    Masters {
        leader: Some(member("10.0.0.2:5050")),
        members: vec![member("10.0.0.1:5050"), member("10.0.0.2:5050")],
        this: "10.0.0.1".parse().unwrap(),
    }
}

pub fn records(builder: &StateBuilder) -> Records {
    Records::build(&builder.state, &masters(), &DnsConfig::default(), 42)
}

fn a(ip: &str) -> RecordData {
    RecordData::A { ip: ip.parse().unwrap() }
}

fn srv(port: u16, target: &str) -> RecordData {
    RecordData::Srv { priority: 0, weight: 1, port, target: target.to_owned() }
}

fn task_names(records: &Records) -> Vec<&str> {
    records.names.keys().map(String::as_str).filter(|name| name.contains("web")).collect()
}

#[test]
fn a_running_task_has_mesos_dns_names_and_the_cluster_its_own() {
    let (mut builder, agent_id) = cluster();
    launch(&mut builder, &agent_id, "shop_web.1", 31_005, false);
    builder.report(FRAMEWORK.into(), &TaskId::new("shop_web.1"), TaskState::Running, None);
    let records = records(&builder);

    let canonical = "web-shop-packw-s1.marathon.mesos.";
    let expected: Vec<(&str, Vec<RecordData>)> = vec![
        ("_http._web-shop._tcp.marathon.mesos.", vec![srv(31_005, canonical)]),
        ("_leader._tcp.mesos.", vec![srv(5050, "leader.mesos.")]),
        ("_leader._udp.mesos.", vec![srv(5050, "leader.mesos.")]),
        ("_slave._tcp.mesos.", vec![srv(5051, "slave.mesos.")]),
        ("_web-shop._tcp.marathon.mesos.", vec![srv(31_005, canonical)]),
        (
            "_web-shop._tcp.marathon.slave.mesos.",
            vec![srv(31_005, "web-shop-packw-s1.marathon.slave.mesos.")],
        ),
        (
            "_web-shop._udp.marathon.slave.mesos.",
            vec![srv(31_005, "web-shop-packw-s1.marathon.slave.mesos.")],
        ),
        ("leader.mesos.", vec![a("10.0.0.2")]),
        ("master.mesos.", vec![a("10.0.0.1"), a("10.0.0.2")]),
        ("master0.mesos.", vec![a("10.0.0.1")]),
        ("master1.mesos.", vec![a("10.0.0.2")]),
        (
            "mesos.",
            vec![
                RecordData::Ns { host: "ns1.mesos.".into() },
                RecordData::Soa {
                    mname: "ns1.mesos.".into(),
                    rname: "root.ns1.mesos.".into(),
                    serial: 42,
                    refresh: 60,
                    retry: 600,
                    expire: 86_400,
                    minimum: 60,
                },
            ],
        ),
        ("ns1.mesos.", vec![a("10.0.0.1")]),
        ("slave.mesos.", vec![a("10.0.0.7")]),
        ("web-shop-packw-s1.marathon.mesos.", vec![a("10.0.0.7")]),
        ("web-shop-packw-s1.marathon.slave.mesos.", vec![a("10.0.0.7")]),
        ("web-shop.marathon.mesos.", vec![a("10.0.0.7")]),
        ("web-shop.marathon.slave.mesos.", vec![a("10.0.0.7")]),
    ];
    let actual: Vec<(&str, Vec<RecordData>)> =
        records.names.iter().map(|(name, data)| (name.as_str(), data.clone())).collect();
    assert_eq!(actual, expected);
    assert_eq!(records.ttl, 5);
}

#[test]
fn only_running_healthy_tasks_not_being_killed_are_named() {
    let (mut builder, agent_id) = cluster();
    launch(&mut builder, &agent_id, "shop_web.1", 31_005, true);
    assert!(task_names(&records(&builder)).is_empty(), "staging");

    let task_id = TaskId::new("shop_web.1");
    builder.report(FRAMEWORK.into(), &task_id, TaskState::Running, None);
    assert!(task_names(&records(&builder)).is_empty(), "running, health not known yet");

    builder.report(FRAMEWORK.into(), &task_id, TaskState::Running, Some(true));
    assert!(records(&builder).at("web-shop.marathon.mesos").is_some(), "healthy");

    builder.report(FRAMEWORK.into(), &task_id, TaskState::Running, Some(false));
    assert!(task_names(&records(&builder)).is_empty(), "failing its check");

    builder.report(FRAMEWORK.into(), &task_id, TaskState::Running, Some(true));
    builder.accepted(
        Actor::Framework(FRAMEWORK.into()),
        Command::Kill {
            framework_id: FRAMEWORK.into(),
            task_id: task_id.clone(),
            agent_id: None,
            kill_policy: None,
        },
    );
    assert!(task_names(&records(&builder)).is_empty(), "being killed");
}

#[test]
fn the_domain_is_configurable_and_names_are_rfc1123_labels() {
    let (mut builder, agent_id) = cluster();
    launch(&mut builder, &agent_id, "shop_web.1", 31_005, false);
    builder.report(FRAMEWORK.into(), &TaskId::new("shop_web.1"), TaskState::Running, None);
    let config = DnsConfig { domain: "Corral.Example.".into(), ttl: 30, listen: None };
    let records = Records::build(&builder.state, &masters(), &config, 1);
    assert_eq!(records.at("WEB-SHOP.marathon.corral.example."), Some(&[a("10.0.0.7")][..]));
    assert!(records.in_domain("leader.corral.example"));
    assert!(!records.in_domain("example"));
    assert_eq!(corral_dns::label("My_App.v2--"), "my-app-v2");
    assert_eq!(corral_dns::label(&"x".repeat(70)).len(), 63);
}
