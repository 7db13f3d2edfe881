//! Operator API calls and responses, and the v0 state, rendered from a real state.

use corral_mesos::operator::{
    operator_event, render_query, OperatorCall, OperatorCallJson, OperatorQuery,
};
use corral_mesos::v0::master_state;
use corral_state::{Actor, Event};
use serde_json::json;

use corral_mesos::FieldError;
use corral_testkit::state::StateBuilder;

fn about(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    value.as_object().expect("an object").clone()
}

fn parse(value: serde_json::Value) -> Result<OperatorCall, FieldError> {
    serde_json::from_value::<OperatorCallJson>(value).expect("call shape").into_call()
}

fn bad_field(value: serde_json::Value) -> String {
    match parse(value) {
        Err(FieldError { field, .. }) => field,
        other => panic!("expected a bad request, got {other:?}"),
    }
}

/// One agent, one framework, one running task, one outstanding offer.
fn busy() -> StateBuilder {
    let mut cluster = StateBuilder::default();
    cluster
        .agent("h1", "rack:a", "cpus:4;mem:1024;disk(ops):10;ports:[31000-32000]")
        .framework("web", "*");
    cluster.launch("t1", "cpus:1;mem:128").running("t1", "dXVpZA==");
    cluster.offer("*", "cpus:2");
    cluster
}

#[test]
fn queries_and_commands_are_told_apart() {
    assert_eq!(
        parse(json!({"type": "GET_STATE"})).unwrap(),
        OperatorCall::Query(OperatorQuery::State)
    );
    assert_eq!(parse(json!({"type": "SUBSCRIBE"})).unwrap(), OperatorCall::Subscribe);
    let cases = [
        json!({"type": "UPDATE_WEIGHTS", "update_weights": {"weight_infos": [{"role": "eng", "weight": 2.5}]}}),
        json!({"type": "UPDATE_QUOTA", "update_quota": {"quota_configs": [{"role": "eng", "guarantees": {"cpus": {"value": 1}}, "limits": {"cpus": {"value": 2}}}]}}),
        json!({"type": "UPDATE_MAINTENANCE_SCHEDULE", "update_maintenance_schedule": {"schedule": {"windows": [
            {"machine_ids": [{"hostname": "h1"}], "unavailability": {"start": {"nanoseconds": 1}, "duration": {"nanoseconds": 3600000000000i64}}}
        ]}}}),
        json!({"type": "START_MAINTENANCE", "start_maintenance": {"machines": [{"hostname": "h1", "ip": "127.0.0.1"}]}}),
        json!({"type": "STOP_MAINTENANCE", "stop_maintenance": {"machines": [{"ip": "127.0.0.1"}]}}),
        json!({"type": "DRAIN_AGENT", "drain_agent": {"agent_id": {"value": "a"}, "max_grace_period": {"nanoseconds": 1000}, "mark_gone": true}}),
        json!({"type": "DEACTIVATE_AGENT", "deactivate_agent": {"agent_id": {"value": "a"}}}),
        json!({"type": "REACTIVATE_AGENT", "reactivate_agent": {"agent_id": {"value": "a"}}}),
        json!({"type": "MARK_AGENT_GONE", "mark_agent_gone": {"agent_id": {"value": "a"}}}),
        json!({"type": "RESERVE_RESOURCES", "reserve_resources": {"agent_id": {"value": "a"}, "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1}, "reservations": [{"type": "DYNAMIC", "role": "eng", "principal": "ops"}]}
        ]}}),
        json!({"type": "UNRESERVE_RESOURCES", "unreserve_resources": {"agent_id": {"value": "a"}, "resources": []}}),
        json!({"type": "TEARDOWN", "teardown": {"framework_id": {"value": "f"}}}),
    ];
    let kinds: Vec<&str> = cases
        .into_iter()
        .map(|case| match parse(case).unwrap() {
            OperatorCall::Command(command) => command.kind(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            "update_weights",
            "update_quota",
            "update_maintenance_schedule",
            "start_maintenance",
            "stop_maintenance",
            "drain_agent",
            "deactivate_agent",
            "reactivate_agent",
            "mark_agent_gone",
            "reserve_resources",
            "unreserve_resources",
            "teardown"
        ]
    );
}

#[test]
fn malformed_operator_calls_name_the_field() {
    assert_eq!(bad_field(json!({"type": "GET_EVERYTHING"})), "type");
    assert_eq!(bad_field(json!({"type": "DRAIN_AGENT"})), "drain_agent");
    assert_eq!(
        bad_field(
            json!({"type": "UPDATE_WEIGHTS", "update_weights": {"weight_infos": [{"role": "eng", "weight": 0}]}})
        ),
        "update_weights.weight_infos[0].weight"
    );
    assert_eq!(
        bad_field(
            json!({"type": "UPDATE_QUOTA", "update_quota": {"quota_configs": [{"role": "eng", "guarantees": {"cpus": {"value": -1}}}]}})
        ),
        "update_quota.quota_configs[0].guarantees.cpus"
    );
    assert_eq!(
        bad_field(json!({"type": "START_MAINTENANCE", "start_maintenance": {"machines": [{}]}})),
        "start_maintenance.machines[0]"
    );
    assert_eq!(
        bad_field(
            json!({"type": "DRAIN_AGENT", "drain_agent": {"agent_id": {"value": "a"}, "max_grace_period": {"nanoseconds": -5}}})
        ),
        "drain_agent.max_grace_period"
    );
    assert_eq!(
        bad_field(json!({"type": "DEACTIVATE_AGENT", "deactivate_agent": {"agent": "a"}})),
        "deactivate_agent"
    );
}

#[test]
fn get_state_renders_agents_frameworks_tasks_and_offers() {
    let cluster = busy();
    let response = render_query(OperatorQuery::State, &cluster.state);
    assert_eq!(response["type"], "GET_STATE");
    let state = &response["get_state"];
    let agent = &state["get_agents"]["agents"][0];
    assert_eq!(agent["agent_info"]["hostname"], "h1");
    assert_eq!(agent["agent_info"]["id"]["value"], "corral-S1");
    assert_eq!(
        agent["agent_info"]["attributes"][0],
        json!({"name": "rack", "type": "TEXT", "text": {"value": "a"}})
    );
    assert_eq!(agent["active"], true);
    let task = &state["get_tasks"]["tasks"][0];
    assert_eq!(task["task_id"]["value"], "t1");
    assert_eq!(task["state"], "TASK_RUNNING");
    assert_eq!(task["status_update_uuid"], "dXVpZA==");
    assert_eq!(task["statuses"][0]["state"], "TASK_RUNNING");
    let framework = &state["get_frameworks"]["frameworks"][0];
    assert_eq!(framework["framework_info"]["name"], "web");
    assert_eq!(framework["offers"][0]["id"]["value"], "corral-O2");
    assert_eq!(framework["allocated_resources"][0]["name"], "cpus");
}

#[test]
fn roles_weights_quota_and_maintenance_render_after_operator_commands() {
    let mut cluster = busy();
    for call in [
        json!({"type": "UPDATE_WEIGHTS", "update_weights": {"weight_infos": [{"role": "eng", "weight": 2.5}]}}),
        json!({"type": "UPDATE_QUOTA", "update_quota": {"quota_configs": [{"role": "eng", "guarantees": {"cpus": {"value": 1}}, "limits": {"cpus": {"value": 2}}}]}}),
        json!({"type": "UPDATE_MAINTENANCE_SCHEDULE", "update_maintenance_schedule": {"schedule": {"windows": [
            {"machine_ids": [{"hostname": "h1"}], "unavailability": {"start": {"nanoseconds": 7}}}
        ]}}}),
    ] {
        let OperatorCall::Command(command) = parse(call).unwrap() else { panic!() };
        let outcome = cluster.apply(Actor::Operator { principal: None }, *command);
        assert!(!outcome.is_rejected(), "{outcome:?}");
    }
    let weights = render_query(OperatorQuery::Weights, &cluster.state);
    assert_eq!(weights["get_weights"]["weight_infos"], json!([{"role": "eng", "weight": 2.5}]));
    let quota = render_query(OperatorQuery::Quota, &cluster.state);
    assert_eq!(
        quota["get_quota"]["status"]["configs"][0],
        json!({"role": "eng", "guarantees": {"cpus": {"value": 1.0}}, "limits": {"cpus": {"value": 2.0}}})
    );
    let roles = render_query(OperatorQuery::Roles, &cluster.state);
    let names: Vec<&str> = roles["get_roles"]["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["*", "eng"]);
    assert_eq!(roles["get_roles"]["roles"][0]["frameworks"][0]["value"], "corral-0001");
    let status = render_query(OperatorQuery::MaintenanceStatus, &cluster.state);
    assert_eq!(
        status["get_maintenance_status"]["status"]["draining_machines"][0]["id"],
        json!({"hostname": "h1"})
    );
    let schedule = render_query(OperatorQuery::MaintenanceSchedule, &cluster.state);
    assert_eq!(
        schedule["get_maintenance_schedule"]["schedule"]["windows"][0]["unavailability"]["start"]
            ["nanoseconds"],
        7
    );
}

#[test]
fn the_v0_state_has_the_fields_dashboards_read() {
    let cluster = busy();
    let state = master_state(
        &cluster.state,
        &about(json!({"hostname": "m1", "leader": "master@127.0.0.1:5050"})),
    );
    assert_eq!(state["hostname"], "m1");
    assert_eq!(state["activated_slaves"], 1);
    let agent = &state["slaves"][0];
    assert_eq!(agent["resources"]["cpus"], 4.0);
    assert_eq!(agent["resources"]["ports"], "[31000-32000]");
    assert_eq!(agent["used_resources"]["cpus"], 1.0);
    assert_eq!(agent["offered_resources"]["cpus"], 2.0);
    assert_eq!(agent["reserved_resources"]["ops"]["disk"], 10.0);
    assert_eq!(agent["unreserved_resources"]["disk"], 0.0);
    assert_eq!(agent["attributes"]["rack"], "a");
    let framework = &state["frameworks"][0];
    assert_eq!(framework["tasks"][0]["state"], "TASK_RUNNING");
    assert_eq!(framework["tasks"][0]["slave_id"], "corral-S1");
    assert_eq!(framework["used_resources"]["mem"], 128.0);
    assert_eq!(framework["offers"][0]["resources"]["cpus"], 2.0);
}

#[test]
fn operator_stream_events_follow_log_events() {
    let cluster = busy();
    let task = cluster.state.task(&"corral-0001".into(), &"t1".into()).unwrap().clone();
    let added = operator_event(&Event::TaskAdded { task: std::sync::Arc::new(task) }).unwrap();
    assert_eq!(added["type"], "TASK_ADDED");
    assert_eq!(added["task_added"]["task"]["task_id"]["value"], "t1");
    let removed =
        operator_event(&Event::AgentRemoved { agent_id: "corral-S1".into(), by_operator: true })
            .unwrap();
    assert_eq!(
        removed,
        json!({"type": "AGENT_REMOVED", "agent_removed": {"agent_id": {"value": "corral-S1"}}})
    );
    assert!(operator_event(&Event::OfferDeclined {
        offer_id: "o".into(),
        framework_id: "f".into(),
        agent_id: "a".into()
    })
    .is_none());
}

#[test]
fn streamed_answers_equal_the_rendered_ones() {
    use corral_mesos::operator::write_query;
    let cluster = busy();
    for query in [OperatorQuery::State, OperatorQuery::Tasks, OperatorQuery::Agents] {
        let mut bytes = Vec::new();
        write_query(query, &cluster.state, &mut bytes).unwrap();
        let streamed: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(streamed, render_query(query, &cluster.state), "{query:?}");
    }
    let v0 = master_state(&cluster.state, &about(json!({"hostname": "m"})));
    let mut bytes = Vec::new();
    corral_mesos::v0::write_master_state(
        &cluster.state,
        &about(json!({"hostname": "m"})),
        &mut bytes,
    )
    .unwrap();
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&bytes).unwrap(), v0);
}
