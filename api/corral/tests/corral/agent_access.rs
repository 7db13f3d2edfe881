//! Access control on an agent's own API (`--listen`), with a real agent process and a real
//! master: the agent asks the master about each caller (cached a few seconds) and answers
//! 401/403 as the master does; through the master's proxy the caller's credentials go on to
//! the agent; with the mode `off` everything is open; a revoked token is refused once the
//! agent's cached verdict runs out.

use std::time::Duration;

use serde_json::{json, Value};

use corral_testkit::agent_process::AgentProcess;
use corral_testkit::cluster::Cluster;
use corral_testkit::eventually;
use corral_testkit::scheduler::RawFramework;

const LONG: Duration = Duration::from_secs(60);

/// GET `url` with `token` (as a bearer token) if any: the status, the
/// `WWW-Authenticate` header and the body (JSON, else a JSON string).
async fn get(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
) -> (u16, Option<String>, Value) {
    let mut request = http.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("an answer");
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let text = response.text().await.expect("a body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, challenge, body)
}

async fn call(
    cluster: &Cluster,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Value,
) -> (u16, Value) {
    let response = cluster
        .http
        .request(method, cluster.masters[0].url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("the master answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_agents_own_api_answers_only_whom_the_masters_allow() {
    use reqwest::Method;
    let cluster = Cluster::start(1);
    cluster.leader().await;
    let http = cluster.http.clone();
    let bootstrap = cluster.masters[0].url("/corral/v1/acl/bootstrap");
    let root = http.post(&bootstrap).send().await.expect("bootstrap").json::<Value>().await;
    let root = root.expect("JSON")["token"].as_str().expect("the management token").to_owned();
    let mut tokens = std::collections::BTreeMap::new();
    for principal in ["agents", "reader", "sandboxer"] {
        let (status, created) = call(
            &cluster,
            Method::POST,
            "/corral/v1/acl/tokens",
            &root,
            json!({"principal": principal}),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        let token = created["token"].as_str().expect("a token").to_owned();
        let accessor = created["accessor"].as_str().expect("an accessor").to_owned();
        tokens.insert(principal, (token, accessor));
    }
    let acls = json!({
        "register_agents": [{"principals": {"values": ["agents"]}, "agents": {"type": "ANY"}}],
        "view_tasks": [{"principals": {"values": ["reader", "sandboxer"]}, "users": {"type": "ANY"}}],
        "access_sandboxes": [{"principals": {"values": ["sandboxer"]}, "users": {"type": "ANY"}}],
    });
    let (status, body) =
        call(&cluster, Method::PUT, "/corral/v1/acl/policies/agents", &root, acls).await;
    assert_eq!(status, 200, "{body}");

    let directory = tempfile::tempdir().expect("temp dir");
    let token_file = directory.path().join("agent.token");
    std::fs::write(&token_file, &tokens["agents"].0).expect("token file");
    let token_flag = format!("--token-file={}", token_file.display());
    let mut agent = AgentProcess::start(
        directory.path(),
        "agent",
        &cluster.addresses(),
        &["--resources=cpus:2;mem:1024;disk:1024;ports:[33200-33299]", &token_flag],
    );
    let (agent_id, address) = eventually(LONG, "the agent registered", || async {
        let (_, _, state) = get(&http, &cluster.masters[0].url("/master/state"), Some(&root)).await;
        let agent = state["slaves"].as_array()?.first()?.clone();
        let address = agent["pid"].as_str()?.split_once('@')?.1.to_owned();
        Some((agent["id"].as_str()?.to_owned(), address))
    })
    .await;

    // With the mode off (as now), a task's sandbox is open to anyone.
    let framework = RawFramework::subscribe(&http, &cluster.masters[0].address, "writer").await;
    framework.launch(vec![json!({"id": "hello", "command": {"value": "echo hello"}})]).await;
    framework.wait_for("hello", "TASK_FINISHED").await;
    let (status, _, state) = get(&http, &format!("http://{address}/state"), None).await;
    assert_eq!(status, 200, "{state}");
    let sandbox = state["completed_frameworks"]
        .as_array()
        .into_iter()
        .chain(state["frameworks"].as_array())
        .flatten()
        .flat_map(|framework| {
            let executors = framework["completed_executors"].as_array().into_iter();
            executors.chain(framework["executors"].as_array()).flatten()
        })
        .find_map(|executor| executor["directory"].as_str().map(str::to_owned))
        .expect("the task's sandbox");
    let read = format!("http://{address}/files/read?path={sandbox}/stdout&offset=0");
    let proxied = cluster.masters[0]
        .url(&format!("/agent/{agent_id}/files/read?path={sandbox}/stdout&offset=0"));
    let hello = json!({"data": "hello\n", "offset": 0});
    let (status, _, page) = get(&http, &read, None).await;
    assert_eq!((status, &page), (200, &hello));

    let (status, body) =
        call(&cluster, Method::PUT, "/corral/v1/acl/mode", &root, json!({"mode": "enforce"})).await;
    assert_eq!(status, 200, "{body}");
    // The agent learns the mode within its cache's lifetime.
    let (challenge, refusal) = eventually(LONG, "the agent refusing an anonymous read", || async {
        let (status, challenge, body) = get(&http, &read, None).await;
        (status == 401).then_some((challenge, body))
    })
    .await;
    assert_eq!(challenge.as_deref(), Some("Basic realm=\"corral\""));
    assert_eq!(refusal["error"], "unauthenticated", "{refusal}");
    let reader = tokens["reader"].0.as_str();
    let sandboxer = tokens["sandboxer"].0.as_str();
    let (status, _, refusal) = get(&http, &read, Some(reader)).await;
    assert_eq!((status, refusal["error"].as_str()), (403, Some("forbidden")), "{refusal}");
    assert!(
        refusal["message"].as_str().is_some_and(|m| m.contains("access_sandboxes")),
        "{refusal}"
    );
    let (status, _, page) = get(&http, &read, Some(sandboxer)).await;
    assert_eq!((status, &page), (200, &hello));
    // The rest of the agent's API: its tasks need view_tasks, the snapshot a live identity,
    // liveness and Prometheus nothing.
    for (path, token, expected) in [
        ("/state", None, 401),
        ("/state", Some(reader), 200),
        ("/monitor/statistics", Some(reader), 200),
        ("/metrics/snapshot", None, 401),
        ("/metrics/snapshot", Some(reader), 200),
        ("/health", None, 200),
        ("/version", None, 200),
        ("/metrics", None, 200),
    ] {
        let (status, _, body) = get(&http, &format!("http://{address}{path}"), token).await;
        assert_eq!(status, expected, "{path} with {token:?}: {body}");
    }

    // Through the master's proxy, the same caller gets the same answer.
    let (status, _, _) = get(&http, &proxied, None).await;
    assert_eq!(status, 401);
    let (status, _, _) = get(&http, &proxied, Some(reader)).await;
    assert_eq!(status, 403);
    let (status, _, page) = get(&http, &proxied, Some(sandboxer)).await;
    assert_eq!((status, &page), (200, &hello));

    // Only the agent's own identity (or a management token) may ask the masters.
    let question = json!({"agent_id": agent_id, "action": "access_sandboxes",
        "credentials": {"authorization": format!("Bearer {sandboxer}")}});
    let (status, body) =
        call(&cluster, Method::POST, "/corral/v1/acl/authorize", reader, question.clone()).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) =
        call(&cluster, Method::POST, "/corral/v1/acl/authorize", &tokens["agents"].0, question)
            .await;
    assert_eq!((status, body["verdict"].as_str()), (200, Some("allow")), "{body}");

    // A revoked token is refused once the agent's cached verdict has run out.
    let accessor = &tokens["sandboxer"].1;
    let revoke = cluster.masters[0].url(&format!("/corral/v1/acl/tokens/{accessor}"));
    let revoked = http.delete(&revoke).bearer_auth(&root).send().await.expect("revoke");
    assert_eq!(revoked.status(), 204);
    eventually(Duration::from_secs(20), "the revoked token refused by the agent", || async {
        let (status, _, _) = get(&http, &read, Some(sandboxer)).await;
        (status == 401).then_some(())
    })
    .await;

    // Back to off: open again.
    let (status, body) =
        call(&cluster, Method::PUT, "/corral/v1/acl/mode", &root, json!({"mode": "off"})).await;
    assert_eq!(status, 200, "{body}");
    eventually(LONG, "the agent open again", || async {
        let (status, _, _) = get(&http, &read, None).await;
        (status == 200).then_some(())
    })
    .await;
    let log = agent.logs();
    assert!(!log.contains(sandboxer) && !log.contains(&root), "a token in the agent's log");
    agent.kill();
}
