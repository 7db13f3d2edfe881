//! `POST /corral/v1/acl/authorize`: an agent asks whether its own API (`--listen`) may answer
//! a caller. The agent keeps no ACLs; the masters decide from the log's, as they decide for
//! their own routes.
//!
//! Request (JSON):
//!
//! ```json
//! {"agent_id": "…", "action": "access_sandboxes" | "view_tasks" | null, "object": null,
//!  "credentials": {"authorization": "Bearer crl_…", "x_corral_token": "crl_…"},
//!  "master_proof": {"method": "GET", "path": "/monitor/statistics", "header": "v1 …"}}
//! ```
//!
//! `credentials` are the caller's `Authorization` and `X-Corral-Token` headers exactly as
//! the agent received them (either may be absent); `action` is what the agent's route needs
//! (`null`: any live identity may); `master_proof`, when a master itself called the agent
//! (the autoscaler's usage reads), is the `Corral-Cluster-Auth` header that call carried,
//! checked with the cluster secret.
//!
//! Answer (200): `{"mode": "off" | "permissive" | "enforce", "verdict": "allow" | "deny" |
//! "unauthenticated", "principal": …, "refusal": {"status": 401 | 403, "body": {…}}}`, where
//! `refusal` (with `deny` and `unauthenticated`) is the status and JSON error body a master
//! answers such a caller with on its own routes, for the agent to answer the same way. With
//! the mode `off` it is `{"mode": "off", "verdict": "allow"}`, to anyone. Otherwise only the
//! identity that registered `agent_id` (its join token), for an agent registered while the
//! mode was `off` any identity allowed `register_agents` on its hostname, or a management
//! token may ask: others
//! get 403, as the middleware refuses (counted, and let through with `permissive`). With
//! `permissive` a refusal is counted in `corral_http_auth_denied_total{route=
//! "/corral/v1/acl/authorize"}` and the verdict still says what `enforce` would do; the
//! agent lets the caller in.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use corral_log::ReadConsistency;
use corral_state::auth::{Action, AuthMode, Denial, DenialReason, TokenKind};
use corral_state::{AgentId, ClusterState, Rejection};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{current_caller, decide_for_agent, Refusal, Verdict, AUTHORIZE_ROUTE};
use crate::error::ApiError;
use crate::master::Master;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthorizeRequest {
    agent_id: String,
    action: Option<String>,
    object: Option<String>,
    #[serde(default)]
    credentials: Forwarded,
    master_proof: Option<MasterProof>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Forwarded {
    authorization: Option<String>,
    x_corral_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MasterProof {
    method: String,
    path: String,
    header: String,
}

pub(crate) fn router() -> Router<Master> {
    Router::new().route(AUTHORIZE_ROUTE, post(authorize))
}

async fn authorize(State(master): State<Master>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let request: AuthorizeRequest = serde_json::from_slice(&body).map_err(|error| {
        ApiError::bad_request("body", format!("not an authorize request: {error}"))
    })?;
    let action = match request.action.as_deref() {
        None => None,
        Some(name) => Some(Action::parse(name).ok_or_else(|| {
            ApiError::bad_request("action", format!("'{name}' is not an ACL action"))
        })?),
    };
    let mode = master
        .read_state(ReadConsistency::Local, |state: &ClusterState| state.auth().mode())
        .await?;
    if mode == AuthMode::Off {
        return Ok(Json(json!({"mode": "off", "verdict": "allow"})));
    }
    check_asker(&master, mode, &request.agent_id).await?;
    let verdict = match &request.master_proof {
        Some(proof) => master_verdict(&master, proof),
        None => {
            let headers = forwarded_headers(&request.credentials)?;
            let read = action.map(|action| (action, request.object.clone()));
            decide_for_agent(&master, &headers, read).await?
        }
    };
    let answer = match verdict {
        Verdict::Allow { principal, .. } => {
            json!({"mode": mode.as_str(), "verdict": "allow", "principal": principal})
        }
        Verdict::Refuse(refusal, denial) => {
            crate::auth::count_refusal(&master, AUTHORIZE_ROUTE, refusal);
            tracing::info!(agent_id = %request.agent_id, reason = refusal.as_str(), %denial, "a caller of an agent's API refused by access control");
            let verdict = if denial.is_unauthenticated() { "unauthenticated" } else { "deny" };
            let principal = denial.principal.clone();
            let (status, body) =
                rendered(ApiError::Rejected(Rejection::Unauthorized(denial))).await;
            json!({
                "mode": mode.as_str(),
                "verdict": verdict,
                "principal": principal,
                "refusal": {"status": status, "body": body},
            })
        }
    };
    Ok(Json(answer))
}

/// Only the agent's own identity, or a management token, may ask about its callers.
async fn check_asker(master: &Master, mode: AuthMode, agent_id: &str) -> Result<(), ApiError> {
    let Some(caller) = current_caller() else { return Ok(()) };
    let (identity, id) = (caller.identity.clone(), AgentId::from(agent_id));
    let refusal = master
        .read_state(ReadConsistency::Local, move |state: &ClusterState| {
            let auth = state.auth();
            let identity = identity?;
            let management =
                auth.principal(&identity).is_some_and(|p| p.kind == TokenKind::Management);
            let bound = auth.agent_identity(&id);
            // An agent registered while access control was off is bound to no identity:
            // a join token that may register it speaks for it too.
            let hostname = state.agent(&id).map(|agent| agent.info.hostname.clone());
            let may_register = bound.is_none()
                && hostname.is_some_and(|hostname| {
                    auth.decide(Some(&identity), Action::RegisterAgents, Some(&hostname)).is_ok()
                });
            if management || may_register || bound == Some(identity.as_str()) {
                return None;
            }
            let reason = match bound {
                Some(bound) => DenialReason::NotTheAgent {
                    agent_id: id.to_string(),
                    bound: bound.to_owned(),
                    identity: identity.clone(),
                },
                None => DenialReason::NoRuleAllows,
            };
            Some(Box::new(Denial {
                principal: auth.principal(&identity).map(|p| p.name.to_owned()),
                action: "authorize callers of agent".to_owned(),
                object: Some(id.to_string()),
                reason,
            }))
        })
        .await?;
    match refusal {
        None => Ok(()),
        Some(denial) => crate::auth::refuse(master, mode, AUTHORIZE_ROUTE, Refusal::Denied, denial),
    }
}

/// A master's own call to an agent, signed with the cluster secret.
fn master_verdict(master: &Master, proof: &MasterProof) -> Verdict {
    let refused = |reason: DenialReason| {
        let denial = Denial {
            principal: None,
            action: "authenticate as a master".to_owned(),
            object: None,
            reason,
        };
        Verdict::Refuse(Refusal::WrongSecret, Box::new(denial))
    };
    let Some(secret) = &master.inner.serving.cluster_secret else {
        return refused(DenialReason::UnknownIdentity(
            "a master (this cluster has no secret)".to_owned(),
        ));
    };
    let now = corral_log::network::secret::now_millis();
    match secret.verify(now, Some(proof.header.as_bytes()), &proof.method, &proof.path, b"") {
        Ok(()) => Verdict::Allow { principal: None },
        Err(refusal) => refused(DenialReason::UnknownIdentity(format!("a master ({refusal})"))),
    }
}

fn forwarded_headers(credentials: &Forwarded) -> Result<HeaderMap, ApiError> {
    let mut headers = HeaderMap::new();
    let pairs = [
        (
            axum::http::header::AUTHORIZATION,
            &credentials.authorization,
            "credentials.authorization",
        ),
        (
            axum::http::HeaderName::from_static("x-corral-token"),
            &credentials.x_corral_token,
            "credentials.x_corral_token",
        ),
    ];
    for (name, value, field) in pairs {
        if let Some(value) = value {
            let value = HeaderValue::from_str(value)
                .map_err(|_| ApiError::bad_request(field, "is not a header value"))?;
            headers.insert(name, value);
        }
    }
    Ok(headers)
}

/// The status and JSON body a master answers with for `error`.
async fn rendered(error: ApiError) -> (u16, Value) {
    let response = error.into_response();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .expect("an error's body is a small JSON document in memory");
    let body = serde_json::from_slice(&bytes).expect("an error's body is JSON");
    (status, body)
}
