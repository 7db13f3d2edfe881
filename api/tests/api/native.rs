use corral_api::error::ApiError;
use corral_api::native::{ndjson_line, parse_topics, resume_cursor, sse_frame};
use corral_state::{Cursor, Event, Topic};

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
