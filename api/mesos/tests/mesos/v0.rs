//! The v0 reads rendered from a real state: `/master/tasks` paging and its bad input, the
//! smaller reads' shapes, and torn-down frameworks' tasks in v1 GET_TASKS.

use corral_mesos::operator::{render_query, OperatorQuery};
use corral_mesos::v0::reads::{
    maintenance_schedule, roles, slaves, state_summary, write_frameworks,
};
use corral_mesos::v0::tasks::{write_tasks, TaskLimit, TaskOrder, TaskQueryParams};
use corral_state::{Actor, AgentId, Command, FrameworkId};
use corral_testkit::state::{StateBuilder, AGENT, FRAMEWORK};
use serde_json::Value;

const SECOND: &str = "corral-0002";

/// Two frameworks: the first with tasks a, b, c, the second with x and y.
fn two_frameworks() -> StateBuilder {
    let mut cluster = StateBuilder::default();
    cluster.agent("h1", "rack:a", "cpus:8;mem:4096").framework("one", "*").framework("two", "*");
    for task in ["b", "a", "c"] {
        cluster.launch_for(FRAMEWORK, task, "cpus:0.5;mem:32");
    }
    for task in ["y", "x"] {
        cluster.launch_for(SECOND, task, "cpus:0.5;mem:32");
    }
    cluster
}

fn params(query: &str) -> TaskQueryParams {
    serde_json::from_value(
        query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (key, value) = pair.split_once('=').expect("key=value");
                (key.to_owned(), Value::String(value.to_owned()))
            })
            .collect::<serde_json::Map<_, _>>()
            .into(),
    )
    .expect("query")
}

fn task_ids(cluster: &StateBuilder, query: &str) -> Vec<String> {
    let query = params(query).validate().expect("a valid query");
    let mut bytes = Vec::new();
    write_tasks(&cluster.state, &query, &mut bytes).expect("tasks render");
    let body: Value = serde_json::from_slice(&bytes).expect("JSON");
    body["tasks"]
        .as_array()
        .expect("a tasks list")
        .iter()
        .map(|task| task["id"].as_str().expect("an id").to_owned())
        .collect()
}

#[test]
fn tasks_page_in_framework_then_task_order() {
    let cluster = two_frameworks();
    assert_eq!(task_ids(&cluster, "order=asc"), ["a", "b", "c", "x", "y"]);
    assert_eq!(task_ids(&cluster, ""), ["y", "x", "c", "b", "a"], "desc by default");
    assert_eq!(task_ids(&cluster, "order=asc&limit=2"), ["a", "b"]);
    assert_eq!(task_ids(&cluster, "order=asc&limit=2&offset=2"), ["c", "x"]);
    assert_eq!(task_ids(&cluster, "order=asc&offset=3"), ["x", "y"], "a whole framework skipped");
    assert_eq!(task_ids(&cluster, "order=desc&offset=1&limit=3"), ["x", "c", "b"]);
    assert_eq!(task_ids(&cluster, "order=asc&limit=-1"), ["a", "b", "c", "x", "y"]);
    assert_eq!(task_ids(&cluster, "limit=0"), Vec::<String>::new());
    assert_eq!(task_ids(&cluster, "offset=99"), Vec::<String>::new());
    assert_eq!(task_ids(&cluster, &format!("order=asc&framework_id={SECOND}")), ["x", "y"]);
    assert_eq!(task_ids(&cluster, "task_id=c"), ["c"]);
    assert_eq!(
        task_ids(&cluster, &format!("task_id=x&framework_id={FRAMEWORK}")),
        Vec::<String>::new()
    );
    assert_eq!(task_ids(&cluster, "framework_id=nobody"), Vec::<String>::new());
}

#[test]
fn tasks_query_defaults_and_bad_parameters() {
    let query = params("").validate().expect("defaults");
    assert_eq!(query.limit, TaskLimit::AtMost(100));
    assert_eq!(query.order, TaskOrder::Descending);
    assert_eq!(query.offset, 0);
    for (bad, field) in [
        ("offset=-1", "offset"),
        ("offset=x", "offset"),
        ("limit=-2", "limit"),
        ("limit=ten", "limit"),
        ("order=up", "order"),
    ] {
        let error = params(bad).validate().expect_err(bad);
        assert_eq!(error.field, field, "{bad}: {}", error.problem);
    }
}

#[test]
fn torn_down_frameworks_keep_their_tasks_visible() {
    let mut cluster = two_frameworks();
    cluster.accepted(
        Actor::Operator { principal: None },
        Command::Teardown { framework_id: FrameworkId::from(SECOND) },
    );
    // v0: the completed framework and its tasks.
    assert_eq!(task_ids(&cluster, "order=asc"), ["a", "b", "c", "x", "y"]);
    let mut bytes = Vec::new();
    write_frameworks(&cluster.state, None, &mut bytes).expect("frameworks render");
    let frameworks: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(frameworks["frameworks"].as_array().map(Vec::len), Some(1));
    assert_eq!(frameworks["completed_frameworks"][0]["id"], SECOND);
    assert_eq!(frameworks["unregistered_frameworks"], serde_json::json!([]));
    let mut bytes = Vec::new();
    write_frameworks(&cluster.state, Some(&FrameworkId::from(SECOND)), &mut bytes).expect("one");
    let one: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(one["frameworks"], serde_json::json!([]));
    assert_eq!(one["completed_frameworks"].as_array().map(Vec::len), Some(1));
    // v1: under completed_tasks, killed.
    let tasks = render_query(OperatorQuery::Tasks, &cluster.state);
    let completed: Vec<(&str, &str)> = tasks["get_tasks"]["completed_tasks"]
        .as_array()
        .expect("completed tasks")
        .iter()
        .map(|task| {
            (task["task_id"]["value"].as_str().expect("id"), task["state"].as_str().expect("state"))
        })
        .collect();
    assert_eq!(completed, [("x", "TASK_KILLED"), ("y", "TASK_KILLED")]);
    let state = render_query(OperatorQuery::State, &cluster.state);
    assert_eq!(
        state["get_state"]["get_tasks"]["completed_tasks"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(state["get_state"]["get_tasks"]["tasks"].as_array().map(Vec::len), Some(3));
}

#[test]
fn slaves_roles_summary_and_schedule_have_mesos_shapes() {
    let cluster = two_frameworks();
    let all = slaves(&cluster.state, None);
    assert_eq!(all["slaves"][0]["id"], AGENT);
    assert_eq!(all["slaves"][0]["hostname"], "h1");
    assert_eq!(all["slaves"][0]["resources"]["cpus"], 8.0);
    assert_eq!(all["slaves"][0]["used_resources"]["cpus"], 2.5);
    assert_eq!(all["recovered_slaves"], serde_json::json!([]));
    assert_eq!(
        slaves(&cluster.state, Some(&AgentId::from("nope")))["slaves"],
        serde_json::json!([])
    );

    let roles = roles(&cluster.state);
    assert_eq!(roles["roles"][0]["name"], "*");
    assert_eq!(roles["roles"][0]["weight"], 1.0);
    assert_eq!(roles["roles"][0]["frameworks"], serde_json::json!([FRAMEWORK, SECOND]));
    assert_eq!(roles["roles"][0]["allocated"]["mem"], 160.0);

    let summary = state_summary(&cluster.state, "m1", "c");
    assert_eq!(summary["hostname"], "m1");
    assert_eq!(summary["slaves"][0]["TASK_STAGING"], 5);
    assert_eq!(summary["slaves"][0]["framework_ids"], serde_json::json!([FRAMEWORK, SECOND]));
    assert_eq!(summary["frameworks"][1]["TASK_STAGING"], 2);
    assert_eq!(summary["frameworks"][1]["slave_ids"], serde_json::json!([AGENT]));
    assert!(summary["frameworks"][0].get("tasks").is_none(), "no task lists in a summary");

    assert_eq!(maintenance_schedule(&cluster.state), serde_json::json!({"windows": []}));
}
