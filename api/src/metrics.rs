//! Prometheus metrics: `corral_` prefix, base units (seconds, bytes), `_total` counters.
//! Cluster gauges are recomputed from the state; the rest are fed as things happen.

use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use corral_state::model::{AgentMode, FrameworkState, Liveness, TaskState};
use corral_state::{ClusterState, Resources, Role};

const MEBIBYTE: f64 = 1024.0 * 1024.0;

/// Every metric a master exports, registered once.
pub struct Metrics {
    registry: Registry,
    pub raft_term: IntGauge,
    pub raft_is_leader: IntGauge,
    pub raft_commit_index: IntGauge,
    pub raft_applied_index: IntGauge,
    pub raft_append_seconds: Histogram,
    pub raft_flush_seconds: Histogram,
    pub http_requests: IntCounterVec,
    pub http_request_seconds: HistogramVec,
    pub allocator_cycle_seconds: Histogram,
    pub offers_made: IntCounter,
    pub offers_declined: IntCounter,
    pub offers_rescinded: IntCounter,
    pub agents: IntGaugeVec,
    pub frameworks: IntGaugeVec,
    pub tasks: IntGaugeVec,
    pub resource_cpus: GaugeVec,
    pub resource_memory_bytes: GaugeVec,
    pub resource_disk_bytes: GaugeVec,
    pub role_dominant_share: GaugeVec,
    pub stream_subscribers: IntGaugeVec,
    pub stream_lag_events: IntGaugeVec,
    pub stream_disconnects: IntCounterVec,
}

/// Latency buckets from 100 µs to 10 s: fsyncs sit at the bottom, slow HTTP at the top.
fn latency_buckets() -> Vec<f64> {
    vec![
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        5.0, 10.0,
    ]
}

fn register<M: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: M) -> M {
    // Names are fixed and unique in this file; a clash is a programming error caught by the
    // metrics test, so ignoring the result here cannot hide a runtime problem.
    let _ = registry.register(Box::new(metric.clone()));
    metric
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let histogram = |name: &str, help: &str| -> Result<Histogram, prometheus::Error> {
            Ok(register(
                &registry,
                Histogram::with_opts(HistogramOpts::new(name, help).buckets(latency_buckets()))?,
            ))
        };
        let gauge = |name: &str, help: &str| -> Result<IntGauge, prometheus::Error> {
            Ok(register(&registry, IntGauge::new(name, help)?))
        };
        let counter = |name: &str, help: &str| -> Result<IntCounter, prometheus::Error> {
            Ok(register(&registry, IntCounter::new(name, help)?))
        };
        let gauge_vec =
            |name: &str, help: &str, labels: &[&str]| -> Result<IntGaugeVec, prometheus::Error> {
                Ok(register(&registry, IntGaugeVec::new(Opts::new(name, help), labels)?))
            };
        let float_gauge_vec =
            |name: &str, help: &str, labels: &[&str]| -> Result<GaugeVec, prometheus::Error> {
                Ok(register(&registry, GaugeVec::new(Opts::new(name, help), labels)?))
            };
        Ok(Metrics {
            raft_term: gauge("corral_raft_term", "Current Raft term seen by this master.")?,
            raft_is_leader: gauge(
                "corral_raft_is_leader",
                "1 if this master is the Raft leader, else 0.",
            )?,
            raft_commit_index: gauge(
                "corral_raft_commit_index",
                "Highest log index known committed.",
            )?,
            raft_applied_index: gauge(
                "corral_raft_applied_index",
                "Highest log index applied to the state.",
            )?,
            raft_append_seconds: histogram(
                "corral_raft_append_duration_seconds",
                "Time to append a batch to the local log.",
            )?,
            raft_flush_seconds: histogram(
                "corral_raft_flush_duration_seconds",
                "Time to flush (fsync) the local log.",
            )?,
            http_requests: register(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "corral_http_requests_total",
                        "HTTP requests served, by matched route, method and status.",
                    ),
                    &["route", "method", "status"],
                )?,
            ),
            http_request_seconds: register(
                &registry,
                HistogramVec::new(
                    HistogramOpts::new(
                        "corral_http_request_duration_seconds",
                        "HTTP request latency, by matched route and method.",
                    )
                    .buckets(latency_buckets()),
                    &["route", "method"],
                )?,
            ),
            allocator_cycle_seconds: histogram(
                "corral_allocator_cycle_duration_seconds",
                "Time for one allocation cycle.",
            )?,
            offers_made: counter("corral_offers_made_total", "Offers made to frameworks.")?,
            offers_declined: counter(
                "corral_offers_declined_total",
                "Offers declined by frameworks.",
            )?,
            offers_rescinded: counter(
                "corral_offers_rescinded_total",
                "Offers rescinded by the master.",
            )?,
            agents: gauge_vec("corral_agents", "Agents by state.", &["state"])?,
            frameworks: gauge_vec("corral_frameworks", "Frameworks by state.", &["state"])?,
            tasks: gauge_vec(
                "corral_tasks",
                "Tasks the master tracks, by Mesos state.",
                &["state"],
            )?,
            resource_cpus: float_gauge_vec(
                "corral_resource_cpus",
                "CPUs by kind (total, offered, allocated) and role.",
                &["kind", "role"],
            )?,
            resource_memory_bytes: float_gauge_vec(
                "corral_resource_memory_bytes",
                "Memory in bytes by kind (total, offered, allocated) and role.",
                &["kind", "role"],
            )?,
            resource_disk_bytes: float_gauge_vec(
                "corral_resource_disk_bytes",
                "Disk in bytes by kind (total, offered, allocated) and role.",
                &["kind", "role"],
            )?,
            role_dominant_share: float_gauge_vec(
                "corral_role_dominant_share",
                "Dominant share of each role (0 to 1).",
                &["role"],
            )?,
            stream_subscribers: gauge_vec(
                "corral_stream_subscribers",
                "Open event streams, by kind.",
                &["kind"],
            )?,
            stream_lag_events: gauge_vec(
                "corral_stream_lag_events",
                "Events between the log head and the slowest subscriber, by kind.",
                &["kind"],
            )?,
            stream_disconnects: register(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "corral_stream_disconnects_total",
                        "Event streams closed, by reason.",
                    ),
                    &["reason"],
                )?,
            ),
            registry,
        })
    }

    /// Recomputes the cluster gauges from the state.
    pub fn observe_state(&self, state: &ClusterState) {
        self.agents.reset();
        for agent in state.agents().values() {
            let label = match (&agent.liveness, agent.mode) {
                (Liveness::Gone { .. }, _) => "gone",
                (Liveness::Unreachable { .. }, _) => "unreachable",
                (Liveness::Reachable, AgentMode::Active) => "active",
                (Liveness::Reachable, AgentMode::Deactivated) => "deactivated",
                (Liveness::Reachable, AgentMode::Draining(_)) => "draining",
                (Liveness::Reachable, AgentMode::Drained(_)) => "drained",
            };
            self.agents.with_label_values(&[label]).inc();
        }
        self.frameworks.reset();
        for framework in state.frameworks().values() {
            let label = match framework.state {
                FrameworkState::Connected => "connected",
                FrameworkState::Disconnected { .. } => "disconnected",
            };
            self.frameworks.with_label_values(&[label]).inc();
        }
        self.frameworks
            .with_label_values(&["completed"])
            .set(state.completed_frameworks().len() as i64);
        self.tasks.reset();
        for task_state in TaskState::ALL {
            self.tasks.with_label_values(&[task_state.as_mesos_str()]).set(0);
        }
        for task in state.tasks() {
            self.tasks.with_label_values(&[task.state.as_mesos_str()]).inc();
        }
        self.observe_resources(state);
    }

    fn observe_resources(&self, state: &ClusterState) {
        self.resource_cpus.reset();
        self.resource_memory_bytes.reset();
        self.resource_disk_bytes.reset();
        self.role_dominant_share.reset();
        let mut total = Resources::new();
        for agent in state.agents().values().filter(|agent| !agent.is_gone()) {
            total.add(&agent.total);
        }
        self.set_resources("total", "*", &total);
        let mut allocated_by_role: std::collections::BTreeMap<Role, Resources> =
            std::collections::BTreeMap::new();
        for task in state.tasks().filter(|task| !task.state.is_terminal()) {
            allocated_by_role.entry(task.role.clone()).or_default().add(task.resources());
        }
        let mut offered_by_role: std::collections::BTreeMap<Role, Resources> =
            std::collections::BTreeMap::new();
        for offer in state.offers().values() {
            offered_by_role.entry(offer.role.clone()).or_default().add(&offer.resources);
        }
        for (role, resources) in &allocated_by_role {
            self.set_resources("allocated", role.as_str(), resources);
        }
        for (role, resources) in &offered_by_role {
            self.set_resources("offered", role.as_str(), resources);
        }
        let roles: std::collections::BTreeSet<&Role> =
            allocated_by_role.keys().chain(offered_by_role.keys()).collect();
        for role in roles {
            let mut used = allocated_by_role.get(role).cloned().unwrap_or_default();
            if let Some(offered) = offered_by_role.get(role) {
                used.add(offered);
            }
            let share = ["cpus", "mem", "disk", "gpus"]
                .iter()
                .filter(|name| !total.scalar(name).is_zero())
                .map(|name| used.scalar(name).as_f64() / total.scalar(name).as_f64())
                .fold(0.0_f64, f64::max);
            self.role_dominant_share.with_label_values(&[role.as_str()]).set(share);
        }
    }

    fn set_resources(&self, kind: &str, role: &str, resources: &Resources) {
        self.resource_cpus.with_label_values(&[kind, role]).set(resources.scalar("cpus").as_f64());
        self.resource_memory_bytes
            .with_label_values(&[kind, role])
            .set(resources.scalar("mem").as_f64() * MEBIBYTE);
        self.resource_disk_bytes
            .with_label_values(&[kind, role])
            .set(resources.scalar("disk").as_f64() * MEBIBYTE);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        if TextEncoder::new().encode(&self.registry.gather(), &mut buffer).is_err() {
            return String::new();
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}
