//! The web UI's routes: the page and every asset it loads, from the binary, on any master;
//! and cross-origin requests allowed from the cluster's own masters only.

use axum::http::{Method, StatusCode};
use serde_json::Value;

use super::support::{request, TestMasters};

/// Every `/ui/assets/...` the page names and every module a script imports (`"./x.js"`).
fn references(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for piece in text.split('"') {
        if let Some(name) = piece.strip_prefix("/ui/assets/") {
            found.push(name.to_owned());
        } else if let Some(name) = piece.strip_prefix("./").filter(|name| name.ends_with(".js")) {
            found.push(name.to_owned());
        }
    }
    found.sort();
    found.dedup();
    found
}

async fn body_text(
    cluster: &TestMasters,
    index: usize,
    path: &str,
) -> (StatusCode, String, String) {
    let answer = cluster.send(index, Method::GET, path, None).await;
    let content_type = answer.headers["content-type"].to_str().expect("ascii").to_owned();
    let text = match answer.body {
        Value::String(text) => text,
        other => other.to_string(),
    };
    (answer.status, content_type, text)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_master_serves_the_page_and_each_asset_it_loads_from_the_binary() {
    let cluster = TestMasters::start(3).await;
    let leader = cluster.leader().await;
    let follower = cluster.follower_of(leader);
    for path in ["/", "/ui", "/ui/", "/ui/tasks/some-task"] {
        let answer = cluster.send(follower, Method::GET, path, None).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        assert_eq!(answer.headers["content-type"], "text/html; charset=utf-8", "{path}");
        let policy = answer.headers["content-security-policy"].to_str().expect("ascii");
        assert!(
            policy.contains("script-src 'self'") && !policy.contains("unsafe-inline"),
            "{policy}"
        );
        assert!(answer.body.as_str().expect("html").contains("<main id=\"main\""), "{path}");
    }
    let (_, _, page) = body_text(&cluster, follower, "/").await;
    let mut pending = references(&page);
    assert!(pending.contains(&"app.js".to_owned()) && pending.contains(&"style.css".to_owned()));
    let mut seen = Vec::new();
    while let Some(name) = pending.pop() {
        if seen.contains(&name) {
            continue;
        }
        let (status, content_type, text) =
            body_text(&cluster, follower, &format!("/ui/assets/{name}")).await;
        assert_eq!(status, StatusCode::OK, "{name}");
        let expected = match name.rsplit('.').next() {
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("svg") => "image/svg+xml",
            other => panic!("an asset of an unexpected kind: {other:?}"),
        };
        assert_eq!(content_type, expected, "{name}");
        // Nothing is fetched from elsewhere: no CDN, no absolute URL in a script or style.
        assert!(
            !text.contains("https://") || name.ends_with(".svg"),
            "{name} names an outside URL"
        );
        if name.ends_with(".js") {
            pending.extend(references(&text));
        }
        seen.push(name);
    }
    assert!(
        seen.contains(&"views.js".to_owned()) && seen.contains(&"api.js".to_owned()),
        "{seen:?}"
    );

    let missing = cluster.send(follower, Method::GET, "/ui/assets/nothing.js", None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body["field"], "asset", "{}", missing.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_clusters_own_masters_may_call_across_origins() {
    let cluster = TestMasters::start(3).await;
    let leader = cluster.leader().await;
    let follower = cluster.follower_of(leader);
    let member_origin = format!("http://{}", cluster.masters[follower].address);

    // A page loaded from a member reads the leader's answers.
    let read = cluster
        .respond(
            leader,
            request(Method::GET, "/corral/v1/cluster", None, &[("origin", &member_origin)]),
        )
        .await;
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(read.headers()["access-control-allow-origin"], member_origin.as_str());
    assert!(read.headers().get("access-control-allow-credentials").is_none());

    // Its preflight for a write with a token and a cursor is answered, not routed.
    let preflight = cluster
        .respond(
            leader,
            request(
                Method::OPTIONS,
                "/v2/apps/web",
                None,
                &[
                    ("origin", &member_origin),
                    ("access-control-request-method", "PUT"),
                    ("access-control-request-headers", "authorization, content-type"),
                ],
            ),
        )
        .await;
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
    let headers = preflight.headers();
    assert_eq!(headers["access-control-allow-origin"], member_origin.as_str());
    assert!(headers["access-control-allow-methods"].to_str().expect("ascii").contains("PUT"));
    let allowed = headers["access-control-allow-headers"].to_str().expect("ascii");
    for header in ["authorization", "content-type", "last-event-id"] {
        assert!(allowed.contains(header), "{allowed}");
    }

    // Any other origin gets no permission, and its preflight is refused naming Origin.
    let other = "http://elsewhere.example:8080";
    let read = cluster
        .respond(leader, request(Method::GET, "/corral/v1/cluster", None, &[("origin", other)]))
        .await;
    assert_eq!(read.status(), StatusCode::OK);
    assert!(read.headers().get("access-control-allow-origin").is_none());
    let refused = cluster
        .respond(
            leader,
            request(
                Method::OPTIONS,
                "/v2/apps/web",
                None,
                &[("origin", other), ("access-control-request-method", "PUT")],
            ),
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body = axum::body::to_bytes(refused.into_body(), usize::MAX).await.expect("body");
    let body: Value = serde_json::from_slice(&body).expect("a JSON refusal");
    assert_eq!(body["field"], "Origin", "{body}");
}
