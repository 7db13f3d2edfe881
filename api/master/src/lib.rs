//! A Corral master's shell: one router per API (Mesos v1 scheduler and operator, v0 reads,
//! Marathon `/v2`, the native `/corral/v1`, the agent-facing API) composed in `http`, the
//! leader's loops (allocation, ticks, the service scheduler), event streams and metrics, all
//! over a `corral_log::LogNode`. Domain rules live in `corral-state`; wire formats in
//! `corral-mesos` and `corral-marathon`. This crate parses, proposes and renders.

#![warn(unreachable_pub)]

mod auth;
mod autoscaler;
mod bootstrap;
mod catalog;
mod cors;
mod dns;
mod error;
mod http;
mod leader;
mod leader_proxy;
mod master;
mod metrics;
mod native;
mod read_index;
mod routes;
mod service_scheduler;
mod stream;
mod transport;
mod written;

pub use auth::{hash_password, new_token, parse_token, TOKEN_PREFIX};
pub use bootstrap::{keep_bootstrapped, BootstrapToken};
pub use corral_dns::DnsConfig;
pub use dns::start_dns;
pub use http::{router, API_BODY_LIMIT};
pub use leader::run as run_leader_loops;
pub use master::{LoopIntervals, Master};
pub use metrics::Metrics;
pub use transport::{
    serve, Listeners, Serving, DEFAULT_LEADER_TIMEOUT, DEFAULT_MAX_CLIENT_STREAMS,
};
