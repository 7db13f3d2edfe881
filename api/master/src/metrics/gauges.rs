//! The cluster gauges: computed from a copy of the state into locals (a pure function of it),
//! then set in one step, so a scrape never holds the apply lock for a whole-state scan.

use std::collections::{BTreeMap, BTreeSet};

use corral_state::model::{AgentMode, FrameworkState, Liveness, TaskState};
use corral_state::{ClusterState, Resources, Role, Timestamp};

use super::{Metrics, MAX_APP_SERIES, MAX_FRAMEWORK_SERIES};

const MEBIBYTE: f64 = 1024.0 * 1024.0;

/// Resources of one kind (total, offered, allocated) and role, in base units.
#[derive(Debug, PartialEq)]
pub(crate) struct ResourceAmounts {
    pub(crate) kind: &'static str,
    pub(crate) role: String,
    pub(crate) cpus: f64,
    pub(crate) memory_bytes: f64,
    pub(crate) disk_bytes: f64,
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

/// One framework's dominant share, for the bounded per-framework series.
#[derive(Debug, PartialEq)]
pub(crate) struct FrameworkShare {
    framework_id: String,
    name: String,
    share: f64,
}

/// Instance counts of one Marathon app.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct AppInstances {
    pub(crate) desired: i64,
    pub(crate) running: i64,
    pub(crate) healthy: i64,
    /// Desired but not launched yet: waiting for offers, or in launch backoff.
    pub(crate) waiting: i64,
}

/// The cluster gauges' values at one applied position.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct StateGauges {
    pub(crate) agents: BTreeMap<&'static str, i64>,
    pub(crate) heartbeat_age_max_seconds: f64,
    pub(crate) frameworks: BTreeMap<&'static str, i64>,
    pub(crate) frameworks_without_offers: i64,
    pub(crate) offers: i64,
    pub(crate) tasks: BTreeMap<&'static str, i64>,
    pub(crate) resources: Vec<ResourceAmounts>,
    pub(crate) dominant_shares: BTreeMap<Role, f64>,
    pub(crate) framework_shares: Vec<FrameworkShare>,
    pub(crate) apps: BTreeMap<String, AppInstances>,
    pub(crate) launch_delays: BTreeMap<String, f64>,
    pub(crate) deployments: i64,
    pub(crate) deployment_age_max_seconds: f64,
}

fn seconds_between(earlier: Timestamp, later: Timestamp) -> f64 {
    later.since(earlier).as_secs_f64()
}

fn dominant_share(used: &Resources, total: &Resources) -> f64 {
    ["cpus", "mem", "disk", "gpus"]
        .iter()
        .filter(|name| !total.scalar(name).is_zero())
        .map(|name| used.scalar(name).as_f64() / total.scalar(name).as_f64())
        .fold(0.0_f64, f64::max)
}

impl StateGauges {
    pub(crate) fn compute(state: &ClusterState) -> StateGauges {
        let mut gauges = StateGauges::default();
        let now = state.now();
        for label in ["active", "deactivated", "draining", "drained", "unreachable", "gone"] {
            gauges.agents.insert(label, 0);
        }
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
            if agent.liveness == Liveness::Reachable {
                gauges.heartbeat_age_max_seconds = gauges
                    .heartbeat_age_max_seconds
                    .max(seconds_between(agent.last_heartbeat, now));
            }
        }
        gauges.frameworks.insert("connected", 0);
        gauges.frameworks.insert("disconnected", 0);
        for framework in state.frameworks().values() {
            let label = match framework.state {
                FrameworkState::Connected => "connected",
                FrameworkState::Disconnected { .. } => "disconnected",
            };
            *gauges.frameworks.entry(label).or_default() += 1;
            if framework.is_connected()
                && framework.offers.is_empty()
                && framework.suppressed_roles.is_empty()
            {
                gauges.frameworks_without_offers += 1;
            }
        }
        gauges.frameworks.insert("completed", state.completed_frameworks().len() as i64);
        gauges.offers = state.offers().len() as i64;
        for task_state in TaskState::ALL {
            gauges.tasks.insert(task_state.as_mesos_str(), 0);
        }
        for task in state.tasks() {
            *gauges.tasks.entry(task.state.as_mesos_str()).or_default() += 1;
        }
        gauges.compute_resources(state);
        gauges.compute_services(state);
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
            self.dominant_shares.insert(role.clone(), dominant_share(&used, &total));
        }
        let mut shares: Vec<FrameworkShare> = state
            .frameworks()
            .values()
            .map(|framework| {
                let mut used = Resources::new();
                for task in framework.tasks.values().filter(|task| !task.state.is_terminal()) {
                    used.add(task.resources());
                }
                for offer in framework.offers.iter().filter_map(|id| state.offer(id)) {
                    used.add(&offer.resources);
                }
                FrameworkShare {
                    framework_id: framework.id.as_str().to_owned(),
                    name: framework.info.name.clone(),
                    share: dominant_share(&used, &total),
                }
            })
            .collect();
        shares.sort_by(|a, b| {
            b.share.total_cmp(&a.share).then_with(|| a.framework_id.cmp(&b.framework_id))
        });
        shares.truncate(MAX_FRAMEWORK_SERIES);
        self.framework_shares = shares;
    }

    fn compute_services(&mut self, state: &ClusterState) {
        let services = state.services();
        let now = state.now();
        let framework_id = state.service_framework_id();
        for app in services.apps.values() {
            let mut counts =
                AppInstances { desired: i64::from(app.spec.instances), ..AppInstances::default() };
            let live = i64::from(state.instance_counts(app).live);
            counts.waiting = (counts.desired - live).max(0);
            for task_id in
                services.instances.get(&app.id).into_iter().flat_map(|tasks| tasks.keys())
            {
                let Some(task) = state.task(&framework_id, task_id) else { continue };
                if task.state != TaskState::Running {
                    continue;
                }
                counts.running += 1;
                let healthy = task.latest_status().and_then(|status| status.healthy);
                if app.spec.health_checked && healthy == Some(true) {
                    counts.healthy += 1;
                }
            }
            let delay = app
                .launch_delay
                .as_ref()
                .filter(|delay| delay.until > now)
                .map_or(0.0, |delay| seconds_between(now, delay.until));
            self.launch_delays.insert(app.id.as_str().to_owned(), delay);
            self.apps.insert(app.id.as_str().to_owned(), counts);
        }
        self.deployments = services.deployments.len() as i64;
        self.deployment_age_max_seconds = services
            .deployments
            .values()
            .map(|deployment| seconds_between(deployment.started_at, now))
            .fold(0.0_f64, f64::max);
    }

    /// Resets and sets every cluster gauge (the caller holds the metrics' gauge lock).
    pub(crate) fn set(&self, metrics: &Metrics) {
        metrics.agents.reset();
        for (label, count) in &self.agents {
            metrics.agents.with_label_values(&[label]).set(*count);
        }
        metrics.agent_heartbeat_age_seconds.set(self.heartbeat_age_max_seconds);
        metrics.frameworks.reset();
        for (label, count) in &self.frameworks {
            metrics.frameworks.with_label_values(&[label]).set(*count);
        }
        metrics.frameworks_without_offers.set(self.frameworks_without_offers);
        metrics.offers_outstanding.set(self.offers);
        metrics.tasks.reset();
        for (label, count) in &self.tasks {
            metrics.tasks.with_label_values(&[label]).set(*count);
        }
        metrics.resource_cpus.reset();
        metrics.resource_memory_bytes.reset();
        metrics.resource_disk_bytes.reset();
        for amounts in &self.resources {
            let labels = [amounts.kind, amounts.role.as_str()];
            metrics.resource_cpus.with_label_values(&labels).set(amounts.cpus);
            metrics.resource_memory_bytes.with_label_values(&labels).set(amounts.memory_bytes);
            metrics.resource_disk_bytes.with_label_values(&labels).set(amounts.disk_bytes);
        }
        metrics.role_dominant_share.reset();
        for (role, share) in &self.dominant_shares {
            metrics.role_dominant_share.with_label_values(&[role.as_str()]).set(*share);
        }
        metrics.framework_dominant_share.reset();
        for share in &self.framework_shares {
            metrics
                .framework_dominant_share
                .with_label_values(&[share.framework_id.as_str(), share.name.as_str()])
                .set(share.share);
        }
        metrics.marathon_apps.set(self.apps.len() as i64);
        let mut total = AppInstances::default();
        metrics.marathon_app_instances.reset();
        for counts in self.apps.values() {
            total.desired += counts.desired;
            total.running += counts.running;
            total.healthy += counts.healthy;
            total.waiting += counts.waiting;
        }
        for (app, counts) in self.apps.iter().take(MAX_APP_SERIES) {
            for (status, value) in [
                ("desired", counts.desired),
                ("running", counts.running),
                ("healthy", counts.healthy),
            ] {
                metrics
                    .marathon_app_instances
                    .with_label_values(&[app.as_str(), status])
                    .set(value);
            }
        }
        for (status, value) in [
            ("desired", total.desired),
            ("running", total.running),
            ("healthy", total.healthy),
            ("waiting", total.waiting),
        ] {
            metrics.marathon_instances.with_label_values(&[status]).set(value);
        }
        metrics.marathon_launch_delay_seconds.reset();
        for (app, seconds) in self.launch_delays.iter().take(MAX_APP_SERIES) {
            metrics.marathon_launch_delay_seconds.with_label_values(&[app.as_str()]).set(*seconds);
        }
        metrics.marathon_deployments.set(self.deployments);
        metrics.marathon_deployment_age_seconds.set(self.deployment_age_max_seconds);
    }
}
