//! Marathon 1.x's `/v2` vocabulary: app definitions as its REST API accepts and renders them,
//! its 422 validation shape, and the translation to the Mesos `TaskInfo` Corral launches.

pub mod app;

pub use app::{
    parse_app, AppDefinition, Constraint, ConstraintOperator, Container, ContainerKind, Docker,
    DockerNetwork, HealthCheck, HealthCheckProtocol, KillSelection, LaunchError, PortDefinition,
    PortMapping, UnreachableStrategy, UpgradeStrategy, ValidationDetail, ValidationFailure,
};
