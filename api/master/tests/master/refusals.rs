//! Refusals as clients expect them: a SUBSCRIBE the ACLs refuse gets Mesos's ERROR event on
//! a stream that then closes; the cap on open streams counts an authenticated principal's
//! streams from every address together.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use super::leader_proxy::enforce;
use super::support::{read_stream, request, TestMasters};

/// Makes a client token for `principal` with `acls` as its policy; returns the token.
async fn principal_with(cluster: &TestMasters, root: &str, principal: &str, acls: Value) -> String {
    let bearer = format!("Bearer {root}");
    let body = json!({"principal": principal});
    let answer = cluster
        .respond(
            0,
            request(
                Method::POST,
                "/corral/v1/acl/tokens",
                Some(&body),
                &[("authorization", &bearer)],
            ),
        )
        .await;
    assert_eq!(answer.status(), StatusCode::CREATED);
    let bytes = axum::body::to_bytes(answer.into_body(), usize::MAX).await.expect("body");
    let created: Value = serde_json::from_slice(&bytes).expect("JSON");
    let path = format!("/corral/v1/acl/policies/{principal}");
    let answer = cluster
        .respond(0, request(Method::PUT, &path, Some(&acls), &[("authorization", &bearer)]))
        .await;
    assert_eq!(answer.status(), StatusCode::OK);
    created["token"].as_str().expect("a token").to_owned()
}

/// RecordIO records (`<length>\n<json>`) of a whole body.
fn records(mut body: &[u8]) -> Vec<Value> {
    let mut records = Vec::new();
    while !body.is_empty() {
        let newline = body.iter().position(|byte| *byte == b'\n').expect("a length line");
        let length: usize =
            std::str::from_utf8(&body[..newline]).expect("utf-8").parse().expect("a length");
        let end = newline + 1 + length;
        records.push(serde_json::from_slice(&body[newline + 1..end]).expect("a JSON record"));
        body = &body[end..];
    }
    records
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subscribe_the_acls_refuse_gets_an_error_event_and_the_stream_closes() {
    let cluster = TestMasters::start(1).await;
    let leader = cluster.leader().await;
    let root = enforce(&cluster, leader).await;
    let acls = json!({"register_frameworks": [
        {"principals": {"values": ["fw"]}, "roles": {"values": ["dev"]}}]});
    let token = principal_with(&cluster, &root, "fw", acls).await;
    let bearer = format!("Bearer {token}");
    let subscribe = |role: &str| {
        json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": {
            "user": "root", "name": "fw", "roles": [role],
            "capabilities": [{"type": "MULTI_ROLE"}]}}})
    };

    let refused = subscribe("prod");
    let response = cluster
        .respond(
            leader,
            request(
                Method::POST,
                "/api/v1/scheduler",
                Some(&refused),
                &[("authorization", &bearer)],
            ),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    // A stream of unknown length (chunked), as pymesos insists.
    assert_eq!(axum::body::HttpBody::size_hint(response.body()).exact(), None);
    // The whole body: the stream ends after the one event.
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
    let events = records(&bytes);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "ERROR", "{events:?}");
    let message = events[0]["error"]["message"].as_str().expect("a message");
    assert!(message.starts_with("Not authorized to subscribe"), "{message}");
    assert!(message.contains("register_frameworks on 'prod'"), "{message}");

    // No credentials is still a 401, before any stream.
    let answer = cluster.send(leader, Method::POST, "/api/v1/scheduler", Some(&refused)).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.body);

    // The role it may use subscribes.
    let allowed = subscribe("dev");
    let response = cluster
        .respond(
            leader,
            request(
                Method::POST,
                "/api/v1/scheduler",
                Some(&allowed),
                &[("authorization", &bearer)],
            ),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let first = read_stream(
        response,
        |buffer| {
            let newline = buffer.find('\n')?;
            let length: usize = buffer[..newline].parse().expect("a length");
            if buffer.len() < newline + 1 + length {
                return None;
            }
            let record: String = buffer.drain(..newline + 1 + length).collect();
            Some(serde_json::from_str::<Value>(&record[newline + 1..]).expect("JSON"))
        },
        |events| !events.is_empty(),
    )
    .await;
    assert_eq!(first[0]["type"], "SUBSCRIBED", "{first:?}");
}

fn from(address: &str, path: &str, token: &str) -> axum::http::Request<axum::body::Body> {
    let bearer = format!("Bearer {token}");
    let mut request = request(Method::GET, path, None, &[("authorization", &bearer)]);
    let address: SocketAddr = address.parse().expect("an address");
    request.extensions_mut().insert(ConnectInfo(address));
    request
}

#[tokio::test(flavor = "multi_thread")]
async fn with_access_control_on_the_stream_cap_counts_each_principal_from_every_address() {
    let serving = corral_master::Serving { max_client_streams: 1, ..Default::default() };
    let cluster = TestMasters::start_bound(1, serving).await;
    let leader = cluster.leader().await;
    let root = enforce(&cluster, leader).await;
    let acls =
        json!({"read_api": [{"principals": {"values": ["watcher"]}, "apis": {"type": "ANY"}}]});
    let watcher = principal_with(&cluster, &root, "watcher", acls).await;
    let path = "/corral/v1/events?format=ndjson";

    let held = cluster.respond(leader, from("10.0.0.1:4000", path, &root)).await;
    assert_eq!(held.status(), StatusCode::OK);
    // The same principal from another address: over the cap.
    let answer = cluster.respond(leader, from("10.0.0.2:4000", path, &root)).await;
    assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
    let bytes = axum::body::to_bytes(answer.into_body(), usize::MAX).await.expect("body");
    let body: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(body["error"], "too_many_streams", "{body}");
    // Counted once: what the cap turned away.
    let metrics = cluster.send(leader, Method::GET, "/metrics", None).await;
    let text = metrics.body.as_str().expect("metrics are text");
    assert!(
        text.contains(
            "corral_http_auth_denied_total{reason=\"too_many_streams\",route=\"/corral/v1/events\"} 1"
        ),
        "{text}"
    );
    // Another principal from that address is not.
    let other = cluster.respond(leader, from("10.0.0.2:4000", path, &watcher)).await;
    assert_eq!(other.status(), StatusCode::OK);
    // The place is freed when the stream ends.
    drop(held);
    corral_testkit::eventually(super::support::LONG, "the place freed", || async {
        let again = cluster.respond(leader, from("10.0.0.3:4000", path, &root)).await;
        (again.status() == StatusCode::OK).then_some(())
    })
    .await;

    drop(other);
}
