//! The operator's read surface on real processes: three `corral master`s and a `corral
//! agent` running real tasks. Every Mesos v0 read, followers' redirects, the masters' proxy to
//! the agent's own API (state, sandbox files, statistics), `corral task log` (once, stderr,
//! following a growing file), torn-down frameworks' tasks in v1, and the unmodified Apache
//! Mesos CLI (`avmesos-cli`, pinned in `tests/python/requirements.txt`) listing agents,
//! frameworks and tasks.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use corral_testkit::agent_process::AgentProcess;
use corral_testkit::cluster::Cluster;
use corral_testkit::scheduler::RawFramework;
use corral_testkit::{corral_bin, eventually};

const LONG: Duration = Duration::from_secs(60);
const RESOURCES: &str = "--resources=cpus:4;mem:4096;disk:4096;ports:[31000-31100]";
const HOSTNAME: &str = "--hostname=ops-agent";

fn shell(id: &str, command: &str) -> Value {
    json!({"id": id, "command": {"value": command}})
}

async fn get(http: &reqwest::Client, url: &str) -> (u16, Value) {
    let response = http.get(url).send().await.unwrap_or_else(|error| panic!("GET {url}: {error}"));
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// `corral task log ARGS` to completion; its stdout, after insisting it succeeded.
async fn task_log(args: Vec<String>) -> String {
    let output = tokio::task::spawn_blocking(move || {
        Command::new(corral_bin())
            .args(["task", "log"])
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .expect("corral task log runs")
    })
    .await
    .expect("joined");
    assert!(output.status.success(), "task log: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("utf-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn v0_reads_the_agent_proxy_and_task_logs_work_on_real_processes() {
    let cluster = Cluster::start(3);
    let leader_index = cluster.leader().await;
    let leader = cluster.masters[leader_index].address.clone();
    let follower = cluster.masters[cluster.follower_of(leader_index)].address.clone();
    let directory = tempfile::tempdir().expect("temp dir");
    let mut agent = AgentProcess::start(
        directory.path(),
        "agent",
        &cluster.addresses(),
        &[RESOURCES, HOSTNAME],
    );
    let http = &cluster.http;
    // Set up the Python venv first: a first run installs it, which takes longer than any
    // other step here.
    let python = corral_testkit::framework::python();
    // The cluster's client ends every request after 10 s, body included; the framework's
    // stream must outlive the whole test, or the framework shows as inactive.
    let streams = reqwest::Client::new();
    let framework = RawFramework::subscribe(&streams, &leader, "operations").await;
    let agent_id = framework
        .launch(vec![
            shell("talker", "echo line-1; echo line-2; echo oops >&2; sleep 600"),
            shell("slow", "echo first; sleep 3; echo second"),
            shell("quick", "echo done"),
        ])
        .await;
    framework.wait_for("talker", "TASK_RUNNING").await;
    framework.wait_for("slow", "TASK_RUNNING").await;
    framework.wait_for("quick", "TASK_FINISHED").await;

    // `corral task log --follow` follows a file that grows and stops when the task ends.
    let followed =
        task_log(vec!["slow".into(), "--follow".into(), "--master".into(), follower.clone()]);
    let followed = followed.await;
    assert_eq!(followed, "first\nsecond\n");

    // Every v0 read, from the leader, under Mesos's spellings.
    let url = |path: &str| format!("http://{leader}{path}");
    let (status, slaves) = get(http, &url("/master/slaves")).await;
    assert_eq!(status, 200, "{slaves}");
    assert_eq!(slaves["slaves"][0]["id"], agent_id.as_str());
    assert_eq!(slaves["slaves"][0]["hostname"], "ops-agent");
    let (_, frameworks) = get(http, &url("/master/frameworks/")).await;
    assert_eq!(frameworks["frameworks"][0]["id"], framework.framework_id.as_str());
    assert_eq!(frameworks["frameworks"][0]["name"], "operations");
    let (_, tasks) = get(http, &url("/tasks?order=asc&limit=-1")).await;
    let ascending: Vec<&str> =
        tasks["tasks"].as_array().expect("tasks").iter().filter_map(|t| t["id"].as_str()).collect();
    let mut ids = ascending.clone();
    ids.sort_unstable();
    assert_eq!(ids, ["quick", "slow", "talker"], "{tasks}");
    // Descending is the exact reverse: its second task is the second to last ascending.
    let (_, page) = get(http, &url("/master/tasks?order=desc&limit=1&offset=1")).await;
    assert_eq!(page["tasks"].as_array().map(Vec::len), Some(1), "{page}");
    assert_eq!(page["tasks"][0]["id"], ascending[1], "{page}");
    let (status, refused) = get(http, &url("/master/tasks?offset=-1")).await;
    assert_eq!((status, refused["field"].as_str()), (400, Some("offset")));
    let (_, roles) = get(http, &url("/roles")).await;
    assert_eq!(roles["roles"][0]["name"], "*");
    let (_, flags) = get(http, &url("/master/flags")).await;
    assert!(flags["flags"]["allocation_interval"].is_string(), "{flags}");
    let (_, summary) = get(http, &url("/master/state-summary")).await;
    assert_eq!(summary["slaves"][0]["TASK_RUNNING"], 1, "{summary}");
    assert_eq!(summary["frameworks"][0]["TASK_FINISHED"], 2, "{summary}");
    let (_, schedule) = get(http, &url("/master/maintenance/schedule")).await;
    assert_eq!(schedule, json!({"windows": []}));
    let (_, maintenance) = get(http, &url("/maintenance/status/")).await;
    assert_eq!(maintenance["down_machines"], json!([]));
    let (_, state) = get(http, &url("/master/state")).await;
    assert_eq!(state["slaves"].as_array().map(Vec::len), Some(1), "{state}");

    // A follower sends reads to the leader, and says where it is.
    let response = http.get(format!("http://{follower}/master/slaves")).send().await.expect("GET");
    assert_eq!(response.status(), 307);
    assert_eq!(response.headers()["location"], format!("http://{leader}/master/slaves").as_str());
    let response =
        http.get(format!("http://{follower}/master/redirect")).send().await.expect("GET");
    assert_eq!(response.status(), 307);
    assert_eq!(response.headers()["location"], format!("//{leader}").as_str());

    // The agent's own API through any master (a follower here).
    let proxied = |path: &str| format!("http://{follower}/agent/{agent_id}{path}");
    let (status, agent_state) = get(http, &proxied("/state")).await;
    assert_eq!(status, 200, "{agent_state}");
    assert_eq!(agent_state["id"], agent_id.as_str());
    let sandbox = agent_state["frameworks"][0]["executors"]
        .as_array()
        .expect("executors")
        .iter()
        .find(|executor| executor["tasks"][0]["id"] == "talker")
        .and_then(|executor| executor["directory"].as_str())
        .expect("talker's sandbox")
        .to_owned();
    let read = format!("/files/read?path={sandbox}/stdout&offset=0");
    let (_, page) = get(http, &format!("http://{follower}/slave/{agent_id}{read}")).await;
    assert_eq!(page, json!({"data": "line-1\nline-2\n", "offset": 0}));
    let (_, size) =
        get(http, &proxied(&format!("/files/read?path={sandbox}/stdout&offset=-1"))).await;
    assert_eq!(size["offset"], 14);
    let (_, listing) = get(http, &proxied(&format!("/files/browse?path={sandbox}"))).await;
    assert!(
        listing
            .as_array()
            .expect("a listing")
            .iter()
            .any(|f| f["path"].as_str().is_some_and(|p| p.ends_with("/stderr"))),
        "{listing}"
    );
    let download = http
        .get(proxied(&format!("/files/download?path={sandbox}/stderr")))
        .send()
        .await
        .expect("download");
    assert_eq!(download.status(), 200);
    assert_eq!(download.text().await.expect("body"), "oops\n");
    let (status, statistics) = get(http, &proxied("/monitor/statistics")).await;
    assert_eq!(status, 200, "{statistics}");
    assert!(statistics.is_array(), "{statistics}");
    let (status, _) = get(http, &proxied("/health")).await;
    assert_eq!(status, 200);
    let (_, version) = get(http, &proxied("/version")).await;
    assert!(version["version"].is_string(), "{version}");
    let (status, outside) = get(http, &proxied("/files/read?path=/etc/passwd&offset=0")).await;
    assert!(status == 403 || status == 404, "{status} {outside}");
    let (status, unknown) = get(http, &format!("http://{leader}/agent/nobody/state")).await;
    assert_eq!((status, unknown["field"].as_str()), (404, Some("agent_id")));

    // `corral task log`: stdout, stderr, a finished task.
    let stdout = task_log(vec!["talker".into(), "--master".into(), leader.clone()]).await;
    assert_eq!(stdout, "line-1\nline-2\n");
    let stderr =
        task_log(vec!["talker".into(), "--stderr".into(), "--master".into(), leader.clone()]).await;
    assert_eq!(stderr, "oops\n");
    let quick = task_log(vec!["quick".into(), "--master".into(), leader.clone()]).await;
    assert_eq!(quick, "done\n");

    // The unmodified Apache Mesos CLI reads agents, frameworks and tasks, through a follower.
    mesos_cli_lists(python, &follower, &agent_id, &framework.framework_id).await;

    // A torn-down framework's tasks stay visible: v0 completed_frameworks, v1 completed_tasks.
    let teardown = json!({"type": "TEARDOWN", "teardown": {"framework_id": {"value": framework.framework_id}}});
    let response = http.post(url("/api/v1")).json(&teardown).send().await.expect("TEARDOWN");
    assert_eq!(response.status(), 200);
    let (_, frameworks) = get(http, &url("/master/frameworks")).await;
    assert_eq!(frameworks["completed_frameworks"][0]["id"], framework.framework_id.as_str());
    let completed = eventually(LONG, "the torn-down framework's tasks in GET_TASKS", || async {
        let tasks: Value = http
            .post(url("/api/v1"))
            .json(&json!({"type": "GET_TASKS"}))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let completed = tasks["get_tasks"]["completed_tasks"].as_array()?.clone();
        (completed.len() == 3).then_some(completed)
    })
    .await;
    let talker = completed.iter().find(|t| t["task_id"]["value"] == "talker").expect("talker");
    assert_eq!(talker["state"], "TASK_KILLED");

    // An agent that cannot be reached: a 502 naming it.
    agent.kill();
    let (status, gone) = get(http, &proxied("/state")).await;
    assert_eq!(status, 502, "{gone}");
    assert!(gone["message"].as_str().is_some_and(|m| m.contains(agent_id.as_str())), "{gone}");
}

/// `mesos agent list`, `mesos framework list`, `mesos task list --all` of the Apache Mesos
/// CLI against `master`.
async fn mesos_cli_lists(python: String, master: &str, agent_id: &str, framework_id: &str) {
    let config = tempfile::NamedTempFile::new().expect("config file");
    std::fs::write(config.path(), format!("[master]\naddress = \"{master}\"\n")).expect("config");
    let config_path = config.path().to_owned();
    let run = move |args: &[&str]| {
        let output = Command::new(&python)
            .args(["-m", "avmesos.cli.mesos-cli"])
            .args(args)
            .env("MESOS_CLI_CONFIG", &config_path)
            .stdin(Stdio::null())
            .output()
            .expect("the Mesos CLI runs");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "mesos {args:?}: {stdout} {}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    };
    let (agents, frameworks, tasks) = tokio::task::spawn_blocking(move || {
        (run(&["agent", "list"]), run(&["framework", "list"]), run(&["task", "list", "--all"]))
    })
    .await
    .expect("joined");
    assert!(agents.contains(agent_id) && agents.contains("ops-agent"), "{agents}");
    assert!(frameworks.contains(framework_id) && frameworks.contains("operations"), "{frameworks}");
    for (task, state) in
        [("talker", "TASK_RUNNING"), ("slow", "TASK_FINISHED"), ("quick", "TASK_FINISHED")]
    {
        assert!(
            tasks.lines().any(|line| line.contains(task) && line.contains(state)),
            "{task} {state} in {tasks}"
        );
    }
}
