//! Long-running services (Marathon's apps and deployments), as the log records them.
//!
//! The state keeps what its rules need: how many instances, which configuration version each
//! instance runs, the health and capacity bounds of a rolling replacement, and the launch
//! backoff. The full app definition is carried as opaque JSON text that only the API reads;
//! placement (constraints, ports, roles) is the built-in scheduler's business, as it would be
//! an external framework's.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{Autoscaler, TaskState};
use crate::shared::SharedMap;
use crate::{AgentId, AppId, DeploymentId, FrameworkId, Role, TaskId, Timestamp};

impl AppId {
    /// Marathon's task-id prefix for the app: `/group/app` → `group_app`. Marathon forbids
    /// `_` in path segments, so the prefix maps back to exactly one app.
    pub fn safe_name(&self) -> String {
        self.as_str().trim_start_matches('/').replace('/', "_")
    }
}

/// What the state needs of an app definition to enforce its rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppSpec {
    pub instances: u32,
    pub role: Role,
    /// With health checks, an instance counts as ready only once it reports healthy.
    pub health_checked: bool,
    pub upgrade: UpgradeBounds,
    pub backoff: Backoff,
    pub unreachable: UnreachablePolicy,
    /// The service ports asked for, one per port of a task (Marathon's
    /// `portDefinitions[].port`, or `portMappings[].servicePort` when bridged); 0 asks the
    /// state for a free one from `SERVICE_PORT_RANGE`.
    pub service_ports: Vec<u16>,
}

/// Marathon's `local_port_min`..=`local_port_max`: where a service port asked for as 0 is
/// taken from.
pub const SERVICE_PORT_RANGE: std::ops::RangeInclusive<u16> = 10_000..=20_000;

/// Marathon's `unreachableStrategy`: what becomes of an instance whose agent stops answering.
/// Its task is then `TASK_UNREACHABLE`, not ended: the agent may come back with it running.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnreachablePolicy {
    /// The instance keeps its place until its agent comes back or is gone for good.
    Disabled,
    Enabled {
        /// Unreachable this long, the instance stops counting and a replacement is launched.
        inactive_after: Duration,
        /// Unreachable this long, the instance is forgotten; it is killed if it comes back.
        /// Never shorter than `inactive_after`.
        expunge_after: Duration,
    },
}

impl UnreachablePolicy {
    /// Marathon's defaults: a replacement after 5 minutes, forgotten after 10.
    pub const MARATHON_DEFAULT: UnreachablePolicy = UnreachablePolicy::Enabled {
        inactive_after: Duration::from_secs(300),
        expunge_after: Duration::from_secs(600),
    };

    fn is_inactive(self, unreachable_since: Timestamp, now: Timestamp) -> bool {
        match self {
            UnreachablePolicy::Disabled => false,
            UnreachablePolicy::Enabled { inactive_after, .. } => {
                unreachable_since.plus(inactive_after) <= now
            }
        }
    }

    fn is_expunged(self, unreachable_since: Timestamp, now: Timestamp) -> bool {
        match self {
            UnreachablePolicy::Disabled => false,
            UnreachablePolicy::Enabled { expunge_after, .. } => {
                unreachable_since.plus(expunge_after) <= now
            }
        }
    }
}

/// Marathon's `upgradeStrategy`, in thousandths so it compares and hashes exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpgradeBounds {
    /// Of `instances`, the part that must stay healthy during a replacement.
    pub minimum_health_capacity_permille: u32,
    /// Of `instances`, how many extra may run during a replacement.
    pub maximum_over_capacity_permille: u32,
}

impl UpgradeBounds {
    /// Instances that must stay ready while old ones are replaced.
    pub fn minimum_healthy(self, instances: u32) -> u32 {
        (u64::from(instances) * u64::from(self.minimum_health_capacity_permille)).div_ceil(1000)
            as u32
    }

    /// The most instances, old and new, that may be live at once. A strategy that allows
    /// neither an unhealthy moment nor an extra instance could never make progress, so
    /// Marathon then allows one extra; so do we.
    pub fn maximum_live(self, instances: u32) -> u32 {
        let extra =
            (u64::from(instances) * u64::from(self.maximum_over_capacity_permille) / 1000) as u32;
        let stuck = extra == 0 && self.minimum_healthy(instances) >= instances && instances > 0;
        instances + if stuck { 1 } else { extra }
    }
}

/// Marathon's `backoffSeconds`, `backoffFactor`, `maxLaunchDelaySeconds`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backoff {
    pub initial: Duration,
    pub factor_permille: u32,
    pub maximum: Duration,
}

impl Backoff {
    /// The delay after one more failure, given the delay now in force.
    pub fn next(self, current: Option<Duration>) -> Duration {
        let next = match current {
            None => self.initial,
            Some(current) => {
                let nanos = current.as_nanos() * u128::from(self.factor_permille) / 1000;
                Duration::from_nanos(nanos.min(u128::from(u64::MAX)) as u64)
            }
        };
        next.min(self.maximum)
    }
}

/// One version of an app: what `GET /v2/apps/{id}/versions/{version}` returns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRevision {
    pub version: Timestamp,
    /// When its configuration last changed (Marathon's `versionInfo.lastConfigChangeAt`).
    pub config_version: Timestamp,
    pub spec: AppSpec,
    /// The normalised definition as JSON, without `instances` (that lives in `spec`).
    pub definition: String,
    /// The service ports this version holds, one per `spec.service_ports`, none of them 0.
    pub service_ports: Vec<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchDelay {
    pub delay: Duration,
    /// No instance of the app is launched before this.
    pub until: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskFailure {
    pub task_id: TaskId,
    pub agent_id: AgentId,
    pub state: TaskState,
    pub message: Option<String>,
    pub at: Timestamp,
    pub version: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceApp {
    pub id: AppId,
    pub spec: AppSpec,
    pub definition: String,
    /// Changes with every change, scaling included (Marathon's `version`).
    pub version: Timestamp,
    /// Changes when the configuration does; instances of an older one are replaced.
    pub config_version: Timestamp,
    /// Earlier versions, oldest first, bounded by `MAX_APP_VERSIONS`; the current one last.
    pub versions: VecDeque<AppRevision>,
    pub launch_delay: Option<LaunchDelay>,
    pub last_task_failure: Option<TaskFailure>,
    /// The service ports the app holds, one per `spec.service_ports`, none of them 0: unique
    /// across apps and kept across updates, rollbacks and failovers.
    pub service_ports: Vec<u16>,
}

/// How many versions of an app are kept for `/versions` and rollbacks.
pub const MAX_APP_VERSIONS: usize = 50;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DeploymentAction {
    /// The app is new: start its instances.
    StartApplication,
    /// Only the instance count changed.
    ScaleApplication,
    /// The configuration changed (or a restart was asked): replace every instance.
    RestartApplication,
    /// The app was deleted: stop its instances.
    StopApplication,
}

impl DeploymentAction {
    /// Marathon's names in `/v2/deployments`.
    pub fn as_marathon_str(self) -> &'static str {
        match self {
            DeploymentAction::StartApplication => "StartApplication",
            DeploymentAction::ScaleApplication => "ScaleApplication",
            DeploymentAction::RestartApplication => "RestartApplication",
            DeploymentAction::StopApplication => "StopApplication",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    pub id: DeploymentId,
    pub app_id: AppId,
    pub action: DeploymentAction,
    /// The app version this deployment brings about.
    pub version: Timestamp,
    pub started_at: Timestamp,
    /// The app before the deployment, to roll back to; `None` when it did not exist.
    pub previous: Option<Box<AppRevision>>,
}

/// A task the built-in service framework launched, and which app version it runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub app_id: AppId,
    pub config_version: Timestamp,
    pub agent_id: AgentId,
    pub launched_at: Timestamp,
    /// Set while its task is `TASK_UNREACHABLE`, to when it became so.
    pub unreachable_since: Option<Timestamp>,
}

impl Instance {
    /// Unreachable for longer than the app's policy tolerates: it no longer counts towards
    /// the app's instances, so a replacement may be launched beside it.
    pub fn is_inactive(&self, policy: UnreachablePolicy, now: Timestamp) -> bool {
        self.unreachable_since.is_some_and(|since| policy.is_inactive(since, now))
    }

    /// Unreachable for so long that the app forgets it.
    pub fn is_due_for_expunge(&self, policy: UnreachablePolicy, now: Timestamp) -> bool {
        self.unreachable_since.is_some_and(|since| policy.is_expunged(since, now))
    }
}

/// How many of an app's instances are live, and how many of those run the current
/// configuration and are not being killed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InstanceCounts {
    /// Every instance not ended yet, those being killed included: they hold their place
    /// until they end. Inactive ones (unreachable past their app's tolerance) do not.
    pub live: u32,
    pub current: u32,
}

/// Apps, deployments and the instances of the built-in service framework.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceState {
    /// The built-in framework, from the first app on.
    pub framework_id: Option<FrameworkId>,
    pub apps: SharedMap<AppId, ServiceApp>,
    pub deployments: SharedMap<DeploymentId, Deployment>,
    /// Tasks of the service framework that are not terminal yet, by app. An app that was
    /// deleted keeps its entry here until its last instance has ended.
    pub instances: SharedMap<AppId, SharedMap<TaskId, Instance>>,
    pub instance_apps: SharedMap<TaskId, AppId>,
    /// Which app holds each service port (the index of `ServiceApp::service_ports`).
    pub service_ports: BTreeMap<u16, AppId>,
    /// Autoscaling policies and the scalings they made, by app.
    pub autoscalers: BTreeMap<AppId, Autoscaler>,
}

impl ServiceState {
    pub fn app(&self, app_id: &AppId) -> Option<&ServiceApp> {
        self.apps.get(app_id)
    }

    pub fn instances_of(&self, app_id: &AppId) -> impl Iterator<Item = (&TaskId, &Instance)> {
        self.instances.get(app_id).into_iter().flat_map(|instances| instances.iter())
    }

    pub fn instance(&self, task_id: &TaskId) -> Option<&Instance> {
        let app_id = self.instance_apps.get(task_id)?;
        self.instances.get(app_id)?.get(task_id)
    }

    pub(crate) fn instance_mut(&mut self, task_id: &TaskId) -> Option<&mut Instance> {
        let app_id = self.instance_apps.get(task_id)?;
        self.instances.get_mut(app_id)?.get_mut(task_id)
    }

    /// Takes the instance out of the index (an app without instances leaves it too).
    pub(crate) fn remove_instance(&mut self, task_id: &TaskId) -> Option<Instance> {
        let app_id = self.instance_apps.remove(task_id)?;
        let instances = self.instances.get_mut(&app_id)?;
        let instance = instances.remove(task_id);
        if instances.is_empty() {
            self.instances.remove(&app_id);
        }
        instance
    }

    /// The deployment under way for an app, if any (at most one, unless forced).
    pub fn deployments_of<'a>(
        &'a self,
        app_id: &'a AppId,
    ) -> impl Iterator<Item = &'a Deployment> + 'a {
        self.deployments.values().filter(move |deployment| &deployment.app_id == app_id)
    }
}
