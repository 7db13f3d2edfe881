//! `view_*` filters reads that the state's copy does not cover: weights and quotas, Marathon's
//! deployments and queue, and event streams event by event; never a 403. The audit API's
//! past states are filtered by today's rules; its trail and explanations, which cannot be
//! filtered, need every `view_*` rule to allow any object.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use super::support::{ndjson_line, read_stream, recordio_event, request, Answer, TestMasters};

async fn send(
    cluster: &TestMasters,
    method: Method,
    path: &str,
    body: Option<&Value>,
    token: &str,
) -> Answer {
    let bearer = format!("Bearer {token}");
    cluster.send_with(0, method, path, body, &[("authorization", &bearer)]).await
}

/// A new token for `principal`, made with the management token `root`.
async fn token_for(cluster: &TestMasters, root: &str, principal: &str) -> String {
    let body = json!({"principal": principal});
    let answer = send(cluster, Method::POST, "/corral/v1/acl/tokens", Some(&body), root).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    answer.body["token"].as_str().expect("a token").to_owned()
}

fn weights(role: &str, weight: f64) -> Value {
    json!({"type": "UPDATE_WEIGHTS", "update_weights": {"weight_infos": [
        {"role": role, "weight": weight}]}})
}

fn app(id: &str) -> Value {
    // No agent: the deployment and the queue entry stay.
    json!({"id": id, "cmd": "sleep 600", "cpus": 0.1, "mem": 16, "instances": 1})
}

/// The app ids (JSON strings) as sorted strings.
fn sorted_ids<'a>(ids: impl Iterator<Item = &'a Value>) -> Vec<String> {
    let mut ids: Vec<String> = ids.map(|id| id.as_str().expect("an app id").to_owned()).collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn weights_deployments_queue_and_event_streams_show_only_what_may_be_viewed() {
    let cluster = TestMasters::start(1).await;
    assert_eq!(cluster.leader().await, 0);
    let root = super::leader_proxy::enforce(&cluster, 0).await;
    let ann = token_for(&cluster, &root, "ann").await;
    let policy = json!({
        "read_api": [{"principals": {"values": ["ann"]}, "apis": {"type": "ANY"}}],
        "view_roles": [{"principals": {"values": ["ann"]}, "roles": {"values": ["shown-role"]}}],
        "view_apps": [{"principals": {"values": ["ann"]}, "app_ids": {"values": ["/team"]}}]
    });
    let answer =
        send(&cluster, Method::PUT, "/corral/v1/acl/policies/ann", Some(&policy), &root).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);

    for (role, weight) in [("shown-role", 2.0), ("hidden-role", 3.0)] {
        let answer =
            send(&cluster, Method::POST, "/api/v1", Some(&weights(role, weight)), &root).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    }
    for id in ["/team/web", "/other/db"] {
        let answer = send(&cluster, Method::POST, "/v2/apps", Some(&app(id)), &root).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    }

    let get_weights = json!({"type": "GET_WEIGHTS"});
    let roles_of = |answer: &Answer| -> Vec<String> {
        let infos = answer.body["get_weights"]["weight_infos"].as_array().expect("weights");
        infos.iter().map(|info| info["role"].as_str().expect("a role").to_owned()).collect()
    };
    let answer = send(&cluster, Method::POST, "/api/v1", Some(&get_weights), &ann).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(roles_of(&answer), ["shown-role"], "{}", answer.body);
    let answer = send(&cluster, Method::POST, "/api/v1", Some(&get_weights), &root).await;
    assert_eq!(roles_of(&answer), ["hidden-role", "shown-role"], "{}", answer.body);

    let deployed = |answer: &Answer| -> Vec<String> {
        let deployments = answer.body.as_array().expect("deployments");
        sorted_ids(deployments.iter().flat_map(|d| d["affectedApps"].as_array().expect("apps")))
    };
    let answer = send(&cluster, Method::GET, "/v2/deployments", None, &ann).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(deployed(&answer), ["/team/web"], "{}", answer.body);
    let answer = send(&cluster, Method::GET, "/v2/deployments", None, &root).await;
    assert_eq!(deployed(&answer), ["/other/db", "/team/web"], "{}", answer.body);

    let queued = |answer: &Answer| -> Vec<String> {
        let queue = answer.body["queue"].as_array().expect("a queue");
        sorted_ids(queue.iter().map(|item| &item["app"]["id"]))
    };
    let answer = send(&cluster, Method::GET, "/v2/queue", None, &ann).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(queued(&answer), ["/team/web"], "{}", answer.body);
    let answer = send(&cluster, Method::GET, "/v2/queue", None, &root).await;
    assert_eq!(queued(&answer), ["/other/db", "/team/web"], "{}", answer.body);

    // The service catalog shows a service as `/v2/apps` shows its app.
    let services = |answer: &Answer| -> Vec<String> {
        let services = answer.body["services"].as_array().expect("services");
        sorted_ids(services.iter().map(|service| &service["id"]))
    };
    let answer = send(&cluster, Method::GET, "/corral/v1/services", None, &ann).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(services(&answer), ["/team/web"], "{}", answer.body);
    let answer = send(&cluster, Method::GET, "/corral/v1/services", None, &root).await;
    assert_eq!(services(&answer), ["/other/db", "/team/web"], "{}", answer.body);
    let answer = send(&cluster, Method::GET, "/corral/v1/services/other/db", None, &ann).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.body);
    let answer = send(&cluster, Method::GET, "/corral/v1/services/other/db", None, &root).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);

    // The native stream from the start: the hidden role's and app's events are left out. A
    // last weight for the shown role marks the end.
    let answer =
        send(&cluster, Method::POST, "/api/v1", Some(&weights("shown-role", 5.0)), &root).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let stream = |token: &str| {
        let bearer = format!("Bearer {token}");
        let request = request(
            Method::GET,
            "/corral/v1/events?from=0&format=ndjson",
            None,
            &[("authorization", &bearer)],
        );
        cluster.respond(0, request)
    };
    let ends = |lines: &[Value]| {
        let weight_5 = |line: &&Value| {
            let text = line.to_string();
            text.contains("shown-role") && (text.contains("5000") || text.contains("5.0"))
        };
        lines.iter().filter(|line| line["kind"] == "weight_updated").any(|line| weight_5(&line))
    };
    let ann_lines = read_stream(stream(&ann).await, ndjson_line, ends).await;
    let text: Vec<String> = ann_lines.iter().map(Value::to_string).collect();
    assert!(text.iter().any(|line| line.contains("shown-role")), "{text:#?}");
    assert!(text.iter().any(|line| line.contains("/team/web")), "{text:#?}");
    assert!(!text.iter().any(|line| line.contains("hidden-role")), "{text:#?}");
    assert!(!text.iter().any(|line| line.contains("/other/db")), "{text:#?}");
    let root_lines = read_stream(stream(&root).await, ndjson_line, ends).await;
    let text: Vec<String> = root_lines.iter().map(Value::to_string).collect();
    assert!(text.iter().any(|line| line.contains("hidden-role")), "{text:#?}");
    assert!(text.iter().any(|line| line.contains("/other/db")), "{text:#?}");

    // Marathon's stream by `view_apps`: a last app marks the end.
    let answer = send(&cluster, Method::POST, "/v2/apps", Some(&app("/team/last")), &root).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    let marathon = |token: &str| {
        let bearer = format!("Bearer {token}");
        let request =
            request(Method::GET, "/v2/events?from=0", None, &[("authorization", &bearer)]);
        cluster.respond(0, request)
    };
    let frame = |buffer: &mut String| -> Option<String> {
        let end = buffer.find("\n\n")?;
        Some(buffer.drain(..end + 2).collect())
    };
    let until_last = |frames: &[String]| frames.iter().any(|frame| frame.contains("/team/last"));
    let frames = read_stream(marathon(&ann).await, frame, until_last).await;
    assert!(frames.iter().any(|frame| frame.contains("/team/web")), "{frames:#?}");
    assert!(!frames.iter().any(|frame| frame.contains("/other/db")), "{frames:#?}");
    let frames = read_stream(marathon(&root).await, frame, until_last).await;
    assert!(frames.iter().any(|frame| frame.contains("/other/db")), "{frames:#?}");

    // What was left out is counted.
    let metrics = cluster.send(0, Method::GET, "/metrics", None).await;
    let text = metrics.body.as_str().expect("metrics are text");
    for route in ["/api/v1", "/v2/deployments", "/v2/queue", "/corral/v1/events", "/v2/events"] {
        let counted =
            format!("corral_http_auth_denied_total{{reason=\"hidden\",route=\"{route}\"}}");
        assert!(text.contains(&counted), "{counted} in {text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_operator_stream_leaves_out_frameworks_the_subscriber_may_not_view() {
    let cluster = TestMasters::start(1).await;
    assert_eq!(cluster.leader().await, 0);
    let root = super::leader_proxy::enforce(&cluster, 0).await;
    let ann = token_for(&cluster, &root, "ann").await;
    let policy = json!({"view_frameworks": [
        {"principals": {"values": ["ann"]}, "users": {"values": ["alice"]}}]});
    let answer =
        send(&cluster, Method::PUT, "/corral/v1/acl/policies/ann", Some(&policy), &root).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);

    let bearer = format!("Bearer {root}");
    let mut schedulers = Vec::new();
    let subscribe = |user: &str, name: &str| {
        let body = json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": {
            "user": user, "name": name, "role": "*"}}});
        let request =
            request(Method::POST, "/api/v1/scheduler", Some(&body), &[("authorization", &bearer)]);
        let cluster = &cluster;
        async move {
            let response = cluster.respond(0, request).await;
            if response.status() != StatusCode::OK {
                let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await;
                panic!(
                    "SUBSCRIBE: {:?}",
                    bytes.map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                );
            }
            response
        }
    };
    schedulers.push(subscribe("alice", "alice-before").await);
    schedulers.push(subscribe("bob", "bob-before").await);

    let operator = |token: &str| {
        let bearer = format!("Bearer {token}");
        let request = request(
            Method::POST,
            "/api/v1",
            Some(&json!({"type": "SUBSCRIBE"})),
            &[("authorization", &bearer)],
        );
        cluster.respond(0, request)
    };
    let ann_stream = operator(&ann).await;
    let root_stream = operator(&root).await;
    schedulers.push(subscribe("bob", "bob-after").await);
    schedulers.push(subscribe("alice", "alice-after").await);

    let names = |events: &[Value]| -> Vec<String> {
        let mut names = Vec::new();
        for event in events {
            match event["type"].as_str() {
                Some("SUBSCRIBED") => {
                    let state = &event["subscribed"]["get_state"]["get_frameworks"]["frameworks"];
                    for framework in state.as_array().expect("frameworks") {
                        let name = framework["framework_info"]["name"].as_str().expect("a name");
                        names.push(name.to_owned());
                    }
                }
                Some("FRAMEWORK_ADDED") => {
                    let info = &event["framework_added"]["framework"]["framework_info"];
                    names.push(info["name"].as_str().expect("a name").to_owned());
                }
                _ => {}
            }
        }
        names
    };
    let until_alice_after =
        |events: &[Value]| names(events).iter().any(|name| name == "alice-after");
    let ann_events = read_stream(ann_stream, recordio_event, until_alice_after).await;
    assert_eq!(names(&ann_events), ["alice-before", "alice-after"], "{ann_events:#?}");
    let root_events = read_stream(root_stream, recordio_event, until_alice_after).await;
    let mut seen = names(&root_events);
    seen.sort();
    assert_eq!(seen, ["alice-after", "alice-before", "bob-after", "bob-before"]);
    drop(schedulers);
}

/// `state?at=` shows a past state without what the caller may not view under today's ACLs
/// (a rule added later opens the past too); the trail (`history`, `diff`, `commands`) and the
/// explanations are refused unless every `view_*` rule allows any object.
#[tokio::test(flavor = "multi_thread")]
async fn the_audit_api_shows_the_past_by_todays_view_rules_and_the_trail_only_to_whole_views() {
    let cluster = TestMasters::start(1).await;
    assert_eq!(cluster.leader().await, 0);
    let root = super::leader_proxy::enforce(&cluster, 0).await;
    let ann = token_for(&cluster, &root, "ann").await;
    let put_policy = |policy: Value| {
        let (cluster, root) = (&cluster, &root);
        async move {
            let answer =
                send(cluster, Method::PUT, "/corral/v1/acl/policies/ann", Some(&policy), root)
                    .await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        }
    };
    put_policy(json!({
        "read_api": [{"principals": {"values": ["ann"]}, "apis": {"type": "ANY"}}],
        "view_frameworks": [{"principals": {"values": ["ann"]}, "users": {"values": ["alice"]}}]
    }))
    .await;
    let bearer = format!("Bearer {root}");
    let mut schedulers = Vec::new();
    for (user, name) in [("alice", "alice-fw"), ("bob", "bob-fw")] {
        let body = json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": {
            "user": user, "name": name, "role": "*"}}});
        let request =
            request(Method::POST, "/api/v1/scheduler", Some(&body), &[("authorization", &bearer)]);
        let response = cluster.respond(0, request).await;
        assert_eq!(response.status(), StatusCode::OK);
        schedulers.push(response);
    }
    let frameworks = |answer: &Answer| -> Vec<String> {
        let listed = answer.body["get_state"]["get_frameworks"]["frameworks"].as_array();
        let mut names: Vec<String> = listed
            .expect("frameworks")
            .iter()
            .map(|f| f["framework_info"]["name"].as_str().expect("a name").to_owned())
            .collect();
        names.sort();
        names
    };
    let past = send(&cluster, Method::GET, "/corral/v1/state?format=v1", None, &root).await;
    assert_eq!(past.status, StatusCode::OK, "{}", past.body);
    assert_eq!(frameworks(&past), ["alice-fw", "bob-fw"]);
    let index = past.headers["corral-state-index"].to_str().expect("an index").to_owned();
    let at = format!("/corral/v1/state?format=v1&at={index}");
    let seen = send(&cluster, Method::GET, &at, None, &ann).await;
    assert_eq!(seen.status, StatusCode::OK, "{}", seen.body);
    assert_eq!(frameworks(&seen), ["alice-fw"]);

    let framework_id = past.body["get_state"]["get_frameworks"]["frameworks"][0]["framework_info"]
        ["id"]["value"]
        .as_str()
        .expect("a framework id")
        .to_owned();
    let trail = [
        format!("/corral/v1/history?framework={framework_id}"),
        format!("/corral/v1/diff?from=1&to={index}"),
        "/corral/v1/commands".to_owned(),
        "/corral/v1/explain/task/no-such-task".to_owned(),
        "/corral/v1/explain/deployment/no-such-deployment".to_owned(),
        "/corral/v1/allocation/explain?role=*".to_owned(),
    ];
    for path in &trail {
        let answer = send(&cluster, Method::GET, path, None, &ann).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{path}: {}", answer.body);
        assert_eq!(answer.body["error"], "forbidden", "{path}: {}", answer.body);
    }

    // Every view rule for any object: the trail is shown, and the past state shows bob's
    // framework, which no rule let ann view at the time.
    let any =
        |objects: &str| json!([{"principals": {"values": ["ann"]}, objects: {"type": "ANY"}}]);
    put_policy(json!({
        "read_api": any("apis"),
        "view_frameworks": any("users"),
        "view_tasks": any("users"),
        "view_executors": any("users"),
        "view_roles": any("roles"),
        "view_apps": any("app_ids")
    }))
    .await;
    let seen = send(&cluster, Method::GET, &at, None, &ann).await;
    assert_eq!(frameworks(&seen), ["alice-fw", "bob-fw"]);
    for path in &trail {
        let answer = send(&cluster, Method::GET, path, None, &ann).await;
        let expected =
            if path.contains("no-such") { StatusCode::NOT_FOUND } else { StatusCode::OK };
        assert_eq!(answer.status, expected, "{path}: {}", answer.body);
    }
    drop(schedulers);
}
