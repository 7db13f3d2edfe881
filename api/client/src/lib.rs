//! HTTP clients of a Corral cluster, for the `corral` command, `corral dev --demo` and tests:
//! a Mesos v1 scheduler client (a framework over the raw scheduler API), the native event
//! stream, the audit API, and the operator's calls on the cluster (members, leadership,
//! backups). Every failure is an `Error` naming what was asked and what came back.

#![warn(unreachable_pub)]

mod audit;
mod cluster;
mod error;
mod events;
mod scheduler;

pub use audit::{point_parameter, AuditClient};
pub use cluster::{ClusterClient, MemberView, Members, SnapshotDownload, Transferred};
pub use error::Error;
pub use events::follow_events;
pub use scheduler::{SchedulerClient, SchedulerEvents};
