//! `/corral/v1/members` and `/corral/v1/leader/transfer`: replacing masters and moving
//! leadership.
//!
//! - `GET /corral/v1/members` — every master with its role (`leader`, `voter`, `learner`),
//!   address, whether the leader hears from it (`up`, `silent_ms`), and how far behind it is
//!   (`matched_index`, `lag`). The leader answers; followers redirect unless
//!   `?consistency=local` (then `up` is only known for the answering master itself).
//! - `POST /corral/v1/members` `{"node_id": 4, "address": "10.0.0.4:5050"}` — the master at
//!   that address (started with an empty `--data-dir` and no `--peers`) joins as a learner,
//!   catches up (by snapshot when the log it needs is compacted), then becomes a voter. 200
//!   with the members once it votes; 503 `unfinished` if it did not catch up in
//!   `CATCH_UP`: it stays a learner, and asking again resumes.
//! - `DELETE /corral/v1/members/{node_id}` — removes a master, voter or learner.
//! - `POST /corral/v1/leader/transfer?to=ID` — see `corral_log::transfer` for how.
//!
//! Refused before anything is proposed, with the parameter named: an unknown master (404), the
//! last voter, the leader itself, a removal that leaves the voters that are up short of a
//! majority, a node id or address already taken, a transfer to a learner or to a master the
//! leader does not hear (409). Writes on a follower are redirected to the leader (307).

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use corral_log::{ChangeError, LogError, Member, NodeId, Refusal, TransferOutcome};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::master::Master;
use crate::routes::misc::ReadOptions;

/// How long a new master may take to catch up before the request gives up waiting.
const CATCH_UP: Duration = Duration::from_secs(60);

pub(crate) async fn list(
    State(master): State<Master>,
    Query(options): Query<ReadOptions>,
) -> Result<Response, ApiError> {
    options.consistency(&master)?;
    Ok(Json(render(&master)).into_response())
}

pub(crate) async fn add(State(master): State<Master>, body: Bytes) -> Result<Response, ApiError> {
    master.redirect_if_follower()?;
    let (node_id, address) = parse_member(&body)?;
    master
        .node()
        .join(node_id, &address, CATCH_UP)
        .await
        .map_err(|error| change_error(&master, error, "node_id"))?;
    tracing::info!(node_id, %address, by = ?caller(), "master added");
    Ok(Json(render(&master)).into_response())
}

pub(crate) async fn remove(
    State(master): State<Master>,
    Path(node_id): Path<String>,
) -> Result<Response, ApiError> {
    master.redirect_if_follower()?;
    let node_id = parse_node_id("node_id", &node_id)?;
    master.node().leave(node_id).await.map_err(|error| change_error(&master, error, "node_id"))?;
    tracing::info!(node_id, by = ?caller(), "master removed");
    Ok(Json(render(&master)).into_response())
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct TransferQuery {
    to: Option<String>,
}

pub(crate) async fn transfer(
    State(master): State<Master>,
    Query(query): Query<TransferQuery>,
) -> Result<Response, ApiError> {
    master.redirect_if_follower()?;
    let Some(to) = query.to else {
        return Err(ApiError::bad_request("to", "give the node id of the master to lead"));
    };
    let to = parse_node_id("to", &to)?;
    let outcome = master
        .node()
        .transfer_leadership(to)
        .await
        .map_err(|error| change_error(&master, error, "to"))?;
    let (from, term) = match outcome {
        TransferOutcome::Transferred { from, term, .. } => (from, term),
        TransferOutcome::AlreadyLeader { node_id, term } => (node_id, term),
        TransferOutcome::MovedElsewhere { to: elected, term } => {
            return Err(ApiError::Unfinished(format!(
                "master {elected} won the election in term {term} before master {to} stood; ask again to move leadership on to {to}"
            )))
        }
    };
    tracing::info!(from, to, term, by = ?caller(), "leadership transferred");
    let leader_address = master.node().status().leader_address;
    Ok(Json(json!({"from": from, "leader": to, "leader_address": leader_address, "term": term}))
        .into_response())
}

/// Who asked, for the log line: membership is Raft's, not a command, so the journal does not
/// record it.
fn caller() -> Option<String> {
    crate::auth::current_caller().and_then(|caller| caller.identity)
}

fn render(master: &Master) -> Value {
    let status = master.node().status();
    let members: Vec<Value> = master.node().members().iter().map(member_json).collect();
    json!({
        "node_id": status.node_id,
        "leader": status.leader,
        "leader_address": status.leader_address,
        "term": status.term,
        "members": members,
    })
}

fn member_json(member: &Member) -> Value {
    json!({
        "node_id": member.node_id,
        "address": member.address,
        "role": member.role.as_str(),
        "up": member.up,
        "silent_ms": member.silent_for.map(|silent| u64::try_from(silent.as_millis()).unwrap_or(u64::MAX)),
        "matched_index": member.matched_index,
        "lag": member.lag,
    })
}

fn parse_node_id(field: &str, text: &str) -> Result<NodeId, ApiError> {
    match text.trim().parse::<NodeId>() {
        Ok(0) | Err(_) => {
            Err(ApiError::bad_request(field, format!("'{text}' is not a positive node id")))
        }
        Ok(node_id) => Ok(node_id),
    }
}

fn parse_member(body: &[u8]) -> Result<(NodeId, String), ApiError> {
    let fields: serde_json::Map<String, Value> = serde_json::from_slice(body)
        .map_err(|error| ApiError::bad_request("body", format!("not a JSON object: {error}")))?;
    let node_id = match fields.get("node_id") {
        Some(Value::Number(number)) => parse_node_id("node_id", &number.to_string())?,
        Some(other) => {
            return Err(ApiError::bad_request(
                "node_id",
                format!("{other} is not a positive node id"),
            ))
        }
        None => return Err(ApiError::bad_request("node_id", "missing")),
    };
    let Some(address) = fields.get("address") else {
        return Err(ApiError::bad_request("address", "missing"));
    };
    let Some(address) = address.as_str() else {
        return Err(ApiError::bad_request("address", format!("{address} is not 'host:port'")));
    };
    let port = address.rsplit_once(':').map(|(host, port)| (host.is_empty(), port.parse::<u16>()));
    if !matches!(port, Some((false, Ok(port))) if port > 0) {
        return Err(ApiError::bad_request(
            "address",
            format!("'{address}' is not 'host:port' with a port from 1 to 65535"),
        ));
    }
    if let Some(unknown) = fields.keys().find(|key| !matches!(key.as_str(), "node_id" | "address"))
    {
        return Err(ApiError::bad_request(unknown, "unknown field"));
    }
    Ok((node_id, address.to_owned()))
}

/// `field` is what the request called the master the refusal is about.
fn change_error(master: &Master, error: ChangeError, field: &str) -> ApiError {
    match error {
        ChangeError::Refused(refusal) => {
            let field = match refusal {
                Refusal::AddressTaken { .. } | Refusal::AddressMismatch { .. } => refusal.field(),
                _ => field,
            };
            let problem = refusal.to_string();
            if refusal.is_unknown() {
                return ApiError::Unknown { field: field.to_owned(), problem };
            }
            ApiError::Conflict { field: field.to_owned(), problem }
        }
        // openraft's own refusals: another change still in progress, say.
        ChangeError::Log(LogError::Membership(problem)) => {
            ApiError::Conflict { field: field.to_owned(), problem }
        }
        ChangeError::Log(error) => master.log_error(error),
        ChangeError::Unfinished(problem) => ApiError::Unfinished(problem),
    }
}

pub(crate) fn router() -> Router<Master> {
    Router::new()
        .route("/corral/v1/members", get(list).post(add))
        .route("/corral/v1/members/{node_id}", delete(remove))
        .route("/corral/v1/leader/transfer", post(transfer))
}
