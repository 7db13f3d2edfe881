//! Events: the facts that applying a command produced. Each is self-contained, so a
//! subscriber resuming from an old cursor needs no state from that time to understand it.

use serde::{Deserialize, Serialize};

use crate::model::{
    AgentInfo, AppRevision, AutoscalerPolicy, Deployment, DrainConfig, FrameworkInfo, KillPolicy,
    LaunchDelay, MachineId, MaintenanceWindow, Offer, QuotaConfig, Recommendation, RecordedScaling,
    RemovalReason, RescindReason, Settings, Task, TaskFailure, TaskState, TaskStatus,
};
use crate::{
    AgentId, AppId, DeploymentId, ExecutorId, FrameworkId, OfferId, Resources, Role, Scalar,
    TaskId, Timestamp, UpdateUuid,
};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    AgentAdded {
        agent_id: AgentId,
        info: AgentInfo,
        total: Resources,
    },
    AgentReregistered {
        agent_id: AgentId,
        info: AgentInfo,
        total: Resources,
        was_unreachable: bool,
    },
    AgentUnreachable {
        agent_id: AgentId,
    },
    AgentRemoved {
        agent_id: AgentId,
        by_operator: bool,
    },
    AgentDeactivated {
        agent_id: AgentId,
    },
    AgentReactivated {
        agent_id: AgentId,
    },
    AgentDraining {
        agent_id: AgentId,
        config: DrainConfig,
    },
    AgentDrained {
        agent_id: AgentId,
    },
    /// Reservations changed the shape of the agent's total.
    AgentResourcesChanged {
        agent_id: AgentId,
        total: Resources,
    },

    FrameworkAdded {
        framework_id: FrameworkId,
        info: FrameworkInfo,
    },
    FrameworkResubscribed {
        framework_id: FrameworkId,
        info: FrameworkInfo,
    },
    FrameworkDisconnected {
        framework_id: FrameworkId,
    },
    FrameworkRemoved {
        framework_id: FrameworkId,
        reason: RemovalReason,
    },
    FrameworkSuppressed {
        framework_id: FrameworkId,
        roles: Vec<Role>,
    },
    FrameworkRevived {
        framework_id: FrameworkId,
        roles: Vec<Role>,
    },
    OfferFilterAdded {
        framework_id: FrameworkId,
        agent_id: AgentId,
        resources: Resources,
        until: Timestamp,
    },

    OfferCreated {
        offer: Offer,
    },
    OfferAccepted {
        offer_id: OfferId,
        framework_id: FrameworkId,
        agent_id: AgentId,
    },
    OfferDeclined {
        offer_id: OfferId,
        framework_id: FrameworkId,
        agent_id: AgentId,
    },
    OfferRescinded {
        offer_id: OfferId,
        framework_id: FrameworkId,
        agent_id: AgentId,
        reason: RescindReason,
    },

    /// A task was launched (TASK_STAGING): the agent named in it should run it.
    TaskAdded {
        task: std::sync::Arc<Task>,
    },
    TaskUpdated {
        framework_id: FrameworkId,
        agent_id: AgentId,
        status: TaskStatus,
        previous: TaskState,
    },
    /// A task in an ACCEPT that could not be launched; it never existed.
    TaskDropped {
        framework_id: FrameworkId,
        status: TaskStatus,
    },
    /// The agent should kill this task with this policy.
    TaskKillRequested {
        framework_id: FrameworkId,
        task_id: TaskId,
        agent_id: AgentId,
        kill_policy: Option<KillPolicy>,
    },
    ExecutorShutdownRequested {
        framework_id: FrameworkId,
        executor_id: ExecutorId,
        agent_id: AgentId,
    },
    StatusAcknowledged {
        framework_id: FrameworkId,
        agent_id: AgentId,
        task_id: TaskId,
        uuid: UpdateUuid,
    },
    /// An answer to RECONCILE: the latest known status, no uuid.
    TaskReconciled {
        framework_id: FrameworkId,
        status: TaskStatus,
    },
    /// Removed from the master's memory after its terminal update was acknowledged.
    TaskCompleted {
        framework_id: FrameworkId,
        task_id: TaskId,
        agent_id: AgentId,
    },

    MessageToExecutor {
        framework_id: FrameworkId,
        agent_id: AgentId,
        executor_id: ExecutorId,
        data: Vec<u8>,
    },
    MessageToFramework {
        framework_id: FrameworkId,
        agent_id: AgentId,
        executor_id: ExecutorId,
        data: Vec<u8>,
    },

    ResourcesReserved {
        agent_id: AgentId,
        resources: Resources,
    },
    ResourcesUnreserved {
        agent_id: AgentId,
        resources: Resources,
    },

    WeightUpdated {
        role: Role,
        weight: Scalar,
    },
    QuotaUpdated {
        config: QuotaConfig,
    },
    MaintenanceScheduleUpdated {
        windows: Vec<MaintenanceWindow>,
    },
    MaintenanceStarted {
        machines: Vec<MachineId>,
    },
    MaintenanceStopped {
        machines: Vec<MachineId>,
    },
    SettingsUpdated {
        settings: Settings,
    },

    /// An app was created or changed; `revision` is what it now is.
    AppUpdated {
        app_id: AppId,
        revision: Box<AppRevision>,
        created: bool,
    },
    /// The app is gone from `/v2/apps`; a stop deployment ends its instances.
    AppDeleted {
        app_id: AppId,
    },
    DeploymentStarted {
        deployment: Box<Deployment>,
    },
    /// Every instance runs the deployment's version, ready, and no other instance is left.
    DeploymentSucceeded {
        deployment_id: DeploymentId,
        app_id: AppId,
    },
    /// Replaced by a forced change, cancelled, or rolled back.
    DeploymentCanceled {
        deployment_id: DeploymentId,
        app_id: AppId,
    },
    /// An instance ended without being asked to: the next launch waits.
    AppLaunchDelayed {
        app_id: AppId,
        delay: LaunchDelay,
        failure: TaskFailure,
    },
    AppLaunchDelayReset {
        app_id: AppId,
    },
    /// An instance that could not be reached (or killed) was forgotten: it no longer counts
    /// for its app, and its task is killed should its agent come back.
    AppInstanceExpunged {
        app_id: AppId,
        task_id: TaskId,
    },
    /// Access control changed (tokens, credentials, policies, mode); never a hash.
    AclChanged {
        change: crate::auth::AclChange,
    },
    AutoscalerUpdated {
        app_id: AppId,
        policy: Box<AutoscalerPolicy>,
    },
    /// Deleted by an operator, or with its app.
    AutoscalerDeleted {
        app_id: AppId,
    },
    /// The autoscaler changed the app's instances (the deployment doing it follows).
    AppAutoscaled {
        app_id: AppId,
        scaling: Box<RecordedScaling>,
    },
    /// The autoscaler's recommendation for the app changed (its stabilization window).
    AutoscalerRecommended {
        app_id: AppId,
        recommendation: Recommendation,
    },
}

/// What a subscriber can filter on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Topic {
    Agent,
    Framework,
    Offer,
    Task,
    Role,
    Maintenance,
    Cluster,
    /// Apps and deployments of the built-in service scheduler.
    Service,
}

impl Topic {
    pub const ALL: [Topic; 8] = [
        Topic::Agent,
        Topic::Framework,
        Topic::Offer,
        Topic::Task,
        Topic::Role,
        Topic::Maintenance,
        Topic::Cluster,
        Topic::Service,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Topic::Agent => "agent",
            Topic::Framework => "framework",
            Topic::Offer => "offer",
            Topic::Task => "task",
            Topic::Role => "role",
            Topic::Maintenance => "maintenance",
            Topic::Cluster => "cluster",
            Topic::Service => "service",
        }
    }

    pub fn parse(text: &str) -> Result<Topic, String> {
        Topic::ALL
            .into_iter()
            .find(|topic| topic.as_str() == text)
            .ok_or_else(|| format!("unknown topic '{text}'; known: agent, framework, offer, task, role, maintenance, cluster, service"))
    }
}

impl Event {
    pub fn topic(&self) -> Topic {
        match self {
            Event::AgentAdded { .. }
            | Event::AgentReregistered { .. }
            | Event::AgentUnreachable { .. }
            | Event::AgentRemoved { .. }
            | Event::AgentDeactivated { .. }
            | Event::AgentReactivated { .. }
            | Event::AgentDraining { .. }
            | Event::AgentDrained { .. }
            | Event::AgentResourcesChanged { .. }
            | Event::ResourcesReserved { .. }
            | Event::ResourcesUnreserved { .. } => Topic::Agent,
            Event::FrameworkAdded { .. }
            | Event::FrameworkResubscribed { .. }
            | Event::FrameworkDisconnected { .. }
            | Event::FrameworkRemoved { .. }
            | Event::FrameworkSuppressed { .. }
            | Event::FrameworkRevived { .. }
            | Event::MessageToFramework { .. }
            | Event::MessageToExecutor { .. } => Topic::Framework,
            Event::OfferFilterAdded { .. }
            | Event::OfferCreated { .. }
            | Event::OfferAccepted { .. }
            | Event::OfferDeclined { .. }
            | Event::OfferRescinded { .. } => Topic::Offer,
            Event::TaskAdded { .. }
            | Event::TaskUpdated { .. }
            | Event::TaskDropped { .. }
            | Event::TaskKillRequested { .. }
            | Event::ExecutorShutdownRequested { .. }
            | Event::StatusAcknowledged { .. }
            | Event::TaskReconciled { .. }
            | Event::TaskCompleted { .. } => Topic::Task,
            Event::WeightUpdated { .. } | Event::QuotaUpdated { .. } => Topic::Role,
            Event::MaintenanceScheduleUpdated { .. }
            | Event::MaintenanceStarted { .. }
            | Event::MaintenanceStopped { .. } => Topic::Maintenance,
            Event::SettingsUpdated { .. } | Event::AclChanged { .. } => Topic::Cluster,
            Event::AppUpdated { .. }
            | Event::AppDeleted { .. }
            | Event::DeploymentStarted { .. }
            | Event::DeploymentSucceeded { .. }
            | Event::DeploymentCanceled { .. }
            | Event::AppLaunchDelayed { .. }
            | Event::AppLaunchDelayReset { .. }
            | Event::AppInstanceExpunged { .. }
            | Event::AutoscalerUpdated { .. }
            | Event::AutoscalerDeleted { .. }
            | Event::AppAutoscaled { .. }
            | Event::AutoscalerRecommended { .. } => Topic::Service,
        }
    }

    /// The framework this event concerns, for per-framework streams.
    pub fn framework_id(&self) -> Option<&FrameworkId> {
        match self {
            Event::FrameworkAdded { framework_id, .. }
            | Event::FrameworkResubscribed { framework_id, .. }
            | Event::FrameworkDisconnected { framework_id }
            | Event::FrameworkRemoved { framework_id, .. }
            | Event::FrameworkSuppressed { framework_id, .. }
            | Event::FrameworkRevived { framework_id, .. }
            | Event::OfferFilterAdded { framework_id, .. }
            | Event::OfferAccepted { framework_id, .. }
            | Event::OfferDeclined { framework_id, .. }
            | Event::OfferRescinded { framework_id, .. }
            | Event::TaskUpdated { framework_id, .. }
            | Event::TaskDropped { framework_id, .. }
            | Event::TaskKillRequested { framework_id, .. }
            | Event::ExecutorShutdownRequested { framework_id, .. }
            | Event::StatusAcknowledged { framework_id, .. }
            | Event::TaskReconciled { framework_id, .. }
            | Event::TaskCompleted { framework_id, .. }
            | Event::MessageToExecutor { framework_id, .. }
            | Event::MessageToFramework { framework_id, .. } => Some(framework_id),
            Event::OfferCreated { offer } => Some(&offer.framework_id),
            Event::TaskAdded { task } => Some(&task.framework_id),
            _ => None,
        }
    }

    /// The agent this event concerns, for the agent's own stream.
    pub fn agent_id(&self) -> Option<&AgentId> {
        match self {
            Event::AgentAdded { agent_id, .. }
            | Event::AgentReregistered { agent_id, .. }
            | Event::AgentUnreachable { agent_id }
            | Event::AgentRemoved { agent_id, .. }
            | Event::AgentDeactivated { agent_id }
            | Event::AgentReactivated { agent_id }
            | Event::AgentDraining { agent_id, .. }
            | Event::AgentDrained { agent_id }
            | Event::AgentResourcesChanged { agent_id, .. }
            | Event::OfferFilterAdded { agent_id, .. }
            | Event::OfferAccepted { agent_id, .. }
            | Event::OfferDeclined { agent_id, .. }
            | Event::OfferRescinded { agent_id, .. }
            | Event::TaskUpdated { agent_id, .. }
            | Event::TaskKillRequested { agent_id, .. }
            | Event::ExecutorShutdownRequested { agent_id, .. }
            | Event::StatusAcknowledged { agent_id, .. }
            | Event::TaskCompleted { agent_id, .. }
            | Event::MessageToExecutor { agent_id, .. }
            | Event::MessageToFramework { agent_id, .. }
            | Event::ResourcesReserved { agent_id, .. }
            | Event::ResourcesUnreserved { agent_id, .. } => Some(agent_id),
            Event::OfferCreated { offer } => Some(&offer.agent_id),
            Event::TaskAdded { task } => Some(task.agent_id()),
            _ => None,
        }
    }

    /// A short stable name, for streams and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::AgentAdded { .. } => "agent_added",
            Event::AgentReregistered { .. } => "agent_reregistered",
            Event::AgentUnreachable { .. } => "agent_unreachable",
            Event::AgentRemoved { .. } => "agent_removed",
            Event::AgentDeactivated { .. } => "agent_deactivated",
            Event::AgentReactivated { .. } => "agent_reactivated",
            Event::AgentDraining { .. } => "agent_draining",
            Event::AgentDrained { .. } => "agent_drained",
            Event::AgentResourcesChanged { .. } => "agent_resources_changed",
            Event::FrameworkAdded { .. } => "framework_added",
            Event::FrameworkResubscribed { .. } => "framework_resubscribed",
            Event::FrameworkDisconnected { .. } => "framework_disconnected",
            Event::FrameworkRemoved { .. } => "framework_removed",
            Event::FrameworkSuppressed { .. } => "framework_suppressed",
            Event::FrameworkRevived { .. } => "framework_revived",
            Event::OfferFilterAdded { .. } => "offer_filter_added",
            Event::OfferCreated { .. } => "offer_created",
            Event::OfferAccepted { .. } => "offer_accepted",
            Event::OfferDeclined { .. } => "offer_declined",
            Event::OfferRescinded { .. } => "offer_rescinded",
            Event::TaskAdded { .. } => "task_added",
            Event::TaskUpdated { .. } => "task_updated",
            Event::TaskDropped { .. } => "task_dropped",
            Event::TaskKillRequested { .. } => "task_kill_requested",
            Event::ExecutorShutdownRequested { .. } => "executor_shutdown_requested",
            Event::StatusAcknowledged { .. } => "status_acknowledged",
            Event::TaskReconciled { .. } => "task_reconciled",
            Event::TaskCompleted { .. } => "task_completed",
            Event::MessageToExecutor { .. } => "message_to_executor",
            Event::MessageToFramework { .. } => "message_to_framework",
            Event::ResourcesReserved { .. } => "resources_reserved",
            Event::ResourcesUnreserved { .. } => "resources_unreserved",
            Event::WeightUpdated { .. } => "weight_updated",
            Event::QuotaUpdated { .. } => "quota_updated",
            Event::MaintenanceScheduleUpdated { .. } => "maintenance_schedule_updated",
            Event::MaintenanceStarted { .. } => "maintenance_started",
            Event::MaintenanceStopped { .. } => "maintenance_stopped",
            Event::SettingsUpdated { .. } => "settings_updated",
            Event::AppUpdated { .. } => "app_updated",
            Event::AppDeleted { .. } => "app_deleted",
            Event::DeploymentStarted { .. } => "deployment_started",
            Event::DeploymentSucceeded { .. } => "deployment_succeeded",
            Event::DeploymentCanceled { .. } => "deployment_canceled",
            Event::AppLaunchDelayed { .. } => "app_launch_delayed",
            Event::AppLaunchDelayReset { .. } => "app_launch_delay_reset",
            Event::AppInstanceExpunged { .. } => "app_instance_expunged",
            Event::AclChanged { .. } => "acl_changed",
            Event::AutoscalerUpdated { .. } => "autoscaler_updated",
            Event::AutoscalerDeleted { .. } => "autoscaler_deleted",
            Event::AppAutoscaled { .. } => "app_autoscaled",
            Event::AutoscalerRecommended { .. } => "autoscaler_recommended",
        }
    }
}

/// Where an event stands in the log: the Raft entry's index and the event's position among
/// the events that entry produced. Ordered, so "after cursor C" is well defined.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Cursor {
    pub index: u64,
    pub seq: u32,
}

impl Cursor {
    pub const START: Cursor = Cursor { index: 0, seq: 0 };

    pub fn new(index: u64, seq: u32) -> Cursor {
        Cursor { index, seq }
    }
}

impl std::fmt::Display for Cursor {
    /// `index-seq`, the form used in SSE `id:` fields and `?from=`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.index, self.seq)
    }
}

impl std::str::FromStr for Cursor {
    type Err = String;
    fn from_str(text: &str) -> Result<Cursor, String> {
        let (index, seq) = match text.split_once('-') {
            Some((index, seq)) => (index, seq),
            None => (text, "0"),
        };
        let index =
            index.trim().parse().map_err(|_| format!("cursor '{text}' is not 'index-seq'"))?;
        let seq = seq.trim().parse().map_err(|_| format!("cursor '{text}' is not 'index-seq'"))?;
        Ok(Cursor { index, seq })
    }
}
