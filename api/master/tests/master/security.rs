//! Access control through the router: bootstrap once, the route × credential matrix (status
//! and an unchanged state after every refusal), Basic credentials imported from Mesos's
//! format, and a token revoked while a command is in flight on three masters.

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use corral_log::ReadConsistency;
use corral_state::auth::{Denial, DenialReason};
use corral_state::{Actor, Command, Digest, Outcome, Rejection, RequestId, Role, Scalar};
use serde_json::{json, Value};

use super::support::TestMasters;

/// The state as far as clients can change it (the clock and request ids left out).
async fn digest(cluster: &TestMasters, index: usize) -> Digest {
    cluster.masters[index]
        .master
        .node()
        .read(ReadConsistency::Local, |state| state.without_bookkeeping().digest())
        .await
        .expect("a local read")
}

struct Tokens {
    management: String,
    reader: String,
    scoped: String,
    revoked: String,
    wrong: String,
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

async fn create_token(cluster: &TestMasters, leader: usize, root: &str, body: Value) -> String {
    let answer = cluster
        .send_with(
            leader,
            Method::POST,
            "/corral/v1/acl/tokens",
            Some(&body),
            &[("authorization", &bearer(root))],
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert!(answer.body.get("secret_hash").is_none(), "{}", answer.body);
    answer.body["token"].as_str().expect("the token text").to_owned()
}

/// Bootstraps, makes the tokens and policies of the matrix, imports a Mesos credential and
/// turns enforcement on.
async fn secured(cluster: &TestMasters, leader: usize) -> Tokens {
    let answer =
        cluster.send_with(leader, Method::POST, "/corral/v1/acl/bootstrap", None, &[]).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    let management = answer.body["token"].as_str().expect("a token").to_owned();
    assert_eq!(answer.body["kind"], "management");
    let again =
        cluster.send_with(leader, Method::POST, "/corral/v1/acl/bootstrap", None, &[]).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);

    let root = management.clone();
    let reader =
        create_token(cluster, leader, &root, json!({"principal": "reader", "description": "ro"}))
            .await;
    let scoped = create_token(cluster, leader, &root, json!({"principal": "dev"})).await;
    let revoked = create_token(cluster, leader, &root, json!({"principal": "dev"})).await;
    let (accessor, _) = corral_master::parse_token(&revoked).expect("a token");
    let answer = cluster
        .send_with(
            leader,
            Method::DELETE,
            &format!("/corral/v1/acl/tokens/{accessor}"),
            None,
            &[("authorization", &bearer(&root))],
        )
        .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.body);
    let (accessor, secret) = corral_master::parse_token(&scoped).expect("a token");
    let wrong = format!("crl_{accessor}_{}", secret.chars().rev().collect::<String>());

    let policies = [
        (
            "readers",
            json!({
                "read_api": [{"principals": {"values": ["reader", "fw"]}, "apis": {"type": "ANY"}}],
                "view_apps": [{"principals": {"values": ["reader"]}, "app_ids": {"type": "ANY"}}],
                "view_flags": [{"principals": {"values": ["reader"]}, "flags": {"type": "ANY"}}]
            }),
        ),
        (
            "dev",
            json!({
                "create_apps": [{"principals": {"values": ["dev"]}, "app_ids": {"values": ["/dev"]}}],
                "update_weights": [
                    {"principals": {"values": ["dev"]}, "roles": {"values": ["dev"]}},
                    {"principals": {"type": "ANY"}, "roles": {"type": "NONE"}}
                ]
            }),
        ),
    ];
    for (name, acls) in policies {
        let answer = cluster
            .send_with(
                leader,
                Method::PUT,
                &format!("/corral/v1/acl/policies/{name}"),
                Some(&acls),
                &[("authorization", &bearer(&root))],
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    }
    let credentials = json!({"credentials": [{"principal": "fw", "secret": "fw-secret-1234"}]});
    let answer = cluster
        .send_with(
            leader,
            Method::PUT,
            "/corral/v1/acl/credentials",
            Some(&credentials),
            &[("authorization", &bearer(&root))],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let answer = cluster
        .send_with(
            leader,
            Method::PUT,
            "/corral/v1/acl/mode",
            Some(&json!({"mode": "enforce"})),
            &[("authorization", &bearer(&root))],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    Tokens { management, reader, scoped, revoked, wrong }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Nobody,
    Malformed,
    WrongSecret,
    Revoked,
    Reader,
    Scoped,
    Basic,
    Management,
}

const EVERYONE: [Who; 8] = [
    Who::Nobody,
    Who::Malformed,
    Who::WrongSecret,
    Who::Revoked,
    Who::Reader,
    Who::Scoped,
    Who::Basic,
    Who::Management,
];

fn header(who: Who, tokens: &Tokens) -> Option<(&'static str, String)> {
    match who {
        Who::Nobody => None,
        Who::Malformed => Some(("authorization", "Bearer not-a-token".to_owned())),
        Who::WrongSecret => Some(("authorization", bearer(&tokens.wrong))),
        Who::Revoked => Some(("x-corral-token", tokens.revoked.clone())),
        Who::Reader => Some(("authorization", format!("token={}", tokens.reader))),
        Who::Scoped => Some(("authorization", bearer(&tokens.scoped))),
        Who::Basic => {
            let encoded = base64::engine::general_purpose::STANDARD.encode("fw:fw-secret-1234");
            Some(("authorization", format!("Basic {encoded}")))
        }
        Who::Management => Some(("authorization", bearer(&tokens.management))),
    }
}

struct Route {
    method: Method,
    path: &'static str,
    body: Option<Value>,
    /// Whether a successful call changes the state (then refusals must not).
    writes: bool,
    expect: fn(Who) -> StatusCode,
}

fn unauthenticated(who: Who) -> bool {
    matches!(who, Who::Nobody | Who::Malformed | Who::WrongSecret | Who::Revoked)
}

/// Any live identity (reads filtered by `view_*`, or with nothing to filter).
fn any_identity(who: Who) -> StatusCode {
    if unauthenticated(who) {
        return StatusCode::UNAUTHORIZED;
    }
    StatusCode::OK
}

/// A native read scope: `read_api` for any API, which the scoped token lacks.
fn read_scope(who: Who) -> StatusCode {
    match who {
        _ if unauthenticated(who) => StatusCode::UNAUTHORIZED,
        Who::Scoped => StatusCode::FORBIDDEN,
        _ => StatusCode::OK,
    }
}

/// What only the management token holds the rules for here: the ACLs themselves, every
/// `view_*` rule for any object (the audit trail, explanations), maintenance, membership.
fn management_only(who: Who) -> StatusCode {
    match who {
        _ if unauthenticated(who) => StatusCode::UNAUTHORIZED,
        Who::Management => StatusCode::OK,
        _ => StatusCode::FORBIDDEN,
    }
}

/// As `management_only`, for something that does not exist.
fn management_finds_nothing(who: Who) -> StatusCode {
    match who {
        _ if unauthenticated(who) => StatusCode::UNAUTHORIZED,
        Who::Management => StatusCode::NOT_FOUND,
        _ => StatusCode::FORBIDDEN,
    }
}

fn get(path: &'static str, expect: fn(Who) -> StatusCode) -> Route {
    Route { method: Method::GET, path, body: None, writes: false, expect }
}

/// Every read route not in the rows above that answers a whole body (streams are tested
/// with their filters in `views.rs`).
fn read_routes() -> Vec<Route> {
    let public = |_| StatusCode::OK;
    vec![
        get("/version", public),
        get("/ping", public),
        get("/metrics", public),
        get("/favicon.ico", public),
        get("/ui", public),
        get("/metrics/snapshot", any_identity),
        get("/master/slaves", any_identity),
        get("/slaves", any_identity),
        get("/master/frameworks", any_identity),
        get("/master/tasks?limit=10", any_identity),
        get("/master/roles", any_identity),
        get("/master/state-summary", any_identity),
        get("/master/maintenance/schedule", management_only),
        get("/v1/version", any_identity),
        get("/v1/config", any_identity),
        get("/v1/enumerate", any_identity),
        get("/v2/info", any_identity),
        get("/v2/leader", any_identity),
        get("/v2/apps", any_identity),
        get("/v2/deployments", any_identity),
        get("/v2/queue", any_identity),
        get("/v2/tasks", any_identity),
        get("/corral/v1/cluster", read_scope),
        get("/corral/v1/services", read_scope),
        get("/corral/v1/acl/policies", read_scope),
        get("/corral/v1/acl/credentials", read_scope),
        get("/corral/v1/snapshot", read_scope),
        // The audit API: a past state is filtered by today's view rules; the trail and the
        // explanations cannot be, so they need every view rule for any object (the reader has
        // read_api and view_apps for any, not view_frameworks).
        get("/corral/v1/state?format=v1", read_scope),
        get("/corral/v1/commands", management_only),
        get("/corral/v1/explain/task/no-such-task", management_finds_nothing),
        get("/corral/v1/diff?from=1&to=2", management_only),
        get("/corral/v1/history?role=dev", management_only),
        get("/corral/v1/allocation/explain?role=dev", management_only),
        get("/corral/v1/explain/deployment/no-such-deployment", management_finds_nothing),
        get("/ui/apps", |_| StatusCode::OK),
        get("/v1/hosts/leader.mesos", any_identity),
        get("/v1/services/_leader._tcp.mesos", any_identity),
        // The app the matrix's scoped token made: `view_apps` decides, 404 when hidden (the
        // Basic principal has read_api but no view_apps rule).
        get("/corral/v1/services/dev/web", |who| match who {
            _ if unauthenticated(who) => StatusCode::UNAUTHORIZED,
            Who::Scoped => StatusCode::FORBIDDEN,
            Who::Basic => StatusCode::NOT_FOUND,
            _ => StatusCode::OK,
        }),
        Route {
            method: Method::DELETE,
            path: "/corral/v1/acl/tokens/no-such-accessor",
            body: None,
            writes: true,
            expect: management_finds_nothing,
        },
        get("/master/redirect", |who| {
            if unauthenticated(who) {
                return StatusCode::UNAUTHORIZED;
            }
            StatusCode::TEMPORARY_REDIRECT
        }),
        Route {
            method: Method::DELETE,
            path: "/corral/v1/acl/credentials/nobody",
            body: None,
            writes: true,
            expect: management_finds_nothing,
        },
        // Marathon writes about nothing that exists: a live identity, then the route's answer.
        Route {
            method: Method::DELETE,
            path: "/v2/deployments/no-such-deployment",
            body: None,
            writes: true,
            expect: |who| {
                if unauthenticated(who) {
                    return StatusCode::UNAUTHORIZED;
                }
                StatusCode::NOT_FOUND
            },
        },
        Route {
            method: Method::POST,
            path: "/v2/tasks/delete",
            body: Some(json!({"ids": []})),
            writes: true,
            expect: |who| {
                if unauthenticated(who) {
                    return StatusCode::UNAUTHORIZED;
                }
                StatusCode::OK
            },
        },
        Route {
            method: Method::PUT,
            path: "/corral/v1/acl/policies/matrix-empty",
            body: Some(json!({})),
            writes: true,
            expect: management_only,
        },
    ]
}

fn routes() -> Vec<Route> {
    vec![
        Route {
            method: Method::GET,
            path: "/health",
            body: None,
            writes: false,
            expect: |_| StatusCode::OK,
        },
        // The web UI's page and the auth mode: no cluster data, so that a browser can load the
        // page and learn to ask for a token.
        Route {
            method: Method::GET,
            path: "/",
            body: None,
            writes: false,
            expect: |_| StatusCode::OK,
        },
        Route {
            method: Method::GET,
            path: "/ui/assets/app.js",
            body: None,
            writes: false,
            expect: |_| StatusCode::OK,
        },
        Route {
            method: Method::GET,
            path: "/corral/v1/auth",
            body: None,
            writes: false,
            expect: |_| StatusCode::OK,
        },
        Route {
            method: Method::GET,
            path: "/corral/v1/settings",
            body: None,
            writes: false,
            expect: |who| match who {
                _ if unauthenticated(who) => StatusCode::UNAUTHORIZED,
                Who::Scoped => StatusCode::FORBIDDEN,
                _ => StatusCode::OK,
            },
        },
        Route {
            method: Method::GET,
            path: "/corral/v1/acl/tokens",
            body: None,
            writes: false,
            expect: |who| match who {
                _ if unauthenticated(who) => StatusCode::UNAUTHORIZED,
                Who::Scoped => StatusCode::FORBIDDEN,
                _ => StatusCode::OK,
            },
        },
        Route {
            method: Method::GET,
            path: "/master/state",
            body: None,
            writes: false,
            expect: |who| {
                if unauthenticated(who) {
                    StatusCode::UNAUTHORIZED
                } else {
                    StatusCode::OK
                }
            },
        },
        Route {
            method: Method::PATCH,
            path: "/corral/v1/settings",
            body: Some(json!({"offer_timeout_seconds": 7})),
            writes: true,
            expect: management_only,
        },
        Route {
            method: Method::POST,
            path: "/api/v1",
            body: Some(json!({"type": "UPDATE_WEIGHTS", "update_weights": {"weight_infos": [
                {"role": "dev", "weight": 2.0}]}})),
            writes: true,
            expect: |who| match who {
                _ if unauthenticated(who) => StatusCode::UNAUTHORIZED,
                Who::Management | Who::Scoped => StatusCode::OK,
                _ => StatusCode::FORBIDDEN,
            },
        },
        Route {
            method: Method::POST,
            path: "/api/v1",
            body: Some(json!({"type": "UPDATE_WEIGHTS", "update_weights": {"weight_infos": [
                {"role": "prod", "weight": 3.0}]}})),
            writes: true,
            expect: management_only,
        },
        Route {
            method: Method::POST,
            path: "/v2/apps",
            body: Some(json!({"id": "/dev/web", "cmd": "sleep 100", "cpus": 0.1, "mem": 32,
                "instances": 0})),
            writes: true,
            expect: |who| match who {
                _ if unauthenticated(who) => StatusCode::UNAUTHORIZED,
                Who::Scoped => StatusCode::CREATED,
                // Allowed, and the app the scoped token made is there already.
                Who::Management => StatusCode::CONFLICT,
                _ => StatusCode::FORBIDDEN,
            },
        },
        Route {
            method: Method::POST,
            path: "/v2/apps",
            body: Some(json!({"id": "/prod/web", "cmd": "sleep 100", "cpus": 0.1, "mem": 32,
                "instances": 0})),
            writes: true,
            expect: |who| match who {
                _ if unauthenticated(who) => StatusCode::UNAUTHORIZED,
                Who::Management => StatusCode::CREATED,
                _ => StatusCode::FORBIDDEN,
            },
        },
        Route {
            method: Method::PUT,
            path: "/corral/v1/acl/mode",
            body: Some(json!({"mode": "enforce"})),
            writes: true,
            expect: management_only,
        },
        Route {
            method: Method::POST,
            path: "/corral/v1/acl/tokens",
            body: Some(json!({"principal": "x", "kind": "management"})),
            writes: true,
            expect: |who| match who {
                _ if unauthenticated(who) => StatusCode::UNAUTHORIZED,
                Who::Management => StatusCode::CREATED,
                _ => StatusCode::FORBIDDEN,
            },
        },
        // Raft's membership is no command, so the route decides: `write_api` on `members`.
        // The management token passes and meets the route's own refusal (nothing changes).
        Route {
            method: Method::POST,
            path: "/corral/v1/members",
            body: Some(json!({"node_id": 1, "address": "127.0.0.1:1"})),
            writes: false,
            expect: |who| match who {
                _ if unauthenticated(who) => StatusCode::UNAUTHORIZED,
                Who::Management => StatusCode::CONFLICT,
                _ => StatusCode::FORBIDDEN,
            },
        },
        Route {
            method: Method::DELETE,
            path: "/corral/v1/members/9",
            body: None,
            writes: false,
            expect: management_finds_nothing,
        },
        Route {
            method: Method::POST,
            path: "/corral/v1/leader/transfer?to=9",
            body: None,
            writes: false,
            expect: management_finds_nothing,
        },
        // What `view_*` cannot filter is refused whole: flags, maintenance, sandboxes.
        Route {
            method: Method::GET,
            path: "/master/flags",
            body: None,
            writes: false,
            expect: |who| match who {
                _ if unauthenticated(who) => StatusCode::UNAUTHORIZED,
                Who::Management | Who::Reader => StatusCode::OK,
                _ => StatusCode::FORBIDDEN,
            },
        },
        Route {
            method: Method::POST,
            path: "/api/v1",
            body: Some(json!({"type": "GET_FLAGS"})),
            writes: false,
            expect: |who| match who {
                _ if unauthenticated(who) => StatusCode::UNAUTHORIZED,
                Who::Management | Who::Reader => StatusCode::OK,
                _ => StatusCode::FORBIDDEN,
            },
        },
        Route {
            method: Method::GET,
            path: "/maintenance/status",
            body: None,
            writes: false,
            expect: management_only,
        },
        Route {
            method: Method::POST,
            path: "/api/v1",
            body: Some(json!({"type": "GET_MAINTENANCE_SCHEDULE"})),
            writes: false,
            expect: management_only,
        },
        Route {
            method: Method::GET,
            path: "/slave/no-such-agent/files/read?path=stdout",
            body: None,
            writes: false,
            expect: management_finds_nothing,
        },
        Route {
            method: Method::GET,
            path: "/agent/no-such-agent/state",
            body: None,
            writes: false,
            expect: management_finds_nothing,
        },
        // An agent's question about its own callers: only the identity that registered the
        // agent (none did here) or a management token may ask it.
        Route {
            method: Method::POST,
            path: "/corral/v1/acl/authorize",
            body: Some(json!({"agent_id": "no-such-agent", "action": "access_sandboxes",
                "credentials": {"x_corral_token": "crl_nobody_nothing"}})),
            writes: false,
            expect: management_only,
        },
        Route {
            method: Method::POST,
            path: "/corral/v1/acl/authorize",
            body: Some(json!({"agent_id": "no-such-agent", "action": "no_such_action"})),
            writes: false,
            expect: |who| match who {
                _ if unauthenticated(who) => StatusCode::UNAUTHORIZED,
                _ => StatusCode::BAD_REQUEST,
            },
        },
    ]
}

/// Waits until the service scheduler has nothing left to do, so the state only changes when
/// a request changes it: no deployment open (an app with no instances reaches its target on
/// the next round) and the built-in framework suppressed for every app's role (the round
/// after the deployment ends proposes that suppression; waiting only for the deployment let
/// it land in the middle of the next request's digest check).
async fn settled(cluster: &TestMasters, leader: usize) {
    corral_testkit::eventually(super::support::LONG, "the service scheduler idle", || async {
        let node = cluster.masters[leader].master.node();
        let idle = node
            .read(ReadConsistency::Local, |state| {
                let services = state.services();
                if !services.deployments.is_empty() {
                    return false;
                }
                let Some(framework) = state.framework(&state.service_framework_id()) else {
                    return true;
                };
                services
                    .apps
                    .values()
                    .all(|app| framework.suppressed_roles.contains(&app.spec.role))
            })
            .await
            .expect("a local read");
        idle.then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_credential_as_documented_and_refusals_change_nothing() {
    let cluster = TestMasters::start(1).await;
    let leader = cluster.leader().await;
    let tokens = secured(&cluster, leader).await;
    let mut unexpected = Vec::new();
    for route in routes().into_iter().chain(read_routes()) {
        // The management token goes last: its writes are the ones that change the state.
        for who in EVERYONE {
            let before = digest(&cluster, leader).await;
            let header = header(who, &tokens);
            let headers: Vec<(&str, &str)> =
                header.iter().map(|(name, value)| (*name, value.as_str())).collect();
            let answer = cluster
                .send_with(leader, route.method.clone(), route.path, route.body.as_ref(), &headers)
                .await;
            let expected = (route.expect)(who);
            if answer.status != expected {
                unexpected.push(format!(
                    "{} {} as {who:?}: {} (expected {expected}): {}",
                    route.method, route.path, answer.status, answer.body
                ));
                continue;
            }
            if answer.status == StatusCode::UNAUTHORIZED {
                assert_eq!(answer.headers["www-authenticate"], "Basic realm=\"corral\"");
                assert_eq!(answer.body["error"], "unauthenticated", "{}", answer.body);
            }
            if answer.status == StatusCode::FORBIDDEN {
                assert_eq!(answer.body["error"], "forbidden", "{}", answer.body);
            }
            let refused = matches!(answer.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN);
            if answer.status.is_success() && route.writes {
                settled(&cluster, leader).await;
            }
            if refused || !route.writes {
                assert_eq!(
                    digest(&cluster, leader).await,
                    before,
                    "{} {} as {who:?} changed the state",
                    route.method,
                    route.path
                );
            }
        }
    }
    assert!(unexpected.is_empty(), "unexpected answers:\n{}", unexpected.join("\n"));

    // What was turned away before the log is counted by reason and route.
    let metrics = cluster.send_with(leader, Method::GET, "/metrics", None, &[]).await;
    let text = metrics.body.as_str().expect("metrics are text");
    assert!(
        text.contains(
            "corral_http_auth_denied_total{reason=\"missing\",route=\"/corral/v1/settings\"}"
        ),
        "{text}"
    );
    assert!(text.contains("reason=\"denied\""), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_framework_principal_other_than_the_authenticated_one_is_400() {
    let cluster = TestMasters::start(1).await;
    let leader = cluster.leader().await;
    let tokens = secured(&cluster, leader).await;
    let encoded = base64::engine::general_purpose::STANDARD.encode("fw:fw-secret-1234");
    let basic = format!("Basic {encoded}");
    let subscribe = json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": {
        "user": "root", "name": "fw", "principal": "someone-else", "role": "*"}}});
    let answer = cluster
        .send_with(
            leader,
            Method::POST,
            "/api/v1/scheduler",
            Some(&subscribe),
            &[("authorization", &basic)],
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    assert!(
        answer.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("is not the framework's principal")),
        "{}",
        answer.body
    );
    let _ = tokens;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_while_its_command_is_in_flight_is_refused_by_all_three_masters() {
    let cluster = TestMasters::start(3).await;
    let leader = cluster.leader().await;
    let tokens = secured(&cluster, leader).await;
    let (accessor, _) = corral_master::parse_token(&tokens.scoped).expect("a token");
    // The API's early check passed for this command (the token was live); it is proposed
    // after the revocation reached the log, as a slow proposal would be.
    let answer = cluster
        .send_with(
            leader,
            Method::DELETE,
            &format!("/corral/v1/acl/tokens/{accessor}"),
            None,
            &[("authorization", &bearer(&tokens.management))],
        )
        .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.body);
    let actor = Actor::Client {
        identity: accessor.clone(),
        acting: Box::new(Actor::Operator { principal: Some("dev".to_owned()) }),
    };
    let weights = Command::UpdateWeights {
        weights: vec![(Role::parse("dev").expect("a role"), Scalar::from_units(5))],
    };
    let committed = cluster.masters[leader]
        .master
        .node()
        .propose(RequestId::new("in-flight"), actor, weights)
        .await
        .expect("committed");
    assert_eq!(
        committed.outcome,
        Outcome::Rejected(Rejection::Unauthorized(Box::new(Denial {
            principal: None,
            action: "update_weights".to_owned(),
            object: None,
            reason: DenialReason::UnknownIdentity(accessor),
        })))
    );
    let index = committed.index;
    let digests =
        corral_testkit::eventually(super::support::LONG, "every master applied it", || async {
            let mut digests = Vec::new();
            for (number, test) in cluster.masters.iter().enumerate() {
                let applied = test.master.node().applied_index();
                if applied < index {
                    return None;
                }
                digests.push(digest(&cluster, number).await);
            }
            Some(digests)
        })
        .await;
    assert!(digests.windows(2).all(|pair| pair[0] == pair[1]), "{digests:?}");
}

/// Each master authenticates from the state it has applied; a follower that does not know a
/// token or a credential yet catches up with the leader before it answers 401, so whatever
/// the leader has just made works on every master at once.
#[tokio::test(flavor = "multi_thread")]
async fn a_token_or_credential_made_on_the_leader_works_on_a_follower_at_once() {
    let mut cluster = TestMasters::start_bound(3, corral_master::Serving::default()).await;
    let leader = cluster.leader().await;
    for index in 0..cluster.masters.len() {
        cluster.serve(index);
    }
    let follower = cluster.follower_of(leader);
    let root = super::leader_proxy::enforce(&cluster, leader).await;
    // Each follower hears of a commit only with the leader's next message: hold those back
    // so that a follower has not applied what the leader answers for.
    cluster.network.set_delay(std::time::Duration::from_millis(20));

    let mut unknown = Vec::new();
    for round in 0..20 {
        let token =
            create_token(&cluster, leader, &root, json!({"principal": format!("p{round}")})).await;
        let answer = cluster
            .send_with(
                follower,
                Method::GET,
                "/v2/apps",
                None,
                &[("authorization", &bearer(&token))],
            )
            .await;
        if answer.status == StatusCode::UNAUTHORIZED {
            unknown.push(format!("token {round}: {}", answer.body));
        } else {
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        }
    }
    // Basic: argon2 makes each check slow, so a few rounds.
    for round in 0..3 {
        let principal = format!("fw{round}");
        let credentials =
            json!({"credentials": [{"principal": principal, "secret": "fw-secret-1234"}]});
        let answer = cluster
            .send_with(
                leader,
                Method::PUT,
                "/corral/v1/acl/credentials",
                Some(&credentials),
                &[("authorization", &bearer(&root))],
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("{principal}:fw-secret-1234"));
        let answer = cluster
            .send_with(
                follower,
                Method::GET,
                "/v2/apps",
                None,
                &[("authorization", &format!("Basic {basic}"))],
            )
            .await;
        if answer.status == StatusCode::UNAUTHORIZED {
            unknown.push(format!("credential {round}: {}", answer.body));
        } else {
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        }
    }
    assert!(
        unknown.is_empty(),
        "a follower did not know what the leader made:\n{}",
        unknown.join("\n")
    );

    // What no master knows is still refused, after the catch-up.
    let (accessor, _) = corral_master::parse_token(&root).expect("a token");
    let stranger = format!("crl_{}_nope", accessor.chars().rev().collect::<String>());
    let answer = cluster
        .send_with(
            follower,
            Method::GET,
            "/v2/apps",
            None,
            &[("authorization", &bearer(&stranger))],
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.body);
}

/// Registers an agent on `host` through the agent route with `token`; its id.
async fn register_agent_as(
    cluster: &TestMasters,
    leader: usize,
    token: &str,
    host: &str,
) -> String {
    let (address, credentials) = (format!("{host}:5051"), bearer(token));
    cluster.register_agent_with(leader, host, &address, &[("authorization", &credentials)]).await
}

/// Each agent registers with its own join token and may then speak only for itself: another
/// agent's heartbeat, or a status update about another agent's task sent under its own id,
/// is refused and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_may_not_send_another_agents_heartbeat_or_status() {
    let cluster = TestMasters::start(1).await;
    let leader = cluster.leader().await;
    let tokens = secured(&cluster, leader).await;
    let policy = json!({"register_agents": [
        {"principals": {"values": ["join"]}, "agents": {"type": "ANY"}}]});
    let answer = cluster
        .send_with(
            leader,
            Method::PUT,
            "/corral/v1/acl/policies/agents",
            Some(&policy),
            &[("authorization", &bearer(&tokens.management))],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let root = tokens.management.clone();
    let join_a = create_token(&cluster, leader, &root, json!({"principal": "join"})).await;
    let join_b = create_token(&cluster, leader, &root, json!({"principal": "join"})).await;
    let agent_a = register_agent_as(&cluster, leader, &join_a, "host-a").await;
    let agent_b = register_agent_as(&cluster, leader, &join_b, "host-b").await;
    let send = |token: String, body: Value| {
        let cluster = &cluster;
        async move {
            cluster
                .send_with(
                    leader,
                    Method::POST,
                    "/corral/v1/agent/commands",
                    Some(&body),
                    &[("authorization", &bearer(&token))],
                )
                .await
        }
    };
    let heartbeat = |agent: &str| {
        let command =
            Command::AgentHeartbeat { agent_id: corral_state::AgentId::new(agent.to_owned()) };
        json!({"request_id": format!("beat-{agent}"), "agent_id": agent, "command": command})
    };
    // Its own heartbeat goes through.
    let answer = send(join_b.clone(), heartbeat(&agent_b)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);

    let before = digest(&cluster, leader).await;
    let answer = send(join_b.clone(), heartbeat(&agent_a)).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
    assert!(answer.body.to_string().contains("join"), "{}", answer.body);

    let status = corral_state::model::TaskStatus {
        task_id: corral_state::TaskId::new("a-task-of-agent-a".to_owned()),
        state: corral_state::model::TaskState::Failed,
        message: Some("forged".to_owned()),
        source: corral_state::model::TaskSource::Agent,
        reason: None,
        healthy: None,
        agent_id: Some(corral_state::AgentId::new(agent_a.clone())),
        executor_id: None,
        timestamp: corral_state::Timestamp::from_secs(1),
        uuid: None,
        exit_code: None,
    };
    let command = Command::UpdateStatus {
        framework_id: corral_state::FrameworkId::new("some-framework".to_owned()),
        status,
    };
    let forged = json!({"request_id": "forged-status", "agent_id": agent_b, "command": command});
    let answer = send(join_b.clone(), forged).await;
    assert!(
        answer.body.to_string().contains(&format!("may not act for agent {agent_a}")),
        "{} {}",
        answer.status,
        answer.body
    );
    assert_eq!(digest(&cluster, leader).await, before, "a refused agent command changed the state");
}
