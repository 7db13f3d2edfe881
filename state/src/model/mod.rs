//! The things the cluster is made of, as the master records them. Field names follow the
//! Mesos v1 `.proto` files (`mesos/v1/mesos.proto`, `master/master.proto`) so that the API
//! can answer every question the scheduler and operator APIs ask from these records.

mod agent;
mod autoscaler;
mod framework;
mod maintenance;
mod offer;
mod role;
mod service;
mod settings;
mod task;

pub use agent::{Agent, AgentInfo, AgentMode, Attributes, DrainConfig, Liveness};
pub use autoscaler::{
    Autoscaler, AutoscalerPolicy, Decision, Hold, HoldReason, Limit, MetricKind, MetricReading,
    MetricTarget, Millionths, RateKind, RatePolicy, Recommendation, RecordedScaling, Scaling,
    ScalingRules, SelectPolicy, MAX_RECORDED_RECOMMENDATIONS, MAX_RECORDED_SCALINGS,
};
pub use framework::{
    CompletedFramework, Framework, FrameworkCapability, FrameworkInfo, FrameworkState, OfferFilter,
    RemovalReason,
};
pub use maintenance::{MachineId, MachineMode, MaintenanceWindow, Unavailability};
pub use offer::{Filters, Offer, RescindReason};
pub use role::{QuotaConfig, RoleConfig};
pub use service::{
    AppRevision, AppSpec, Backoff, Deployment, DeploymentAction, Instance, InstanceCounts,
    LaunchDelay, ServiceApp, ServiceState, TaskFailure, UnreachablePolicy, UpgradeBounds,
    MAX_APP_VERSIONS, SERVICE_PORT_RANGE,
};
pub use settings::{Settings, SettingsChange};
pub use task::{
    CommandInfo, CommandUri, ContainerInfo, ContainerType, DiscoveryInfo, DiscoveryPort,
    DiscoveryVisibility, DockerInfo, DockerNetwork, ExecutorInfo, HealthCheck, HealthCheckKind,
    HttpCheck, KillPolicy, Label, PortMapping, ReportedTask, Task, TaskInfo, TaskReason,
    TaskSource, TaskState, TaskStatus, TcpCheck,
};
