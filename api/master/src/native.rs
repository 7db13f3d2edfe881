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

#[cfg(test)]
mod tests {
    use super::*;
    use corral_state::Event;
    #[test]
    fn sse_frames_carry_the_cursor_as_id() {
        let event = Event::AgentUnreachable { agent_id: "corral-S1".into() };
        let frame = sse_frame(Cursor::new(12, 3), &event);
        assert!(frame.starts_with("id: 12-3\nevent: agent_unreachable\ndata: {"), "{frame}");
        assert!(frame.ends_with("}\n\n"));
        let line = ndjson_line(Cursor::new(12, 3), &event);
        let parsed: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(parsed["cursor"], "12-3");
        assert_eq!(parsed["topic"], "agent");
        assert_eq!(parsed["event"]["AgentUnreachable"]["agent_id"], "corral-S1");
    }

    #[test]
    fn topics_and_cursors_parse_with_clear_errors() {
        assert_eq!(parse_topics(None).unwrap().len(), Topic::ALL.len());
        assert_eq!(
            parse_topics(Some("task, agent")).unwrap().into_iter().collect::<Vec<_>>(),
            vec![Topic::Agent, Topic::Task]
        );
        match parse_topics(Some("task,weather")) {
            Err(ApiError::BadRequest { field, problem }) => {
                assert_eq!(field, "topic");
                assert!(problem.contains("unknown topic 'weather'"), "{problem}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(resume_cursor(Some("9-1"), Some("3-0")).unwrap(), Cursor::new(9, 1));
        assert_eq!(resume_cursor(None, Some("3")).unwrap(), Cursor::new(3, 0));
        assert_eq!(resume_cursor(None, None).unwrap(), Cursor::START);
        assert!(
            matches!(resume_cursor(Some("later"), None), Err(ApiError::BadRequest { field, .. }) if field == "Last-Event-ID")
        );
    }
}
