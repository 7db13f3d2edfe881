//! The state machine: committed entries applied to `ClusterState`, snapshots of it, and the
//! journal rows every applied entry leaves behind.

use std::io::Cursor as IoCursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, TryLockError};

use corral_state::model::Settings;
use corral_state::ClusterState;
use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder, SnapshotMeta, StoredMembership};
use tokio::runtime::RuntimeFlavor;
use tokio::sync::watch;

use super::{io_error, postcard_decode, postcard_encode, StoreError};
use crate::journal::{ChainHead, Journal, JournalBatch};
use crate::observe::{Observation, ObserverSlot};
use crate::typ::{Entry, LogId, Snapshot, StorageError, StorageIOError};
use crate::{BatchResponse, TypeConfig};

const CURRENT_SNAPSHOT_KEY: &[u8] = b"current";

/// What the log has made of this master so far.
#[derive(Clone, Debug)]
pub struct Applied {
    pub state: ClusterState,
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership<u64, openraft::BasicNode>,
    /// The journal's hash chain as of `last_applied`, read with it: what a snapshot carries.
    pub chain: ChainHead,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<u64, openraft::BasicNode>,
    data: Vec<u8>,
}

struct Shared {
    db: sled::Db,
    snapshots: sled::Tree,
    journal: Journal,
    applied: RwLock<Applied>,
    /// The last applied log index, for subscribers waiting on new events.
    applied_index: watch::Sender<u64>,
    snapshots_built: AtomicU64,
    /// What the state was before the first entry: where a replay of the journal starts.
    initial_settings: Settings,
    observer: ObserverSlot,
}

/// Cheap to clone; clones share the state.
#[derive(Clone)]
pub struct StateMachineStore {
    shared: Arc<Shared>,
}

impl StateMachineStore {
    pub(super) fn open(
        db: sled::Db,
        journal: Journal,
        settings: Settings,
        observer: ObserverSlot,
    ) -> Result<StateMachineStore, StoreError> {
        let snapshots = db.open_tree("snapshot")?;
        let applied = match snapshots.get(CURRENT_SNAPSHOT_KEY)? {
            Some(bytes) => {
                let stored: StoredSnapshot = postcard_decode("snapshot", &bytes)?;
                let state = ClusterState::from_snapshot(&stored.data).map_err(|error| {
                    StoreError::Corrupt { what: "snapshot state", reason: error.to_string() }
                })?;
                let index = stored.meta.last_log_id.map_or(0, |log_id| log_id.index);
                Applied {
                    state,
                    last_applied: stored.meta.last_log_id,
                    membership: stored.meta.last_membership,
                    chain: journal.chain_at(index)?,
                }
            }
            None => Applied {
                state: ClusterState::new(settings.clone()),
                last_applied: None,
                membership: StoredMembership::default(),
                chain: journal.chain_at(0)?,
            },
        };
        let last_index = applied.last_applied.map_or(0, |log_id| log_id.index);
        Ok(StateMachineStore {
            shared: Arc::new(Shared {
                db,
                snapshots,
                journal,
                applied: RwLock::new(applied),
                applied_index: watch::Sender::new(last_index),
                snapshots_built: AtomicU64::new(0),
                initial_settings: settings,
                observer,
            }),
        })
    }

    /// The state before the first entry of the log; replaying the journal from its first
    /// index onto it gives the state at any later index.
    pub fn initial_state(&self) -> ClusterState {
        ClusterState::new(self.shared.initial_settings.clone())
    }

    /// Read access to the applied state; hold it briefly, applying waits for it.
    ///
    /// While a batch is applied (seconds for a command of offers to 10,000 agents) the lock
    /// is taken; a reader on a runtime worker that simply blocked would take the worker with
    /// it, and two such readers froze a master's whole runtime, Raft's answers to the leader
    /// included, until the leader was voted out (the cluster bench's leader changed every
    /// few seconds at 10,000 agents). So a reader that has to wait gives its worker's other
    /// tasks to another thread first.
    pub fn read(&self) -> RwLockReadGuard<'_, Applied> {
        match self.shared.applied.try_read() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => off_the_workers(|| {
                self.shared.applied.read().unwrap_or_else(PoisonError::into_inner)
            }),
        }
    }

    pub fn journal(&self) -> &Journal {
        &self.shared.journal
    }

    /// Follows the last applied log index.
    pub fn applied_index(&self) -> watch::Receiver<u64> {
        self.shared.applied_index.subscribe()
    }

    /// Records `data` as the current snapshot at `meta`: a backup seeding a new data
    /// directory, before any Raft runs on it (`backup::restore`).
    pub(crate) fn seed_snapshot(
        &self,
        meta: SnapshotMeta<u64, openraft::BasicNode>,
        data: Vec<u8>,
    ) -> Result<(), sled::Error> {
        self.persist_snapshot(&StoredSnapshot { meta, data })
    }

    /// Not sled's `flush_async`: its pool job holds a handle on the database until the job
    /// is dropped, after the flush has reported (read in sled's source), and a stopped master
    /// should hold nothing once `LogNode::shutdown` returns. Here the handle is gone before
    /// the flush reports.
    pub(crate) async fn flush(&self) -> Result<usize, sled::Error> {
        let db = self.shared.db.clone();
        tokio::task::spawn_blocking(move || db.flush()).await.expect("a sled flush does not panic")
    }

    fn persist_snapshot(&self, stored: &StoredSnapshot) -> Result<(), sled::Error> {
        self.shared.snapshots.insert(CURRENT_SNAPSHOT_KEY, postcard_encode(stored)).map(drop)
    }
}

/// Applies `entries` and journals them, under the write lock; their answers and the last
/// index applied.
#[allow(clippy::result_large_err, reason = "openraft's StorageError, which `apply` returns")]
fn apply_entries(
    shared: &Shared,
    entries: Vec<Entry>,
) -> Result<(Vec<BatchResponse>, u64), StorageError> {
    let mut responses = Vec::with_capacity(entries.len());
    let mut applied = shared.applied.write().unwrap_or_else(PoisonError::into_inner);
    let mut journal = JournalBatch::new(applied.chain, &shared.journal);
    for entry in entries {
        let index = entry.log_id.index;
        applied.last_applied = Some(entry.log_id);
        match entry.payload {
            EntryPayload::Blank => responses.push(BatchResponse { index, outcomes: Vec::new() }),
            EntryPayload::Normal(batch) => {
                let commands_before = applied.state.applied_commands();
                let outcomes: Vec<_> =
                    batch.entries().iter().map(|command| applied.state.apply(command)).collect();
                // Events that cannot be journaled stop this master (a fatal storage error)
                // rather than leave a gap in every stream.
                journal
                    .record(index, &batch, &outcomes, &applied.state)
                    .map_err(|error| StorageIOError::write_state_machine(&io_error(error)))?;
                shared.journal.offer_checkpoint(index, commands_before, &applied.state);
                responses.push(BatchResponse { index, outcomes });
            }
            EntryPayload::Membership(membership) => {
                applied.membership = StoredMembership::new(Some(entry.log_id), membership);
                responses.push(BatchResponse { index, outcomes: Vec::new() });
            }
        }
    }
    applied.chain = journal.head();
    // Written before the lock is released, so a snapshot built with this chain head never
    // precedes the rows it covers.
    shared
        .journal
        .write(journal)
        .map_err(|error| StorageIOError::write_state_machine(&io_error(error)))?;
    Ok((responses, applied.last_applied.map_or(0, |log_id| log_id.index)))
}

/// Runs `work` (a blocking wait, or long synchronous work) without holding up the other
/// tasks of the runtime worker it is called on: tokio moves them to another thread first.
/// Elsewhere (a blocking thread, a single-threaded runtime, no runtime) it simply runs it.
pub fn off_the_workers<T>(work: impl FnOnce() -> T) -> T {
    let on_workers = tokio::runtime::Handle::try_current()
        .is_ok_and(|runtime| runtime.runtime_flavor() == RuntimeFlavor::MultiThread);
    if on_workers {
        tokio::task::block_in_place(work)
    } else {
        work()
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let started = std::time::Instant::now();
        let (data, last_log_id, last_membership, chain) = {
            let applied = self.read();
            (
                applied.state.snapshot(),
                applied.last_applied,
                applied.membership.clone(),
                applied.chain,
            )
        };
        let built = self.shared.snapshots_built.fetch_add(1, Ordering::Relaxed) + 1;
        // The id carries the journal's chain as of the snapshot: a master that installs it
        // continues the same chain as the others.
        let snapshot_id = match last_log_id {
            Some(log_id) => {
                format!("{}-{}-{built}-{}", log_id.leader_id, log_id.index, chain.to_tag())
            }
            None => format!("none-{built}-{}", chain.to_tag()),
        };
        let meta = SnapshotMeta { last_log_id, last_membership, snapshot_id };
        let write = |error: sled::Error| -> StorageError {
            StorageIOError::write_snapshot(Some(meta.signature()), &io_error(error)).into()
        };
        // The journal rows behind this snapshot must be on disk before the snapshot is:
        // once it is, openraft may purge the Raft log they were derived from.
        self.shared.db.flush_async().await.map_err(write)?;
        let data = data.map_err(|error| -> StorageError {
            StorageIOError::write_snapshot(Some(meta.signature()), &io_error(error)).into()
        })?;
        let stored = StoredSnapshot { meta: meta.clone(), data };
        self.persist_snapshot(&stored).map_err(write)?;
        self.shared.db.flush_async().await.map_err(write)?;
        self.shared.observer.record(Observation::SnapshotBuild {
            bytes: stored.data.len() as u64,
            took: started.elapsed(),
        });
        Ok(Snapshot { meta, snapshot: Box::new(IoCursor::new(stored.data)) })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = StateMachineStore;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId>, StoredMembership<u64, openraft::BasicNode>), StorageError> {
        let applied = self.read();
        Ok((applied.last_applied, applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<BatchResponse>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let started = std::time::Instant::now();
        let entries: Vec<Entry> = entries.into_iter().collect();
        let shared = Arc::clone(&self.shared);
        // A batch can take seconds to apply: on a blocking thread, so that Raft's own tasks
        // (answering the leader's appends) keep the runtime's workers meanwhile.
        let applied =
            tokio::task::spawn_blocking(move || apply_entries(&shared, entries).map_err(Box::new))
                .await;
        let (responses, last_index) = match applied {
            Ok(applied) => applied.map_err(|error| *error)?,
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(join) => return Err(StorageIOError::write_state_machine(&io_error(join)).into()),
        };
        // After the journal rows exist, so a woken subscriber finds them.
        self.shared.applied_index.send_replace(last_index);
        self.shared
            .observer
            .record(Observation::Apply { entries: responses.len(), took: started.elapsed() });
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<IoCursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(IoCursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, openraft::BasicNode>,
        snapshot: Box<IoCursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let signature = Some(meta.signature());
        let read = |error: std::io::Error| -> StorageError {
            StorageIOError::read_snapshot(signature.clone(), &error).into()
        };
        let write = |error: std::io::Error| -> StorageError {
            StorageIOError::write_snapshot(signature.clone(), &error).into()
        };
        let started = std::time::Instant::now();
        let data = snapshot.into_inner();
        let bytes = data.len() as u64;
        let state = ClusterState::from_snapshot(&data).map_err(io_error).map_err(read)?;
        let stored = StoredSnapshot { meta: meta.clone(), data };
        self.persist_snapshot(&stored).map_err(io_error).map_err(write)?;
        let snapshot_index = meta.last_log_id.map_or(0, |log_id| log_id.index);
        let chain = ChainHead::from_snapshot_id(&meta.snapshot_id).unwrap_or_else(|| {
            tracing::warn!(
                snapshot = %meta.snapshot_id,
                "the installed snapshot carries no journal chain (made by an older build): this master's chain restarts from zeroes"
            );
            ChainHead { index: snapshot_index, hash: ChainHead::GENESIS.hash }
        });
        self.shared
            .journal
            .restart_after(snapshot_index, chain, &state)
            .map_err(io_error)
            .map_err(write)?;
        self.shared.db.flush_async().await.map_err(io_error).map_err(write)?;
        {
            let mut applied = self.shared.applied.write().unwrap_or_else(PoisonError::into_inner);
            *applied = Applied {
                state,
                last_applied: meta.last_log_id,
                membership: meta.last_membership.clone(),
                chain,
            };
        }
        self.shared.applied_index.send_replace(snapshot_index);
        self.shared
            .observer
            .record(Observation::SnapshotInstall { bytes, took: started.elapsed() });
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let read = |error: std::io::Error| -> StorageError {
            StorageIOError::read_snapshot(None, &error).into()
        };
        let Some(bytes) =
            self.shared.snapshots.get(CURRENT_SNAPSHOT_KEY).map_err(io_error).map_err(read)?
        else {
            return Ok(None);
        };
        let stored: StoredSnapshot =
            postcard_decode("snapshot", &bytes).map_err(io_error).map_err(read)?;
        Ok(Some(Snapshot { meta: stored.meta, snapshot: Box::new(IoCursor::new(stored.data)) }))
    }
}
