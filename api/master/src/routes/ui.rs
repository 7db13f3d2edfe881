//! The web UI: `GET /` and everything under `/ui/` on every master, leader or not.
//!
//! The assets (`api/master/ui/`: one HTML page, one stylesheet, plain JavaScript modules)
//! are compiled into the binary, so there is nothing to install beside it and nothing is
//! fetched from the internet. `/ui/assets/NAME` serves an asset; any other path under `/ui/`
//! serves the page, which routes on its `#` fragment. Unknown asset names are a 404 naming
//! `asset`.
//!
//! The page talks only to the APIs every client uses (`/master/state`, `/corral/v1/...`,
//! `/v2/...`, `/api/v1`, `/agent/{id}/files/read`), with `?consistency=local` for reads so
//! that it shows what the master it follows has applied, consistent with that master's event
//! stream. When that master stops answering it moves to another member (the cross-origin
//! requests this needs are allowed by `crate::cors`), resuming the stream with
//! `Last-Event-ID`. Writes go to the leader it last saw.
//!
//! Every answer carries a Content-Security-Policy: scripts, styles and images only from the
//! master itself, no inline script, connections to any master (`http:`/`https:`) for
//! failover, and no framing.

use axum::extract::Path;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::error::ApiError;
use crate::master::Master;

/// One embedded file: its name under `/ui/assets/`, its content type and its bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const PAGE: &[u8] = include_bytes!("../../ui/index.html");

const ASSETS: &[Asset] = &[
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../ui/style.css"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../ui/app.js"),
    },
    Asset {
        name: "api.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../ui/api.js"),
    },
    Asset {
        name: "views.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../ui/views.js"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("../../ui/favicon.svg"),
    },
];

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self' http: https:; frame-ancestors 'none'; base-uri 'none'; \
                   form-action 'none'";

fn answer(content_type: &'static str, bytes: &'static [u8]) -> Response {
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The binary is the version: a browser revalidates, so an upgraded master's UI shows.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

async fn page() -> Response {
    answer("text/html; charset=utf-8", PAGE)
}

async fn asset(Path(name): Path<String>) -> Result<Response, ApiError> {
    ASSETS
        .iter()
        .find(|asset| asset.name == name)
        .map(|asset| answer(asset.content_type, asset.bytes))
        .ok_or_else(|| ApiError::Missing {
            field: "asset".to_owned(),
            problem: format!("the UI has no asset '{name}'"),
        })
}

/// `/`, `/ui`, `/ui/`, `/ui/assets/{name}` and the page for any other path under `/ui/`.
pub(crate) fn router() -> Router<Master> {
    Router::new()
        .route("/", get(page))
        .route("/ui", get(page))
        .route("/ui/", get(page))
        .route("/ui/assets/{name}", get(asset))
        .route("/ui/{*rest}", get(page))
        .route("/favicon.ico", get(|| asset(Path("favicon.svg".to_owned()))))
}
