//! The autoscaler, a leader loop, and the per-task usage it decides from.
//!
//! - Usage: every `LoopIntervals::usage` the leader reads `/monitor/statistics` from each
//!   agent running instances of autoscaled apps (concurrently, each bounded by a timeout;
//!   none when nothing autoscales) into [`UsageTable`]: the latest two samples per task, so
//!   CPU is a rate over the agent's own timestamps. Samples are inputs, not facts: they
//!   never go through the log. `/metrics` exports them as `corral_task_cpu_seconds_total`
//!   and `corral_task_memory_rss_bytes` (every agent exports all its tasks' own).
//! - Decisions: every second the loop looks (in the local state) for autoscaled apps; when
//!   there are some it reads the state linearizably (it feeds a decision) and evaluates
//!   each app whose `evaluationIntervalSeconds` is up with
//!   `corral_state::autoscale::decide`. A scaling is proposed as one `AutoscaleApp`
//!   carrying its inputs; the state checks it again and records it, so a new leader knows
//!   it and the rate policies hold across failovers. Holds stay in memory, as the latest
//!   evaluation `/decisions` shows.
//! - A new leader starts with no usage: an app waits for a sample of each ready instance,
//!   or at most two usage reads' worth of time, before it is evaluated ([`Memory`]).
//! - Stabilization needs the recommendations of the window. They are the log's: a
//!   recommendation different from the app's latest recorded one is proposed as
//!   `RecordRecommendation` (an unchanged one is not, so a steady app adds nothing to the
//!   log), and each holds until the next. The window is read from the state, never from
//!   this loop's memory, so a new leader resumes it exactly where the old one left it. A
//!   deployment of the app (its own scaling included) is recorded as "stay", so a
//!   scale-down waits a window after the last change.
//! - `corral_autoscaler_decisions_total{direction}`, `corral_autoscaler_errors_total{stage}`
//!   and `corral_autoscaler_at_max{app}` count what the loop did and what kept it from it;
//!   every failure is logged too.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use corral_log::network::signed;
use corral_log::ReadConsistency;
use corral_state::autoscale::{
    decide, Evaluation, InstanceSample, MetricSample, Readiness, Recommendation,
};
use corral_state::model::{
    AutoscalerPolicy, Decision, HoldReason, MetricTarget, Millionths, RecordedScaling,
};
use corral_state::{
    Actor, AgentId, AppId, ClusterState, Command, DeploymentId, FrameworkId, TaskId, Timestamp,
};
use prometheus::core::Collector;
use serde::Deserialize;

use crate::master::{new_request_id, wall_clock, Master};

/// How often the loop looks for apps whose evaluation is due.
const EVALUATION_GRANULARITY: Duration = Duration::from_secs(1);
/// One agent's statistics or one Prometheus query may not hold a round up for longer.
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// The most tasks the master exports usage series for (bounded labels).
pub(crate) const MAX_TASK_USAGE_SERIES: usize = 1000;

/// One reading of one task, as the agent reported it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct UsageReading {
    /// Seconds since the epoch, the agent's clock.
    pub timestamp: f64,
    pub cpu_seconds: f64,
    pub cpus_limit: Option<f64>,
    pub mem_rss_bytes: u64,
    pub mem_limit_bytes: Option<u64>,
}

#[derive(Clone, Debug)]
pub(crate) struct TaskUsage {
    pub framework_id: FrameworkId,
    pub agent_id: AgentId,
    pub latest: UsageReading,
    pub previous: Option<UsageReading>,
}

impl TaskUsage {
    /// CPU used over CPU asked for, between the last two samples.
    fn cpu_utilization(&self) -> Option<Millionths> {
        let previous = self.previous?;
        let elapsed = self.latest.timestamp - previous.timestamp;
        let limit = self.latest.cpus_limit.filter(|limit| *limit > 0.0)?;
        if elapsed <= 0.0 {
            return None;
        }
        let used = (self.latest.cpu_seconds - previous.cpu_seconds).max(0.0) / elapsed;
        Millionths::from_f64(used / limit)
    }

    fn memory_utilization(&self) -> Option<Millionths> {
        let limit = self.latest.mem_limit_bytes.filter(|limit| *limit > 0)?;
        Millionths::from_f64(self.latest.mem_rss_bytes as f64 / limit as f64)
    }
}

/// The latest usage of every task the leader heard about, by task id.
#[derive(Default)]
pub struct UsageTable {
    tasks: Mutex<BTreeMap<TaskId, TaskUsage>>,
}

impl UsageTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<TaskId, TaskUsage>> {
        self.tasks.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Replaces what one agent reported; tasks it no longer reports are forgotten.
    fn record(&self, agent_id: &AgentId, entries: Vec<(TaskId, FrameworkId, UsageReading)>) {
        let mut tasks = self.lock();
        let reported: std::collections::BTreeSet<&TaskId> =
            entries.iter().map(|(task_id, _, _)| task_id).collect();
        tasks.retain(|task_id, usage| &usage.agent_id != agent_id || reported.contains(task_id));
        for (task_id, framework_id, reading) in entries {
            match tasks.get_mut(&task_id) {
                Some(usage) if usage.latest.timestamp == reading.timestamp => {}
                Some(usage) => {
                    usage.previous = Some(usage.latest);
                    usage.latest = reading;
                }
                None => {
                    let usage = TaskUsage {
                        framework_id,
                        agent_id: agent_id.clone(),
                        latest: reading,
                        previous: None,
                    };
                    tasks.insert(task_id, usage);
                }
            }
        }
    }

    /// Forgets agents no longer asked (they left, or run no task).
    fn keep_agents(&self, agents: &std::collections::BTreeSet<AgentId>) {
        self.lock().retain(|_, usage| agents.contains(&usage.agent_id));
    }

    pub(crate) fn get(&self, task_id: &TaskId) -> Option<TaskUsage> {
        self.lock().get(task_id).cloned()
    }

    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    /// `corral_task_cpu_seconds_total` and `corral_task_memory_rss_bytes`, built at scrape
    /// time from the table (at most `MAX_TASK_USAGE_SERIES` tasks, in task id order).
    pub(crate) fn metric_families(
        &self,
    ) -> Result<Vec<prometheus::proto::MetricFamily>, prometheus::Error> {
        let labels = ["framework_id", "task_id"];
        let cpu = prometheus::CounterVec::new(
            prometheus::Opts::new(
                "corral_task_cpu_seconds_total",
                "CPU time a task used (user and system), as its agent last reported it to the leader.",
            ),
            &labels,
        )?;
        let rss = prometheus::GaugeVec::new(
            prometheus::Opts::new(
                "corral_task_memory_rss_bytes",
                "Resident (anonymous) memory of a task, as its agent last reported it to the leader.",
            ),
            &labels,
        )?;
        for (task_id, usage) in self.lock().iter().take(MAX_TASK_USAGE_SERIES) {
            let values = [usage.framework_id.as_str(), task_id.as_str()];
            cpu.with_label_values(&values).inc_by(usage.latest.cpu_seconds.max(0.0));
            rss.with_label_values(&values).set(usage.latest.mem_rss_bytes as f64);
        }
        let mut families = cpu.collect();
        families.extend(rss.collect());
        // The encoder refuses a family without series (a follower, or no task yet).
        families.retain(|family| !family.get_metric().is_empty());
        Ok(families)
    }
}

/// What `/decisions` shows beside the log's scalings: the leader's latest evaluation of
/// each app.
#[derive(Default)]
pub struct AutoscalerStatus {
    latest: Mutex<BTreeMap<AppId, (Timestamp, Decision)>>,
}

impl AutoscalerStatus {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<AppId, (Timestamp, Decision)>> {
        self.latest.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn latest(&self, app_id: &AppId) -> Option<(Timestamp, Decision)> {
        self.lock().get(app_id).cloned()
    }

    fn set(&self, app_id: AppId, at: Timestamp, decision: Decision) {
        self.lock().insert(app_id, (at, decision));
    }

    fn clear(&self) {
        self.lock().clear();
    }
}

/// The statistics entry of a Mesos agent, the fields the autoscaler reads.
#[derive(Deserialize)]
struct StatisticsEntry {
    executor_id: String,
    framework_id: String,
    #[serde(default)]
    source: Option<String>,
    statistics: Statistics,
}

#[derive(Deserialize)]
struct Statistics {
    timestamp: f64,
    #[serde(default)]
    cpus_user_time_secs: f64,
    #[serde(default)]
    cpus_system_time_secs: f64,
    cpus_limit: Option<f64>,
    #[serde(default)]
    mem_rss_bytes: u64,
    mem_limit_bytes: Option<u64>,
}

/// Runs while this master leads: gathers usage and evaluates autoscaled apps.
pub(crate) async fn run(master: Master) {
    let _gather = crate::leader::AbortOnDrop(tokio::spawn(gather_usage(master.clone())));
    let mut memory = Memory::new(wall_clock(), master.inner.intervals.usage);
    let mut ticks = tokio::time::interval(EVALUATION_GRANULARITY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        evaluate_due(&master, &mut memory).await;
    }
}

/// Ends a leadership's memory: a new term starts from what the log says.
pub(crate) fn forget(master: &Master) {
    master.inner.autoscaler.clear();
    master.inner.metrics.autoscaler_at_max.reset();
    master.inner.usage.clear();
}

async fn gather_usage(master: Master) {
    let mut ticks = tokio::time::interval(master.inner.intervals.usage);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let agents = master.read_state(ReadConsistency::Local, agents_to_sample).await;
        let Ok(agents) = agents else { continue };
        master.inner.usage.keep_agents(&agents.keys().cloned().collect());
        let fetches = agents.iter().map(|(agent_id, address)| {
            let master = master.clone();
            async move {
                match fetch_statistics(&master, address).await {
                    Ok(entries) => master.inner.usage.record(agent_id, entries),
                    Err(error) => {
                        tracing::debug!(%agent_id, %address, %error, "agent statistics unread")
                    }
                }
            }
        });
        futures::future::join_all(fetches).await;
    }
}

/// The agents running live instances of autoscaled apps, with their addresses: the only
/// usage a decision reads. Sampling every agent would cost the leader one request per
/// agent per interval (2,000 a second at 10,000 agents) whether anything autoscales or
/// not; each agent exports its own tasks' usage on its `/metrics`.
fn agents_to_sample(state: &ClusterState) -> BTreeMap<AgentId, String> {
    let services = state.services();
    let Some(framework_id) = services.framework_id.as_ref() else { return BTreeMap::new() };
    services
        .autoscalers
        .keys()
        .flat_map(|app_id| services.instances_of(app_id))
        .filter_map(|(task_id, _)| state.task(framework_id, task_id))
        .filter(|task| !task.state.is_terminal())
        .filter_map(|task| state.agent(task.agent_id()))
        .map(|agent| (agent.id.clone(), agent.info.address.clone()))
        .collect()
}

async fn fetch_statistics(
    master: &Master,
    address: &str,
) -> Result<Vec<(TaskId, FrameworkId, UsageReading)>, String> {
    let url = format!("http://{address}/monitor/statistics");
    let request = master.inner.agent_http.get(&url).timeout(FETCH_TIMEOUT);
    // With access control on, the agent asks a master whether its caller may read this;
    // a master proves it is one with the cluster secret.
    let secret = master.inner.serving.cluster_secret.as_ref();
    let request = signed(request, secret, "GET", "/monitor/statistics", b"").send();
    let response = request.await.map_err(|error| format!("GET {url}: {error}"))?;
    if !response.status().is_success() {
        return Err(format!("GET {url}: {}", response.status()));
    }
    let entries: Vec<StatisticsEntry> =
        response.json().await.map_err(|error| format!("GET {url}: {error}"))?;
    Ok(readings(entries))
}

/// One reading per task of an agent's statistics. A task is named by `source`, which a
/// Corral agent always sets (an executor may run several tasks); an entry without one (a
/// Mesos agent's command task is its own executor) by its executor.
fn readings(entries: Vec<StatisticsEntry>) -> Vec<(TaskId, FrameworkId, UsageReading)> {
    entries
        .into_iter()
        .map(|entry| {
            let task_id = TaskId::new(entry.source.unwrap_or(entry.executor_id));
            let stats = entry.statistics;
            let reading = UsageReading {
                timestamp: stats.timestamp,
                cpu_seconds: stats.cpus_user_time_secs + stats.cpus_system_time_secs,
                cpus_limit: stats.cpus_limit,
                mem_rss_bytes: stats.mem_rss_bytes,
                mem_limit_bytes: stats.mem_limit_bytes,
            };
            (task_id, FrameworkId::new(entry.framework_id), reading)
        })
        .collect()
}

/// What this leader remembers between evaluations: when it took over and when each app is
/// due next.
struct Memory {
    /// When this master took the lead: its usage table was empty then.
    leading_since: Timestamp,
    /// How long after `leading_since` an evaluation may wait for usage.
    usage_grace: Duration,
    next_at: BTreeMap<AppId, Timestamp>,
}

impl Memory {
    /// A leadership's memory, begun when it took the lead at `leading_since`, reading agents'
    /// usage every `usage_interval`.
    fn new(leading_since: Timestamp, usage_interval: Duration) -> Memory {
        // A CPU sample takes two reads of the agent; each read starts an interval after the
        // previous one and may take up to the fetch timeout.
        let usage_grace = (usage_interval + FETCH_TIMEOUT) * 2;
        Memory { leading_since, usage_grace, next_at: BTreeMap::new() }
    }

    /// Whether an app measured as `samples` may be evaluated at `now`. A new leader starts
    /// with no usage, and a ready instance without a sample counts as busy when scaling down:
    /// evaluated at once, an idle app would be recommended more instances than it needs and
    /// the window would hold that recommendation. So an app waits until every ready instance
    /// has a sample of each per-instance metric, or until the grace after taking the lead is
    /// over: an agent that never reports must not stop its apps' autoscaling, and from then
    /// on an instance without a sample counts against the scale-down as the HPA's does.
    fn usage_gathered(&self, now: Timestamp, samples: &[MetricSample]) -> bool {
        if now >= self.leading_since.plus(self.usage_grace) {
            return true;
        }
        samples.iter().all(|sample| match sample {
            MetricSample::PerInstance(instances) => instances.iter().all(|instance| {
                instance.readiness == Readiness::NotReady || instance.utilization.is_some()
            }),
            // Not the leader's to gather: a Prometheus query answers at once or not at all.
            MetricSample::Whole(_) => true,
        })
    }

    /// Makes an app due again at the next look: its evaluation waits for usage.
    fn retry(&mut self, app_id: &AppId, now: Timestamp) {
        self.next_at.insert(app_id.clone(), now);
    }

    /// The apps whose evaluation is due at `now`, each due again its evaluation interval
    /// later. A newly autoscaled app is due at once; apps no longer autoscaled are forgotten,
    /// so a policy put back later starts afresh.
    fn due(&mut self, now: Timestamp, apps: &BTreeMap<AppId, AppView>) -> Vec<AppId> {
        self.next_at.retain(|app_id, _| apps.contains_key(app_id));
        let mut due = Vec::new();
        for (app_id, view) in apps {
            let next_at = self.next_at.entry(app_id.clone()).or_insert(now);
            if now < *next_at {
                continue;
            }
            *next_at = now.plus(view.policy.evaluation_interval);
            due.push(app_id.clone());
        }
        due
    }
}

/// What one app's evaluation needs from the state, copied out under the read.
struct AppView {
    policy: AutoscalerPolicy,
    current: u32,
    deployment: Option<DeploymentId>,
    instances: Vec<(TaskId, Readiness)>,
    scalings: Vec<RecordedScaling>,
    recommendations: Vec<Recommendation>,
}

fn view_apps(state: &ClusterState) -> BTreeMap<AppId, AppView> {
    let services = state.services();
    let now = state.now();
    services
        .autoscalers
        .iter()
        .filter_map(|(app_id, autoscaler)| {
            let app = services.app(app_id)?;
            let framework_id = services.framework_id.as_ref();
            let instances = services
                .instances_of(app_id)
                .filter(|(_, instance)| !instance.is_inactive(app.spec.unreachable, now))
                .filter_map(|(task_id, _)| {
                    let task = state.task(framework_id?, task_id)?;
                    // Instances being killed are leaving: they count for nothing.
                    if task.kill_requested.is_some() {
                        return None;
                    }
                    let readiness = if task.is_ready(app.spec.health_checked) {
                        Readiness::Ready
                    } else {
                        Readiness::NotReady
                    };
                    Some((task_id.clone(), readiness))
                })
                .collect();
            let view = AppView {
                policy: autoscaler.policy.clone(),
                current: app.spec.instances,
                deployment: services.deployments_of(app_id).next().map(|d| d.id.clone()),
                instances,
                scalings: autoscaler.scalings.iter().cloned().collect(),
                recommendations: autoscaler.recommendations.iter().copied().collect(),
            };
            Some((app_id.clone(), view))
        })
        .collect()
}

async fn evaluate_due(master: &Master, memory: &mut Memory) {
    // Most clusters autoscale nothing: a local look spares them a linearizable read a second.
    let any = master
        .read_state(ReadConsistency::Local, |state| !state.services().autoscalers.is_empty())
        .await;
    if matches!(any, Ok(false)) {
        memory.next_at.clear();
        master.inner.metrics.autoscaler_at_max.reset();
        return;
    }
    let apps = match master.read_state(ReadConsistency::Linearizable, view_apps).await {
        Ok(apps) => apps,
        Err(error) => {
            master.inner.metrics.autoscaler_errors.with_label_values(&["read_state"]).inc();
            tracing::warn!(%error, "autoscaler could not read the state; evaluations wait");
            return;
        }
    };
    let now = wall_clock();
    for app_id in stale_series(&master.inner.metrics.autoscaler_at_max, &apps) {
        let _ = master.inner.metrics.autoscaler_at_max.remove_label_values(&[app_id.as_str()]);
    }
    let due = memory.due(now, &apps);
    let mut apps = apps;
    for app_id in due {
        let view = apps.remove(&app_id).expect("due names only apps of the view");
        let samples = measure(master, &view).await;
        if !memory.usage_gathered(now, &samples) {
            tracing::debug!(%app_id, "autoscaler waits for the usage of the app's instances");
            // Every autoscaled app has its series from the start (0 until an evaluation
            // finds it at max), so dashboards and the at-max alert see it while it waits.
            master.inner.metrics.autoscaler_at_max.with_label_values(&[app_id.as_str()]);
            memory.retry(&app_id, now);
            continue;
        }
        evaluate(master, now, app_id, view, samples).await;
    }
}

/// The apps the at-max gauge has a series for that are no longer autoscaled.
fn stale_series(gauge: &prometheus::IntGaugeVec, apps: &BTreeMap<AppId, AppView>) -> Vec<String> {
    gauge
        .collect()
        .iter()
        .flat_map(|family| family.get_metric())
        .flat_map(|metric| metric.get_label())
        .filter(|label| label.name() == "app")
        .map(|label| label.value().to_owned())
        .filter(|app| !apps.keys().any(|app_id| app_id.as_str() == app))
        .collect()
}

async fn evaluate(
    master: &Master,
    now: Timestamp,
    app_id: AppId,
    view: AppView,
    samples: Vec<MetricSample>,
) {
    let metrics = &master.inner.metrics;
    // Unused unless the plan scales: a scaling's deployment needs an id before it is proposed.
    let deployment_id = DeploymentId::new(uuid::Uuid::new_v4().to_string());
    let plan = plan(now, &app_id, &view, &samples, deployment_id);
    metrics.autoscaler_at_max.with_label_values(&[app_id.as_str()]).set(i64::from(plan.at_max));
    if matches!(plan.decision, Decision::Hold(_)) {
        metrics.autoscaler_decisions.with_label_values(&["hold"]).inc();
    }
    master.inner.autoscaler.set(app_id.clone(), now, plan.decision);
    let (command, scaled) = match plan.proposal {
        None => return,
        Some(Proposal::Scale { command, direction, reason }) => {
            (command, Some((direction, reason)))
        }
        Some(Proposal::Record(command)) => (command, None),
    };
    match master.propose(new_request_id(), Actor::Leader, command).await {
        Ok(committed) => match (committed.outcome.rejection(), scaled) {
            (None, Some((direction, reason))) => {
                metrics.autoscaler_decisions.with_label_values(&[direction]).inc();
                tracing::info!(%app_id, %reason, "autoscaled");
            }
            (None, None) => {}
            (Some(rejection), _) => {
                metrics.autoscaler_errors.with_label_values(&["refused"]).inc();
                tracing::info!(%app_id, %rejection, "autoscaler's command refused by the log");
            }
        },
        Err(error) => {
            metrics.autoscaler_errors.with_label_values(&["propose"]).inc();
            tracing::warn!(%app_id, %error, "autoscaler's command not committed");
        }
    }
}

/// What one evaluation of an app asks of the log.
#[derive(Debug, PartialEq)]
enum Proposal {
    /// An `AutoscaleApp`, `direction` "up" or "down", `reason` for people.
    Scale { command: Command, direction: &'static str, reason: String },
    /// A `RecordRecommendation`: the window's evidence changed.
    Record(Command),
}

/// One evaluation's outcome, decided from what was read and measured alone.
#[derive(Debug, PartialEq)]
struct Plan {
    decision: Decision,
    /// The app sits at `max` while its metrics ask for more (`corral_autoscaler_at_max`).
    at_max: bool,
    proposal: Option<Proposal>,
}

/// Decides for one app and says what to propose: a scaling as one `AutoscaleApp` starting
/// `deployment_id`, or the recommendation when it differs from the app's latest recorded
/// one (a hold during a deployment records the current count: the window sees "stay").
fn plan(
    now: Timestamp,
    app_id: &AppId,
    view: &AppView,
    samples: &[MetricSample],
    deployment_id: DeploymentId,
) -> Plan {
    let ready =
        view.instances.iter().filter(|(_, readiness)| *readiness == Readiness::Ready).count();
    let decision = decide(&Evaluation {
        policy: &view.policy,
        now,
        current: view.current,
        ready: u32::try_from(ready).unwrap_or(u32::MAX),
        deployment: view.deployment.as_ref(),
        samples,
        history: &view.recommendations,
        scalings: &view.scalings,
    });
    let recommended = match &decision {
        Decision::Scale(scaling) => Some(scaling.recommended),
        Decision::Hold(hold) => hold.recommended,
    };
    let at_max = decision.desired() == view.policy.max
        && recommended.is_some_and(|recommended| recommended > view.policy.max);
    let recorded = view.recommendations.last().map(|recommendation| recommendation.count);
    let proposal = match &decision {
        Decision::Scale(scaling) => {
            let direction = if scaling.desired > scaling.current { "up" } else { "down" };
            let reason = crate::routes::autoscaler::scaling_reason(scaling);
            let command = Command::AutoscaleApp {
                app_id: app_id.clone(),
                scaling: scaling.clone(),
                deployment_id,
            };
            Some(Proposal::Scale { command, direction, reason })
        }
        Decision::Hold(hold) => {
            // A deployment is watched as "stay"; no recommendation leaves the window as is.
            let count = match hold.reason {
                HoldReason::DeploymentRunning { .. } => Some(view.current),
                _ => hold.recommended,
            };
            count.filter(|count| Some(*count) != recorded).map(|count| {
                Proposal::Record(Command::RecordRecommendation { app_id: app_id.clone(), count })
            })
        }
    };
    Plan { decision, at_max, proposal }
}

/// One sample per metric of the policy, in its order.
async fn measure(master: &Master, view: &AppView) -> Vec<MetricSample> {
    let mut samples = Vec::with_capacity(view.policy.metrics.len());
    for metric in &view.policy.metrics {
        let sample = match metric {
            MetricTarget::Cpu { .. } => {
                per_instance(&view.instances, &master.inner.usage, TaskUsage::cpu_utilization)
            }
            MetricTarget::Memory { .. } => {
                per_instance(&view.instances, &master.inner.usage, TaskUsage::memory_utilization)
            }
            MetricTarget::Prometheus { url, query, .. } => {
                match query_prometheus(master, url, query).await {
                    Ok(value) => MetricSample::Whole(Millionths::from_f64(value)),
                    Err(error) => {
                        master.inner.metrics.autoscaler_errors.with_label_values(&["metric"]).inc();
                        tracing::warn!(%url, %query, %error, "autoscaler's Prometheus query failed");
                        MetricSample::Whole(None)
                    }
                }
            }
        };
        samples.push(sample);
    }
    samples
}

/// A utilization metric's sample: each live instance with its readiness and, when the
/// leader holds usage for its task, `utilization` of it.
fn per_instance(
    instances: &[(TaskId, Readiness)],
    usage: &UsageTable,
    utilization: fn(&TaskUsage) -> Option<Millionths>,
) -> MetricSample {
    let samples = instances
        .iter()
        .map(|(task_id, readiness)| InstanceSample {
            readiness: *readiness,
            utilization: usage.get(task_id).as_ref().and_then(utilization),
        })
        .collect();
    MetricSample::PerInstance(samples)
}

/// The first value of an instant query (`/api/v1/query`).
async fn query_prometheus(master: &Master, url: &str, query: &str) -> Result<f64, String> {
    let endpoint = format!("{}/api/v1/query", url.trim_end_matches('/'));
    let response = master
        .inner
        .agent_http
        .get(&endpoint)
        .query(&[("query", query)])
        .timeout(FETCH_TIMEOUT)
        .send()
        .await
        .map_err(|error| format!("GET {endpoint}: {error}"))?;
    let body: serde_json::Value =
        response.json().await.map_err(|error| format!("GET {endpoint}: {error}"))?;
    let text = body
        .pointer("/data/result/0/value/1")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| format!("GET {endpoint}: no sample in the answer"))?;
    text.parse::<f64>().map_err(|error| format!("GET {endpoint}: value '{text}': {error}"))
}

#[cfg(test)]
mod tests;
