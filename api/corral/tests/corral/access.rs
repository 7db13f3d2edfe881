//! Access control with real processes: once enforced, an agent started with its token
//! (`--token-file`) registers and runs a framework's task, and one started without says in
//! its log why it never registers.

use std::time::Duration;

use serde_json::{json, Value};

use corral_testkit::agent_process::AgentProcess;
use corral_testkit::cluster::Cluster;
use corral_testkit::eventually;
use corral_testkit::scheduler::RawFramework;

const LONG: Duration = Duration::from_secs(60);

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

/// A client whose every request carries `token`.
fn client_with(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().expect("a header value"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client")
}

#[tokio::test(flavor = "multi_thread")]
async fn with_access_control_enforced_an_agent_registers_with_its_token_and_not_without() {
    use reqwest::Method;
    let cluster = Cluster::start(1);
    let leader = cluster.leader().await;
    let (status, root) =
        send(&cluster, leader, Method::POST, "/corral/v1/acl/bootstrap", None, None).await;
    assert_eq!(status, 201, "{root}");
    let root = root["token"].as_str().expect("the management token").to_owned();
    let mut tokens = Vec::new();
    for principal in ["agents", "fw"] {
        let body = json!({"principal": principal});
        let (status, created) =
            send(&cluster, leader, Method::POST, "/corral/v1/acl/tokens", Some(&root), Some(body))
                .await;
        assert_eq!(status, 201, "{created}");
        tokens.push(created["token"].as_str().expect("a token").to_owned());
    }
    let acls = json!({
        "register_agents": [{"principals": {"values": ["agents"]}, "agents": {"type": "ANY"}}],
        "register_frameworks": [{"principals": {"values": ["fw"]}, "roles": {"type": "ANY"}}],
        "run_tasks": [{"principals": {"values": ["fw"]}, "users": {"type": "ANY"}}],
    });
    let path = "/corral/v1/acl/policies/cluster";
    let (status, body) = send(&cluster, leader, Method::PUT, path, Some(&root), Some(acls)).await;
    assert_eq!(status, 200, "{body}");
    let mode = json!({"mode": "enforce"});
    let path = "/corral/v1/acl/mode";
    let (status, body) = send(&cluster, leader, Method::PUT, path, Some(&root), Some(mode)).await;
    assert_eq!(status, 200, "{body}");

    let directory = tempfile::tempdir().expect("temp dir");
    let token_file = directory.path().join("agent.token");
    std::fs::write(&token_file, format!("{}\n", tokens[0])).expect("token file");
    let resources = "--resources=cpus:2;mem:1024;disk:1024;ports:[33100-33199]";
    let token_flag = format!("--token-file={}", token_file.display());
    let mut trusted = AgentProcess::start(
        directory.path(),
        "trusted",
        &cluster.addresses(),
        &[resources, "--hostname=trusted", &token_flag],
    );
    let mut stranger = AgentProcess::start(
        directory.path(),
        "stranger",
        &cluster.addresses(),
        &[resources, "--hostname=stranger"],
    );

    // The stranger says why it is not let in, and never is.
    eventually(LONG, "the stranger's refusal in its log", || async {
        stranger.logs().contains("refused this agent's credentials").then_some(())
    })
    .await;
    let hostnames = eventually(LONG, "the trusted agent registered", || async {
        let (status, state) =
            send(&cluster, leader, Method::GET, "/master/state", Some(&root), None).await;
        assert_eq!(status, 200, "{state}");
        let hostnames: Vec<String> = state["slaves"]
            .as_array()?
            .iter()
            .filter_map(|agent| Some(agent["hostname"].as_str()?.to_owned()))
            .collect();
        (!hostnames.is_empty()).then_some(hostnames)
    })
    .await;
    assert_eq!(hostnames, ["trusted"]);

    // A framework with its own token runs a task on it.
    let framework = RawFramework::subscribe(
        &client_with(&tokens[1]),
        &cluster.masters[leader].address,
        "secured",
    )
    .await;
    framework.launch(vec![json!({"id": "hello", "command": {"value": "echo hello"}})]).await;
    framework.wait_for("hello", "TASK_FINISHED").await;

    // The token never reaches a log.
    let master_log = cluster.masters[leader].log_path();
    let master_log = std::fs::read_to_string(master_log).expect("the master's log");
    for logs in [trusted.logs(), stranger.logs(), master_log] {
        assert!(!logs.contains(&tokens[0]) && !logs.contains(&root), "a token in a log");
    }
    trusted.kill();
    stranger.kill();
}
