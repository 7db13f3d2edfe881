//! The master's HTTP surface. So far: the Mesos v1 JSON layer (calls in, events out) and the
//! API's error type; the routers, leader loops and metrics come with the master.

pub mod error;
pub mod mesos;
pub mod metrics;
pub mod native;
