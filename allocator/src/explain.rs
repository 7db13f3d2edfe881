//! Why a framework or role was, or was not, offered resources in the last cycle: plain data
//! the API serves as JSON ("why isn't my app deploying?").

use corral_state::{AgentId, FrameworkId, Quantities, Role, Scalar, Timestamp};
use serde::Serialize;

/// What one cycle saw, cluster-wide.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CycleSummary {
    pub at: Timestamp,
    /// Offerable agents that had free resources at the start of the cycle.
    pub agents_with_free_resources: u32,
    /// Agents whose free resources were below every minimum allocatable quantity.
    pub agents_too_small: u32,
    pub agents_too_small_sample: Vec<AgentId>,
    /// Agents whose unreserved resources were all held back for unmet quota guarantees.
    pub agents_held_for_quota: u32,
    pub offers: u32,
    /// Unreserved resources held back at the start of the cycle for unmet quota guarantees.
    pub quota_headroom: Quantities,
    /// Unreserved free resources on offerable agents at the start of the cycle.
    pub unreserved_free: Quantities,
}

/// One reason a framework or a role got what it got.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// Offers were made; the counts are in the explanation.
    Offered,
    /// The allocator has not run since the framework or role appeared.
    NotYetConsidered,
    /// The framework is not connected, so nothing is offered to it.
    Disconnected,
    /// The state has it connected, but its stream is not on the leading master (it has not
    /// subscribed again since a failover), so nothing is offered to it until it does.
    NotSubscribedToLeader,
    /// The framework suppressed offers for this role.
    Suppressed { role: Role },
    /// Agents skipped because the framework declined them and its filter has not expired.
    DeclineFilters { agents: u32 },
    /// The framework reached the most offers it may get in one cycle.
    OfferCapReached { cap: u32 },
    /// The role, or an ancestor, reached its quota limit on agents it could have had.
    QuotaLimitReached { agents: u32 },
    /// Unreserved resources were held back for other roles' unmet guarantees.
    HeldForOtherRolesQuota { agents: u32 },
    /// Some agents had free resources below every minimum allocatable quantity.
    ResourcesTooSmall { agents: u32 },
    /// Eligible, but frameworks or roles with a lower share took every free agent first.
    OutrankedOrNoFreeResources,
    /// No connected framework is subscribed to the role or its sub-roles.
    NoFrameworks,
}

/// A framework's standing in one of its roles.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FrameworkRoleStanding {
    pub role: Role,
    /// Dominant share of the cluster: allocated plus offered, before this cycle's offers.
    pub dominant_share: f64,
    /// Position among the role's eligible frameworks at the start of the cycle, 1 first;
    /// `None` when the framework was not in the running for this role.
    pub rank: Option<u32>,
    pub eligible_frameworks_in_role: u32,
    pub suppressed: bool,
    pub allocation: Quantities,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FrameworkExplanation {
    pub framework_id: FrameworkId,
    pub cycle_at: Option<Timestamp>,
    pub connected: bool,
    pub offers_made: u32,
    pub roles: Vec<FrameworkRoleStanding>,
    /// Agents skipped for this framework in the last cycle because of its declines.
    pub agents_filtered_by_declines: u32,
    pub agents_filtered_sample: Vec<AgentId>,
    /// Active refusal filters (DECLINE with `refuse_seconds`) at the last cycle.
    pub active_filters: u32,
    pub reasons: Vec<Reason>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RoleExplanation {
    pub role: Role,
    pub cycle_at: Option<Timestamp>,
    pub weight: Scalar,
    /// Dominant share of the role's subtree (its own frameworks and its sub-roles').
    pub dominant_share: f64,
    /// Dominant share divided by weight: what the role is ordered by among its siblings.
    pub weighted_share: f64,
    /// Position among sibling roles with eligible frameworks, 1 first.
    pub rank: Option<u32>,
    pub siblings_in_running: u32,
    pub guarantees: Quantities,
    pub limits: Quantities,
    /// Allocated plus offered in the role's subtree, what quota is measured against.
    pub consumed: Quantities,
    /// How much of the guarantee is not yet consumed: the headroom held back for it.
    pub unmet_guarantee: Quantities,
    pub frameworks: Vec<FrameworkId>,
    pub suppressed_by: Vec<FrameworkId>,
    pub offers_made: u32,
    pub reasons: Vec<Reason>,
}
