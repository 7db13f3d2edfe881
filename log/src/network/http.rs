//! Raft RPCs over HTTP: postcard bodies, an axum router to mount and a reqwest client.

use std::error::Error;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use openraft::error::{NetworkError, RPCError, RemoteError, Timeout, Unreachable};
use openraft::network::{RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::secret::{now_millis, ClusterSecret, CLUSTER_AUTH_HEADER};
use super::{WordedAppend, RAFT_ROUTE_PREFIX};
use crate::election::{PreVoteNetwork, PreVoteRequest, PreVoteResponder, PreVoteResponse};
use crate::standing::LeaderWord;
use crate::transfer::{
    answer_campaign, answer_defer, CampaignAnswer, CampaignRequest, DeferRequest, TransferNetwork,
};
use crate::typ::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotError, InstallSnapshotRequest,
    InstallSnapshotResponse, Node, Raft, RaftError, VoteRequest, VoteResponse,
};
use crate::{NodeId, TypeConfig};

/// The routes other masters call, under [`RAFT_ROUTE_PREFIX`]. Merge it into the master's
/// router.
pub fn raft_router(raft: Raft, pre_vote: PreVoteResponder) -> Router {
    let pre_vote_route = Router::new()
        .route(&format!("{RAFT_ROUTE_PREFIX}/prevote"), post(answer_pre_vote))
        .route(&format!("{RAFT_ROUTE_PREFIX}/defer"), post(defer))
        .with_state(pre_vote.clone());
    // Appends go through the responder, which keeps what the leader says of itself.
    let append_route = Router::new()
        .route(&format!("{RAFT_ROUTE_PREFIX}/append"), post(append_entries))
        .layer(DefaultBodyLimit::max(RAFT_BODY_LIMIT))
        .with_state(pre_vote);
    Router::new()
        .route(&format!("{RAFT_ROUTE_PREFIX}/vote"), post(vote))
        .route(&format!("{RAFT_ROUTE_PREFIX}/snapshot"), post(install_snapshot))
        .route(&format!("{RAFT_ROUTE_PREFIX}/campaign"), post(campaign))
        // axum refuses bodies over 2 MB by default; an append of many full batches or a
        // snapshot chunk is larger, and a refused one would be retried forever.
        .layer(DefaultBodyLimit::max(RAFT_BODY_LIMIT))
        .with_state(raft)
        .merge(pre_vote_route)
        .merge(append_route)
}

/// The header an append carries when its leader lost its quorum ([`LeaderWord`]).
const LEADER_WORD_HEADER: &str = "corral-leader-word";
const LOST_QUORUM: &str = "lost-quorum";

async fn answer_pre_vote(State(responder): State<PreVoteResponder>, body: Bytes) -> Response {
    match postcard::from_bytes::<PreVoteRequest>(&body) {
        Ok(request) => encoded(&responder.answer(&request).await),
        Err(error) => malformed(error),
    }
}

/// Bounds one Raft request: `max_payload_entries` batches of at most `max_batch_bytes`
/// each, or one snapshot chunk, with room to spare.
pub const RAFT_BODY_LIMIT: usize = 1024 * 1024 * 1024;

async fn append_entries(
    State(responder): State<PreVoteResponder>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let word = match headers.get(LEADER_WORD_HEADER) {
        Some(value) if value == LOST_QUORUM => LeaderWord::LostQuorum,
        _ => LeaderWord::HasQuorum,
    };
    match postcard::from_bytes::<AppendEntriesRequest>(&body) {
        Ok(request) => encoded(&responder.receive_append(request, word).await),
        Err(error) => malformed(error),
    }
}

async fn defer(State(responder): State<PreVoteResponder>, body: Bytes) -> Response {
    match postcard::from_bytes::<DeferRequest>(&body) {
        Ok(request) => encoded(&answer_defer(&responder, request).await),
        Err(error) => malformed(error),
    }
}

async fn campaign(State(raft): State<Raft>, body: Bytes) -> Response {
    match postcard::from_bytes::<CampaignRequest>(&body) {
        Ok(request) => encoded(&answer_campaign(&raft, request).await),
        Err(error) => malformed(error),
    }
}

async fn vote(State(raft): State<Raft>, body: Bytes) -> Response {
    match postcard::from_bytes::<VoteRequest>(&body) {
        Ok(request) => encoded(&raft.vote(request).await),
        Err(error) => malformed(error),
    }
}

async fn install_snapshot(State(raft): State<Raft>, body: Bytes) -> Response {
    match postcard::from_bytes::<InstallSnapshotRequest>(&body) {
        Ok(request) => encoded(&raft.install_snapshot(request).await),
        Err(error) => malformed(error),
    }
}

fn encoded<T: Serialize>(value: &T) -> Response {
    match postcard::to_allocvec(value) {
        Ok(bytes) => bytes.into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

fn malformed(error: postcard::Error) -> Response {
    (StatusCode::BAD_REQUEST, format!("malformed raft request: {error}")).into_response()
}

/// Connects to other masters at the address their [`Node`] names.
#[derive(Clone)]
pub struct HttpNetwork {
    client: reqwest::Client,
    /// `https` with mutual TLS, else `http`.
    scheme: &'static str,
    /// This master, named in timeout errors.
    node_id: NodeId,
    /// Signs every request, when the cluster has a secret.
    secret: Option<ClusterSecret>,
}

/// `request` with the `Corral-Cluster-Auth` header for `method`, `path` and `body`, made
/// now, when the cluster has a secret: how one master proves it is one to another master
/// (Raft, read index) or to an agent.
pub fn signed(
    request: reqwest::RequestBuilder,
    secret: Option<&ClusterSecret>,
    method: &str,
    path: &str,
    body: &[u8],
) -> reqwest::RequestBuilder {
    let Some(secret) = secret else { return request };
    request.header(CLUSTER_AUTH_HEADER, secret.sign(now_millis(), method, path, body))
}

impl HttpNetwork {
    /// Fails when no HTTP client can be built (no TLS roots, say): a master that cannot
    /// talk to its peers must not start as if it could.
    pub fn new(
        node_id: NodeId,
        tls: Option<&corral_tls::Tls>,
        secret: Option<ClusterSecret>,
    ) -> Result<HttpNetwork, crate::LogError> {
        let builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(1))
            .tcp_nodelay(true)
            .pool_max_idle_per_host(4);
        let (builder, scheme) = match tls {
            Some(tls) => (tls.client(corral_tls::Role::Master, builder), "https"),
            None => (builder, "http"),
        };
        let client = builder.build().map_err(|error| {
            crate::LogError::Config(format!("no HTTP client for peers: {error}"))
        })?;
        Ok(HttpNetwork { client, scheme, node_id, secret })
    }
}

impl PreVoteNetwork for HttpNetwork {
    async fn pre_vote(
        &self,
        _target: NodeId,
        address: &str,
        request: PreVoteRequest,
        timeout: Duration,
    ) -> Result<PreVoteResponse, String> {
        self.ask(address, "prevote", &request, timeout).await
    }
}

impl TransferNetwork for HttpNetwork {
    async fn campaign(
        &self,
        _target: NodeId,
        address: &str,
        request: CampaignRequest,
        timeout: Duration,
    ) -> Result<CampaignAnswer, String> {
        self.ask(address, "campaign", &request, timeout).await
    }

    async fn defer(
        &self,
        _target: NodeId,
        address: &str,
        request: DeferRequest,
        timeout: Duration,
    ) -> Result<bool, String> {
        self.ask(address, "defer", &request, timeout).await
    }
}

impl HttpNetwork {
    /// One postcard request and answer outside openraft's own RPCs.
    async fn ask<Request: Serialize, Reply: DeserializeOwned>(
        &self,
        address: &str,
        route: &str,
        request: &Request,
        timeout: Duration,
    ) -> Result<Reply, String> {
        let body = postcard::to_allocvec(request).map_err(|error| error.to_string())?;
        let path = format!("{RAFT_ROUTE_PREFIX}/{route}");
        let post = self.client.post(format!("{}://{address}{path}", self.scheme));
        let response = signed(post, self.secret.as_ref(), "POST", &path, &body)
            .timeout(timeout)
            .body(body)
            .send()
            .await
            .map_err(|error| error.to_string())?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|error| error.to_string())?;
        if !status.is_success() {
            return Err(format!("{status}: {}", String::from_utf8_lossy(&bytes)));
        }
        postcard::from_bytes(&bytes).map_err(|error| error.to_string())
    }
}

impl RaftNetworkFactory<TypeConfig> for HttpNetwork {
    type Network = HttpConnection;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> HttpConnection {
        HttpConnection {
            client: self.client.clone(),
            node_id: self.node_id,
            target,
            base_url: format!("{}://{}", self.scheme, node.addr),
            secret: self.secret.clone(),
        }
    }
}

#[derive(Clone)]
pub struct HttpConnection {
    client: reqwest::Client,
    node_id: NodeId,
    target: NodeId,
    /// `scheme://address`.
    base_url: String,
    secret: Option<ClusterSecret>,
}

impl HttpConnection {
    async fn call<Request, Reply, E>(
        &self,
        action: RPCTypes,
        route: &str,
        request: &Request,
        option: &RPCOption,
        word: LeaderWord,
    ) -> Result<Reply, RPCError<NodeId, Node, RaftError<E>>>
    where
        Request: Serialize,
        Reply: DeserializeOwned,
        E: Error + DeserializeOwned,
    {
        let body = postcard::to_allocvec(request)
            .map_err(|error| RPCError::Network(NetworkError::new(&error)))?;
        let ttl = option.hard_ttl();
        let path = format!("{RAFT_ROUTE_PREFIX}/{route}");
        let post = self.client.post(format!("{}{path}", self.base_url));
        let mut post = signed(post, self.secret.as_ref(), "POST", &path, &body).timeout(ttl);
        if word == LeaderWord::LostQuorum {
            post = post.header(LEADER_WORD_HEADER, LOST_QUORUM);
        }
        let response = post.body(body).send().await.map_err(|error| {
            if error.is_timeout() {
                RPCError::Timeout(Timeout {
                    action,
                    id: self.node_id,
                    target: self.target,
                    timeout: ttl,
                })
            } else {
                RPCError::Unreachable(Unreachable::new(&error))
            }
        })?;
        if !response.status().is_success() {
            let status = response.status();
            let text =
                response.text().await.unwrap_or_else(|error| format!("(unreadable: {error})"));
            let error = std::io::Error::other(format!("{status}: {text}"));
            return Err(RPCError::Network(NetworkError::new(&error)));
        }
        let bytes =
            response.bytes().await.map_err(|error| RPCError::Network(NetworkError::new(&error)))?;
        let reply: Result<Reply, RaftError<E>> = postcard::from_bytes(&bytes)
            .map_err(|error| RPCError::Network(NetworkError::new(&error)))?;
        reply.map_err(|error| RPCError::RemoteError(RemoteError::new(self.target, error)))
    }
}

impl WordedAppend for HttpConnection {
    async fn append_with_word(
        &mut self,
        request: AppendEntriesRequest,
        option: RPCOption,
        word: LeaderWord,
    ) -> Result<AppendEntriesResponse, RPCError<NodeId, Node, RaftError>> {
        self.call(RPCTypes::AppendEntries, "append", &request, &option, word).await
    }
}

impl RaftNetwork<TypeConfig> for HttpConnection {
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
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse, RPCError<NodeId, Node, RaftError<InstallSnapshotError>>>
    {
        self.call(RPCTypes::InstallSnapshot, "snapshot", &request, &option, LeaderWord::HasQuorum)
            .await
    }

    async fn vote(
        &mut self,
        request: VoteRequest,
        option: RPCOption,
    ) -> Result<VoteResponse, RPCError<NodeId, Node, RaftError>> {
        self.call(RPCTypes::Vote, "vote", &request, &option, LeaderWord::HasQuorum).await
    }
}
