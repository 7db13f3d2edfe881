//! `/metrics` (Prometheus) and `/metrics/snapshot` (Mesos's keys) on real masters, and the
//! operator's `GET_METRICS` answering the same numbers.

use axum::http::{Method, StatusCode};
use corral_state::model::{AgentInfo, Attributes};
use corral_state::Command;
use serde_json::{json, Value};

use super::support::{request, TestMasters};

/// The value of one series (name and labels as exposed) in a Prometheus exposition.
fn series_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

async fn register_agent(cluster: &TestMasters, leader: usize, number: u32) {
    let command = Command::RegisterAgent {
        info: AgentInfo {
            hostname: format!("host-{number}"),
            address: format!("10.0.0.{number}:5051"),
            attributes: Attributes::default(),
        },
        resources: "cpus:4;mem:1024;disk:2048".parse().expect("resources"),
    };
    let body = json!({"request_id": format!("register-{number}"), "command": command});
    let response = cluster
        .respond(leader, request(Method::POST, "/corral/v1/agent/commands", Some(&body), &[]))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_mesos_snapshot_and_get_metrics_give_the_same_numbers_under_mesos_keys() {
    let cluster = TestMasters::start(3).await;
    let leader = cluster.leader().await;
    let follower = cluster.follower_of(leader);
    register_agent(&cluster, leader, 1).await;
    register_agent(&cluster, leader, 2).await;

    let snapshot = cluster.send(leader, Method::GET, "/metrics/snapshot", None).await;
    assert_eq!(snapshot.status, StatusCode::OK, "{}", snapshot.body);
    let values = snapshot.body.as_object().expect("a JSON object of numbers");
    for (key, expected) in [
        ("master/elected", 1.0),
        ("master/slaves_active", 2.0),
        ("master/slaves_connected", 2.0),
        ("master/slaves_unreachable", 0.0),
        ("master/frameworks_active", 0.0),
        ("master/tasks_running", 0.0),
        ("master/tasks_finished", 0.0),
        ("master/cpus_total", 8.0),
        ("master/cpus_used", 0.0),
        ("master/mem_total", 2048.0),
        ("master/disk_total", 4096.0),
        ("registrar/log/recovered", 1.0),
    ] {
        assert_eq!(values.get(key).and_then(Value::as_f64), Some(expected), "{key}: {values:?}");
    }
    assert!(values["master/uptime_secs"].as_f64().expect("uptime") > 0.0);

    // A follower answers for itself, as a Mesos master does: not elected.
    let follower_snapshot = cluster.send(follower, Method::GET, "/metrics/snapshot", None).await;
    assert_eq!(follower_snapshot.status, StatusCode::OK);
    assert_eq!(follower_snapshot.body["master/elected"], 0.0);

    let get_metrics =
        cluster.send(leader, Method::POST, "/api/v1", Some(&json!({"type": "GET_METRICS"}))).await;
    assert_eq!(get_metrics.status, StatusCode::OK, "{}", get_metrics.body);
    assert_eq!(get_metrics.body["type"], "GET_METRICS");
    let listed = get_metrics.body["get_metrics"]["metrics"].as_array().expect("metrics");
    let names: Vec<&str> = listed.iter().filter_map(|metric| metric["name"].as_str()).collect();
    let keys: Vec<&str> = values.keys().map(String::as_str).collect();
    assert_eq!(names, keys, "GET_METRICS lists the snapshot's keys");
    for metric in listed {
        let name = metric["name"].as_str().expect("name");
        // These move with the clock: the allocator may run between the two reads.
        if name == "master/uptime_secs" || name.starts_with("allocator/mesos/allocation_run") {
            continue;
        }
        assert_eq!(metric["value"], values[name], "{name}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_exposition_shows_the_log_the_cluster_and_the_process() {
    let cluster = TestMasters::start(3).await;
    let leader = cluster.leader().await;
    register_agent(&cluster, leader, 1).await;
    let answer = cluster.send(leader, Method::GET, "/metrics", None).await;
    assert_eq!(answer.status, StatusCode::OK);
    let text = answer.body.as_str().expect("text");
    let value = |series: &str| series_value(text, series);
    assert_eq!(value("corral_raft_is_leader"), 1.0);
    assert_eq!(value("corral_raft_has_leader"), 1.0);
    assert_eq!(value("corral_raft_members{kind=\"voter\"}"), 3.0);
    assert!(value("corral_raft_commit_duration_seconds_count") >= 1.0);
    assert!(value("corral_raft_batch_commands_count") >= 1.0);
    assert!(value("corral_raft_apply_duration_seconds_count") >= 1.0);
    assert!(value("corral_journal_last_index") >= value("corral_journal_first_index"));
    assert_eq!(value("corral_agents{state=\"active\"}"), 1.0);
    assert_eq!(value("corral_task_transitions_total{state=\"TASK_RUNNING\"}"), 0.0);
    // The leader sees both followers' replication; the lag is a number of entries.
    for member in ["1", "2", "3"] {
        let series = format!("corral_raft_replication_lag_entries{{member=\"{member}\"}}");
        let leader_id = cluster.masters[leader].master.node().node_id().to_string();
        if member == leader_id {
            assert!(!text.contains(&series), "no lag series for the leader itself");
        } else {
            assert!(value(&series) >= 0.0);
        }
    }
    assert_eq!(
        value(&format!("corral_build_info{{version=\"{}\"}}", env!("CARGO_PKG_VERSION"))),
        1.0
    );
    assert!(value("process_resident_memory_bytes") > 0.0);
    // Every master counted the election that made the leader.
    assert!(value("corral_raft_leader_changes_total") >= 0.0);
}

/// A large answer's body is timed on its writer: once `/master/state` was read whole, its
/// write and its wait for the client are each observed once, the wait within the write.
#[tokio::test(flavor = "multi_thread")]
async fn a_state_read_records_its_body_write_and_its_wait_for_the_client() {
    let cluster = TestMasters::start(1).await;
    let leader = cluster.leader().await;
    register_agent(&cluster, leader, 1).await;
    let answer = cluster.send(leader, Method::GET, "/master/state", None).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    // Observed on the writer's thread after its last chunk: poll until it is there.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let text = loop {
        let answer = cluster.send(leader, Method::GET, "/metrics", None).await;
        let text = answer.body.as_str().expect("text").to_owned();
        if text.contains("corral_http_body_write_duration_seconds_count{what=\"/master/state\"}") {
            break text;
        }
        assert!(tokio::time::Instant::now() < deadline, "no body write recorded:\n{text}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let value = |series: &str| series_value(&text, series);
    let write = "corral_http_body_write_duration_seconds";
    let wait = "corral_http_body_client_wait_seconds";
    let label = "{what=\"/master/state\"}";
    assert_eq!(value(&format!("{write}_count{label}")), 1.0);
    assert_eq!(value(&format!("{wait}_count{label}")), 1.0);
    assert!(value(&format!("{wait}_sum{label}")) <= value(&format!("{write}_sum{label}")));
}
