//! A follower forwards Marathon writes to the leader, as Marathon's `LeaderProxyFilter` does,
//! when access control is on.
//!
//! Elsewhere a follower answers a write with a 307 to the leader. Python's `requests` (under
//! the `marathon` client) drops the `Authorization` header on a redirect to another host or
//! port, so with access control on every authenticated write sent to a follower would end as
//! a 401 from the leader. So with the mode `permissive` or `enforce`, a POST, PUT, PATCH or
//! DELETE under `/v2` (or `/service/marathon/v2`) that reaches a follower is sent to the
//! leader with its headers (credentials included) and body, and the leader's answer comes
//! back as it is. The follower does not authenticate it: the leader does, on the state it
//! proposes on. With the mode `off` nothing changes (307).
//!
//! A forwarded request carries `X-Corral-Forwarded-By`; a master that gets one and does not
//! lead (leadership moved meanwhile) answers it itself (a 307), so a request is forwarded at
//! most once. No leader known is a 503 `no_leader`; a leader that cannot be reached a 502
//! `leader_unreachable`; one that does not answer within `Serving::leader_timeout` a 504
//! `leader_no_answer` (the write may or may not have been applied); each is logged with its
//! cause by the request middleware.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use corral_log::ReadConsistency;
use corral_state::auth::AuthMode;

use crate::error::ApiError;
use crate::master::Master;

/// Marks a request one master forwarded to another (its value: the forwarding master).
pub(crate) const FORWARDED_BY: &str = "x-corral-forwarded-by";

/// Headers about one connection, not the request: never forwarded either way.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    header::HOST,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// A Marathon write: what Marathon's leader proxy forwards and Corral's followers would
/// otherwise redirect.
fn is_marathon_write(method: &Method, path: &str) -> bool {
    let writes = [Method::POST, Method::PUT, Method::PATCH, Method::DELETE];
    let path = path.strip_prefix("/service/marathon").unwrap_or(path);
    writes.contains(method) && (path == "/v2" || path.starts_with("/v2/"))
}

fn copied(headers: &HeaderMap) -> HeaderMap {
    let mut kept = headers.clone();
    for name in &HOP_BY_HOP {
        kept.remove(name);
    }
    kept.remove("keep-alive");
    kept
}

/// The middleware: forwards a Marathon write that reached a follower while access control is
/// on; lets everything else through.
pub(crate) async fn forward_writes(
    State(master): State<Master>,
    request: Request,
    next: Next,
) -> Response {
    if !is_marathon_write(request.method(), request.uri().path())
        || request.headers().contains_key(FORWARDED_BY)
        || master.node().is_leader()
    {
        return next.run(request).await;
    }
    let mode = master.read_state(ReadConsistency::Local, |state| state.auth().mode()).await;
    let leader = match mode.and_then(|mode| match mode {
        AuthMode::Off => Ok(None),
        _ => master.leader_elsewhere(),
    }) {
        // Access control is off, or this master was elected meanwhile.
        Ok(None) => return next.run(request).await,
        Ok(Some(leader)) => leader,
        Err(error) => return error.into_response(),
    };
    match forward(&master, leader, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn forward(master: &Master, leader: String, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let scheme = if master.inner.serving.tls.is_some() { "https" } else { "http" };
    let target = parts.uri.path_and_query().map_or("/", |target| target.as_str());
    let url = format!("{scheme}://{leader}{target}");
    let mut headers = copied(&parts.headers);
    let by = HeaderValue::try_from(master.inner.address.as_str()).map_err(|error| {
        ApiError::Internal(format!("this master's address makes no header: {error}"))
    })?;
    headers.insert(FORWARDED_BY, by);
    tracing::debug!(method = %parts.method, %url, "forwarding a Marathon write to the leader");
    let answer = master
        .inner
        .leader_http
        .request(parts.method.clone(), &url)
        .headers(headers)
        .timeout(master.inner.serving.leader_timeout)
        .body(reqwest::Body::wrap_stream(body.into_data_stream()))
        .send()
        .await
        .map_err(|error| {
            let cause = format!("{} {url}: {error:?}", parts.method);
            if error.is_timeout() && !error.is_connect() {
                ApiError::LeaderTimeout { leader: leader.clone(), cause }
            } else {
                ApiError::LeaderUnreachable { leader: leader.clone(), cause }
            }
        })?;
    let status = StatusCode::from_u16(answer.status().as_u16()).map_err(|error| {
        ApiError::Internal(format!("the leader at {leader} sent a bad status: {error}"))
    })?;
    let headers = copied(answer.headers());
    let body = Body::from_stream(answer.bytes_stream());
    let mut response = (status, body).into_response();
    response.headers_mut().extend(headers);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use axum::http::Method;

    use super::is_marathon_write;

    #[test]
    fn only_marathon_writes_are_forwarded() {
        assert!(is_marathon_write(&Method::POST, "/v2/apps"));
        assert!(is_marathon_write(&Method::PUT, "/v2/apps/dev/web"));
        assert!(is_marathon_write(&Method::PATCH, "/v2/apps"));
        assert!(is_marathon_write(&Method::DELETE, "/v2/queue/dev/web/delay"));
        assert!(is_marathon_write(&Method::POST, "/service/marathon/v2/apps"));
        assert!(!is_marathon_write(&Method::GET, "/v2/apps"));
        assert!(!is_marathon_write(&Method::POST, "/v2apps"));
        assert!(!is_marathon_write(&Method::POST, "/api/v1/scheduler"));
        assert!(!is_marathon_write(&Method::DELETE, "/corral/v1/acl/tokens/x"));
    }
}
