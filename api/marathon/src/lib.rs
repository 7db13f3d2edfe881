//! Marathon 1.x, pure: app definitions as its REST API accepts and renders them, its 422
//! validation shape, the `TaskInfo` an instance launches with, placement constraints, the
//! planner (state and definitions in, a `Plan` out, like the allocator) and the JSON of its
//! `/v2` API and event bus. The loop that proposes plans runs on the leader, in the master.

pub mod app;
pub mod constraints;
pub mod events;
pub mod offers;
pub mod planner;
pub mod render;

pub use app::{
    parse_app, AppDefinition, Constraint, ConstraintOperator, Container, ContainerKind, Docker,
    DockerNetwork, HealthCheck, HealthCheckProtocol, KillSelection, LaunchError, PortDefinition,
    PortMapping, UnreachableStrategy, UpgradeStrategy, ValidationDetail, ValidationFailure,
};
