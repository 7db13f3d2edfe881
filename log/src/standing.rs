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

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

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

/// What a leader says of itself on every append it sends. A follower cut off together with
/// a leader that lost its quorum (two of five masters, say) still hears that leader, so Raft
/// keeps it following and its agents would wait for events until the partition heals; the
/// leader's word tells it that it is adrift too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LeaderWord {
    /// A quorum answered the leader lately (or the sender does not say).
    #[default]
    HasQuorum,
    /// No quorum answered the leader within `election_timeout_max`.
    LostQuorum,
}

/// A [`LeaderWord`] shared between threads: the one this master sends (set by its standing
/// watch) or the one it last accepted from a leader. Cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct SharedWord(Arc<AtomicBool>);

impl SharedWord {
    pub(crate) fn get(&self) -> LeaderWord {
        if self.0.load(Ordering::Relaxed) {
            LeaderWord::LostQuorum
        } else {
            LeaderWord::HasQuorum
        }
    }

    pub(crate) fn set(&self, word: LeaderWord) {
        self.0.store(word == LeaderWord::LostQuorum, Ordering::Relaxed);
    }
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

/// The leader a follower last heard, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LastHeard {
    pub leader: NodeId,
    pub at: Instant,
}

/// What a master that does not lead can vouch for. `leader` is Raft's current leader and
/// `touched` when the vote was last refreshed by one (or granted). A master between leaders
/// (a candidate, or a voter for one: Raft then knows no leader) still follows the last one
/// it heard until `follower_leader` has passed since: an election is decided well within
/// that, and agents reading events from this master should not be sent away by one.
/// The grace is counted from the last leader's word, never from the master's own vote, so
/// a master cut off from everyone is adrift at the same moment either way. A leader whose
/// last append said no quorum hears it (`word`) is followed no more: this master is cut
/// off with it.
pub(crate) fn follower_standing(
    me: NodeId,
    leader: Option<NodeId>,
    touched: Option<Instant>,
    last: Option<LastHeard>,
    word: LeaderWord,
    now: Instant,
    limits: StandingLimits,
) -> (Standing, Option<LastHeard>) {
    if word == LeaderWord::LostQuorum {
        return (Standing::Adrift, last);
    }
    let recent = |at: Instant| now.saturating_duration_since(at) < limits.follower_leader;
    if let (Some(leader), Some(at)) = (leader, touched) {
        if leader != me && recent(at) {
            return (Standing::Following { leader }, Some(LastHeard { leader, at }));
        }
    }
    match last {
        Some(last) if leader.is_none() && recent(last.at) => {
            (Standing::Following { leader: last.leader }, Some(last))
        }
        _ => (Standing::Adrift, last),
    }
}

/// Keeps `standing` current until `closing` is set or Raft stops, and `own_word` (what this
/// master's appends say while it leads) with it.
pub(crate) async fn watch_standing(
    responder: PreVoteResponder,
    links: Links,
    limits: StandingLimits,
    standing: watch::Sender<Standing>,
    own_word: SharedWord,
    mut closing: watch::Receiver<bool>,
) {
    let mut last = None;
    loop {
        if *closing.borrow() {
            return;
        }
        let Some(position) = responder.position().await else { return };
        let now = if position.leader {
            let others = position.voters.iter().map(|(voter, _)| *voter);
            leader_standing(others, position.voter, &links, limits)
        } else {
            let leader = responder.raft().metrics().borrow().current_leader;
            let (now, heard) = follower_standing(
                responder.node_id(),
                leader,
                position.vote_touched,
                last,
                responder.leader_word(),
                Instant::now(),
                limits,
            );
            last = heard;
            now
        };
        let lost = position.leader && now == Standing::Adrift;
        own_word.set(if lost { LeaderWord::LostQuorum } else { LeaderWord::HasQuorum });
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

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: StandingLimits = StandingLimits {
        leader_quorum: Duration::from_millis(800),
        follower_leader: Duration::from_millis(1600),
        every: Duration::from_millis(50),
    };

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn a_follower_hearing_its_leader_follows_it() {
        let base = Instant::now();
        let (standing, last) = follower_standing(
            2,
            Some(1),
            Some(at(base, 100)),
            None,
            LeaderWord::HasQuorum,
            at(base, 200),
            LIMITS,
        );
        assert_eq!(standing, Standing::Following { leader: 1 });
        assert_eq!(last, Some(LastHeard { leader: 1, at: at(base, 100) }));
    }

    #[test]
    fn between_leaders_a_master_follows_the_last_one_until_the_grace_passes() {
        let base = Instant::now();
        let last = Some(LastHeard { leader: 1, at: base });
        // A candidate: Raft knows no leader, and its own vote refreshed `touched`.
        let during = follower_standing(
            2,
            None,
            Some(at(base, 900)),
            last,
            LeaderWord::HasQuorum,
            at(base, 1000),
            LIMITS,
        );
        assert_eq!(during, (Standing::Following { leader: 1 }, last));
        let after = follower_standing(
            2,
            None,
            Some(at(base, 1700)),
            last,
            LeaderWord::HasQuorum,
            at(base, 1700),
            LIMITS,
        );
        assert_eq!(after, (Standing::Adrift, last));
    }

    #[test]
    fn a_follower_whose_leader_lost_its_quorum_is_adrift_at_once_and_follows_its_next_word() {
        let base = Instant::now();
        let heard = Some(at(base, 100));
        let lost = follower_standing(
            2,
            Some(1),
            heard,
            None,
            LeaderWord::LostQuorum,
            at(base, 110),
            LIMITS,
        );
        assert_eq!(lost, (Standing::Adrift, None));
        let back = follower_standing(
            2,
            Some(1),
            heard,
            None,
            LeaderWord::HasQuorum,
            at(base, 120),
            LIMITS,
        );
        assert_eq!(
            back,
            (Standing::Following { leader: 1 }, Some(LastHeard { leader: 1, at: at(base, 100) }))
        );
    }

    #[test]
    fn a_new_leader_is_followed_at_once() {
        let base = Instant::now();
        let last = Some(LastHeard { leader: 1, at: base });
        let (standing, heard) = follower_standing(
            2,
            Some(3),
            Some(at(base, 700)),
            last,
            LeaderWord::HasQuorum,
            at(base, 710),
            LIMITS,
        );
        assert_eq!(standing, Standing::Following { leader: 3 });
        assert_eq!(heard, Some(LastHeard { leader: 3, at: at(base, 700) }));
    }

    #[test]
    fn a_follower_cut_off_is_adrift_when_its_leaders_word_is_old_not_later() {
        let base = Instant::now();
        let last = Some(LastHeard { leader: 1, at: base });
        // Raft still names the leader it no longer hears: no grace on top.
        let cut = follower_standing(
            2,
            Some(1),
            Some(base),
            last,
            LeaderWord::HasQuorum,
            at(base, 1600),
            LIMITS,
        );
        assert_eq!(cut, (Standing::Adrift, last));
    }

    #[test]
    fn a_master_that_never_heard_a_leader_is_adrift() {
        let base = Instant::now();
        assert_eq!(
            follower_standing(
                2,
                None,
                Some(base),
                None,
                LeaderWord::HasQuorum,
                at(base, 10),
                LIMITS
            ),
            (Standing::Adrift, None)
        );
        // Raft calling this master leader while the position says otherwise is not following.
        assert_eq!(
            follower_standing(
                2,
                Some(2),
                Some(base),
                None,
                LeaderWord::HasQuorum,
                at(base, 10),
                LIMITS
            ),
            (Standing::Adrift, None)
        );
    }
}
