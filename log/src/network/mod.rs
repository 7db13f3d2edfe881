//! Raft RPCs between masters: over HTTP in production ([`http`]), in-process with injected
//! faults in tests ([`local`]).

pub(crate) mod append;
pub mod http;
pub mod local;

pub use http::{raft_router, HttpNetwork};
pub use local::LocalNetwork;

/// Path prefix of the Raft routes the master mounts; the public API owns everything else.
pub const RAFT_ROUTE_PREFIX: &str = "/corral/raft";
