//! Corral's allocator: hierarchical weighted Dominant Resource Fairness with quotas,
//! reservations and refusal filters. Pure and deterministic: the state and the time come in
//! as arguments, offers and the reasons for them come out.
//!
//! The allocator keeps a compact mirror of what it needs (free resources per agent as
//! reservation classes, allocation per framework and role, the role tree, filters).
//! [`Allocator::observe`] marks what an applied event changed; [`Allocator::allocate`]
//! re-reads only that from the [`ClusterState`](corral_state::ClusterState), then walks
//! the agents that have free resources and, for each, the role tree in DRF order.

mod allocator;
mod amounts;
mod config;
mod cycle;
mod explain;
mod explain_build;

pub use allocator::{Allocation, Allocator};
pub use amounts::DIMENSIONS;
pub use config::AllocatorConfig;
pub use explain::{
    CycleSummary, FrameworkExplanation, FrameworkRoleStanding, Reason, RoleExplanation,
};
