//! `/corral/v1/acl`: access control, administered as commands in the log.
//!
//! - `POST /corral/v1/acl/bootstrap` (no credentials): the first management token, exactly
//!   once per cluster (`409` after). Body optional: `{"secret": "…"}` to choose the secret
//!   (one kept in a secrets store, say).
//! - `GET|POST /corral/v1/acl/tokens`, `DELETE /corral/v1/acl/tokens/{accessor}`: a created
//!   token's text (`crl_<accessor>_<secret>`) is in the answer to its creation and nowhere
//!   else; lists show accessors, principals and kinds.
//! - `GET /corral/v1/acl/policies`, `GET|PUT|DELETE /corral/v1/acl/policies/{name}`: the
//!   body is Mesos's ACL JSON (plus `create_apps`… and `read_api`/`write_api`).
//! - `GET|PUT /corral/v1/acl/credentials`: Mesos's `--credentials` JSON
//!   (`{"credentials": [{"principal", "secret"}]}`), each secret hashed with argon2id here,
//!   before it reaches the log; `DELETE /corral/v1/acl/credentials/{principal}`.
//! - `GET|PUT /corral/v1/acl/mode`: `{"mode": "off" | "permissive" | "enforce"}`.
//! - `GET /corral/v1/auth` (no credentials): `{"mode": …, "bootstrapped": …}`, so that a
//!   client (the web UI) knows whether to ask for a token before it is refused.
//!
//! Every write is a command the state checks (management, or `write_api` on `acl`), whatever
//! the mode, once the cluster is bootstrapped.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use corral_log::ReadConsistency;
use corral_state::auth::{AuthMode, Credential, Policy, SecretHash, Token, TokenKind};
use corral_state::{Actor, Command, Rejection};
use serde_json::{json, Value};

use crate::auth::{hash_password, new_token, TOKEN_PREFIX};
use crate::error::ApiError;
use crate::master::{new_request_id, Master};

pub(crate) fn router() -> Router<Master> {
    Router::new()
        .route("/corral/v1/acl/bootstrap", post(bootstrap))
        .route("/corral/v1/acl/tokens", get(list_tokens).post(create_token))
        .route("/corral/v1/acl/tokens/{accessor}", get(get_token).delete(revoke_token))
        .route("/corral/v1/acl/policies", get(list_policies))
        .route(
            "/corral/v1/acl/policies/{name}",
            get(get_policy).put(put_policy).delete(delete_policy),
        )
        .route("/corral/v1/acl/credentials", get(list_credentials).put(put_credentials))
        .route("/corral/v1/acl/credentials/{principal}", axum::routing::delete(delete_credential))
        .route("/corral/v1/acl/mode", get(get_mode).put(put_mode))
        .route("/corral/v1/auth", get(get_mode))
}

fn operator() -> Actor {
    Actor::Operator { principal: None }
}

async fn run(master: &Master, command: Command) -> Result<(), ApiError> {
    master.redirect_if_follower()?;
    let committed = master.propose(new_request_id(), operator(), command).await?;
    match committed.outcome.rejection() {
        Some(rejection) => Err(ApiError::Rejected(rejection.clone())),
        None => Ok(()),
    }
}

fn body_json(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body)
        .map_err(|error| ApiError::bad_request("body", format!("not JSON: {error}")))
}

fn optional_string(body: &Value, field: &str) -> Result<Option<String>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(ApiError::bad_request(field, "must be a string")),
    }
}

fn token_json(token: &Token) -> Value {
    json!({
        "accessor": token.accessor,
        "principal": token.principal,
        "kind": token.kind,
        "description": token.description,
    })
}

/// Chooses the secret when the body names one (hex or base64url, 32 to 128 characters).
fn chosen_secret(body: &Value) -> Result<Option<String>, ApiError> {
    let Some(secret) = optional_string(body, "secret")? else {
        return Ok(None);
    };
    let secret = secret.trim().to_owned();
    let fitting = (32..=128).contains(&secret.len())
        && secret.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !fitting {
        return Err(ApiError::bad_request(
            "secret",
            "must be 32 to 128 letters, digits or '-' (make one with `openssl rand -hex 32`)",
        ));
    }
    Ok(Some(secret))
}

async fn bootstrap(State(master): State<Master>, body: Bytes) -> Result<Response, ApiError> {
    let body = body_json(&body)?;
    let (accessor, generated, _) = new_token();
    let secret = chosen_secret(&body)?.unwrap_or(generated);
    let token = Token {
        accessor: accessor.clone(),
        principal: "bootstrap".to_owned(),
        kind: TokenKind::Management,
        secret_hash: SecretHash::of(&secret),
        description: "bootstrap token".to_owned(),
    };
    run(&master, Command::BootstrapAcl { token: token.clone() }).await.map_err(conflicts)?;
    let mut answer = token_json(&token);
    answer["token"] = json!(format!("{TOKEN_PREFIX}{accessor}_{secret}"));
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// The ACL objects' own refusals: a second bootstrap or a name taken is 409, an unknown one
/// 404; the rest as every rejection.
fn conflicts(error: ApiError) -> ApiError {
    match error {
        ApiError::Rejected(Rejection::AlreadyBootstrapped) => ApiError::Conflict {
            field: "bootstrap".to_owned(),
            problem: "access control was bootstrapped already".to_owned(),
        },
        ApiError::Rejected(Rejection::AclObjectExists { kind, name }) => {
            ApiError::Conflict { field: kind, problem: format!("'{name}' exists already") }
        }
        ApiError::Rejected(Rejection::UnknownAclObject { kind, name }) => {
            ApiError::Unknown { field: kind, problem: format!("'{name}' does not exist") }
        }
        other => other,
    }
}

async fn list_tokens(State(master): State<Master>) -> Result<Response, ApiError> {
    let tokens = master
        .read_state(ReadConsistency::Local, |state| {
            state.auth().tokens().map(token_json).collect::<Vec<_>>()
        })
        .await?;
    Ok(Json(json!({ "tokens": tokens })).into_response())
}

async fn get_token(
    State(master): State<Master>,
    Path(accessor): Path<String>,
) -> Result<Response, ApiError> {
    let token = master
        .read_state(ReadConsistency::Local, move |state| {
            state.auth().token(&accessor).map(token_json).ok_or(accessor)
        })
        .await?;
    match token {
        Ok(token) => Ok(Json(token).into_response()),
        Err(accessor) => Err(ApiError::Unknown {
            field: "accessor".to_owned(),
            problem: format!("no token '{accessor}'"),
        }),
    }
}

async fn create_token(State(master): State<Master>, body: Bytes) -> Result<Response, ApiError> {
    let body = body_json(&body)?;
    let (accessor, generated, _) = new_token();
    let secret = chosen_secret(&body)?.unwrap_or(generated);
    let principal = optional_string(&body, "principal")?.unwrap_or_else(|| accessor.clone());
    let kind = match optional_string(&body, "kind")?.as_deref() {
        None | Some("client") => TokenKind::Client,
        Some("management") => TokenKind::Management,
        Some(_) => {
            return Err(ApiError::bad_request("kind", "must be \"client\" or \"management\""))
        }
    };
    let description = optional_string(&body, "description")?.unwrap_or_default();
    let token = Token {
        accessor: accessor.clone(),
        principal,
        kind,
        secret_hash: SecretHash::of(&secret),
        description,
    };
    run(&master, Command::PutToken { token: token.clone() }).await.map_err(conflicts)?;
    let mut answer = token_json(&token);
    answer["token"] = json!(format!("{TOKEN_PREFIX}{accessor}_{secret}"));
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

async fn revoke_token(
    State(master): State<Master>,
    Path(accessor): Path<String>,
) -> Result<Response, ApiError> {
    run(&master, Command::RevokeToken { accessor }).await.map_err(conflicts)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_policies(State(master): State<Master>) -> Result<Response, ApiError> {
    let policies = master
        .read_state(ReadConsistency::Local, |state| {
            state
                .auth()
                .policies()
                .map(|policy| json!({"name": policy.name, "acls": policy.to_mesos_json()}))
                .collect::<Vec<_>>()
        })
        .await?;
    Ok(Json(json!({ "policies": policies })).into_response())
}

async fn get_policy(
    State(master): State<Master>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let policy = master
        .read_state(ReadConsistency::Local, move |state| {
            state.auth().policy(&name).map(Policy::to_mesos_json).ok_or(name)
        })
        .await?;
    match policy {
        Ok(acls) => Ok(Json(acls).into_response()),
        Err(name) => Err(ApiError::Unknown {
            field: "name".to_owned(),
            problem: format!("no policy '{name}'"),
        }),
    }
}

async fn put_policy(
    State(master): State<Master>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let document = body_json(&body)?;
    let policy = Policy::from_mesos_json(&name, &document)
        .map_err(|error| ApiError::BadRequest { field: error.field, problem: error.problem })?;
    run(&master, Command::PutPolicy { policy: policy.clone() }).await.map_err(conflicts)?;
    Ok(Json(policy.to_mesos_json()).into_response())
}

async fn delete_policy(
    State(master): State<Master>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    run(&master, Command::DeletePolicy { name }).await.map_err(conflicts)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_credentials(State(master): State<Master>) -> Result<Response, ApiError> {
    let principals = master
        .read_state(ReadConsistency::Local, |state| {
            state.auth().credentials().map(|c| c.principal.clone()).collect::<Vec<_>>()
        })
        .await?;
    Ok(Json(json!({ "principals": principals })).into_response())
}

/// Imports Mesos's `--credentials` file: every entry hashed, then one command each.
async fn put_credentials(State(master): State<Master>, body: Bytes) -> Result<Response, ApiError> {
    let document = body_json(&body)?;
    let entries = document
        .get("credentials")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::bad_request("credentials", "must be a list"))?;
    let mut parsed = Vec::with_capacity(entries.len());
    for (number, entry) in entries.iter().enumerate() {
        let field = |name: &str| format!("credentials[{number}].{name}");
        let principal = entry
            .get("principal")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::bad_request(&field("principal"), "must be a string"))?;
        let secret = entry
            .get("secret")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::bad_request(&field("secret"), "must be a string"))?;
        if secret.is_empty() {
            return Err(ApiError::bad_request(&field("secret"), "must not be empty"));
        }
        parsed.push((principal.to_owned(), secret.to_owned()));
    }
    let hashed = tokio::task::spawn_blocking(move || {
        parsed
            .into_iter()
            .map(|(principal, secret)| {
                hash_password(&secret).map(|phc| Credential { principal, phc })
            })
            .collect::<Result<Vec<_>, String>>()
    })
    .await
    .map_err(|error| ApiError::Internal(error.to_string()))?
    .map_err(|error| ApiError::Internal(format!("hashing a credential failed: {error}")))?;
    let mut principals = Vec::with_capacity(hashed.len());
    for credential in hashed {
        principals.push(credential.principal.clone());
        run(&master, Command::PutCredential { credential }).await.map_err(conflicts)?;
    }
    Ok(Json(json!({ "principals": principals })).into_response())
}

async fn delete_credential(
    State(master): State<Master>,
    Path(principal): Path<String>,
) -> Result<Response, ApiError> {
    run(&master, Command::DeleteCredential { principal }).await.map_err(conflicts)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn get_mode(State(master): State<Master>) -> Result<Response, ApiError> {
    let (mode, bootstrapped) = master
        .read_state(ReadConsistency::Local, |state| {
            (state.auth().mode(), state.auth().is_bootstrapped())
        })
        .await?;
    Ok(Json(json!({"mode": mode.as_str(), "bootstrapped": bootstrapped})).into_response())
}

async fn put_mode(State(master): State<Master>, body: Bytes) -> Result<Response, ApiError> {
    let body = body_json(&body)?;
    let mode = optional_string(&body, "mode")?.and_then(|mode| AuthMode::parse(&mode)).ok_or_else(
        || ApiError::bad_request("mode", "must be \"off\", \"permissive\" or \"enforce\""),
    )?;
    run(&master, Command::SetAuthMode { mode }).await.map_err(conflicts)?;
    Ok(Json(json!({"mode": mode.as_str()})).into_response())
}
