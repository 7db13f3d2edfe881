//! Prometheus metrics: `corral_` prefix, base units (seconds, bytes), `_total` counters.
//! Cluster gauges are set at each scrape from the running totals the state keeps as it
//! applies, read under the read lock without a copy (`gauges`); the log's work
//! arrives through its observer (`observer`); the leader's loop feeds what it sees in the
//! event stream (`events`); `snapshot` renders Mesos's JSON keys.

mod events;
mod gauges;
mod observer;
mod snapshot;
#[cfg(test)]
mod tests;

use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use std::sync::{Mutex, PoisonError};

pub(crate) use events::EventMetrics;
pub(crate) use gauges::StateGauges;
pub(crate) use observer::{follow_raft, LogMetrics};
pub(crate) use snapshot::{mesos_snapshot, MasterFacts};

/// At most this many frameworks get a dominant share series (the largest shares); the rest
/// are summed up in the role series.
pub(crate) const MAX_FRAMEWORK_SERIES: usize = 100;

/// At most this many Marathon apps get per-app series (the first by id).
pub(crate) const MAX_APP_SERIES: usize = 100;

/// Every metric a master exports, registered once.
pub struct Metrics {
    registry: Registry,
    pub(crate) raft_term: IntGauge,
    pub(crate) raft_is_leader: IntGauge,
    pub(crate) raft_has_leader: IntGauge,
    pub(crate) raft_leader_changes: IntCounter,
    pub(crate) raft_commit_index: IntGauge,
    pub(crate) raft_applied_index: IntGauge,
    pub(crate) raft_last_log_index: IntGauge,
    pub(crate) raft_replication_lag: IntGaugeVec,
    pub(crate) raft_members: IntGaugeVec,
    pub(crate) raft_append_seconds: Histogram,
    pub(crate) raft_flush_seconds: Histogram,
    pub(crate) raft_apply_seconds: Histogram,
    pub(crate) raft_commit_seconds: Histogram,
    pub(crate) raft_batch_commands: Histogram,
    pub(crate) raft_snapshot_seconds: HistogramVec,
    pub(crate) raft_snapshot_bytes: IntGaugeVec,
    pub(crate) raft_snapshot_index: IntGauge,
    pub(crate) journal_first_index: IntGauge,
    pub(crate) journal_last_index: IntGauge,
    pub(crate) http_requests: IntCounterVec,
    pub(crate) http_auth_denied: IntCounterVec,
    pub(crate) http_request_seconds: HistogramVec,
    pub(crate) http_body_write_seconds: HistogramVec,
    pub(crate) http_body_client_wait_seconds: HistogramVec,
    pub(crate) allocator_cycle_seconds: Histogram,
    pub(crate) offers_made: IntCounter,
    pub(crate) offers_declined: IntCounter,
    pub(crate) offers_rescinded: IntCounter,
    pub(crate) offers_outstanding: IntGauge,
    pub(crate) offered_cpus: prometheus::Counter,
    pub(crate) offered_memory_bytes: prometheus::Counter,
    pub(crate) first_offer_seconds: Histogram,
    pub(crate) task_transitions: IntCounterVec,
    pub(crate) task_launch_seconds: Histogram,
    pub(crate) agents: IntGaugeVec,
    pub(crate) agent_heartbeat_age_seconds: prometheus::Gauge,
    pub(crate) frameworks: IntGaugeVec,
    pub(crate) frameworks_without_offers: IntGauge,
    pub(crate) tasks: IntGaugeVec,
    pub(crate) resource_cpus: GaugeVec,
    pub(crate) resource_memory_bytes: GaugeVec,
    pub(crate) resource_disk_bytes: GaugeVec,
    pub(crate) role_dominant_share: GaugeVec,
    pub(crate) framework_dominant_share: GaugeVec,
    pub(crate) marathon_apps: IntGauge,
    pub(crate) marathon_instances: IntGaugeVec,
    pub(crate) marathon_app_instances: IntGaugeVec,
    pub(crate) marathon_deployments: IntGauge,
    pub(crate) marathon_deployment_age_seconds: prometheus::Gauge,
    pub(crate) marathon_launch_delay_seconds: GaugeVec,
    pub(crate) stream_subscribers: IntGaugeVec,
    pub(crate) stream_lag_events: IntGaugeVec,
    pub(crate) stream_disconnects: IntCounterVec,
    pub(crate) autoscaler_decisions: IntCounterVec,
    pub(crate) autoscaler_errors: IntCounterVec,
    pub(crate) autoscaler_at_max: IntGaugeVec,
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

/// From 10 ms to 10 min: a process task runs in well under a second, a Docker image pull
/// may take minutes, a framework may wait long for its first offer on a full cluster.
fn wait_buckets() -> Vec<f64> {
    vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0]
}

/// Commands per Raft entry: powers of two up to the proposer's default bound (2048).
fn batch_buckets() -> Vec<f64> {
    (0..12).map(|power| f64::from(1u32 << power)).collect()
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
        let r = &registry;
        let histogram = |name: &str, help: &str, buckets: Vec<f64>| {
            register(r, Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))?)
        };
        let histogram_vec = |name: &str, help: &str, labels: &[&str], buckets: Vec<f64>| {
            register(r, HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)?)
        };
        let gauge = |name: &str, help: &str| register(r, IntGauge::new(name, help)?);
        let float_gauge = |name: &str, help: &str| register(r, prometheus::Gauge::new(name, help)?);
        let counter = |name: &str, help: &str| register(r, IntCounter::new(name, help)?);
        let float_counter =
            |name: &str, help: &str| register(r, prometheus::Counter::new(name, help)?);
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            register(r, IntCounterVec::new(Opts::new(name, help), labels)?)
        };
        let gauge_vec = |name: &str, help: &str, labels: &[&str]| {
            register(r, IntGaugeVec::new(Opts::new(name, help), labels)?)
        };
        let float_gauge_vec = |name: &str, help: &str, labels: &[&str]| {
            register(r, GaugeVec::new(Opts::new(name, help), labels)?)
        };
        let build_info = gauge_vec(
            "corral_build_info",
            "Always 1; the labels say which build runs.",
            &["version"],
        )?;
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        #[cfg(target_os = "linux")]
        registry.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))?;
        let metrics = Metrics {
            raft_term: gauge("corral_raft_term", "Current Raft term seen by this master.")?,
            raft_is_leader: gauge(
                "corral_raft_is_leader",
                "1 if this master is the Raft leader, else 0.",
            )?,
            raft_has_leader: gauge(
                "corral_raft_has_leader",
                "1 if this master knows a leader (itself or another), else 0.",
            )?,
            raft_leader_changes: counter(
                "corral_raft_leader_changes_total",
                "Times this master saw the leader change (a new leader, or none).",
            )?,
            raft_commit_index: gauge(
                "corral_raft_commit_index",
                "Highest log index known committed.",
            )?,
            raft_applied_index: gauge(
                "corral_raft_applied_index",
                "Highest log index applied to the state.",
            )?,
            raft_last_log_index: gauge(
                "corral_raft_last_log_index",
                "Highest log index in this master's log (maybe not committed yet).",
            )?,
            raft_replication_lag: gauge_vec(
                "corral_raft_replication_lag_entries",
                "Entries a member is behind the leader's log, as the leader sees it (leader only).",
                &["member"],
            )?,
            raft_members: gauge_vec(
                "corral_raft_members",
                "Members of the Raft group as this master sees them, by kind (voter, learner).",
                &["kind"],
            )?,
            raft_append_seconds: histogram(
                "corral_raft_append_duration_seconds",
                "Time to append a batch to the local log.",
                latency_buckets(),
            )?,
            raft_flush_seconds: histogram(
                "corral_raft_flush_duration_seconds",
                "Time to flush (fsync) the local log.",
                latency_buckets(),
            )?,
            raft_apply_seconds: histogram(
                "corral_raft_apply_duration_seconds",
                "Time to apply committed entries to the state and journal their events.",
                latency_buckets(),
            )?,
            raft_commit_seconds: histogram(
                "corral_raft_commit_duration_seconds",
                "Time from a command being proposed to its batch committed and applied (leader).",
                latency_buckets(),
            )?,
            raft_batch_commands: histogram(
                "corral_raft_batch_commands",
                "Commands carried by one Raft entry (group commit), as the leader proposed them.",
                batch_buckets(),
            )?,
            raft_snapshot_seconds: histogram_vec(
                "corral_raft_snapshot_duration_seconds",
                "Time to build or install a snapshot of the state, by operation (build, install).",
                &["operation"],
                wait_buckets(),
            )?,
            raft_snapshot_bytes: gauge_vec(
                "corral_raft_snapshot_size_bytes",
                "Size of the last snapshot built or installed, by operation.",
                &["operation"],
            )?,
            raft_snapshot_index: gauge(
                "corral_raft_snapshot_index",
                "Log index of the last snapshot (0 before the first).",
            )?,
            journal_first_index: gauge(
                "corral_journal_first_index",
                "Oldest log index still in the event journal: a cursor older than this gets 410.",
            )?,
            journal_last_index: gauge(
                "corral_journal_last_index",
                "Newest log index in the event journal.",
            )?,
            http_requests: counter_vec(
                "corral_http_requests_total",
                "HTTP requests served, by matched route, method and status.",
                &["route", "method", "status"],
            )?,
            http_auth_denied: counter_vec(
                "corral_http_auth_denied_total",
                "Requests access control turned away before the log (in permissive mode: would have), by reason and matched route.",
                &["reason", "route"],
            )?,
            http_request_seconds: histogram_vec(
                "corral_http_request_duration_seconds",
                "HTTP request latency, by matched route and method.",
                &["route", "method"],
                latency_buckets(),
            )?,
            // A large answer's headers go out at once, so the request latency above ends
            // before its body is written; these two split the body's time into rendering
            // and waiting for the client.
            http_body_write_seconds: histogram_vec(
                "corral_http_body_write_duration_seconds",
                "Time to write a large answer's body (state, tasks) on its blocking thread, from its first byte rendered to the last chunk handed to the connection, by answer.",
                &["what"],
                latency_buckets(),
            )?,
            http_body_client_wait_seconds: histogram_vec(
                "corral_http_body_client_wait_seconds",
                "Of a large answer's body write, the time the writer waited for the connection to take its chunks (a slow client or a busy runtime), by answer; the rest is rendering.",
                &["what"],
                latency_buckets(),
            )?,
            allocator_cycle_seconds: histogram(
                "corral_allocator_cycle_duration_seconds",
                "Time for one allocation cycle.",
                latency_buckets(),
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
            offers_outstanding: gauge(
                "corral_offers_outstanding",
                "Offers made and not yet accepted, declined or rescinded.",
            )?,
            offered_cpus: float_counter(
                "corral_allocator_offered_cpus_total",
                "CPUs put into offers by the allocator.",
            )?,
            offered_memory_bytes: float_counter(
                "corral_allocator_offered_memory_bytes_total",
                "Memory put into offers by the allocator, in bytes.",
            )?,
            first_offer_seconds: histogram(
                "corral_framework_first_offer_wait_seconds",
                "Time from a framework subscribing to its first offer (as the leader saw it).",
                wait_buckets(),
            )?,
            task_transitions: counter_vec(
                "corral_task_transitions_total",
                "Task state changes the log decided on, by the new Mesos state (leader).",
                &["state"],
            )?,
            task_launch_seconds: histogram(
                "corral_task_launch_duration_seconds",
                "Time from a task's ACCEPT being applied to the task reported RUNNING.",
                wait_buckets(),
            )?,
            agents: gauge_vec("corral_agents", "Agents by state.", &["state"])?,
            agent_heartbeat_age_seconds: float_gauge(
                "corral_agent_heartbeat_age_max_seconds",
                "Longest time since a reachable agent's last heartbeat, at the state's clock.",
            )?,
            frameworks: gauge_vec("corral_frameworks", "Frameworks by state.", &["state"])?,
            frameworks_without_offers: gauge(
                "corral_frameworks_without_offers",
                "Connected frameworks that want offers (not suppressed) and hold none.",
            )?,
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
            framework_dominant_share: float_gauge_vec(
                "corral_framework_dominant_share",
                &format!(
                    "Dominant share of each framework (0 to 1); the {MAX_FRAMEWORK_SERIES} largest only."
                ),
                &["framework_id", "name"],
            )?,
            marathon_apps: gauge("corral_marathon_apps", "Marathon apps defined.")?,
            marathon_instances: gauge_vec(
                "corral_marathon_instances",
                "Instances of all Marathon apps, by status (desired, running, healthy, waiting).",
                &["status"],
            )?,
            marathon_app_instances: gauge_vec(
                "corral_marathon_app_instances",
                &format!(
                    "Instances of each Marathon app, by status (desired, running, healthy); the first {MAX_APP_SERIES} apps only."
                ),
                &["app", "status"],
            )?,
            marathon_deployments: gauge(
                "corral_marathon_deployments",
                "Marathon deployments in progress.",
            )?,
            marathon_deployment_age_seconds: float_gauge(
                "corral_marathon_deployment_age_max_seconds",
                "Age of the oldest deployment in progress (0 when none), at the state's clock.",
            )?,
            marathon_launch_delay_seconds: float_gauge_vec(
                "corral_marathon_launch_delay_seconds",
                &format!(
                    "Launch backoff left per app (0 when none); the first {MAX_APP_SERIES} apps only."
                ),
                &["app"],
            )?,
            stream_subscribers: gauge_vec(
                "corral_stream_subscribers",
                "Open event streams, by kind (framework, events).",
                &["kind"],
            )?,
            stream_lag_events: gauge_vec(
                "corral_stream_lag_entries",
                "Log entries between the last applied one and the slowest subscriber, by kind.",
                &["kind"],
            )?,
            stream_disconnects: counter_vec(
                "corral_stream_disconnects_total",
                "Event streams closed by the master, by reason (too_slow, too_old, closed, failed).",
                &["reason"],
            )?,
            autoscaler_decisions: counter_vec(
                "corral_autoscaler_decisions_total",
                "The leader autoscaler's evaluations, by outcome (up, down: a scaling committed; hold). No app label: see /corral/v1/apps/{id}/autoscaler/decisions.",
                &["direction"],
            )?,
            autoscaler_errors: counter_vec(
                "corral_autoscaler_errors_total",
                "Autoscaler evaluations that failed or were cut short, by stage (read_state, metric, propose, refused).",
                &["stage"],
            )?,
            autoscaler_at_max: gauge_vec(
                "corral_autoscaler_at_max",
                "1 while an autoscaled app sits at its policy's max and its metrics ask for more, else 0 (leader only; one series per autoscaled app).",
                &["app"],
            )?,
            registry,
            state_gauges: Mutex::new(()),
        };
        Ok(metrics.with_known_series())
    }

    /// Every series a dashboard or alert expects, at zero before anything happened: a
    /// missing series reads as "no data", not as "none yet".
    fn with_known_series(self) -> Metrics {
        for reason in ["too_slow", "too_old", "closed", "failed"] {
            self.stream_disconnects.with_label_values(&[reason]);
        }
        for operation in ["build", "install"] {
            self.raft_snapshot_seconds.with_label_values(&[operation]);
            self.raft_snapshot_bytes.with_label_values(&[operation]);
        }
        for direction in ["up", "down", "hold"] {
            self.autoscaler_decisions.with_label_values(&[direction]);
        }
        for stage in ["read_state", "metric", "propose", "refused"] {
            self.autoscaler_errors.with_label_values(&[stage]);
        }
        for state in corral_state::model::TaskState::ALL {
            self.task_transitions.with_label_values(&[state.as_mesos_str()]);
        }
        self
    }

    /// Sets the cluster gauges to `gauges` (read from the state's totals): reset and set as
    /// one step, so two scrapes at once never interleave into doubled or missing series.
    pub(crate) fn set_state(&self, gauges: &StateGauges) {
        let _one_at_a_time = self.state_gauges.lock().unwrap_or_else(PoisonError::into_inner);
        gauges.set(self);
    }

    /// Sets the cluster gauges from `state` as a scrape does under the read lock (public
    /// for the metrics benchmark, which has no master around the state).
    pub fn set_cluster_gauges(&self, state: &corral_state::ClusterState) {
        self.set_state(&StateGauges::compute(state));
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        self.render_with(Vec::new())
    }

    /// The same, with families built at scrape time (the leader's per-task usage).
    pub fn render_with(
        &self,
        extra: Vec<prometheus::proto::MetricFamily>,
    ) -> Result<String, prometheus::Error> {
        let mut families = self.registry.gather();
        families.extend(extra);
        families.sort_by(|a, b| a.name().cmp(b.name()));
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&families, &mut buffer)?;
        String::from_utf8(buffer).map_err(|error| prometheus::Error::Msg(error.to_string()))
    }
}
