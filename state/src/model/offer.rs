use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{AgentId, FrameworkId, OfferId, Resources, Role, Timestamp};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    pub id: OfferId,
    pub framework_id: FrameworkId,
    pub agent_id: AgentId,
    pub hostname: String,
    /// The role the resources are allocated to (Mesos `allocation_info.role`).
    pub role: Role,
    pub resources: Resources,
    pub created_at: Timestamp,
}

/// Mesos `Filters`: how long to keep declined or unused resources away from the framework.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filters {
    pub refuse: Duration,
}

impl Filters {
    /// Mesos's default `refuse_seconds`.
    pub const DEFAULT_REFUSE: Duration = Duration::from_secs(5);
}

impl Default for Filters {
    fn default() -> Filters {
        Filters { refuse: Filters::DEFAULT_REFUSE }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RescindReason {
    /// Older than the offer timeout.
    Expired,
    AgentUnreachable,
    AgentRemoved,
    AgentDrainingOrDeactivated,
    FrameworkDisconnected,
    FrameworkRemoved,
    /// The framework re-subscribed: its new instance does not know the old offers.
    FrameworkResubscribed,
    /// An operator reserved, unreserved or reconfigured what the offer held.
    ResourcesChanged,
    /// Asked for by the leader or an operator.
    Requested,
}
