//! The audit routes on three masters, asked through a follower: a Marathon instance's
//! history with the operator who killed it, the state before and after the kill, the diff,
//! the command trail, the chain on every master, and bad input named by parameter.

use axum::http::{Method, StatusCode};
use corral_state::model::{AgentInfo, Attributes};
use corral_state::{Actor, Command, RequestId};
use corral_testkit::eventually;
use serde_json::{json, Value};

use super::support::{ndjson_line, read_stream, request, TestMasters, LONG};

/// An agent (registered by hand: nothing runs tasks here), then app `/web` with one
/// instance. Returns the instance's task id and the app's deployment id.
async fn one_instance(cluster: &TestMasters, leader: usize) -> (String, String) {
    let info = AgentInfo {
        hostname: "host-a".to_owned(),
        address: "10.0.0.1:5051".to_owned(),
        attributes: Attributes::default(),
    };
    let register = Command::RegisterAgent {
        info,
        resources: "cpus:4;mem:4096;disk:1000;ports:[31000-32000]".parse().unwrap(),
    };
    let node = cluster.masters[leader].master.node();
    node.propose(RequestId::new("register-host-a"), Actor::Leader, register).await.unwrap();
    let app = json!({"id": "/web", "cmd": "sleep 100", "cpus": 0.1, "mem": 32, "instances": 1});
    let created = cluster.send(leader, Method::POST, "/v2/apps", Some(&app)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let deployment =
        created.body["deployments"][0]["id"].as_str().expect("a deployment").to_owned();
    let task_id = eventually(LONG, "the instance to launch", || async {
        let tasks = cluster.send(leader, Method::GET, "/v2/apps/web/tasks", None).await;
        tasks.body["tasks"][0]["id"].as_str().map(str::to_owned)
    })
    .await;
    (task_id, deployment)
}

async fn applied_everywhere(cluster: &TestMasters, index: u64) {
    eventually(LONG, "every master to apply the kill", || async {
        cluster.masters.iter().all(|test| test.master.node().applied_index() >= index).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn any_master_answers_history_state_diff_and_trail() {
    let cluster = TestMasters::start(3).await;
    let leader = cluster.leader().await;
    let follower = cluster.follower_of(leader);
    let (task_id, created_deployment) = one_instance(&cluster, leader).await;
    let before_kill = cluster.masters[leader].master.node().applied_index();
    let kill = json!({"ids": [task_id]});
    let killed = cluster.send(leader, Method::POST, "/v2/tasks/delete", Some(&kill)).await;
    assert_eq!(killed.status, StatusCode::OK, "{}", killed.body);
    let after_kill = cluster.masters[leader].master.node().applied_index();
    applied_everywhere(&cluster, after_kill).await;

    // History, from a follower.
    let path = format!("/corral/v1/history?task={task_id}");
    let history = cluster.send(follower, Method::GET, &path, None).await;
    assert_eq!(history.status, StatusCode::OK, "{}", history.body);
    let records = history.body.as_array().unwrap();
    let commands: Vec<&str> = records.iter().map(|r| r["command"].as_str().unwrap()).collect();
    assert_eq!(commands, vec!["launch_service_tasks", "kill_service_tasks"], "{records:?}");
    let kill_record = &records[1];
    assert_eq!(kill_record["actor"], json!({"kind": "operator", "id": "anonymous"}));
    assert_eq!(kill_record["outcome"], "accepted");
    let kill_index = kill_record["index"].as_u64().unwrap();
    assert!(kill_record["time"].as_str().unwrap().ends_with('Z'));
    let kinds: Vec<&str> = kill_record["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"task_kill_requested"), "{kinds:?}");
    assert_eq!(records[0]["actor"], json!({"kind": "leader"}));

    let ndjson = cluster.send(follower, Method::GET, &format!("{path}&format=ndjson"), None).await;
    assert_eq!(ndjson.headers["content-type"], "application/x-ndjson");
    assert_eq!(ndjson.body.as_str().unwrap().lines().count(), 2);

    // The state before and after the kill.
    let state_path = |index: u64| format!("/corral/v1/state?at={index}");
    let before = cluster.send(follower, Method::GET, &state_path(kill_index - 1), None).await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.body);
    assert_eq!(before.headers["corral-state-index"], (kill_index - 1).to_string().as_str());
    assert_eq!(before.body["corral_state"]["index"], kill_index - 1);
    let task_in = |body: &Value| -> Value {
        body["frameworks"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|framework| framework["tasks"].as_array().unwrap().clone())
            .find(|task| task["id"] == task_id.as_str())
            .unwrap_or(Value::Null)
    };
    assert_eq!(task_in(&before.body)["state"], "TASK_STAGING");
    let v1 = cluster
        .send(follower, Method::GET, &format!("{}&format=v1", state_path(kill_index)), None)
        .await;
    assert_eq!(v1.body["type"], "GET_STATE");
    assert!(v1.body["get_state"]["get_tasks"].is_object(), "{}", v1.body);
    // Every master rebuilds the same state at the same index.
    let digests: Vec<Value> = {
        let mut digests = Vec::new();
        for index in 0..3 {
            let answer = cluster.send(index, Method::GET, &state_path(kill_index), None).await;
            digests.push(answer.body["corral_state"]["digest"].clone());
        }
        digests
    };
    assert!(digests.windows(2).all(|pair| pair[0] == pair[1]), "{digests:?}");

    // The diff over the whole run names the app and the task.
    let diff_path = format!("/corral/v1/diff?from={before_kill}&to={after_kill}");
    let diff = cluster.send(follower, Method::GET, &diff_path, None).await;
    assert_eq!(diff.status, StatusCode::OK, "{}", diff.body);
    let whole = cluster
        .send(follower, Method::GET, &format!("/corral/v1/diff?from=1&to={after_kill}"), None)
        .await;
    assert_eq!(whole.body["apps"]["added"][0]["id"], "/web", "{}", whole.body);
    assert_eq!(whole.body["tasks"]["added"][0]["id"], task_id.as_str(), "{}", whole.body);

    // The trail, filtered to the operator's commands, streamed as NDJSON.
    let response = cluster
        .respond(
            follower,
            request(Method::GET, "/corral/v1/commands?actor=operator:anonymous", None, &[]),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let lines = read_stream(response, ndjson_line, |lines| lines.len() >= 2).await;
    let trail: Vec<&str> = lines.iter().map(|line| line["command"].as_str().unwrap()).collect();
    assert_eq!(trail, vec!["put_app", "kill_service_tasks"]);

    // Why the task ran where it did, and who killed it.
    let why = cluster
        .send(follower, Method::GET, &format!("/corral/v1/explain/task/{task_id}"), None)
        .await;
    assert_eq!(why.status, StatusCode::OK, "{}", why.body);
    assert_eq!(why.body["offer"]["hostname"], "host-a", "{}", why.body);
    assert_eq!(why.body["offer"]["allocator"]["reproduced"], true, "{}", why.body);
    assert!(why.body["offer"]["allocator"]["framework"]["reasons"].is_array(), "{}", why.body);
    assert_eq!(why.body["launch"]["command"], "launch_service_tasks");
    assert_eq!(why.body["launch"]["actor"], json!({"kind": "leader"}));
    assert_eq!(why.body["kills"][0]["actor"], json!({"kind": "operator", "id": "anonymous"}));
    let steps: Vec<&str> =
        why.body["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(steps[..3], ["offered", "launched", "kill requested"], "{steps:?}");
    let unknown = cluster.send(follower, Method::GET, "/corral/v1/explain/task/nobody", None).await;
    assert_eq!(
        (unknown.status, unknown.body["field"].clone()),
        (StatusCode::NOT_FOUND, json!("id"))
    );

    // The app's deployment: its plan steps and how it ended.
    let deployment = created_deployment.as_str();
    let plan = cluster
        .send(follower, Method::GET, &format!("/corral/v1/explain/deployment/{deployment}"), None)
        .await;
    assert_eq!(plan.status, StatusCode::OK, "{}", plan.body);
    assert_eq!(plan.body["app_id"], "/web");
    let kinds: Vec<&str> = plan.body["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(kinds[..2], ["put_app", "launch_service_tasks"], "{}", plan.body);

    // The same chain head on every master once they have applied the same entries.
    let leader_node = cluster.masters[leader].master.node();
    let index = leader_node.applied_index();
    applied_everywhere(&cluster, index).await;
    eventually(LONG, "the same chain on every master", || async {
        let mut chains = Vec::new();
        for master in 0..3 {
            chains.push(
                cluster.send(master, Method::GET, "/corral/v1/cluster", None).await.body["chain"]
                    .clone(),
            );
        }
        let same = chains.windows(2).all(|pair| pair[0] == pair[1]);
        (same && chains[0]["hash"].as_str().is_some_and(|hash| hash.len() == 64)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_audit_queries_are_refused_naming_the_parameter() {
    let cluster = TestMasters::start(1).await;
    let leader = cluster.leader().await;
    one_instance(&cluster, leader).await;
    let applied = cluster.masters[leader].master.node().applied_index();
    let beyond = applied + 1000;
    let cases: Vec<(String, StatusCode, &str)> = vec![
        ("/corral/v1/history?task=nobody".into(), StatusCode::NOT_FOUND, "task"),
        ("/corral/v1/history".into(), StatusCode::BAD_REQUEST, "task"),
        ("/corral/v1/history?task=".into(), StatusCode::BAD_REQUEST, "task"),
        ("/corral/v1/history?app=/web&from=soon".into(), StatusCode::BAD_REQUEST, "from"),
        ("/corral/v1/history?app=/web&from=3&to=2".into(), StatusCode::BAD_REQUEST, "to"),
        ("/corral/v1/history?app=/web&limit=0".into(), StatusCode::BAD_REQUEST, "limit"),
        ("/corral/v1/history?app=/web&format=xml".into(), StatusCode::BAD_REQUEST, "format"),
        (format!("/corral/v1/state?at={beyond}"), StatusCode::NOT_FOUND, "at"),
        ("/corral/v1/state?time=2999-01-01T00:00:00Z".into(), StatusCode::BAD_REQUEST, "time"),
        ("/corral/v1/state?time=1970-01-01T00:00:01Z".into(), StatusCode::GONE, "time"),
        ("/corral/v1/state?time=noon".into(), StatusCode::BAD_REQUEST, "time"),
        ("/corral/v1/state?at=1&time=1".into(), StatusCode::BAD_REQUEST, "at"),
        ("/corral/v1/state?format=v2".into(), StatusCode::BAD_REQUEST, "format"),
        ("/corral/v1/diff?from=1".into(), StatusCode::BAD_REQUEST, "to"),
        ("/corral/v1/diff?from=5&to=4".into(), StatusCode::BAD_REQUEST, "to"),
        ("/corral/v1/commands?actor=someone".into(), StatusCode::BAD_REQUEST, "actor"),
        ("/corral/v1/commands?outcome=maybe".into(), StatusCode::BAD_REQUEST, "outcome"),
    ];
    for (path, status, field) in cases {
        let answer = cluster.send(leader, Method::GET, &path, None).await;
        assert_eq!(answer.status, status, "{path}: {}", answer.body);
        assert_eq!(answer.body["field"], field, "{path}: {}", answer.body);
        assert!(answer.body["message"].is_string(), "{path}: {}", answer.body);
    }
    let gone =
        cluster.send(leader, Method::GET, "/corral/v1/state?time=1970-01-01T00:00:01Z", None).await;
    assert!(gone.body["oldest"].is_string(), "{}", gone.body);
}
