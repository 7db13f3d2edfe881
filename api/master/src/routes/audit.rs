//! Audit and time travel, answered by whichever master is asked from its own journal (no
//! redirect: every master journals the same entries):
//!
//! - `GET /corral/v1/history?task=ID` (or `agent=`, `framework=`, `app=`, `role=`,
//!   `operator=`, `deployment=`), optional `from=`/`to=` (a cursor `INDEX[-SEQ]` or an RFC 3339 time),
//!   `limit=` (default 10,000), `format=ndjson`: every command that touched the entity and
//!   the events about it, oldest first. 404 naming the parameter for an entity the journal
//!   never saw; 410 naming the oldest cursor for a `from` older than the journal keeps.
//! - `GET /corral/v1/state?at=INDEX` or `?time=RFC3339|EPOCH` (the latest applied without
//!   either): the cluster right after that entry, in the v0 `/master/state` shape, or with
//!   `format=v1` as the operator API's `GET_STATE` response. The body's `corral_state` and
//!   the header `Corral-State-Index` name the index and time it answers for.
//! - `GET /corral/v1/diff?from=A&to=B`: agents, frameworks, tasks, apps and roles added,
//!   removed and changed from right after A to right after B, each with the index that
//!   last touched it.
//! - `GET /corral/v1/commands?from=&to=&actor=&type=&outcome=`: the command trail as NDJSON,
//!   streamed from the journal as it is read (`actor` is `leader`, `operator:NAME`,
//!   `framework:ID` or `agent:ID`; `type` a command kind; `outcome` `accepted`, `rejected`
//!   or `duplicate`).
//!
//! A time in the future, `to` before `from`, an unknown `format` or a malformed cursor is a
//! 400 naming the parameter; an index beyond the last applied one is a 404 naming it.
//!
//! With access control (`read_api` on `history` first, in the middleware): a past state is
//! filtered by today's `view_*` rules (`Master::visible_past`); `history`, `diff` and
//! `commands` carry whatever the cluster held, so they need every `view_*` rule to allow any
//! object (decided with `read_api` by the middleware: `auth::route_views`), as the
//! explanations do.

use axum::extract::{Query, State};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use corral_log::{ActorFilter, AuditError, CommandRecord, DiffRecord, RecordJson, TrailFilter};
use corral_state::{Cursor, Entity, EntityKind, Timestamp};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::master::{wall_clock, Master};
use crate::stream::{channel_body, ndjson_response};

/// The header naming the log index a state answers for.
pub(crate) const STATE_INDEX_HEADER: &str = "corral-state-index";

const DEFAULT_HISTORY_LIMIT: usize = 10_000;
const MAX_HISTORY_LIMIT: usize = 100_000;
/// NDJSON lines gathered into one chunk of the streamed trail.
const TRAIL_CHUNK_BYTES: usize = 64 * 1024;

/// An `AuditError` as the client sees it; `parameter` is the one the question hinged on.
pub(crate) fn audit_error(error: AuditError, parameter: &str) -> ApiError {
    match error {
        AuditError::TooOld { what, oldest } => ApiError::Gone {
            field: parameter.to_owned(),
            problem: format!("{what} is older than this master's journal keeps"),
            oldest: oldest.to_string(),
        },
        AuditError::Beyond { asked, last } => ApiError::Missing {
            field: parameter.to_owned(),
            problem: format!("index {asked} is beyond the last applied index {last}"),
        },
        AuditError::Invalid { parameter, problem } => ApiError::bad_request(parameter, problem),
        AuditError::Journal(error) => ApiError::Internal(format!("journal: {error}")),
        AuditError::Failed(problem) => ApiError::Internal(problem),
    }
}

/// Runs journal work on a blocking thread.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| ApiError::Internal(format!("audit work stopped: {error}")))?
}

/// A point in the log as a query gives it: a cursor or a time.
#[derive(Clone, Copy, Debug)]
enum Point {
    Index(u64),
    Time(Timestamp),
}

fn parse_point(parameter: &str, text: &str) -> Result<Point, ApiError> {
    if text.contains(['T', 't', ':']) {
        return Timestamp::parse(text)
            .map(Point::Time)
            .map_err(|problem| ApiError::bad_request(parameter, problem));
    }
    let cursor: Cursor = text.parse().map_err(|problem: String| {
        ApiError::bad_request(parameter, format!("{problem} nor an RFC 3339 time"))
    })?;
    Ok(Point::Index(cursor.index))
}

fn parse_time(parameter: &str, text: &str) -> Result<Timestamp, ApiError> {
    Timestamp::parse(text).map_err(|problem| ApiError::bad_request(parameter, problem))
}

/// The log index a point stands for on this master.
fn resolve(master: &Master, parameter: &str, point: Point) -> Result<u64, ApiError> {
    let applied = master.node().applied_index();
    match point {
        Point::Index(index) if index > applied => Err(ApiError::Missing {
            field: parameter.to_owned(),
            problem: format!("index {index} is beyond the last applied index {applied}"),
        }),
        Point::Index(index) => Ok(index),
        Point::Time(at) => {
            if at > wall_clock() {
                return Err(ApiError::bad_request(
                    parameter,
                    format!("{} is in the future", at.to_rfc3339()),
                ));
            }
            master.node().journal().index_at(at).map_err(|error| audit_error(error, parameter))
        }
    }
}

/// One command as history and the trail show it (the shape is `RecordJson`'s).
pub(crate) fn record_json(record: &CommandRecord) -> Value {
    serde_json::to_value(RecordJson(record))
        .expect("a record serializes: its command and events reached the log as JSON-shaped values")
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct HistoryQuery {
    task: Option<String>,
    agent: Option<String>,
    framework: Option<String>,
    app: Option<String>,
    role: Option<String>,
    operator: Option<String>,
    deployment: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<String>,
    format: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ListFormat {
    Json,
    Ndjson,
}

fn list_format(format: Option<&str>) -> Result<ListFormat, ApiError> {
    match format {
        None | Some("json") => Ok(ListFormat::Json),
        Some("ndjson") => Ok(ListFormat::Ndjson),
        Some(other) => {
            Err(ApiError::bad_request("format", format!("'{other}' is not 'json' or 'ndjson'")))
        }
    }
}

impl HistoryQuery {
    fn entity(&self) -> Result<Entity, ApiError> {
        let given: Vec<(EntityKind, &String)> = [
            (EntityKind::Task, &self.task),
            (EntityKind::Agent, &self.agent),
            (EntityKind::Framework, &self.framework),
            (EntityKind::App, &self.app),
            (EntityKind::Role, &self.role),
            (EntityKind::Operator, &self.operator),
            (EntityKind::Deployment, &self.deployment),
        ]
        .into_iter()
        .filter_map(|(kind, id)| id.as_ref().map(|id| (kind, id)))
        .collect();
        match given[..] {
            [(kind, id)] if !id.is_empty() => Ok(Entity::new(kind, id.as_str())),
            [(kind, _)] => Err(ApiError::bad_request(kind.as_str(), "must not be empty")),
            _ => Err(ApiError::bad_request(
                "task",
                "give exactly one of task, agent, framework, app, role, operator or deployment",
            )),
        }
    }
}

/// `from`/`to` as an index range; `to` before `from` is refused.
fn range(
    master: &Master,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(Option<u64>, u64), ApiError> {
    let from = from.map(|text| parse_point("from", text)).transpose()?;
    let to = to.map(|text| parse_point("to", text)).transpose()?;
    let from = from.map(|point| resolve(master, "from", point)).transpose()?;
    let to = match to {
        Some(point) => resolve(master, "to", point)?,
        None => master.node().applied_index(),
    };
    if let Some(from) = from.filter(|from| *from > to) {
        return Err(ApiError::bad_request("to", format!("index {to} is before from ({from})")));
    }
    Ok((from, to))
}

pub(crate) async fn history(
    State(master): State<Master>,
    Query(query): Query<HistoryQuery>,
) -> Result<Response, ApiError> {
    let entity = query.entity()?;
    let format = list_format(query.format.as_deref())?;
    let limit = match query.limit.as_deref() {
        None => DEFAULT_HISTORY_LIMIT,
        Some(text) => match text.parse::<usize>() {
            Ok(limit) if (1..=MAX_HISTORY_LIMIT).contains(&limit) => limit,
            _ => {
                return Err(ApiError::bad_request(
                    "limit",
                    format!("'{text}' is not a number from 1 to {MAX_HISTORY_LIMIT}"),
                ))
            }
        },
    };
    let (from, to) = range(&master, query.from.as_deref(), query.to.as_deref())?;
    let journal = master.node().journal().clone();
    let records = blocking(move || {
        let parameter = entity.kind.as_str();
        // Without `from`, history starts where the audit trail does.
        let from = from.unwrap_or_else(|| journal.audit_start());
        if journal.indexes_of(&entity, 0..=u64::MAX).next().is_none() {
            return Err(ApiError::Missing {
                field: parameter.to_owned(),
                problem: format!("no {entity} in this master's journal"),
            });
        }
        journal.history(&entity, from..=to, limit).map_err(|error| audit_error(error, "from"))
    })
    .await?;
    let lines = records.iter().map(record_json);
    Ok(match format {
        ListFormat::Json => Json(Value::Array(lines.collect())).into_response(),
        ListFormat::Ndjson => {
            let body: String = lines.map(|line| format!("{line}\n")).collect();
            ndjson_response(body)
        }
    })
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct StateQuery {
    at: Option<String>,
    time: Option<String>,
    format: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum StateFormat {
    V0,
    V1,
}

pub(crate) async fn state(
    State(master): State<Master>,
    Query(query): Query<StateQuery>,
) -> Result<Response, ApiError> {
    let format = match query.format.as_deref() {
        None | Some("v0") => StateFormat::V0,
        Some("v1") => StateFormat::V1,
        Some(other) => {
            return Err(ApiError::bad_request("format", format!("'{other}' is not 'v0' or 'v1'")))
        }
    };
    let (parameter, index) = match (&query.at, &query.time) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request("at", "give at or time, not both"));
        }
        (Some(at), None) => ("at", resolve(&master, "at", parse_point("at", at)?)?),
        (None, Some(time)) => {
            ("time", resolve(&master, "time", Point::Time(parse_time("time", time)?))?)
        }
        (None, None) => ("at", master.node().applied_index()),
    };
    let state =
        master.node().state_at(index).await.map_err(|error| audit_error(error, parameter))?;
    let state = master.visible_past(state).await?;
    let answers_for = json!({
        "index": index,
        "time": state.now().to_rfc3339(),
        "epoch": state.now().as_secs_f64(),
        "digest": state.digest().to_string(),
    });
    let info = master.master_info();
    let body = blocking(move || {
        Ok(match format {
            StateFormat::V0 => {
                let mut extra = serde_json::Map::new();
                extra.insert("id".into(), info["id"].clone());
                extra.insert("hostname".into(), info["hostname"].clone());
                extra.insert("log_index".into(), json!(index));
                let mut body = corral_mesos::v0::master_state(&state, &extra);
                body["corral_state"] = answers_for;
                body
            }
            StateFormat::V1 => json!({
                "type": "GET_STATE",
                "get_state": corral_mesos::operator::get_state(&state),
                "corral_state": answers_for,
            }),
        })
    })
    .await?;
    let mut response = Json(body).into_response();
    response.headers_mut().insert(STATE_INDEX_HEADER, HeaderValue::from(index));
    Ok(response)
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct DiffQuery {
    from: Option<String>,
    to: Option<String>,
}

pub(crate) fn diff_json(from: u64, to: u64, records: &[DiffRecord]) -> Value {
    let mut body = json!({"from": from, "to": to});
    for kind in [
        EntityKind::Agent,
        EntityKind::Framework,
        EntityKind::Task,
        EntityKind::App,
        EntityKind::Role,
    ] {
        let mut section = json!({"added": [], "removed": [], "changed": []});
        for record in records.iter().filter(|record| record.change.entity.kind == kind) {
            let list = &mut section[record.change.change.as_str()];
            if let Some(list) = list.as_array_mut() {
                list.push(json!({
                    "id": record.change.entity.id.as_str(),
                    "index": record.index,
                }));
            }
        }
        body[format!("{}s", kind.as_str())] = section;
    }
    body
}

pub(crate) async fn diff(
    State(master): State<Master>,
    Query(query): Query<DiffQuery>,
) -> Result<Response, ApiError> {
    let (Some(from), Some(to)) = (query.from.as_deref(), query.to.as_deref()) else {
        let missing = if query.from.is_none() { "from" } else { "to" };
        return Err(ApiError::bad_request(missing, "required: a cursor or an RFC 3339 time"));
    };
    let (from, to) = range(&master, Some(from), Some(to))?;
    let from = from.expect("range returns the from it was given");
    let records = master.node().diff(from, to).await.map_err(|error| audit_error(error, "from"))?;
    Ok(Json(diff_json(from, to, &records)).into_response())
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct CommandsQuery {
    from: Option<String>,
    to: Option<String>,
    actor: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    outcome: Option<String>,
}

fn parse_actor(text: &str) -> Result<ActorFilter, ApiError> {
    if text == "leader" {
        return Ok(ActorFilter::Leader);
    }
    let problem =
        || format!("'{text}' is not 'leader', 'operator:NAME', 'framework:ID' or 'agent:ID'");
    let (kind, id) =
        text.split_once(':').ok_or_else(|| ApiError::bad_request("actor", problem()))?;
    match EntityKind::parse(kind) {
        Ok(kind @ (EntityKind::Operator | EntityKind::Framework | EntityKind::Agent))
            if !id.is_empty() =>
        {
            Ok(ActorFilter::Is(Entity::new(kind, id)))
        }
        _ => Err(ApiError::bad_request("actor", problem())),
    }
}

pub(crate) async fn commands(
    State(master): State<Master>,
    Query(query): Query<CommandsQuery>,
) -> Result<Response, ApiError> {
    let actor = query.actor.as_deref().map(parse_actor).transpose()?;
    if let Some(outcome) =
        query.outcome.as_deref().filter(|o| !["accepted", "rejected", "duplicate"].contains(o))
    {
        return Err(ApiError::bad_request(
            "outcome",
            format!("'{outcome}' is not 'accepted', 'rejected' or 'duplicate'"),
        ));
    }
    let filter = TrailFilter { actor, kind: query.kind.clone(), outcome: query.outcome.clone() };
    let (from, to) = range(&master, query.from.as_deref(), query.to.as_deref())?;
    let journal = master.node().journal().clone();
    let from = from.unwrap_or_else(|| journal.audit_start());
    // Refused before the stream starts, so a too-old `from` is a 410, not a broken stream.
    drop(journal.trail(from..=to, filter.clone()).map_err(|error| audit_error(error, "from"))?);
    let (sender, body) = channel_body();
    tokio::task::spawn_blocking(move || {
        let trail = match journal.trail(from..=to, filter) {
            Ok(trail) => trail,
            Err(error) => {
                tracing::error!(%error, "the command trail could not start");
                return;
            }
        };
        let mut chunk = Vec::with_capacity(TRAIL_CHUNK_BYTES + TRAIL_CHUNK_BYTES / 4);
        for record in trail {
            // Each line is written straight into the chunk: no `Value` per command, no serde
            // map (the audit bench's export times this very call).
            let written = record.map_err(|error| error.to_string()).and_then(|record| {
                RecordJson(&record).write_line(&mut chunk).map_err(|error| {
                    format!("command at {} does not serialize: {error}", record.cursor)
                })
            });
            if let Err(error) = written {
                // The client sees the stream end with the reason, and the log says why.
                tracing::error!(%error, "the command trail stopped");
                chunk.extend_from_slice(
                    json!({"error": "internal", "message": "the trail stopped; the master's log has the cause"})
                        .to_string()
                        .as_bytes(),
                );
                chunk.push(b'\n');
                let _ = sender.blocking_send(Bytes::from(std::mem::take(&mut chunk)));
                return;
            }
            chunk.push(b'\n');
            if chunk.len() >= TRAIL_CHUNK_BYTES
                && sender
                    .blocking_send(Bytes::from(std::mem::replace(
                        &mut chunk,
                        Vec::with_capacity(TRAIL_CHUNK_BYTES + TRAIL_CHUNK_BYTES / 4),
                    )))
                    .is_err()
            {
                return;
            }
        }
        if !chunk.is_empty() {
            let _ = sender.blocking_send(Bytes::from(chunk));
        }
    });
    Ok(ndjson_response(body))
}

/// `/corral/v1/history`, `/corral/v1/state`, `/corral/v1/diff`, `/corral/v1/commands`.
pub(crate) fn router() -> Router<Master> {
    Router::new()
        .route("/corral/v1/history", get(history))
        .route("/corral/v1/state", get(state))
        .route("/corral/v1/diff", get(diff))
        .route("/corral/v1/commands", get(commands))
}
