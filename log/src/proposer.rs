//! Group commit: concurrent commands are packed into one Raft entry, and each caller gets its
//! own command's outcome back.
//!
//! openraft appends one entry per `client_write`; paying a replication round and an fsync per
//! command would cap throughput at a few thousand commands a second. The proposer takes
//! whatever is queued (up to a count and a byte bound, optionally lingering a little for
//! more), stamps it with the leader's clock and writes it as one entry. A bounded number of
//! batches are in flight at once; while they are, new commands queue up and form the next
//! batch, so batches grow with load without adding latency to a lone caller.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use corral_state::{codec, Actor, Command, Cursor, Entry, Outcome, RequestId, Timestamp};
use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::observe::{Observation, ObserverSlot};
use crate::typ::Raft;
use crate::{Batch, LogError, NodeId};

/// Bounds of one batch and of the queue in front of it.
#[derive(Clone, Copy, Debug)]
pub struct ProposerConfig {
    pub max_batch_commands: usize,
    pub max_batch_bytes: usize,
    /// How long a batch that is not full waits for more commands. Zero by default: batches
    /// fill while earlier ones are in flight, and tokio timers are millisecond-grained.
    pub linger: Duration,
    pub max_batches_in_flight: usize,
    pub queue_capacity: usize,
}

impl Default for ProposerConfig {
    fn default() -> ProposerConfig {
        ProposerConfig {
            max_batch_commands: 2048,
            max_batch_bytes: 4 * 1024 * 1024,
            linger: Duration::ZERO,
            max_batches_in_flight: 2,
            queue_capacity: 65_536,
        }
    }
}

/// A command committed and applied: where it sits in the log and what applying it gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    /// The Raft log index of the entry that carried the command.
    pub index: u64,
    /// The cursor of the command's first event (if it produced any).
    pub first_event: Cursor,
    pub outcome: Outcome,
}

/// Counters the master exports as metrics.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) commands: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) failed_batches: AtomicU64,
}

/// A snapshot of the proposer's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProposerCounters {
    pub commands: u64,
    pub batches: u64,
    pub failed_batches: u64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> ProposerCounters {
        ProposerCounters {
            commands: self.commands.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            failed_batches: self.failed_batches.load(Ordering::Relaxed),
        }
    }
}

struct Proposal {
    entry: Entry,
    encoded_len: usize,
    /// When the caller handed it over: commit latency counts the time queued too.
    queued_at: std::time::Instant,
    reply: oneshot::Sender<Result<Committed, LogError>>,
}

#[derive(Clone)]
pub(crate) struct Proposer {
    queue: mpsc::Sender<Proposal>,
    pub(crate) counters: Arc<Counters>,
}

/// Why a whole batch failed; every caller of the batch gets it.
#[derive(Clone)]
enum BatchFailure {
    NotLeader(Option<(NodeId, String)>),
    ShuttingDown,
    Raft(String),
}

impl From<BatchFailure> for LogError {
    fn from(failure: BatchFailure) -> LogError {
        match failure {
            BatchFailure::NotLeader(leader_hint) => LogError::NotLeader { leader_hint },
            BatchFailure::ShuttingDown => LogError::ShuttingDown,
            BatchFailure::Raft(message) => LogError::Raft(message),
        }
    }
}

impl Proposer {
    pub(crate) fn spawn(raft: Raft, config: ProposerConfig, observer: ObserverSlot) -> Proposer {
        let (queue, receiver) = mpsc::channel(config.queue_capacity.max(1));
        let counters = Arc::new(Counters::default());
        tokio::spawn(run(raft, config, receiver, counters.clone(), observer));
        Proposer { queue, counters }
    }

    pub(crate) async fn propose(
        &self,
        request_id: RequestId,
        actor: Actor,
        command: Command,
    ) -> Result<Committed, LogError> {
        // The proposer stamps the time when the batch is formed; this is a placeholder.
        let entry = Entry { request_id, actor, at: Timestamp(0), command };
        // An entry that cannot be encoded is refused here, alone, before it can spoil a batch.
        let encoded_len = codec::encode_entry(&entry)?.len();
        let (reply, receiver) = oneshot::channel();
        self.queue
            .send(Proposal { entry, encoded_len, queued_at: std::time::Instant::now(), reply })
            .await
            .map_err(|_| LogError::ShuttingDown)?;
        receiver.await.map_err(|_| LogError::ShuttingDown)?
    }
}

async fn run(
    raft: Raft,
    config: ProposerConfig,
    mut queue: mpsc::Receiver<Proposal>,
    counters: Arc<Counters>,
    observer: ObserverSlot,
) {
    let in_flight = Arc::new(Semaphore::new(config.max_batches_in_flight.max(1)));
    while let Some(first) = queue.recv().await {
        // Waiting for a slot before gathering is what lets the next batch grow while the
        // previous ones replicate.
        let Ok(permit) = in_flight.clone().acquire_owned().await else { return };
        let mut bytes = first.encoded_len;
        let first_queued_at = first.queued_at;
        let mut batch = vec![first];
        gather(&mut queue, &mut batch, &mut bytes, &config).await;
        let at = now();
        // The oldest command of the batch: its wait is the one the latency reports.
        let oldest = first_queued_at;
        let mut replies = Vec::with_capacity(batch.len());
        let mut entries = Vec::with_capacity(batch.len());
        for mut proposal in batch {
            proposal.entry.at = at;
            entries.push(proposal.entry);
            replies.push(proposal.reply);
        }
        counters.batches.fetch_add(1, Ordering::Relaxed);
        counters.commands.fetch_add(entries.len() as u64, Ordering::Relaxed);
        let raft = raft.clone();
        let counters = counters.clone();
        let observer = observer.clone();
        tokio::spawn(async move {
            let batch = match Batch::encode(entries) {
                Ok(batch) => batch,
                Err(error) => {
                    drop(permit);
                    // Each entry encoded alone when proposed; a batch of them failing is a bug
                    // in the codec, reported to every caller rather than written to the log.
                    tracing::error!(%error, "a batch of encodable entries failed to encode");
                    for reply in replies {
                        let _ =
                            reply.send(Err(LogError::Raft(format!("batch not encoded: {error}"))));
                    }
                    return;
                }
            };
            let result = raft.client_write(batch).await;
            drop(permit);
            match result {
                Ok(response) => {
                    observer.record(Observation::Commit {
                        commands: replies.len(),
                        took: oldest.elapsed(),
                    });
                    let index = response.data.index;
                    let mut next_seq = 0u32;
                    for (reply, outcome) in replies.into_iter().zip(response.data.outcomes) {
                        let first_event = Cursor::new(index, next_seq);
                        next_seq += u32::try_from(outcome.events().len()).unwrap_or(u32::MAX);
                        let _ = reply.send(Ok(Committed { index, first_event, outcome }));
                    }
                }
                Err(error) => {
                    counters.failed_batches.fetch_add(1, Ordering::Relaxed);
                    let failure = classify(error);
                    for reply in replies {
                        let _ = reply.send(Err(failure.clone().into()));
                    }
                }
            }
        });
    }
}

async fn gather(
    queue: &mut mpsc::Receiver<Proposal>,
    batch: &mut Vec<Proposal>,
    bytes: &mut usize,
    config: &ProposerConfig,
) {
    let deadline = tokio::time::Instant::now() + config.linger;
    while batch.len() < config.max_batch_commands && *bytes < config.max_batch_bytes {
        let next = match queue.try_recv() {
            Ok(proposal) => proposal,
            Err(_) if config.linger.is_zero() => return,
            Err(_) => match tokio::time::timeout_at(deadline, queue.recv()).await {
                Ok(Some(proposal)) => proposal,
                Ok(None) | Err(_) => return,
            },
        };
        *bytes += next.encoded_len;
        batch.push(next);
    }
}

fn now() -> Timestamp {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    Timestamp(u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX))
}

fn classify(
    error: RaftError<NodeId, ClientWriteError<NodeId, openraft::BasicNode>>,
) -> BatchFailure {
    match error {
        RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => {
            match LogError::forward_to(forward) {
                LogError::NotLeader { leader_hint } => BatchFailure::NotLeader(leader_hint),
                other => BatchFailure::Raft(other.to_string()),
            }
        }
        RaftError::APIError(ClientWriteError::ChangeMembershipError(error)) => {
            BatchFailure::Raft(error.to_string())
        }
        RaftError::Fatal(openraft::error::Fatal::Stopped) => BatchFailure::ShuttingDown,
        RaftError::Fatal(fatal) => BatchFailure::Raft(fatal.to_string()),
    }
}
