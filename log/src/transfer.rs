//! Moving leadership to a chosen master, and what a leader knows of its links to the others.
//!
//! openraft 0.9 has no leadership transfer, and a plain election cannot do it: every voter
//! that heard from the leader within the lease (`election_timeout_min`, see `election.rs`)
//! refuses to vote. So the leader makes room for its successor:
//!
//! 0. it waits until the target's log is at least every other voter's (within 10 s);
//! 1. it keeps replicating to the target only ([`Links`] holds the others back: their
//!    appends fail at once, without the back-off openraft applies to unreachable nodes), so
//!    writes go on wherever the leader and the target are a majority;
//! 2. it tells the voters held back to stand aside for the target ([`DeferRequest`]) for
//!    three leases: meanwhile they do not campaign and refuse any other candidate's pre-vote;
//! 3. once the target's log is again at least every other voter's (appends in flight when
//!    the hold began have landed), it waits out the lease on the voters held back (they have
//!    heard nothing since);
//! 4. it asks the target to stand now ([`CampaignRequest`]); the target calls
//!    `raft.trigger().elect()`, the one election that skips the pre-vote: the voters held
//!    back grant it (lease over, the target's log at least theirs), and the old leader steps
//!    down on the target's first append;
//! 5. it stops holding anyone back as soon as leadership moved, or after a deadline.
//!
//! Step 2 is best effort: a voter that did not hear of it (a lost message) may win a pre-vote
//! of its own after the lease; then leadership moves there and the caller is told so
//! ([`TransferOutcome::MovedElsewhere`]). If the leader dies during a transfer, the voters
//! standing aside wait out those three leases before they elect another.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::future::BoxFuture;
use openraft::error::{NetworkError, RPCError};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::ServerState;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::election::{PreVoteNetwork, PreVoteRequest, PreVoteResponder, PreVoteResponse};
use crate::membership::{ChangeError, Refusal};
use crate::typ::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotError, InstallSnapshotRequest,
    InstallSnapshotResponse, Node, Raft, RaftError, VoteRequest, VoteResponse,
};
use crate::{LogError, LogNode, NodeId, TypeConfig};

/// "Stand for election now": sent by the leader to the master it hands leadership to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignRequest {
    pub leader: NodeId,
    /// The leader's term; a target in another term ignores the request.
    pub term: u64,
}

/// "Stand aside for `target` for `millis`": sent by the leader to the other voters when it
/// starts handing over, so none of them campaigns (or backs another's pre-vote) meanwhile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeferRequest {
    pub leader: NodeId,
    pub term: u64,
    pub target: NodeId,
    pub millis: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CampaignAnswer {
    Standing,
    /// The target is not a voter.
    NotVoter,
    /// The target's term or leader differs from the request's: it is stale.
    Stale,
    /// The target is shutting down.
    Unavailable,
}

/// How the leader reaches a master to ask it to stand.
pub trait TransferNetwork: Clone + Send + Sync + 'static {
    fn campaign(
        &self,
        target: NodeId,
        address: &str,
        request: CampaignRequest,
        timeout: Duration,
    ) -> impl std::future::Future<Output = Result<CampaignAnswer, String>> + Send;

    fn defer(
        &self,
        target: NodeId,
        address: &str,
        request: DeferRequest,
        timeout: Duration,
    ) -> impl std::future::Future<Output = Result<bool, String>> + Send;
}

/// What a master answers a [`DeferRequest`]: true if it follows that leader in that term
/// and now stands aside.
pub async fn answer_defer(responder: &PreVoteResponder, request: DeferRequest) -> bool {
    let follows = {
        let metrics = responder.raft().metrics();
        let metrics = metrics.borrow();
        metrics.current_leader == Some(request.leader) && metrics.current_term == request.term
    };
    if follows {
        responder.defer_to(request.target, Duration::from_millis(request.millis));
    }
    follows
}

/// What a master answers a [`CampaignRequest`] (also served over HTTP).
pub async fn answer_campaign(raft: &Raft, request: CampaignRequest) -> CampaignAnswer {
    let own = raft.metrics().borrow().id;
    let position = raft
        .with_raft_state(move |state| {
            let voter = state.membership_state.effective().voter_ids().any(|id| id == own);
            let vote = state.vote_ref();
            let follows_requester = vote.is_committed()
                && vote.leader_id().voted_for() == Some(request.leader)
                && vote.leader_id().term == request.term;
            (voter, follows_requester, state.server_state)
        })
        .await;
    let Ok((voter, follows_requester, server_state)) = position else {
        return CampaignAnswer::Unavailable;
    };
    if !voter {
        return CampaignAnswer::NotVoter;
    }
    if !follows_requester || server_state == ServerState::Leader {
        return CampaignAnswer::Stale;
    }
    tracing::info!(
        leader = request.leader,
        term = request.term,
        "standing for election: the leader hands over"
    );
    match raft.trigger().elect().await {
        Ok(()) => CampaignAnswer::Standing,
        Err(_) => CampaignAnswer::Unavailable,
    }
}

type Campaigner = Arc<
    dyn Fn(NodeId, String, CampaignRequest) -> BoxFuture<'static, Result<CampaignAnswer, String>>
        + Send
        + Sync,
>;

type Deferrer = Arc<
    dyn Fn(NodeId, String, DeferRequest) -> BoxFuture<'static, Result<bool, String>> + Send + Sync,
>;

struct LinkState {
    /// When each master last answered a Raft RPC of this one.
    answered: BTreeMap<NodeId, Instant>,
    /// While a transfer runs: the only master still sent appends and snapshots.
    replicate_only_to: Option<NodeId>,
}

/// What this master knows of its links to the others, and the hold a transfer puts on them.
/// Cheap to clone.
#[derive(Clone)]
pub(crate) struct Links {
    state: Arc<Mutex<LinkState>>,
    /// A master that answered within this is taken to be up.
    pub(crate) liveness: Duration,
    /// Voters that heard from the leader within this refuse to vote (openraft's lease).
    lease: Duration,
    heartbeat: Duration,
    campaigner: Arc<Mutex<Option<(Campaigner, Deferrer)>>>,
}

impl Links {
    pub(crate) fn new(lease: Duration, heartbeat: Duration, liveness: Duration) -> Links {
        Links {
            state: Arc::new(Mutex::new(LinkState {
                answered: BTreeMap::new(),
                replicate_only_to: None,
            })),
            liveness,
            lease,
            heartbeat,
            campaigner: Arc::new(Mutex::new(None)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LinkState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn answered(&self, node_id: NodeId) {
        self.lock().answered.insert(node_id, Instant::now());
    }

    /// How long ago `node_id` last answered, if it ever did.
    pub(crate) fn silent_for(&self, node_id: NodeId) -> Option<Duration> {
        self.lock().answered.get(&node_id).map(Instant::elapsed)
    }

    pub(crate) fn is_up(&self, node_id: NodeId) -> bool {
        self.silent_for(node_id).is_some_and(|silent| silent < self.liveness)
    }

    fn held_back(&self, node_id: NodeId) -> bool {
        self.lock().replicate_only_to.is_some_and(|target| target != node_id)
    }

    /// Holds every master but `target` back until the returned guard is dropped.
    fn replicate_only_to(&self, target: NodeId) -> HoldGuard {
        self.lock().replicate_only_to = Some(target);
        HoldGuard { links: self.clone() }
    }

    pub(crate) fn set_campaigner<N: TransferNetwork>(&self, network: N) {
        let campaigning = network.clone();
        let campaigner: Campaigner = Arc::new(move |target, address, request| {
            let network = campaigning.clone();
            Box::pin(async move {
                network.campaign(target, &address, request, Duration::from_secs(2)).await
            })
        });
        let heartbeat = self.heartbeat;
        let deferrer: Deferrer = Arc::new(move |target, address, request| {
            let network = network.clone();
            Box::pin(async move { network.defer(target, &address, request, heartbeat * 2).await })
        });
        *self.campaigner.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((campaigner, deferrer));
    }

    fn campaigner(&self) -> Option<(Campaigner, Deferrer)> {
        self.campaigner.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

struct HoldGuard {
    links: Links,
}

impl Drop for HoldGuard {
    fn drop(&mut self) {
        self.links.lock().replicate_only_to = None;
    }
}

#[derive(Debug, thiserror::Error)]
#[error("held back: leadership is moving to another master")]
struct HeldBack;

/// Wraps a transport: records which masters answer, and holds masters back during a transfer.
#[derive(Clone)]
pub struct GatedNetwork<N> {
    inner: N,
    links: Links,
}

impl<N> GatedNetwork<N> {
    pub(crate) fn new(inner: N, links: Links) -> GatedNetwork<N> {
        GatedNetwork { inner, links }
    }
}

impl<N: RaftNetworkFactory<TypeConfig>> RaftNetworkFactory<TypeConfig> for GatedNetwork<N> {
    type Network = GatedConnection<N::Network>;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> GatedConnection<N::Network> {
        GatedConnection {
            inner: self.inner.new_client(target, node).await,
            target,
            links: self.links.clone(),
        }
    }
}

impl<N: PreVoteNetwork> PreVoteNetwork for GatedNetwork<N> {
    async fn pre_vote(
        &self,
        target: NodeId,
        address: &str,
        request: PreVoteRequest,
        timeout: Duration,
    ) -> Result<PreVoteResponse, String> {
        let reply = self.inner.pre_vote(target, address, request, timeout).await;
        // A new leader won its pre-vote moments ago: what answered it is up.
        if reply.is_ok() {
            self.links.answered(target);
        }
        reply
    }
}

pub struct GatedConnection<C> {
    inner: C,
    target: NodeId,
    links: Links,
}

impl<C> GatedConnection<C> {
    /// While a transfer holds this master back, the error its RPCs fail with.
    fn held<E: std::error::Error>(&self) -> Option<RPCError<NodeId, Node, E>> {
        // A network error, not "unreachable": openraft backs off 500 ms after that.
        self.links.held_back(self.target).then(|| RPCError::Network(NetworkError::new(&HeldBack)))
    }

    fn note<T, E>(&self, reply: &Result<T, RPCError<NodeId, Node, E>>)
    where
        E: std::error::Error,
    {
        if matches!(reply, Ok(_) | Err(RPCError::RemoteError(_))) {
            self.links.answered(self.target);
        }
    }
}

impl<C: RaftNetwork<TypeConfig>> RaftNetwork<TypeConfig> for GatedConnection<C> {
    async fn append_entries(
        &mut self,
        request: AppendEntriesRequest,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse, RPCError<NodeId, Node, RaftError>> {
        if let Some(held) = self.held() {
            return Err(held);
        }
        let reply = self.inner.append_entries(request, option).await;
        self.note(&reply);
        reply
    }

    async fn install_snapshot(
        &mut self,
        request: InstallSnapshotRequest,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse, RPCError<NodeId, Node, RaftError<InstallSnapshotError>>>
    {
        if let Some(held) = self.held() {
            return Err(held);
        }
        let reply = self.inner.install_snapshot(request, option).await;
        self.note(&reply);
        reply
    }

    async fn vote(
        &mut self,
        request: VoteRequest,
        option: RPCOption,
    ) -> Result<VoteResponse, RPCError<NodeId, Node, RaftError>> {
        let reply = self.inner.vote(request, option).await;
        self.note(&reply);
        reply
    }
}

/// How a transfer ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferOutcome {
    /// The target leads now, in `term`.
    Transferred { from: NodeId, to: NodeId, term: u64 },
    /// The target already led.
    AlreadyLeader { node_id: NodeId, term: u64 },
    /// Another master won the election the transfer opened (five masters or more, rarely).
    MovedElsewhere { to: NodeId, term: u64 },
}

/// How long the target may take to catch up, and the election to be decided.
const CATCH_UP_DEADLINE: Duration = Duration::from_secs(10);
const ELECTION_DEADLINE: Duration = Duration::from_secs(5);

impl LogNode {
    /// Hands leadership to voter `to` (see the module docs). Only the leader does this; it
    /// refuses an unknown master, a learner and a master it has not heard from lately.
    pub async fn transfer_leadership(&self, to: NodeId) -> Result<TransferOutcome, ChangeError> {
        let metrics = self.raft().metrics().borrow().clone();
        let own = self.node_id();
        if metrics.state != ServerState::Leader {
            return Err(ChangeError::Log(self.not_leader()));
        }
        let membership = metrics.membership_config.membership().clone();
        let Some(target) = membership.get_node(&to).cloned() else {
            return Err(Refusal::UnknownMember(to).into());
        };
        if !membership.voter_ids().any(|voter| voter == to) {
            return Err(Refusal::NotVoter(to).into());
        }
        if to == own {
            return Ok(TransferOutcome::AlreadyLeader { node_id: own, term: metrics.current_term });
        }
        let links = self.links();
        if !links.is_up(to) {
            return Err(Refusal::Unreachable(to).into());
        }
        let (campaigner, deferrer) =
            links.campaigner().expect("open_with_network sets the campaigner before any request");
        let term = metrics.current_term;
        let others: Vec<NodeId> =
            membership.voter_ids().filter(|voter| *voter != own && *voter != to).collect();
        // Caught up first, while everyone is still replicated to: a target far behind would
        // otherwise hold the others back for as long as it takes.
        if !self.level_with_others(to, &others, CATCH_UP_DEADLINE).await {
            return Err(ChangeError::Unfinished(format!(
                "master {to} did not catch up with the other voters within {CATCH_UP_DEADLINE:?}; leadership stays with master {own}"
            )));
        }
        let hold = links.replicate_only_to(to);
        // The others stand aside for the hand-over (best effort: one that does not hear of it
        // may only win the election first, see the module docs). Three leases cover the
        // settling below, the lease and the election.
        let span = links.lease * 3 + links.heartbeat;
        let notices = others.iter().filter_map(|other| {
            let address = membership.get_node(other)?.addr.clone();
            let request = DeferRequest {
                leader: own,
                term,
                target: to,
                millis: u64::try_from(span.as_millis()).unwrap_or(u64::MAX),
            };
            Some(deferrer(*other, address, request))
        });
        let answers = futures::future::join_all(notices).await;
        let deferring = answers.iter().filter(|answer| matches!(answer, Ok(true))).count();
        tracing::info!(to, deferring, of = others.len(), "handing leadership over");
        // Appends already on their way to the others may land after the hold: the target
        // must have at least what they got.
        if !self.level_with_others(to, &others, links.lease).await {
            return Err(ChangeError::Unfinished(format!(
                "master {to} fell behind the other voters during the hand-over; leadership stays with master {own}"
            )));
        }
        // A protocol timer, not synchronisation: the voters held back must stop honouring
        // this leader's lease before they can vote for the target.
        tokio::time::sleep(links.lease + links.heartbeat).await;
        if !self.is_leader() {
            drop(hold);
            return self.settled_elsewhere(to).await;
        }
        let answer = campaigner(to, target.addr.clone(), CampaignRequest { leader: own, term })
            .await
            .map_err(|error| {
                ChangeError::Unfinished(format!("master {to} could not be asked to stand: {error}"))
            })?;
        if answer != CampaignAnswer::Standing {
            return Err(ChangeError::Unfinished(format!(
                "master {to} did not stand for election: {answer:?}"
            )));
        }
        let outcome = self.settled_elsewhere(to).await;
        drop(hold);
        outcome
    }

    /// Waits until this leader's log reaches at least as far on `to` as on every one of
    /// `others` (false past `deadline`, or if this master stops leading).
    async fn level_with_others(&self, to: NodeId, others: &[NodeId], deadline: Duration) -> bool {
        let mut watch = self.raft().metrics();
        let level = tokio::time::timeout(deadline, async {
            loop {
                let (leading, ready) = {
                    let metrics = watch.borrow_and_update();
                    let matched = |node_id: NodeId| {
                        metrics
                            .replication
                            .as_ref()
                            .and_then(|replication| replication.get(&node_id).copied())
                            .flatten()
                    };
                    (
                        metrics.state == ServerState::Leader,
                        others.iter().all(|other| matched(to) >= matched(*other)),
                    )
                };
                if !leading {
                    return false;
                }
                if ready {
                    return true;
                }
                if watch.changed().await.is_err() {
                    return false;
                }
            }
        })
        .await;
        level == Ok(true)
    }

    /// Waits for a leader other than this master and reports who it is.
    async fn settled_elsewhere(&self, to: NodeId) -> Result<TransferOutcome, ChangeError> {
        let own = self.node_id();
        let mut watch = self.raft().metrics();
        let settled = tokio::time::timeout(ELECTION_DEADLINE, async {
            loop {
                let leader = {
                    let metrics = watch.borrow_and_update();
                    metrics
                        .current_leader
                        .filter(|leader| *leader != own)
                        .map(|leader| (leader, metrics.current_term))
                };
                if let Some(found) = leader {
                    return Some(found);
                }
                if watch.changed().await.is_err() {
                    return None;
                }
            }
        })
        .await;
        match settled {
            Ok(Some((leader, term))) if leader == to => {
                Ok(TransferOutcome::Transferred { from: own, to, term })
            }
            Ok(Some((leader, term))) => Ok(TransferOutcome::MovedElsewhere { to: leader, term }),
            Ok(None) => Err(ChangeError::Log(LogError::ShuttingDown)),
            Err(_) => Err(ChangeError::Unfinished(format!(
                "no new leader within {ELECTION_DEADLINE:?} of asking master {to} to stand"
            ))),
        }
    }

    pub(crate) fn not_leader(&self) -> LogError {
        let status = self.status();
        let leader_hint = status.leader.zip(status.leader_address);
        LogError::NotLeader { leader_hint }
    }
}
