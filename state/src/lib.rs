//! Corral's cluster state: pure, deterministic, sans-IO.
//!
//! A [`Command`] in an [`Entry`] goes into [`ClusterState::apply`]; an [`Outcome`] comes
//! out: the [`Event`]s it produced, or a [`Rejection`] naming what was wrong. Time, ids and
//! every other input arrive in the entry; nothing here reads a clock, does IO, or lets a
//! hash order reach an output. Replaying the same entries gives the same events and the
//! same [`ClusterState::digest`] on every machine.

mod apply;
pub mod auth;
pub mod autoscale;
mod cluster;
pub mod codec;
mod command;
mod dedup;
mod diff;
mod entity;
mod event;
mod ids;
pub mod model;
mod outcome;
pub mod resources;
mod shared;
mod tally;
mod time;
mod verdict;
mod visible;

pub use cluster::{ClusterState, Executor};
pub use codec::{CodecError, Digest, FORMAT_VERSION};
pub use command::{
    Actor, AppPut, Cancellation, Command, Entry, Force, KillScaling, OfferSpec, Operation, PutMode,
    ServiceLaunch, Wipe,
};
pub use diff::{
    diff, diff_excerpts, diff_fingerprints, Change, EntityChange, Excerpt, Fingerprint,
};
pub use entity::{Entity, EntityKind, ANONYMOUS_OPERATOR};
pub use event::{Cursor, Event, Topic};
pub use ids::{
    AgentId, AppId, DeploymentId, ExecutorId, FrameworkId, OfferId, OperationId, RequestId, Role,
    TaskId, UpdateUuid,
};
pub use outcome::{Outcome, Rejection};
pub use resources::{
    parse_resources, Quantities, Ranges, Reservation, Resource, Resources, Scalar, Value,
};
pub use shared::{SharedMap, SharedSet};
pub use tally::{AgentStanding, Amounts, Held, Tally};
pub use time::{Rfc3339, Timestamp};
pub use verdict::Verdict;
pub use visible::Hidden;
