//! The agent's HTTP API: every route's shape and status codes, in-process, with real tasks.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use corral_agent::daemon::{AgentConfig, AgentError, OnStop};
use corral_state::model::TaskState;
use serde_json::json;

use crate::running::{encode, TestAgent};
use crate::support::shell_task;

const LOOP: &str = "while true; do sleep 0.1; done";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_version_and_unknown_routes() {
    let agent = TestAgent::start("api-basics", OnStop::KillTasks).await;

    let (status, health) = agent.get_json("/health").await;
    assert_eq!((status, health), (StatusCode::OK, json!({"healthy": true})));

    let (status, version) = agent.get_json("/version").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(version["version"], "1.11.0");
    assert_eq!(version["corral_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(version["build_user"], "corral");

    let (status, error) = agent.get_json("/no/such/route").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["error"], "not_found");
    assert!(error["message"].as_str().unwrap().contains("/no/such/route"), "{error}");

    let post = Request::post("/state").body(Body::empty()).expect("request");
    let (status, _) = agent.request(post).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_listens_on_the_address_masters_are_told() {
    let agent = TestAgent::start("api-listen", OnStop::KillTasks).await;
    let address = agent.running().http_address();
    assert_ne!(address.port(), 0);

    let health = reqwest::get(format!("http://{address}/health")).await.expect("reachable");
    assert_eq!(health.status(), reqwest::StatusCode::OK);
    assert_eq!(agent.master.agent_address(), address.to_string());
    let (_, state) = agent.get_json("/state").await;
    assert_eq!(state["pid"], format!("slave(1)@{address}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_shows_live_and_completed_tasks_in_the_mesos_shape() {
    let agent = TestAgent::start("api-state", OnStop::KillTasks).await;
    agent.launch(shell_task("state-long", "cpus:0.5;mem:64", LOOP));
    agent.launch(shell_task("state-short", "cpus:0.25;mem:32", "echo done"));
    agent.master.wait_for_state("state-long", TaskState::Running).await;
    agent.master.wait_for_state("state-short", TaskState::Finished).await;
    let framework_id = agent.framework_id();

    let (status, state) = agent.get_json("/state").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(state["id"], agent.agent_id.as_str());
    assert_eq!(state["hostname"], "api-state.test");
    assert_eq!(state["version"], "1.11.0");
    assert_eq!(state["master_hostname"], "127.0.0.1");
    assert_eq!(state["resources"]["cpus"], 4.0);
    assert_eq!(state["resources"]["mem"], 4096.0);
    assert_eq!(state["resources"]["ports"], "[31000-32000]");
    assert_eq!(state["attributes"], json!({"rack": "r1", "zone": 2.0}));
    assert_eq!(state["flags"]["master"], agent.master.address.as_str());
    assert!(state["start_time"].as_f64().unwrap() > 0.0);

    let frameworks = state["frameworks"].as_array().unwrap();
    assert_eq!(frameworks.len(), 1, "{state}");
    let framework = &frameworks[0];
    assert_eq!(framework["id"], framework_id.as_str());
    let executors = framework["executors"].as_array().unwrap();
    assert_eq!(executors.len(), 1, "{framework}");
    let executor = &executors[0];
    assert_eq!(executor["id"], "state-long");
    assert_eq!(executor["source"], "state-long");
    assert_eq!(executor["type"], "COMMAND");
    assert_eq!(executor["directory"], agent.sandbox("state-long").display().to_string());
    assert_eq!(executor["resources"]["cpus"], 0.5);
    assert_eq!(executor["completed_tasks"], json!([]));
    let task = &executor["tasks"][0];
    assert_eq!(task["id"], "state-long");
    assert_eq!(task["name"], "state-long");
    assert_eq!(task["framework_id"], framework_id.as_str());
    assert_eq!(task["executor_id"], "");
    assert_eq!(task["slave_id"], agent.agent_id.as_str());
    assert_eq!(task["state"], "TASK_RUNNING");
    assert_eq!(task["role"], "*");
    assert_eq!(task["resources"]["mem"], 64.0);
    let states: Vec<&str> =
        task["statuses"].as_array().unwrap().iter().map(|s| s["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["TASK_STARTING", "TASK_RUNNING"]);

    let completed = framework["completed_executors"].as_array().unwrap();
    assert_eq!(completed.len(), 1, "{framework}");
    assert_eq!(completed[0]["id"], "state-short");
    assert_eq!(completed[0]["tasks"], json!([]));
    assert_eq!(completed[0]["completed_tasks"][0]["state"], "TASK_FINISHED");
    assert_eq!(state["completed_frameworks"], json!([]));

    agent.master.kill("state-long");
    agent.master.wait_for_state("state-long", TaskState::Killed).await;
    let (_, state) = agent.get_json("/state.json").await;
    assert_eq!(state["frameworks"], json!([]), "{state}");
    let done = &state["completed_frameworks"][0];
    assert_eq!(done["id"], framework_id.as_str());
    let ids: Vec<&str> = done["completed_executors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|executor| executor["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["state-long", "state-short"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_snapshot_uses_mesos_keys() {
    let agent = TestAgent::start("api-snapshot", OnStop::KillTasks).await;
    agent.launch(shell_task("snapshot-long", "cpus:0.5;mem:64;disk:10", LOOP));
    agent.launch(shell_task("snapshot-fails", "cpus:0.1;mem:32", "exit 3"));
    agent.master.wait_for_state("snapshot-long", TaskState::Running).await;
    agent.master.wait_for_state("snapshot-fails", TaskState::Failed).await;

    // The log commits an update before the agent hears so: wait for the agent's count.
    let snapshot = agent
        .poll_json("/metrics/snapshot", |snapshot| snapshot["slave/valid_status_updates"] == 5.0)
        .await;
    let value = |key: &str| snapshot[key].as_f64().unwrap_or_else(|| panic!("{key}: {snapshot}"));
    assert_eq!(value("slave/registered"), 1.0);
    assert!(value("slave/uptime_secs") > 0.0);
    assert_eq!(value("slave/tasks_running"), 1.0);
    assert_eq!(value("slave/tasks_staging"), 0.0);
    assert_eq!(value("slave/tasks_failed"), 1.0);
    assert_eq!(value("slave/tasks_finished"), 0.0);
    assert_eq!(value("slave/executors_running"), 1.0);
    assert_eq!(value("slave/frameworks_active"), 1.0);
    assert_eq!(value("slave/cpus_total"), 4.0);
    assert_eq!(value("slave/cpus_used"), 0.5);
    assert_eq!(value("slave/cpus_percent"), 0.125);
    assert_eq!(value("slave/mem_total"), 4096.0);
    assert_eq!(value("slave/mem_used"), 64.0);
    assert_eq!(value("slave/disk_used"), 10.0);
    assert_eq!(value("slave/invalid_status_updates"), 0.0);
    assert!(value("system/mem_total_bytes") > 0.0);
    assert!(value("system/cpus_total") >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_statistics_has_the_mesos_shape() {
    let agent = TestAgent::start("api-monitor", OnStop::KillTasks).await;
    agent.launch(shell_task("monitor-task", "cpus:0.5;mem:64", LOOP));
    agent.master.wait_for_state("monitor-task", TaskState::Running).await;

    let entry = crate::usage::statistics_of(&agent, "monitor-task", |_| true).await;
    let keys: Vec<&String> = entry.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["executor_id", "executor_name", "framework_id", "source", "statistics"]);
    assert_eq!(entry["executor_id"], "monitor-task");
    assert_eq!(entry["source"], "monitor-task");
    assert_eq!(entry["executor_name"], "Command Executor (Task: monitor-task)");
    assert_eq!(entry["framework_id"], agent.framework_id().as_str());
    let statistics = &entry["statistics"];
    for key in ["timestamp", "cpus_user_time_secs", "cpus_system_time_secs", "mem_rss_bytes"] {
        assert!(statistics[key].is_number(), "{key}: {statistics}");
    }
    assert_eq!(statistics["cpus_limit"], 0.5);
    assert_eq!(statistics["mem_limit_bytes"], 64 * 1024 * 1024);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_name_the_parameter() {
    let agent = TestAgent::start("api-errors", OnStop::KillTasks).await;
    agent.launch(shell_task("errors-task", "cpus:0.1;mem:32", LOOP));
    agent.master.wait_for_state("errors-task", TaskState::Running).await;
    let stdout = encode(&agent.sandbox("errors-task").join("stdout").display().to_string());

    let cases: [(&str, StatusCode, &str); 6] = [
        ("/files/read", StatusCode::BAD_REQUEST, "path"),
        (&format!("/files/read?path={stdout}&offset=x"), StatusCode::BAD_REQUEST, "offset"),
        (&format!("/files/read?path={stdout}&offset=-2"), StatusCode::BAD_REQUEST, "offset"),
        (&format!("/files/read?path={stdout}&length=-7"), StatusCode::BAD_REQUEST, "length"),
        (&format!("/files/read?path={stdout}&length=1e3"), StatusCode::BAD_REQUEST, "length"),
        ("/files/browse?path=", StatusCode::BAD_REQUEST, "path"),
    ];
    for (uri, expected, field) in cases {
        let (status, body) = agent.get_json(uri).await;
        assert_eq!(status, expected, "{uri}: {body}");
        assert_eq!(body["field"], field, "{uri}: {body}");
        assert_eq!(body["error"], "bad_request", "{uri}: {body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{uri}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_while_the_agent_waits_for_a_master() {
    let work_dir = tempfile::tempdir().expect("temp dir");
    let port = crate::support::free_port();
    // Nothing answers on port 1: registration waits.
    let mut config = AgentConfig::new(vec!["127.0.0.1:1".to_owned()], work_dir.path().to_owned());
    config.listen = format!("127.0.0.1:{port}");
    config.resources = Some(crate::running::RESOURCES.to_owned());
    let starting = tokio::spawn(corral_agent::daemon::start(config));
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + crate::support::DEADLINE;
    while client.get(format!("{base}/health")).send().await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "the API never listened");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let state = client.get(format!("{base}/state")).send().await.expect("state");
    assert_eq!(state.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    let error: serde_json::Value = state.json().await.expect("JSON error");
    assert_eq!(error["error"], "unavailable", "{error}");
    // With no master to ask who may read it, the snapshot (it needs a live identity once
    // access control is on) is refused, never served unchecked; Prometheus's page is open.
    let snapshot = client.get(format!("{base}/metrics/snapshot")).send().await.expect("snapshot");
    assert_eq!(snapshot.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    let error: serde_json::Value = snapshot.json().await.expect("JSON error");
    assert_eq!(error["error"], "unavailable", "{error}");
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("\ncorral_agent_registered 0\n"), "{metrics}");

    // An abandoned start-up leaves nothing listening.
    starting.abort();
    let _ = starting.await;
    crate::support::eventually("the port to be released", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
    })
    .await;
}

#[tokio::test]
async fn an_address_that_cannot_be_listened_on_stops_start_up() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("address").to_string();
    let work_dir = tempfile::tempdir().expect("temp dir");
    let mut config = AgentConfig::new(vec!["127.0.0.1:1".to_owned()], work_dir.path().to_owned());
    config.listen = address.clone();
    config.resources = Some(crate::running::RESOURCES.to_owned());
    let error = corral_agent::daemon::start(config).await.err().expect("start-up fails");
    assert!(matches!(error, AgentError::Listen { .. }), "{error}");
    assert!(error.to_string().contains(&address), "{error}");
}
