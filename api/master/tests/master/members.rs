//! `/corral/v1/members`, `/corral/v1/leader/transfer` and `/corral/v1/snapshot` through the
//! router: redirects, refusals naming the parameter, a transfer, a backup's headers.

use axum::http::{Method, StatusCode};
use corral_log::backup::Backup;
use corral_testkit::eventually;
use serde_json::{json, Value};

use super::support::{TestMasters, LONG};

#[tokio::test(flavor = "multi_thread")]
async fn followers_redirect_membership_writes_and_reads_with_their_query() {
    let cluster = TestMasters::start(3).await;
    let leader = cluster.leader().await;
    let follower = cluster.follower_of(leader);
    let leader_address = cluster.masters[leader].address.clone();
    let add = json!({"node_id": 7, "address": "master-7:5050"});
    let cases: [(Method, &str, Option<&Value>); 5] = [
        (Method::GET, "/corral/v1/members", None),
        (Method::POST, "/corral/v1/members?wait=1", Some(&add)),
        (Method::DELETE, "/corral/v1/members/3?why=replaced", None),
        (Method::POST, "/corral/v1/leader/transfer?to=2", None),
        (Method::GET, "/corral/v1/snapshot?consistency=linearizable", None),
    ];
    for (method, path, body) in cases {
        let answer = cluster.send(follower, method.clone(), path, body).await;
        assert_eq!(answer.status, StatusCode::TEMPORARY_REDIRECT, "{method} {path}");
        assert_eq!(answer.headers["location"], format!("http://{leader_address}{path}").as_str());
    }
    let local =
        cluster.send(follower, Method::GET, "/corral/v1/members?consistency=local", None).await;
    assert_eq!(local.status, StatusCode::OK);
    assert_eq!(local.body["members"].as_array().map(Vec::len), Some(3));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_and_unsafe_membership_requests_are_refused_naming_the_parameter() {
    let cluster = TestMasters::start(3).await;
    let leader = cluster.leader().await;
    let leader_id = cluster.masters[leader].master.node().node_id();
    let other_id = cluster.masters[cluster.follower_of(leader)].master.node().node_id();
    let other_address = cluster.masters[cluster.follower_of(leader)].address.clone();
    let cases: Vec<(Method, String, Option<Value>, StatusCode, &str)> = vec![
        (
            Method::POST,
            "/corral/v1/members".into(),
            Some(json!({"address": "a:1"})),
            StatusCode::BAD_REQUEST,
            "node_id",
        ),
        (
            Method::POST,
            "/corral/v1/members".into(),
            Some(json!({"node_id": -1, "address": "a:1"})),
            StatusCode::BAD_REQUEST,
            "node_id",
        ),
        (
            Method::POST,
            "/corral/v1/members".into(),
            Some(json!({"node_id": 4})),
            StatusCode::BAD_REQUEST,
            "address",
        ),
        (
            Method::POST,
            "/corral/v1/members".into(),
            Some(json!({"node_id": 4, "address": "nowhere"})),
            StatusCode::BAD_REQUEST,
            "address",
        ),
        (
            Method::POST,
            "/corral/v1/members".into(),
            Some(json!({"node_id": 4, "address": "a:1", "role": "x"})),
            StatusCode::BAD_REQUEST,
            "role",
        ),
        (
            Method::POST,
            "/corral/v1/members".into(),
            Some(json!({"node_id": other_id, "address": other_address})),
            StatusCode::CONFLICT,
            "node_id",
        ),
        (
            Method::POST,
            "/corral/v1/members".into(),
            Some(json!({"node_id": 9, "address": other_address})),
            StatusCode::CONFLICT,
            "address",
        ),
        (Method::DELETE, "/corral/v1/members/x".into(), None, StatusCode::BAD_REQUEST, "node_id"),
        (Method::DELETE, "/corral/v1/members/42".into(), None, StatusCode::NOT_FOUND, "node_id"),
        (
            Method::DELETE,
            format!("/corral/v1/members/{leader_id}"),
            None,
            StatusCode::CONFLICT,
            "node_id",
        ),
        (Method::POST, "/corral/v1/leader/transfer".into(), None, StatusCode::BAD_REQUEST, "to"),
        (
            Method::POST,
            "/corral/v1/leader/transfer?to=0".into(),
            None,
            StatusCode::BAD_REQUEST,
            "to",
        ),
        (
            Method::POST,
            "/corral/v1/leader/transfer?to=42".into(),
            None,
            StatusCode::NOT_FOUND,
            "to",
        ),
    ];
    let before = cluster.send(leader, Method::GET, "/corral/v1/members", None).await.body;
    for (method, path, body, status, field) in cases {
        let answer = cluster.send(leader, method.clone(), &path, body.as_ref()).await;
        assert_eq!(answer.status, status, "{method} {path} {body:?}: {}", answer.body);
        assert_eq!(answer.body["field"], field, "{method} {path}: {}", answer.body);
        assert!(answer.body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let after = cluster.send(leader, Method::GET, "/corral/v1/members", None).await.body;
    assert_eq!(
        before["members"].as_array().map(Vec::len),
        after["members"].as_array().map(Vec::len)
    );
    assert_eq!(before["term"], after["term"], "nothing changed");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_last_voter_cannot_be_removed() {
    let cluster = TestMasters::start(1).await;
    let answer = cluster.send(0, Method::DELETE, "/corral/v1/members/1", None).await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.body);
    assert_eq!(answer.body["field"], "node_id");
    assert!(answer.body["message"].as_str().unwrap().contains("last voter"), "{}", answer.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn leadership_moves_where_asked_and_the_members_say_so() {
    let cluster = TestMasters::start(3).await;
    let leader = cluster.leader().await;
    let target = cluster.follower_of(leader);
    let target_id = cluster.masters[target].master.node().node_id();
    eventually(LONG, "the leader to hear from every master", || async {
        let members = cluster.send(leader, Method::GET, "/corral/v1/members", None).await.body;
        members["members"].as_array()?.iter().all(|member| member["up"] == true).then_some(())
    })
    .await;
    let path = format!("/corral/v1/leader/transfer?to={target_id}");
    let answer = cluster.send(leader, Method::POST, &path, None).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["leader"], target_id);
    assert_eq!(cluster.leader().await, target);
    let members = cluster.send(target, Method::GET, "/corral/v1/members", None).await.body;
    let roles: Vec<(u64, String)> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["node_id"].as_u64().unwrap(), m["role"].as_str().unwrap().to_owned()))
        .collect();
    assert!(roles.contains(&(target_id, "leader".to_owned())), "{roles:?}");
    // Asking the leader to lead changes nothing.
    let again = cluster.send(target, Method::POST, &path, None).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_is_served_with_its_index_term_and_digest() {
    let cluster = TestMasters::start(1).await;
    let settings = json!({"agent_heartbeat_timeout_seconds": 31});
    let changed = cluster.send(0, Method::PATCH, "/corral/v1/settings", Some(&settings)).await;
    assert_eq!(changed.status, StatusCode::OK);
    let response = cluster
        .respond(
            0,
            super::support::request(
                Method::GET,
                "/corral/v1/snapshot?consistency=linearizable",
                None,
                &[],
            ),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let header = |name: &str| response.headers()[name].to_str().unwrap().to_owned();
    let (index, digest) = (header("corral-snapshot-index"), header("corral-snapshot-digest"));
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let backup = Backup::decode(&bytes).expect("a backup that decodes and checks its digest");
    assert_eq!(backup.index().to_string(), index);
    assert_eq!(backup.digest().to_string(), digest);
    let (applied, current) = cluster.masters[0].master.node().applied_digest();
    assert!(backup.index() <= applied);
    if backup.index() == applied {
        assert_eq!(backup.digest(), current);
    }
    let bad = cluster.send(0, Method::GET, "/corral/v1/snapshot?consistency=eventual", None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["field"], "consistency");
}
