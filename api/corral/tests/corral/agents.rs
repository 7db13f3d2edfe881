//! The real agent (`corral agent` processes) with real masters (`corral master` processes):
//! tasks launched through the Mesos scheduler API run as real processes and Docker
//! containers, and their updates reach the framework once, across agent crashes and master
//! failovers.

use std::collections::BTreeMap;
use std::time::Duration;

use corral_state::model::{TaskState, TaskStatus};
use corral_state::Event;
use serde_json::{json, Value};

use corral_testkit::agent_process::AgentProcess;
use corral_testkit::cluster::Cluster;
use corral_testkit::events::LoggedEvents;
use corral_testkit::eventually;
use corral_testkit::scheduler::RawFramework;

const LONG: Duration = Duration::from_secs(60);
const RESOURCES: &str = "--resources=cpus:4;mem:4096;disk:4096;ports:[31000-31100]";

fn shell(id: &str, command: &str) -> Value {
    json!({"id": id, "command": {"value": command}})
}

/// The status of `task_id` in `state` as the log recorded it (with the fields the Mesos JSON
/// leaves out, such as the exit code), read from the native event stream of `master`.
async fn logged_status(master: &str, task_id: &str, state: TaskState) -> TaskStatus {
    let url = format!("http://{master}/corral/v1/events?format=ndjson&topic=task");
    let mut events = LoggedEvents::open(&url).await;
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        let event = events.next(deadline, || format!("{task_id} {state:?} in the log")).await;
        if let Event::TaskUpdated { status, .. } = event {
            if status.task_id.as_str() == task_id && status.state == state {
                return status;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tasks_finish_fail_and_are_killed_with_their_grace_period() {
    let cluster = Cluster::start(1);
    let leader = cluster.leader().await;
    let directory = tempfile::tempdir().expect("temp dir");
    let mut agent =
        AgentProcess::start(directory.path(), "agent", &cluster.addresses(), &[RESOURCES]);
    let framework =
        RawFramework::subscribe(&cluster.http, &cluster.masters[leader].address, "runner").await;

    let agent_id = framework
        .launch(vec![
            shell("hello", "echo hello"),
            shell("broken", "echo something broke >&2; exit 3"),
            json!({"id": "absent", "command": {"shell": false, "value": "/no/such/binary"}}),
            json!({"id": "no-image", "command": {"value": "true"}, "container": {"type": "DOCKER",
                   "docker": {"image": "corral-test-no-such-image:latest"}}}),
            // The shell waits on its child, so SIGTERM reaches the trap at once.
            shell("patient", "trap 'echo terminated; exit 0' TERM; sleep 60 & wait"),
        ])
        .await;

    framework.wait_for("hello", "TASK_RUNNING").await;
    framework.wait_for("hello", "TASK_FINISHED").await;

    let failed = framework.wait_for("broken", "TASK_FAILED").await;
    let message = failed["message"].as_str().unwrap_or_default();
    assert!(message.contains("status 3") && message.contains("something broke"), "{failed}");
    let logged = logged_status(&cluster.masters[leader].address, "broken", TaskState::Failed).await;
    assert_eq!(logged.exit_code, Some(3));

    let absent = framework.wait_for("absent", "TASK_FAILED").await;
    assert!(absent["message"].as_str().unwrap_or_default().contains("/no/such/binary"), "{absent}");

    let no_image = framework.wait_for("no-image", "TASK_FAILED").await;
    assert!(
        no_image["message"].as_str().unwrap_or_default().contains("corral-test-no-such-image"),
        "{no_image}"
    );

    framework.wait_for("patient", "TASK_RUNNING").await;
    framework.kill("patient", &agent_id, Duration::from_secs(5)).await;
    framework.wait_for("patient", "TASK_KILLING").await;
    let killed = framework.wait_for("patient", "TASK_KILLED").await;
    // The trap ended it well within its grace period: no SIGKILL was needed.
    let sandbox = agent.work_dir.join("sandboxes").join(&framework.framework_id).join("patient");
    let stdout = std::fs::read_to_string(sandbox.join("stdout")).unwrap_or_default();
    assert!(stdout.contains("terminated"), "{killed} {stdout}");

    agent.kill();
}

/// A scheduler stream is judged by its heartbeats, not by the HTTP client's whole-request
/// timeout: with a client that gives up on any request after 1 s, an update sent 2 s after
/// SUBSCRIBE still arrives (the stream used to break at the client's deadline, silently).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_framework_stream_outlives_the_http_clients_request_timeout() {
    let cluster = Cluster::start(1);
    let leader = cluster.leader().await;
    let directory = tempfile::tempdir().expect("temp dir");
    let mut agent =
        AgentProcess::start(directory.path(), "agent", &cluster.addresses(), &[RESOURCES]);
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .expect("an HTTP client with a 1 s timeout");
    let framework =
        RawFramework::subscribe(&impatient, &cluster.masters[leader].address, "slow").await;
    framework.launch(vec![shell("slow", "sleep 2")]).await;
    framework.wait_for("slow", "TASK_FINISHED").await;
    agent.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tasks_survive_an_agent_killed_with_sigkill_and_nothing_is_reported_twice() {
    let cluster = Cluster::start(1);
    let leader = cluster.leader().await;
    let directory = tempfile::tempdir().expect("temp dir");
    let mut agent =
        AgentProcess::start(directory.path(), "agent", &cluster.addresses(), &[RESOURCES]);
    let framework =
        RawFramework::subscribe(&cluster.http, &cluster.masters[leader].address, "survivor").await;

    let ends_while_down = directory.path().join("ends-while-down");
    let agent_id = framework
        .launch(vec![
            shell("long", "sleep 60"),
            // Ends once the test, with the agent down, creates the file.
            shell(
                "short",
                &format!("while [ ! -e {} ]; do sleep 0.1; done", ends_while_down.display()),
            ),
        ])
        .await;
    framework.wait_for("long", "TASK_RUNNING").await;
    framework.wait_for("short", "TASK_RUNNING").await;

    agent.kill();
    std::fs::write(&ends_while_down, b"").expect("signal file");
    let short_sandbox =
        agent.work_dir.join("sandboxes").join(&framework.framework_id).join("short");
    eventually(LONG, "the short task to end while the agent is down", || async {
        short_sandbox.join(".corral-exit-status").exists().then_some(())
    })
    .await;
    agent.restart();

    framework.wait_for("short", "TASK_FINISHED").await;
    framework.kill("long", &agent_id, Duration::from_secs(2)).await;
    framework.wait_for("long", "TASK_KILLED").await;

    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    for update in framework.received() {
        *seen.entry(update).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, count)| **count > 1).collect();
    assert!(twice.is_empty(), "reported more than once: {twice:?}\n{}", agent.logs());
    for (task, state) in
        [("long", "TASK_RUNNING"), ("short", "TASK_RUNNING"), ("long", "TASK_KILLED")]
    {
        assert!(
            seen.contains_key(&(task.to_owned(), state.to_owned())),
            "{task} {state}: {seen:?}"
        );
    }
    assert!(!seen.contains_key(&("long".to_owned(), "TASK_LOST".to_owned())), "{seen:?}");
    // The second agent process found both tasks through its checkpoints, not by luck.
    let logs = agent.logs();
    assert!(logs.contains("recovered a running task"), "{logs}");
    assert!(logs.contains("task ended while the agent was down"), "{logs}");
    agent.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_agent_keeps_reporting_to_a_new_leader_after_a_failover() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.leader().await;
    let directory = tempfile::tempdir().expect("temp dir");
    let mut agent =
        AgentProcess::start(directory.path(), "agent", &cluster.addresses(), &[RESOURCES]);
    let framework =
        RawFramework::subscribe(&cluster.http, &cluster.masters[leader].address, "steady").await;

    let finish_after_failover = directory.path().join("finish-after-failover");
    framework
        .launch(vec![shell(
            "outlives-leader",
            &format!("while [ ! -e {} ]; do sleep 0.1; done", finish_after_failover.display()),
        )])
        .await;
    framework.wait_for("outlives-leader", "TASK_RUNNING").await;

    cluster.masters[leader].kill();
    let new_leader = cluster.leader().await;
    assert_ne!(new_leader, leader);
    std::fs::write(&finish_after_failover, b"").expect("signal file");

    let finished =
        logged_status(&cluster.masters[new_leader].address, "outlives-leader", TaskState::Finished)
            .await;
    assert_eq!(finished.exit_code, Some(0), "{}", agent.logs());
    agent.kill();
}

#[test]
fn a_malformed_resources_flag_stops_the_agent_at_start_up() {
    let directory = tempfile::tempdir().expect("temp dir");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_corral"))
        .args(["agent", "--master", "127.0.0.1:1", "--resources", "cpus:many;mem:1024"])
        .arg("--work-dir")
        .arg(directory.path())
        .output()
        .expect("corral agent runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--resources") && stderr.contains("cpus"), "{stderr}");
}

fn resources(cpus: f64, mem: u32, port: Option<u16>) -> Value {
    let mut list = vec![
        json!({"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}}),
        json!({"name": "mem", "type": "SCALAR", "scalar": {"value": mem}}),
    ];
    if let Some(port) = port {
        list.push(json!({"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": port, "end": port}]}}));
    }
    json!(list)
}

/// Docker through the whole path (framework → log → agent → engine), a memory limit, and a
/// failing health check whose task the framework replaces.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn docker_limits_and_health_checks_work_through_the_master() {
    let build = std::process::Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../agent/tests/images/build.sh"
    ))
    .status()
    .expect("image build script runs");
    assert!(build.success(), "the test image builds locally");
    let cluster = Cluster::start(1);
    let leader = cluster.leader().await;
    let directory = tempfile::tempdir().expect("temp dir");
    let mut agent =
        AgentProcess::start(directory.path(), "agent", &cluster.addresses(), &[RESOURCES]);
    let framework =
        RawFramework::subscribe(&cluster.http, &cluster.masters[leader].address, "checks").await;

    let port = 31042;
    let agent_id = framework
        .launch(vec![
            json!({"id": "web", "resources": resources(0.5, 96, Some(port)),
                   "command": {"value": "trap 'exit 0' TERM; echo corral > /www/index.html; httpd -f -p 8080 -h /www & while true; do sleep 0.1; done"},
                   "container": {"type": "DOCKER", "docker": {"image": "corral-test-busybox:latest", "network": "BRIDGE",
                                 "port_mappings": [{"host_port": port, "container_port": 8080}]}},
                   "health_check": {"type": "HTTP", "http": {"port": 8080, "path": "/index.html"},
                                    "delay_seconds": 0, "interval_seconds": 0.2, "grace_period_seconds": 30}}),
            json!({"id": "hungry", "resources": resources(0.1, 32, None),
                   "command": {"value": "head -c 200000000 /dev/zero | tail -c 200000000 > /dev/null"}}),
            json!({"id": "sickly", "command": {"value": "sleep 60"},
                   "health_check": {"type": "COMMAND", "command": {"value": "false"},
                                    "delay_seconds": 0, "interval_seconds": 0.2, "consecutive_failures": 2, "grace_period_seconds": 0}}),
        ])
        .await;

    // The Docker task is reported healthy and is reachable on the host port.
    framework
        .wait_for_status("a healthy update for the web task", |status| {
            status["task_id"]["value"] == "web"
                && status["state"] == "TASK_RUNNING"
                && status["healthy"] == true
        })
        .await;
    let healthy = eventually(LONG, "web healthy", || async {
        let response = reqwest::get(format!("http://127.0.0.1:{port}/index.html")).await.ok()?;
        (response.status() == 200).then_some(response.text().await.ok()?)
    })
    .await;
    assert_eq!(healthy.trim(), "corral");

    // Exceeding the memory limit ends the task FAILED with Mesos's reason.
    let oom = framework.wait_for("hungry", "TASK_FAILED").await;
    assert_eq!(oom["reason"], "REASON_CONTAINER_LIMITATION_MEMORY", "{oom}");

    // A failing health check gets the task killed; the framework launches a replacement.
    let killed = framework.wait_for("sickly", "TASK_KILLED").await;
    assert!(framework
        .received()
        .iter()
        .any(|(task, state)| task == "sickly" && state == "TASK_RUNNING"));
    framework
        .wait_for_status("an unhealthy update for the sickly task", |status| {
            status["task_id"]["value"] == "sickly" && status["healthy"] == false
        })
        .await;
    assert_eq!(killed["task_id"]["value"], "sickly");
    framework.launch(vec![shell("sickly-replacement", "sleep 60")]).await;
    framework.wait_for("sickly-replacement", "TASK_RUNNING").await;

    framework.kill("web", &agent_id, Duration::from_secs(5)).await;
    framework.wait_for("web", "TASK_KILLED").await;
    framework.kill("sickly-replacement", &agent_id, Duration::from_secs(1)).await;
    framework.wait_for("sickly-replacement", "TASK_KILLED").await;
    agent.kill();
}
