//! The native event stream's wire forms: Server-Sent Events (`id:` is the cursor, so
//! `Last-Event-ID` resumes) and newline-delimited JSON.

use std::collections::BTreeSet;

use serde_json::{json, Value as Json};

use crate::error::ApiError;
use corral_state::{Cursor, Event, Topic};

/// One event as the native stream shows it.
pub fn event_json(cursor: Cursor, event: &Event) -> Json {
    json!({
        "cursor": cursor.to_string(),
        "topic": event.topic().as_str(),
        "kind": event.kind(),
        "event": event,
    })
}

pub fn sse_frame(cursor: Cursor, event: &Event) -> String {
    format!("id: {cursor}\nevent: {}\ndata: {}\n\n", event.kind(), event_json(cursor, event))
}

pub fn ndjson_line(cursor: Cursor, event: &Event) -> String {
    format!("{}\n", event_json(cursor, event))
}

/// `?topic=task,agent`; empty or absent means every topic.
pub fn parse_topics(text: Option<&str>) -> Result<BTreeSet<Topic>, ApiError> {
    let Some(text) = text.filter(|text| !text.trim().is_empty()) else {
        return Ok(Topic::ALL.into_iter().collect());
    };
    text.split(',')
        .map(|part| {
            Topic::parse(part.trim()).map_err(|problem| ApiError::bad_request("topic", problem))
        })
        .collect()
}

/// Where to resume: `Last-Event-ID` wins over `?from=`, as EventSource clients send it on
/// reconnect; neither means from the beginning.
pub fn resume_cursor(last_event_id: Option<&str>, from: Option<&str>) -> Result<Cursor, ApiError> {
    match (last_event_id, from) {
        (Some(id), _) => {
            id.parse().map_err(|problem| ApiError::bad_request("Last-Event-ID", problem))
        }
        (None, Some(from)) => {
            from.parse().map_err(|problem| ApiError::bad_request("from", problem))
        }
        (None, None) => Ok(Cursor::START),
    }
}
