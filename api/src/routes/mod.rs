//! HTTP handlers, one file per API.

pub mod agent;
pub mod marathon;
pub mod marathon_apps;
pub mod misc;
pub mod native;
pub mod operator;
pub mod scheduler;
pub mod settings;
pub mod stream;
