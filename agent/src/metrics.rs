//! The agent's Prometheus metrics: `corral_` prefix, base units (seconds, bytes), `_total`
//! counters. Counters and histograms are fed as things happen; gauges about tasks and the
//! per-task usage series are built from the [`TaskTable`] at each scrape, so they never
//! disagree with `/state`.

use std::collections::BTreeMap;

use corral_state::model::{TaskReason, TaskState};
use prometheus::{
    CounterVec, Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::tasks::{ContainerizerKind, TaskRecord, TaskTable};

/// At most this many tasks get per-task usage series (three series each); the oldest live
/// tasks are kept, so a task's series stay put between scrapes. The rest are counted in
/// `corral_agent_task_usage_dropped_tasks`.
pub const MAX_TASK_SERIES: usize = 500;

/// From 1 ms to 5 min: a process starts in milliseconds, an image-heavy Docker task in
/// minutes.
fn launch_buckets() -> Vec<f64> {
    vec![0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0]
}

/// From 100 µs to 10 s, as the masters' HTTP latency.
fn latency_buckets() -> Vec<f64> {
    vec![
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        5.0, 10.0,
    ]
}

/// Every metric the agent feeds as things happen, registered once.
pub struct AgentMetrics {
    registry: Registry,
    /// Launches asked of this agent, by containerizer.
    pub launches: IntCounterVec,
    /// Tasks that ended before they ran, by containerizer and Mesos reason.
    pub launch_failures: IntCounterVec,
    /// From the launch being asked (the event read) to RUNNING, by containerizer.
    pub launch_seconds: HistogramVec,
    /// Health check results, by check kind and outcome.
    pub health_checks: IntCounterVec,
    /// Tasks that reached a terminal state here, by state.
    pub tasks_completed: IntCounterVec,
    /// Status updates the log decided on, by outcome (`committed`, `rejected`).
    pub status_updates: IntCounterVec,
    /// Status updates written but not yet decided by the log.
    pub status_updates_pending: IntGauge,
    pub registered: IntGauge,
    pub http_requests: IntCounterVec,
    pub http_request_seconds: HistogramVec,
}

fn register<M: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: M,
) -> Result<M, prometheus::Error> {
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

impl AgentMetrics {
    pub fn new() -> Result<AgentMetrics, prometheus::Error> {
        let registry = Registry::new();
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            register(&registry, IntCounterVec::new(Opts::new(name, help), labels)?)
        };
        let histogram_vec = |name: &str, help: &str, labels: &[&str], buckets: Vec<f64>| {
            register(
                &registry,
                HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)?,
            )
        };
        let gauge = |name: &str, help: &str| register(&registry, IntGauge::new(name, help)?);
        let build_info = register(
            &registry,
            IntGaugeVec::new(
                Opts::new("corral_build_info", "Always 1; the labels say which build runs."),
                &["version"],
            )?,
        )?;
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        #[cfg(target_os = "linux")]
        registry.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))?;
        Ok(AgentMetrics {
            launches: counter_vec(
                "corral_agent_task_launches_total",
                "Task launches asked of this agent, by containerizer.",
                &["containerizer"],
            )?,
            launch_failures: counter_vec(
                "corral_agent_task_launch_failures_total",
                "Tasks that ended before they ran, by containerizer and Mesos reason.",
                &["containerizer", "reason"],
            )?,
            launch_seconds: histogram_vec(
                "corral_agent_task_launch_duration_seconds",
                "Time from a launch being asked of the agent to the task running.",
                &["containerizer"],
                launch_buckets(),
            )?,
            health_checks: counter_vec(
                "corral_agent_health_checks_total",
                "Health check results, by check kind and outcome (passed, failed, timed_out).",
                &["kind", "outcome"],
            )?,
            tasks_completed: counter_vec(
                "corral_agent_tasks_completed_total",
                "Tasks that reached a terminal state on this agent, by Mesos state.",
                &["state"],
            )?,
            status_updates: counter_vec(
                "corral_agent_status_updates_total",
                "Status updates the log decided on, by outcome (committed, rejected).",
                &["outcome"],
            )?,
            status_updates_pending: gauge(
                "corral_agent_status_updates_pending",
                "Status updates written to disk and not yet decided by the log.",
            )?,
            registered: gauge(
                "corral_agent_registered",
                "1 once the agent has an agent id from the masters, else 0.",
            )?,
            http_requests: counter_vec(
                "corral_http_requests_total",
                "HTTP requests served, by matched route, method and status.",
                &["route", "method", "status"],
            )?,
            http_request_seconds: histogram_vec(
                "corral_http_request_duration_seconds",
                "HTTP request latency, by matched route and method.",
                &["route", "method"],
                latency_buckets(),
            )?,
            registry,
        }
        .with_known_series())
    }

    /// Every series a dashboard or alert expects, at zero before anything happened: a
    /// missing series reads as "no data", not as "none yet".
    fn with_known_series(self) -> AgentMetrics {
        for kind in ContainerizerKind::ALL {
            self.launches.with_label_values(&[kind.as_str()]);
            self.launch_seconds.with_label_values(&[kind.as_str()]);
            for reason in [TaskReason::ContainerLaunchFailed, TaskReason::TaskInvalid] {
                self.launch_failures.with_label_values(&[kind.as_str(), reason.as_mesos_str()]);
            }
        }
        for kind in ["COMMAND", "HTTP", "TCP"] {
            for outcome in ["passed", "failed", "timed_out"] {
                self.health_checks.with_label_values(&[kind, outcome]);
            }
        }
        for state in TaskState::ALL.into_iter().filter(|state| state.is_terminal()) {
            self.tasks_completed.with_label_values(&[state.as_mesos_str()]);
        }
        for outcome in ["committed", "rejected"] {
            self.status_updates.with_label_values(&[outcome]);
        }
        self
    }

    /// The Prometheus text exposition: the fed metrics, then what the task table says now.
    pub fn render(&self, tasks: &TaskTable) -> Result<String, prometheus::Error> {
        let mut families = self.registry.gather();
        families.extend(task_families(&tasks.live())?);
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&families, &mut buffer)?;
        String::from_utf8(buffer).map_err(|error| prometheus::Error::Msg(error.to_string()))
    }

    /// The current value of a counter, for `/metrics/snapshot`.
    pub fn count(counter: &IntCounterVec, labels: &[&str]) -> u64 {
        counter.with_label_values(labels).get()
    }
}

/// Metrics computed from the live tasks at scrape time, in a registry of their own.
fn task_families(
    live: &[TaskRecord],
) -> Result<Vec<prometheus::proto::MetricFamily>, prometheus::Error> {
    let registry = Registry::new();
    let tasks = GaugeVec::new(
        Opts::new(
            "corral_agent_tasks",
            "Live tasks on this agent, by Mesos state and containerizer.",
        ),
        &["state", "containerizer"],
    )?;
    registry.register(Box::new(tasks.clone()))?;
    for state in TaskState::ALL.into_iter().filter(|state| !state.is_terminal()) {
        for kind in ContainerizerKind::ALL {
            tasks.with_label_values(&[state.as_mesos_str(), kind.as_str()]).set(0.0);
        }
    }
    for record in live {
        tasks
            .with_label_values(&[record.state.as_mesos_str(), record.containerizer.as_str()])
            .inc();
    }

    let labels = ["framework_id", "task_id"];
    let cpu = CounterVec::new(
        Opts::new(
            "corral_task_cpu_seconds_total",
            "CPU time a task used (user and system), from its cgroup, process group or container.",
        ),
        &labels,
    )?;
    let rss = GaugeVec::new(
        Opts::new("corral_task_memory_rss_bytes", "Resident (anonymous) memory of a task."),
        &labels,
    )?;
    let limit = GaugeVec::new(
        Opts::new("corral_task_memory_limit_bytes", "Memory limit of a task."),
        &labels,
    )?;
    let dropped = IntGauge::new(
        "corral_agent_task_usage_dropped_tasks",
        format!(
            "Live tasks left without per-task usage series: at most {MAX_TASK_SERIES} tasks get them."
        ),
    )?;
    registry.register(Box::new(cpu.clone()))?;
    registry.register(Box::new(rss.clone()))?;
    registry.register(Box::new(limit.clone()))?;
    registry.register(Box::new(dropped.clone()))?;
    let mut sampled: BTreeMap<u64, &TaskRecord> = BTreeMap::new();
    for record in live.iter().filter(|record| record.usage.is_some()) {
        sampled.insert(record.order, record);
    }
    dropped.set(sampled.len().saturating_sub(MAX_TASK_SERIES) as i64);
    for record in sampled.values().take(MAX_TASK_SERIES) {
        let Some(usage) = record.usage else { continue };
        let values = [record.framework_id.as_str(), record.info.task_id.as_str()];
        cpu.with_label_values(&values)
            .inc_by(usage.cpus_user_time_secs + usage.cpus_system_time_secs);
        rss.with_label_values(&values).set(usage.mem_rss_bytes as f64);
        if let Some(bytes) = usage.mem_limit_bytes {
            limit.with_label_values(&values).set(bytes as f64);
        }
    }
    Ok(registry.gather())
}
