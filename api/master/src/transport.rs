//! How a master serves: over TLS on `--listen` when it has a certificate (mutual TLS for
//! masters and agents), optionally plain HTTP on `--plain-listen` for clients with no TLS
//! (pymesos), and which listener may reach which routes.
//!
//! With TLS on, `/corral/raft/*` answers only a client certificate naming `master.<cluster>`
//! and `/corral/v1/agent/*` only one naming `agent.<cluster>`; on the plain listener both
//! answer 403. With a cluster secret (`--cluster-secret-file`), with or without TLS,
//! `/corral/raft/*` also needs a request signed with it (`corral_log::network::secret`):
//! 401 `{"error": "unauthenticated", "field": "corral-cluster-auth", ...}` otherwise, logged
//! and counted in `corral_http_auth_denied_total{reason,route}`, before Raft reads the body.
//! Every other route is open on both (tokens and ACLs decide there). A follower's
//! redirect names the leader on the same kind of listener the request came in on: its TLS
//! address with `https`, or its plain address (`--plain-peers`) with `http`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use corral_log::network::{ClusterSecret, SecretRefusal, CLUSTER_AUTH_HEADER, RAFT_BODY_LIMIT};
use corral_tls::{PeerCertificates, Role, Tls};

use crate::master::Master;

/// One client may hold this many event streams open at once unless told otherwise.
pub const DEFAULT_MAX_CLIENT_STREAMS: usize = 256;

/// A Marathon write commits in milliseconds; one the leader has not answered in this long
/// is reported to the client (504) rather than held.
pub const DEFAULT_LEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a master waits to connect to another master or an agent, and for each read.
const PEER_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const PEER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The client a master reaches agents (`agent_proxy`) or the leader (`leader_proxy`) with:
/// directly, never through an HTTP proxy, never following a redirect (a leader that lost
/// leadership answers 307, which is the client's to follow); with TLS, as a master, to a
/// certificate naming `peer` only.
pub(crate) fn peer_client(tls: Option<&Tls>, peer: Role) -> reqwest::Client {
    let builder = reqwest::Client::builder()
        .connect_timeout(PEER_CONNECT_TIMEOUT)
        .read_timeout(PEER_READ_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy();
    let builder = match tls {
        Some(tls) => tls.client(peer, builder),
        None => builder,
    };
    builder
        .build()
        .expect("a client without proxies, with rustls of reqwest's own version, always builds")
}

/// What a master serves with, beyond its log.
#[derive(Clone, Debug)]
pub struct Serving {
    /// The master's certificate, key and CA; `None` serves plain HTTP on `--listen`.
    pub tls: Option<Tls>,
    /// `--cluster-secret-file`: Raft's routes answer only requests signed with it, and this
    /// master signs its own (give the same one to the log's `LogConfig`).
    pub cluster_secret: Option<ClusterSecret>,
    /// Each master's plain listener by its `--listen` address (what the log knows it by),
    /// for redirects from this master's plain listener.
    pub plain_addresses: BTreeMap<String, String>,
    /// Open event streams (native, operator, scheduler, Marathon, agent) one client may hold.
    pub max_client_streams: usize,
    /// How long a follower waits for the leader's whole answer to a Marathon write it
    /// forwards (`leader_proxy`) before answering 504.
    pub leader_timeout: Duration,
}

impl Default for Serving {
    fn default() -> Serving {
        Serving {
            tls: None,
            cluster_secret: None,
            plain_addresses: BTreeMap::new(),
            max_client_streams: DEFAULT_MAX_CLIENT_STREAMS,
            leader_timeout: DEFAULT_LEADER_TIMEOUT,
        }
    }
}

/// Which listener a request came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Listener {
    /// `--listen`: TLS when the master has a certificate, plain HTTP otherwise.
    Main,
    /// `--plain-listen`: plain HTTP beside a TLS `--listen`.
    Plain,
}

/// The listeners a master serves on.
pub struct Listeners {
    pub main: tokio::net::TcpListener,
    pub plain: Option<tokio::net::TcpListener>,
}

/// Serves every route on each listener until `shutdown` resolves.
pub async fn serve(
    master: Master,
    listeners: Listeners,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stopping, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stopping.send(true);
    });
    let wait = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let main_app = app(&master, Listener::Main);
    let main = {
        let stopped = stopped.clone();
        let tls = master.inner.serving.tls.clone();
        async move {
            match tls {
                Some(tls) => tls.serve(listeners.main, main_app, wait(stopped)).await,
                None => {
                    axum::serve(
                        listeners.main,
                        main_app.into_make_service_with_connect_info::<SocketAddr>(),
                    )
                    .with_graceful_shutdown(wait(stopped))
                    .await
                }
            }
        }
    };
    let Some(plain_listener) = listeners.plain else {
        return main.await;
    };
    let plain = axum::serve(
        plain_listener,
        app(&master, Listener::Plain).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(wait(stopped));
    let (main, plain) = tokio::join!(main, plain);
    main.and(plain)
}

fn app(master: &Master, listener: Listener) -> axum::Router {
    crate::http::router(master.clone())
        .layer(axum::middleware::from_fn_with_state((master.clone(), listener), gate))
}

/// The route prefix only one role may call: checked by certificate when TLS is on, and by
/// the cluster secret for masters when there is one.
fn role_for(path: &str) -> Option<Role> {
    if path.starts_with("/corral/raft/") {
        return Some(Role::Master);
    }
    if path.starts_with("/corral/v1/agent/") {
        return Some(Role::Agent);
    }
    None
}

async fn gate(
    State((master, listener)): State<(Master, Listener)>,
    mut request: Request,
    next: Next,
) -> Response {
    request.extensions_mut().insert(listener);
    let role = role_for(request.uri().path());
    if let Some(tls) = &master.inner.serving.tls {
        if let Some(role) = role {
            if let Err(refused) = certified(tls, listener, role, &request) {
                return refused;
            }
        }
    }
    let request = match (role, &master.inner.serving.cluster_secret) {
        (Some(Role::Master), Some(secret)) => match signed_by(&master, secret, request).await {
            Ok(request) => request,
            Err(refused) => return refused,
        },
        _ => request,
    };
    next.run(request).await
}

/// The request back, body and all, when it is signed with the cluster's secret.
#[allow(clippy::result_large_err)] // `Err` is the answer itself
async fn signed_by(
    master: &Master,
    secret: &ClusterSecret,
    request: Request,
) -> Result<Request, Response> {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |matched| matched.as_str().to_owned());
    let peer = peer_of(&request);
    let (parts, body) = request.into_parts();
    // The MAC covers the body; Raft's handlers read it whole anyway.
    let body = match axum::body::to_bytes(body, RAFT_BODY_LIMIT).await {
        Ok(body) => body,
        Err(error) => {
            let body = serde_json::json!({"error": "bad_request", "field": "body", "message": format!("the request body could not be read: {error}")});
            return Err((StatusCode::BAD_REQUEST, Json(body)).into_response());
        }
    };
    let now = corral_log::network::secret::now_millis();
    let header = parts.headers.get(CLUSTER_AUTH_HEADER).map(|value| value.as_bytes());
    match secret.verify(now, header, parts.method.as_str(), parts.uri.path(), &body) {
        Ok(()) => Ok(Request::from_parts(parts, axum::body::Body::from(body))),
        Err(refusal) => {
            let reason = match refusal {
                SecretRefusal::Missing => crate::auth::Refusal::Missing,
                SecretRefusal::Malformed(_) => crate::auth::Refusal::Malformed,
                SecretRefusal::WrongSecret => crate::auth::Refusal::WrongSecret,
                SecretRefusal::Stale { .. } => crate::auth::Refusal::Stale,
            };
            crate::auth::count_refusal(master, &route, reason);
            tracing::warn!(%route, %peer, reason = reason.as_str(), %refusal, "refused a Raft request not signed with the cluster secret");
            let body = serde_json::json!({
                "error": "unauthenticated",
                "field": CLUSTER_AUTH_HEADER,
                "message": refusal.to_string(),
            });
            Err((StatusCode::UNAUTHORIZED, Json(body)).into_response())
        }
    }
}

fn peer_of(request: &Request) -> String {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |info| info.0.to_string())
}

/// `Ok` when the request came over TLS with a certificate naming `role`.
#[allow(clippy::result_large_err)] // `Err` is the answer itself
fn certified(tls: &Tls, listener: Listener, role: Role, request: &Request) -> Result<(), Response> {
    let presented = request.extensions().get::<PeerCertificates>();
    let allowed = listener == Listener::Main
        && presented.is_some_and(|certificates| tls.peer_is(&certificates.0, role));
    if allowed {
        return Ok(());
    }
    let name = role.name(tls.cluster());
    let peer = peer_of(request);
    let message = match listener {
        Listener::Main => format!("this route answers only a client certificate naming {name}"),
        Listener::Plain => {
            format!("this route is served only over TLS, to a client certificate naming {name}")
        }
    };
    tracing::warn!(path = request.uri().path(), %peer, ?listener, "refused a client without a {name} certificate");
    let body =
        serde_json::json!({"error": "forbidden", "field": "certificate", "message": message});
    Err((StatusCode::FORBIDDEN, Json(body)).into_response())
}

/// Where a follower sends a client to reach the leader at `leader` (its `--listen`).
pub(crate) fn leader_location(
    master: &Master,
    listener: Option<Listener>,
    leader: &str,
    target: &str,
) -> String {
    let serving = &master.inner.serving;
    match (&serving.tls, listener) {
        (None, _) => format!("http://{leader}{target}"),
        (Some(_), Some(Listener::Plain)) => match serving.plain_addresses.get(leader) {
            Some(plain) => format!("http://{plain}{target}"),
            // Unknown plain address: the TLS address at least names the right master.
            None => format!("https://{leader}{target}"),
        },
        (Some(_), _) => format!("https://{leader}{target}"),
    }
}
