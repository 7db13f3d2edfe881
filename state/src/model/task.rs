use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{AgentId, ExecutorId, FrameworkId, Resources, Role, TaskId, Timestamp, UpdateUuid};

/// Mesos `TaskState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TaskState {
    Staging,
    Starting,
    Running,
    Killing,
    Finished,
    Failed,
    Killed,
    Error,
    Lost,
    Dropped,
    Unreachable,
    Gone,
    GoneByOperator,
    Unknown,
}

impl TaskState {
    pub const ALL: [TaskState; 14] = [
        TaskState::Staging,
        TaskState::Starting,
        TaskState::Running,
        TaskState::Killing,
        TaskState::Finished,
        TaskState::Failed,
        TaskState::Killed,
        TaskState::Error,
        TaskState::Lost,
        TaskState::Dropped,
        TaskState::Unreachable,
        TaskState::Gone,
        TaskState::GoneByOperator,
        TaskState::Unknown,
    ];

    /// Terminal per Mesos. LOST is terminal, but a task reported LOST may later be found
    /// and end for real (see `may_follow`).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Finished
                | TaskState::Failed
                | TaskState::Killed
                | TaskState::Error
                | TaskState::Lost
                | TaskState::Dropped
                | TaskState::Gone
                | TaskState::GoneByOperator
        )
    }

    /// Whether a task in `self` may be updated to `next`.
    pub fn may_become(self, next: TaskState) -> bool {
        use TaskState::*;
        match (self, next) {
            (_, Staging) | (_, Unknown) => false,
            // LOST is special in Mesos: the master said LOST because it lost touch; if the
            // agent comes back and reports how the task really ended, that end is recorded.
            (Lost, next) => next.is_terminal() && next != Lost,
            (from, _) if from.is_terminal() => false,
            (Staging | Starting, Starting) => true,
            (Killing, Starting | Running) => false,
            (Killing, Killing) => true,
            (_, Starting) => false,
            (_, Running) => true,
            (_, Killing) => true,
            (Unreachable, Unreachable) => false,
            (_, _) => true,
        }
    }

    /// The Mesos name, `TASK_RUNNING`.
    pub fn as_mesos_str(self) -> &'static str {
        match self {
            TaskState::Staging => "TASK_STAGING",
            TaskState::Starting => "TASK_STARTING",
            TaskState::Running => "TASK_RUNNING",
            TaskState::Killing => "TASK_KILLING",
            TaskState::Finished => "TASK_FINISHED",
            TaskState::Failed => "TASK_FAILED",
            TaskState::Killed => "TASK_KILLED",
            TaskState::Error => "TASK_ERROR",
            TaskState::Lost => "TASK_LOST",
            TaskState::Dropped => "TASK_DROPPED",
            TaskState::Unreachable => "TASK_UNREACHABLE",
            TaskState::Gone => "TASK_GONE",
            TaskState::GoneByOperator => "TASK_GONE_BY_OPERATOR",
            TaskState::Unknown => "TASK_UNKNOWN",
        }
    }

    pub fn from_mesos_str(text: &str) -> Option<TaskState> {
        TaskState::ALL.into_iter().find(|state| state.as_mesos_str() == text)
    }
}

/// Mesos `TaskStatus.Source`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskSource {
    Master,
    Agent,
    Executor,
}

/// Mesos `TaskStatus.Reason` (the ones Corral produces or accepts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskReason {
    CommandExecutorFailed,
    ContainerLaunchFailed,
    ContainerLimitation,
    ContainerLimitationDisk,
    ContainerLimitationMemory,
    ContainerPreempted,
    ExecutorTerminated,
    FrameworkRemoved,
    InvalidOffers,
    Reconciliation,
    AgentDisconnected,
    AgentRemoved,
    AgentRemovedByOperator,
    AgentReregistered,
    AgentRestarted,
    AgentUnknown,
    TaskKilledDuringLaunch,
    TaskHealthCheckStatusUpdated,
    TaskInvalid,
    TaskUnknown,
    TaskGroupInvalid,
    AgentDraining,
    MaxCompletedTasksExceeded,
    /// The ACLs refused `run_tasks` for the task's user (decided when the ACCEPT applied).
    TaskUnauthorized,
    /// As `TaskUnauthorized`, for a task of a group (the whole group is refused).
    TaskGroupUnauthorized,
}

impl TaskReason {
    pub fn as_mesos_str(self) -> &'static str {
        match self {
            TaskReason::CommandExecutorFailed => "REASON_COMMAND_EXECUTOR_FAILED",
            TaskReason::ContainerLaunchFailed => "REASON_CONTAINER_LAUNCH_FAILED",
            TaskReason::ContainerLimitation => "REASON_CONTAINER_LIMITATION",
            TaskReason::ContainerLimitationDisk => "REASON_CONTAINER_LIMITATION_DISK",
            TaskReason::ContainerLimitationMemory => "REASON_CONTAINER_LIMITATION_MEMORY",
            TaskReason::ContainerPreempted => "REASON_CONTAINER_PREEMPTED",
            TaskReason::ExecutorTerminated => "REASON_EXECUTOR_TERMINATED",
            TaskReason::FrameworkRemoved => "REASON_FRAMEWORK_REMOVED",
            TaskReason::InvalidOffers => "REASON_INVALID_OFFERS",
            TaskReason::Reconciliation => "REASON_RECONCILIATION",
            TaskReason::AgentDisconnected => "REASON_AGENT_DISCONNECTED",
            TaskReason::AgentRemoved => "REASON_AGENT_REMOVED",
            TaskReason::AgentRemovedByOperator => "REASON_AGENT_REMOVED_BY_OPERATOR",
            TaskReason::AgentReregistered => "REASON_AGENT_REREGISTERED",
            TaskReason::AgentRestarted => "REASON_AGENT_RESTARTED",
            TaskReason::AgentUnknown => "REASON_AGENT_UNKNOWN",
            TaskReason::TaskKilledDuringLaunch => "REASON_TASK_KILLED_DURING_LAUNCH",
            TaskReason::TaskHealthCheckStatusUpdated => "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED",
            TaskReason::TaskInvalid => "REASON_TASK_INVALID",
            TaskReason::TaskUnknown => "REASON_TASK_UNKNOWN",
            TaskReason::TaskGroupInvalid => "REASON_TASK_GROUP_INVALID",
            TaskReason::AgentDraining => "REASON_AGENT_DRAINING",
            TaskReason::MaxCompletedTasksExceeded => "REASON_MAX_COMPLETED_TASKS_EXCEEDED",
            TaskReason::TaskUnauthorized => "REASON_TASK_UNAUTHORIZED",
            TaskReason::TaskGroupUnauthorized => "REASON_TASK_GROUP_UNAUTHORIZED",
        }
    }
}

/// Mesos `TaskStatus`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskStatus {
    pub task_id: TaskId,
    pub state: TaskState,
    pub message: Option<String>,
    pub source: TaskSource,
    pub reason: Option<TaskReason>,
    pub healthy: Option<bool>,
    pub agent_id: Option<AgentId>,
    pub executor_id: Option<ExecutorId>,
    pub timestamp: Timestamp,
    /// Present on updates that must be acknowledged; absent on master-made ones.
    pub uuid: Option<UpdateUuid>,
    /// Exit code of a command task that ended (Corral keeps it; Mesos puts it in `message`).
    pub exit_code: Option<i32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    pub key: String,
    pub value: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandUri {
    pub value: String,
    pub executable: bool,
    pub extract: bool,
}

/// Mesos `CommandInfo`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandInfo {
    pub value: Option<String>,
    /// Run `value` through `/bin/sh -c` (Mesos default) or exec `value` with `arguments`.
    pub shell: bool,
    pub arguments: Vec<String>,
    pub environment: Vec<(String, String)>,
    pub user: Option<String>,
    pub uris: Vec<CommandUri>,
}

impl Default for CommandInfo {
    fn default() -> CommandInfo {
        CommandInfo {
            value: None,
            shell: true,
            arguments: Vec::new(),
            environment: Vec::new(),
            user: None,
            uris: Vec::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContainerType {
    Mesos,
    Docker,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DockerNetwork {
    Host,
    Bridge,
    None,
    User,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    pub host_port: u32,
    pub container_port: u32,
    pub protocol: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerInfo {
    pub image: String,
    pub network: DockerNetwork,
    pub port_mappings: Vec<PortMapping>,
    pub privileged: bool,
    pub parameters: Vec<(String, String)>,
    pub force_pull_image: bool,
}

/// Mesos `ContainerInfo`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerInfo {
    pub kind: ContainerType,
    pub docker: Option<DockerInfo>,
    pub hostname: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HealthCheckKind {
    Command,
    Http,
    Tcp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpCheck {
    pub scheme: Option<String>,
    pub port: u32,
    pub path: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpCheck {
    pub port: u32,
}

/// Mesos `HealthCheck`, with its defaults in `HealthCheck::new`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub kind: HealthCheckKind,
    pub command: Option<CommandInfo>,
    pub http: Option<HttpCheck>,
    pub tcp: Option<TcpCheck>,
    pub delay: Duration,
    pub interval: Duration,
    pub timeout: Duration,
    pub consecutive_failures: u32,
    pub grace_period: Duration,
}

impl HealthCheck {
    /// Mesos defaults: delay 15 s, interval 10 s, timeout 20 s, 3 failures, grace 10 s.
    pub fn new(kind: HealthCheckKind) -> HealthCheck {
        HealthCheck {
            kind,
            command: None,
            http: None,
            tcp: None,
            delay: Duration::from_secs(15),
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(20),
            consecutive_failures: 3,
            grace_period: Duration::from_secs(10),
        }
    }
}

/// Mesos `KillPolicy`: how long between SIGTERM and SIGKILL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KillPolicy {
    pub grace_period: Option<Duration>,
}

/// Mesos `ExecutorInfo` (for LAUNCH_GROUP and custom executors).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutorInfo {
    pub executor_id: ExecutorId,
    pub name: Option<String>,
    pub command: Option<CommandInfo>,
    pub container: Option<ContainerInfo>,
    pub resources: Resources,
}

/// Mesos `TaskInfo`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskInfo {
    pub name: String,
    pub task_id: TaskId,
    pub agent_id: AgentId,
    pub resources: Resources,
    pub executor: Option<ExecutorInfo>,
    pub command: Option<CommandInfo>,
    pub container: Option<ContainerInfo>,
    pub health_check: Option<HealthCheck>,
    pub kill_policy: Option<KillPolicy>,
    pub labels: Vec<Label>,
    /// How service discovery should see the task (Mesos `DiscoveryInfo`).
    pub discovery: Option<DiscoveryInfo>,
}

impl TaskInfo {
    /// A task named after its id that runs the shell `command` with the default executor and
    /// sets nothing else: the smallest `TaskInfo` Mesos accepts.
    pub fn shell(
        task_id: TaskId,
        agent_id: AgentId,
        resources: Resources,
        command: impl Into<String>,
    ) -> TaskInfo {
        TaskInfo {
            name: task_id.to_string(),
            task_id,
            agent_id,
            resources,
            executor: None,
            command: Some(CommandInfo { value: Some(command.into()), ..CommandInfo::default() }),
            container: None,
            health_check: None,
            kill_policy: None,
            labels: Vec::new(),
            discovery: None,
        }
    }
}

/// Mesos `DiscoveryInfo`: the name and named ports Mesos-DNS and load balancers read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryInfo {
    pub visibility: DiscoveryVisibility,
    pub name: Option<String>,
    pub ports: Vec<DiscoveryPort>,
    pub labels: Vec<Label>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DiscoveryVisibility {
    Framework,
    Cluster,
    External,
}

impl DiscoveryVisibility {
    pub fn as_mesos_str(self) -> &'static str {
        match self {
            DiscoveryVisibility::Framework => "FRAMEWORK",
            DiscoveryVisibility::Cluster => "CLUSTER",
            DiscoveryVisibility::External => "EXTERNAL",
        }
    }

    pub fn from_mesos_str(text: &str) -> Option<DiscoveryVisibility> {
        match text {
            "FRAMEWORK" => Some(DiscoveryVisibility::Framework),
            "CLUSTER" => Some(DiscoveryVisibility::Cluster),
            "EXTERNAL" => Some(DiscoveryVisibility::External),
            _ => None,
        }
    }
}

/// Mesos `Port`: a port of the task as seen from outside (the host port), with its name and
/// protocol.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryPort {
    pub number: u32,
    pub name: Option<String>,
    pub protocol: Option<String>,
    pub labels: Vec<Label>,
}

/// The master's record of a task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub framework_id: FrameworkId,
    pub info: TaskInfo,
    /// The role its resources are allocated to.
    pub role: Role,
    pub state: TaskState,
    /// Newest last, bounded by `Settings::max_statuses_per_task`.
    pub statuses: Vec<TaskStatus>,
    pub launched_at: Timestamp,
    /// Set once a kill was asked for; the agent ends the task with this policy.
    pub kill_requested: Option<KillPolicy>,
}

impl Task {
    pub fn id(&self) -> &TaskId {
        &self.info.task_id
    }

    pub fn agent_id(&self) -> &AgentId {
        &self.info.agent_id
    }

    /// What the task itself holds; its executor's resources are accounted once per executor.
    pub fn resources(&self) -> &Resources {
        &self.info.resources
    }

    pub fn latest_status(&self) -> Option<&TaskStatus> {
        self.statuses.last()
    }

    /// The health verdict of the latest status: agents send one with every status of a
    /// health-checked task.
    pub fn health(&self) -> Option<bool> {
        self.latest_status().and_then(|status| status.healthy)
    }

    /// How long the agent lets the task run between SIGTERM and SIGKILL: the kill's own
    /// policy once one was asked with a grace period, else the task's (`TaskInfo.kill_policy`),
    /// as the agent chooses. `None` when neither names one (the agent's default applies).
    pub fn kill_grace(&self) -> Option<Duration> {
        self.kill_requested
            .and_then(|policy| policy.grace_period)
            .or_else(|| self.info.kill_policy.and_then(|policy| policy.grace_period))
    }

    /// Counts towards an app's capacity: running, not being killed, and healthy when the app
    /// has health checks. Deployments end, and rolling replacements proceed, on this.
    pub fn is_ready(&self, health_checked: bool) -> bool {
        self.kill_requested.is_none()
            && self.state == TaskState::Running
            && (!health_checked || self.health() == Some(true))
    }
}

/// A task an agent reports on re-registration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedTask {
    pub framework_id: FrameworkId,
    pub task_id: TaskId,
    pub state: TaskState,
}
