use openraft::error::ForwardToLeader;
use openraft::BasicNode;

use crate::journal::JournalError;
use crate::store::StoreError;
use crate::NodeId;

/// Everything that can go wrong talking to the log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Writes and linearizable reads go to the leader; this master is not it.
    #[error("this master is not the leader{}", leader_hint_text(leader_hint))]
    NotLeader { leader_hint: Option<(NodeId, String)> },
    #[error("the log is shutting down")]
    ShuttingDown,
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("journal: {0}")]
    Journal(#[from] JournalError),
    #[error("raft: {0}")]
    Raft(String),
    #[error("membership change refused: {0}")]
    Membership(String),
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The command may or may not have been committed: this master lost the lead while it
    /// was in flight and could not learn which in time. Retrying with the same request id is
    /// safe; retrying without it may apply it twice.
    #[error("the command's outcome is unknown: leadership changed while it was in flight")]
    OutcomeUnknown,
    /// The command cannot be written to the log; it was not proposed.
    #[error("cannot encode the command: {0}")]
    Encode(#[from] corral_state::codec::CodecError),
}

fn leader_hint_text(leader_hint: &Option<(NodeId, String)>) -> String {
    match leader_hint {
        Some((node_id, address)) => format!("; try master {node_id} at {address}"),
        None => String::new(),
    }
}

impl LogError {
    /// A "not leader" answer carrying whatever openraft knows of the current leader.
    pub(crate) fn forward_to(forward: ForwardToLeader<NodeId, BasicNode>) -> LogError {
        let leader_hint = forward.leader_id.map(|leader_id| {
            (leader_id, forward.leader_node.map(|node| node.addr).unwrap_or_default())
        });
        LogError::NotLeader { leader_hint }
    }
}
