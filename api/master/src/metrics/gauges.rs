//! The cluster gauges, read under the state's read lock from the running totals the state
//! keeps as it applies (`corral_state::Tally`): agents by standing, tasks by state, resources
//! total, allocated and offered by role and by framework. Nothing here walks agents, tasks or
//! offers, so a scrape costs the same at 10,000 agents and 100,000 tasks as at ten, and holds
//! the lock for microseconds: no copy of the state, no blocking thread.
//!
//! Why totals kept by the state and not a walk under the lock: a walk of 100,000 tasks holds
//! the read lock for tens of milliseconds, which stalls every apply behind it; a copy to walk
//! outside the lock cost ~0.5 s per scrape at that size (BENCHMARKS.md, "Metrics scrapes").
//! The totals live in the pure state crate, so every replica keeps the same ones and the
//! state's property tests check them against a recount after every random command.
//!
//! What is still walked here is bounded by what operators define, not by the load: the
//! frameworks (connected or not, holding offers), and the Marathon apps with their instances
//! (desired, running, healthy, waiting; the per-app series capped at `MAX_APP_SERIES`).

use std::collections::{BTreeMap, BTreeSet};

use corral_state::model::{FrameworkState, TaskState};
use corral_state::{AgentStanding, Amounts, ClusterState, Held, Role, Timestamp};

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
    fn of(kind: &'static str, role: &str, amounts: Amounts) -> ResourceAmounts {
        ResourceAmounts {
            kind,
            role: role.to_owned(),
            cpus: amounts.cpus.as_f64(),
            memory_bytes: amounts.mem.as_f64() * MEBIBYTE,
            disk_bytes: amounts.disk.as_f64() * MEBIBYTE,
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

fn dominant_share(used: Amounts, total: Amounts) -> f64 {
    used.named()
        .into_iter()
        .zip(total.named())
        .filter(|(_, (_, total))| !total.is_zero())
        .map(|((_, used), (_, total))| used.as_f64() / total.as_f64())
        .fold(0.0_f64, f64::max)
}

fn amounts_of<K: Ord>(held: &BTreeMap<K, Held>, key: &K) -> Amounts {
    held.get(key).map_or_else(Amounts::default, |held| held.amounts)
}

impl StateGauges {
    /// Reads the state's running totals and its (small) frameworks and apps; meant to run
    /// under the read lock, on the state itself (a copy made by `without_bookkeeping` has no
    /// clock, so every age would read 0).
    pub(crate) fn compute(state: &ClusterState) -> StateGauges {
        let mut gauges = StateGauges::default();
        let tally = state.tally();
        let now = state.now();
        for standing in AgentStanding::ALL {
            gauges.agents.insert(standing.as_str(), tally.agents(standing));
        }
        gauges.heartbeat_age_max_seconds =
            tally.oldest_heartbeat().map_or(0.0, |oldest| seconds_between(oldest, now));
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
            gauges.tasks.insert(task_state.as_mesos_str(), tally.tasks(task_state));
        }
        gauges.compute_resources(state);
        gauges.compute_services(state);
        gauges
    }

    fn compute_resources(&mut self, state: &ClusterState) {
        let tally = state.tally();
        let total = tally.agent_total();
        self.resources.push(ResourceAmounts::of("total", "*", total));
        let allocated = tally.allocated_by_role();
        let offered = tally.offered_by_role();
        for (role, held) in allocated {
            self.resources.push(ResourceAmounts::of("allocated", role.as_str(), held.amounts));
        }
        for (role, held) in offered {
            self.resources.push(ResourceAmounts::of("offered", role.as_str(), held.amounts));
        }
        let roles: BTreeSet<&Role> = allocated.keys().chain(offered.keys()).collect();
        for role in roles {
            let used = amounts_of(allocated, role).plus(amounts_of(offered, role));
            self.dominant_shares.insert(role.clone(), dominant_share(used, total));
        }
        let (allocated, offered) = (tally.allocated_by_framework(), tally.offered_by_framework());
        let mut shares: Vec<FrameworkShare> = state
            .frameworks()
            .values()
            .map(|framework| {
                let used =
                    amounts_of(allocated, &framework.id).plus(amounts_of(offered, &framework.id));
                FrameworkShare {
                    framework_id: framework.id.as_str().to_owned(),
                    name: framework.info.name.clone(),
                    share: dominant_share(used, total),
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
