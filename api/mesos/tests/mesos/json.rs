//! The Mesos v1 JSON layer against the shapes in the Mesos 1.11 docs, and against the real
//! state machine.

use std::time::Duration;

use corral_mesos::call::{CallJson, SchedulerCall};
use corral_mesos::convert::{
    resources_from_json, resources_to_json, task_info_from_json, task_info_to_json,
};
use corral_mesos::events::scheduler_events;
use corral_mesos::json::ResourceJson;
use corral_mesos::recordio::{decode_records, encode_record};
use corral_mesos::FieldError;
use corral_state::model::{AgentInfo, Attributes, FrameworkCapability, KillPolicy, TaskState};
use corral_state::{
    Actor, ClusterState, Command, Entry, Event, Operation, Outcome, RequestId, Reservation,
    Resources, Role, Timestamp,
};
use serde_json::json;

fn call(value: serde_json::Value) -> Result<SchedulerCall, FieldError> {
    serde_json::from_value::<CallJson>(value).expect("call shape").into_call()
}

fn bad_field(value: serde_json::Value) -> String {
    match call(value) {
        Err(FieldError { field, .. }) => field,
        other => panic!("expected a bad request, got {other:?}"),
    }
}

#[test]
fn the_documented_subscribe_call_parses() {
    let parsed = call(json!({
        "type": "SUBSCRIBE",
        "subscribe": {
            "framework_info": {
                "user": "foo",
                "name": "Example HTTP Framework",
                "roles": ["test"],
                "capabilities": [{"type": "MULTI_ROLE"}, {"type": "PARTITION_AWARE"}],
                "failover_timeout": 60.5
            }
        }
    }))
    .unwrap();
    let SchedulerCall::Subscribe { framework_id: None, info } = parsed else {
        panic!("{parsed:?}")
    };
    assert_eq!(info.roles, vec![Role::parse("test").unwrap()]);
    assert!(info.capabilities.contains(&FrameworkCapability::PartitionAware));
    assert_eq!(info.failover_timeout, Duration::from_millis(60_500));
    assert_eq!(info.user, "foo");
}

#[test]
fn a_legacy_single_role_and_no_failover_timeout_get_mesos_defaults() {
    let parsed = call(json!({
        "type": "SUBSCRIBE",
        "framework_id": {"value": "corral-0007"},
        "subscribe": {"framework_info": {"user": "u", "name": "n", "role": "web"}}
    }))
    .unwrap();
    let SchedulerCall::Subscribe { framework_id: Some(id), info } = parsed else { panic!() };
    assert_eq!(id.as_str(), "corral-0007");
    assert_eq!(info.roles, vec![Role::parse("web").unwrap()]);
    assert_eq!(info.failover_timeout, Duration::ZERO);
    assert!(!info.checkpoint);
}

fn documented_accept() -> serde_json::Value {
    json!({
        "framework_id": {"value": "corral-0001"},
        "type": "ACCEPT",
        "accept": {
            "offer_ids": [{"value": "corral-O1"}],
            "operations": [{
                "type": "LAUNCH",
                "launch": {
                    "task_infos": [{
                        "name": "My Task",
                        "task_id": {"value": "my-task"},
                        "agent_id": {"value": "corral-S1"},
                        "command": {"shell": true, "value": "sleep 1000"},
                        "resources": [
                            {"allocation_info": {"role": "*"}, "name": "cpus", "role": "*", "type": "SCALAR", "scalar": {"value": 1.0}},
                            {"allocation_info": {"role": "*"}, "name": "mem", "role": "*", "type": "SCALAR", "scalar": {"value": 128.0}},
                            {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31000, "end": 31001}]}}
                        ],
                        "kill_policy": {"grace_period": {"nanoseconds": 2000000000}},
                        "health_check": {"type": "TCP", "tcp": {"port": 31000}, "interval_seconds": 2.0}
                    }]
                }
            }],
            "filters": {"refuse_seconds": 5.0}
        }
    })
}

#[test]
fn the_documented_accept_call_parses_into_a_launch() {
    let SchedulerCall::Command { framework_id, command } = call(documented_accept()).unwrap()
    else {
        panic!()
    };
    assert_eq!(framework_id.as_str(), "corral-0001");
    let Command::Accept { offer_ids, operations, filters, .. } = command else { panic!() };
    assert_eq!(offer_ids[0].as_str(), "corral-O1");
    assert_eq!(filters.refuse, Duration::from_secs(5));
    let [Operation::Launch { task_infos }] = &operations[..] else { panic!() };
    let task = &task_infos[0];
    assert_eq!(task.resources, "cpus:1;mem:128;ports:[31000-31001]".parse::<Resources>().unwrap());
    assert_eq!(task.kill_policy, Some(KillPolicy { grace_period: Some(Duration::from_secs(2)) }));
    let check = task.health_check.as_ref().unwrap();
    assert_eq!(check.interval, Duration::from_secs(2));
    assert_eq!(check.consecutive_failures, 3, "Mesos default");
    assert!(task.command.as_ref().unwrap().shell);
}

#[test]
fn every_scheduler_call_type_parses() {
    let framework = json!({"value": "corral-0001"});
    let cases = [
        json!({"type": "TEARDOWN", "framework_id": framework}),
        json!({"type": "DECLINE", "framework_id": framework, "decline": {"offer_ids": [{"value": "o"}], "filters": {"refuse_seconds": 0.5}}}),
        json!({"type": "REVIVE", "framework_id": framework, "revive": {"roles": ["a"]}}),
        json!({"type": "REVIVE", "framework_id": framework}),
        json!({"type": "SUPPRESS", "framework_id": framework, "suppress": {"roles": []}}),
        json!({"type": "KILL", "framework_id": framework, "kill": {"task_id": {"value": "t"}, "agent_id": {"value": "a"}}}),
        json!({"type": "SHUTDOWN", "framework_id": framework, "shutdown": {"executor_id": {"value": "e"}, "agent_id": {"value": "a"}}}),
        json!({"type": "ACKNOWLEDGE", "framework_id": framework, "acknowledge": {"agent_id": {"value": "a"}, "task_id": {"value": "t"}, "uuid": "AAEC"}}),
        json!({"type": "RECONCILE", "framework_id": framework, "reconcile": {"tasks": [{"task_id": {"value": "t"}}]}}),
        json!({"type": "RECONCILE", "framework_id": framework, "reconcile": {}}),
        json!({"type": "MESSAGE", "framework_id": framework, "message": {"agent_id": {"value": "a"}, "executor_id": {"value": "e"}, "data": "aGVsbG8="}}),
    ];
    let kinds: Vec<&str> = cases
        .into_iter()
        .map(|case| match call(case).unwrap() {
            SchedulerCall::Command { command, .. } => command.kind(),
            SchedulerCall::Subscribe { .. } => "subscribe",
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            "teardown",
            "decline",
            "revive",
            "revive",
            "suppress",
            "kill",
            "shutdown",
            "acknowledge",
            "reconcile",
            "reconcile",
            "message"
        ]
    );
}

#[test]
fn malformed_calls_name_the_field() {
    assert_eq!(
        bad_field(json!({"type": "LAUNCH_ROCKETS", "framework_id": {"value": "f"}})),
        "type"
    );
    assert_eq!(bad_field(json!({"type": "KILL"})), "framework_id");
    assert_eq!(bad_field(json!({"type": "KILL", "framework_id": {"value": "f"}})), "kill");
    assert_eq!(
        bad_field(
            json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "u", "name": ""}}})
        ),
        "subscribe.framework_info.name"
    );
    assert_eq!(
        bad_field(
            json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "u", "name": "n", "roles": ["a", "b"]}}})
        ),
        "subscribe.framework_info.roles"
    );
    assert_eq!(
        bad_field(
            json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "u", "name": "n", "role": "/bad"}}})
        ),
        "subscribe.framework_info.role"
    );
    assert_eq!(
        bad_field(
            json!({"type": "MESSAGE", "framework_id": {"value": "f"}, "message": {"agent_id": {"value": "a"}, "executor_id": {"value": "e"}, "data": "@@@"}})
        ),
        "message.data"
    );
    assert_eq!(
        bad_field(
            json!({"type": "DECLINE", "framework_id": {"value": "f"}, "decline": {"offer_ids": [], "filters": {"refuse_seconds": -1.0}}})
        ),
        "filters.refuse_seconds"
    );
    let mut accept = documented_accept();
    accept["accept"]["operations"][0]["launch"]["task_infos"][0]["resources"][1]["scalar"]
        ["value"] = json!(-5.0);
    assert_eq!(
        bad_field(accept),
        "accept.operations[0].launch.task_infos[0].resources[1].scalar.value"
    );
    let mut accept = documented_accept();
    accept["accept"]["operations"][0]["launch"]["task_infos"][0]["resources"][2]["ranges"]
        ["range"][0] = json!({"begin": 5, "end": 1});
    assert_eq!(bad_field(accept), "accept.operations[0].launch.task_infos[0].resources[2].ranges");
    let mut accept = documented_accept();
    accept["accept"]["operations"][0]["type"] = json!("CREATE");
    assert_eq!(bad_field(accept), "accept.operations[0].type");
    let mut accept = documented_accept();
    accept["accept"]["operations"][0]["launch"]["task_infos"][0]["health_check"] =
        json!({"type": "HTTP"});
    assert_eq!(bad_field(accept), "accept.operations[0].launch.task_infos[0].health_check.http");
}

#[test]
fn resources_round_trip_with_reservations() {
    let reserved = Resources::from_list(
        "cpus:2"
            .parse::<Resources>()
            .unwrap()
            .iter()
            .map(|r| {
                r.clone().reserved(Reservation::Dynamic {
                    role: Role::parse("eng").unwrap(),
                    principal: Some("ops".into()),
                })
            })
            .collect(),
    )
    .unwrap();
    let resources = "cpus:1.5;mem:256;disk(ops):10;ports:[31000-31010];zones:{a,b}"
        .parse::<Resources>()
        .unwrap()
        .plus(&reserved);
    let json = resources_to_json(&resources, Some(&Role::parse("eng").unwrap()));
    let text = serde_json::to_string(&json).unwrap();
    let back: Vec<ResourceJson> = serde_json::from_str(&text).unwrap();
    assert_eq!(resources_from_json(&back, "resources").unwrap(), resources);
    let cpus = json.iter().find(|r| r.name == "cpus" && r.reservations.is_empty()).unwrap();
    assert_eq!(
        serde_json::to_value(cpus).unwrap(),
        json!({"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.5}, "role": "*", "allocation_info": {"role": "eng"}})
    );
}

#[test]
fn task_infos_round_trip() {
    let SchedulerCall::Command { command: Command::Accept { operations, .. }, .. } =
        call(documented_accept()).unwrap()
    else {
        panic!()
    };
    let [Operation::Launch { task_infos }] = &operations[..] else { panic!() };
    let json = task_info_to_json(&task_infos[0], None);
    assert_eq!(task_info_from_json(&json, "task").unwrap(), task_infos[0]);
}

#[test]
fn recordio_frames_and_unframes() {
    let mut stream = Vec::new();
    stream.extend_from_slice(&encode_record(br#"{"type":"HEARTBEAT"}"#));
    stream.extend_from_slice(&encode_record("{\"ünï\":1}".as_bytes()));
    stream.extend_from_slice(b"12\n{\"part");
    assert_eq!(&stream[..3], b"20\n");
    let records = decode_records(&mut stream).unwrap();
    assert_eq!(
        records,
        vec![br#"{"type":"HEARTBEAT"}"#.to_vec(), "{\"ünï\":1}".as_bytes().to_vec()]
    );
    assert_eq!(stream, b"12\n{\"part");
    let mut garbage = b"x\n".to_vec();
    assert!(decode_records(&mut garbage).is_err());
}

/// Parsed calls drive the real state machine; the events it produces render as the
/// framework's stream would carry them.
#[test]
fn a_parsed_launch_runs_through_the_state_and_renders_mesos_events() {
    let mut state = ClusterState::default();
    let mut request = 0;
    let mut apply = |state: &mut ClusterState, actor: Actor, command: Command| {
        request += 1;
        state.apply(&Entry {
            request_id: RequestId::new(format!("r{request}")),
            actor,
            at: Timestamp::from_secs(100),
            command,
        })
    };
    let info = AgentInfo {
        hostname: "h1".into(),
        address: "127.0.0.1:5051".into(),
        attributes: Attributes::default(),
    };
    apply(
        &mut state,
        Actor::Leader,
        Command::RegisterAgent {
            info,
            resources: "cpus:4;mem:1024;ports:[31000-32000]".parse().unwrap(),
        },
    );
    let SchedulerCall::Subscribe { info, .. } = call(
        json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "u", "name": "n"}}}),
    )
    .unwrap() else {
        panic!()
    };
    let subscribed =
        apply(&mut state, Actor::Leader, Command::Subscribe { framework_id: None, info });
    let [Event::FrameworkAdded { framework_id, .. }] = subscribed.events() else { panic!() };
    let framework_id = framework_id.clone();
    let offered = apply(
        &mut state,
        Actor::Leader,
        Command::OfferResources {
            offers: vec![corral_state::OfferSpec {
                framework_id: framework_id.clone(),
                agent_id: "corral-S1".into(),
                role: Role::default_role(),
                resources: "cpus:4;mem:1024;ports:[31000-32000]".parse().unwrap(),
            }],
        },
    );
    let rendered = scheduler_events(&framework_id, &offered.events()[0]);
    assert_eq!(rendered[0]["type"], "OFFERS");
    assert_eq!(rendered[0]["offers"]["offers"][0]["id"]["value"], "corral-O1");
    assert_eq!(rendered[0]["offers"]["offers"][0]["allocation_info"]["role"], "*");
    assert!(scheduler_events(&"someone-else".into(), &offered.events()[0]).is_empty());

    let SchedulerCall::Command { command, .. } = call(documented_accept()).unwrap() else {
        panic!()
    };
    let accepted = apply(&mut state, Actor::Framework(framework_id.clone()), command);
    let Outcome::Accepted(events) = accepted else { panic!("{accepted:?}") };
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::TaskAdded { task } if task.state == TaskState::Staging)));

    let status = corral_state::model::TaskStatus {
        task_id: "my-task".into(),
        state: TaskState::Running,
        message: None,
        source: corral_state::model::TaskSource::Executor,
        reason: None,
        healthy: Some(true),
        agent_id: Some("corral-S1".into()),
        executor_id: None,
        timestamp: Timestamp::default(),
        uuid: Some("AAECAwQFBgcICQoLDA0ODw==".into()),
        exit_code: None,
    };
    let updated = apply(
        &mut state,
        Actor::Agent("corral-S1".into()),
        Command::UpdateStatus { framework_id: framework_id.clone(), status },
    );
    let rendered = scheduler_events(&framework_id, &updated.events()[0]);
    assert_eq!(
        rendered[0],
        json!({"type": "UPDATE", "update": {"status": {
            "task_id": {"value": "my-task"},
            "state": "TASK_RUNNING",
            "source": "SOURCE_EXECUTOR",
            "healthy": true,
            "agent_id": {"value": "corral-S1"},
            "timestamp": 100.0,
            "uuid": "AAECAwQFBgcICQoLDA0ODw=="
        }}})
    );

    // A documented ACKNOWLEDGE with that uuid clears it.
    let SchedulerCall::Command { command, .. } = call(json!({
        "type": "ACKNOWLEDGE",
        "framework_id": {"value": framework_id.as_str()},
        "acknowledge": {"agent_id": {"value": "corral-S1"}, "task_id": {"value": "my-task"}, "uuid": "AAECAwQFBgcICQoLDA0ODw=="}
    }))
    .unwrap() else { panic!() };
    let acknowledged = apply(&mut state, Actor::Framework(framework_id.clone()), command);
    assert!(matches!(acknowledged.events(), [Event::StatusAcknowledged { .. }]));
}
