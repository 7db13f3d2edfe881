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

    cluster.masters[0].kill();
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
    cluster.masters[0].kill();
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
