//! The shape of answers every API shares: redirects from followers that keep the query, JSON
//! error bodies naming the field (axum's own refusals included), the native stream's framing
//! and heartbeat, and an operator stream that never repeats what its first state held.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use corral_state::model::{AgentInfo, Attributes};
use corral_state::Command;
use serde_json::{json, Value};

use super::support::{ndjson_line, read_stream, recordio_event, request, TestMasters};

#[tokio::test(flavor = "multi_thread")]
async fn a_follower_redirects_to_the_same_path_and_query_on_the_leader() {
    let cluster = TestMasters::start(3).await;
    let leader = cluster.leader().await;
    let follower = cluster.follower_of(leader);
    let leader_address = cluster.masters[leader].address.clone();
    let get_weights = json!({"type": "GET_WEIGHTS"});
    let subscribe = json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": {
        "user": "root", "name": "redirected"}}});
    let cases: [(Method, &str, Option<&Value>); 6] = [
        (Method::POST, "/api/v1?consistency=linearizable", Some(&get_weights)),
        (Method::GET, "/master/state?consistency=linearizable", None),
        (Method::GET, "/state", None),
        (Method::POST, "/api/v1/scheduler", Some(&subscribe)),
        (Method::PATCH, "/corral/v1/settings?dry=1", Some(&json!({}))),
        (Method::GET, "/v2/queue?embed=lastUnusedOffers", None),
    ];
    for (method, path, body) in cases {
        let answer = cluster.send(follower, method.clone(), path, body).await;
        assert_eq!(
            answer.status,
            StatusCode::TEMPORARY_REDIRECT,
            "{method} {path}: {}",
            answer.body
        );
        assert_eq!(
            answer.headers["location"],
            format!("http://{leader_address}{path}").as_str(),
            "{method} {path} keeps its path and query"
        );
    }
    // Asked to read locally, a follower answers itself.
    let local = cluster.send(follower, Method::GET, "/master/state?consistency=local", None).await;
    assert_eq!(local.status, StatusCode::OK);
    // And the leader answers a linearizable read it confirmed with a quorum.
    let read = cluster
        .send(leader, Method::POST, "/api/v1?consistency=linearizable", Some(&get_weights))
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
}

/// The status a UI polls is cheap: the state digest (the whole state encoded and hashed under
/// the state machine's lock) comes only when asked for, with the index it was taken at.
#[tokio::test(flavor = "multi_thread")]
async fn the_cluster_status_gives_the_state_digest_only_when_asked() {
    let cluster = TestMasters::start(1).await;
    let leader = cluster.leader().await;
    let plain = cluster.send(leader, Method::GET, "/corral/v1/cluster", None).await;
    assert_eq!(plain.status, StatusCode::OK);
    assert_eq!(plain.body["state_digest"], Value::Null, "{}", plain.body);
    assert_eq!(plain.body["role"], "leader");
    let asked = cluster.send(leader, Method::GET, "/corral/v1/cluster?digest=true", None).await;
    assert_eq!(asked.status, StatusCode::OK);
    let digest = asked.body["state_digest"]["digest"].as_str().expect("a digest when asked");
    assert_eq!(digest.len(), 64, "{}", asked.body);
    // The index the digest was taken at; `applied_index` comes from Raft's metrics, which may
    // trail the state machine by an entry, so the two are not compared.
    assert!(asked.body["state_digest"]["index"].is_u64(), "{}", asked.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_refusal_is_a_json_body_naming_the_problem() {
    let cluster = TestMasters::start(1).await;
    let leader = cluster.leader().await;
    let bad_type = json!({"type": "LAUNCH_ROCKETS"});
    let bad_consistency = json!({"type": "GET_STATE"});
    let cluster_id = json!({"cluster_id": "other"});
    // (method, path, body, status, the field the body names)
    type Case<'a> = (Method, &'a str, Option<&'a Value>, StatusCode, Option<&'a str>);
    let cases: Vec<Case<'_>> = vec![
        (Method::POST, "/api/v1", Some(&bad_type), StatusCode::BAD_REQUEST, None),
        (
            Method::POST,
            "/api/v1?consistency=eventual",
            Some(&bad_consistency),
            StatusCode::BAD_REQUEST,
            Some("consistency"),
        ),
        (Method::GET, "/corral/v1/events?from=later", None, StatusCode::BAD_REQUEST, Some("from")),
        (
            Method::GET,
            "/corral/v1/cluster?digest=maybe",
            None,
            StatusCode::BAD_REQUEST,
            Some("digest"),
        ),
        (
            Method::GET,
            "/corral/v1/events?topic=weather",
            None,
            StatusCode::BAD_REQUEST,
            Some("topic"),
        ),
        (
            Method::GET,
            "/corral/v1/events?format=xml",
            None,
            StatusCode::BAD_REQUEST,
            Some("format"),
        ),
        (
            Method::PATCH,
            "/corral/v1/settings",
            Some(&cluster_id),
            StatusCode::BAD_REQUEST,
            Some("cluster_id"),
        ),
        (Method::GET, "/no/such/route", None, StatusCode::NOT_FOUND, None),
        // axum's own refusals: a method the route lacks, a body that is not JSON.
        (Method::DELETE, "/api/v1", None, StatusCode::METHOD_NOT_ALLOWED, None),
    ];
    for (method, path, body, status, field) in cases {
        let answer = cluster.send(leader, method.clone(), path, body).await;
        assert_eq!(answer.status, status, "{method} {path}: {}", answer.body);
        assert_eq!(answer.headers["content-type"], "application/json", "{method} {path}");
        assert!(answer.body["error"].is_string(), "{method} {path}: {}", answer.body);
        assert!(answer.body["message"].is_string(), "{method} {path}: {}", answer.body);
        if let Some(field) = field {
            assert_eq!(answer.body["field"], field, "{method} {path}: {}", answer.body);
        }
    }
    let not_json = cluster
        .respond(
            leader,
            axum::http::Request::builder()
                .method(Method::PATCH)
                .uri("/corral/v1/settings")
                .header("content-type", "application/json")
                .body(axum::body::Body::from("{not json"))
                .expect("request"),
        )
        .await;
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    assert_eq!(not_json.headers()["content-type"], "application/json");
    // Nothing above changed the settings.
    let settings = cluster.send(leader, Method::GET, "/corral/v1/settings", None).await;
    assert_ne!(settings.body["cluster_id"], "other");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_native_stream_frames_each_event_with_its_cursor_and_says_it_is_alive() {
    let cluster = TestMasters::start(1).await;
    let leader = cluster.leader().await;
    let update = json!({"type": "UPDATE_WEIGHTS", "update_weights": {"weight_infos": [
        {"role": "eng", "weight": 2.0}]}});
    let answer = cluster.send(leader, Method::POST, "/api/v1", Some(&update)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);

    let ndjson = cluster
        .respond(leader, request(Method::GET, "/corral/v1/events?topic=role", None, &[]))
        .await;
    assert_eq!(ndjson.headers()["content-type"], "application/x-ndjson");
    // The test masters heartbeat every second; a quiet stream still sends a line.
    let lines = read_stream(ndjson, ndjson_line, |lines: &[Value]| {
        lines.iter().any(|line| line["kind"] == "heartbeat")
    })
    .await;
    let event = &lines[0];
    assert_eq!(event["topic"], "role");
    assert_eq!(event["kind"], "weight_updated");
    let cursor = event["cursor"].as_str().expect("cursor").to_owned();
    assert_eq!(lines.last().expect("heartbeat"), &json!({"kind": "heartbeat"}));

    let sse = cluster
        .respond(
            leader,
            request(
                Method::GET,
                "/corral/v1/events?topic=role&from=0-0",
                None,
                &[("accept", "text/event-stream")],
            ),
        )
        .await;
    assert_eq!(sse.headers()["content-type"], "text/event-stream");
    let frames = read_stream(sse, sse_chunk, |frames: &[String]| !frames.is_empty()).await;
    assert!(frames[0].starts_with(&format!("id: {cursor}\nevent: weight_updated\ndata: {{")));
}

/// One SSE frame (not a comment) off the front of `buffer`.
fn sse_chunk(buffer: &mut String) -> Option<String> {
    loop {
        let end = buffer.find("\n\n")?;
        let frame: String = buffer.drain(..end + 2).collect();
        if !frame.starts_with(':') {
            return Some(frame);
        }
    }
}

/// Operator SUBSCRIBE sends the whole state, then what changed after it: an agent that
/// registers while the stream opens is in the first state or in an AGENT_ADDED, never both.
#[tokio::test(flavor = "multi_thread")]
async fn operator_subscribers_never_see_an_agent_twice() {
    let cluster = TestMasters::start(1).await;
    let leader = cluster.leader().await;
    const AGENTS: usize = 40;
    let registering = {
        let router = cluster.masters[leader].router.clone();
        tokio::spawn(async move {
            for number in 0..AGENTS {
                let command = Command::RegisterAgent {
                    info: AgentInfo {
                        hostname: format!("host-{number}"),
                        address: format!("10.0.0.{number}:5051"),
                        attributes: Attributes::default(),
                    },
                    resources: "cpus:1;mem:128".parse().expect("resources"),
                };
                let body = json!({"request_id": format!("register-{number}"), "command": command});
                let request = request(Method::POST, "/corral/v1/agent/commands", Some(&body), &[]);
                let response = tower::ServiceExt::oneshot(router.clone(), request)
                    .await
                    .expect("routers are infallible");
                assert_eq!(response.status(), StatusCode::OK);
            }
        })
    };
    // One subscription per change of the log at most: opened back to back they outran a
    // slow registration past the client's stream cap, and the refused ones (429) ended at once.
    let mut applied = cluster.masters[leader].master.node().metrics();
    let mut subscribers = Vec::new();
    while !registering.is_finished() {
        let subscribe = json!({"type": "SUBSCRIBE"});
        let subscriber =
            cluster.respond(leader, request(Method::POST, "/api/v1", Some(&subscribe), &[])).await;
        assert_eq!(subscriber.status(), StatusCode::OK, "a subscription was refused");
        subscribers.push(subscriber);
        // Bounded, as the registrations may end meanwhile and nothing change again.
        let _ = tokio::time::timeout(Duration::from_millis(100), applied.changed()).await;
    }
    registering.await.expect("agents registered");
    assert!(subscribers.len() > 1, "the subscriptions must overlap the registrations");
    for subscriber in subscribers {
        let events = read_stream(subscriber, recordio_event, |events: &[Value]| {
            let mut seen = 0;
            for event in events {
                seen += match event["type"].as_str() {
                    Some("SUBSCRIBED") => event["subscribed"]["get_state"]["get_agents"]["agents"]
                        .as_array()
                        .map_or(0, Vec::len),
                    Some("AGENT_ADDED") => 1,
                    _ => 0,
                };
            }
            seen >= AGENTS
        })
        .await;
        let mut times_seen: BTreeMap<String, usize> = BTreeMap::new();
        for event in &events {
            let agents: Vec<&Value> = match event["type"].as_str() {
                Some("SUBSCRIBED") => event["subscribed"]["get_state"]["get_agents"]["agents"]
                    .as_array()
                    .map(|agents| agents.iter().collect())
                    .unwrap_or_default(),
                Some("AGENT_ADDED") => vec![&event["agent_added"]["agent"]],
                _ => Vec::new(),
            };
            for agent in agents {
                let hostname = agent["agent_info"]["hostname"].as_str().expect("hostname");
                *times_seen.entry(hostname.to_owned()).or_default() += 1;
            }
        }
        assert_eq!(times_seen.len(), AGENTS);
        assert!(times_seen.values().all(|times| *times == 1), "{times_seen:?}");
    }
}
