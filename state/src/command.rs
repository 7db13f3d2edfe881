//! Commands: intents, each stamped by the leader with its time and carried in the log.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::auth::{AuthMode, Credential, Policy, Token};
use crate::model::{
    AgentInfo, AppSpec, AutoscalerPolicy, ExecutorInfo, Filters, FrameworkInfo, KillPolicy,
    MachineId, MaintenanceWindow, QuotaConfig, ReportedTask, Scaling, Settings, SettingsChange,
    TaskInfo, TaskStatus,
};
use crate::{
    AgentId, AppId, DeploymentId, ExecutorId, FrameworkId, OfferId, RequestId, Resources, Role,
    Scalar, TaskId, Timestamp,
};

/// Who asked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Actor {
    /// The leader's own loops (allocator, ticks); only they may offer and tick.
    Leader,
    Operator {
        principal: Option<String>,
    },
    Framework(FrameworkId),
    Agent(AgentId),
    /// A request the API authenticated while access control was on: `identity` is the token's
    /// accessor id or the Basic credential's principal that signed it, `acting` whom it acts
    /// as. `apply` checks the identity against the ACLs at the entry's log position.
    Client {
        identity: String,
        acting: Box<Actor>,
    },
}

impl Actor {
    /// Whom the command acts as, whoever signed it.
    pub fn acting(&self) -> &Actor {
        match self {
            Actor::Client { acting, .. } => acting,
            other => other,
        }
    }

    /// The authenticated identity that signed the command, if any.
    pub fn identity(&self) -> Option<&str> {
        match self {
            Actor::Client { identity, .. } => Some(identity),
            _ => None,
        }
    }
}

/// One command as the log carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub request_id: RequestId,
    pub actor: Actor,
    /// Stamped by the leader when proposing; the only clock the state ever sees.
    pub at: Timestamp,
    pub command: Command,
}

/// An offer the allocator decided on; checked again when applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferSpec {
    pub framework_id: FrameworkId,
    pub agent_id: AgentId,
    pub role: Role,
    pub resources: Resources,
}

/// An offer operation of ACCEPT (Mesos `Offer.Operation`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operation {
    Launch { task_infos: Vec<TaskInfo> },
    LaunchGroup { executor: Box<ExecutorInfo>, task_infos: Vec<TaskInfo> },
    Reserve { resources: Resources },
    Unreserve { resources: Resources },
}

/// Whether `PutApp` may replace an app that exists (`PUT`) or only create one (`POST`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PutMode {
    Create,
    CreateOrReplace,
}

/// One app of a `PutApps`: what a `PutApp` carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppPut {
    pub app_id: AppId,
    pub spec: AppSpec,
    pub definition: String,
    pub mode: PutMode,
    pub force: Force,
    pub deployment_id: DeploymentId,
}

/// Whether a change may take over an app that a deployment is still changing (`?force=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Force {
    No,
    Yes,
}

/// What to do with a deployment that is stopped before it finished.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cancellation {
    /// Put the app back as it was, in a new deployment with this id.
    RollBack { rollback_id: DeploymentId },
    /// Forget the deployment and leave the instances as they are (`?force=true`).
    Abandon,
}

/// Whether killing service tasks also lowers the app's instance count (`?scale=true`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KillScaling {
    /// The killed instances are replaced.
    Replace,
    /// The app's instance count drops by the number killed.
    ScaleDown,
}

/// What becomes of killed service instances' records (`?wipe=true`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Wipe {
    /// The instance counts for its app until its task has ended.
    Keep,
    /// The instance is expunged at once, as an unreachable one would be: it stops counting
    /// (a replacement may start beside it) and its task is killed whenever it can be.
    Expunge,
}

/// One instance the built-in service scheduler launches from an offer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceLaunch {
    pub app_id: AppId,
    /// The app's `config_version` the task was built from; a stale one is refused.
    pub config_version: Timestamp,
    pub task_info: TaskInfo,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    // Agents.
    RegisterAgent {
        info: AgentInfo,
        resources: Resources,
    },
    ReregisterAgent {
        agent_id: AgentId,
        info: AgentInfo,
        resources: Resources,
        tasks: Vec<ReportedTask>,
    },
    AgentHeartbeat {
        agent_id: AgentId,
    },
    UpdateStatus {
        framework_id: FrameworkId,
        status: TaskStatus,
    },
    ExecutorMessage {
        agent_id: AgentId,
        framework_id: FrameworkId,
        executor_id: ExecutorId,
        data: Vec<u8>,
    },

    // Frameworks (Mesos v1 scheduler calls).
    Subscribe {
        framework_id: Option<FrameworkId>,
        info: FrameworkInfo,
    },
    /// The master saw the framework's stream close.
    DisconnectFramework {
        framework_id: FrameworkId,
    },
    Teardown {
        framework_id: FrameworkId,
    },
    Accept {
        framework_id: FrameworkId,
        offer_ids: Vec<OfferId>,
        operations: Vec<Operation>,
        filters: Filters,
    },
    Decline {
        framework_id: FrameworkId,
        offer_ids: Vec<OfferId>,
        filters: Filters,
    },
    /// Empty `roles` means all of the framework's roles.
    Revive {
        framework_id: FrameworkId,
        roles: Vec<Role>,
    },
    Suppress {
        framework_id: FrameworkId,
        roles: Vec<Role>,
    },
    Kill {
        framework_id: FrameworkId,
        task_id: TaskId,
        agent_id: Option<AgentId>,
        kill_policy: Option<KillPolicy>,
    },
    Shutdown {
        framework_id: FrameworkId,
        executor_id: ExecutorId,
        agent_id: AgentId,
    },
    Acknowledge {
        framework_id: FrameworkId,
        agent_id: AgentId,
        task_id: TaskId,
        uuid: crate::UpdateUuid,
    },
    /// Empty `tasks` asks for implicit reconciliation.
    Reconcile {
        framework_id: FrameworkId,
        tasks: Vec<(TaskId, Option<AgentId>)>,
    },
    Message {
        framework_id: FrameworkId,
        agent_id: AgentId,
        executor_id: ExecutorId,
        data: Vec<u8>,
    },

    // The leader's loops.
    OfferResources {
        offers: Vec<OfferSpec>,
    },
    RescindOffers {
        offer_ids: Vec<OfferId>,
    },
    /// Decides every time-based transition, at the entry's timestamp.
    Tick,

    // Operators (Mesos v1 operator calls).
    UpdateWeights {
        weights: Vec<(Role, Scalar)>,
    },
    UpdateQuota {
        configs: Vec<QuotaConfig>,
    },
    UpdateMaintenanceSchedule {
        windows: Vec<MaintenanceWindow>,
    },
    StartMaintenance {
        machines: Vec<MachineId>,
    },
    StopMaintenance {
        machines: Vec<MachineId>,
    },
    DrainAgent {
        agent_id: AgentId,
        max_grace_period: Option<Duration>,
        mark_gone: bool,
    },
    DeactivateAgent {
        agent_id: AgentId,
    },
    ReactivateAgent {
        agent_id: AgentId,
    },
    MarkAgentGone {
        agent_id: AgentId,
    },
    ReserveResources {
        agent_id: AgentId,
        resources: Resources,
    },
    UnreserveResources {
        agent_id: AgentId,
        resources: Resources,
    },
    UpdateSettings {
        settings: Settings,
    },

    // Long-running services (Marathon `/v2`).
    /// Creates or changes an app; the state decides whether it is a start, a scale or a
    /// replacement, and starts the deployment `deployment_id` for it.
    PutApp {
        app_id: AppId,
        spec: AppSpec,
        definition: String,
        mode: PutMode,
        force: Force,
        deployment_id: DeploymentId,
    },
    /// Replaces every instance with a fresh one of the same configuration.
    RestartApp {
        app_id: AppId,
        force: Force,
        deployment_id: DeploymentId,
    },
    /// Puts an earlier version back (Marathon's `PUT /v2/apps/{id}` with `{"version": …}`).
    RollBackApp {
        app_id: AppId,
        version: Timestamp,
        force: Force,
        deployment_id: DeploymentId,
    },
    DeleteApp {
        app_id: AppId,
        force: Force,
        deployment_id: DeploymentId,
    },
    CancelDeployment {
        deployment_id: DeploymentId,
        cancellation: Cancellation,
    },
    /// Kills instances of service apps; with `ScaleDown`, as one scaling deployment per app.
    KillServiceTasks {
        task_ids: Vec<TaskId>,
        scaling: KillScaling,
        wipe: Wipe,
        force: Force,
        deployment_id: DeploymentId,
    },
    ResetLaunchDelay {
        app_id: AppId,
    },
    /// The built-in service scheduler accepting one agent's offers (leader only).
    LaunchServiceTasks {
        offer_ids: Vec<OfferId>,
        launches: Vec<ServiceLaunch>,
        filters: Filters,
    },
    /// Changes some settings, keeping the rest (operator only).
    ChangeSettings {
        change: SettingsChange,
    },
    /// Creates or changes several apps at once (Marathon's `PUT /v2/apps` with a list):
    /// every one of them, or none when any is refused.
    PutApps {
        apps: Vec<AppPut>,
    },

    // Access control (`/corral/v1/acl`). Only hashes of secrets ever reach the log.
    /// The first management token; refused once the cluster has one.
    BootstrapAcl {
        token: Token,
    },
    PutToken {
        token: Token,
    },
    RevokeToken {
        accessor: String,
    },
    /// Creates or replaces a Basic credential (a Mesos `--credentials` entry).
    PutCredential {
        credential: Credential,
    },
    DeleteCredential {
        principal: String,
    },
    /// Creates or replaces a policy.
    PutPolicy {
        policy: Policy,
    },
    DeletePolicy {
        name: String,
    },
    SetAuthMode {
        mode: AuthMode,
    },
    /// Sets (or replaces) an app's autoscaling policy; its recorded scalings are kept.
    PutAutoscaler {
        app_id: AppId,
        policy: AutoscalerPolicy,
    },
    DeleteAutoscaler {
        app_id: AppId,
    },
    /// The leader's autoscaler scaling an app, with what it decided from. Refused when the
    /// app's instances are no longer `scaling.current` (a stale or repeated decision), when
    /// a deployment of the app runs, or beyond the policy's bounds and rate limits.
    AutoscaleApp {
        app_id: AppId,
        scaling: Scaling,
        deployment_id: DeploymentId,
    },
    /// The leader's autoscaler recording an app's recommendation when it changed (holds of
    /// a deployment count as "stay"), so the stabilization window is the log's and a new
    /// leader resumes it. Refused when it is the latest recorded one already.
    RecordRecommendation {
        app_id: AppId,
        count: u32,
    },
}

impl Command {
    /// A short stable name, for metrics and logs.
    /// Whether the command changes access control itself (tokens, credentials, policies,
    /// the mode): once bootstrapped, only a management identity may, whatever the mode.
    pub fn administers_acl(&self) -> bool {
        matches!(
            self,
            Command::PutToken { .. }
                | Command::RevokeToken { .. }
                | Command::PutCredential { .. }
                | Command::DeleteCredential { .. }
                | Command::PutPolicy { .. }
                | Command::DeletePolicy { .. }
                | Command::SetAuthMode { .. }
        )
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Command::RegisterAgent { .. } => "register_agent",
            Command::ReregisterAgent { .. } => "reregister_agent",
            Command::AgentHeartbeat { .. } => "agent_heartbeat",
            Command::UpdateStatus { .. } => "update_status",
            Command::ExecutorMessage { .. } => "executor_message",
            Command::Subscribe { .. } => "subscribe",
            Command::DisconnectFramework { .. } => "disconnect_framework",
            Command::Teardown { .. } => "teardown",
            Command::Accept { .. } => "accept",
            Command::Decline { .. } => "decline",
            Command::Revive { .. } => "revive",
            Command::Suppress { .. } => "suppress",
            Command::Kill { .. } => "kill",
            Command::Shutdown { .. } => "shutdown",
            Command::Acknowledge { .. } => "acknowledge",
            Command::Reconcile { .. } => "reconcile",
            Command::Message { .. } => "message",
            Command::OfferResources { .. } => "offer_resources",
            Command::RescindOffers { .. } => "rescind_offers",
            Command::Tick => "tick",
            Command::UpdateWeights { .. } => "update_weights",
            Command::UpdateQuota { .. } => "update_quota",
            Command::UpdateMaintenanceSchedule { .. } => "update_maintenance_schedule",
            Command::StartMaintenance { .. } => "start_maintenance",
            Command::StopMaintenance { .. } => "stop_maintenance",
            Command::DrainAgent { .. } => "drain_agent",
            Command::DeactivateAgent { .. } => "deactivate_agent",
            Command::ReactivateAgent { .. } => "reactivate_agent",
            Command::MarkAgentGone { .. } => "mark_agent_gone",
            Command::ReserveResources { .. } => "reserve_resources",
            Command::UnreserveResources { .. } => "unreserve_resources",
            Command::UpdateSettings { .. } => "update_settings",
            Command::PutApp { .. } => "put_app",
            Command::RestartApp { .. } => "restart_app",
            Command::RollBackApp { .. } => "roll_back_app",
            Command::DeleteApp { .. } => "delete_app",
            Command::CancelDeployment { .. } => "cancel_deployment",
            Command::KillServiceTasks { .. } => "kill_service_tasks",
            Command::ResetLaunchDelay { .. } => "reset_launch_delay",
            Command::LaunchServiceTasks { .. } => "launch_service_tasks",
            Command::ChangeSettings { .. } => "change_settings",
            Command::PutApps { .. } => "put_apps",
            Command::BootstrapAcl { .. } => "bootstrap_acl",
            Command::PutToken { .. } => "put_token",
            Command::RevokeToken { .. } => "revoke_token",
            Command::PutCredential { .. } => "put_credential",
            Command::DeleteCredential { .. } => "delete_credential",
            Command::PutPolicy { .. } => "put_policy",
            Command::DeletePolicy { .. } => "delete_policy",
            Command::SetAuthMode { .. } => "set_auth_mode",
            Command::PutAutoscaler { .. } => "put_autoscaler",
            Command::DeleteAutoscaler { .. } => "delete_autoscaler",
            Command::AutoscaleApp { .. } => "autoscale_app",
            Command::RecordRecommendation { .. } => "record_recommendation",
        }
    }
}
