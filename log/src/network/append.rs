//! Appends that outlive openraft's deadline, so an entry of any size reaches a follower.
//!
//! openraft 0.9 gives every AppendEntries `heartbeat_interval` (50 ms here) and drops the
//! call when it runs out (`C::timeout(heartbeat_interval, append_entries)` in its
//! `replication/mod.rs`; its `Config` has no separate append timeout). Then it retries the
//! same range. A range, or a single entry, that takes longer than that to ship, fsync and
//! answer is dropped every time and the log stops for good: 10,000 agents registering, then
//! the allocator's offers to all of them (one multi-MiB command) did exactly that. Neither
//! of the obvious fixes holds:
//! - a deadline scaled to the payload in the transport is cut short by openraft's own
//!   timeout, which wraps the whole call;
//! - smaller entries (or fewer per RPC) only lower the size at which it happens: one command
//!   cannot be split by the log, and on a loaded machine even 1 MiB may take over 50 ms;
//! - a longer `heartbeat_interval` slows failover.
//!
//! So the append runs on its own task, with a deadline that grows with its size, and the
//! connection keeps it when openraft gives up on the call. openraft's retry finds it in
//! flight and waits for it again instead of sending it again, so every retry adds to the
//! same transfer and one eventually sees its answer. One append per follower is in flight
//! at a time, as openraft itself does.
//!
//! An append also carries at most [`APPEND_BYTES`] of entries (always at least one): the
//! rest of the range is answered with `PartialSuccess`, which openraft 0.9 follows by sending
//! the remainder at once. That keeps each transfer, and the time before the leader hears of
//! its progress, bounded by one budget instead of `max_payload_entries` full batches.
//!
//! An answer taken from an append sent by an earlier call is attributed by openraft to the
//! later call's send time. openraft 0.9 uses that time only for the
//! `millis_since_quorum_ack` metric (reads confirm leadership with their own heartbeats,
//! on fresh connections); revisit this on upgrading openraft if it bases a lease on it.

use std::time::Duration;

use openraft::error::{NetworkError, RPCError, Timeout};
use openraft::network::{Backoff, RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::EntryPayload;
use tokio::task::JoinHandle;

use super::WordedAppend;
use crate::standing::SharedWord;
use crate::typ::{
    AppendEntriesRequest, AppendEntriesResponse, Entry, InstallSnapshotError,
    InstallSnapshotRequest, InstallSnapshotResponse, LogId, Node, RaftError, Vote, VoteRequest,
    VoteResponse,
};
use crate::{NodeId, TypeConfig};

/// Entries one append carries at most (a lone larger entry goes alone).
pub(crate) const APPEND_BYTES: usize = 4 * 1024 * 1024;

/// Counted for every entry besides its commands: log id, payload tag, membership.
const ENTRY_OVERHEAD_BYTES: usize = 64;

/// An append's own deadline: openraft's, plus this per MiB it carries (a floor of 4 MiB/s
/// to ship, decode and fsync on a loaded machine), doubled after each append that runs
/// out of it (see [`MAX_PATIENCE`]).
const DEADLINE_PER_MIB: Duration = Duration::from_millis(250);

/// No append waits for less: a follower that hangs holds its own replication back for this
/// long at most before a fresh append is tried, and a healthy one answers far sooner.
const DEADLINE_FLOOR: Duration = Duration::from_secs(1);

/// Doublings of the deadline after appends that ran out of it: a follower slower than any
/// fixed allowance still gets an append through, and a hung one is retried within about a
/// minute.
const MAX_PATIENCE: u32 = 6;

type AppendReply = Result<AppendEntriesResponse, RPCError<NodeId, Node, RaftError>>;

/// Wraps a transport's connections in [`AppendConnection`].
#[derive(Clone)]
pub(crate) struct AppendNetwork<N> {
    inner: N,
    /// This master, named in timeout errors.
    source: NodeId,
    /// What this master says of itself on each append (see [`crate::LeaderWord`]).
    word: SharedWord,
}

impl<N> AppendNetwork<N> {
    pub(crate) fn new(inner: N, source: NodeId, word: SharedWord) -> AppendNetwork<N> {
        AppendNetwork { inner, source, word }
    }
}

impl<N> RaftNetworkFactory<TypeConfig> for AppendNetwork<N>
where
    N: RaftNetworkFactory<TypeConfig>,
    N::Network: WordedAppend + Clone,
{
    type Network = AppendConnection<N::Network>;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> AppendConnection<N::Network> {
        AppendConnection {
            inner: self.inner.new_client(target, node).await,
            source: self.source,
            target,
            word: self.word.clone(),
            heartbeat: None,
            in_flight: None,
            acknowledged: None,
            patience: 0,
        }
    }
}

/// One follower's connection; keeps the append in flight across openraft's retries.
pub(crate) struct AppendConnection<C> {
    inner: C,
    source: NodeId,
    target: NodeId,
    word: SharedWord,
    heartbeat: Option<Heartbeat>,
    in_flight: Option<InFlight>,
    acknowledged: Option<Acknowledged>,
    patience: u32,
}

/// The last entry the follower confirmed holding, and from which leader.
#[derive(Clone, Copy)]
struct Acknowledged {
    vote: Vote,
    log_id: LogId,
}

impl Acknowledged {
    /// An append of `shape` would tell openraft nothing new: it was told already that the
    /// follower holds all of it (and openraft's matching index only grows), so it is
    /// answered without shipping it again.
    fn covers(&self, shape: &Shape) -> bool {
        let index = |log_id: Option<LogId>| log_id.map(|log_id| log_id.index);
        self.vote == shape.vote && index(shape.last_log_id) <= Some(self.log_id.index)
    }
}

/// An append running on its own task, and what it was sent as.
struct InFlight {
    shape: Shape,
    reply: JoinHandle<AppendReply>,
}

impl Drop for InFlight {
    /// A connection openraft dropped (a new term, a removed member) sends nothing more.
    fn drop(&mut self) {
        self.reply.abort();
    }
}

/// A heartbeat running on its own task.
struct Heartbeat(JoinHandle<AppendReply>);

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What the append in flight, once finished, says about a request.
enum Settled {
    Answer(AppendEntriesResponse),
    Failed(Box<RPCError<NodeId, Node, RaftError>>),
    /// Nothing was in flight, or it answered another request (older, or of another term).
    Unrelated,
}

/// Which request an answer is for: the leader's vote and the range it sends.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Shape {
    vote: Vote,
    prev_log_id: Option<LogId>,
    /// The last entry it carries (its `prev_log_id` when it carries none).
    last_log_id: Option<LogId>,
}

impl Shape {
    fn of(request: &AppendEntriesRequest) -> Shape {
        Shape {
            vote: request.vote,
            prev_log_id: request.prev_log_id,
            last_log_id: request.entries.last().map(|entry| entry.log_id).or(request.prev_log_id),
        }
    }

    /// An answer for an append of `self` is one for `other` too: same leader and same
    /// previous entry, so both carry entries of one leader's log, which it never truncates
    /// (entries at the same index are the same entry).
    fn answers(&self, other: &Shape) -> bool {
        self.vote == other.vote && self.prev_log_id == other.prev_log_id
    }
}

impl<C: WordedAppend + Clone> AppendConnection<C> {
    /// Waits for the append in flight and reads its answer for `request`. openraft may drop
    /// this call while it waits; the append stays in flight for the next call. An append in
    /// flight for another request is dropped unheard: the follower handles appends one at a
    /// time in any order, and this one's answer would not be of use.
    async fn settle(&mut self, request: &Shape) -> Settled {
        let Some(in_flight) = self.in_flight.as_mut() else { return Settled::Unrelated };
        if !in_flight.shape.answers(request) {
            self.in_flight = None;
            return Settled::Unrelated;
        }
        let finished = (&mut in_flight.reply).await;
        let in_flight = self.in_flight.take().expect("it was awaited just above");
        let matched = match finished {
            Ok(Ok(AppendEntriesResponse::Success)) => in_flight.shape.last_log_id,
            Ok(Ok(AppendEntriesResponse::PartialSuccess(matched))) => matched,
            Ok(Ok(
                answer @ (AppendEntriesResponse::Conflict | AppendEntriesResponse::HigherVote(_)),
            )) => {
                self.patience = 0;
                // The follower's log is not what it was: nothing it confirmed is taken on
                // trust any more.
                self.acknowledged = None;
                return Settled::Answer(answer);
            }
            Ok(Err(error)) => {
                if let RPCError::Timeout(_) = error {
                    self.patience = (self.patience + 1).min(MAX_PATIENCE);
                }
                return Settled::Failed(Box::new(error));
            }
            Err(join_error) => {
                return Settled::Failed(Box::new(RPCError::Network(NetworkError::new(
                    &join_error,
                ))));
            }
        };
        self.patience = 0;
        if let Some(matched) = matched {
            let known = self.acknowledged.filter(|known| known.vote == request.vote);
            if known.is_none_or(|known| known.log_id.index < matched.index) {
                self.acknowledged = Some(Acknowledged { vote: request.vote, log_id: matched });
            }
        }
        if matched.map(|log_id| log_id.index) >= request.last_log_id.map(|log_id| log_id.index) {
            return Settled::Answer(AppendEntriesResponse::Success);
        }
        Settled::Answer(AppendEntriesResponse::PartialSuccess(matched))
    }

    /// Starts `request`, cut to [`APPEND_BYTES`], on its own task.
    fn launch(&mut self, mut request: AppendEntriesRequest, option: &RPCOption) {
        let (kept, bytes) = within_budget(&request.entries);
        request.entries.truncate(kept);
        let shape = Shape::of(&request);
        let deadline = self.deadline(option.hard_ttl(), bytes);
        let mut inner = self.inner.clone();
        let word = self.word.get();
        let timed_out = Timeout {
            action: RPCTypes::AppendEntries,
            id: self.source,
            target: self.target,
            timeout: deadline,
        };
        let reply = tokio::spawn(async move {
            let sent = inner.append_with_word(request, RPCOption::new(deadline), word);
            tokio::time::timeout(deadline, sent).await.unwrap_or(Err(RPCError::Timeout(timed_out)))
        });
        self.in_flight = Some(InFlight { shape, reply });
    }

    /// Sends a heartbeat on its own task, or waits for the one still on its way. openraft
    /// gives a heartbeat `heartbeat_interval` (50 ms) and cancels it then; on a loaded machine
    /// (three masters and 10,000 simulated agents on two cores) a cancelled heartbeat never
    /// reached the follower, whose election timer ran out while the leader was alive: the
    /// cluster bench changed leader every few seconds. A heartbeat on its own task arrives
    /// late rather than never; its answer counts for whichever call awaits it (one leader,
    /// one term: the answers are alike).
    async fn beat(&mut self, request: AppendEntriesRequest, option: RPCOption) -> AppendReply {
        let idle = self.heartbeat.as_ref().is_none_or(|beat| beat.0.is_finished());
        if idle {
            let mut inner = self.inner.clone();
            let word = self.word.get();
            let deadline = option.hard_ttl().max(DEADLINE_FLOOR);
            let timed_out = Timeout {
                action: RPCTypes::AppendEntries,
                id: self.source,
                target: self.target,
                timeout: deadline,
            };
            self.heartbeat = Some(Heartbeat(tokio::spawn(async move {
                let sent = inner.append_with_word(request, RPCOption::new(deadline), word);
                tokio::time::timeout(deadline, sent)
                    .await
                    .unwrap_or(Err(RPCError::Timeout(timed_out)))
            })));
        }
        let beat = self.heartbeat.as_mut().expect("a heartbeat was started above if none was");
        let answer = (&mut beat.0).await;
        self.heartbeat = None;
        match answer {
            Ok(reply) => reply,
            Err(join_error) => Err(RPCError::Network(NetworkError::new(&join_error))),
        }
    }

    fn deadline(&self, openraft_deadline: Duration, bytes: usize) -> Duration {
        let shipping = DEADLINE_PER_MIB.mul_f64(bytes as f64 / (1024.0 * 1024.0));
        let deadline = (openraft_deadline + shipping).max(DEADLINE_FLOOR);
        deadline * (1 << self.patience)
    }
}

/// How many of `entries` fit in [`APPEND_BYTES`] (at least one), and their size.
fn within_budget(entries: &[Entry]) -> (usize, usize) {
    let mut bytes = 0;
    for (kept, entry) in entries.iter().enumerate() {
        let size = entry_bytes(entry);
        if kept > 0 && bytes + size > APPEND_BYTES {
            return (kept, bytes);
        }
        bytes += size;
    }
    (entries.len(), bytes)
}

fn entry_bytes(entry: &Entry) -> usize {
    let commands = match &entry.payload {
        EntryPayload::Normal(batch) => batch.encoded().len(),
        EntryPayload::Blank | EntryPayload::Membership(_) => 0,
    };
    ENTRY_OVERHEAD_BYTES + commands
}

impl<C: WordedAppend + Clone> RaftNetwork<TypeConfig> for AppendConnection<C> {
    async fn append_entries(
        &mut self,
        request: AppendEntriesRequest,
        option: RPCOption,
    ) -> AppendReply {
        // A heartbeat is small and goes at once, beside any append in flight: the follower's
        // election timer must not wait for a large append to arrive.
        if request.entries.is_empty() {
            return self.beat(request, option).await;
        }
        let shape = Shape::of(&request);
        // openraft may ask again for a range answered a moment ago (a retry it queued before
        // the answer came): the follower already holds it.
        if self.acknowledged.is_some_and(|acknowledged| acknowledged.covers(&shape)) {
            return Ok(AppendEntriesResponse::Success);
        }
        // What an earlier call left in flight may answer this one (it is a retry of it);
        // otherwise this one is sent once that is done.
        if let Settled::Answer(answer) = self.settle(&shape).await {
            return Ok(answer);
        }
        self.launch(request, &option);
        match self.settle(&shape).await {
            Settled::Answer(answer) => Ok(answer),
            Settled::Failed(error) => Err(*error),
            Settled::Unrelated => unreachable!("the append just launched answers its request"),
        }
    }

    async fn install_snapshot(
        &mut self,
        request: InstallSnapshotRequest,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse, RPCError<NodeId, Node, RaftError<InstallSnapshotError>>>
    {
        self.inner.install_snapshot(request, option).await
    }

    async fn vote(
        &mut self,
        request: VoteRequest,
        option: RPCOption,
    ) -> Result<VoteResponse, RPCError<NodeId, Node, RaftError>> {
        self.inner.vote(request, option).await
    }

    fn backoff(&self) -> Backoff {
        self.inner.backoff()
    }
}
