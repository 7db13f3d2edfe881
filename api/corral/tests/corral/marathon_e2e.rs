//! The Marathon `/v2` API end to end: three `corral master` processes, three `corral agent`
//! processes with distinct hostnames, and the unmodified `marathon` client from PyPI running
//! tests/python/marathon_scenarios.py.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

use corral_testkit::agent_process::AgentProcess;
use corral_testkit::cluster::Cluster;
use corral_testkit::eventually;
use corral_testkit::framework::python;

const HOSTS: [&str; 3] = ["host-a", "host-b", "host-c"];

/// Each test's agents offer their own ports: the scenarios run side by side, their instances
/// bind real ports on this one machine, and other tests use 31000 and up. Below Linux's
/// ephemeral range, so no master's listening port falls in it.
static PORT_BASES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(20_000);

/// A scenario of the Python script as a child process, its progress as JSON lines.
struct Scenario {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<Value>,
    name: String,
}

impl Scenario {
    fn start(name: &str, cluster: &Cluster) -> Scenario {
        let script =
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/python/marathon_scenarios.py");
        let masters: Vec<String> =
            cluster.addresses().iter().map(|address| format!("http://{address}")).collect();
        let mut child = Command::new(python())
            .arg(script)
            .arg(name)
            .args(["--masters", &masters.join(",")])
            .args(["--hosts", &HOSTS.join(",")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the scenario starts");
        let stdout = child.stdout.take().expect("stdout");
        let stdin = child.stdin.take().expect("stdin");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let value = serde_json::from_str::<Value>(&line)
                    .unwrap_or_else(|_| serde_json::json!({"step": "output", "text": line}));
                if sender.send(value).is_err() {
                    return;
                }
            }
        });
        Scenario { child, stdin, lines, name: name.to_owned() }
    }

    /// The next progress line; `None` once the script has exited.
    fn next(&self, timeout: Duration) -> Option<Value> {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => Some(line),
            Err(mpsc::RecvTimeoutError::Disconnected) => None,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("scenario {} said nothing for {timeout:?}", self.name)
            }
        }
    }

    fn go_on(&mut self) {
        self.stdin.write_all(b"go\n").and_then(|()| self.stdin.flush()).expect("scenario stdin");
    }

    /// Every line up to the end; panics unless the script said "ok" and exited 0.
    fn finish(mut self) -> Vec<Value> {
        let mut seen = Vec::new();
        while let Some(line) = self.next(Duration::from_secs(300)) {
            seen.push(line);
        }
        let status = self.child.wait().expect("scenario exit");
        assert!(status.success(), "scenario {} failed ({status}); said {seen:#?}", self.name);
        assert_eq!(seen.last().map(|line| line["step"].clone()), Some("ok".into()), "{seen:#?}");
        seen
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Three agents on this machine, told apart by hostname and port range so that instances on
/// "different hosts" never fight over a port.
fn start_agents(directory: &Path, cluster: &Cluster) -> Vec<AgentProcess> {
    let base = PORT_BASES.fetch_add(HOSTS.len() * 100, std::sync::atomic::Ordering::Relaxed);
    HOSTS
        .iter()
        .enumerate()
        .map(|(index, host)| {
            let first_port = base + index * 100;
            let resources =
                format!("cpus:2;mem:2048;disk:1000;ports:[{first_port}-{}]", first_port + 99);
            AgentProcess::start(
                directory,
                host,
                &cluster.addresses(),
                &["--hostname", host, "--resources", &resources],
            )
        })
        .collect()
}

async fn wait_for_agents(cluster: &Cluster) {
    let leader = cluster.leader().await;
    eventually(Duration::from_secs(60), "three registered agents", || async {
        let state: Value = cluster
            .http
            .get(cluster.masters[leader].url("/master/state"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (state["slaves"].as_array()?.len() == HOSTS.len()).then_some(())
    })
    .await;
}

async fn cluster_with_agents() -> (Cluster, Vec<AgentProcess>, tempfile::TempDir) {
    let cluster = Cluster::start(3);
    let directory = tempfile::tempdir().expect("temp dir");
    let agents = start_agents(directory.path(), &cluster);
    wait_for_agents(&cluster).await;
    (cluster, agents, directory)
}

fn run_to_end(name: &str, cluster: &Cluster, agents: &[AgentProcess]) -> Vec<Value> {
    let scenario = Scenario::start(name, cluster);
    let seen = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scenario.finish()));
    match seen {
        Ok(seen) => seen,
        Err(panic) => {
            for agent in agents {
                eprintln!("--- agent log {} ---\n{}", agent.work_dir.display(), agent.logs());
            }
            std::panic::resume_unwind(panic)
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_app_is_created_scaled_rolled_restarted_and_deleted_with_the_marathon_client() {
    let (cluster, agents, _directory) = cluster_with_agents().await;
    let seen = run_to_end("lifecycle", &cluster, &agents);
    let rolled = seen.iter().find(|line| line["step"] == "rolled").expect("rolled");
    assert!(rolled["lowest_healthy"].as_u64() >= Some(1), "{rolled}");
}

#[tokio::test(flavor = "multi_thread")]
async fn constraints_spread_instances_and_an_unmet_one_is_explained_in_the_queue() {
    let (cluster, agents, _directory) = cluster_with_agents().await;
    let seen = run_to_end("constraints", &cluster, &agents);
    let unique = seen.iter().find(|line| line["step"] == "unique").expect("unique");
    assert_eq!(unique["hosts"], serde_json::json!(HOSTS), "{unique}");
    let killed = seen.iter().find(|line| line["step"] == "killed").expect("killed");
    assert_eq!(killed["left"], HOSTS.len() - 2, "{killed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unhealthy_task_is_replaced_and_a_crashing_one_backs_off() {
    let (cluster, agents, _directory) = cluster_with_agents().await;
    let seen = run_to_end("health_and_backoff", &cluster, &agents);
    let backoff = seen.iter().find(|line| line["step"] == "backoff").expect("backoff");
    let gaps: Vec<f64> =
        backoff["gaps"].as_array().expect("gaps").iter().filter_map(Value::as_f64).collect();
    assert!(gaps.windows(2).all(|pair| pair[1] > pair[0]), "the delays grow: {gaps:?}");
}

/// A bridged Docker app from a locally built image: a dynamic host port, an HTTP health
/// check through it, and the container's answer there.
#[tokio::test(flavor = "multi_thread")]
async fn a_bridged_docker_app_runs_healthy_on_its_host_port() {
    let build =
        Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../agent/tests/images/build.sh"))
            .status()
            .expect("image build script runs");
    assert!(build.success(), "the test image builds locally");
    let (cluster, agents, _directory) = cluster_with_agents().await;
    let seen = run_to_end("docker", &cluster, &agents);
    let docker = seen.iter().find(|line| line["step"] == "docker").expect("docker");
    let port = docker["host_port"].as_u64().expect("a host port");
    assert!((20_000..20_000 + 3_000).contains(&port), "the port is an offered one: {docker}");
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_definitions_are_refused_with_422_and_change_nothing() {
    let cluster = Cluster::start(3);
    cluster.leader().await;
    let seen = run_to_end("invalid", &cluster, &[]);
    let rejected = seen.iter().filter(|line| line["step"] == "rejected").count();
    assert_eq!(rejected, 5, "{seen:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deployment_survives_the_leader_dying_and_no_instance_is_launched_twice() {
    let (mut cluster, agents, _directory) = cluster_with_agents().await;
    let mut scenario = Scenario::start("failover", &cluster);
    let deployment_id = loop {
        let line = scenario.next(Duration::from_secs(180)).expect("the scenario runs");
        if line["step"] == "deploying" {
            break line["deployment"].as_str().expect("deployment id").to_owned();
        }
    };
    let leader = cluster.leader().await;
    cluster.masters[leader].kill();
    let new_leader = cluster.leader().await;
    assert_ne!(new_leader, leader);
    scenario.go_on();
    let seen = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scenario.finish()));
    let Ok(_seen) = seen else {
        for agent in &agents {
            eprintln!("--- agent log {} ---\n{}", agent.work_dir.display(), agent.logs());
        }
        panic!("the failover scenario failed");
    };

    // The log says how many instances of the new version were ever launched: exactly three.
    let launched = launches_until_deployment_succeeded(&cluster, new_leader, &deployment_id).await;
    assert_eq!(launched, 3, "instances of v2 launched");
}

/// Reads the log's events from the start until the deployment's success, counting the
/// service tasks launched with the v2 command.
async fn launches_until_deployment_succeeded(
    cluster: &Cluster,
    master: usize,
    deployment_id: &str,
) -> usize {
    let mut launched = 0;
    read_logged_events(cluster, master, |event| match event["kind"].as_str() {
        Some("task_added") if event["event"].to_string().contains("# v2") => {
            launched += 1;
            false
        }
        Some("deployment_succeeded") => event["event"].to_string().contains(deployment_id),
        _ => false,
    })
    .await;
    launched
}

/// Hands each task and service event in the log, from the start, to `visit` until it says
/// it has seen enough; panics if the stream ends first.
async fn read_logged_events(
    cluster: &Cluster,
    master: usize,
    mut visit: impl FnMut(&Value) -> bool,
) {
    let response = cluster
        .http
        .get(cluster.masters[master].url("/corral/v1/events?format=ndjson&topic=task,service"))
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .expect("event stream");
    assert!(response.status().is_success(), "{}", response.status());
    let mut body = response.bytes_stream();
    let mut buffer = Vec::new();
    while let Some(chunk) = body.next().await {
        buffer.extend_from_slice(&chunk.expect("stream chunk"));
        while let Some(end) = buffer.iter().position(|&byte| byte == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            let event: Value = serde_json::from_slice(&line).expect("an NDJSON event");
            if visit(&event) {
                return;
            }
        }
    }
    panic!("the event stream ended early");
}

/// `/corral/v1/settings` on a real cluster: a bad change is refused naming its field and
/// changes nothing; a good one is in force at once.
async fn shorten_agent_timeout(cluster: &Cluster, leader: usize) {
    let url = cluster.masters[leader].url("/corral/v1/settings");
    let before: Value = cluster.http.get(&url).send().await.unwrap().json().await.unwrap();
    for (body, field) in [
        (
            serde_json::json!({"agent_heartbeat_timeout_seconds": -1}),
            "agent_heartbeat_timeout_seconds",
        ),
        (
            serde_json::json!({"agent_heartbeat_timeout_seconds": 0}),
            "settings.agent_heartbeat_timeout",
        ),
        (serde_json::json!({"cluster_id": "other"}), "cluster_id"),
        (serde_json::json!({"max_statuses_per_task": 8, "heartbeat": 3}), "heartbeat"),
    ] {
        let response = cluster.http.patch(&url).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let error: Value = response.json().await.unwrap();
        assert!(error.to_string().contains(field), "{body} → {error}");
    }
    let unchanged: Value = cluster.http.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(unchanged, before);

    let body = serde_json::json!({"agent_heartbeat_timeout_seconds": 3});
    let response = cluster.http.patch(&url).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let after: Value = response.json().await.unwrap();
    assert_eq!(after["agent_heartbeat_timeout_seconds"], 3.0);
    assert_eq!(after["max_statuses_per_task"], before["max_statuses_per_task"]);
}

/// The app's tasks as `/v2/apps/{id}/tasks` shows them: (id, host, state).
async fn app_tasks(
    cluster: &Cluster,
    leader: usize,
    app: &str,
) -> Option<Vec<(String, String, String)>> {
    let url = cluster.masters[leader].url(&format!("/v2/apps{app}/tasks"));
    let body: Value = cluster.http.get(url).send().await.ok()?.json().await.ok()?;
    let field = |task: &Value, name: &str| task[name].as_str().unwrap_or_default().to_owned();
    Some(
        body["tasks"]
            .as_array()?
            .iter()
            .map(|task| (field(task, "id"), field(task, "host"), field(task, "state")))
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_instance_is_replaced_after_its_inactive_time_and_killed_when_it_returns() {
    let (cluster, agents, _directory) = cluster_with_agents().await;
    let leader = cluster.leader().await;
    shorten_agent_timeout(&cluster, leader).await;
    let app = serde_json::json!({
        "id": "/partitioned", "cmd": "sleep 1000", "cpus": 0.1, "mem": 32, "instances": 1,
        "portDefinitions": [],
        "unreachableStrategy": {"inactiveAfterSeconds": 2, "expungeAfterSeconds": 4},
    });
    let response =
        cluster.http.post(cluster.masters[leader].url("/v2/apps")).json(&app).send().await.unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap_or_default());

    let (original, host) = eventually(Duration::from_secs(60), "the instance running", || async {
        let tasks = app_tasks(&cluster, leader, "/partitioned").await?;
        match &tasks[..] {
            [(id, host, state)] if state == "TASK_RUNNING" => Some((id.clone(), host.clone())),
            _ => None,
        }
    })
    .await;
    let partitioned = &agents[HOSTS.iter().position(|known| *known == host).expect("a known host")];
    partitioned.pause();

    // The instance shows UNREACHABLE, is replaced on another host, then is expunged.
    let seen_unreachable = std::sync::atomic::AtomicBool::new(false);
    let replacement =
        eventually(Duration::from_secs(60), "a replacement running elsewhere", || async {
            let tasks = app_tasks(&cluster, leader, "/partitioned").await?;
            if tasks.iter().any(|(id, _, state)| id == &original && state == "TASK_UNREACHABLE") {
                seen_unreachable.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            match &tasks[..] {
                [(id, other_host, state)] if id != &original && state == "TASK_RUNNING" => {
                    assert_ne!(other_host, &host);
                    Some(id.clone())
                }
                _ => None,
            }
        })
        .await;
    assert!(
        seen_unreachable.load(std::sync::atomic::Ordering::Relaxed),
        "/v2 never showed the instance UNREACHABLE"
    );

    // The partition heals: the expunged task is killed, the replacement stays the only one.
    partitioned.resume();
    let history = task_history(&cluster, leader, &original, "TASK_KILLED").await;
    let unreachable_at = history
        .iter()
        .find(|(task, state, _)| task == &original && state == "TASK_UNREACHABLE")
        .map(|(_, _, at)| *at)
        .expect("the original went UNREACHABLE");
    let replaced_at = history
        .iter()
        .find(|(task, state, _)| task == &replacement && state == "added")
        .map(|(_, _, at)| *at)
        .expect("the replacement was added");
    assert!(
        replaced_at >= unreachable_at + 2_000_000_000,
        "replaced {} ns after going unreachable, before inactiveAfterSeconds",
        replaced_at - unreachable_at
    );
    let position = |task: &str, what: &str| {
        history.iter().position(|(id, state, _)| id == task && state == what)
    };
    let expunged = position(&original, "expunged").expect("the original was expunged");
    assert!(position(&replacement, "added").is_some_and(|added| added < expunged), "{history:?}");
    let tasks = app_tasks(&cluster, leader, "/partitioned").await.expect("the app's tasks");
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0].0, replacement);
}

/// The log's task and service events from the start, as (task id, state or what happened,
/// log time in ns), up to `task_id` reaching `final_state`.
async fn task_history(
    cluster: &Cluster,
    master: usize,
    task_id: &str,
    final_state: &str,
) -> Vec<(String, String, u64)> {
    let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
    let mut history = Vec::new();
    read_logged_events(cluster, master, |event| {
        let event = &event["event"];
        let entry = if let Some(update) = event.get("TaskUpdated") {
            let status = &update["status"];
            let state = format!("TASK_{}", text(&status["state"]).to_uppercase());
            (text(&status["task_id"]), state, status["timestamp"].as_u64().unwrap_or_default())
        } else if let Some(added) = event.get("TaskAdded") {
            let task = &added["task"];
            let at = task["launched_at"].as_u64().unwrap_or_default();
            (text(&task["info"]["task_id"]), "added".to_owned(), at)
        } else if let Some(expunged) = event.get("AppInstanceExpunged") {
            (text(&expunged["task_id"]), "expunged".to_owned(), 0)
        } else {
            return false;
        };
        let done = entry.0 == task_id && entry.1 == final_state;
        history.push(entry);
        done
    })
    .await;
    history
}
