//! `corral history`, `corral state`, `corral diff`, `corral explain`: the audit API of one
//! master as tables (or the JSON it answered, with `--json`).

use anyhow::Context;
use corral_client::AuditClient;
use serde_json::Value;

use crate::Output;

/// Lines of left-aligned columns, two spaces apart.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|header| header.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let padded: Vec<String> =
            cells.iter().zip(&widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

fn actor(value: &Value) -> String {
    match value["id"].as_str() {
        Some(id) => format!("{} {id}", text(&value["kind"])),
        None => text(&value["kind"]),
    }
}

fn print_json(value: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value).context("rendering JSON")?);
    Ok(())
}

pub(crate) fn history_table(records: &[Value]) -> String {
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|record| {
            let detail = match record["reason"].as_str() {
                Some(reason) => reason.to_owned(),
                None => record["events"]
                    .as_array()
                    .map(|events| {
                        events
                            .iter()
                            .map(|event| text(&event["kind"]))
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default(),
            };
            vec![
                text(&record["cursor"]),
                text(&record["time"]),
                actor(&record["actor"]),
                text(&record["command"]),
                text(&record["outcome"]),
                detail,
            ]
        })
        .collect();
    table(&["CURSOR", "TIME", "ACTOR", "COMMAND", "OUTCOME", "EVENTS / REASON"], &rows)
}

pub(crate) async fn history(
    client: &AuditClient,
    kind: &str,
    id: &str,
    range: (Option<&str>, Option<&str>),
    output: Output,
) -> anyhow::Result<()> {
    let records = client.history(kind, id, range.0, range.1).await?;
    if output == Output::Json {
        return print_json(&records);
    }
    let records = records.as_array().context("history is not a JSON array")?;
    print!("{}", history_table(records));
    Ok(())
}

/// The v0 state document as tables: what it answers for, agents, frameworks, tasks.
pub(crate) fn state_tables(state: &Value) -> String {
    let answers = &state["corral_state"];
    let mut out = format!(
        "state at index {} ({}), digest {}\n\n",
        text(&answers["index"]),
        text(&answers["time"]),
        text(&answers["digest"])
    );
    let agents: Vec<Vec<String>> = state["slaves"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|agent| vec![text(&agent["id"]), text(&agent["hostname"]), text(&agent["active"])])
        .collect();
    out.push_str(&table(&["AGENT", "HOSTNAME", "ACTIVE"], &agents));
    let frameworks = state["frameworks"].as_array().into_iter().flatten();
    let framework_rows: Vec<Vec<String>> = frameworks
        .clone()
        .map(|framework| {
            vec![text(&framework["id"]), text(&framework["name"]), text(&framework["active"])]
        })
        .collect();
    out.push('\n');
    out.push_str(&table(&["FRAMEWORK", "NAME", "ACTIVE"], &framework_rows));
    let tasks: Vec<Vec<String>> = frameworks
        .flat_map(|framework| framework["tasks"].as_array().into_iter().flatten())
        .map(|task| {
            vec![
                text(&task["id"]),
                text(&task["framework_id"]),
                text(&task["slave_id"]),
                text(&task["state"]),
            ]
        })
        .collect();
    out.push('\n');
    out.push_str(&table(&["TASK", "FRAMEWORK", "AGENT", "STATE"], &tasks));
    out
}

pub(crate) async fn state(
    client: &AuditClient,
    at: Option<&str>,
    output: Output,
) -> anyhow::Result<()> {
    let state = client.state(at, None).await?;
    match output {
        Output::Json => print_json(&state),
        Output::Table => {
            print!("{}", state_tables(&state));
            Ok(())
        }
    }
}

pub(crate) fn diff_table(diff: &Value) -> String {
    let mut rows = Vec::new();
    for kind in ["agents", "frameworks", "tasks", "apps", "roles"] {
        for change in ["added", "removed", "changed"] {
            for item in diff[kind][change].as_array().into_iter().flatten() {
                rows.push(vec![
                    kind.trim_end_matches('s').to_owned(),
                    change.to_owned(),
                    text(&item["id"]),
                    text(&item["index"]),
                ]);
            }
        }
    }
    format!(
        "from index {} to {}\n{}",
        text(&diff["from"]),
        text(&diff["to"]),
        table(&["KIND", "CHANGE", "ID", "AT INDEX"], &rows)
    )
}

pub(crate) async fn diff(
    client: &AuditClient,
    from: &str,
    to: &str,
    output: Output,
) -> anyhow::Result<()> {
    let diff = client.diff(from, to).await?;
    match output {
        Output::Json => print_json(&diff),
        Output::Table => {
            print!("{}", diff_table(&diff));
            Ok(())
        }
    }
}

/// An explanation as a list of steps: what happened, when, who, and why.
pub(crate) fn explain_table(explanation: &Value) -> String {
    let mut out = String::new();
    if let Some(summary) = explanation["summary"].as_str() {
        out.push_str(summary);
        out.push_str("\n\n");
    }
    let rows: Vec<Vec<String>> = explanation["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|step| {
            vec![
                text(&step["cursor"]),
                text(&step["time"]),
                text(&step["step"]),
                actor(&step["actor"]),
                text(&step["why"]),
            ]
        })
        .collect();
    out.push_str(&table(&["CURSOR", "TIME", "STEP", "BY", "WHY"], &rows));
    out
}

pub(crate) async fn explain(
    client: &AuditClient,
    what: ExplainWhat<'_>,
    output: Output,
) -> anyhow::Result<()> {
    let explanation = match what {
        ExplainWhat::Task(id) => client.explain_task(id).await?,
        ExplainWhat::Deployment(id) => client.explain_deployment(id).await?,
    };
    match output {
        Output::Json => print_json(&explanation),
        Output::Table => {
            print!("{}", explain_table(&explanation));
            Ok(())
        }
    }
}

pub(crate) enum ExplainWhat<'a> {
    Task(&'a str),
    Deployment(&'a str),
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{diff_table, history_table, table};

    #[test]
    fn tables_align_their_columns() {
        let rows =
            vec![vec!["a".to_owned(), "bbb".to_owned()], vec!["cc".to_owned(), "d".to_owned()]];
        assert_eq!(table(&["X", "Y"], &rows), "X   Y\na   bbb\ncc  d\n");
    }

    #[test]
    fn history_rows_show_the_reason_or_the_events() {
        let records = vec![
            json!({"cursor": "7-0", "time": "2026-11-30T03:12:00Z", "actor": {"kind": "operator", "id": "alice"},
                   "command": "kill", "outcome": "rejected", "reason": "unknown task t9"}),
            json!({"cursor": "8-0", "time": "2026-11-30T03:12:01Z", "actor": {"kind": "leader"},
                   "command": "tick", "outcome": "accepted", "events": [{"kind": "task_updated"}]}),
        ];
        let text = history_table(&records);
        assert!(text.contains("operator alice  kill"), "{text}");
        assert!(text.contains("unknown task t9"), "{text}");
        assert!(text.contains("leader          tick     accepted  task_updated"), "{text}");
    }

    #[test]
    fn diff_rows_name_kind_change_and_index() {
        let diff = json!({"from": 3, "to": 9, "tasks": {"added": [{"id": "t1", "index": 5}], "removed": [], "changed": []}});
        assert_eq!(
            diff_table(&diff),
            "from index 3 to 9\nKIND  CHANGE  ID  AT INDEX\ntask  added   t1  5\n"
        );
    }
}
