//! `view_frameworks`, `view_tasks`, `view_roles` and `view_apps` filter reads on a real
//! cluster: two frameworks run as different users, each with a task, and two principals each
//! see their own framework and task (and nothing of the other's) in every v0 read, every
//! operator read, while a management token sees both; Marathon's apps and tasks follow
//! `view_apps` alone; `permissive` shows everything.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};

use corral_testkit::agent_process::AgentProcess;
use corral_testkit::cluster::Cluster;
use corral_testkit::eventually;
use corral_testkit::scheduler::RawFramework;

const LONG: Duration = Duration::from_secs(60);

async fn send(
    cluster: &Cluster,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Value {
    let mut request = cluster.http.request(method, cluster.masters[0].url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the master answers");
    let status = response.status();
    let body: Value = response.json().await.expect("a JSON answer");
    assert!(status.is_success(), "{path}: {status} {body}");
    body
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
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client")
}

fn strings<'a>(values: impl IntoIterator<Item = &'a Value>, pointer: &str) -> BTreeSet<String> {
    values
        .into_iter()
        .map(|value| {
            value
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("{pointer} in {value}"))
                .to_owned()
        })
        .collect()
}

fn list<'a>(body: &'a Value, pointer: &str) -> &'a Vec<Value> {
    body.pointer(pointer).and_then(Value::as_array).unwrap_or_else(|| panic!("{pointer} in {body}"))
}

/// What one token is shown, read by read: framework ids, task ids, role names, app ids.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    frameworks: Vec<BTreeSet<String>>,
    tasks: Vec<BTreeSet<String>>,
    roles: Vec<BTreeSet<String>>,
    apps: BTreeSet<String>,
}

async fn seen_by(cluster: &Cluster, token: &str) -> Seen {
    use reqwest::Method;
    let get = |path: &'static str| send(cluster, Method::GET, path, token, None);
    let operator = |kind: &'static str| {
        send(cluster, Method::POST, "/api/v1", token, Some(json!({"type": kind})))
    };
    let state = get("/master/state").await;
    let frameworks = get("/master/frameworks").await;
    let tasks = get("/master/tasks").await;
    let summary = get("/master/state-summary").await;
    let roles = get("/master/roles").await;
    let get_state = operator("GET_STATE").await;
    let get_frameworks = operator("GET_FRAMEWORKS").await;
    let get_tasks = operator("GET_TASKS").await;
    let get_roles = operator("GET_ROLES").await;
    let apps = get("/v2/apps").await;
    let state_tasks =
        list(&state, "/frameworks").iter().flat_map(|framework| list(framework, "/tasks"));
    Seen {
        frameworks: vec![
            strings(list(&state, "/frameworks"), "/id"),
            strings(list(&frameworks, "/frameworks"), "/id"),
            strings(list(&summary, "/frameworks"), "/id"),
            strings(
                list(&get_state, "/get_state/get_frameworks/frameworks"),
                "/framework_info/id/value",
            ),
            strings(
                list(&get_frameworks, "/get_frameworks/frameworks"),
                "/framework_info/id/value",
            ),
        ],
        tasks: vec![
            strings(state_tasks, "/id"),
            strings(list(&tasks, "/tasks"), "/id"),
            strings(list(&get_state, "/get_state/get_tasks/tasks"), "/task_id/value"),
            strings(list(&get_tasks, "/get_tasks/tasks"), "/task_id/value"),
        ],
        roles: vec![
            strings(list(&roles, "/roles"), "/name"),
            strings(list(&get_roles, "/get_roles/roles"), "/name"),
        ],
        apps: strings(list(&apps, "/apps"), "/id"),
    }
}

fn expected(frameworks: &[&str], tasks: &[&str], roles: &[&str], apps: &[&str]) -> Seen {
    let set = |items: &[&str]| items.iter().map(|item| (*item).to_owned()).collect::<BTreeSet<_>>();
    Seen {
        frameworks: vec![set(frameworks); 5],
        tasks: vec![set(tasks); 4],
        roles: vec![set(roles); 2],
        apps: set(apps),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn each_principal_sees_only_the_frameworks_tasks_roles_and_apps_it_may_view() {
    use reqwest::Method;
    let cluster = Cluster::start(1);
    cluster.leader().await;
    let bootstrap = cluster
        .http
        .post(cluster.masters[0].url("/corral/v1/acl/bootstrap"))
        .send()
        .await
        .expect("the master answers");
    let root: Value = bootstrap.json().await.expect("the bootstrap answer");
    let root = root["token"].as_str().expect("the management token").to_owned();
    let mut tokens = Vec::new();
    for principal in ["agents", "ann", "bo"] {
        let body = json!({"principal": principal});
        let created =
            send(&cluster, Method::POST, "/corral/v1/acl/tokens", &root, Some(body)).await;
        tokens.push(created["token"].as_str().expect("a token").to_owned());
    }
    let (agent_token, ann, bo) = (&tokens[0], &tokens[1], &tokens[2]);
    let acls = json!({
        "register_agents": [{"principals": {"values": ["agents"]}, "agents": {"type": "ANY"}}],
        "view_frameworks": [
            {"principals": {"values": ["ann"]}, "users": {"values": ["alice"]}},
            {"principals": {"values": ["bo"]}, "users": {"values": ["bob"]}}
        ],
        "view_tasks": [
            {"principals": {"values": ["ann"]}, "users": {"values": ["alice"]}},
            {"principals": {"values": ["bo"]}, "users": {"type": "ANY"}}
        ],
        "view_roles": [{"principals": {"values": ["ann"]}, "roles": {"values": ["*"]}}],
        "view_apps": [{"principals": {"values": ["bo"]}, "app_ids": {"values": ["/team"]}}],
    });
    send(&cluster, Method::PUT, "/corral/v1/acl/policies/views", &root, Some(acls)).await;
    let mode = json!({"mode": "enforce"});
    send(&cluster, Method::PUT, "/corral/v1/acl/mode", &root, Some(mode)).await;

    let directory = tempfile::tempdir().expect("temp dir");
    let token_file = directory.path().join("agent.token");
    std::fs::write(&token_file, agent_token).expect("token file");
    // Stopped when dropped, gracefully: it kills its tasks, so none outlives the test.
    let _agent = AgentProcess::start(
        directory.path(),
        "agent",
        &cluster.addresses(),
        &[
            "--resources=cpus:2;mem:1024;disk:1024;ports:[33200-33299]",
            &format!("--token-file={}", token_file.display()),
        ],
    );
    let http = client_with(&root);
    let address = &cluster.masters[0].address;
    let mut framework_ids = Vec::new();
    for (user, task) in [("alice", "alice-task"), ("bob", "bob-task")] {
        let info = json!({"user": user, "name": user, "failover_timeout": 60.0});
        let framework = RawFramework::subscribe_with(&http, address, info).await;
        framework.launch(vec![json!({"id": task, "command": {"value": "sleep 600"}})]).await;
        framework.wait_for(task, "TASK_RUNNING").await;
        framework.step_aside().await;
        framework_ids.push(framework.framework_id.clone());
    }
    let (alice, bob) = (framework_ids[0].as_str(), framework_ids[1].as_str());
    for (app, instances) in [("/team/web", 1), ("/other/db", 0)] {
        let body =
            json!({"id": app, "cmd": "sleep 600", "cpus": 0.1, "mem": 16, "instances": instances});
        send(&cluster, Method::POST, "/v2/apps", &root, Some(body)).await;
    }
    let web_task = eventually(LONG, "/team/web's instance running", || async {
        let tasks = send(&cluster, Method::GET, "/v2/tasks", &root, None).await;
        let task = tasks["tasks"].as_array()?.first()?.clone();
        (task["state"] == "TASK_RUNNING").then(|| task["id"].as_str().map(str::to_owned))?
    })
    .await;
    // Marathon's reads follow view_apps alone: bo may view /team but not the apps' framework.
    for (token, seen) in
        [(ann, vec![]), (bo, vec![web_task.clone()]), (&root, vec![web_task.clone()])]
    {
        let tasks = send(&cluster, Method::GET, "/v2/tasks", token, None).await;
        assert_eq!(strings(list(&tasks, "/tasks"), "/id"), seen.into_iter().collect(), "{tasks}");
    }

    assert_eq!(
        seen_by(&cluster, ann).await,
        expected(&[alice], &["alice-task"], &["*"], &[]),
        "ann"
    );
    assert_eq!(
        seen_by(&cluster, bo).await,
        expected(&[bob], &["bob-task"], &[], &["/team/web"]),
        "bo"
    );
    // The built-in service framework (the apps') is there too, run as its own user.
    let everyone = seen_by(&cluster, &root).await;
    let all: Vec<&str> = everyone.frameworks[0].iter().map(String::as_str).collect();
    assert!(all.contains(&alice) && all.contains(&bob) && all.len() == 3, "{all:?}");
    assert_eq!(
        everyone,
        expected(
            &all,
            &["alice-task", "bob-task", web_task.as_str()],
            &["*"],
            &["/other/db", "/team/web"]
        ),
        "root"
    );
    let mode = json!({"mode": "permissive"});
    send(&cluster, Method::PUT, "/corral/v1/acl/mode", &root, Some(mode)).await;
    assert_eq!(
        seen_by(&cluster, ann).await,
        expected(
            &all,
            &["alice-task", "bob-task", web_task.as_str()],
            &["*"],
            &["/other/db", "/team/web"]
        ),
        "ann, permissive"
    );
    let metrics = cluster
        .http
        .get(cluster.masters[0].url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    assert!(
        metrics.lines().any(|line| line.starts_with("corral_http_auth_denied_total{")
            && line.contains("reason=\"hidden\"")),
        "hidden reads counted"
    );
}
