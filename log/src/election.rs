//! Elections with a pre-vote, run by us instead of openraft's timer.
//!
//! openraft 0.9 has no pre-vote: a follower cut off from the leader raises its term on every
//! election timeout, and when the link heals the leader sees the higher term in an append
//! reply and steps down (writes stop for an election). Its own timer also waits
//! `leader_lease + election_timeout` (1.2–1.6 s with our old timing) before a follower stands,
//! and picks each node's random timeout once at start-up, so two followers with close
//! timeouts split the vote again and again.
//!
//! So openraft's timer is off (`Config::enable_elect = false`) and this module runs ours. A
//! follower that has heard nothing from a leader for a random timeout in
//! `[election_timeout_min, election_timeout_max)` (drawn again each time) asks every voter
//! whether it would vote for it ([`PreVoteRequest`]). A voter says yes only if it is not the
//! leader, has not heard from a leader within `election_timeout_min`, and the candidate's
//! last log id is at least its own. Only with a majority does the follower call
//! `raft.trigger().elect()`, which raises the term. A cut-off follower therefore never raises
//! its term, and healing it costs the leader nothing.
//!
//! While the leader hands over to another master (`transfer.rs`), the voters it told to
//! stand aside neither campaign nor back any candidate but that master.
//!
//! openraft's leader lease (a voter that heard from the leader within the lease refuses a
//! vote) is `Config::election_timeout_max`; [`LogTuning`](crate::LogTuning) sets it to our
//! `election_timeout_min`, the same bound the pre-vote uses, so a candidate that won the
//! pre-vote is not refused by the lease a moment later.

use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use openraft::storage::RaftLogStorage;
use openraft::ServerState;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::standing::{LeaderWord, SharedWord};
use crate::store::LogStore;
use crate::typ::{AppendEntriesRequest, AppendEntriesResponse, LogId, Raft, RaftError};
use crate::NodeId;

/// "Would you vote for me?", asked before an election that would raise the term.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreVoteRequest {
    pub candidate: NodeId,
    /// The term the candidate would stand in.
    pub term: u64,
    pub last_log_id: Option<LogId>,
}

/// Why a voter would or would not vote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PreVoteAnswer {
    Granted,
    /// The voter is the leader.
    IAmLeader,
    /// The voter heard from a leader less than `election_timeout_min` ago.
    LeaderAlive,
    /// The candidate's last log id is behind the voter's.
    LogBehind,
    /// The voter is shutting down or not part of the cluster.
    Unavailable,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreVoteResponse {
    pub voter: NodeId,
    pub answer: PreVoteAnswer,
}

/// How a node reaches the other voters' pre-vote endpoint.
pub trait PreVoteNetwork: Clone + Send + Sync + 'static {
    fn pre_vote(
        &self,
        target: NodeId,
        address: &str,
        request: PreVoteRequest,
        timeout: Duration,
    ) -> impl std::future::Future<Output = Result<PreVoteResponse, String>> + Send;
}

/// The timing the election timer runs by.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ElectionTiming {
    pub heartbeat: Duration,
    pub min: Duration,
    pub max: Duration,
}

impl ElectionTiming {
    fn random_timeout(&self) -> Duration {
        random_between(self.min, self.max)
    }
}

/// A uniformly drawn duration in `[low, high)`; `low` when the range is empty.
fn random_between(low: Duration, high: Duration) -> Duration {
    let span = high.saturating_sub(low).as_micros() as u64;
    if span == 0 {
        return low;
    }
    // A fresh SipHash key per call is random enough for timer jitter and needs no crate.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(span);
    low + Duration::from_micros(hasher.finish() % span)
}

/// What one node answers to pre-votes and how it reads its own position. Cheap to clone.
#[derive(Clone)]
pub struct PreVoteResponder {
    node_id: NodeId,
    raft: Raft,
    log_store: LogStore,
    min_timeout: Duration,
    /// While the leader hands over to this master (`transfer.rs`), until this moment: no
    /// campaign of our own, and no pre-vote for anyone else.
    deferral: Arc<Mutex<Option<(NodeId, Instant)>>>,
    /// What the last append this master took from a leader said of that leader.
    heard_word: SharedWord,
}

/// What the timer and the responder need to know about this node, read in one go from the
/// Raft core.
pub(crate) struct Position {
    pub(crate) leader: bool,
    pub(crate) voter: bool,
    /// The vote is another node's: this node follows a leader or backs a candidate.
    pub(crate) backs_another: bool,
    /// The vote is this node's own and not committed: its last election is undecided or lost.
    pub(crate) candidate: bool,
    /// When the vote was last granted or refreshed (a leader's append refreshes it).
    pub(crate) vote_touched: Option<Instant>,
    pub(crate) term: u64,
    pub(crate) voters: Vec<(NodeId, String)>,
}

impl PreVoteResponder {
    pub(crate) fn new(
        node_id: NodeId,
        raft: Raft,
        log_store: LogStore,
        min_timeout: Duration,
    ) -> PreVoteResponder {
        PreVoteResponder {
            node_id,
            raft,
            log_store,
            min_timeout,
            deferral: Arc::new(Mutex::new(None)),
            heard_word: SharedWord::default(),
        }
    }

    /// Takes a leader's append and remembers what the leader said of itself, unless the
    /// append came from a leader this master no longer follows (a higher vote is known).
    pub(crate) async fn receive_append(
        &self,
        request: AppendEntriesRequest,
        word: LeaderWord,
    ) -> Result<AppendEntriesResponse, RaftError> {
        let answer = self.raft.append_entries(request).await;
        if matches!(
            answer,
            Ok(AppendEntriesResponse::Success
                | AppendEntriesResponse::PartialSuccess(_)
                | AppendEntriesResponse::Conflict)
        ) {
            self.heard_word.set(word);
        }
        answer
    }

    /// What the leader this master last took an append from said of itself.
    pub(crate) fn leader_word(&self) -> LeaderWord {
        self.heard_word.get()
    }

    pub(crate) async fn position(&self) -> Option<Position> {
        let node_id = self.node_id;
        self.raft
            .with_raft_state(move |state| {
                let vote = state.vote_ref();
                let membership = state.membership_state.effective();
                let voters = membership
                    .voter_ids()
                    .filter(|voter| *voter != node_id)
                    .map(|voter| {
                        let address = membership.get_node(&voter).map(|node| node.addr.clone());
                        (voter, address.unwrap_or_default())
                    })
                    .collect();
                Position {
                    leader: state.server_state == ServerState::Leader,
                    voter: membership.voter_ids().any(|voter| voter == node_id),
                    backs_another: vote
                        .leader_id()
                        .voted_for()
                        .is_some_and(|voted_for| voted_for != node_id),
                    candidate: !vote.is_committed()
                        && vote.leader_id().voted_for() == Some(node_id),
                    vote_touched: state.vote_last_modified(),
                    term: vote.leader_id().term,
                    voters,
                }
            })
            .await
            .ok()
    }

    async fn last_log_id(&self) -> Option<Option<LogId>> {
        let mut store = self.log_store.clone();
        match store.get_log_state().await {
            Ok(state) => Some(state.last_log_id),
            Err(error) => {
                tracing::warn!(%error, "cannot read the last log id for a pre-vote");
                None
            }
        }
    }

    /// Stands aside for `target` for `span`: the leader is handing over to it.
    pub(crate) fn defer_to(&self, target: NodeId, span: Duration) {
        *self.deferral.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((target, Instant::now() + span));
    }

    /// The master this one stands aside for, and until when, while that lasts.
    fn deferring(&self) -> Option<(NodeId, Instant)> {
        let deferral = *self.deferral.lock().unwrap_or_else(PoisonError::into_inner);
        deferral.filter(|(_, until)| *until > Instant::now())
    }

    pub(crate) fn node_id(&self) -> NodeId {
        self.node_id
    }

    pub(crate) fn raft(&self) -> &Raft {
        &self.raft
    }

    /// Answers a candidate's pre-vote. Changes nothing here: a pre-vote is only a question.
    pub async fn answer(&self, request: &PreVoteRequest) -> PreVoteResponse {
        let answer = self.decide(request).await;
        tracing::debug!(candidate = request.candidate, ?answer, "pre-vote");
        PreVoteResponse { voter: self.node_id, answer }
    }

    async fn decide(&self, request: &PreVoteRequest) -> PreVoteAnswer {
        let Some(position) = self.position().await else { return PreVoteAnswer::Unavailable };
        if position.leader {
            return PreVoteAnswer::IAmLeader;
        }
        // The leader is handing over to another master: it is as good as alive.
        if self.deferring().is_some_and(|(target, _)| target != request.candidate) {
            return PreVoteAnswer::LeaderAlive;
        }
        let heard_recently =
            position.vote_touched.is_some_and(|touched| touched.elapsed() < self.min_timeout);
        // Backing a candidate that may still win counts as hearing from a leader: a second
        // candidate would only split the vote.
        if position.backs_another && heard_recently {
            return PreVoteAnswer::LeaderAlive;
        }
        let Some(own_last) = self.last_log_id().await else { return PreVoteAnswer::Unavailable };
        if request.last_log_id < own_last {
            return PreVoteAnswer::LogBehind;
        }
        PreVoteAnswer::Granted
    }
}

/// Runs the election timer of one node until `closing` is set or Raft stops.
pub(crate) async fn run_timer<N: PreVoteNetwork>(
    responder: PreVoteResponder,
    network: N,
    timing: ElectionTiming,
    mut closing: watch::Receiver<bool>,
) {
    // The timeout stays the same while the vote it measures from does not change, and is
    // drawn again for each new wait, so two nodes that once collided rarely collide again.
    let mut timeout = timing.random_timeout();
    let mut measured_from: Option<Instant> = None;
    // After a pre-vote without a majority, when to ask again.
    let mut retry_at: Option<Instant> = None;
    loop {
        if *closing.borrow() {
            return;
        }
        let Some(position) = responder.position().await else { return };
        let wait_until = if position.leader || !position.voter {
            measured_from = None;
            retry_at = None;
            Some(Instant::now() + timing.heartbeat)
        } else {
            if measured_from != position.vote_touched {
                measured_from = position.vote_touched;
                // A candidate whose election failed (a split vote) has no leader to wait for:
                // it tries again sooner, still at a random moment.
                timeout = if position.candidate {
                    random_between(timing.min / 2, timing.min)
                } else {
                    timing.random_timeout()
                };
                retry_at = None;
            }
            let base = position.vote_touched.unwrap_or_else(Instant::now);
            let due = retry_at.unwrap_or(base + timeout).max(base + timeout);
            (Instant::now() < due).then_some(due)
        };
        if let Some(until) = wait_until {
            tokio::select! {
                () = tokio::time::sleep_until(until) => {}
                _ = closing.changed() => {}
            }
            continue;
        }
        if let Some((_, until)) = responder.deferring() {
            tokio::select! {
                () = tokio::time::sleep_until(until) => {}
                _ = closing.changed() => {}
            }
            continue;
        }
        if campaign(&responder, &network, &position, timing).await {
            // A vote granted or a leader heard while the pre-vote ran makes this election
            // one too many.
            let Some(now) = responder.position().await else { return };
            if now.vote_touched != position.vote_touched || now.leader {
                continue;
            }
            if let Err(error) = responder.raft.trigger().elect().await {
                tracing::info!(%error, "election timer stops: raft is stopped");
                return;
            }
            retry_at = None;
        } else {
            retry_at = Some(Instant::now() + random_between(timing.heartbeat, timing.min));
        }
    }
}

/// Asks every other voter for a pre-vote; true once a majority (this node included) agrees.
async fn campaign<N: PreVoteNetwork>(
    responder: &PreVoteResponder,
    network: &N,
    position: &Position,
    timing: ElectionTiming,
) -> bool {
    let total = position.voters.len() + 1;
    let needed = total / 2 + 1;
    let mut granted = 1;
    if granted >= needed {
        return true;
    }
    let Some(last_log_id) = responder.last_log_id().await else { return false };
    let request =
        PreVoteRequest { candidate: responder.node_id, term: position.term + 1, last_log_id };
    // A paused voter accepts the connection and never answers: do not wait on it longer than
    // half the shortest election timeout.
    let rpc_timeout = timing.min / 2;
    let mut asks: futures::stream::FuturesUnordered<_> = position
        .voters
        .iter()
        .map(|(target, address)| {
            let request = request.clone();
            async move { network.pre_vote(*target, address, request, rpc_timeout).await }
        })
        .collect();
    let mut answers = Vec::new();
    use futures::StreamExt;
    while let Some(reply) = asks.next().await {
        match reply {
            Ok(response) if response.answer == PreVoteAnswer::Granted => {
                granted += 1;
                answers.push((response.voter, response.answer));
                if granted >= needed {
                    tracing::info!(term = request.term, ?answers, "pre-vote won; standing");
                    return true;
                }
            }
            Ok(response) => answers.push((response.voter, response.answer)),
            Err(error) => tracing::debug!(%error, "pre-vote not answered"),
        }
    }
    tracing::debug!(term = request.term, ?answers, "pre-vote lost; not raising the term");
    false
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::random_between;

    #[test]
    fn random_durations_stay_in_their_range_and_vary() {
        let (low, high) = (Duration::from_millis(300), Duration::from_millis(500));
        let drawn: Vec<Duration> = (0..200).map(|_| random_between(low, high)).collect();
        assert!(drawn.iter().all(|duration| *duration >= low && *duration < high));
        let distinct: std::collections::BTreeSet<_> = drawn.iter().collect();
        assert!(distinct.len() > 100, "only {} distinct draws", distinct.len());
        assert_eq!(random_between(high, low), high);
    }
}
