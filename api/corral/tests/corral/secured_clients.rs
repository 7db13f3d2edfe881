//! Unmodified clients with credentials, through a follower of three `corral master`
//! processes with access control enforced: the `marathon` client with a Basic user and with
//! `auth_token` (its writes forwarded to the leader with their `Authorization` header, which
//! a redirect would lose), and pymesos with a principal and secret (Basic on every call)
//! running a task on an agent that joined with its token.

use std::process::Command;

use base64::Engine as _;
use std::time::Duration;

use serde_json::{json, Value};

use corral_testkit::agent_process::AgentProcess;
use corral_testkit::cluster::Cluster;
use corral_testkit::framework::{python, Framework};
use corral_testkit::scheduler::RawFramework;

const LONG: Duration = Duration::from_secs(90);
const WEB_SECRET: &str = "web-secret-1234";
const FW_SECRET: &str = "fw-secret-5678";
/// In this test's tasks' command lines: other tests look for pymesos's default marker.
const MARKER: &str = "corral-secured-clients-test";

async fn send(
    cluster: &Cluster,
    leader: usize,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (reqwest::StatusCode, Value) {
    let mut request = cluster.http.request(method, cluster.masters[leader].url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the master answers");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Bootstraps, makes the agents' and the Marathon client's tokens, imports the Basic
/// credentials, puts the policy and enforces it; returns (agents' token, Marathon token).
async fn secure(cluster: &Cluster, leader: usize) -> (String, String) {
    use reqwest::Method;
    let (status, root) =
        send(cluster, leader, Method::POST, "/corral/v1/acl/bootstrap", None, None).await;
    assert_eq!(status, 201, "{root}");
    let root = root["token"].as_str().expect("the management token").to_owned();
    let mut tokens = Vec::new();
    for principal in ["agents", "ops"] {
        let body = json!({"principal": principal});
        let path = "/corral/v1/acl/tokens";
        let (status, created) =
            send(cluster, leader, Method::POST, path, Some(&root), Some(body)).await;
        assert_eq!(status, 201, "{created}");
        tokens.push(created["token"].as_str().expect("a token").to_owned());
    }
    let credentials = json!({"credentials": [
        {"principal": "web", "secret": WEB_SECRET},
        {"principal": "fw", "secret": FW_SECRET},
    ]});
    let path = "/corral/v1/acl/credentials";
    let (status, body) =
        send(cluster, leader, Method::PUT, path, Some(&root), Some(credentials)).await;
    assert_eq!(status, 200, "{body}");
    let marathon = |action: &str| {
        (
            action.to_owned(),
            json!([{"principals": {"values": ["web", "ops"]}, "app_ids": {"values": ["/dev"]}}]),
        )
    };
    let mut acls = serde_json::Map::from_iter(
        ["create_apps", "update_apps", "delete_apps", "view_apps"].map(marathon),
    );
    acls.insert(
        "register_agents".to_owned(),
        json!([{"principals": {"values": ["agents"]}, "agents": {"type": "ANY"}}]),
    );
    acls.insert(
        "register_frameworks".to_owned(),
        json!([{"principals": {"values": ["fw"]}, "roles": {"type": "ANY"}}]),
    );
    acls.insert(
        "run_tasks".to_owned(),
        json!([{"principals": {"values": ["fw"]}, "users": {"values": ["root"]}}]),
    );
    let path = "/corral/v1/acl/policies/cluster";
    let (status, body) =
        send(cluster, leader, Method::PUT, path, Some(&root), Some(Value::Object(acls))).await;
    assert_eq!(status, 200, "{body}");
    let mode = json!({"mode": "enforce"});
    let path = "/corral/v1/acl/mode";
    let (status, body) = send(cluster, leader, Method::PUT, path, Some(&root), Some(mode)).await;
    assert_eq!(status, 200, "{body}");
    // A follower that has not applied the mode yet would still redirect.
    for index in 0..cluster.masters.len() {
        corral_testkit::eventually(LONG, "every master enforces", || async {
            let (_, auth) = send(cluster, index, Method::GET, "/corral/v1/auth", None, None).await;
            (auth["mode"] == "enforce").then_some(())
        })
        .await;
    }
    (tokens.remove(0), tokens.remove(0))
}

#[tokio::test(flavor = "multi_thread")]
async fn marathon_and_pymesos_with_credentials_work_through_a_follower() {
    let cluster = Cluster::start(3);
    let leader = cluster.leader().await;
    let follower = cluster.follower_of(leader);
    let (agents_token, marathon_token) = secure(&cluster, leader).await;
    let follower_address = cluster.masters[follower].address.clone();

    // The marathon client, as a Basic user and with a token, against the follower only.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/python/secured_clients.py");
    let master_url = format!("http://{follower_address}");
    let run = {
        let marathon_token = marathon_token.clone();
        tokio::task::spawn_blocking(move || {
            Command::new(python())
                .arg(script)
                .args(["--master", &master_url])
                .args(["--username", "web", "--password", WEB_SECRET])
                .args(["--token", &marathon_token])
                .output()
                .expect("the marathon client runs")
        })
    };
    let output = run.await.expect("the client's thread");
    let said = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "the marathon client failed ({}); said {said}; stderr {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let steps: Vec<Value> =
        said.lines().filter_map(|line| serde_json::from_str(line).ok()).collect();
    let names: Vec<&str> = steps.iter().filter_map(|step| step["step"].as_str()).collect();
    assert_eq!(
        names,
        [
            "anonymous_refused",
            "created",
            "updated",
            "deleted",
            "created",
            "updated",
            "deleted",
            "ok"
        ],
        "{said}"
    );

    // pymesos, Basic on every call, subscribing through the follower, runs a task on an
    // agent admitted with its join token.
    let directory = tempfile::tempdir().expect("temp dir");
    let token_file = directory.path().join("agent.token");
    std::fs::write(&token_file, format!("{agents_token}\n")).expect("token file");
    let token_flag = format!("--token-file={}", token_file.display());
    let agent = AgentProcess::start(
        directory.path(),
        "secured",
        &cluster.addresses(),
        &["--resources=cpus:2;mem:1024;disk:1024;ports:[33200-33299]", &token_flag],
    );
    let wait = tokio::task::spawn_blocking(move || {
        let mut framework = Framework::start(
            &follower_address,
            1,
            &["--principal", "fw", "--secret", FW_SECRET, "--marker", MARKER],
        );
        framework.wait_for(LONG, "registered", |line| line["kind"] == "registered");
        framework.wait_for(LONG, "a running task", |line| {
            line["kind"] == "update" && line["state"] == "TASK_RUNNING"
        });
        framework.tell("stop");
    });
    wait.await.expect("the framework ran a task");

    // A principal the ACLs do not let register frameworks: pymesos reports Mesos's ERROR
    // event through its `error` callback.
    let follower_address = cluster.masters[follower].address.clone();
    let refused = tokio::task::spawn_blocking(move || {
        let mut framework =
            Framework::start(&follower_address, 1, &["--principal", "web", "--secret", WEB_SECRET]);
        let error = framework.wait_for(LONG, "an error", |line| line["kind"] == "error");
        assert!(
            !framework.seen.iter().any(|line| line["kind"] == "registered"),
            "{:?}",
            framework.seen
        );
        error
    });
    let error = refused.await.expect("the refused framework's thread");
    let message = error["message"].as_str().expect("a message");
    assert!(message.starts_with("Not authorized to subscribe"), "{message}");
    assert!(message.contains("principal 'web' may not register_frameworks"), "{message}");

    // No secret reaches a master's log.
    for master in &cluster.masters {
        let log = std::fs::read_to_string(master.log_path()).expect("a master's log");
        for secret in [WEB_SECRET, FW_SECRET, &marathon_token, &agents_token] {
            assert!(!log.contains(secret), "a secret in master {}'s log", master.node_id);
        }
    }
    // Dropped, the agent stops gracefully and kills its tasks (`--on-stop kill-tasks`).
    drop(agent);
    let left = Command::new("pgrep").args(["-f", MARKER]).output().expect("pgrep");
    assert!(
        left.stdout.is_empty(),
        "tasks left running: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}

/// Mesos decides `run_tasks` per task: in one ACCEPT, the task the principal may not run as
/// its user becomes TASK_ERROR (REASON_TASK_UNAUTHORIZED, from the master) and the other runs.
#[tokio::test(flavor = "multi_thread")]
async fn a_task_the_framework_may_not_run_is_an_error_and_its_neighbour_runs() {
    let cluster = Cluster::start(1);
    let leader = cluster.leader().await;
    let (agents_token, _) = secure(&cluster, leader).await;
    let directory = tempfile::tempdir().expect("temp dir");
    let token_file = directory.path().join("agent.token");
    std::fs::write(&token_file, format!("{agents_token}\n")).expect("token file");
    let token_flag = format!("--token-file={}", token_file.display());
    let agent = AgentProcess::start(
        directory.path(),
        "runs",
        &cluster.addresses(),
        &["--resources=cpus:2;mem:1024;disk:1024;ports:[33300-33399]", &token_flag],
    );
    let mut headers = reqwest::header::HeaderMap::new();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("fw:{FW_SECRET}"));
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Basic {basic}").parse().expect("a header value"),
    );
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client");
    let framework =
        RawFramework::subscribe(&http, &cluster.masters[leader].address, "run-tasks").await;
    framework
        .launch(vec![
            json!({"id": "allowed", "command": {"value": "echo allowed"}}),
            json!({"id": "refused", "command": {"value": "echo refused", "user": "nobody"}}),
        ])
        .await;
    let refused = framework.wait_for("refused", "TASK_ERROR").await;
    assert_eq!(refused["reason"], "REASON_TASK_UNAUTHORIZED", "{refused}");
    assert_eq!(refused["source"], "SOURCE_MASTER", "{refused}");
    let message = refused["message"].as_str().expect("a message");
    assert!(message.contains("may not run_tasks on 'nobody'"), "{message}");
    framework.wait_for("allowed", "TASK_FINISHED").await;
    assert!(
        !framework
            .received()
            .iter()
            .any(|(task, state)| task == "refused" && state != "TASK_ERROR"),
        "{:?}",
        framework.received()
    );
    // Dropped, the agent stops gracefully and kills its tasks (`--on-stop kill-tasks`).
    drop(agent);
}

/// Over mutual TLS a follower forwards as a master (its certificate names
/// `master.<cluster>`), to the leader's TLS listener, whichever listener the write came in
/// on: a plain client (as pymesos or `requests` without a CA) and a TLS one alike.
#[tokio::test(flavor = "multi_thread")]
async fn over_tls_a_follower_forwards_writes_from_either_listener() {
    let cluster = Cluster::start_tls(3, 0, &[]);
    let leader = cluster.leader().await;
    let follower = cluster.follower_of(leader);
    secure(&cluster, leader).await;
    let follower_plain = cluster.masters[follower].plain_address.clone().expect("plain listener");
    let app =
        |id: &str| json!({"id": id, "cmd": "sleep 600", "cpus": 0.1, "mem": 16, "instances": 0});
    let urls = [
        (format!("http://{follower_plain}/v2/apps"), "/dev/plain"),
        (cluster.masters[follower].url("/v2/apps"), "/dev/tls"),
    ];
    for (url, id) in urls {
        let response = cluster
            .http
            .post(&url)
            .basic_auth("web", Some(WEB_SECRET))
            .json(&app(id))
            .send()
            .await
            .expect("the follower answers");
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 201, "{url}: {body}");
        assert_eq!(body["id"], id, "{body}");
        let response = cluster
            .http
            .get(cluster.masters[leader].url(&format!("/v2/apps{id}")))
            .basic_auth("web", Some(WEB_SECRET))
            .send()
            .await
            .expect("the leader answers");
        assert_eq!(response.status(), 200, "{id} on the leader");
    }
}
