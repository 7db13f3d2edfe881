//! Marathon's `/v2` routes on in-process masters (real log, real router), without agents: what a change answers,
//! the conflicts and rollbacks deployments bring, versions, and the event bus with its
//! `event_type` filter and `Last-Event-ID` resume. Instances never start here (no agent
//! offers anything), so deployments stay open as long as a test needs them.

use axum::http::{Method, StatusCode};
use corral_marathon::render::iso8601;
use corral_state::Timestamp;
use serde_json::{json, Value};

use super::support::{read_stream, request, TestMasters};

struct Marathon {
    cluster: TestMasters,
    leader: usize,
}

impl Marathon {
    async fn start(masters: u64) -> Marathon {
        let cluster = TestMasters::start(masters).await;
        let leader = cluster.leader().await;
        Marathon { cluster, leader }
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let answer = self.cluster.send(self.leader, method, path, body.as_ref()).await;
        (answer.status, answer.body)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::POST, path, Some(body)).await
    }

    async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::PUT, path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.send(Method::DELETE, path, None).await
    }

    async fn deployments(&self) -> Vec<Value> {
        self.get("/v2/deployments").await.1.as_array().cloned().unwrap_or_default()
    }
}

fn app(id: &str, instances: u32) -> Value {
    json!({"id": id, "cmd": "sleep 600", "cpus": 0.1, "mem": 16, "instances": instances})
}

#[test]
fn timestamps_render_as_marathon_does() {
    assert_eq!(iso8601(Timestamp(0)), "1970-01-01T00:00:00.000Z");
    // An example from Marathon's documentation.
    assert_eq!(iso8601(Timestamp::from_millis(1_458_552_378_987)), "2016-03-21T09:26:18.987Z");
    assert_eq!(iso8601(Timestamp::from_secs(951_782_400)), "2000-02-29T00:00:00.000Z");
    assert_eq!(iso8601(Timestamp::from_secs(4_102_444_799)), "2099-12-31T23:59:59.000Z");
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_answer_with_deployments_and_a_locked_app_needs_force() {
    let marathon = Marathon::start(1).await;

    let (status, created) = marathon.post("/v2/apps", app("/shop/web", 2)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["id"], "/shop/web");
    assert_eq!(created["instances"], 2);
    assert_eq!(created["cpus"], 0.1);
    assert_eq!(created["backoffFactor"], 1.15, "Marathon's default is filled in");
    let first_deployment =
        created["deployments"][0]["id"].as_str().expect("a deployment").to_owned();

    let (status, body) = marathon.post("/v2/apps", app("/shop/web", 1)).await;
    assert_eq!(status, StatusCode::CONFLICT, "creating it again: {body}");

    // No agent: the start deployment stays open, and holds the app.
    let deployments = marathon.deployments().await;
    assert_eq!(deployments.len(), 1);
    assert_eq!(deployments[0]["id"], first_deployment.as_str());
    assert_eq!(deployments[0]["affectedApps"], json!(["/shop/web"]));
    assert_eq!(deployments[0]["currentActions"][0]["action"], "StartApplication");

    let (status, body) = marathon.put("/v2/apps//shop/web", json!({"instances": 3})).await;
    assert_eq!(status, StatusCode::CONFLICT, "a locked app: {body}");
    let (_, unchanged) = marathon.get("/v2/apps/shop/web").await;
    assert_eq!(unchanged["app"]["instances"], 2, "a refused change changes nothing");

    let (status, scaled) =
        marathon.put("/v2/apps/shop/web?force=true", json!({"instances": 3})).await;
    assert_eq!(status, StatusCode::OK, "{scaled}");
    let scale_deployment = scaled["deploymentId"].as_str().expect("deploymentId").to_owned();
    assert_ne!(scale_deployment, first_deployment);
    let (_, app_now) = marathon.get("/v2/apps//shop/web").await;
    let app_now = &app_now["app"];
    assert_eq!(app_now["instances"], 3);
    assert_eq!(app_now["cmd"], "sleep 600", "a partial update keeps the other fields");
    assert_eq!(app_now["version"], scaled["version"]);
    assert_eq!(
        app_now["deployments"],
        json!([{"id": scale_deployment}]),
        "the forced change replaced the first"
    );
    assert_eq!(app_now["tasks"], json!([]));
    assert_eq!(app_now["tasksRunning"], 0);

    let deployments = marathon.deployments().await;
    assert_eq!(deployments.len(), 1);
    assert_eq!(deployments[0]["currentActions"][0]["action"], "ScaleApplication");

    let (status, _) = marathon.get("/v2/apps/shop/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = marathon.delete("/v2/deployments/no-such-deployment").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Waiting instances are in the queue; without offers nothing explains them yet.
    let (status, queue) = marathon.get("/v2/queue").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(queue["queue"][0]["app"]["id"], "/shop/web");
    assert_eq!(queue["queue"][0]["count"], 3);

    let (status, deleted) = marathon.delete("/v2/apps/shop/web?force=true").await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert!(deleted["deploymentId"].is_string());
    let (_, apps) = marathon.get("/v2/apps").await;
    assert_eq!(apps["apps"], json!([]));
    // A deleted app without instances is stopped at once.
    assert_eq!(marathon.deployments().await, Vec::<Value>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn versions_are_kept_and_an_earlier_one_comes_back() {
    let marathon = Marathon::start(1).await;
    marathon.post("/v2/apps", json!({"id": "/api", "cmd": "sleep 1", "instances": 0})).await;
    let (status, changed) = marathon.put("/v2/apps/api", json!({"cmd": "sleep 2"})).await;
    assert_eq!(status, StatusCode::OK, "{changed}");

    let (_, versions) = marathon.get("/v2/apps/api/versions").await;
    let versions: Vec<String> = versions["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| v.as_str().expect("a version").to_owned())
        .collect();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0], changed["version"].as_str().expect("version"), "newest first");

    let (status, first) = marathon.get(&format!("/v2/apps/api/versions/{}", versions[1])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first["cmd"], "sleep 1");
    assert_eq!(first["version"], versions[1].as_str());

    let (status, rolled) = marathon.put("/v2/apps/api", json!({"version": versions[1]})).await;
    assert_eq!(status, StatusCode::OK, "{rolled}");
    let (_, now) = marathon.get("/v2/apps/api").await;
    assert_eq!(now["app"]["cmd"], "sleep 1");
    assert_eq!(now["app"]["version"], rolled["version"]);

    let (status, _) =
        marathon.put("/v2/apps/api", json!({"version": "1999-01-01T00:00:00.000Z"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = marathon.get("/v2/apps/api/versions/1999-01-01T00:00:00.000Z").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_deployment_rolls_back_unless_forced() {
    let marathon = Marathon::start(1).await;
    marathon.post("/v2/apps", app("/rollback", 0)).await;
    let (_, scaled) = marathon.put("/v2/apps/rollback", json!({"instances": 2})).await;
    let deployment = scaled["deploymentId"].as_str().expect("deploymentId").to_owned();

    let (status, answer) = marathon.delete(&format!("/v2/deployments/{deployment}")).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_ne!(answer["deploymentId"], deployment.as_str(), "the rollback is a new deployment");
    let (_, app_now) = marathon.get("/v2/apps/rollback").await;
    assert_eq!(app_now["app"]["instances"], 0, "the scale was rolled back");

    let (_, scaled) = marathon.put("/v2/apps/rollback", json!({"instances": 5})).await;
    let deployment = scaled["deploymentId"].as_str().expect("deploymentId").to_owned();
    let (status, _) = marathon.delete(&format!("/v2/deployments/{deployment}?force=true")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(marathon.deployments().await, Vec::<Value>::new());
    let (_, app_now) = marathon.get("/v2/apps/rollback").await;
    assert_eq!(app_now["app"]["instances"], 5, "a forced cancel leaves the app as it was changed");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_name_the_problem_and_change_nothing() {
    let marathon = Marathon::start(1).await;
    let (status, body) =
        marathon.post("/v2/apps", json!({"id": "/x", "cmd": "true", "mem": -1})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["details"][0]["path"], "/mem");
    let (status, body) = marathon.post("/v2/apps", json!("not an app")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = marathon.put("/v2/apps", json!([{"cmd": "true"}])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["details"][0]["path"], "/0/id");
    let (status, body) = marathon.get("/v2/apps?force=maybe").await;
    assert_eq!(status, StatusCode::OK, "force is not read on GET: {body}");
    let (status, body) = marathon.delete("/v2/apps/x?force=maybe").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "force");
    let (status, body) = marathon.post("/v2/tasks/delete", json!({"ids": ["nope.1"]})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = marathon.get("/v2/events?event_type=no_such_event").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "event_type");
    let (_, apps) = marathon.get("/v2/apps").await;
    assert_eq!(apps["apps"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_describes_itself_and_followers_point_at_the_leader() {
    let marathon = Marathon::start(3).await;
    let (status, pong) = marathon.get("/ping").await;
    assert_eq!((status, pong), (StatusCode::OK, Value::String("pong".to_owned())));
    let (_, info) = marathon.get("/v2/info").await;
    assert_eq!(info["name"], "marathon");
    assert_eq!(info["elected"], true);
    let leader_address = marathon.cluster.masters[marathon.leader].address.clone();
    assert_eq!(info["leader"], leader_address.as_str());
    let (_, leader) = marathon.get("/v2/leader").await;
    assert_eq!(leader["leader"], leader_address.as_str());

    let follower = marathon.cluster.follower_of(marathon.leader);
    let response = marathon
        .cluster
        .send(follower, Method::GET, "/v2/queue?embed=lastUnusedOffers", None)
        .await;
    assert_eq!(response.status, StatusCode::TEMPORARY_REDIRECT);
    let location = response.headers["location"].to_str().expect("location").to_owned();
    assert_eq!(location, format!("http://{leader_address}/v2/queue?embed=lastUnusedOffers"));
    let response = marathon
        .cluster
        .send(follower, Method::POST, "/v2/apps", Some(&app("/redirected", 0)))
        .await;
    assert_eq!(response.status, StatusCode::TEMPORARY_REDIRECT, "writes go to the leader");
    let response = marathon
        .cluster
        .send(follower, Method::DELETE, "/v2/apps//redirected?force=true", None)
        .await;
    assert_eq!(response.status, StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(
        response.headers["location"],
        format!("http://{leader_address}/v2/apps//redirected?force=true").as_str(),
        "the redirect keeps the query, force included"
    );
}

/// Reads SSE frames as (id, event, data) until `enough` says so.
async fn read_frames(
    response: axum::response::Response,
    enough: impl FnMut(&[(String, String, Value)]) -> bool,
) -> Vec<(String, String, Value)> {
    read_stream(response, sse_frame, enough).await
}

/// One SSE frame with an event off the front of `buffer` (comments and heartbeats skipped).
fn sse_frame(buffer: &mut String) -> Option<(String, String, Value)> {
    loop {
        let end = buffer.find("\n\n")?;
        let frame: String = buffer.drain(..end + 2).collect();
        let (mut id, mut event, mut data) = (String::new(), String::new(), Value::Null);
        for line in frame.lines() {
            if let Some(value) = line.strip_prefix("id: ") {
                id = value.to_owned();
            } else if let Some(value) = line.strip_prefix("event: ") {
                event = value.to_owned();
            } else if let Some(value) = line.strip_prefix("data: ") {
                data = serde_json::from_str(value).expect("data is JSON");
            }
        }
        if !event.is_empty() {
            return Some((id, event, data));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_event_bus_filters_by_type_and_resumes_after_the_last_event_id() {
    let marathon = Marathon::start(1).await;
    let path = "/v2/events?event_type=api_post_event&event_type=deployment_info";
    let stream = marathon
        .cluster
        .respond(
            marathon.leader,
            request(Method::GET, path, None, &[("accept", "text/event-stream")]),
        )
        .await;
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    for id in ["/one", "/two", "/three"] {
        marathon.post("/v2/apps", app(id, 0)).await;
    }
    let frames = read_frames(stream, |frames| frames.len() >= 6).await;
    let kinds: Vec<&str> = frames.iter().map(|(_, event, _)| event.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "api_post_event",
            "deployment_info",
            "api_post_event",
            "deployment_info",
            "api_post_event",
            "deployment_info"
        ],
        "only the asked-for types, in log order"
    );
    assert_eq!(frames[0].2["appDefinition"]["id"], "/one");
    assert_eq!(frames[0].2["eventType"], "api_post_event");
    assert_eq!(frames[1].2["plan"]["affectedApps"], json!(["/one"]));

    // Resuming after the first app's events gives exactly the rest, nothing twice.
    let after_first = frames[1].0.clone();
    let resumed = marathon
        .cluster
        .respond(
            marathon.leader,
            request(
                Method::GET,
                "/v2/events?event_type=api_post_event",
                None,
                &[("last-event-id", &after_first)],
            ),
        )
        .await;
    let again = read_frames(resumed, |frames| frames.len() >= 2).await;
    let ids: Vec<&Value> = again.iter().map(|(_, _, data)| &data["appDefinition"]["id"]).collect();
    assert_eq!(ids, [&json!("/two"), &json!("/three")]);
    assert_eq!(again[0].0, frames[2].0, "the same cursor for the same event");

    let refused = marathon
        .cluster
        .respond(
            marathon.leader,
            request(Method::GET, "/v2/events", None, &[("last-event-id", "garbage")]),
        )
        .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
}

/// `PUT /v2/apps` with a list is all or nothing: a locked app refuses the whole list with
/// the 409 naming it, a bad definition with the 422 naming its place, and neither changes
/// any app; without either, every app changes.
#[tokio::test(flavor = "multi_thread")]
async fn a_list_of_app_changes_applies_whole_or_not_at_all() {
    let marathon = Marathon::start(1).await;
    let (status, _) = marathon.post("/v2/apps", app("/locked", 1)).await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, body) = marathon
        .put(
            "/v2/apps",
            json!([{"id": "/fresh", "cmd": "sleep 600", "instances": 1},
                                 {"id": "/locked", "instances": 2}]),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("/locked"), "{body}");
    let (status, _) = marathon.get("/v2/apps/fresh").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the other app of a refused list is not created");

    let (status, body) = marathon
        .put(
            "/v2/apps?force=true",
            json!([{"id": "/fresh", "cmd": "sleep 600"},
                                            {"id": "/locked", "cpus": -1}]),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = marathon.get("/v2/apps/fresh").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = marathon
        .put(
            "/v2/apps?force=true",
            json!([{"id": "/fresh", "cmd": "sleep 600", "instances": 2},
                                            {"id": "/locked", "instances": 3}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["deploymentId"].is_string(), "{body}");
    let (_, fresh) = marathon.get("/v2/apps/fresh").await;
    assert_eq!(fresh["app"]["instances"], 2);
    let (_, locked) = marathon.get("/v2/apps/locked").await;
    assert_eq!(locked["app"]["instances"], 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn service_ports_are_assigned_kept_and_unique() {
    let marathon = Marathon::start(1).await;
    let (status, created) = marathon
        .post(
            "/v2/apps",
            json!({"id": "/shop/web", "cmd": "serve", "instances": 0,
                   "portDefinitions": [{"port": 0, "name": "http"}, {"port": 0}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        created["portDefinitions"],
        json!([{"port": 10_000, "protocol": "tcp", "name": "http"},
               {"port": 10_001, "protocol": "tcp"}])
    );

    // A client that reads the app and sends it back unchanged changes no configuration.
    let (_, read) = marathon.get("/v2/apps/shop/web").await;
    let mut sent = read["app"].clone();
    for output_only in [
        "version",
        "versionInfo",
        "deployments",
        "tasks",
        "tasksStaged",
        "tasksRunning",
        "tasksHealthy",
        "tasksUnhealthy",
        "lastTaskFailure",
    ] {
        sent.as_object_mut().expect("an app").remove(output_only);
    }
    let (status, body) = marathon.put("/v2/apps/shop/web?force=true", sent).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, after) = marathon.get("/v2/apps/shop/web").await;
    assert_eq!(
        after["app"]["versionInfo"]["lastConfigChangeAt"],
        read["app"]["versionInfo"]["lastConfigChangeAt"]
    );

    // A new configuration keeps the ports; another app gets the next free one.
    let (status, body) =
        marathon.put("/v2/apps/shop/web?force=true", json!({"cmd": "serve --v2"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, other) =
        marathon.post("/v2/apps", json!({"id": "/other", "cmd": "x", "instances": 0})).await;
    assert_eq!(status, StatusCode::CREATED, "{other}");
    assert_eq!(other["portDefinitions"][0]["port"], 10_002);
    let (_, web) = marathon.get("/v2/apps/shop/web").await;
    assert_eq!(web["app"]["portDefinitions"][1]["port"], 10_001);

    // A port held by another app is refused by number, naming it, and nothing changes.
    let (status, body) = marathon
        .post(
            "/v2/apps",
            json!({"id": "/third", "cmd": "x", "portDefinitions": [{"port": 10_001}]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "spec.service_ports[0]");
    assert_eq!(body["message"], "spec.service_ports[0]: service port 10001 is held by /shop/web");
    let (status, _) = marathon.get("/v2/apps/third").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// `/corral/v1/apps/{id}/autoscaler`: validated with 422 naming the field, Kubernetes's
/// defaults filled in, stored in the log beside the app (its Marathon JSON unchanged), and
/// deleted with it; Marathon also answers under `/service/marathon`.
#[tokio::test]
async fn an_autoscaler_policy_is_validated_stored_and_kept_out_of_marathon() {
    let marathon = Marathon::start(1).await;
    let policy = "/corral/v1/apps/group/web/autoscaler";
    let (status, body) = marathon.put(policy, json!({"max": 3})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = marathon.post("/service/marathon/v2/apps", app("/group/web", 1)).await;
    assert_eq!(status, StatusCode::CREATED);
    let before = marathon.get("/v2/apps/group/web").await.1;

    for (body, field) in [
        (json!({"min": 2}), "max"),
        (json!({"min": 4, "max": 3}), "max"),
        (json!({"max": 3, "min": 0}), "min"),
        (json!({"max": 3, "minimum": 1}), "minimum"),
        (json!({"max": 3, "metrics": [{"type": "gpu"}]}), "metrics[0].type"),
        (
            json!({"max": 3, "metrics": [{"type": "cpu", "targetUtilization": 0}]}),
            "metrics[0].targetUtilization",
        ),
        (
            json!({"max": 3, "metrics": [{"type": "prometheus", "url": "ftp://x", "query": "q", "target": 1}]}),
            "metrics[0].url",
        ),
        (json!({"max": 3, "tolerance": -1}), "tolerance"),
        (
            json!({"max": 3, "scaleDown": {"stabilizationWindowSeconds": 7200}}),
            "scaleDown.stabilizationWindowSeconds",
        ),
        (
            json!({"max": 3, "scaleUp": {"policies": [{"type": "Pods", "value": 0, "periodSeconds": 15}]}}),
            "scaleUp.policies[0].value",
        ),
        (json!({"max": 3, "scaleUp": {"selectPolicy": "Sometimes"}}), "scaleUp.selectPolicy"),
    ] {
        let (status, error) = marathon.put(policy, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body} → {error}");
        assert_eq!(error["field"], field, "{body} → {error}");
    }
    assert_eq!(marathon.get(policy).await.0, StatusCode::NOT_FOUND);

    let (status, stored) = marathon
        .put(policy, json!({"max": 5, "scaleDown": {"stabilizationWindowSeconds": 60}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{stored}");
    assert_eq!(
        stored,
        json!({
            "appId": "/group/web",
            "min": 1,
            "max": 5,
            "evaluationIntervalSeconds": 15,
            "metrics": [{"type": "cpu", "targetUtilization": 80.0}],
            "tolerance": 0.1,
            "scaleUp": {
                "stabilizationWindowSeconds": 0,
                "selectPolicy": "Max",
                "policies": [
                    {"type": "Percent", "value": 100, "periodSeconds": 15},
                    {"type": "Pods", "value": 4, "periodSeconds": 15},
                ],
            },
            "scaleDown": {
                "stabilizationWindowSeconds": 60,
                "selectPolicy": "Max",
                "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
            },
        })
    );
    assert_eq!(marathon.get(policy).await.1, stored);
    assert_eq!(marathon.get("/v2/apps/group/web").await.1, before);
    let (status, decisions) = marathon.get(&format!("{policy}/decisions")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(decisions["scalings"], json!([]));

    assert_eq!(marathon.delete(policy).await.0, StatusCode::OK);
    assert_eq!(marathon.delete(policy).await.0, StatusCode::NOT_FOUND);
    marathon.put(policy, json!({"max": 2})).await;
    assert_eq!(marathon.delete("/v2/apps/group/web?force=true").await.0, StatusCode::OK);
    assert_eq!(marathon.get(policy).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_kill_grace_period_is_validated_kept_across_updates_and_failover() {
    let mut marathon = Marathon::start(3).await;
    let grace_of = |answer: &Value| answer["app"]["taskKillGracePeriodSeconds"].clone();
    // Refused naming the field, and nothing is created.
    for bad in [json!(0), json!(-2), json!(1e12), json!("ten"), json!([5])] {
        let app = json!({"id": "/graceful", "cmd": "sleep 600", "taskKillGracePeriodSeconds": bad});
        let (status, body) = marathon.post("/v2/apps", app).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert_eq!(body["details"][0]["path"], "/taskKillGracePeriodSeconds", "{bad}: {body}");
    }
    assert_eq!(marathon.get("/v2/apps/graceful").await.0, StatusCode::NOT_FOUND);

    let app = json!({"id": "/graceful", "cmd": "sleep 600", "instances": 0,
                     "taskKillGracePeriodSeconds": 20});
    let (status, body) = marathon.post("/v2/apps", app).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["taskKillGracePeriodSeconds"], 20.0);
    // A partial update leaves it as it was; a bad one changes nothing.
    let (status, body) = marathon.put("/v2/apps/graceful", json!({"cpus": 0.2})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(grace_of(&marathon.get("/v2/apps/graceful").await.1), 20.0);
    let (status, body) =
        marathon.put("/v2/apps/graceful", json!({"taskKillGracePeriodSeconds": -1})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["details"][0]["path"], "/taskKillGracePeriodSeconds", "{body}");
    let (_, now) = marathon.get("/v2/apps/graceful").await;
    assert_eq!(grace_of(&now), 20.0);
    assert_eq!(now["app"]["cpus"], 0.2);
    let (status, body) =
        marathon.put("/v2/apps/graceful", json!({"taskKillGracePeriodSeconds": 2.5})).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // It is in the log: the next leader has it.
    let old = marathon.leader;
    let to = marathon.cluster.masters[marathon.cluster.follower_of(old)].master.node().node_id();
    marathon.cluster.masters[old]
        .master
        .node()
        .transfer_leadership(to)
        .await
        .expect("the leader hands over");
    marathon.leader = marathon.cluster.leader().await;
    assert_ne!(marathon.leader, old);
    assert_eq!(grace_of(&marathon.get("/v2/apps/graceful").await.1), 2.5);
}
