//! Disaster recovery on real processes: a backup saved from a cluster with agents running
//! tasks, every master lost, a new cluster restored from the backup at the same addresses,
//! and the agents re-registering with their tasks still known.

use std::collections::BTreeSet;
use std::time::Duration;

use corral_log::backup::{Backup, RESTORE_INDEX_GAP};
use corral_state::Event;
use serde_json::{json, Value};

use corral_testkit::agent_process::AgentProcess;
use corral_testkit::cluster::Cluster;
use corral_testkit::events::LoggedEvents;
use corral_testkit::eventually;

const LONG: Duration = Duration::from_secs(60);
const RESOURCES: &str = "--resources=cpus:2;mem:1024;disk:1024;ports:[31000-31100]";

fn corral(args: &[&str]) -> String {
    let output = tokio::task::block_in_place(|| {
        std::process::Command::new(env!("CARGO_BIN_EXE_corral")).args(args).output()
    })
    .expect("corral runs");
    assert!(
        output.status.success(),
        "corral {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The app's tasks as (id, state), sorted, from whichever master answers.
async fn app_tasks(cluster: &Cluster, app: &str) -> Option<Vec<(String, String)>> {
    let leader = cluster.leader().await;
    let url = cluster.masters[leader].url(&format!("/v2/apps{app}/tasks"));
    let body: Value = cluster.http.get(url).send().await.ok()?.json().await.ok()?;
    let field = |task: &Value, name: &str| task[name].as_str().unwrap_or_default().to_owned();
    let mut tasks: Vec<(String, String)> = body["tasks"]
        .as_array()?
        .iter()
        .map(|task| (field(task, "id"), field(task, "state")))
        .collect();
    tasks.sort();
    Some(tasks)
}

/// Reads `master`'s agent events after `from` until every agent in `agents` re-registered.
async fn reregistrations(master: &str, from: &str, agents: &BTreeSet<String>) {
    let url = format!("http://{master}/corral/v1/events?format=ndjson&topic=agent&from={from}");
    let mut events = LoggedEvents::open(&url).await;
    let mut seen = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + LONG;
    while !agents.is_subset(&seen) {
        let event =
            events.next(deadline, || format!("re-registrations of {agents:?}; saw {seen:?}")).await;
        if let Event::AgentReregistered { agent_id, .. } = event {
            seen.insert(agent_id.as_str().to_owned());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_restored_from_a_backup_gets_its_agents_back_with_their_running_tasks() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.leader().await;
    let addresses = cluster.addresses();
    let directory = tempfile::tempdir().expect("temp dir");
    let _agents: Vec<AgentProcess> = ["restore-a", "restore-b"]
        .into_iter()
        .map(|name| {
            AgentProcess::start(
                directory.path(),
                name,
                &addresses,
                &[RESOURCES, &format!("--hostname={name}")],
            )
        })
        .collect();
    let app = json!({"id": "/survivor", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16,
        "instances": 2, "portDefinitions": [], "constraints": [["hostname", "UNIQUE"]]});
    cluster.create_app(leader, &app).await;
    let running = eventually(LONG, "both instances running", || async {
        let tasks = app_tasks(&cluster, "/survivor").await?;
        (tasks.len() == 2 && tasks.iter().all(|(_, state)| state == "TASK_RUNNING"))
            .then_some(tasks)
    })
    .await;
    let state: Value = cluster
        .http
        .get(cluster.masters[leader].url("/master/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let agent_ids: BTreeSet<String> = state["slaves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|agent| agent["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(agent_ids.len(), 2);

    let file = cluster.new_directory("cluster.backup");
    let saved =
        corral(&["snapshot", "save", file.to_str().unwrap(), "--master", &addresses.join(",")]);
    let backup = Backup::decode(&std::fs::read(&file).unwrap()).expect("the saved file decodes");
    assert!(saved.contains(&backup.digest().to_string()), "{saved}");

    // Every master is lost, data and all.
    for master in &mut cluster.masters {
        master.kill();
    }

    let seeded = cluster.new_directory("restored-1");
    let restored = corral(&[
        "snapshot",
        "restore",
        file.to_str().unwrap(),
        "--data-dir",
        seeded.to_str().unwrap(),
        "--node-id",
        "1",
        "--listen",
        &addresses[0],
    ]);
    // What the restored directory holds has the saved digest.
    assert!(restored.contains(&format!("digest {}", backup.digest())), "{restored}");
    cluster.start_from(1, addresses[0].clone(), seeded);
    cluster.leader().await;
    for node_id in [2u64, 3] {
        let address = addresses[node_id as usize - 1].clone();
        cluster.start_from(
            node_id,
            address.clone(),
            cluster.new_directory(&format!("fresh-{node_id}")),
        );
        corral(&["members", "add", &node_id.to_string(), &address, "--master", &addresses[0]]);
    }

    // The agents come back to the same addresses, re-register, and their tasks are known.
    let from = format!("{}-0", backup.index() + RESTORE_INDEX_GAP);
    reregistrations(&addresses[0], &from, &agent_ids).await;
    let after = eventually(LONG, "the same tasks running", || async {
        let tasks = app_tasks(&cluster, "/survivor").await?;
        (tasks == running).then_some(tasks)
    })
    .await;
    assert_eq!(after, running);
}
