//! Whether this master still hears the cluster: what a master consults before it serves
//! agents (their event streams and commands).
//!
//! Raft alone never tells a leader cut off from its quorum that it no longer leads: it keeps
//! its role until it hears a higher term, which a partition withholds. A follower cut off
//! from the leader keeps serving a journal that no longer grows. Agents attached to either
//! would wait for events that never come. So each master watches its own links: a leader
//! stands while a quorum answered its RPCs within `election_timeout_max`; a follower while it
//! heard from a leader within twice that (an ordinary election, decided in well under that,
//! does not count). Anything else is adrift, and the master sends its agents elsewhere.

use std::time::Duration;

use tokio::sync::watch;

use crate::election::PreVoteResponder;
use crate::transfer::Links;
use crate::NodeId;

/// What this master can vouch for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Leads, with a quorum that answered lately.
    Leading,
    /// Follows `leader`, heard from lately.
    Following { leader: NodeId },
    /// A leader cut off from its quorum, a follower cut off from every leader, or a master
    /// between leaders for longer than an election takes.
    Adrift,
}

/// How long a leader may go without a quorum's answer, and a follower without a leader's
/// word, before it is adrift.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StandingLimits {
    pub leader_quorum: Duration,
    pub follower_leader: Duration,
    /// How often the standing is read again.
    pub every: Duration,
}

/// A leader's standing from its links: whether a quorum of `other_voters` and itself (if
/// it votes; a leader being removed does not) answered within the limit. Cheap and
/// synchronous, so a leader elected a moment ago is not taken for adrift while the watch
/// below catches up.
pub(crate) fn leader_standing(
    other_voters: impl Iterator<Item = NodeId>,
    leader_votes: bool,
    links: &Links,
    limits: StandingLimits,
) -> Standing {
    let (mut total, mut heard) = (usize::from(leader_votes), usize::from(leader_votes));
    for voter in other_voters {
        total += 1;
        if links.silent_for(voter).is_some_and(|silent| silent < limits.leader_quorum) {
            heard += 1;
        }
    }
    if heard > total / 2 {
        Standing::Leading
    } else {
        Standing::Adrift
    }
}

/// Keeps `standing` current until `closing` is set or Raft stops.
pub(crate) async fn watch_standing(
    responder: PreVoteResponder,
    links: Links,
    limits: StandingLimits,
    standing: watch::Sender<Standing>,
    mut closing: watch::Receiver<bool>,
) {
    loop {
        if *closing.borrow() {
            return;
        }
        let Some(position) = responder.position().await else { return };
        let now = if position.leader {
            let others = position.voters.iter().map(|(voter, _)| *voter);
            leader_standing(others, position.voter, &links, limits)
        } else {
            let heard = position
                .vote_touched
                .is_some_and(|touched| touched.elapsed() < limits.follower_leader);
            let leader = responder.raft().metrics().borrow().current_leader;
            match leader {
                Some(leader) if heard && leader != responder.node_id() => {
                    Standing::Following { leader }
                }
                _ => Standing::Adrift,
            }
        };
        standing.send_if_modified(|was| {
            if *was == now {
                return false;
            }
            tracing::info!(from = ?was, to = ?now, "standing changed");
            *was = now;
            true
        });
        tokio::select! {
            () = tokio::time::sleep(limits.every) => {}
            _ = closing.changed() => {}
        }
    }
}
