//! Adding and removing masters safely: what the leader sees of each member, and the rules
//! that refuse a change before it is proposed.
//!
//! A change is refused when it names an unknown master, would remove the last voter or the
//! leader itself, or would leave the voters that are up unable to form a majority of either
//! the old or the new configuration (openraft commits a change in both, joint consensus). A
//! master counts as up when it answered one of this leader's Raft RPCs within
//! [`Links::liveness`](crate::transfer::Links).

use std::collections::BTreeSet;
use std::time::Duration;

use openraft::ServerState;

use crate::{LogError, LogNode, NodeId};

/// Why a membership change or a transfer was refused before anything was proposed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("master {0} is not a member of this cluster")]
    UnknownMember(NodeId),
    #[error("master {0} is the last voter; a cluster cannot remove its last voter")]
    LastVoter(NodeId),
    #[error("master {0} leads; move leadership to another master first (corral leader transfer --to ID)")]
    RemovingLeader(NodeId),
    #[error("removing master {node_id} would leave {up} of the {voters} voters of the {which} configuration up, fewer than the {needed} a quorum needs")]
    QuorumLost { node_id: NodeId, which: &'static str, up: usize, voters: usize, needed: usize },
    #[error("master {node_id} is already a voter at {address}")]
    AlreadyVoter { node_id: NodeId, address: String },
    #[error("master {node_id} is already a member at {known}, not {asked}")]
    AddressMismatch { node_id: NodeId, known: String, asked: String },
    #[error("address {address} already belongs to master {owner}")]
    AddressTaken { address: String, owner: NodeId },
    #[error("master {0} is a learner, not a voter")]
    NotVoter(NodeId),
    #[error("master {0} has not answered this leader lately")]
    Unreachable(NodeId),
}

impl Refusal {
    /// The request parameter the refusal is about.
    pub fn field(&self) -> &'static str {
        match self {
            Refusal::AddressTaken { .. } | Refusal::AddressMismatch { .. } => "address",
            _ => "node_id",
        }
    }

    /// True when the refusal says the master does not exist (404 rather than 409).
    pub fn is_unknown(&self) -> bool {
        matches!(self, Refusal::UnknownMember(_))
    }
}

/// Why a membership change or transfer did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Log(#[from] LogError),
    /// Started but not finished in time (a new master that does not catch up, an election
    /// that was not decided); nothing unsafe was left behind.
    #[error("{0}")]
    Unfinished(String),
}

/// One member as the leader sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub node_id: NodeId,
    pub address: String,
    pub role: MemberRole,
    pub matched_index: Option<u64>,
    pub lag: Option<u64>,
    /// How long ago it last answered this master (leader only; `None` if never).
    pub silent_for: Option<Duration>,
    pub up: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberRole {
    Leader,
    Voter,
    Learner,
}

impl MemberRole {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberRole::Leader => "leader",
            MemberRole::Voter => "voter",
            MemberRole::Learner => "learner",
        }
    }
}

/// Whether removing `node_id` keeps a working quorum. `up` holds the voters known to be up,
/// the leader included.
pub fn check_removal(
    voters: &BTreeSet<NodeId>,
    learners: &BTreeSet<NodeId>,
    up: &BTreeSet<NodeId>,
    leader: NodeId,
    node_id: NodeId,
) -> Result<(), Refusal> {
    if learners.contains(&node_id) {
        return Ok(());
    }
    if !voters.contains(&node_id) {
        return Err(Refusal::UnknownMember(node_id));
    }
    if voters.len() == 1 {
        return Err(Refusal::LastVoter(node_id));
    }
    if node_id == leader {
        return Err(Refusal::RemovingLeader(node_id));
    }
    let remaining: BTreeSet<NodeId> = voters.iter().copied().filter(|id| *id != node_id).collect();
    for (which, configuration) in [("current", voters), ("new", &remaining)] {
        let up_count = configuration.intersection(up).count();
        let needed = configuration.len() / 2 + 1;
        if up_count < needed {
            return Err(Refusal::QuorumLost {
                node_id,
                which,
                up: up_count,
                voters: configuration.len(),
                needed,
            });
        }
    }
    Ok(())
}

impl LogNode {
    /// Every member with its role and, on the leader, how far along and how recently heard.
    pub fn members(&self) -> Vec<Member> {
        let status = self.status();
        let links = self.links();
        let leading = status.role == "leader";
        status
            .members
            .into_iter()
            .map(|member| {
                let is_self = member.node_id == status.node_id;
                let role = match (status.leader == Some(member.node_id), member.voter) {
                    (true, _) => MemberRole::Leader,
                    (false, true) => MemberRole::Voter,
                    (false, false) => MemberRole::Learner,
                };
                let silent_for =
                    if leading && !is_self { links.silent_for(member.node_id) } else { None };
                let up = if leading { is_self || links.is_up(member.node_id) } else { is_self };
                Member {
                    node_id: member.node_id,
                    address: member.address,
                    role,
                    matched_index: member.matched_index,
                    lag: member.lag,
                    silent_for,
                    up,
                }
            })
            .collect()
    }

    /// Adds master `node_id` at `address`: it joins as a learner, catches up (from a
    /// snapshot if the log it needs was purged) within `catch_up`, then becomes a voter. A
    /// learner already at that address is promoted: asking again after a timeout resumes.
    pub async fn join(
        &self,
        node_id: NodeId,
        address: &str,
        catch_up: Duration,
    ) -> Result<(), ChangeError> {
        self.require_leader()?;
        for member in self.status().members {
            if member.node_id == node_id && member.address != address {
                return Err(Refusal::AddressMismatch {
                    node_id,
                    known: member.address,
                    asked: address.to_owned(),
                }
                .into());
            }
            if member.node_id == node_id && member.voter {
                return Err(Refusal::AlreadyVoter { node_id, address: member.address }.into());
            }
            if member.node_id != node_id && member.address == address {
                return Err(Refusal::AddressTaken {
                    address: address.to_owned(),
                    owner: member.node_id,
                }
                .into());
            }
        }
        match tokio::time::timeout(catch_up, self.add_learner(node_id, address)).await {
            Ok(added) => added?,
            Err(_) => {
                return Err(ChangeError::Unfinished(format!(
                    "master {node_id} at {address} did not catch up within {catch_up:?}; it stays a learner (check that it runs with an empty --data-dir and no --peers, then add it again, or remove it)"
                )))
            }
        }
        self.promote(BTreeSet::from([node_id])).await?;
        Ok(())
    }

    /// Removes master `node_id` unless that would lose the quorum (see [`check_removal`]).
    pub async fn leave(&self, node_id: NodeId) -> Result<(), ChangeError> {
        self.require_leader()?;
        let metrics = self.raft().metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let learners: BTreeSet<NodeId> = membership.learner_ids().collect();
        let links = self.links();
        let own = self.node_id();
        let up: BTreeSet<NodeId> =
            voters.iter().copied().filter(|id| *id == own || links.is_up(*id)).collect();
        check_removal(&voters, &learners, &up, own, node_id)?;
        self.remove_member(node_id).await?;
        Ok(())
    }

    fn require_leader(&self) -> Result<(), LogError> {
        if self.raft().metrics().borrow().state == ServerState::Leader {
            return Ok(());
        }
        Err(self.not_leader())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::{check_removal, Refusal};

    fn set(ids: &[u64]) -> BTreeSet<u64> {
        ids.iter().copied().collect()
    }

    #[test]
    fn a_dead_voter_of_three_can_be_removed() {
        assert_eq!(check_removal(&set(&[1, 2, 3]), &set(&[]), &set(&[1, 2]), 1, 3), Ok(()));
    }

    #[test]
    fn removing_a_live_voter_while_another_is_dead_loses_the_quorum() {
        assert_eq!(
            check_removal(&set(&[1, 2, 3]), &set(&[]), &set(&[1, 2]), 1, 2),
            Err(Refusal::QuorumLost { node_id: 2, which: "new", up: 1, voters: 2, needed: 2 })
        );
    }

    #[test]
    fn with_two_of_four_down_even_a_dead_voter_cannot_go() {
        assert_eq!(
            check_removal(&set(&[1, 2, 3, 4]), &set(&[]), &set(&[1, 2]), 1, 4),
            Err(Refusal::QuorumLost { node_id: 4, which: "current", up: 2, voters: 4, needed: 3 })
        );
    }

    #[test]
    fn the_last_voter_the_leader_and_strangers_are_refused() {
        assert_eq!(
            check_removal(&set(&[1]), &set(&[]), &set(&[1]), 1, 1),
            Err(Refusal::LastVoter(1))
        );
        assert_eq!(
            check_removal(&set(&[1, 2, 3]), &set(&[]), &set(&[1, 2, 3]), 1, 1),
            Err(Refusal::RemovingLeader(1))
        );
        assert_eq!(
            check_removal(&set(&[1, 2, 3]), &set(&[]), &set(&[1, 2, 3]), 1, 9),
            Err(Refusal::UnknownMember(9))
        );
    }

    #[test]
    fn a_learner_can_always_go() {
        assert_eq!(check_removal(&set(&[1]), &set(&[4]), &set(&[1]), 1, 4), Ok(()));
    }
}
