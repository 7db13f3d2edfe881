//! Marathon 1.x app definitions: parsing, rendering with defaults, validation in Marathon's 422
//! shape, and the `TaskInfo` an instance launches with.

use std::time::Duration;

use corral_marathon::{parse_app, AppDefinition, LaunchError, ValidationFailure};
use corral_state::model::{ContainerType, DockerNetwork, HealthCheckKind, KillPolicy};
use corral_state::{AgentId, Ranges, Resources, TaskId};
use serde_json::{json, Value};

fn parse(value: Value) -> Result<AppDefinition, ValidationFailure> {
    parse_app(value.to_string().as_bytes())
}

fn valid(value: Value) -> AppDefinition {
    parse(value).unwrap_or_else(|failure| panic!("expected a valid app, got {failure:?}"))
}

fn render(app: &AppDefinition) -> Value {
    serde_json::to_value(app).expect("app renders")
}

/// Asserts that `app` (a minimal valid app with `changes` merged in) is rejected at `path`.
fn rejected_at(changes: Value, path: &str) -> Vec<String> {
    let mut app = json!({"id": "/web", "cmd": "sleep 100"});
    for (key, value) in changes.as_object().expect("changes are an object") {
        if value.is_null() {
            app.as_object_mut().unwrap().remove(key);
            continue;
        }
        app[key] = value.clone();
    }
    let failure = match parse(app.clone()) {
        Ok(_) => panic!("expected {app} to be rejected at {path}"),
        Err(failure) => failure,
    };
    assert_eq!(failure.message, "Object is not valid");
    let errors = failure.errors_at(path).to_vec();
    assert!(!errors.is_empty(), "expected errors at {path}, got {failure:?}");
    errors
}

/// After the example in Marathon's REST API docs.
fn docs_example() -> Value {
    json!({
        "id": "/product/service/my-app",
        "cmd": "env && sleep 300",
        "cpus": 1.5,
        "mem": 256.0,
        "instances": 3,
        "constraints": [["hostname", "UNIQUE"], ["rack_id", "GROUP_BY", "2"], ["zone", "LIKE", "us-east-1[a-c]"]],
        "container": {
            "type": "DOCKER",
            "docker": {
                "image": "group/image",
                "network": "BRIDGE",
                "portMappings": [
                    {"containerPort": 8080, "hostPort": 0, "servicePort": 9000, "protocol": "tcp"},
                    {"containerPort": 161, "hostPort": 0, "protocol": "udp", "name": "snmp"}
                ],
                "privileged": false,
                "parameters": [{"key": "a-docker-option", "value": "xxx"}]
            }
        },
        "env": {"LD_LIBRARY_PATH": "/usr/local/lib/myLib"},
        "labels": {"environment": "staging"},
        "healthChecks": [
            {"protocol": "HTTP", "path": "/health", "portIndex": 0, "gracePeriodSeconds": 5,
             "intervalSeconds": 20, "maxConsecutiveFailures": 3},
            {"protocol": "TCP", "portIndex": 1},
            {"protocol": "COMMAND", "command": {"value": "curl -f -X GET http://$HOST:$PORT0/health"}}
        ],
        "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.2},
        "backoffSeconds": 1,
        "backoffFactor": 1.15,
        "maxLaunchDelaySeconds": 3600,
        "acceptedResourceRoles": ["*"],
        "taskKillGracePeriodSeconds": 30,
        "someFutureField": {"ignored": true}
    })
}

#[test]
fn the_docs_example_parses_and_renders_with_defaults() {
    let app = valid(docs_example());
    let rendered = render(&app);
    assert_eq!(rendered["id"], "/product/service/my-app");
    assert_eq!(rendered["cpus"], 1.5);
    assert_eq!(rendered["instances"], 3);
    assert_eq!(rendered["disk"], 0.0);
    assert_eq!(rendered["gpus"], 0);
    assert_eq!(rendered["requirePorts"], false);
    assert_eq!(rendered["maxLaunchDelaySeconds"], 3600.0);
    assert_eq!(rendered["killSelection"], "YOUNGEST_FIRST");
    assert_eq!(rendered["taskKillGracePeriodSeconds"], 30.0);
    assert_eq!(
        rendered["upgradeStrategy"],
        json!({"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.2})
    );
    assert_eq!(
        rendered["unreachableStrategy"],
        json!({"inactiveAfterSeconds": 300.0, "expungeAfterSeconds": 600.0})
    );
    // Bridged: the mappings are the ports, and no default port definition is invented.
    assert_eq!(rendered["portDefinitions"], json!([]));
    assert_eq!(
        rendered["container"]["docker"]["portMappings"][1],
        json!({"containerPort": 161, "hostPort": 0, "servicePort": 0, "protocol": "udp", "name": "snmp"})
    );
    assert_eq!(rendered["constraints"][1], json!(["rack_id", "GROUP_BY", "2"]));
    assert_eq!(
        rendered["healthChecks"][0],
        json!({"protocol": "HTTP", "path": "/health", "portIndex": 0, "gracePeriodSeconds": 5,
               "intervalSeconds": 20, "timeoutSeconds": 20, "maxConsecutiveFailures": 3,
               "delaySeconds": 15})
    );
    assert_eq!(
        rendered["healthChecks"][2]["command"]["value"],
        "curl -f -X GET http://$HOST:$PORT0/health"
    );
    assert!(rendered.get("someFutureField").is_none(), "unknown fields are ignored");
    assert!(rendered.get("version").is_none());

    // What is rendered parses back to the same app.
    assert_eq!(valid(rendered), app);
}

#[test]
fn a_minimal_app_gets_every_default() {
    let app = valid(json!({"id": "web", "cmd": "sleep 100", "version": "2015-01-01T00:00:00Z"}));
    assert_eq!(
        render(&app),
        json!({
            "id": "/web",
            "cmd": "sleep 100",
            "cpus": 1.0,
            "mem": 128.0,
            "disk": 0.0,
            "gpus": 0,
            "instances": 1,
            "env": {},
            "labels": {},
            "portDefinitions": [{"port": 0, "protocol": "tcp"}],
            "requirePorts": false,
            "constraints": [],
            "healthChecks": [],
            "upgradeStrategy": {"minimumHealthCapacity": 1.0, "maximumOverCapacity": 1.0},
            "backoffSeconds": 1.0,
            "backoffFactor": 1.15,
            "maxLaunchDelaySeconds": 300.0,
            "killSelection": "YOUNGEST_FIRST",
            "unreachableStrategy": {"inactiveAfterSeconds": 300.0, "expungeAfterSeconds": 600.0},
            "acceptedResourceRoles": []
        })
    );
}

#[test]
fn ids_are_normalized_and_checked() {
    assert_eq!(valid(json!({"id": "prod/web/api/", "cmd": "x"})).id, "/prod/web/api");
    assert_eq!(valid(json!({"id": "/a1.b-2/c", "cmd": "x"})).id, "/a1.b-2/c");
    for id in ["/", "", "/Web", "/web-", "/-web", "/a//b", "/a_b", "/a..b", "/a/.b"] {
        let errors = rejected_at(json!({"id": id}), "/id");
        assert_eq!(errors.len(), 1, "{id}: {errors:?}");
    }
    assert_eq!(rejected_at(json!({"id": "/"}), "/id"), ["must not be the root group"]);
}

#[test]
fn a_command_or_an_image_is_required_and_cmd_excludes_args() {
    assert_eq!(
        rejected_at(json!({"cmd": null}), "/"),
        ["is required: cmd, args or container.docker.image"]
    );
    assert_eq!(
        rejected_at(json!({"args": ["sleep", "1"]}), "/args"),
        ["must not be given together with cmd"]
    );
    valid(json!({"id": "/a", "args": ["sleep", "1"]}));
    valid(json!({"id": "/a", "container": {"type": "DOCKER", "docker": {"image": "nginx"}}}));
    rejected_at(
        json!({"cmd": null, "container": {"type": "DOCKER", "docker": {"image": ""}}}),
        "/",
    );
    rejected_at(json!({"container": {"type": "DOCKER"}}), "/container/docker");
}

#[test]
fn resources_and_instances_must_not_be_negative() {
    for field in ["cpus", "mem", "disk", "gpus", "instances"] {
        assert_eq!(rejected_at(json!({field: -1}), &format!("/{field}")), ["must be >= 0"]);
    }
    valid(json!({"id": "/a", "cmd": "x", "instances": 0, "cpus": 0, "mem": 0}));
    rejected_at(json!({"taskKillGracePeriodSeconds": 0}), "/taskKillGracePeriodSeconds");
}

#[test]
fn strategies_are_bounded() {
    for field in ["minimumHealthCapacity", "maximumOverCapacity"] {
        for value in [-0.1, 1.1] {
            let errors = rejected_at(
                json!({"upgradeStrategy": {field: value}}),
                &format!("/upgradeStrategy/{field}"),
            );
            assert_eq!(errors, ["must be within [0, 1]"]);
        }
    }
    valid(
        json!({"id": "/a", "cmd": "x", "upgradeStrategy": {"minimumHealthCapacity": 0, "maximumOverCapacity": 0}}),
    );
    assert_eq!(rejected_at(json!({"backoffFactor": 0.9}), "/backoffFactor"), ["must be >= 1"]);
    rejected_at(json!({"backoffSeconds": -1}), "/backoffSeconds");
    rejected_at(json!({"maxLaunchDelaySeconds": -1}), "/maxLaunchDelaySeconds");
    rejected_at(
        json!({"unreachableStrategy": {"inactiveAfterSeconds": 10, "expungeAfterSeconds": 5}}),
        "/unreachableStrategy/expungeAfterSeconds",
    );
    let disabled = valid(json!({"id": "/a", "cmd": "x", "unreachableStrategy": "disabled"}));
    assert_eq!(render(&disabled)["unreachableStrategy"], "disabled");
    assert_eq!(
        render(&valid(json!({"id": "/a", "cmd": "x", "killSelection": "OLDEST_FIRST"})))
            ["killSelection"],
        "OLDEST_FIRST"
    );
}

#[test]
fn constraints_need_known_operators_and_fitting_values() {
    valid(json!({"id": "/a", "cmd": "x", "constraints": [
        ["hostname", "UNIQUE"], ["rack", "CLUSTER", "r1"], ["rack", "GROUP_BY"],
        ["rack", "GROUP_BY", "3"], ["hostname", "LIKE", "web.*"], ["hostname", "UNLIKE", "db.*"],
        ["zone", "MAX_PER", "2"], ["os", "IS", "linux"]
    ]}));
    let bad = [
        json!(["hostname", "NEAR", "x"]),
        json!(["hostname"]),
        json!(["hostname", "UNIQUE", "x", "y"]),
        json!(["", "UNIQUE"]),
        json!(["hostname", "UNIQUE", "x"]),
        json!(["rack", "CLUSTER"]),
        json!(["os", "IS"]),
        json!(["hostname", "LIKE"]),
        json!(["hostname", "UNLIKE", ""]),
        json!(["zone", "MAX_PER"]),
        json!(["zone", "MAX_PER", "0"]),
        json!(["zone", "MAX_PER", "two"]),
        json!(["rack", "GROUP_BY", "-1"]),
    ];
    for constraint in bad {
        let errors = rejected_at(
            json!({"constraints": [["hostname", "UNIQUE"], constraint.clone()]}),
            "/constraints/1",
        );
        assert_eq!(errors.len(), 1, "{constraint}: {errors:?}");
    }
    assert_eq!(
        rejected_at(json!({"constraints": [["zone", "MAX_PER", "0"]]}), "/constraints/0"),
        ["MAX_PER requires a positive integer value"]
    );
}

#[test]
fn health_checks_must_point_at_a_port() {
    // One default port definition: index 0 exists, 1 does not.
    let errors = rejected_at(
        json!({"healthChecks": [{"protocol": "HTTP"}, {"protocol": "TCP", "portIndex": 1}]}),
        "/healthChecks/1/portIndex",
    );
    assert_eq!(errors, ["must be < the number of ports (1)"]);
    rejected_at(
        json!({"portDefinitions": [], "healthChecks": [{"protocol": "MESOS_HTTP"}]}),
        "/healthChecks/0/portIndex",
    );
    rejected_at(json!({"healthChecks": [{"protocol": "COMMAND"}]}), "/healthChecks/0/command");
    rejected_at(
        json!({"healthChecks": [{"protocol": "HTTP", "portIndex": 0, "port": 80}]}),
        "/healthChecks/0/port",
    );
    rejected_at(
        json!({"healthChecks": [{"protocol": "HTTP", "intervalSeconds": -1}]}),
        "/healthChecks/0/intervalSeconds",
    );
    // A COMMAND check needs no port, even without any.
    valid(json!({"id": "/a", "cmd": "x", "portDefinitions": [],
                 "healthChecks": [{"protocol": "COMMAND", "command": {"value": "true"}}]}));
}

#[test]
fn ports_are_in_range() {
    rejected_at(
        json!({"portDefinitions": [{"port": 80}, {"port": 70000}]}),
        "/portDefinitions/1/port",
    );
    rejected_at(json!({"portDefinitions": [{"port": -1}]}), "/portDefinitions/0/port");
    let bridged = |mapping: Value| {
        json!({"cmd": null, "container": {"type": "DOCKER", "docker": {
            "image": "nginx", "network": "BRIDGE", "portMappings": [mapping]}}})
    };
    for field in ["containerPort", "hostPort", "servicePort"] {
        let errors = rejected_at(
            bridged(json!({"containerPort": 80, field: 65536})),
            &format!("/container/docker/portMappings/0/{field}"),
        );
        assert_eq!(errors, ["must be in 0..=65535"]);
    }
    let errors = rejected_at(
        json!({"container": {"type": "DOCKER", "docker": {"image": "nginx", "network": "HOST",
               "portMappings": [{"containerPort": 80}]}}}),
        "/container/docker/portMappings",
    );
    assert_eq!(errors, ["are only allowed with BRIDGE networking"]);
}

#[test]
fn all_errors_are_reported_at_once_in_marathons_shape() {
    let failure = parse(json!({"id": "/Bad", "cpus": -1, "instances": -2})).unwrap_err();
    assert_eq!(
        serde_json::to_value(&failure).unwrap(),
        json!({"message": "Object is not valid", "details": [
            {"path": "/id", "errors": ["must be a path of segments of lowercase letters, digits, '-' and '.', each starting and ending with a letter or digit"]},
            {"path": "/", "errors": ["is required: cmd, args or container.docker.image"]},
            {"path": "/cpus", "errors": ["must be >= 0"]},
            {"path": "/instances", "errors": ["must be >= 0"]}
        ]})
    );
    let broken = parse_app(b"{\"id\": 5}").unwrap_err();
    assert_eq!(broken.message, "Invalid JSON");
    assert_eq!(broken.details[0].path, "/id");
    let trailing = parse_app(b"{\"id\": \"/a\", \"cmd\": \"x\"} x").unwrap_err();
    assert_eq!(trailing.details[0].path, "/");
}

#[test]
fn a_value_of_the_wrong_type_is_named_by_its_pointer() {
    let at = |value: Value| {
        let failure = parse(value).unwrap_err();
        assert_eq!(failure.message, "Invalid JSON");
        failure.details[0].path.clone()
    };
    let app = |field: &str, value: Value| {
        let mut app = json!({"id": "/a", "cmd": "x"});
        app[field] = value;
        app
    };
    assert_eq!(at(app("taskKillGracePeriodSeconds", json!("ten"))), "/taskKillGracePeriodSeconds");
    assert_eq!(
        at(app("healthChecks", json!([{"protocol": "TCP"}, {"portIndex": "zero"}]))),
        "/healthChecks/1/portIndex"
    );
    assert_eq!(at(app("labels", json!({"a/b~c": 1}))), "/labels/a~1b~0c");
}

#[test]
fn the_kill_grace_period_is_positive_and_fits_a_mesos_duration() {
    for bad in [json!(0), json!(-1), json!(-0.5), json!(1e10)] {
        assert_eq!(
            rejected_at(json!({"taskKillGracePeriodSeconds": bad}), "/taskKillGracePeriodSeconds"),
            ["must be > 0 and <= 9223372036"]
        );
    }
    for (seconds, grace) in [
        (json!(0.5), Duration::from_millis(500)),
        (json!(9_223_372_036_u64), Duration::from_secs(9_223_372_036)),
    ] {
        let app = valid(json!({"id": "/a", "cmd": "x", "taskKillGracePeriodSeconds": seconds}));
        let ports = offer_ports("cpus:1;mem:256;ports:[31000-31010]");
        let task = app.task_info(AgentId::new("a"), TaskId::new("t"), &ports).unwrap();
        assert_eq!(task.kill_policy, Some(KillPolicy { grace_period: Some(grace) }));
    }
    let app = valid(json!({"id": "/a", "cmd": "x"}));
    let ports = offer_ports("cpus:1;mem:256;ports:[31000-31010]");
    let task = app.task_info(AgentId::new("a"), TaskId::new("t"), &ports).unwrap();
    assert_eq!(task.kill_policy, None, "without one, the agent's default applies");
}

#[test]
fn times_that_fit_no_clock_are_refused_not_read_as_zero() {
    let failure = parse(json!({"id": "/slow", "cmd": "x", "backoffSeconds": 1e30,
        "maxLaunchDelaySeconds": -1,
        "unreachableStrategy": {"inactiveAfterSeconds": 1, "expungeAfterSeconds": 1e12}}))
    .unwrap_err();
    let paths: Vec<&str> = failure.details.iter().map(|detail| detail.path.as_str()).collect();
    assert_eq!(
        paths,
        ["/backoffSeconds", "/maxLaunchDelaySeconds", "/unreachableStrategy/expungeAfterSeconds"]
    );
}

fn offer_ports(text: &str) -> Ranges {
    text.parse::<Resources>().expect("offer parses").ranges("ports")
}

#[test]
fn a_bridged_docker_app_launches_with_the_offers_host_ports() {
    let app = valid(json!({
        "id": "/prod/web",
        "args": ["--port", "8080"],
        "cpus": 0.5,
        "mem": 64,
        "disk": 10,
        "env": {"MODE": "prod"},
        "labels": {"team": "web"},
        "taskKillGracePeriodSeconds": 30,
        "container": {"type": "DOCKER", "docker": {
            "image": "nginx:1.25", "network": "BRIDGE", "forcePullImage": true,
            "portMappings": [
                {"containerPort": 8080, "hostPort": 0, "protocol": "tcp"},
                {"containerPort": 9090, "hostPort": 31005},
                {"containerPort": 53, "protocol": "udp"}
            ]}},
        "healthChecks": [{"protocol": "MESOS_HTTP", "path": "/ping", "portIndex": 0}]
    }));
    let ports = offer_ports("cpus:4;mem:1024;ports:[31000-31010]");
    let task = app.task_info(AgentId::new("agent-1"), TaskId::new("prod_web.1"), &ports).unwrap();

    assert_eq!(task.name, "web.prod", "Marathon reverses the path for DNS");
    assert_eq!(task.task_id, TaskId::new("prod_web.1"));
    assert_eq!(task.agent_id, AgentId::new("agent-1"));
    let expected: Resources =
        "cpus:0.5;mem:64;disk:10;ports:[31000-31001,31005-31005]".parse().unwrap();
    assert_eq!(task.resources, expected);

    let container = task.container.as_ref().expect("a container");
    assert_eq!(container.kind, ContainerType::Docker);
    let docker = container.docker.as_ref().expect("docker info");
    assert_eq!(docker.image, "nginx:1.25");
    assert_eq!(docker.network, DockerNetwork::Bridge);
    assert!(docker.force_pull_image);
    let mappings: Vec<(u32, u32, Option<&str>)> = docker
        .port_mappings
        .iter()
        .map(|m| (m.host_port, m.container_port, m.protocol.as_deref()))
        .collect();
    assert_eq!(
        mappings,
        [(31000, 8080, Some("tcp")), (31005, 9090, Some("tcp")), (31001, 53, Some("udp"))]
    );

    let command = task.command.as_ref().expect("a command");
    assert!(!command.shell);
    assert_eq!(command.value, None, "the image keeps its entrypoint");
    assert_eq!(command.arguments, ["--port", "8080"]);
    let env = |name: &str| {
        command.environment.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    };
    assert_eq!(env("MODE"), Some("prod"));
    assert_eq!(env("PORT0"), Some("31000"));
    assert_eq!(env("PORT"), Some("31000"));
    assert_eq!(env("PORTS"), Some("31000,31005,31001"));
    assert_eq!(env("MARATHON_APP_ID"), Some("/prod/web"));

    assert_eq!(task.labels.len(), 1);
    assert_eq!(task.labels[0].key, "team");
    assert_eq!(task.labels[0].value.as_deref(), Some("web"));
    assert_eq!(task.kill_policy, Some(KillPolicy { grace_period: Some(Duration::from_secs(30)) }));

    // A Mesos-side check of a bridged container probes the container port.
    let check = task.health_check.as_ref().expect("a health check");
    let http = check.http.as_ref().expect("an HTTP check");
    assert_eq!(http.port, 8080);
    assert_eq!(http.path.as_deref(), Some("/ping"));

    let too_few = offer_ports("ports:[31005-31005]");
    assert_eq!(
        app.task_info(AgentId::new("a"), TaskId::new("t"), &too_few).unwrap_err(),
        LaunchError::NotEnoughPorts
    );
    let without_fixed = offer_ports("ports:[31000-31002]");
    assert_eq!(
        app.task_info(AgentId::new("a"), TaskId::new("t"), &without_fixed).unwrap_err(),
        LaunchError::PortNotOffered(31005)
    );
}

#[test]
fn a_cmd_app_runs_in_a_shell_on_host_ports() {
    let app = valid(json!({"id": "/web", "cmd": "python -m http.server $PORT0",
                           "portDefinitions": [{"port": 0}, {"port": 0}]}));
    let ports = offer_ports("ports:[31000-31000,31007-31009]");
    let task = app.task_info(AgentId::new("a"), TaskId::new("t"), &ports).unwrap();
    let command = task.command.as_ref().unwrap();
    assert!(command.shell);
    assert_eq!(command.value.as_deref(), Some("python -m http.server $PORT0"));
    assert_eq!(task.container, None);
    assert_eq!(task.health_check, None);
    assert_eq!(task.kill_policy, None);
    assert_eq!(task.resources, "cpus:1;mem:128;ports:[31000-31000,31007-31007]".parse().unwrap());

    let required = valid(json!({"id": "/web", "cmd": "x", "requirePorts": true,
                                "portDefinitions": [{"port": 31008}]}));
    let task = required.task_info(AgentId::new("a"), TaskId::new("t"), &ports).unwrap();
    assert_eq!(task.resources.ranges("ports"), Ranges::single(31008, 31008));

    let args = valid(json!({"id": "/web", "args": ["/bin/sleep", "10"]}));
    let command =
        args.task_info(AgentId::new("a"), TaskId::new("t"), &ports).unwrap().command.unwrap();
    assert!(!command.shell);
    assert_eq!(command.value.as_deref(), Some("/bin/sleep"));
    assert_eq!(command.arguments, ["/bin/sleep", "10"]);
}

#[test]
fn health_checks_map_with_marathons_defaults() {
    let app = valid(json!({"id": "/web", "cmd": "x",
        "portDefinitions": [{"port": 0}, {"port": 0}],
        "healthChecks": [{"protocol": "HTTPS", "portIndex": 1, "path": "/h"}]}));
    let ports = offer_ports("ports:[31000-31001]");
    let check =
        app.task_info(AgentId::new("a"), TaskId::new("t"), &ports).unwrap().health_check.unwrap();
    assert_eq!(check.kind, HealthCheckKind::Http);
    let http = check.http.unwrap();
    assert_eq!(
        (http.scheme.as_deref(), http.port, http.path.as_deref()),
        (Some("https"), 31001, Some("/h"))
    );
    assert_eq!(check.grace_period, Duration::from_secs(300));
    assert_eq!(check.interval, Duration::from_secs(60));
    assert_eq!(check.timeout, Duration::from_secs(20));
    assert_eq!(check.consecutive_failures, 3);
    assert_eq!(check.delay, Duration::from_secs(15));

    let tcp = valid(json!({"id": "/web", "cmd": "x",
        "healthChecks": [{"protocol": "MESOS_TCP", "intervalSeconds": 5, "maxConsecutiveFailures": 0}]}));
    let check =
        tcp.task_info(AgentId::new("a"), TaskId::new("t"), &ports).unwrap().health_check.unwrap();
    assert_eq!(check.kind, HealthCheckKind::Tcp);
    assert_eq!(check.tcp.unwrap().port, 31000);
    assert_eq!(check.interval, Duration::from_secs(5));
    assert_eq!(check.consecutive_failures, 0);

    let fixed = valid(json!({"id": "/web", "cmd": "x",
        "healthChecks": [{"protocol": "HTTP", "port": 8080}]}));
    let check =
        fixed.task_info(AgentId::new("a"), TaskId::new("t"), &ports).unwrap().health_check.unwrap();
    assert_eq!(check.http.unwrap().port, 8080);

    let command = valid(json!({"id": "/web", "cmd": "x",
        "healthChecks": [{"protocol": "COMMAND", "command": {"value": "test -f /tmp/ok"}}]}));
    let check = command
        .task_info(AgentId::new("a"), TaskId::new("t"), &ports)
        .unwrap()
        .health_check
        .unwrap();
    assert_eq!(check.kind, HealthCheckKind::Command);
    let inner = check.command.unwrap();
    assert!(inner.shell);
    assert_eq!(inner.value.as_deref(), Some("test -f /tmp/ok"));
    assert_eq!(check.http, None);
}

#[test]
fn gpus_launch_and_out_of_range_resources_do_not() {
    let ports = offer_ports("ports:[31000-31001]");
    let huge = valid(json!({"id": "/web", "cmd": "x", "cpus": 1e300}));
    assert!(matches!(
        huge.task_info(AgentId::new("a"), TaskId::new("t"), &ports),
        Err(LaunchError::Resources(_))
    ));
    let gpus = valid(json!({"id": "/web", "cmd": "x", "gpus": 2, "portDefinitions": []}));
    let task = gpus.task_info(AgentId::new("a"), TaskId::new("t"), &ports).unwrap();
    assert_eq!(task.resources, "cpus:1;mem:128;gpus:2".parse().unwrap());
}
