//! Tasks launched through offers across faults: no task id runs twice, every status update
//! the log accepted reaches the framework, and (from the journal, at every applied index) no
//! agent is over-committed and no app runs more instances than its limits allow.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::Violation;

/// A status update as the framework received it on its stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Received {
    pub task_id: String,
    pub state: String,
    pub agent_id: String,
    pub uuid: Option<String>,
}

/// What the journal says about the framework's tasks.
#[derive(Clone, Debug, Default, Serialize)]
pub struct JournalTasks {
    /// How many times each task id was launched (`TaskAdded`).
    pub launches: BTreeMap<String, u32>,
    /// Every status update with a uuid the log accepted for the framework's tasks:
    /// (task id, state, uuid).
    pub updates: Vec<(String, String, String)>,
}

/// Whether the framework can stop counting the task as live (TASK_LOST and TASK_UNREACHABLE
/// included: the task may come back, but the framework no longer relies on it).
pub fn ends(state: &str) -> bool {
    is_terminal(state) || matches!(state, "TASK_LOST" | "TASK_UNREACHABLE")
}

fn is_terminal(state: &str) -> bool {
    matches!(
        state,
        "TASK_FINISHED"
            | "TASK_FAILED"
            | "TASK_KILLED"
            | "TASK_ERROR"
            | "TASK_DROPPED"
            | "TASK_GONE"
            | "TASK_GONE_BY_OPERATOR"
    )
}

pub fn check(received: &[Received], journal: &JournalTasks) -> Vec<Violation> {
    let mut violations = Vec::new();
    for (task_id, launches) in &journal.launches {
        if *launches > 1 {
            violations.push(Violation::new(
                "tasks",
                format!("task {task_id} was launched {launches} times"),
            ));
        }
    }
    // Updates are re-sent until acknowledged: only the first delivery of each uuid counts.
    let mut seen_uuids = BTreeSet::new();
    let mut agent_of: BTreeMap<&str, &str> = BTreeMap::new();
    let mut ended: BTreeMap<&str, &str> = BTreeMap::new();
    for update in received {
        if let Some(uuid) = &update.uuid {
            if !seen_uuids.insert(uuid.as_str()) {
                continue;
            }
        }
        let agent = agent_of.entry(update.task_id.as_str()).or_insert(update.agent_id.as_str());
        if *agent != update.agent_id {
            violations.push(Violation::new(
                "tasks",
                format!(
                    "task {} runs twice: on agent {} and on agent {}",
                    update.task_id, agent, update.agent_id
                ),
            ));
        }
        if let Some(terminal) = ended.get(update.task_id.as_str()) {
            if !is_terminal(&update.state) && update.uuid.is_some() {
                violations.push(Violation::new(
                    "tasks",
                    format!(
                        "task {} is {} after it ended {terminal}",
                        update.task_id, update.state
                    ),
                ));
            }
        }
        if is_terminal(&update.state) {
            ended.insert(update.task_id.as_str(), update.state.as_str());
        }
    }
    let lost: Vec<&(String, String, String)> =
        journal.updates.iter().filter(|(_, _, uuid)| !seen_uuids.contains(uuid.as_str())).collect();
    if !lost.is_empty() {
        let first: Vec<String> = lost
            .iter()
            .take(10)
            .map(|(task, state, uuid)| format!("{task} {state} ({uuid})"))
            .collect();
        violations.push(Violation::new(
            "tasks",
            format!(
                "{} status updates in the log never reached the framework, first: {}",
                lost.len(),
                first.join(", ")
            ),
        ));
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::{check, JournalTasks, Received};

    fn update(task: &str, state: &str, agent: &str, uuid: &str) -> Received {
        Received {
            task_id: task.to_owned(),
            state: state.to_owned(),
            agent_id: agent.to_owned(),
            uuid: Some(uuid.to_owned()),
        }
    }

    fn journal(launches: &[(&str, u32)], updates: &[(&str, &str, &str)]) -> JournalTasks {
        JournalTasks {
            launches: launches.iter().map(|(task, count)| ((*task).to_owned(), *count)).collect(),
            updates: updates
                .iter()
                .map(|(task, state, uuid)| {
                    ((*task).to_owned(), (*state).to_owned(), (*uuid).to_owned())
                })
                .collect(),
        }
    }

    #[test]
    fn a_normal_life_with_a_redelivery_passes() {
        let received = [
            update("t1", "TASK_RUNNING", "a1", "u1"),
            update("t1", "TASK_FINISHED", "a1", "u2"),
            // Re-sent after a resubscription: the same uuid again.
            update("t1", "TASK_RUNNING", "a1", "u1"),
        ];
        let journal =
            journal(&[("t1", 1)], &[("t1", "TASK_RUNNING", "u1"), ("t1", "TASK_FINISHED", "u2")]);
        assert!(check(&received, &journal).is_empty());
    }

    #[test]
    fn a_duplicate_launch_is_reported() {
        let received = [
            update("t1", "TASK_RUNNING", "a1", "u1"),
            update("t1", "TASK_FINISHED", "a1", "u2"),
            update("t1", "TASK_RUNNING", "a2", "u3"),
        ];
        let violations = check(&received, &journal(&[("t1", 2)], &[]));
        let text: Vec<&str> = violations.iter().map(|v| v.what.as_str()).collect();
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(text[0].contains("launched 2 times"));
        assert!(text[1].contains("runs twice") && text[1].contains("a2"));
        assert!(text[2].contains("TASK_RUNNING after it ended TASK_FINISHED"));
    }

    #[test]
    fn an_update_the_framework_never_got_is_reported() {
        let received = [update("t1", "TASK_RUNNING", "a1", "u1")];
        let journal =
            journal(&[("t1", 1)], &[("t1", "TASK_RUNNING", "u1"), ("t1", "TASK_FAILED", "u2")]);
        let violations = check(&received, &journal);
        assert_eq!(violations.len(), 1);
        assert!(violations[0].what.contains("t1 TASK_FAILED (u2)"), "{}", violations[0].what);
    }
}
