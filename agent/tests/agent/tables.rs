//! The agent's bounded memory of tasks, and the bounded cardinality of its per-task series.

use corral_agent::metrics::{AgentMetrics, MAX_TASK_SERIES};
use corral_agent::tasks::{StatusRecord, TaskRecord, TaskTable, MAX_COMPLETED_TASKS};
use corral_agent::usage::UsageSample;
use corral_state::model::TaskState;
use corral_state::{FrameworkId, Timestamp};

use crate::support::shell_task;

fn record(task_id: &str, state: TaskState) -> TaskRecord {
    TaskRecord::new(
        FrameworkId::new("fw"),
        shell_task(task_id, "cpus:0.1;mem:32", "true"),
        None,
        std::path::PathBuf::from(format!("/sandboxes/fw/{task_id}")),
        state,
    )
}

fn sample() -> UsageSample {
    UsageSample {
        timestamp: 1.0,
        cpus_user_time_secs: 2.0,
        cpus_system_time_secs: 1.0,
        cpus_limit: Some(0.1),
        mem_rss_bytes: 4096,
        mem_total_bytes: None,
        mem_limit_bytes: Some(32 << 20),
    }
}

#[test]
fn a_terminal_status_moves_a_task_to_the_completed_list_which_keeps_the_newest() {
    let table = TaskTable::new();
    for index in 0..MAX_COMPLETED_TASKS + 5 {
        let task_id = format!("t{index:05}");
        table.insert(record(&task_id, TaskState::Running));
        let status =
            StatusRecord { state: TaskState::Finished, timestamp: Timestamp(1), healthy: None };
        table.record_status(&(FrameworkId::new("fw"), task_id.as_str().into()), status);
    }
    assert_eq!(table.live_count(), 0);
    let completed = table.completed();
    assert_eq!(completed.len(), MAX_COMPLETED_TASKS);
    assert_eq!(completed[0].info.task_id.as_str(), "t00005", "the oldest are forgotten first");
    assert_eq!(completed.last().unwrap().state, TaskState::Finished);
}

#[test]
fn per_task_series_are_capped_and_what_is_left_out_is_counted() {
    let table = TaskTable::new();
    let total = MAX_TASK_SERIES + 7;
    for index in 0..total {
        let task_id = format!("t{index:05}");
        table.insert(record(&task_id, TaskState::Running));
        table.set_usage(&(FrameworkId::new("fw"), task_id.as_str().into()), sample());
    }
    let text = AgentMetrics::new().expect("metrics").render(&table).expect("render");
    let series = |name: &str| text.lines().filter(|line| line.starts_with(name)).count();
    assert_eq!(series("corral_task_cpu_seconds_total{"), MAX_TASK_SERIES);
    assert_eq!(series("corral_task_memory_rss_bytes{"), MAX_TASK_SERIES);
    assert_eq!(series("corral_task_memory_limit_bytes{"), MAX_TASK_SERIES);
    assert!(text.contains("corral_agent_task_usage_dropped_tasks 7\n"), "{text}");
    // The oldest tasks keep their series.
    assert!(text.contains("task_id=\"t00000\"} 3\n"));
    assert!(!text.contains(&format!("task_id=\"t{:05}\"", total - 1)));
    let running =
        format!("corral_agent_tasks{{containerizer=\"process\",state=\"TASK_RUNNING\"}} {total}\n");
    assert!(text.contains(&running), "{text}");
}
