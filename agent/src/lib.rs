//! The Corral agent's local machinery, independent of the master's API.
//!
//! - [`resources`]: what the agent offers (Mesos's auto-detection rules, `--resources`,
//!   `--attributes`).
//! - [`containerizer`]: one entry point over the [`process`] and [`docker`] containerizers,
//!   and the [`containerizer::TaskRunner`] that drives one task from launch to its single
//!   terminal transition, with kills and health checks.
//! - [`transition`]: outcomes as data, turned into `TaskStatus` updates by the reconciler.
//! - [`health`]: COMMAND, HTTP and TCP checks with Mesos's semantics.
//! - [`checkpoint`]: what survives an agent restart, and how tasks are found again.
//! - [`daemon`]: the `corral agent` process: registration, heartbeats, the reconciler that
//!   follows the agent's events, status updates delivered exactly once, recovery.
//! - [`limits`]: cgroup v2, cgroup v1 or rlimits for process tasks.
//! - [`tasks`]: what the agent shows of its tasks; [`usage`]: their CPU and memory, sampled;
//!   [`metrics`]: Prometheus; [`http`]: the agent's own HTTP API on `--listen`.

pub mod checkpoint;
pub mod containerizer;
pub mod daemon;
pub mod docker;
pub mod environment;
pub mod health;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod process;
pub mod resources;
pub mod tasks;
pub mod transition;
pub mod usage;
