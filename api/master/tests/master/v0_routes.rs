//! The Mesos v0 reads under all four of Mesos's spellings, followers' redirects, their bad
//! input, and the proxy to agents (`/agent/{id}/...`, `/slave/{id}/...`) against a real HTTP
//! server on loopback.

use axum::http::{Method, StatusCode};
use serde_json::json;

use super::support::TestMasters;

/// Registers an agent advertising `address` through the agent-facing API; its id.
async fn register_agent(
    cluster: &TestMasters,
    leader: usize,
    hostname: &str,
    address: &str,
) -> String {
    cluster.register_agent_with(leader, hostname, address, &[]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn every_v0_read_answers_under_all_four_spellings() {
    let cluster = TestMasters::start(1).await;
    let leader = cluster.leader().await;
    let agent_id = register_agent(&cluster, leader, "h1", "127.0.0.1:1").await;
    // (name, a key the answer must hold)
    let reads = [
        ("state", "slaves"),
        ("slaves", "slaves"),
        ("frameworks", "completed_frameworks"),
        ("tasks", "tasks"),
        ("roles", "roles"),
        ("flags", "flags"),
        ("state-summary", "slaves"),
        ("maintenance/schedule", "windows"),
        ("maintenance/status", "draining_machines"),
    ];
    for (name, key) in reads {
        for path in [
            format!("/master/{name}"),
            format!("/master/{name}/"),
            format!("/{name}"),
            format!("/{name}/"),
        ] {
            let answer = cluster.send(leader, Method::GET, &path, None).await;
            assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.body);
            assert_eq!(answer.headers["content-type"], "application/json", "{path}");
            assert!(answer.body.get(key).is_some(), "{path} has {key}: {}", answer.body);
        }
    }
    let slaves = cluster.send(leader, Method::GET, "/master/slaves", None).await;
    assert_eq!(slaves.body["slaves"][0]["id"], agent_id.as_str());
    assert_eq!(slaves.body["slaves"][0]["pid"], "slave(1)@127.0.0.1:1");
    let one =
        cluster.send(leader, Method::GET, &format!("/slaves?slave_id={agent_id}"), None).await;
    assert_eq!(one.body["slaves"].as_array().map(Vec::len), Some(1));
    let none = cluster.send(leader, Method::GET, "/slaves?slave_id=nobody", None).await;
    assert_eq!(none.body["slaves"], json!([]));
    let summary = cluster.send(leader, Method::GET, "/master/state-summary", None).await;
    assert_eq!(summary.body["slaves"][0]["TASK_RUNNING"], 0);
    let flags = cluster.send(leader, Method::GET, "/master/flags", None).await;
    assert_eq!(flags.body["flags"]["allocation_interval"], "0.1secs");
    let tasks = cluster.send(leader, Method::GET, "/master/tasks?limit=-1&order=asc", None).await;
    assert_eq!(tasks.body, json!({"tasks": []}));
}

#[tokio::test(flavor = "multi_thread")]
async fn followers_redirect_v0_reads_and_every_master_points_at_the_leader() {
    let cluster = TestMasters::start(3).await;
    let leader = cluster.leader().await;
    let follower = cluster.follower_of(leader);
    let leader_address = cluster.masters[leader].address.clone();
    for path in ["/master/slaves", "/frameworks/", "/tasks?order=asc&limit=-1", "/master/roles"] {
        let answer = cluster.send(follower, Method::GET, path, None).await;
        assert_eq!(answer.status, StatusCode::TEMPORARY_REDIRECT, "{path}: {}", answer.body);
        assert_eq!(answer.headers["location"], format!("http://{leader_address}{path}").as_str());
        let local_path = if path.contains('?') {
            format!("{path}&consistency=local")
        } else {
            format!("{path}?consistency=local")
        };
        let local = cluster.send(follower, Method::GET, &local_path, None).await;
        assert_eq!(local.status, StatusCode::OK, "{local_path}: {}", local.body);
    }
    for index in [leader, follower] {
        for (path, location) in [
            ("/master/redirect", format!("//{leader_address}")),
            ("/redirect/", format!("//{leader_address}")),
            ("/master/redirect/master/state?x=1", format!("//{leader_address}/master/state?x=1")),
        ] {
            let answer = cluster.send(index, Method::GET, path, None).await;
            assert_eq!(answer.status, StatusCode::TEMPORARY_REDIRECT, "{path}");
            assert_eq!(answer.headers["location"], location.as_str(), "{path}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_v0_parameters_and_unknown_agents_are_refused_by_name() {
    let cluster = TestMasters::start(1).await;
    let leader = cluster.leader().await;
    // An agent whose advertised address nothing listens on.
    let silent = register_agent(&cluster, leader, "silent", "127.0.0.1:1").await;
    let cases = [
        ("/master/tasks?offset=-1", StatusCode::BAD_REQUEST, "offset"),
        ("/tasks?order=sideways", StatusCode::BAD_REQUEST, "order"),
        ("/master/tasks/?limit=-7", StatusCode::BAD_REQUEST, "limit"),
        ("/master/tasks?limit=lots", StatusCode::BAD_REQUEST, "limit"),
        ("/master/state?consistency=eventual", StatusCode::BAD_REQUEST, "consistency"),
        ("/agent/nobody/state", StatusCode::NOT_FOUND, "agent_id"),
        ("/slave/nobody/files/read?path=x", StatusCode::NOT_FOUND, "agent_id"),
    ];
    for (path, status, field) in cases {
        let answer = cluster.send(leader, Method::GET, path, None).await;
        assert_eq!(answer.status, status, "{path}: {}", answer.body);
        assert_eq!(answer.headers["content-type"], "application/json", "{path}");
        assert_eq!(answer.body["field"], field, "{path}: {}", answer.body);
        assert!(answer.body["message"].is_string(), "{path}");
    }
    let unreachable =
        cluster.send(leader, Method::GET, &format!("/agent/{silent}/state"), None).await;
    assert_eq!(unreachable.status, StatusCode::BAD_GATEWAY, "{}", unreachable.body);
    assert_eq!(unreachable.body["error"], "agent_unreachable");
    assert!(
        unreachable.body["message"].as_str().is_some_and(|m| m.contains(silent.as_str())),
        "{}",
        unreachable.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_proxy_forwards_path_query_status_and_body_to_the_agent() {
    // A stand-in for the agent's HTTP server, on loopback: it echoes what it was asked.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let echo = axum::Router::new().fallback(|uri: axum::http::Uri| async move {
        if uri.path() == "/missing" {
            return (StatusCode::NOT_FOUND, axum::Json(json!({"error": "not_found"})));
        }
        (StatusCode::OK, axum::Json(json!({"path": uri.path(), "query": uri.query()})))
    });
    let serving = tokio::spawn(async move { axum::serve(listener, echo).await });
    let cluster = TestMasters::start(1).await;
    let leader = cluster.leader().await;
    let agent_id = register_agent(&cluster, leader, "echo", &address).await;
    for prefix in ["agent", "slave"] {
        let path = format!("/{prefix}/{agent_id}/files/read?path=%2Fsandbox%2Fstdout&offset=-1");
        let answer = cluster.send(leader, Method::GET, &path, None).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.body);
        assert_eq!(
            answer.body,
            json!({"path": "/files/read", "query": "path=%2Fsandbox%2Fstdout&offset=-1"})
        );
        let missing =
            cluster.send(leader, Method::GET, &format!("/{prefix}/{agent_id}/missing"), None).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND, "the agent's own status comes back");
        assert_eq!(missing.body, json!({"error": "not_found"}));
    }
    serving.abort();
}
