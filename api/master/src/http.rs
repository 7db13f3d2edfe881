//! The master's HTTP surface: every API's router composed into one, the request metrics and
//! the logging of server errors around them, and serving until shutdown.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;

use crate::error::{ApiError, RedirectToLeader, ServerErrorCause};
use crate::master::Master;
use crate::routes;
use crate::transport::{leader_location, Listener};

/// The largest request body any API route reads (Raft's own routes take more). A larger
/// one gets 413 with the JSON error body naming this limit.
pub const API_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// Every HTTP route a master serves, Raft's included; tests call this directly.
pub fn router(master: Master) -> Router {
    let raft = master.node().raft_router();
    Router::new()
        .merge(routes::scheduler::router())
        .merge(routes::operator::router())
        .merge(routes::misc::router())
        .merge(routes::native::router())
        .merge(routes::audit::router())
        .merge(routes::explain::router())
        .merge(routes::settings::router())
        .merge(routes::members::router())
        .merge(routes::snapshot::router())
        .merge(routes::agent::router())
        .merge(routes::agent_proxy::router())
        .merge(routes::v0::router())
        .merge(routes::marathon::router())
        .merge(routes::mesos_dns::router())
        .merge(routes::services::router())
        .merge(routes::ui::router())
        .merge(routes::acl::router())
        .merge(routes::authorize::router())
        // marathon-autoscale and other DC/OS-era tools reach Marathon behind the admin
        // router's prefix.
        .nest("/service/marathon", routes::marathon::router())
        .merge(routes::autoscaler::router())
        .fallback(no_route)
        .layer(DefaultBodyLimit::max(API_BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(master.clone(), crate::auth::authenticate))
        // Outside authentication: the leader authenticates what a follower forwards.
        .layer(axum::middleware::from_fn_with_state(
            master.clone(),
            crate::leader_proxy::forward_writes,
        ))
        .layer(axum::middleware::from_fn_with_state(master.clone(), track))
        .layer(axum::middleware::from_fn_with_state(master.clone(), crate::cors::cors))
        .with_state(master.clone())
        // Beside Raft's routes: masters call it, with no token (TLS gates it as Raft's).
        .merge(crate::read_index::router(master))
        .merge(raft)
}

/// Counts and times every request by its matched route, never by its raw path, so ids in
/// paths do not explode the label set; points redirects to the leader at the request's own
/// path and query; logs every server error with the cause the client was not shown.
async fn track(
    State(master): State<Master>,
    matched: Option<MatchedPath>,
    mut request: Request,
    next: Next,
) -> Response {
    let listener = request.extensions().get::<Listener>().copied();
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "in-process".to_owned(), |info| info.0.ip().to_string());
    request.extensions_mut().insert(master.stream_client(client));
    let route = matched.map(|m| m.as_str().to_owned()).unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().clone();
    let target = request.uri().path_and_query().map_or("/", |target| target.as_str()).to_owned();
    let started = Instant::now();
    let mut response = next.run(request).await;
    if let Some(RedirectToLeader(leader)) = response.extensions_mut().remove::<RedirectToLeader>() {
        let location = leader_location(&master, listener, &leader, &target);
        match HeaderValue::try_from(location) {
            Ok(location) => {
                response.headers_mut().insert(header::LOCATION, location);
            }
            Err(error) => {
                tracing::error!(%leader, %error, "the leader's address makes no Location");
                *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            }
        }
    }
    if response.status().is_client_error() && !is_json(&response) {
        response = json_client_error(response).await;
    }
    let status = response.status();
    if status.is_server_error() {
        let cause = response
            .extensions()
            .get::<ServerErrorCause>()
            .map_or("(no cause recorded)", |cause| cause.0.as_str());
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(%route, %method, %status, cause, "request failed");
        } else {
            tracing::warn!(%route, %method, %status, cause, "request not served");
        }
    }
    let metrics = &master.inner.metrics;
    metrics.http_requests.with_label_values(&[&route, method.as_str(), status.as_str()]).inc();
    metrics
        .http_request_seconds
        .with_label_values(&[&route, method.as_str()])
        .observe(started.elapsed().as_secs_f64());
    response
}

async fn no_route(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {}", uri.path()))
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"))
}

/// axum's own refusals (a body over the limit, a malformed query or JSON body, a wrong
/// method) are plain text; clients of every API here expect the JSON error body.
async fn json_client_error(response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, 64 * 1024).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(error) => format!("(the refusal could not be read: {error})"),
    };
    if parts.status == StatusCode::PAYLOAD_TOO_LARGE {
        // axum says only "length limit exceeded"; a client needs the number.
        let body = serde_json::json!({
            "error": "too_large",
            "field": "body",
            "message": format!("the request body is over the limit of {API_BODY_LIMIT} bytes"),
            "limit": API_BODY_LIMIT,
        });
        return json_response(parts, body);
    }
    let kind = match parts.status {
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        _ => "bad_request",
    };
    let message = if text.is_empty() {
        parts.status.canonical_reason().unwrap_or("refused").to_owned()
    } else {
        text
    };
    json_response(parts, serde_json::json!({"error": kind, "message": message}))
}

fn json_response(mut parts: axum::http::response::Parts, body: serde_json::Value) -> Response {
    let body = body.to_string();
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body))
}
