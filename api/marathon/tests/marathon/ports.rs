//! Marathon's port semantics: service ports asked for and assigned, host ports, the
//! environment, `DiscoveryInfo` and the reversed task name.

use std::collections::BTreeMap;

use corral_marathon::{parse_app, AppDefinition};
use corral_state::model::{DiscoveryInfo, DiscoveryPort, DiscoveryVisibility, Label};
use corral_state::{AgentId, Resources, TaskId};
use serde_json::{json, Value};

fn valid(value: Value) -> AppDefinition {
    parse_app(value.to_string().as_bytes())
        .unwrap_or_else(|failure| panic!("expected a valid app, got {failure:?}"))
}

fn env(task: &corral_state::model::TaskInfo) -> BTreeMap<String, String> {
    task.command.as_ref().expect("a command").environment.iter().cloned().collect()
}

fn port(number: u32, name: Option<&str>, protocol: &str, labels: &[(&str, &str)]) -> DiscoveryPort {
    DiscoveryPort {
        number,
        name: name.map(str::to_owned),
        protocol: Some(protocol.to_owned()),
        labels: labels
            .iter()
            .map(|(key, value)| Label { key: (*key).to_owned(), value: Some((*value).to_owned()) })
            .collect(),
    }
}

#[test]
fn host_ports_carry_names_labels_and_the_reversed_app_name() {
    let app = valid(json!({
        "id": "/shop/web/api",
        "cmd": "serve",
        "portDefinitions": [
            {"port": 0, "name": "http", "labels": {"VIP_0": "/api:80"}},
            {"port": 0, "name": "dns", "protocol": "udp,tcp"}
        ]
    }));
    assert_eq!(app.spec().service_ports, vec![0, 0]);
    let app = app.with_service_ports(&[10_000, 10_001]);
    let ports: Resources = "ports:[31000-31010]".parse().unwrap();
    let task = app.task_info(AgentId::new("a"), TaskId::new("t"), &ports.ranges("ports")).unwrap();

    assert_eq!(task.name, "api.web.shop");
    assert_eq!(
        task.discovery,
        Some(DiscoveryInfo {
            visibility: DiscoveryVisibility::Framework,
            name: Some("api.web.shop".to_owned()),
            ports: vec![
                port(31000, Some("http"), "tcp", &[("VIP_0", "/api:80")]),
                port(31001, Some("dns"), "udp", &[]),
                port(31001, Some("dns"), "tcp", &[]),
            ],
            labels: Vec::new(),
        })
    );
    let expected: BTreeMap<String, String> = [
        ("MARATHON_APP_ID", "/shop/web/api"),
        ("PORT", "31000"),
        ("PORT0", "31000"),
        ("PORT1", "31001"),
        ("PORTS", "31000,31001"),
        ("PORT_10000", "31000"),
        ("PORT_10001", "31001"),
        ("PORT_DNS", "31001"),
        ("PORT_HTTP", "31000"),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value.to_owned()))
    .collect();
    assert_eq!(env(&task), expected);
}

#[test]
fn assigned_service_ports_show_in_the_definition_and_require_ports_binds_them() {
    let app = valid(json!({
        "id": "/web", "cmd": "serve", "requirePorts": true,
        "portDefinitions": [{"port": 0}, {"port": 10_500}]
    }));
    let shown = serde_json::to_value(app.clone().with_service_ports(&[10_003, 10_500])).unwrap();
    assert_eq!(
        shown["portDefinitions"],
        json!([{"port": 10_003, "protocol": "tcp"}, {"port": 10_500, "protocol": "tcp"}])
    );
    let ports: Resources = "ports:[10000-10999]".parse().unwrap();
    let task = app
        .with_service_ports(&[10_003, 10_500])
        .task_info(AgentId::new("a"), TaskId::new("t"), &ports.ranges("ports"))
        .unwrap();
    let expected: Resources = "cpus:1;mem:128;ports:[10003-10003,10500-10500]".parse().unwrap();
    assert_eq!(task.resources, expected);
}

#[test]
fn bridged_mappings_take_service_ports_and_name_container_ports_in_the_environment() {
    let app = valid(json!({
        "id": "/web",
        "container": {"type": "DOCKER", "docker": {"image": "nginx", "network": "BRIDGE"},
            "portMappings": [
                {"containerPort": 80, "servicePort": 0, "name": "web", "labels": {"a": "b"}},
                {"containerPort": 443, "hostPort": 31005, "servicePort": 12_000}
            ]}
    }));
    assert_eq!(app.spec().service_ports, vec![0, 12_000]);
    let app = app.with_service_ports(&[10_000, 12_000]);
    let shown = serde_json::to_value(&app).unwrap();
    assert_eq!(shown["container"]["portMappings"][0]["servicePort"], json!(10_000));
    assert_eq!(shown["container"]["portMappings"][0]["labels"], json!({"a": "b"}));
    assert_eq!(shown["container"]["portMappings"][1]["servicePort"], json!(12_000));

    let ports: Resources = "ports:[31000-31010]".parse().unwrap();
    let task = app.task_info(AgentId::new("a"), TaskId::new("t"), &ports.ranges("ports")).unwrap();
    let environment = env(&task);
    assert_eq!(environment.get("PORT_80").map(String::as_str), Some("31000"));
    assert_eq!(environment.get("PORT_443").map(String::as_str), Some("31005"));
    assert_eq!(environment.get("PORT_WEB").map(String::as_str), Some("31000"));
    let numbers: Vec<u32> =
        task.discovery.expect("discovery info").ports.iter().map(|p| p.number).collect();
    assert_eq!(numbers, vec![31000, 31005]);
}

#[test]
fn sending_back_the_assigned_ports_asks_for_what_the_app_has() {
    let current = valid(json!({"id": "/web", "cmd": "serve",
                               "portDefinitions": [{"port": 0}, {"port": 0}, {"port": 11_000}]}));
    // A client read the app (10000, 10001, 11000), changed one port and sent it all back.
    let mut update = valid(json!({"id": "/web", "cmd": "serve",
                                  "portDefinitions": [{"port": 10_000}, {"port": 10_002}, {"port": 11_000}]}));
    update.keep_assigned_ports(&current, &[10_000, 10_001, 11_000]);
    assert_eq!(update.spec().service_ports, vec![0, 10_002, 11_000]);
    assert_eq!(update.stored_definition(), {
        let unchanged = valid(json!({"id": "/web", "cmd": "serve",
            "portDefinitions": [{"port": 0}, {"port": 10_002}, {"port": 11_000}]}));
        unchanged.stored_definition()
    });
}

#[test]
fn service_ports_and_port_names_are_unique_and_names_are_dns_labels() {
    let failure = parse_app(
        json!({"id": "/web", "cmd": "x", "portDefinitions": [
            {"port": 10_000, "name": "http"}, {"port": 10_000, "name": "http"},
            {"port": 0, "name": "Not_A_Label"}, {"port": 0}
        ]})
        .to_string()
        .as_bytes(),
    )
    .expect_err("duplicates are refused");
    assert_eq!(failure.errors_at("/portDefinitions/1/port"), ["service ports must be unique"]);
    assert_eq!(failure.errors_at("/portDefinitions/1/name"), ["port names must be unique"]);
    assert_eq!(failure.errors_at("/portDefinitions/2/name"), ["must match ^[a-z0-9-]+$"]);
    assert!(failure.errors_at("/portDefinitions/3/port").is_empty(), "0 may repeat");
}
