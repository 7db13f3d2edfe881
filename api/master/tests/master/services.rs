//! The service catalog on in-process masters: the listing, one service, the long poll
//! answering once what it watches changed after its index (and not for other services),
//! and bad input. What the catalog says of instances is `corral-dns`'s tests.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use super::support::{Answer, TestMasters};

fn app(id: &str, instances: u32) -> Value {
    json!({"id": id, "cmd": "sleep 600", "cpus": 0.1, "mem": 16, "instances": instances,
           "portDefinitions": [{"port": 0, "name": "http"}],
           "labels": {"HAPROXY_GROUP": "external"}})
}

fn index_of(answer: &Answer) -> u64 {
    let header = answer.headers["x-corral-index"].to_str().unwrap().parse::<u64>().unwrap();
    assert_eq!(answer.body["index"], json!(header), "{}", answer.body);
    header
}

#[tokio::test(flavor = "multi_thread")]
async fn the_catalog_lists_apps_and_a_long_poll_answers_when_what_it_watches_changes() {
    let cluster = TestMasters::start(1).await;
    let leader = cluster.leader().await;
    for id in ["/shop/web", "/shop/api"] {
        let created = cluster.send(leader, Method::POST, "/v2/apps", Some(&app(id, 1))).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    }

    let all = cluster.send(leader, Method::GET, "/corral/v1/services", None).await;
    assert_eq!(all.status, StatusCode::OK);
    let first = index_of(&all);
    let ids: Vec<&str> = all.body["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["/shop/api", "/shop/web"]);
    let web = &all.body["services"][1];
    assert_eq!(web["labels"], json!({"HAPROXY_GROUP": "external"}));
    assert_eq!(web["servicePorts"].as_array().unwrap().len(), 1, "{web}");
    assert_eq!(web["instances"], json!([]), "no agent here, so no instance");

    let one = cluster.send(leader, Method::GET, "/corral/v1/services/shop/api", None).await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.body["service"]["id"], "/shop/api");
    let api_index = index_of(&one);

    // A poll of the whole catalog started before a change answers with it.
    let poll = {
        let path = format!("/corral/v1/services?index={first}&wait=60s");
        let router = cluster.masters[leader].router.clone();
        tokio::spawn(async move {
            use tower::ServiceExt;
            let response = router.oneshot(super::support::request(Method::GET, &path, None, &[]));
            let response = response.await.expect("routers are infallible");
            let index = response.headers()["x-corral-index"].to_str().unwrap().to_owned();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
            (index, serde_json::from_slice::<Value>(&bytes).unwrap())
        })
    };
    let scaled = cluster
        .send(leader, Method::PUT, "/v2/apps/shop/web?force=true", Some(&json!({"instances": 3})))
        .await;
    assert_eq!(scaled.status, StatusCode::OK, "{}", scaled.body);
    let (header, woken) = poll.await.expect("the poll answers");
    let woken_index = woken["index"].as_u64().unwrap();
    assert_eq!(header, woken_index.to_string());
    assert!(woken_index > first, "{woken}");
    assert_ne!(woken["services"][1]["version"], web["version"], "the scaling is in it: {woken}");

    // An older index answers at once with the current catalog.
    let at_once = cluster
        .send(leader, Method::GET, &format!("/corral/v1/services?index={first}&wait=10m"), None)
        .await;
    assert!(index_of(&at_once) >= woken_index);

    // `/shop/api` did not change: its poll runs out its wait and answers with its own index.
    let unchanged = cluster
        .send(
            leader,
            Method::GET,
            &format!("/corral/v1/services/shop/api?index={api_index}&wait=200ms"),
            None,
        )
        .await;
    assert_eq!(unchanged.status, StatusCode::OK);
    assert_eq!(index_of(&unchanged), api_index);
    let web_now = cluster.send(leader, Method::GET, "/corral/v1/services/shop/web", None).await;
    assert!(index_of(&web_now) > api_index);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_polls_are_refused_naming_the_field_and_an_unknown_service_is_404_with_an_index() {
    let cluster = TestMasters::start(1).await;
    let leader = cluster.leader().await;
    for (path, field) in [
        ("/corral/v1/services?index=soon", "index"),
        ("/corral/v1/services?index=-1", "index"),
        ("/corral/v1/services?wait=3h", "wait"),
        ("/corral/v1/services/shop/web?wait=11m", "wait"),
    ] {
        let answer = cluster.send(leader, Method::GET, path, None).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(answer.body["field"], field, "{path}: {}", answer.body);
    }
    let missing = cluster.send(leader, Method::GET, "/corral/v1/services/nothing", None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.headers.contains_key("x-corral-index"));
}
