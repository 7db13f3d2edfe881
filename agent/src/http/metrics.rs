//! `GET /metrics` (Prometheus text) and `GET /metrics/snapshot` (Mesos's JSON keys, so Mesos
//! exporters and monitoring agents read an agent unchanged).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use corral_state::model::TaskState;
use corral_state::Resources;

use super::error::ApiError;
use super::AgentApi;
use crate::metrics::AgentMetrics;

/// Mesos's keys per resource, in the resource's own unit (MB for mem and disk).
const RESOURCE_KEYS: [(&str, &str, &str, &str); 4] = [
    ("cpus", "slave/cpus_total", "slave/cpus_used", "slave/cpus_percent"),
    ("mem", "slave/mem_total", "slave/mem_used", "slave/mem_percent"),
    ("disk", "slave/disk_total", "slave/disk_used", "slave/disk_percent"),
    ("gpus", "slave/gpus_total", "slave/gpus_used", "slave/gpus_percent"),
];

pub async fn prometheus(State(api): State<AgentApi>) -> Result<Response, ApiError> {
    let text = api
        .metrics()
        .render(api.tasks())
        .map_err(|error| ApiError::Internal(format!("cannot render metrics: {error}")))?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

/// `GET /metrics/snapshot`: numbers under Mesos's agent keys. Task counts by terminal state
/// count since the agent started, as Mesos's do.
pub async fn snapshot(State(api): State<AgentApi>) -> Json<BTreeMap<&'static str, f64>> {
    let metrics = api.metrics();
    let live = api.tasks().live();
    let count_state = |state: TaskState| live.iter().filter(|task| task.state == state).count();
    let completed = |state: TaskState| {
        AgentMetrics::count(&metrics.tasks_completed, &[state.as_mesos_str()]) as f64
    };
    let mut used = Resources::new();
    for task in &live {
        used.add(&task.info.resources);
    }
    let total = &api.identity().resources;
    let mut executors: Vec<_> =
        live.iter().map(|task| (task.framework_id.clone(), task.executor_id())).collect();
    executors.sort();
    executors.dedup();
    let mut frameworks: Vec<_> = live.iter().map(|task| task.framework_id.clone()).collect();
    frameworks.sort();
    frameworks.dedup();
    let launch_errors: u64 = prometheus::core::Collector::collect(&metrics.launch_failures)
        .iter()
        .flat_map(|family| family.get_metric())
        .map(|metric| metric.get_counter().value() as u64)
        .sum();

    let mut values = BTreeMap::from([
        ("slave/registered", if api.agent_id().is_some() { 1.0 } else { 0.0 }),
        ("slave/uptime_secs", api.uptime().as_secs_f64()),
        ("slave/frameworks_active", frameworks.len() as f64),
        ("slave/tasks_staging", count_state(TaskState::Staging) as f64),
        ("slave/tasks_starting", count_state(TaskState::Starting) as f64),
        ("slave/tasks_running", count_state(TaskState::Running) as f64),
        ("slave/tasks_killing", count_state(TaskState::Killing) as f64),
        ("slave/tasks_finished", completed(TaskState::Finished)),
        ("slave/tasks_failed", completed(TaskState::Failed)),
        ("slave/tasks_killed", completed(TaskState::Killed)),
        ("slave/tasks_lost", completed(TaskState::Lost)),
        ("slave/tasks_error", completed(TaskState::Error)),
        ("slave/executors_running", executors.len() as f64),
        ("slave/executors_terminated", api.tasks().completed().len() as f64),
        ("slave/container_launch_errors", launch_errors as f64),
        (
            "slave/valid_status_updates",
            AgentMetrics::count(&metrics.status_updates, &["committed"]) as f64,
        ),
        (
            "slave/invalid_status_updates",
            AgentMetrics::count(&metrics.status_updates, &["rejected"]) as f64,
        ),
        ("system/cpus_total", std::thread::available_parallelism().map_or(0, |n| n.get()) as f64),
    ]);
    for (name, total_key, used_key, percent_key) in RESOURCE_KEYS {
        let total = total.scalar(name).as_f64();
        let used = used.scalar(name).as_f64();
        values.insert(total_key, total);
        values.insert(used_key, used);
        values.insert(percent_key, if total > 0.0 { used / total } else { 0.0 });
    }
    if let Some([one, five, fifteen]) = load_averages() {
        values.insert("system/load_1min", one);
        values.insert("system/load_5min", five);
        values.insert("system/load_15min", fifteen);
    }
    if let Some((total, free)) = memory_bytes() {
        values.insert("system/mem_total_bytes", total);
        values.insert("system/mem_free_bytes", free);
    }
    Json(values)
}

fn load_averages() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut fields = text.split_whitespace().map(|field| field.parse::<f64>().ok());
    Some([fields.next()??, fields.next()??, fields.next()??])
}

/// `MemTotal` and `MemFree` of `/proc/meminfo`, in bytes.
fn memory_bytes() -> Option<(f64, f64)> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = text.lines().find(|line| line.starts_with(name))?;
        let kilobytes: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kilobytes * 1024.0)
    };
    Some((field("MemTotal:")?, field("MemFree:")?))
}
