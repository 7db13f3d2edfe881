//! The API's one error type. Every variant maps to an HTTP status and a JSON body that names
//! the field and the problem, so a client can act on it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use corral_state::auth::DenialReason;
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
    /// A query parameter names something that does not exist (404 naming the parameter).
    #[error("{field}: {problem}")]
    Missing { field: String, problem: String },
    /// What the query asks for is older than this master keeps (410 naming the oldest
    /// cursor still available).
    #[error("{field}: {problem}")]
    Gone { field: String, problem: String, oldest: String },
    /// A 307 to the same path and query on the leader; the request middleware, which
    /// knows the request, writes the `Location`.
    #[error("this master is not the leader; the leader is {leader_address}")]
    NotLeader { leader_address: String },
    #[error("no leader is elected yet")]
    NoLeader,
    /// This master has not heard from the cluster lately (a leader without its quorum, a
    /// follower without a leader): what it knows may be stale, so agents go elsewhere.
    #[error("this master is cut off from the cluster; ask another master")]
    Adrift,
    /// Leadership changed while the command was in flight and this master could not learn
    /// in time whether it was committed.
    #[error("the command may or may not have been applied: leadership changed while it was in flight; check before retrying")]
    OutcomeUnknown,
    #[error("internal error: {0}")]
    Internal(String),
    /// The master's proxy could not get an answer from an agent (`cause` is logged, not
    /// shown).
    #[error("agent {agent_id} at {address} did not answer: {cause}")]
    AgentUnreachable { agent_id: String, address: String, cause: String },
    /// The agent took longer than the proxy waits.
    #[error("agent {agent_id} at {address} did not answer in time: {cause}")]
    AgentTimeout { agent_id: String, address: String, cause: String },
    /// A Marathon app definition that breaks its rules: 422 with Marathon's body.
    #[error("{}", .0.message)]
    Validation(corral_marathon::ValidationFailure),
    /// The request names something that does not exist (404 naming the parameter).
    #[error("{field}: {problem}")]
    Unknown { field: String, problem: String },
    /// The request is well formed but would break the cluster as it stands (409).
    #[error("{field}: {problem}")]
    Conflict { field: String, problem: String },
    /// A well-formed body whose content breaks the rules (422 naming the field).
    #[error("{field}: {problem}")]
    Unprocessable { field: String, problem: String },
    /// Begun but not finished in time; nothing unsafe is left and asking again is safe.
    #[error("{0}")]
    Unfinished(String),
    /// A follower could not reach the leader to forward a write (`cause` is logged, not
    /// shown).
    #[error("the leader at {leader} could not be reached: {cause}")]
    LeaderUnreachable { leader: String, cause: String },
    /// The leader did not answer a forwarded write in time.
    #[error("the leader at {leader} did not answer in time: {cause}")]
    LeaderTimeout { leader: String, cause: String },
    /// The client already holds as many event streams as one client may (429).
    #[error("client {client} already holds {limit} open event streams, the most one client may; close one first")]
    TooManyStreams { client: String, limit: usize },
}

impl From<corral_mesos::FieldError> for ApiError {
    fn from(error: corral_mesos::FieldError) -> ApiError {
        ApiError::BadRequest { field: error.field, problem: error.problem }
    }
}

/// A 307 whose `Location` is the leader at this address with the request's own path and
/// query, so `?consistency=linearizable` or `?force=true` reach the leader as they were sent.
#[derive(Clone, Debug)]
pub(crate) struct RedirectToLeader(pub(crate) String);

/// Why a request failed on the server's side. The client gets a generic message; the
/// request middleware logs this with the route.
#[derive(Clone, Debug)]
pub(crate) struct ServerErrorCause(pub(crate) String);

impl ApiError {
    pub fn bad_request(field: &str, problem: impl Into<String>) -> ApiError {
        ApiError::BadRequest { field: field.to_owned(), problem: problem.into() }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Rejected(rejection) => rejection_status(rejection),
            ApiError::NotFound(_) | ApiError::Missing { .. } => StatusCode::NOT_FOUND,
            ApiError::Gone { .. } => StatusCode::GONE,
            ApiError::NotLeader { .. } => StatusCode::TEMPORARY_REDIRECT,
            ApiError::NoLeader | ApiError::Adrift | ApiError::OutcomeUnknown => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::AgentUnreachable { .. } => StatusCode::BAD_GATEWAY,
            ApiError::AgentTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            ApiError::LeaderUnreachable { .. } => StatusCode::BAD_GATEWAY,
            ApiError::LeaderTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unknown { .. } => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Unfinished(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TooManyStreams { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
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
        // As Mesos: no (or no valid) credentials is 401, a principal that may not is 403, a
        // FrameworkInfo.principal other than the authenticated one is 400.
        Rejection::Unauthorized(denial) if denial.is_unauthenticated() => StatusCode::UNAUTHORIZED,
        Rejection::Unauthorized(denial)
            if matches!(denial.reason, DenialReason::PrincipalMismatch { .. }) =>
        {
            StatusCode::BAD_REQUEST
        }
        Rejection::Unauthorized(_) => StatusCode::FORBIDDEN,
        Rejection::AlreadyBootstrapped | Rejection::AclObjectExists { .. } => StatusCode::CONFLICT,
        Rejection::UnknownAclObject { .. } => StatusCode::NOT_FOUND,
        _ => StatusCode::BAD_REQUEST,
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    oldest: Option<&'a str>,
}

fn error_kind(error: &ApiError) -> &'static str {
    match error {
        ApiError::Rejected(Rejection::Unauthorized(denial)) if denial.is_unauthenticated() => {
            "unauthenticated"
        }
        ApiError::Rejected(Rejection::Unauthorized(_)) => "forbidden",
        ApiError::BadRequest { .. } => "bad_request",
        ApiError::Rejected(_) => "rejected",
        ApiError::NotFound(_) | ApiError::Missing { .. } => "not_found",
        ApiError::Gone { .. } => "gone",
        ApiError::NotLeader { .. } => "not_leader",
        ApiError::NoLeader => "no_leader",
        ApiError::Adrift => "adrift",
        ApiError::OutcomeUnknown => "outcome_unknown",
        ApiError::Internal(_) => "internal",
        ApiError::AgentUnreachable { .. } => "agent_unreachable",
        ApiError::AgentTimeout { .. } => "agent_timeout",
        ApiError::LeaderUnreachable { .. } => "leader_unreachable",
        ApiError::LeaderTimeout { .. } => "leader_no_answer",
        ApiError::Validation(_) => "invalid",
        ApiError::Unknown { .. } => "not_found",
        ApiError::Conflict { .. } => "conflict",
        ApiError::Unfinished(_) => "unfinished",
        ApiError::TooManyStreams { .. } => "too_many_streams",
        ApiError::Unprocessable { .. } => "invalid",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let ApiError::Validation(failure) = self {
            return (status, Json(failure)).into_response();
        }
        let field = match &self {
            ApiError::BadRequest { field, .. }
            | ApiError::Missing { field, .. }
            | ApiError::Gone { field, .. } => Some(field.as_str()),
            ApiError::Rejected(Rejection::Invalid { field, .. }) => Some(field.as_str()),
            ApiError::Unknown { field, .. }
            | ApiError::Conflict { field, .. }
            | ApiError::Unprocessable { field, .. } => Some(field.as_str()),
            _ => None,
        };
        let oldest = match &self {
            ApiError::Gone { oldest, .. } => Some(oldest.clone()),
            _ => None,
        };
        let message = match &self {
            ApiError::Internal(_) => "internal error; the master's log has the cause".to_owned(),
            ApiError::AgentUnreachable { agent_id, .. } => {
                format!("agent {agent_id} could not be reached; the master's log has the cause")
            }
            ApiError::AgentTimeout { agent_id, .. } => {
                format!("agent {agent_id} did not answer in time; the master's log has the cause")
            }
            ApiError::LeaderUnreachable { leader, .. } => format!(
                "the leader at {leader} could not be reached; this master's log has the cause"
            ),
            ApiError::LeaderTimeout { leader, .. } => format!(
                "the leader at {leader} did not answer in time; this master's log has the cause; \
                 the write may or may not have been applied"
            ),
            other => other.to_string(),
        };
        let body =
            ErrorBody { error: error_kind(&self), field, message, oldest: oldest.as_deref() };
        let mut response = (status, Json(body)).into_response();
        if status.is_server_error() {
            response.extensions_mut().insert(ServerErrorCause(self.to_string()));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Basic realm=\"corral\""),
            );
        }
        if let ApiError::NotLeader { leader_address } = self {
            response.extensions_mut().insert(RedirectToLeader(leader_address));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse;

    use super::ApiError;

    #[test]
    fn errors_render_as_json_with_the_field() {
        let response =
            ApiError::bad_request("accept.offer_ids", "must not be empty").into_response();
        assert_eq!(response.status(), 400);
        let response =
            ApiError::NotLeader { leader_address: "127.0.0.1:5052".to_owned() }.into_response();
        assert_eq!(response.status(), 307);
        // The request middleware turns this into the Location (tests/master/routes.rs).
        let redirect = response.extensions().get::<super::RedirectToLeader>().expect("redirect");
        assert_eq!(redirect.0, "127.0.0.1:5052");
        let response = ApiError::Rejected(corral_state::Rejection::NotPermitted {
            command: "kill".into(),
            why: "x".into(),
        })
        .into_response();
        assert_eq!(response.status(), 403);
    }
}
