//! One module per API, each with its own `router()`; `crate::http::router` composes them.
//! Routes use the shell (`Master`, streams, errors); the shell never uses a route.

pub(crate) mod acl;
pub(crate) mod agent;
pub(crate) mod agent_proxy;
pub(crate) mod audit;
pub(crate) mod autoscaler;
pub(crate) mod explain;
pub(crate) mod marathon;
pub(crate) mod marathon_apps;
pub(crate) mod members;
pub(crate) mod mesos_dns;
pub(crate) mod misc;
pub(crate) mod native;
pub(crate) mod operator;
pub(crate) mod scheduler;
pub(crate) mod services;
pub(crate) mod settings;
pub(crate) mod snapshot;
pub(crate) mod ui;
pub(crate) mod v0;
