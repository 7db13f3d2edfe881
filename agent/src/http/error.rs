//! The agent API's one error type: each variant an HTTP status and a JSON body
//! `{error, field, message}` naming what was wrong, as the masters answer.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{field}: {problem}")]
    BadRequest { field: String, problem: String },
    /// The request names something it may not see (a path outside every sandbox).
    #[error("{field}: {problem}")]
    Forbidden { field: String, problem: String },
    #[error("{problem}")]
    NotFound { field: Option<String>, problem: String },
    /// Not ready to answer yet (not registered with a master).
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(field: &str, problem: impl Into<String>) -> ApiError {
        ApiError::BadRequest { field: field.to_owned(), problem: problem.into() }
    }

    pub fn forbidden(field: &str, problem: impl Into<String>) -> ApiError {
        ApiError::Forbidden { field: field.to_owned(), problem: problem.into() }
    }

    pub fn not_found(field: &str, problem: impl Into<String>) -> ApiError {
        ApiError::NotFound { field: Some(field.to_owned()), problem: problem.into() }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            ApiError::BadRequest { .. } => "bad_request",
            ApiError::Forbidden { .. } => "forbidden",
            ApiError::NotFound { .. } => "not_found",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            ApiError::BadRequest { field, .. } | ApiError::Forbidden { field, .. } => Some(field),
            ApiError::NotFound { field, .. } => field.as_deref(),
            ApiError::Unavailable(_) | ApiError::Internal(_) => None,
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            tracing::error!(%cause, "agent API request failed");
        }
        let body = ErrorBody { error: self.kind(), field: self.field(), message: self.to_string() };
        (self.status(), Json(body)).into_response()
    }
}
