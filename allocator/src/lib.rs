//! Corral's allocator: hierarchical weighted Dominant Resource Fairness with quotas,
//! reservations and refusal filters. Pure and deterministic: the state and the time come in
//! as arguments; offers, and the reasons for them, come out.
//!
//! ```text
//! leader loop:                                   after each applied entry:
//!   let allocation = allocator.allocate(&state, now);     for event in outcome.events() {
//!   propose Command::OfferResources {                          allocator.observe(event);
//!       offers: allocation.offers }                        }
//! after a leader change: Allocator::from_state(config, &state)
//! "why isn't my app deploying?": allocator.explain_framework(&id) / explain_role(&role)
//! ```
//!
//! How a cycle decides, agent by agent (agents in id order):
//!
//! 1. Guarantees first: roles below their quota guarantee, in weighted-share order, get the
//!    agent's unreserved resources up to what they still miss.
//! 2. Reserved resources go to the reservation's role or its sub-roles, with whatever
//!    unreserved resources that role may also take.
//! 3. The rest goes to the first framework in DRF order: down the role tree by weighted
//!    dominant share (a role's own frameworks compete with its sub-roles as one child, as
//!    Mesos's "." leaf), then frameworks within the role by dominant share; ties by id.
//!
//! Throughout, allocated and offered resources count toward shares, no role (or ancestor)
//! passes its limit, unreserved resources stay held back for other roles' unmet guarantees,
//! declined agents stay with other frameworks until the filter expires at the `now` passed
//! in, suppressed roles, disconnected frameworks and agents that are not active and
//! reachable get nothing, offers smaller than every minimum allocatable quantity are not
//! made, and a framework gets at most the configured number of offers per cycle.
//!
//! The allocator keeps a compact mirror of what it needs: free resources per agent by
//! reservation class, allocation per (framework, role), the role tree with weights and
//! quotas, refusal filters. [`Allocator::observe`] marks what an event changed;
//! [`Allocator::allocate`] re-reads only that from the
//! [`ClusterState`](corral_state::ClusterState), so the mirror cannot drift from what
//! `apply` decided, and a cycle costs about (changed agents and frameworks) + (frameworks ×
//! log frameworks) + (agents with free resources × depth × log frameworks).

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
