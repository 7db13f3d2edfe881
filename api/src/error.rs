//! The API's one error type. Every variant maps to an HTTP status and a JSON body that names
//! the field and the problem, so a client can act on it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use corral_state::Rejection;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{field}: {problem}")]
    BadRequest { field: String, problem: String },
    /// The log refused the command when it was applied.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("this master is not the leader")]
    NotLeader { leader_url: Option<String> },
    #[error("no leader is elected yet")]
    NoLeader,
    #[error("internal error: {0}")]
    Internal(String),
    /// A Marathon app definition that breaks its rules: 422 with Marathon's body.
    #[error("{}", .0.message)]
    Validation(crate::marathon::ValidationFailure),
}

impl ApiError {
    pub fn bad_request(field: &str, problem: impl Into<String>) -> ApiError {
        ApiError::BadRequest { field: field.to_owned(), problem: problem.into() }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Rejected(rejection) => rejection_status(rejection),
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::NotLeader { .. } => StatusCode::TEMPORARY_REDIRECT,
            ApiError::NoLeader => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }
}

/// Mesos answers calls about things that do not exist or are not the caller's with 400
/// (scheduler API) and refuses a framework acting for another with 403.
fn rejection_status(rejection: &Rejection) -> StatusCode {
    match rejection {
        Rejection::NotPermitted { .. } | Rejection::OfferNotOwned { .. } => StatusCode::FORBIDDEN,
        Rejection::FrameworkNotSubscribed(_) => StatusCode::FORBIDDEN,
        // Marathon's statuses for its apps and deployments.
        Rejection::AppExists(_) | Rejection::AppLocked { .. } | Rejection::LaunchDelayed { .. } => {
            StatusCode::CONFLICT
        }
        Rejection::UnknownApp(_)
        | Rejection::UnknownDeployment(_)
        | Rejection::UnknownAppVersion { .. } => StatusCode::NOT_FOUND,
        _ => StatusCode::BAD_REQUEST,
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    message: String,
}

fn error_kind(error: &ApiError) -> &'static str {
    match error {
        ApiError::BadRequest { .. } => "bad_request",
        ApiError::Rejected(_) => "rejected",
        ApiError::NotFound(_) => "not_found",
        ApiError::NotLeader { .. } => "not_leader",
        ApiError::NoLeader => "no_leader",
        ApiError::Internal(_) => "internal",
        ApiError::Validation(_) => "invalid",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let ApiError::Validation(failure) = self {
            return (status, Json(failure)).into_response();
        }
        let field = match &self {
            ApiError::BadRequest { field, .. } => Some(field.as_str()),
            ApiError::Rejected(Rejection::Invalid { field, .. }) => Some(field.as_str()),
            _ => None,
        };
        let body = ErrorBody { error: error_kind(&self), field, message: self.to_string() };
        let mut response = (status, Json(body)).into_response();
        if let ApiError::NotLeader { leader_url: Some(url) } = &self {
            if let Ok(value) = url.parse() {
                response.headers_mut().insert(axum::http::header::LOCATION, value);
            }
        }
        response
    }
}
