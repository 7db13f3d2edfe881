//! Marathon 1.x, built in: app definitions as its REST API accepts and renders them, its 422
//! validation shape, the `TaskInfo` an instance launches with, placement constraints, the
//! scheduler that plans launches and kills on the leader, and the JSON of its `/v2` API and
//! event bus.

pub mod app;
pub mod constraints;
pub mod events;
pub mod offers;
pub mod planner;
pub mod render;
pub mod scheduler;

pub use app::{
    parse_app, AppDefinition, Constraint, ConstraintOperator, Container, ContainerKind, Docker,
    DockerNetwork, HealthCheck, HealthCheckProtocol, KillSelection, LaunchError, PortDefinition,
    PortMapping, UnreachableStrategy, UpgradeStrategy, ValidationDetail, ValidationFailure,
};
