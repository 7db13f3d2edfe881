//! The master: Mesos v1 scheduler and operator APIs, the native `/corral/v1` API, the
//! agent-facing API, the leader's loops and metrics. Domain rules live in `corral-state`;
//! this crate translates and serves.

pub mod error;
pub mod leader;
pub mod marathon;
pub mod master;
pub mod mesos;
pub mod metrics;
pub mod native;
pub mod replay;
pub mod routes;
