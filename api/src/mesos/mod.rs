//! Mesos v1 compatibility: JSON shapes, conversions, scheduler calls and events, RecordIO.

pub mod borrowed;
pub mod call;
pub mod convert;
pub mod events;
pub mod json;
pub mod operator;
pub mod recordio;
pub mod session;
pub mod v0;
