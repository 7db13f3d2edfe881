//! Cross-origin requests from the cluster's own masters, and only from them.
//!
//! The web UI is loaded from one master and, when that master dies, carries on against
//! another: its requests then cross origins (`http://A` calling `http://B`). A browser allows
//! that only if B says so. B says so for an `Origin` that is `http://` or `https://` followed
//! by the address of a member of the Raft group, and for no other: a page served from
//! anywhere else cannot read the cluster's answers. Preflights (`OPTIONS` with
//! `Access-Control-Request-Method`) from such an origin are answered here with 204; from any
//! other origin they get 403 naming `Origin`.
//!
//! Nothing rides on cookies (a token travels in `Authorization`), so credentials are never
//! allowed.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::master::Master;

const ALLOWED_METHODS: &str = "GET, POST, PUT, PATCH, DELETE";
const ALLOWED_HEADERS: &str = "authorization, content-type, accept, last-event-id";
/// What a script may read of an answer besides the simple headers.
const EXPOSED_HEADERS: &str = "corral-state-index, location";
/// How long a browser may reuse a preflight's answer, in seconds.
const PREFLIGHT_MAX_AGE: &str = "600";

/// Whether `origin` is one of the members' addresses, over HTTP or HTTPS.
pub(crate) fn is_member_origin(origin: &str, member_addresses: &[String]) -> bool {
    let Some(host) = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    member_addresses.iter().any(|address| address == host)
}

fn origin_of(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ORIGIN).and_then(|value| value.to_str().ok())
}

/// Same-origin requests carry no `Origin` (GET) or one naming the host they were sent to.
fn same_origin(headers: &HeaderMap, origin: &str) -> bool {
    let host = headers.get(header::HOST).and_then(|value| value.to_str().ok());
    host.is_some_and(|host| {
        origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) == Some(host)
    })
}

pub(crate) async fn cors(State(master): State<Master>, request: Request, next: Next) -> Response {
    let Some(origin) = origin_of(request.headers()).map(str::to_owned) else {
        return next.run(request).await;
    };
    if same_origin(request.headers(), &origin) {
        return next.run(request).await;
    }
    let members: Vec<String> =
        master.node().status().members.into_iter().map(|member| member.address).collect();
    let allowed = is_member_origin(&origin, &members);
    let preflight = request.method() == Method::OPTIONS
        && request.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight && !allowed {
        let body = serde_json::json!({
            "error": "forbidden",
            "field": "Origin",
            "message": format!("'{origin}' is not the address of a master of this cluster"),
        });
        return (StatusCode::FORBIDDEN, Json(body)).into_response();
    }
    let mut response = if preflight {
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOWED_METHODS),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOWED_HEADERS),
        );
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(PREFLIGHT_MAX_AGE));
        response
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("origin"));
    if allowed {
        if let Ok(origin) = HeaderValue::from_str(&origin) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSED_HEADERS),
            );
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_members_addresses_are_allowed_origins() {
        let members = vec!["127.0.0.1:5050".to_owned(), "10.0.0.2:5050".to_owned()];
        assert!(is_member_origin("http://127.0.0.1:5050", &members));
        assert!(is_member_origin("https://10.0.0.2:5050", &members));
        assert!(!is_member_origin("http://127.0.0.1:5051", &members));
        assert!(!is_member_origin("http://evil.example", &members));
        assert!(!is_member_origin("null", &members));
        assert!(!is_member_origin("127.0.0.1:5050", &members));
    }
}
