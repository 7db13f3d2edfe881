//! The agent's local machinery against real processes and real Docker containers, and the
//! agent daemon with its HTTP API against a minimal in-test master.

#[path = "agent/api.rs"]
mod api;
#[path = "agent/checkpoint.rs"]
mod checkpoint;
#[path = "agent/docker.rs"]
mod docker;
#[path = "agent/files.rs"]
mod files;
#[path = "agent/health.rs"]
mod health;
#[path = "agent/master.rs"]
mod master;
#[path = "agent/pending.rs"]
mod pending;
#[path = "agent/process.rs"]
mod process;
#[path = "agent/recovery.rs"]
mod recovery;
#[path = "agent/resources.rs"]
mod resources;
#[path = "agent/running.rs"]
mod running;
#[path = "agent/stop.rs"]
mod stop;
#[path = "agent/support.rs"]
mod support;
#[path = "agent/tables.rs"]
mod tables;
#[path = "agent/transition.rs"]
mod transition;
#[path = "agent/usage.rs"]
mod usage;
