//! An in-process network between Raft nodes of one test, with faults the test controls:
//! isolate a node, cut a link, drop every n-th message, delay messages, and carry appends at a
//! set rate so a large one takes a known time whatever the machine's load.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use openraft::error::{NetworkError, RPCError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};

use crate::election::{PreVoteNetwork, PreVoteRequest, PreVoteResponse};
use crate::network::WordedAppend;
use crate::node::Endpoint;
use crate::standing::LeaderWord;
use crate::transfer::{
    answer_campaign, answer_defer, CampaignAnswer, CampaignRequest, DeferRequest, TransferNetwork,
};
use crate::typ::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotError, InstallSnapshotRequest,
    InstallSnapshotResponse, Node, RaftError, VoteRequest, VoteResponse,
};
use crate::{NodeId, TypeConfig};

#[derive(Default)]
struct Fabric {
    nodes: BTreeMap<NodeId, Endpoint>,
    isolated: BTreeSet<NodeId>,
    /// Unordered pairs, smaller id first.
    cut_links: BTreeSet<(NodeId, NodeId)>,
    delay: Duration,
    /// Added to each append per MiB of its encoding: the time it takes to ship.
    append_delay_per_mib: Duration,
    drop_every: Option<u64>,
    messages: u64,
}

impl Fabric {
    fn connected(&self, from: NodeId, to: NodeId) -> bool {
        !self.isolated.contains(&from)
            && !self.isolated.contains(&to)
            && !self.cut_links.contains(&(from.min(to), from.max(to)))
    }
}

/// Shared by every node of a test cluster; cheap to clone.
#[derive(Clone, Default)]
pub struct LocalNetwork {
    fabric: Arc<Mutex<Fabric>>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Fault(&'static str);

enum Delivery {
    To(Endpoint),
    Unreachable,
    Dropped,
}

impl LocalNetwork {
    pub fn new() -> LocalNetwork {
        LocalNetwork::default()
    }

    fn fabric(&self) -> std::sync::MutexGuard<'_, Fabric> {
        self.fabric.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The connection factory node `from` uses.
    pub fn factory(&self, from: NodeId) -> LocalNetworkFactory {
        LocalNetworkFactory { network: self.clone(), from }
    }

    /// Makes a node reachable: its Raft RPCs and its pre-vote answers
    /// ([`LogNode::endpoint`](crate::LogNode::endpoint)).
    pub fn register(&self, node_id: NodeId, endpoint: Endpoint) {
        self.fabric().nodes.insert(node_id, endpoint);
    }

    /// A crashed or stopped node: messages to it fail as unreachable.
    pub fn unregister(&self, node_id: NodeId) {
        self.fabric().nodes.remove(&node_id);
    }

    pub fn isolate(&self, node_id: NodeId) {
        self.fabric().isolated.insert(node_id);
    }

    pub fn cut(&self, first: NodeId, second: NodeId) {
        self.fabric().cut_links.insert((first.min(second), first.max(second)));
    }

    /// Splits the nodes in two groups that cannot talk to each other.
    pub fn partition(&self, minority: &[NodeId], majority: &[NodeId]) {
        let mut fabric = self.fabric();
        for &first in minority {
            for &second in majority {
                fabric.cut_links.insert((first.min(second), first.max(second)));
            }
        }
    }

    /// Removes every fault: isolation, cut links, drops and delays.
    pub fn heal(&self) {
        let mut fabric = self.fabric();
        fabric.isolated.clear();
        fabric.cut_links.clear();
        fabric.drop_every = None;
        fabric.delay = Duration::ZERO;
        fabric.append_delay_per_mib = Duration::ZERO;
    }

    pub fn set_delay(&self, delay: Duration) {
        self.fabric().delay = delay;
    }

    /// Delays each append by `per_mib` for every MiB of its postcard encoding (what the HTTP
    /// transport sends), on top of [`LocalNetwork::set_delay`].
    pub fn set_append_delay_per_mib(&self, per_mib: Duration) {
        self.fabric().append_delay_per_mib = per_mib;
    }

    fn append_delay(&self, request: &AppendEntriesRequest) -> Duration {
        let per_mib = self.fabric().append_delay_per_mib;
        if per_mib.is_zero() {
            return Duration::ZERO;
        }
        let bytes =
            postcard::to_allocvec(request).expect("an append encodes, as HTTP sends it").len();
        per_mib.mul_f64(bytes as f64 / (1024.0 * 1024.0))
    }

    /// Loses every n-th message (counting all messages), deterministically.
    pub fn drop_every(&self, every: u64) {
        self.fabric().drop_every = Some(every.max(2));
    }

    fn route(&self, from: NodeId, to: NodeId) -> (Delivery, Duration) {
        let mut fabric = self.fabric();
        fabric.messages += 1;
        let delay = fabric.delay;
        if !fabric.connected(from, to) {
            return (Delivery::Unreachable, delay);
        }
        if fabric.drop_every.is_some_and(|every| fabric.messages % every == 0) {
            return (Delivery::Dropped, delay);
        }
        match fabric.nodes.get(&to) {
            Some(endpoint) => (Delivery::To(endpoint.clone()), delay),
            None => (Delivery::Unreachable, delay),
        }
    }

    /// Whether a reply can still travel back: a partition that began while the request was in
    /// flight loses the reply too.
    fn reply_reaches(&self, from: NodeId, to: NodeId) -> bool {
        self.fabric().connected(from, to)
    }
}

pub struct LocalNetworkFactory {
    network: LocalNetwork,
    from: NodeId,
}

impl PreVoteNetwork for LocalNetworkFactory {
    async fn pre_vote(
        &self,
        target: NodeId,
        _address: &str,
        request: PreVoteRequest,
        _timeout: Duration,
    ) -> Result<PreVoteResponse, String> {
        let connection =
            LocalConnection { network: self.network.clone(), from: self.from, to: target };
        let reply = connection
            .deliver(|endpoint| async move {
                Ok::<_, RaftError>(endpoint.pre_vote.answer(&request).await)
            })
            .await;
        reply.map_err(|error| error.to_string())
    }
}

impl TransferNetwork for LocalNetworkFactory {
    async fn campaign(
        &self,
        target: NodeId,
        _address: &str,
        request: CampaignRequest,
        _timeout: Duration,
    ) -> Result<CampaignAnswer, String> {
        let connection =
            LocalConnection { network: self.network.clone(), from: self.from, to: target };
        let reply = connection
            .deliver(|endpoint| async move {
                Ok::<_, RaftError>(answer_campaign(&endpoint.raft, request).await)
            })
            .await;
        reply.map_err(|error| error.to_string())
    }

    async fn defer(
        &self,
        target: NodeId,
        _address: &str,
        request: DeferRequest,
        _timeout: Duration,
    ) -> Result<bool, String> {
        let connection =
            LocalConnection { network: self.network.clone(), from: self.from, to: target };
        let reply = connection
            .deliver(|endpoint| async move {
                Ok::<_, RaftError>(answer_defer(&endpoint.pre_vote, request).await)
            })
            .await;
        reply.map_err(|error| error.to_string())
    }
}

impl Clone for LocalNetworkFactory {
    fn clone(&self) -> LocalNetworkFactory {
        LocalNetworkFactory { network: self.network.clone(), from: self.from }
    }
}

impl RaftNetworkFactory<TypeConfig> for LocalNetworkFactory {
    type Network = LocalConnection;

    async fn new_client(&mut self, target: NodeId, _node: &Node) -> LocalConnection {
        LocalConnection { network: self.network.clone(), from: self.from, to: target }
    }
}

#[derive(Clone)]
pub struct LocalConnection {
    network: LocalNetwork,
    from: NodeId,
    to: NodeId,
}

impl LocalConnection {
    async fn deliver<Reply, E, Call, Fut>(
        &self,
        call: Call,
    ) -> Result<Reply, RPCError<NodeId, Node, RaftError<E>>>
    where
        E: std::error::Error,
        Call: FnOnce(Endpoint) -> Fut,
        Fut: std::future::Future<Output = Result<Reply, RaftError<E>>>,
    {
        let (delivery, delay) = self.network.route(self.from, self.to);
        if !delay.is_zero() {
            // Injected latency, not synchronisation.
            tokio::time::sleep(delay).await;
        }
        let endpoint = match delivery {
            Delivery::To(endpoint) => endpoint,
            Delivery::Unreachable => {
                return Err(RPCError::Unreachable(Unreachable::new(&Fault("unreachable"))))
            }
            Delivery::Dropped => {
                return Err(RPCError::Network(NetworkError::new(&Fault("message dropped"))))
            }
        };
        let reply = call(endpoint).await;
        if !self.network.reply_reaches(self.from, self.to) {
            return Err(RPCError::Unreachable(Unreachable::new(&Fault(
                "reply lost in a partition",
            ))));
        }
        reply.map_err(|error| RPCError::RemoteError(RemoteError::new(self.to, error)))
    }
}

impl WordedAppend for LocalConnection {
    async fn append_with_word(
        &mut self,
        request: AppendEntriesRequest,
        _option: RPCOption,
        word: LeaderWord,
    ) -> Result<AppendEntriesResponse, RPCError<NodeId, Node, RaftError>> {
        let shipping = self.network.append_delay(&request);
        if !shipping.is_zero() {
            // Injected transfer time, not synchronisation.
            tokio::time::sleep(shipping).await;
        }
        self.deliver(
            |endpoint| async move { endpoint.pre_vote.receive_append(request, word).await },
        )
        .await
    }
}

impl RaftNetwork<TypeConfig> for LocalConnection {
    async fn append_entries(
        &mut self,
        request: AppendEntriesRequest,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse, RPCError<NodeId, Node, RaftError>> {
        self.append_with_word(request, option, LeaderWord::HasQuorum).await
    }

    async fn install_snapshot(
        &mut self,
        request: InstallSnapshotRequest,
        _option: RPCOption,
    ) -> Result<InstallSnapshotResponse, RPCError<NodeId, Node, RaftError<InstallSnapshotError>>>
    {
        self.deliver(|endpoint| async move { endpoint.raft.install_snapshot(request).await }).await
    }

    async fn vote(
        &mut self,
        request: VoteRequest,
        _option: RPCOption,
    ) -> Result<VoteResponse, RPCError<NodeId, Node, RaftError>> {
        self.deliver(|endpoint| async move { endpoint.raft.vote(request).await }).await
    }
}
