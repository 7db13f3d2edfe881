//! `GET /corral/v1/snapshot`: a backup of the cluster state (`corral snapshot save`).
//!
//! The body is a `corral_log::backup::Backup` file: the state at one applied index, read
//! atomically with that index, its term and digest, and the journal after the last Raft
//! snapshot. The headers repeat what a client checks without decoding it:
//! `Corral-Snapshot-Index`, `Corral-Snapshot-Term`, `Corral-Snapshot-Digest`. The leader
//! answers (`?consistency=linearizable` includes everything committed before the request);
//! followers redirect unless `?consistency=local`. The body goes out in 1 MiB chunks, so a
//! large backup is not one write of the whole buffer.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue};
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use crate::error::ApiError;
use crate::master::Master;
use crate::routes::misc::ReadOptions;

const CHUNK: usize = 1024 * 1024;

pub(crate) async fn snapshot(
    State(master): State<Master>,
    Query(options): Query<ReadOptions>,
) -> Result<Response, ApiError> {
    let consistency = options.consistency(&master)?;
    let backup =
        master.node().backup(consistency).await.map_err(|error| master.log_error(error))?;
    let bytes =
        bytes::Bytes::from(backup.encode().map_err(|error| ApiError::Internal(error.to_string()))?);
    let chunks: Vec<Result<bytes::Bytes, std::convert::Infallible>> = (0..bytes.len())
        .step_by(CHUNK)
        .map(|start| Ok(bytes.slice(start..bytes.len().min(start + CHUNK))))
        .collect();
    let mut response = Response::new(Body::from_stream(futures::stream::iter(chunks)));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    headers.insert("corral-snapshot-index", HeaderValue::from(backup.index()));
    headers.insert("corral-snapshot-term", HeaderValue::from(backup.term()));
    let digest = HeaderValue::from_str(&backup.digest().to_string())
        .expect("a digest is 64 hex digits, a valid header value");
    headers.insert("corral-snapshot-digest", digest);
    Ok(response)
}

pub(crate) fn router() -> Router<Master> {
    Router::new().route("/corral/v1/snapshot", get(snapshot))
}
