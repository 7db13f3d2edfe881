//! Prometheus metrics: `corral_` prefix, base units (seconds, bytes), `_total` counters.
//! Cluster gauges are recomputed from the state; the rest are fed as things happen.

use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, PoisonError};

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
    /// Held while the cluster gauges are reset and set.
    state_gauges: Mutex<()>,
}

/// Latency buckets from 100 µs to 10 s: fsyncs sit at the bottom, slow HTTP at the top.
fn latency_buckets() -> Vec<f64> {
    vec![
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        5.0, 10.0,
    ]
}

fn register<M: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: M,
) -> Result<M, prometheus::Error> {
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let histogram = |name: &str, help: &str| -> Result<Histogram, prometheus::Error> {
            register(
                &registry,
                Histogram::with_opts(HistogramOpts::new(name, help).buckets(latency_buckets()))?,
            )
        };
        let gauge = |name: &str, help: &str| -> Result<IntGauge, prometheus::Error> {
            register(&registry, IntGauge::new(name, help)?)
        };
        let counter = |name: &str, help: &str| -> Result<IntCounter, prometheus::Error> {
            register(&registry, IntCounter::new(name, help)?)
        };
        let gauge_vec =
            |name: &str, help: &str, labels: &[&str]| -> Result<IntGaugeVec, prometheus::Error> {
                register(&registry, IntGaugeVec::new(Opts::new(name, help), labels)?)
            };
        let float_gauge_vec =
            |name: &str, help: &str, labels: &[&str]| -> Result<GaugeVec, prometheus::Error> {
                register(&registry, GaugeVec::new(Opts::new(name, help), labels)?)
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
            )?,
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
            )?,
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
            )?,
            registry,
            state_gauges: Mutex::new(()),
        })
    }

    /// Sets the cluster gauges to `gauges` (computed off the apply lock): reset and set as
    /// one step, so two scrapes at once never interleave into doubled or missing series.
    pub fn set_state(&self, gauges: &StateGauges) {
        let _one_at_a_time = self.state_gauges.lock().unwrap_or_else(PoisonError::into_inner);
        self.agents.reset();
        for (label, count) in &gauges.agents {
            self.agents.with_label_values(&[label]).set(*count);
        }
        self.frameworks.reset();
        for (label, count) in &gauges.frameworks {
            self.frameworks.with_label_values(&[label]).set(*count);
        }
        self.tasks.reset();
        for (label, count) in &gauges.tasks {
            self.tasks.with_label_values(&[label]).set(*count);
        }
        self.resource_cpus.reset();
        self.resource_memory_bytes.reset();
        self.resource_disk_bytes.reset();
        for amounts in &gauges.resources {
            let labels = [amounts.kind, amounts.role.as_str()];
            self.resource_cpus.with_label_values(&labels).set(amounts.cpus);
            self.resource_memory_bytes.with_label_values(&labels).set(amounts.memory_bytes);
            self.resource_disk_bytes.with_label_values(&labels).set(amounts.disk_bytes);
        }
        self.role_dominant_share.reset();
        for (role, share) in &gauges.dominant_shares {
            self.role_dominant_share.with_label_values(&[role.as_str()]).set(*share);
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        String::from_utf8(buffer).map_err(|error| prometheus::Error::Msg(error.to_string()))
    }
}

/// Resources of one kind (total, offered, allocated) and role, in base units.
#[derive(Debug, PartialEq)]
pub struct ResourceAmounts {
    kind: &'static str,
    role: String,
    cpus: f64,
    memory_bytes: f64,
    disk_bytes: f64,
}

impl ResourceAmounts {
    fn of(kind: &'static str, role: &str, resources: &Resources) -> ResourceAmounts {
        ResourceAmounts {
            kind,
            role: role.to_owned(),
            cpus: resources.scalar("cpus").as_f64(),
            memory_bytes: resources.scalar("mem").as_f64() * MEBIBYTE,
            disk_bytes: resources.scalar("disk").as_f64() * MEBIBYTE,
        }
    }
}

/// The cluster gauges' values, computed from a state into locals (a pure function of it),
/// then set in one step by `Metrics::set_state`.
#[derive(Debug, Default, PartialEq)]
pub struct StateGauges {
    agents: BTreeMap<&'static str, i64>,
    frameworks: BTreeMap<&'static str, i64>,
    tasks: BTreeMap<&'static str, i64>,
    resources: Vec<ResourceAmounts>,
    dominant_shares: BTreeMap<Role, f64>,
}

impl StateGauges {
    pub fn compute(state: &ClusterState) -> StateGauges {
        let mut gauges = StateGauges::default();
        for agent in state.agents().values() {
            let label = match (&agent.liveness, agent.mode) {
                (Liveness::Gone { .. }, _) => "gone",
                (Liveness::Unreachable { .. }, _) => "unreachable",
                (Liveness::Reachable, AgentMode::Active) => "active",
                (Liveness::Reachable, AgentMode::Deactivated) => "deactivated",
                (Liveness::Reachable, AgentMode::Draining(_)) => "draining",
                (Liveness::Reachable, AgentMode::Drained(_)) => "drained",
            };
            *gauges.agents.entry(label).or_default() += 1;
        }
        for framework in state.frameworks().values() {
            let label = match framework.state {
                FrameworkState::Connected => "connected",
                FrameworkState::Disconnected { .. } => "disconnected",
            };
            *gauges.frameworks.entry(label).or_default() += 1;
        }
        gauges.frameworks.insert("completed", state.completed_frameworks().len() as i64);
        for task_state in TaskState::ALL {
            gauges.tasks.insert(task_state.as_mesos_str(), 0);
        }
        for task in state.tasks() {
            *gauges.tasks.entry(task.state.as_mesos_str()).or_default() += 1;
        }
        gauges.compute_resources(state);
        gauges
    }

    fn compute_resources(&mut self, state: &ClusterState) {
        let mut total = Resources::new();
        for agent in state.agents().values().filter(|agent| !agent.is_gone()) {
            total.add(&agent.total);
        }
        self.resources.push(ResourceAmounts::of("total", "*", &total));
        let mut allocated_by_role: BTreeMap<Role, Resources> = BTreeMap::new();
        for task in state.tasks().filter(|task| !task.state.is_terminal()) {
            allocated_by_role.entry(task.role.clone()).or_default().add(task.resources());
        }
        let mut offered_by_role: BTreeMap<Role, Resources> = BTreeMap::new();
        for offer in state.offers().values() {
            offered_by_role.entry(offer.role.clone()).or_default().add(&offer.resources);
        }
        for (role, resources) in &allocated_by_role {
            self.resources.push(ResourceAmounts::of("allocated", role.as_str(), resources));
        }
        for (role, resources) in &offered_by_role {
            self.resources.push(ResourceAmounts::of("offered", role.as_str(), resources));
        }
        let roles: BTreeSet<&Role> =
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
            self.dominant_shares.insert(role.clone(), share);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::process::{Command as Process, Stdio};

    use corral_testkit::state::StateBuilder;

    use super::{Metrics, StateGauges};

    fn state() -> corral_state::ClusterState {
        let mut cluster = StateBuilder::default();
        cluster.agent("h", "", "cpus:4;mem:1024;disk:2048").framework("f", "eng");
        cluster.offer("eng", "cpus:2;mem:256");
        cluster.state
    }

    #[test]
    fn cluster_gauges_follow_the_state() {
        let metrics = Metrics::new().unwrap();
        metrics.set_state(&StateGauges::compute(&state()));
        let text = metrics.render().unwrap();
        for expected in [
            "corral_agents{state=\"active\"} 1",
            "corral_frameworks{state=\"connected\"} 1",
            "corral_tasks{state=\"TASK_RUNNING\"} 0",
            "corral_resource_cpus{kind=\"total\",role=\"*\"} 4",
            "corral_resource_cpus{kind=\"offered\",role=\"eng\"} 2",
            "corral_resource_memory_bytes{kind=\"total\",role=\"*\"} 1073741824",
            "corral_role_dominant_share{role=\"eng\"} 0.5",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
    }

    /// promtool (Debian's `prometheus` package, installed by ./scripts/test.sh) finds nothing
    /// wrong with the exposition.
    #[test]
    fn promtool_finds_no_problem() {
        let metrics = Metrics::new().unwrap();
        metrics.set_state(&StateGauges::compute(&state()));
        metrics.http_requests.with_label_values(&["/api/v1/scheduler", "POST", "202"]).inc();
        metrics
            .http_request_seconds
            .with_label_values(&["/api/v1/scheduler", "POST"])
            .observe(0.003);
        metrics.raft_flush_seconds.observe(0.0002);
        metrics.stream_disconnects.with_label_values(&["slow_subscriber"]).inc();
        metrics.stream_subscribers.with_label_values(&["framework"]).set(1);
        let mut promtool = Process::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect(
                "promtool is installed (./scripts/test.sh installs Debian's prometheus package)",
            );
        promtool.stdin.take().unwrap().write_all(metrics.render().unwrap().as_bytes()).unwrap();
        let output = promtool.wait_with_output().unwrap();
        let complaints = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success() && complaints.trim().is_empty(), "promtool: {complaints}");
    }
}
