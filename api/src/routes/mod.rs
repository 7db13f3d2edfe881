//! HTTP handlers, one file per API.

pub mod agent;
pub mod misc;
pub mod native;
pub mod operator;
pub mod scheduler;
pub mod stream;
