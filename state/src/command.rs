//! Commands: intents, each stamped by the leader with its time and carried in the log.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{
    AgentInfo, ExecutorInfo, Filters, FrameworkInfo, KillPolicy, MachineId, MaintenanceWindow,
    QuotaConfig, ReportedTask, Settings, TaskInfo, TaskStatus,
};
use crate::{
    AgentId, ExecutorId, FrameworkId, OfferId, RequestId, Resources, Role, Scalar, TaskId,
    Timestamp,
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
}

impl Command {
    /// A short stable name, for metrics and logs.
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
        }
    }
}
