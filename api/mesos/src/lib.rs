//! Mesos compatibility, pure: the v1 scheduler and operator JSON shapes, their conversions to
//! and from `corral-state`, scheduler events and per-framework sessions, the v0
//! `/master/state` document, and RecordIO framing. No IO, no clock, no HTTP: the master's
//! shell parses with this crate and renders with it.

pub mod borrowed;
pub mod call;
pub mod convert;
mod error;
pub mod events;
pub mod json;
pub mod operator;
mod parallel;
pub mod recordio;
pub mod session;
pub mod v0;

pub use error::FieldError;
