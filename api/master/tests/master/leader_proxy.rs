//! A follower forwards Marathon writes to the leader over real HTTP when access control is on
//! (the credentials kept, so the leader authenticates them), redirects them when it is off,
//! and says why when the leader cannot be reached or does not answer.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use corral_log::ReadConsistency;
use corral_master::Serving;
use corral_state::auth::AuthMode;
use corral_testkit::eventually;
use serde_json::{json, Value};

use super::support::{TestMasters, LONG};

fn app(id: &str) -> Value {
    json!({"id": id, "cmd": "sleep 600", "cpus": 0.1, "mem": 16, "instances": 0})
}

/// Bootstraps through the leader, turns enforcement on, and waits until every master has
/// applied it; returns the management token.
pub(super) async fn enforce(cluster: &TestMasters, leader: usize) -> String {
    let answer =
        cluster.send_with(leader, Method::POST, "/corral/v1/acl/bootstrap", None, &[]).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    let root = answer.body["token"].as_str().expect("a token").to_owned();
    let mode = json!({"mode": "enforce"});
    let bearer = format!("Bearer {root}");
    let headers = [("authorization", bearer.as_str())];
    let answer =
        cluster.send_with(leader, Method::PUT, "/corral/v1/acl/mode", Some(&mode), &headers).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    for test in &cluster.masters {
        eventually(LONG, "every master enforces", || async {
            let mode = test
                .master
                .node()
                .read(ReadConsistency::Local, |state| state.auth().mode())
                .await
                .expect("a local read");
            (mode == AuthMode::Enforce).then_some(())
        })
        .await;
    }
    root
}

async fn app_exists(cluster: &TestMasters, leader: usize, root: &str, id: &str) -> bool {
    let bearer = format!("Bearer {root}");
    let path = format!("/v2/apps{id}");
    let answer =
        cluster.send_with(leader, Method::GET, &path, None, &[("authorization", &bearer)]).await;
    answer.status == StatusCode::OK
}

#[tokio::test(flavor = "multi_thread")]
async fn with_access_control_on_a_follower_forwards_marathon_writes_with_their_credentials() {
    let mut cluster = TestMasters::start_bound(3, Serving::default()).await;
    let leader = cluster.leader().await;
    cluster.serve(leader);
    let follower = cluster.follower_of(leader);

    // Off: a follower redirects, as before.
    let answer =
        cluster.send_with(follower, Method::POST, "/v2/apps", Some(&app("/open")), &[]).await;
    assert_eq!(answer.status, StatusCode::TEMPORARY_REDIRECT, "{}", answer.body);

    let root = enforce(&cluster, leader).await;

    // The leader authenticates what the follower forwards: nothing presented is a 401.
    let answer =
        cluster.send_with(follower, Method::POST, "/v2/apps", Some(&app("/dev/web")), &[]).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.body);
    assert_eq!(answer.body["error"], "unauthenticated", "{}", answer.body);
    assert!(answer.headers.contains_key("www-authenticate"), "{:?}", answer.headers);
    assert!(!app_exists(&cluster, leader, &root, "/dev/web").await);

    // Each form of credentials reaches the leader, on both of Marathon's prefixes.
    let bearer = format!("Bearer {root}");
    let answer = cluster
        .send_with(
            follower,
            Method::POST,
            "/v2/apps",
            Some(&app("/dev/web")),
            &[("authorization", &bearer)],
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(answer.body["id"], "/dev/web", "{}", answer.body);
    assert!(app_exists(&cluster, leader, &root, "/dev/web").await);

    let marathon_token = format!("token={root}");
    let mut scaled = app("/dev/web");
    scaled["cmd"] = json!("sleep 900");
    let answer = cluster
        .send_with(
            follower,
            Method::PUT,
            "/service/marathon/v2/apps/dev/web",
            Some(&scaled),
            &[("authorization", &marathon_token)],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert!(answer.body["deploymentId"].is_string(), "{}", answer.body);

    let answer = cluster
        .send_with(
            follower,
            Method::DELETE,
            "/v2/apps/dev/web?force=true",
            None,
            &[("x-corral-token", &root)],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    eventually(LONG, "the app is gone", || async {
        (!app_exists(&cluster, leader, &root, "/dev/web").await).then_some(())
    })
    .await;

    // A request one master already forwarded is not forwarded again: it is redirected.
    let answer = cluster
        .send_with(
            follower,
            Method::POST,
            "/v2/apps",
            Some(&app("/dev/twice")),
            &[("authorization", &bearer), ("x-corral-forwarded-by", "127.0.0.1:1")],
        )
        .await;
    assert_eq!(answer.status, StatusCode::TEMPORARY_REDIRECT, "{}", answer.body);

    // Reads are not forwarded: a follower answers them itself.
    let answer = cluster
        .send_with(follower, Method::GET, "/v2/apps", None, &[("authorization", &bearer)])
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_follower_that_gets_no_answer_from_the_leader_says_why() {
    let serving = Serving { leader_timeout: Duration::from_secs(1), ..Serving::default() };
    let mut cluster = TestMasters::start_bound(3, serving).await;
    let leader = cluster.leader().await;
    let follower = cluster.follower_of(leader);
    let root = enforce(&cluster, leader).await;
    let bearer = format!("Bearer {root}");
    let headers = [("authorization", bearer.as_str())];
    let leader_address = cluster.masters[leader].address.clone();

    // The leader's socket takes the connection but nobody serves it.
    let answer =
        cluster.send_with(follower, Method::POST, "/v2/apps", Some(&app("/dev/a")), &headers).await;
    assert_eq!(answer.status, StatusCode::GATEWAY_TIMEOUT, "{}", answer.body);
    assert_eq!(answer.body["error"], "leader_no_answer", "{}", answer.body);
    let message = answer.body["message"].as_str().expect("a message");
    assert!(message.contains(&leader_address), "{message}");

    // Nothing listens there any more.
    drop(cluster.listeners[leader].take());
    let answer =
        cluster.send_with(follower, Method::POST, "/v2/apps", Some(&app("/dev/a")), &headers).await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY, "{}", answer.body);
    assert_eq!(answer.body["error"], "leader_unreachable", "{}", answer.body);
    // The cause is the follower's log's, not the client's.
    let message = answer.body["message"].as_str().expect("a message");
    assert!(!message.contains("Connection refused"), "{message}");

    // Neither reached the log.
    assert!(!app_exists(&cluster, leader, &root, "/dev/a").await);
}
