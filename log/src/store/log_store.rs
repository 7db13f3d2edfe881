//! The Raft log and vote in sled, durable before openraft hears they are persisted.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};

use super::{io_error, postcard_decode, postcard_encode, read_error, write_error, StoreError};
use crate::observe::{Observation, ObserverSlot};
use crate::typ::{Entry, LogId, StorageError, StorageIOError, Vote};
use crate::TypeConfig;

const VOTE_KEY: &[u8] = b"vote";
const COMMITTED_KEY: &[u8] = b"committed";
const LAST_PURGED_KEY: &[u8] = b"last_purged";

/// The Raft log (tree `log`, keyed by big-endian index) and Raft's own metadata (tree
/// `raft_meta`). Cheap to clone; clones share the database.
#[derive(Clone)]
pub struct LogStore {
    db: sled::Db,
    log: sled::Tree,
    meta: sled::Tree,
    committed: CommittedIndex,
    observer: ObserverSlot,
}

/// The last committed index openraft reported, for status pages.
#[derive(Clone, Debug, Default)]
pub struct CommittedIndex(Arc<AtomicU64>);

impl CommittedIndex {
    /// `None` until something is committed.
    pub fn get(&self) -> Option<u64> {
        self.0.load(Ordering::Relaxed).checked_sub(1)
    }

    fn set(&self, index: u64) {
        self.0.store(index.saturating_add(1), Ordering::Relaxed);
    }
}

impl LogStore {
    pub(super) fn open(db: sled::Db, observer: ObserverSlot) -> Result<LogStore, StoreError> {
        Ok(LogStore {
            log: db.open_tree("log")?,
            meta: db.open_tree("raft_meta")?,
            db,
            committed: CommittedIndex::default(),
            observer,
        })
    }

    pub fn committed_index(&self) -> CommittedIndex {
        self.committed.clone()
    }

    pub(crate) fn observer_slot(&self) -> ObserverSlot {
        self.observer.clone()
    }

    // The error type is openraft's, returned as is by every storage method.
    #[allow(clippy::result_large_err)]
    fn read_meta<T: serde::de::DeserializeOwned>(
        &self,
        key: &'static [u8],
        what: &'static str,
    ) -> Result<Option<T>, StorageError> {
        let Some(bytes) = self.meta.get(key).map_err(read_error)? else { return Ok(None) };
        postcard_decode(what, &bytes).map(Some).map_err(read_error)
    }

    /// One fsync for everything written so far, whichever tree.
    async fn flush(&self) -> Result<(), std::io::Error> {
        self.db.flush_async().await.map(drop).map_err(io_error)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(index) => *index,
            Bound::Excluded(index) => index.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let mut entries = Vec::new();
        for row in self.log.range(start.to_be_bytes()..) {
            let (key, value) = row.map_err(|error| StorageIOError::read_logs(&io_error(error)))?;
            let index = u64::from_be_bytes(
                key.as_ref()
                    .try_into()
                    .expect("log keys are the 8-byte big-endian indexes append writes"),
            );
            if !range.contains(&index) {
                break;
            }
            let entry: Entry = postcard_decode("log entry", &value)
                .map_err(|error| StorageIOError::read_log_at_index(index, &io_error(error)))?;
            entries.push(entry);
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id: Option<LogId> =
            self.read_meta(LAST_PURGED_KEY, "last purged log id")?;
        let last_log_id = match self.log.last().map_err(read_error)? {
            Some((_, value)) => {
                let entry: Entry = postcard_decode("log entry", &value).map_err(read_error)?;
                Some(entry.log_id)
            }
            None => last_purged_log_id,
        };
        Ok(LogState { last_purged_log_id, last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let write =
            |error: sled::Error| write_error(|error| StorageIOError::write_vote(error), error);
        self.meta.insert(VOTE_KEY, postcard_encode(vote)).map_err(write)?;
        // A vote granted and then forgotten in a crash lets this master vote twice in a term.
        self.flush().await.map_err(|error| StorageIOError::write_vote(&error).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.read_meta(VOTE_KEY, "vote")
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Not flushed: a stale committed index after a crash only delays re-applying entries
        // until the leader confirms them again.
        let write = |error: sled::Error| write_error(|error| StorageIOError::write(error), error);
        if let Some(log_id) = committed {
            self.committed.set(log_id.index);
        }
        match committed {
            Some(log_id) => self.meta.insert(COMMITTED_KEY, postcard_encode(&log_id)).map(drop),
            None => self.meta.remove(COMMITTED_KEY).map(drop),
        }
        .map_err(write)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        self.read_meta(COMMITTED_KEY, "committed log id")
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let appending = std::time::Instant::now();
        let mut batch = sled::Batch::default();
        for entry in entries {
            batch.insert(&entry.log_id.index.to_be_bytes(), postcard_encode(&entry));
        }
        let applied = self.log.apply_batch(batch);
        self.observer.record(Observation::Append { took: appending.elapsed() });
        if let Err(error) = applied {
            let error = io_error(error);
            let storage_error = StorageIOError::write_logs(&error).into();
            callback.log_io_completed(Err(error));
            return Err(storage_error);
        }
        // Group commit: one fsync for every entry of this append, however many batches of
        // commands they carry; only then may openraft count them towards a quorum.
        let flushing = std::time::Instant::now();
        let flushed = self.flush().await;
        self.observer.record(Observation::Flush { took: flushing.elapsed() });
        callback.log_io_completed(flushed);
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let write =
            |error: sled::Error| write_error(|error| StorageIOError::write_logs(error), error);
        let mut batch = sled::Batch::default();
        for key in self.log.range(log_id.index.to_be_bytes()..).keys() {
            batch.remove(key.map_err(write)?);
        }
        self.log.apply_batch(batch).map_err(write)?;
        // A conflicting suffix that came back after a crash would be offered to readers as if
        // it were this term's log.
        self.flush().await.map_err(|error| StorageIOError::write_logs(&error).into())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let write =
            |error: sled::Error| write_error(|error| StorageIOError::write_logs(error), error);
        // Recorded before the entries go, so the log state never points below a hole.
        self.meta.insert(LAST_PURGED_KEY, postcard_encode(&log_id)).map_err(write)?;
        let mut batch = sled::Batch::default();
        for key in self.log.range(..=log_id.index.to_be_bytes()).keys() {
            batch.remove(key.map_err(write)?);
        }
        self.log.apply_batch(batch).map_err(write)
    }
}
