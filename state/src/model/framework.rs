use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{Label, Task, TaskStatus};
use crate::shared::{SharedMap, SharedSet};
use crate::{AgentId, FrameworkId, OfferId, Resources, Role, TaskId, Timestamp};

/// Mesos `FrameworkInfo.Capability.Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum FrameworkCapability {
    RevocableResources,
    TaskKillingState,
    GpuResources,
    SharedResources,
    PartitionAware,
    MultiRole,
    ReservationRefinement,
    RegionAware,
}

/// What a framework says about itself on SUBSCRIBE (Mesos `FrameworkInfo`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameworkInfo {
    pub user: String,
    pub name: String,
    /// Roles it acts for; never empty once validated (`*` when the framework named none).
    pub roles: Vec<Role>,
    /// How long the master keeps the framework's tasks after it disconnects.
    pub failover_timeout: Duration,
    pub checkpoint: bool,
    pub hostname: Option<String>,
    pub principal: Option<String>,
    pub webui_url: Option<String>,
    pub capabilities: BTreeSet<FrameworkCapability>,
    pub labels: Vec<Label>,
}

impl FrameworkInfo {
    pub fn is_partition_aware(&self) -> bool {
        self.capabilities.contains(&FrameworkCapability::PartitionAware)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FrameworkState {
    Connected,
    /// Its stream closed; it has `failover_timeout` to come back.
    Disconnected {
        since: Timestamp,
    },
}

/// A refusal filter: the framework does not want offers from this agent that hold no more
/// than `resources` until `until` (from DECLINE, or the unused part of an ACCEPT).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferFilter {
    pub resources: Resources,
    pub until: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Framework {
    pub id: FrameworkId,
    pub info: FrameworkInfo,
    pub state: FrameworkState,
    pub registered_at: Timestamp,
    pub reregistered_at: Option<Timestamp>,
    /// Roles for which it asked not to receive offers (SUPPRESS).
    pub suppressed_roles: BTreeSet<Role>,
    pub filters: SharedMap<AgentId, OfferFilter>,
    pub offers: SharedSet<OfferId>,
    /// Tasks the master tracks: not terminal, or terminal with an unacknowledged update.
    /// Shared with the `TaskAdded` event that announced each one; copied only on change
    /// while an event still holds it.
    pub tasks: SharedMap<TaskId, Arc<Task>>,
    /// Status updates sent with a uuid and not yet acknowledged, oldest first, per task.
    pub pending_updates: SharedMap<TaskId, VecDeque<TaskStatus>>,
    /// Terminal and acknowledged, newest last, bounded.
    pub completed_tasks: VecDeque<Arc<Task>>,
}

impl Framework {
    pub fn is_connected(&self) -> bool {
        self.state == FrameworkState::Connected
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RemovalReason {
    /// The framework asked (TEARDOWN).
    Teardown,
    /// An operator asked (operator TEARDOWN).
    OperatorTeardown,
    /// It stayed disconnected past its failover timeout.
    FailoverTimeout,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletedFramework {
    pub framework: Framework,
    pub removed_at: Timestamp,
    pub reason: RemovalReason,
}
