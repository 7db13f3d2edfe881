//! The audit CLI against a real master process, `corral replay --json` giving the state the
//! running master gave at the same index, and `corral replay --verify` naming the index of a
//! journal row altered while the master was stopped.

use std::process::Output;
use std::time::Duration;

use serde_json::{json, Value};

use corral_testkit::agent::send_command;
use corral_testkit::cluster::Cluster;
use corral_testkit::eventually;

const LONG: Duration = Duration::from_secs(60);

fn corral(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_corral"))
        .args(args)
        .output()
        .expect("corral runs")
}

fn stdout_of(output: &Output) -> String {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout.clone()).expect("utf-8")
}

async fn register_agents(cluster: &Cluster, count: usize) -> Vec<String> {
    let masters = cluster.addresses();
    let mut agents = Vec::new();
    for index in 0..count {
        let command = json!({"RegisterAgent": {"info": {"hostname": format!("h{index}"), "address": "127.0.0.1:1", "attributes": []},
                              "resources": [{"name": "cpus", "reservation": "Unreserved", "value": {"Scalar": 1000}}]}});
        let body = json!({"request_id": format!("r{index}"), "command": command});
        let result = send_command(&cluster.http, &masters, &body).await;
        let agent = result["outcome"]["Accepted"][0]["AgentAdded"]["agent_id"]
            .as_str()
            .unwrap_or_else(|| panic!("an agent id in {result}"))
            .to_owned();
        agents.push(agent);
    }
    agents
}

async fn get(cluster: &Cluster, url: String) -> Value {
    cluster.http.get(url).send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cli_answers_from_a_running_master_and_replay_from_a_stopped_one() {
    let mut cluster = Cluster::start(1);
    cluster.leader().await;
    let agents = register_agents(&cluster, 3).await;
    let address = cluster.masters[0].address.clone();

    let history = stdout_of(&corral(&["history", "agent", &agents[1], "--master", &address]));
    assert!(history.starts_with("CURSOR"), "{history}");
    assert!(history.contains("register_agent") && history.contains("accepted"), "{history}");
    let json: Value = serde_json::from_str(&stdout_of(&corral(&[
        "history", "agent", &agents[1], "--master", &address, "--json",
    ])))
    .unwrap();
    let index = json[0]["index"].as_u64().expect("an index");

    let table = stdout_of(&corral(&["state", "--at", &index.to_string(), "--master", &address]));
    assert!(table.contains(&format!("state at index {index}")), "{table}");
    assert!(table.contains(&agents[1]) && !table.contains(&agents[2]), "{table}");
    let live: Value =
        get(&cluster, cluster.masters[0].url(&format!("/corral/v1/state?at={index}"))).await;
    let diff = stdout_of(&corral(&[
        "diff",
        "--from",
        "1",
        "--to",
        &index.to_string(),
        "--master",
        &address,
    ]));
    assert!(diff.contains(&format!("agent  added   {}", agents[1])), "{diff}");
    let missing = corral(&["history", "task", "nothing", "--master", &address]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("404"), "{missing:?}");

    cluster.masters[0].stop();
    let data_dir = cluster.masters[0].data_dir().to_str().unwrap().to_owned();
    let replayed: Value = serde_json::from_str(&stdout_of(&corral(&[
        "replay",
        "--data-dir",
        &data_dir,
        "--to",
        &index.to_string(),
        "--json",
    ])))
    .unwrap();
    assert_eq!(replayed["corral_state"]["digest"], live["corral_state"]["digest"]);
    assert_eq!(replayed["slaves"], live["slaves"]);
    let by_time = live["corral_state"]["time"].as_str().unwrap().to_owned();
    let at_time: Value = serde_json::from_str(&stdout_of(&corral(&[
        "replay",
        "--data-dir",
        &data_dir,
        "--at",
        &by_time,
        "--json",
    ])))
    .unwrap();
    assert!(at_time["corral_state"]["index"].as_u64().unwrap() >= index, "{at_time}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replay_verify_names_the_index_of_a_row_altered_while_the_master_was_stopped() {
    let mut cluster = Cluster::start(1);
    cluster.leader().await;
    register_agents(&cluster, 4).await;
    let status = get(&cluster, cluster.masters[0].url("/corral/v1/cluster")).await;
    let head = status["chain"]["hash"].as_str().expect("a chain head").to_owned();
    let head_index = status["chain"]["index"].as_u64().expect("a chain index");
    cluster.masters[0].stop();
    let data_dir = cluster.masters[0].data_dir().to_owned();
    let data_dir_text = data_dir.to_str().unwrap();

    let intact = stdout_of(&corral(&["replay", "--data-dir", data_dir_text, "--verify"]));
    assert!(
        intact.contains(&format!("hash chain intact, head {head} at index {head_index}")),
        "{intact}"
    );

    // One byte of one row changes, written with sled as the master writes it.
    let altered = {
        let db = eventually(LONG, "the stopped master's files to be free", || async {
            sled::open(&data_dir).ok()
        })
        .await;
        let journal = db.open_tree("journal").unwrap();
        let rows: Vec<u64> = journal
            .iter()
            .keys()
            .map(|key| u64::from_be_bytes(key.unwrap().as_ref().try_into().unwrap()))
            .collect();
        let altered = rows[rows.len() / 2];
        let mut row = journal.get(altered.to_be_bytes()).unwrap().unwrap().to_vec();
        let middle = row.len() / 2;
        row[middle] ^= 0x01;
        journal.insert(altered.to_be_bytes(), row).unwrap();
        db.flush().unwrap();
        altered
    };
    let refused = corral(&["replay", "--data-dir", data_dir_text, "--verify"]);
    assert!(!refused.status.success(), "{refused:?}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains(&format!("index {altered}")), "{stderr}");
}

/// GETs JSON from whichever live master answers first, in the given order.
async fn ask(cluster: &Cluster, masters: &[usize], path: &str) -> (u16, Value) {
    for &master in masters {
        let Ok(response) = cluster.http.get(cluster.masters[master].url(path)).send().await else {
            continue;
        };
        let status = response.status().as_u16();
        if let Ok(body) = response.json().await {
            return (status, body);
        }
    }
    panic!("no master answered {path}");
}

/// The task's state in a v0 state document, live or completed.
fn task_state_in(state: &Value, task_id: &str) -> Option<String> {
    state["frameworks"].as_array()?.iter().find_map(|framework| {
        ["tasks", "completed_tasks"].iter().find_map(|list| {
            framework[list].as_array()?.iter().find_map(|task| {
                (task["id"] == task_id).then(|| task["state"].as_str().map(str::to_owned))?
            })
        })
    })
}

/// The "done when": tasks and a Marathon deployment on three real masters and a real
/// agent, an operator kills a task, the leader fails over, and any master answers the
/// task's history (with the operator), the state before and after the kill, the diff and the
/// offer it ran on; `corral replay` on the stopped old leader gives the same state and digest.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_a_failover_any_master_explains_a_killed_task_and_replay_agrees() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.leader().await;
    let directory = tempfile::tempdir().expect("temp dir");
    let _agent = corral_testkit::agent_process::AgentProcess::start(
        directory.path(),
        "agent",
        &cluster.addresses(),
        &["--resources=cpus:4;mem:4096;disk:4096;ports:[31000-31100]"],
    );
    let app = json!({"id": "/web", "cmd": "sleep 600", "cpus": 0.1, "mem": 16, "instances": 2});
    let created = cluster.create_app(leader, &app).await;
    let deployment = created["deployments"][0]["id"].as_str().unwrap().to_owned();
    let running: Vec<String> = eventually(LONG, "two running instances", || async {
        let tasks = get(&cluster, cluster.masters[leader].url("/v2/apps/web/tasks")).await;
        let running: Vec<String> = tasks["tasks"]
            .as_array()?
            .iter()
            .filter(|task| task["state"] == "TASK_RUNNING")
            .map(|task| task["id"].as_str().unwrap().to_owned())
            .collect();
        (running.len() == 2).then_some(running)
    })
    .await;
    let victim = running[0].clone();

    let killed = cluster
        .http
        .post(cluster.masters[leader].url("/v2/tasks/delete"))
        .json(&json!({"ids": [victim]}))
        .send()
        .await
        .unwrap();
    assert_eq!(killed.status(), 200);
    // The agent reports the end; the old leader has applied it before it is stopped.
    let history_path = format!("/corral/v1/history?task={victim}");
    let all: Vec<usize> = (0..3).collect();
    eventually(LONG, "the kill and its TASK_KILLED in the journal", || async {
        let (_, history) = ask(&cluster, &[leader], &history_path).await;
        let killed = history.as_array()?.iter().any(|record| {
            record["events"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|event| event["event"]["TaskUpdated"]["status"]["state"] == "Killed")
        });
        killed.then_some(())
    })
    .await;
    let old_leader_status = get(&cluster, cluster.masters[leader].url("/corral/v1/cluster")).await;
    let old_applied = old_leader_status["applied_index"].as_u64().unwrap();

    // Fail over: the leader stops for good (SIGTERM, so its journal is flushed for the
    // replay below; a killed master's journal is tested in log/'s journal tests).
    cluster.masters[leader].stop();
    let survivors: Vec<usize> = all.iter().copied().filter(|m| *m != leader).collect();
    let new_leader = cluster.leader().await;
    assert_ne!(new_leader, leader);

    for &master in &survivors {
        let (status, history) = ask(&cluster, &[master], &history_path).await;
        assert_eq!(status, 200, "{history}");
        let records = history.as_array().unwrap();
        let kill = records
            .iter()
            .find(|record| record["command"] == "kill_service_tasks")
            .unwrap_or_else(|| panic!("no kill in {history}"));
        assert_eq!(kill["actor"], json!({"kind": "operator", "id": "anonymous"}));
        assert_eq!(kill["outcome"], "accepted");
    }
    let (_, history) = ask(&cluster, &survivors, &history_path).await;
    let records = history.as_array().unwrap();
    let kill_index = records.iter().find(|r| r["command"] == "kill_service_tasks").unwrap()
        ["index"]
        .as_u64()
        .unwrap();
    let killed_index = records
        .iter()
        .find(|record| {
            record["events"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|event| event["event"]["TaskUpdated"]["status"]["state"] == "Killed")
        })
        .unwrap()["index"]
        .as_u64()
        .unwrap();

    let (_, before) =
        ask(&cluster, &survivors, &format!("/corral/v1/state?at={}", kill_index - 1)).await;
    assert_eq!(task_state_in(&before, &victim).as_deref(), Some("TASK_RUNNING"), "{before}");
    let (_, after) =
        ask(&cluster, &survivors, &format!("/corral/v1/state?at={killed_index}")).await;
    assert_eq!(task_state_in(&after, &victim).as_deref(), Some("TASK_KILLED"));
    let (_, diff) = ask(
        &cluster,
        &survivors,
        &format!("/corral/v1/diff?from={}&to={killed_index}", kill_index - 1),
    )
    .await;
    let changed: Vec<&str> = ["changed", "removed"]
        .iter()
        .flat_map(|change| diff["tasks"][change].as_array().into_iter().flatten())
        .filter_map(|item| item["id"].as_str())
        .collect();
    assert!(changed.contains(&victim.as_str()), "{diff}");

    let (status, why) =
        ask(&cluster, &survivors, &format!("/corral/v1/explain/task/{victim}")).await;
    assert_eq!(status, 200, "{why}");
    assert!(why["offer"]["offer_id"].is_string(), "{why}");
    assert_eq!(why["offer"]["allocator"]["reproduced"], true, "{why}");
    assert_eq!(why["kills"][0]["actor"], json!({"kind": "operator", "id": "anonymous"}));
    assert_eq!(why["final_state"], "TASK_KILLED");
    let (status, plan) =
        ask(&cluster, &survivors, &format!("/corral/v1/explain/deployment/{deployment}")).await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["outcome"], "succeeded", "{plan}");

    // The CLI through a survivor.
    let address = cluster.masters[survivors[0]].address.clone();
    let table = stdout_of(&corral(&["history", "task", &victim, "--master", &address]));
    assert!(
        table.contains("operator anonymous") && table.contains("kill_service_tasks"),
        "{table}"
    );
    let explained = stdout_of(&corral(&["explain", "task", &victim, "--master", &address]));
    assert!(explained.contains("offered") && explained.contains("TASK_KILLED"), "{explained}");

    // Replay on the stopped old leader gives the state the running masters give.
    let at = killed_index.min(old_applied);
    let (_, live) = ask(&cluster, &survivors, &format!("/corral/v1/state?at={at}")).await;
    let data_dir = cluster.masters[leader].data_dir().to_str().unwrap().to_owned();
    let replayed: Value = serde_json::from_str(&stdout_of(&corral(&[
        "replay",
        "--data-dir",
        &data_dir,
        "--to",
        &at.to_string(),
        "--json",
    ])))
    .unwrap();
    assert_eq!(replayed["corral_state"]["digest"], live["corral_state"]["digest"]);
    assert_eq!(task_state_in(&replayed, &victim).as_deref(), Some("TASK_KILLED"));
    let verified = stdout_of(&corral(&["replay", "--data-dir", &data_dir, "--verify"]));
    assert!(verified.contains("hash chain intact"), "{verified}");
}
