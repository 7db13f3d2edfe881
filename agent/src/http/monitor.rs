//! `GET /monitor/statistics`: the latest usage sample of every live task, in the Mesos
//! agent's shape, one entry per task (a command task is its own executor).

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::AgentApi;

pub async fn statistics(State(api): State<AgentApi>) -> Json<Vec<Value>> {
    let entries = api
        .tasks()
        .live()
        .into_iter()
        .filter_map(|record| {
            let usage = record.usage?;
            let executor_name = match &record.info.executor {
                Some(executor) => executor.name.clone().unwrap_or_default(),
                None => format!("Command Executor (Task: {})", record.info.task_id),
            };
            Some(json!({
                "executor_id": record.executor_id().as_str(),
                "executor_name": executor_name,
                "framework_id": record.framework_id.as_str(),
                "source": record.info.task_id.as_str(),
                "statistics": usage,
            }))
        })
        .collect();
    Json(entries)
}
