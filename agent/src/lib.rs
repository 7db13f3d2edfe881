//! The Corral agent's local machinery, independent of the master's API: resources,
//! containerizers (processes and Docker), health checks, checkpoints and recovery.

pub mod checkpoint;
pub mod containerizer;
pub mod docker;
pub mod environment;
pub mod health;
pub mod limits;
pub mod process;
pub mod resources;
pub mod transition;
