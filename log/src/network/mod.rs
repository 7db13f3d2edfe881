//! Raft RPCs between masters: over HTTP in production ([`http`]), in-process with injected
//! faults in tests ([`local`]).

pub(crate) mod append;
pub mod http;
pub mod local;
pub mod secret;

pub use http::{raft_router, signed, HttpNetwork, RAFT_BODY_LIMIT};
pub use local::LocalNetwork;
pub use secret::{ClusterSecret, SecretRefusal, CLUSTER_AUTH_HEADER};

use openraft::error::RPCError;
use openraft::network::{RPCOption, RaftNetwork};

use crate::standing::LeaderWord;
use crate::typ::{AppendEntriesRequest, AppendEntriesResponse, Node, RaftError};
use crate::{NodeId, TypeConfig};

/// A connection that carries the sending leader's [`LeaderWord`] with each append, for the
/// follower's standing.
pub trait WordedAppend: RaftNetwork<TypeConfig> {
    fn append_with_word(
        &mut self,
        request: AppendEntriesRequest,
        option: RPCOption,
        word: LeaderWord,
    ) -> impl std::future::Future<
        Output = Result<AppendEntriesResponse, RPCError<NodeId, Node, RaftError>>,
    > + Send;
}

/// Path prefix of the Raft routes the master mounts; the public API owns everything else.
pub const RAFT_ROUTE_PREFIX: &str = "/corral/raft";
