//! The agent's local machinery against real processes and real Docker containers.

#[path = "agent/checkpoint.rs"]
mod checkpoint;
#[path = "agent/docker.rs"]
mod docker;
#[path = "agent/health.rs"]
mod health;
#[path = "agent/pending.rs"]
mod pending;
#[path = "agent/process.rs"]
mod process;
#[path = "agent/recovery.rs"]
mod recovery;
#[path = "agent/resources.rs"]
mod resources;
#[path = "agent/support.rs"]
mod support;
#[path = "agent/transition.rs"]
mod transition;
