//! What frameworks see when leadership moves (a new leader holds no scheduler stream), and
//! how soon: what wakes the allocator is seen by it before it allocates.

use axum::http::{Method, StatusCode};
use corral_state::model::{AgentInfo, Attributes};
use corral_state::Command;
use futures::StreamExt;
use serde_json::{json, Value};

use super::support::{recordio_event, request, TestMasters, LONG};

/// Reads RecordIO events off a scheduler stream until one satisfies `wanted`.
async fn next_event(
    body: &mut axum::body::BodyDataStream,
    buffer: &mut String,
    wanted: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        while let Some(event) = recordio_event(buffer) {
            if wanted(&event) {
                return event;
            }
        }
        let chunk = tokio::time::timeout_at(deadline, body.next())
            .await
            .expect("the wanted event comes in time")
            .expect("the stream stays open")
            .expect("a chunk");
        buffer.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
    }
}

async fn scheduler_call(cluster: &TestMasters, master: usize, stream_id: &str, call: &Value) {
    let headers = [("Mesos-Stream-Id", stream_id)];
    let request = request(Method::POST, "/api/v1/scheduler", Some(call), &headers);
    let answer = cluster.respond(master, request).await;
    assert_eq!(answer.status(), StatusCode::ACCEPTED, "{call}");
}

fn offered_agents(event: &Value) -> Vec<String> {
    let offers = event["offers"]["offers"].as_array().map(Vec::as_slice).unwrap_or_default();
    offers
        .iter()
        .filter_map(|offer| offer["agent_id"]["value"].as_str())
        .map(str::to_owned)
        .collect()
}

/// A framework that has not yet noticed the failover (its stream was on the old leader,
/// which paused or was cut off) would hold its offers until it does: the new leader
/// rescinds them and offers nothing to it until it subscribes again, so a framework that
/// did subscribe gets the resources at once.
#[tokio::test(flavor = "multi_thread")]
async fn after_a_failover_offers_go_to_frameworks_subscribed_to_the_new_leader() {
    let cluster = TestMasters::start(3).await;
    let leader = cluster.leader().await;
    let command = Command::RegisterAgent {
        info: AgentInfo {
            hostname: "only-agent".to_owned(),
            address: "10.0.0.1:5051".to_owned(),
            attributes: Attributes::default(),
        },
        resources: "cpus:1;mem:128".parse().expect("resources"),
    };
    let body = json!({"request_id": "register-only-agent", "command": command});
    let registered =
        cluster.send(leader, Method::POST, "/corral/v1/agent/commands", Some(&body)).await;
    assert_eq!(registered.status, StatusCode::OK, "{}", registered.body);

    let subscribe = |name: &str| json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "root", "name": name}}});
    let first = cluster
        .respond(leader, request(Method::POST, "/api/v1/scheduler", Some(&subscribe("first")), &[]))
        .await;
    assert_eq!(first.status(), StatusCode::OK);
    // Held open to the end: a stream its client closes would disconnect the framework.
    let mut first_body = first.into_body().into_data_stream();
    let mut first_buffer = String::new();
    let offers =
        next_event(&mut first_body, &mut first_buffer, |event| event["type"] == "OFFERS").await;
    let agents = offered_agents(&offers);
    assert_eq!(agents.len(), 1, "{offers}");

    let target = cluster.follower_of(leader);
    let path = format!("/corral/v1/leader/transfer?to={}", target + 1);
    let moved = cluster.send(leader, Method::POST, &path, None).await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    assert_eq!(cluster.leader().await, target);

    let second = cluster
        .respond(
            target,
            request(Method::POST, "/api/v1/scheduler", Some(&subscribe("second")), &[]),
        )
        .await;
    assert_eq!(second.status(), StatusCode::OK);
    let mut second_body = second.into_body().into_data_stream();
    let mut second_buffer = String::new();
    let offers =
        next_event(&mut second_body, &mut second_buffer, |event| event["type"] == "OFFERS").await;
    assert_eq!(offered_agents(&offers), agents, "{offers}");

    // The first framework is still connected as far as the log knows, yet holds nothing.
    let state = cluster.send(target, Method::GET, "/master/state", None).await.body;
    let frameworks = state["frameworks"].as_array().expect("frameworks");
    let first_framework =
        frameworks.iter().find(|f| f["name"] == "first").expect("first framework");
    assert_eq!(first_framework["active"], true, "{first_framework}");
    assert_eq!(first_framework["offers"], json!([]), "{first_framework}");
    drop(first_body);
}

/// The allocator runs when a command wakes it (SUBSCRIBE, DECLINE, REVIVE), not only on its
/// interval, and it must allocate from what that command did: a wake-up that ran before the
/// allocator saw the command's events left a revived framework suppressed, or a new one
/// unknown, until the next wake-up. With an interval of an hour, only the wake-ups offer.
#[tokio::test(flavor = "multi_thread")]
async fn the_allocator_offers_at_once_after_the_command_that_woke_it() {
    let cluster =
        TestMasters::start_allocating_every(1, std::time::Duration::from_secs(3600)).await;
    let leader = cluster.leader().await;
    let command = Command::RegisterAgent {
        info: AgentInfo {
            hostname: "woken-agent".to_owned(),
            address: "10.0.0.2:5051".to_owned(),
            attributes: Attributes::default(),
        },
        resources: "cpus:1;mem:128".parse().expect("resources"),
    };
    let body = json!({"request_id": "register-woken-agent", "command": command});
    let registered =
        cluster.send(leader, Method::POST, "/corral/v1/agent/commands", Some(&body)).await;
    assert_eq!(registered.status, StatusCode::OK, "{}", registered.body);

    for round in 0..5 {
        let subscribe = json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": {
            "user": "root", "name": format!("woken-{round}")}}});
        let answer = cluster
            .respond(leader, request(Method::POST, "/api/v1/scheduler", Some(&subscribe), &[]))
            .await;
        assert_eq!(answer.status(), StatusCode::OK);
        let stream_id =
            answer.headers()["Mesos-Stream-Id"].to_str().expect("a stream id").to_owned();
        let mut body = answer.into_body().into_data_stream();
        let mut buffer = String::new();
        let subscribed =
            next_event(&mut body, &mut buffer, |event| event["type"] == "SUBSCRIBED").await;
        let framework_id = subscribed["subscribed"]["framework_id"].clone();
        let offers = next_event(&mut body, &mut buffer, |event| event["type"] == "OFFERS").await;
        let offer_ids: Vec<Value> = offers["offers"]["offers"]
            .as_array()
            .expect("offers")
            .iter()
            .map(|offer| offer["id"].clone())
            .collect();

        let decline = json!({"type": "DECLINE", "framework_id": framework_id,
            "decline": {"offer_ids": offer_ids, "filters": {"refuse_seconds": 3600}}});
        scheduler_call(&cluster, leader, &stream_id, &decline).await;
        let revive = json!({"type": "REVIVE", "framework_id": framework_id});
        scheduler_call(&cluster, leader, &stream_id, &revive).await;
        next_event(&mut body, &mut buffer, |event| event["type"] == "OFFERS").await;

        let teardown = json!({"type": "TEARDOWN", "framework_id": framework_id});
        scheduler_call(&cluster, leader, &stream_id, &teardown).await;
    }
}
