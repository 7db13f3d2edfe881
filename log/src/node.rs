//! [`LogNode`]: one master's handle on the replicated log.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use corral_state::model::Settings;
use corral_state::{Actor, ClusterState, Command, Cursor, Digest, RequestId};
use openraft::error::{CheckIsLeaderError, ClientWriteError, InitializeError, RaftError};
use openraft::{BasicNode, ChangeMembers, Config, RaftNetworkFactory, ServerState, SnapshotPolicy};
use tokio::sync::watch;

use crate::election::{self, ElectionTiming, PreVoteNetwork, PreVoteResponder};
use crate::journal::audit::{AuditError, DiffRecord};
use crate::journal::{ChainHead, Journal, JournalError, JournalRetention};
use crate::network::append::AppendNetwork;
use crate::network::{raft_router, HttpNetwork, WordedAppend};
use crate::proposer::Proposer;
pub use crate::proposer::{Committed, ProposerCounters};
use crate::standing::{SharedWord, Standing, StandingLimits};
use crate::store::{self, StateMachineStore};
use crate::subscribe::{self, EventFilter, Subscription, SubscriptionEnded, SubscriptionLimits};
use crate::transfer::{GatedNetwork, Links, TransferNetwork};
use crate::typ::{Raft, RaftMetrics};
use crate::{LogError, NodeId, ProposerConfig, TypeConfig};

/// How long a proposal refused with "not leader" waits to learn whether it was committed
/// anyway; past it the outcome is unknown.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(3);

/// Raft timing and snapshot settings.
#[derive(Clone, Debug)]
pub struct LogTuning {
    /// openraft sends heartbeats on a tick of 1.5 × this, so a follower hears from an idle
    /// leader every 1.5 × `heartbeat_interval`.
    pub heartbeat_interval: Duration,
    /// A follower that has heard nothing from a leader for a random time between these two
    /// asks for a pre-vote (see `election.rs`); voters that heard from a leader within the
    /// minimum refuse it.
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    /// Build a snapshot after this many entries since the last one. An entry is a batch of
    /// commands (hundreds under load), and a restart applies the entries after the last
    /// snapshot again, so this bounds restart time.
    pub snapshot_every_entries: u64,
    /// Raft log entries kept behind a snapshot, so a briefly lagging follower catches up
    /// from the log instead of a snapshot.
    pub entries_kept_after_snapshot: u64,
    pub snapshot_chunk_bytes: u64,
    /// Per chunk of a snapshot install; openraft's 200 ms default is too little for a large
    /// state.
    pub install_snapshot_timeout: Duration,
    /// Raft entries (each a batch of commands) per append RPC.
    pub max_payload_entries: u64,
    pub purge_batch_size: u64,
}

impl Default for LogTuning {
    fn default() -> LogTuning {
        LogTuning {
            heartbeat_interval: Duration::from_millis(50),
            election_timeout_min: Duration::from_millis(300),
            election_timeout_max: Duration::from_millis(500),
            snapshot_every_entries: 5_000,
            entries_kept_after_snapshot: 1_000,
            snapshot_chunk_bytes: 4 * 1024 * 1024,
            install_snapshot_timeout: Duration::from_secs(10),
            max_payload_entries: 64,
            purge_batch_size: 1_024,
        }
    }
}

impl LogTuning {
    /// The default timing with elections after `minimum` to 5/3 of it without a leader, as
    /// the default 300–500 ms; refused when a heartbeat could not arrive in time.
    pub fn with_election_timeout(minimum: Duration) -> Result<LogTuning, LogError> {
        let tuning = LogTuning {
            election_timeout_min: minimum,
            election_timeout_max: minimum.mul_f64(5.0 / 3.0),
            ..LogTuning::default()
        };
        tuning.raft_config()?;
        Ok(tuning)
    }

    fn raft_config(&self) -> Result<Config, LogError> {
        let millis = |duration: Duration| u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        if self.election_timeout_min >= self.election_timeout_max {
            return Err(LogError::Config(format!(
                "election_timeout_min {:?} must be below election_timeout_max {:?}",
                self.election_timeout_min, self.election_timeout_max
            )));
        }
        let (heartbeat, lease) =
            (millis(self.heartbeat_interval), millis(self.election_timeout_min));
        if lease <= heartbeat.saturating_mul(3) / 2 + 1 {
            return Err(LogError::Config(format!(
                "election_timeout_min {:?} must exceed 1.5 × heartbeat_interval {:?} (the heartbeat tick)",
                self.election_timeout_min, self.heartbeat_interval
            )));
        }
        let config = Config {
            cluster_name: "corral".to_owned(),
            heartbeat_interval: heartbeat,
            // Our timer (election.rs) stands for election; openraft's would stand without a
            // pre-vote and only after `leader_lease + election_timeout`.
            enable_elect: false,
            // openraft's leader lease is its `election_timeout_max`: a voter that heard from
            // the leader within it refuses to vote. It equals our minimum, the bound the
            // pre-vote uses, so a candidate that won the pre-vote is not refused by the lease.
            // openraft's own election timeout (unused) only has to lie between.
            election_timeout_min: (heartbeat + lease) / 2,
            election_timeout_max: lease,
            install_snapshot_timeout: millis(self.install_snapshot_timeout),
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_every_entries),
            max_in_snapshot_log_to_keep: self.entries_kept_after_snapshot,
            snapshot_max_chunk_size: self.snapshot_chunk_bytes,
            max_payload_entries: self.max_payload_entries,
            purge_batch_size: self.purge_batch_size,
            ..Config::default()
        };
        config.validate().map_err(|error| LogError::Config(error.to_string()))
    }
}

/// Everything needed to open a master's log.
#[derive(Clone, Debug)]
pub struct LogConfig {
    pub node_id: NodeId,
    /// `host:port` other masters reach this one at (the master's `--listen`).
    pub address: String,
    pub data_dir: PathBuf,
    /// The initial members (`--peers`), this master included. A master not listed starts
    /// empty and waits to be added to a running cluster.
    pub peers: BTreeMap<NodeId, String>,
    /// Settings of a fresh cluster state (ignored once the log has a snapshot).
    pub settings: Settings,
    pub retention: JournalRetention,
    pub tuning: LogTuning,
    pub proposer: ProposerConfig,
    pub subscription: SubscriptionLimits,
    /// Mutual TLS between masters: Raft RPCs go over HTTPS, presenting this master's
    /// certificate, to servers whose certificates name `master.<cluster>`.
    pub tls: Option<corral_tls::Tls>,
    /// `--cluster-secret-file`: every Raft request this master sends carries a MAC made
    /// with it (`network::secret`); the master's router refuses requests without one.
    pub cluster_secret: Option<crate::network::ClusterSecret>,
}

impl LogConfig {
    pub fn new(
        node_id: NodeId,
        address: impl Into<String>,
        data_dir: impl Into<PathBuf>,
    ) -> LogConfig {
        LogConfig {
            node_id,
            address: address.into(),
            data_dir: data_dir.into(),
            peers: BTreeMap::new(),
            settings: Settings::default(),
            retention: JournalRetention::default(),
            tuning: LogTuning::default(),
            proposer: ProposerConfig::default(),
            subscription: SubscriptionLimits::default(),
            tls: None,
            cluster_secret: None,
        }
    }

    /// Parses `--peers 1=127.0.0.1:5050,2=127.0.0.1:5052`.
    pub fn parse_peers(text: &str) -> Result<BTreeMap<NodeId, String>, LogError> {
        let mut peers = BTreeMap::new();
        for peer in text.split(',').map(str::trim).filter(|peer| !peer.is_empty()) {
            let Some((node_id, address)) = peer.split_once('=') else {
                return Err(LogError::Config(format!("peer '{peer}' is not 'id=host:port'")));
            };
            let node_id = node_id
                .trim()
                .parse()
                .map_err(|_| LogError::Config(format!("peer id '{node_id}' is not a number")))?;
            peers.insert(node_id, address.trim().to_owned());
        }
        Ok(peers)
    }
}

/// Where a read is served from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadConsistency {
    /// Confirmed with a quorum that this master is the leader, and applied up to the
    /// commit index at that moment (`ensure_linearizable`). Leader only.
    Linearizable,
    /// Whatever this master has applied; may be stale, works on any master.
    Local,
}

/// One member as this master sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberStatus {
    pub node_id: NodeId,
    pub address: String,
    pub voter: bool,
    /// Last log index known replicated to it (leader only).
    pub matched_index: Option<u64>,
    /// Entries it is behind the leader's log (leader only).
    pub lag: Option<u64>,
}

/// The cluster as this master sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterStatus {
    pub node_id: NodeId,
    pub role: &'static str,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub leader_address: Option<String>,
    pub last_log_index: Option<u64>,
    pub committed_index: Option<u64>,
    pub applied_index: Option<u64>,
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
    pub members: Vec<MemberStatus>,
}

/// One node as other nodes reach it: its Raft RPCs and its pre-vote answers.
#[derive(Clone)]
pub struct Endpoint {
    pub(crate) raft: Raft,
    pub(crate) pre_vote: PreVoteResponder,
}

impl Endpoint {
    /// What this node answers a candidate's pre-vote (also served over HTTP).
    pub async fn answer_pre_vote(
        &self,
        request: &election::PreVoteRequest,
    ) -> election::PreVoteResponse {
        self.pre_vote.answer(request).await
    }
}

struct NodeInner {
    node_id: NodeId,
    raft: Raft,
    state_machine: StateMachineStore,
    committed: crate::store::CommittedIndex,
    observer: crate::observe::ObserverSlot,
    proposer: Proposer,
    pre_vote: PreVoteResponder,
    subscription_limits: SubscriptionLimits,
    closing: watch::Sender<bool>,
    links: Links,
    standing: watch::Receiver<Standing>,
    standing_limits: StandingLimits,
}

/// One master's handle on the replicated log. Cheap to clone.
#[derive(Clone)]
pub struct LogNode {
    inner: Arc<NodeInner>,
}

impl LogNode {
    /// Opens the log in `config.data_dir`, talking to the other masters over HTTP. Mount
    /// [`LogNode::raft_router`] on the master's listener.
    pub async fn open(config: LogConfig) -> Result<LogNode, LogError> {
        let network =
            HttpNetwork::new(config.node_id, config.tls.as_ref(), config.cluster_secret.clone())?;
        LogNode::open_with_network(config, network).await
    }

    /// Opens the log with the given transport between masters (tests use
    /// [`LocalNetwork`](crate::network::LocalNetwork)).
    pub async fn open_with_network<N>(config: LogConfig, network: N) -> Result<LogNode, LogError>
    where
        N: RaftNetworkFactory<TypeConfig> + PreVoteNetwork + TransferNetwork,
        N::Network: WordedAppend + Clone,
    {
        let raft_config = Arc::new(config.tuning.raft_config()?);
        let tuning = &config.tuning;
        let links = Links::new(
            tuning.election_timeout_min,
            tuning.heartbeat_interval,
            tuning.election_timeout_max * 2,
        );
        links.set_campaigner(network.clone());
        let own_word = SharedWord::default();
        let appends = AppendNetwork::new(network.clone(), config.node_id, own_word.clone());
        let raft_network = GatedNetwork::new(appends, links.clone());
        let network = GatedNetwork::new(network, links.clone());
        let directory = config.data_dir.clone();
        let settings = config.settings.clone();
        let retention = config.retention;
        let (log_store, state_machine) = tokio::task::spawn_blocking(move || {
            store::open(&directory, store::InitialSettings::Given(settings), retention)
        })
        .await
        .map_err(|error| LogError::Raft(error.to_string()))??;
        let committed = log_store.committed_index();
        let observer = log_store.observer_slot();
        let raft = Raft::new(
            config.node_id,
            raft_config,
            raft_network,
            log_store.clone(),
            state_machine.clone(),
        )
        .await
        .map_err(|error| LogError::Raft(error.to_string()))?;
        let pre_vote = PreVoteResponder::new(
            config.node_id,
            raft.clone(),
            log_store,
            config.tuning.election_timeout_min,
        );
        let closing = watch::Sender::new(false);
        let timing = ElectionTiming {
            heartbeat: config.tuning.heartbeat_interval,
            min: config.tuning.election_timeout_min,
            max: config.tuning.election_timeout_max,
        };
        tokio::spawn(election::run_timer(pre_vote.clone(), network, timing, closing.subscribe()));
        let limits = StandingLimits {
            leader_quorum: tuning.election_timeout_max,
            follower_leader: tuning.election_timeout_max * 2,
            every: tuning.heartbeat_interval,
        };
        let (standing_sender, standing) = watch::channel(Standing::Adrift);
        tokio::spawn(crate::standing::watch_standing(
            pre_vote.clone(),
            links.clone(),
            limits,
            standing_sender,
            own_word,
            closing.subscribe(),
        ));
        let proposer = Proposer::spawn(raft.clone(), config.proposer, observer.clone());
        let node = LogNode {
            inner: Arc::new(NodeInner {
                node_id: config.node_id,
                raft,
                state_machine,
                committed,
                observer,
                proposer,
                pre_vote,
                subscription_limits: config.subscription,
                closing,
                links,
                standing,
                standing_limits: limits,
            }),
        };
        if config.peers.contains_key(&config.node_id) {
            node.initialize(&config.peers).await?;
        }
        Ok(node)
    }

    /// Writes the initial membership if this master has never been part of a cluster. Every
    /// initial member does this with the same peers, so whichever starts first, they agree.
    async fn initialize(&self, peers: &BTreeMap<NodeId, String>) -> Result<(), LogError> {
        let members: BTreeMap<NodeId, BasicNode> =
            peers.iter().map(|(node_id, address)| (*node_id, BasicNode::new(address))).collect();
        match self.inner.raft.initialize(members).await {
            Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
            Err(error) => Err(LogError::Raft(error.to_string())),
        }
    }

    pub fn node_id(&self) -> NodeId {
        self.inner.node_id
    }

    pub(crate) fn links(&self) -> &Links {
        &self.inner.links
    }

    pub(crate) fn state_machine(&self) -> &StateMachineStore {
        &self.inner.state_machine
    }

    /// The Raft RPC routes (under `/corral/raft`), to merge into the master's router.
    pub fn raft_router(&self) -> axum::Router {
        raft_router(self.inner.raft.clone(), self.inner.pre_vote.clone())
    }

    /// What an in-process transport delivers to: Raft RPCs and pre-votes.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint { raft: self.inner.raft.clone(), pre_vote: self.inner.pre_vote.clone() }
    }

    /// The openraft handle, for what this type does not cover.
    pub fn raft(&self) -> &Raft {
        &self.inner.raft
    }

    /// Appends a command, waits until it is committed on a quorum (each member's copy
    /// fsynced) and applied here, and returns its outcome. Only the leader accepts; others
    /// answer [`LogError::NotLeader`] with a hint. A command retried with the same request id
    /// after any error is applied at most once.
    pub async fn propose(
        &self,
        request_id: RequestId,
        actor: Actor,
        command: Command,
    ) -> Result<Committed, LogError> {
        match self.inner.proposer.propose(request_id.clone(), actor, command).await {
            Err(LogError::NotLeader { leader_hint }) => self.settle(&request_id, leader_hint).await,
            other => other,
        }
    }

    /// A proposal refused with "not leader" may have reached the log before this master
    /// lost the lead, and be committed by its successor: answering "ask the leader" then
    /// would have a client apply it twice. It is decided once this master has applied an
    /// entry of the newest term it knows: the successor commits what it kept before that
    /// entry, and drops the rest for good. Either the request id is in the state then (its
    /// first outcome is the answer, as a retry would get it) or it never will be.
    async fn settle(
        &self,
        request_id: &RequestId,
        leader_hint: Option<(NodeId, String)>,
    ) -> Result<Committed, LogError> {
        let mut metrics = self.inner.raft.metrics();
        let settled = tokio::time::timeout(SETTLE_TIMEOUT, async {
            loop {
                let applied_in_term = {
                    let metrics = metrics.borrow_and_update();
                    metrics
                        .last_applied
                        .is_some_and(|log_id| log_id.leader_id.term >= metrics.current_term)
                };
                if applied_in_term {
                    return true;
                }
                if metrics.changed().await.is_err() {
                    return false;
                }
            }
        })
        .await;
        if settled != Ok(true) {
            return Err(LogError::OutcomeUnknown);
        }
        let applied = self.inner.state_machine.read();
        match applied.state.outcome_of(request_id) {
            Some(first) => {
                let index = applied.last_applied.map_or(0, |log_id| log_id.index);
                Ok(Committed {
                    index,
                    first_event: Cursor::new(index, u32::MAX),
                    outcome: corral_state::Outcome::Duplicate(Box::new(first.clone())),
                })
            }
            None => Err(LogError::NotLeader { leader_hint }),
        }
    }

    /// Runs `read` against the applied state with the given consistency.
    pub async fn read<T>(
        &self,
        consistency: ReadConsistency,
        read: impl FnOnce(&ClusterState) -> T,
    ) -> Result<T, LogError> {
        if consistency == ReadConsistency::Linearizable {
            self.ensure_linearizable().await?;
        }
        Ok(read(&self.inner.state_machine.read().state))
    }

    /// Runs `read` against the applied state and returns its value with the cursor that
    /// state stands at: every event up to the cursor is in the state, none after it. Whatever
    /// starts from "the state, then the events after it" subscribes from this cursor, so it
    /// sees each event exactly once (reading the applied index and the state apart lets the
    /// state move on between the two, and the events in that gap arrive twice).
    pub async fn read_with_cursor<T>(
        &self,
        consistency: ReadConsistency,
        read: impl FnOnce(&ClusterState) -> T,
    ) -> Result<(T, Cursor), LogError> {
        if consistency == ReadConsistency::Linearizable {
            self.ensure_linearizable().await?;
        }
        let applied = self.inner.state_machine.read();
        let index = applied.last_applied.map_or(0, |log_id| log_id.index);
        Ok((read(&applied.state), Cursor::new(index, u32::MAX)))
    }

    /// Confirms leadership with a quorum and waits until everything committed before this
    /// call is applied here; returns the log index reads are now consistent with.
    pub async fn ensure_linearizable(&self) -> Result<u64, LogError> {
        match self.inner.raft.ensure_linearizable().await {
            Ok(read_log_id) => Ok(read_log_id.map_or(0, |log_id| log_id.index)),
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(forward))) => {
                Err(LogError::forward_to(forward))
            }
            Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(error))) => {
                tracing::debug!(%error, "linearizable read without a quorum");
                Err(LogError::NotLeader { leader_hint: None })
            }
            Err(RaftError::Fatal(openraft::error::Fatal::Stopped)) => Err(LogError::ShuttingDown),
            Err(RaftError::Fatal(fatal)) => Err(LogError::Raft(fatal.to_string())),
        }
    }

    /// The committed events after `from` that `filter` wants, in log order, then new ones as
    /// they are applied. Any master serves this from its own journal.
    pub fn subscribe(
        &self,
        from: Cursor,
        filter: EventFilter,
    ) -> Result<Subscription, SubscriptionEnded> {
        subscribe::subscribe(
            self.journal().clone(),
            self.inner.state_machine.applied_index(),
            self.inner.closing.subscribe(),
            from,
            filter,
            self.inner.subscription_limits,
        )
    }

    pub fn journal(&self) -> &Journal {
        self.inner.state_machine.journal()
    }

    /// The journal's hash chain as of the last applied index.
    pub fn chain_head(&self) -> ChainHead {
        self.inner.state_machine.read().chain
    }

    /// The state right after the entry at `index`, rebuilt from the nearest checkpoint and
    /// the journal on a blocking thread; nothing else waits for it. An index past the last
    /// journaled row but applied here (a blank or membership entry) has that row's state.
    pub async fn state_at(&self, index: u64) -> Result<ClusterState, AuditError> {
        let applied = self.applied_index();
        if index > applied {
            return Err(AuditError::Beyond { asked: index, last: applied });
        }
        let journal = self.journal().clone();
        let initial = self.inner.state_machine.initial_state();
        tokio::task::spawn_blocking(move || {
            let last = journal.bounds()?.map_or(0, |(_, last)| last);
            journal.state_at(index.min(last), initial)
        })
        .await
        .map_err(|error| AuditError::Failed(format!("rebuilding the state stopped: {error}")))?
    }

    /// What changed between right after `from` and right after `to`.
    pub async fn diff(&self, from: u64, to: u64) -> Result<Vec<DiffRecord>, AuditError> {
        let applied = self.applied_index();
        if to > applied {
            return Err(AuditError::Beyond { asked: to, last: applied });
        }
        let journal = self.journal().clone();
        let initial = self.inner.state_machine.initial_state();
        tokio::task::spawn_blocking(move || {
            let last = journal.bounds()?.map_or(0, |(_, last)| last);
            journal.diff(from.min(last), to.min(last), initial)
        })
        .await
        .map_err(|error| AuditError::Failed(format!("the diff stopped: {error}")))?
    }

    /// The last log index applied here.
    pub fn applied_index(&self) -> u64 {
        *self.inner.state_machine.applied_index().borrow()
    }

    /// Follows the last log index applied here.
    pub fn watch_applied_index(&self) -> watch::Receiver<u64> {
        self.inner.state_machine.applied_index()
    }

    pub fn digest(&self) -> Digest {
        self.inner.state_machine.read().state.digest()
    }

    /// The last applied index and the digest of the state at exactly that index, read
    /// together so replicas (and `corral replay`) can be compared.
    pub fn applied_digest(&self) -> (u64, Digest) {
        let applied = self.inner.state_machine.read();
        (applied.last_applied.map_or(0, |log_id| log_id.index), applied.state.digest())
    }

    /// Reports the log's work (appends, fsyncs, applies, commits, snapshots) to `observer`
    /// (set once; later calls are ignored).
    pub fn observe(&self, observer: Arc<dyn crate::observe::LogObserver>) {
        self.inner.observer.set(observer);
    }

    /// openraft's metrics, for the master's Prometheus exporter.
    pub fn metrics(&self) -> watch::Receiver<RaftMetrics> {
        self.inner.raft.metrics()
    }

    pub fn proposer_counters(&self) -> ProposerCounters {
        self.inner.proposer.counters.snapshot()
    }

    /// Whether this master hears the cluster lately (see `standing.rs`). A leader's is read
    /// from its links at once; a follower's is what the watch found last (it needs the Raft
    /// core's word on when the leader was last heard).
    pub fn standing(&self) -> Standing {
        let metrics = self.inner.raft.metrics();
        let metrics = metrics.borrow();
        if metrics.state != ServerState::Leader {
            return match *self.inner.standing.borrow() {
                // Stale: no longer leading, and the watch has not caught up yet.
                Standing::Leading => Standing::Adrift,
                other => other,
            };
        }
        let membership = metrics.membership_config.membership();
        let own = self.inner.node_id;
        crate::standing::leader_standing(
            membership.voter_ids().filter(|voter| *voter != own),
            membership.voter_ids().any(|voter| voter == own),
            &self.inner.links,
            self.inner.standing_limits,
        )
    }

    /// Changes as the standing does.
    pub fn watch_standing(&self) -> watch::Receiver<Standing> {
        self.inner.standing.clone()
    }

    pub fn is_leader(&self) -> bool {
        self.inner.raft.metrics().borrow().state == ServerState::Leader
    }

    pub fn status(&self) -> ClusterStatus {
        let metrics = self.inner.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let last_log_index = metrics.last_log_index;
        let members = membership
            .nodes()
            .map(|(node_id, node)| {
                let matched_index = metrics
                    .replication
                    .as_ref()
                    .and_then(|replication| replication.get(node_id))
                    .map(|matched| matched.map_or(0, |log_id| log_id.index));
                MemberStatus {
                    node_id: *node_id,
                    address: node.addr.clone(),
                    voter: voters.contains(node_id),
                    matched_index,
                    lag: matched_index
                        .map(|matched| last_log_index.unwrap_or(0).saturating_sub(matched)),
                }
            })
            .collect();
        let leader_address = metrics
            .current_leader
            .and_then(|leader| membership.get_node(&leader).map(|node| node.addr.clone()));
        let applied_index = metrics.last_applied.map(|log_id| log_id.index);
        let committed_index = self.inner.committed.get().max(applied_index);
        ClusterStatus {
            node_id: self.inner.node_id,
            role: match metrics.state {
                ServerState::Leader => "leader",
                ServerState::Follower => "follower",
                ServerState::Candidate => "candidate",
                ServerState::Learner => "learner",
                ServerState::Shutdown => "shutdown",
            },
            term: metrics.current_term,
            leader: metrics.current_leader,
            leader_address,
            last_log_index,
            committed_index,
            applied_index,
            snapshot_index: metrics.snapshot.map(|log_id| log_id.index),
            purged_index: metrics.purged.map(|log_id| log_id.index),
            members,
        }
    }

    /// Adds a master as a learner and waits until it has caught up (from a snapshot if the
    /// log it needs was purged). It does not vote until [`LogNode::promote`].
    pub async fn add_learner(
        &self,
        node_id: NodeId,
        address: impl Into<String>,
    ) -> Result<(), LogError> {
        self.inner
            .raft
            .add_learner(node_id, BasicNode::new(address.into()), true)
            .await
            .map(drop)
            .map_err(membership_error)
    }

    /// Makes learners voters.
    pub async fn promote(&self, node_ids: BTreeSet<NodeId>) -> Result<(), LogError> {
        self.inner
            .raft
            .change_membership(ChangeMembers::AddVoterIds(node_ids), false)
            .await
            .map(drop)
            .map_err(membership_error)
    }

    /// Adds a master as a learner, waits for it to catch up, then makes it a voter.
    pub async fn add_member(
        &self,
        node_id: NodeId,
        address: impl Into<String>,
    ) -> Result<(), LogError> {
        self.add_learner(node_id, address).await?;
        self.promote(BTreeSet::from([node_id])).await
    }

    /// Removes a master from the cluster entirely (voter or learner).
    pub async fn remove_member(&self, node_id: NodeId) -> Result<(), LogError> {
        let is_voter = self
            .inner
            .raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .any(|id| id == node_id);
        let raft = &self.inner.raft;
        if is_voter {
            raft.change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([node_id])), false)
                .await
                .map_err(membership_error)?;
        }
        raft.change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([node_id])), false)
            .await
            .map(drop)
            .map_err(membership_error)
    }

    /// Builds a snapshot now (and lets openraft purge the log behind it).
    pub async fn trigger_snapshot(&self) -> Result<(), LogError> {
        self.inner
            .raft
            .trigger()
            .snapshot()
            .await
            .map_err(|error| LogError::Raft(error.to_string()))
    }

    /// Stops Raft, ends subscriptions and flushes the journal. Everything acknowledged is
    /// already in the Raft log on disk; the flush makes the journal of a stopped master hold
    /// every entry it applied, for `corral replay` (after a crash, the entries applied since
    /// the last flush are journaled again when the master restarts).
    pub async fn shutdown(&self) -> Result<(), LogError> {
        self.inner.closing.send_replace(true);
        self.inner.raft.shutdown().await.map_err(|error| LogError::Raft(error.to_string()))?;
        self.inner.state_machine.flush().await.map_err(JournalError::Storage)?;
        Ok(())
    }
}

fn membership_error(error: RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>) -> LogError {
    match error {
        RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => {
            LogError::forward_to(forward)
        }
        RaftError::APIError(ClientWriteError::ChangeMembershipError(error)) => {
            LogError::Membership(error.to_string())
        }
        RaftError::Fatal(openraft::error::Fatal::Stopped) => LogError::ShuttingDown,
        RaftError::Fatal(fatal) => LogError::Raft(fatal.to_string()),
    }
}
