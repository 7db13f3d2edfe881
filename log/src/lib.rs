//! Corral's replicated, durable command log.
//!
//! Every command becomes part of a Raft entry ([`Batch`]) replicated across the masters by
//! openraft and persisted in sled; every master applies committed entries to its
//! [`ClusterState`](corral_state::ClusterState). Derived events are kept in a journal that
//! Raft compaction does not purge and are addressable by [`Cursor`](corral_state::Cursor);
//! [`LogNode::subscribe`] serves them from any master.
//!
//! This is the only crate that knows openraft and sled. The master talks to [`LogNode`].

pub mod backup;
pub mod election;
mod error;
pub mod journal;
pub mod membership;
pub mod network;
mod node;
pub mod observe;
mod proposer;
mod standing;
pub mod store;
pub mod subscribe;
pub mod transfer;
mod types;

pub use error::LogError;
pub use journal::audit::{
    ActorFilter, AuditError, AuditFootprint, CommandRecord, DiffRecord, RecordJson, TrailFilter,
};
pub use journal::{ChainHead, CheckpointPolicy, JournalRetention};
pub use membership::{ChangeError, Member, MemberRole, Refusal};
pub use node::{
    ClusterStatus, Committed, Endpoint, LogConfig, LogNode, LogTuning, MemberStatus,
    ProposerCounters, ReadConsistency,
};
pub use observe::{LogObserver, Observation};
pub use proposer::ProposerConfig;
pub use standing::{LeaderWord, Standing};
pub use subscribe::{
    EventFilter, JournalEvent, Subscription, SubscriptionEnded, SubscriptionLimits,
    SubscriptionProgress,
};
pub use transfer::TransferOutcome;
pub use types::{typ, Batch, BatchResponse, NodeId, TypeConfig};

/// Re-exported so the master can build a router and name node addresses without depending
/// on openraft itself.
pub use openraft::BasicNode;
