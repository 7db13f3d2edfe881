//! The journal: every committed command and the events it produced, by log index.
//!
//! Raft compacts its own log behind snapshots; the journal is what replay, audit and event
//! subscriptions read, so it is kept apart (its own sled trees) and trimmed only by a
//! [`JournalRetention`] policy. Rows are written when an entry is applied; they need no
//! flush of their own because the Raft log they are derived from is durable and is
//! re-applied on restart, and the journal is flushed before any snapshot lets Raft purge
//! that log.

use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use corral_state::{codec, ClusterState, CodecError, Cursor, Entry, Event, Timestamp};

use crate::Batch;

/// How much of the journal to keep. The default keeps everything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JournalRetention {
    /// Drop entries stamped longer than this before the newest entry (leader time, so every
    /// master trims at the same log position).
    pub max_age: Option<Duration>,
    /// Keep at most this many log indexes.
    pub max_indexes: Option<u64>,
}

impl JournalRetention {
    pub const KEEP_ALL: JournalRetention = JournalRetention { max_age: None, max_indexes: None };

    fn keeps_everything(&self) -> bool {
        self.max_age.is_none() && self.max_indexes.is_none()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal storage failed: {0}")]
    Storage(#[from] sled::Error),
    #[error("journal row at index {index} does not decode: {source}")]
    Corrupt { index: u64, source: CodecError },
}

const LOST_THROUGH_KEY: &[u8] = b"lost_through";

/// Rows removed from the journal in one retention pass, at most; the rest waits for the next
/// applied entry so that applying never stalls on a large trim.
const RETENTION_PASS_LIMIT: usize = 4096;

/// Handle to the journal trees; cheap to clone.
#[derive(Clone)]
pub struct Journal {
    /// index → leader timestamp (8 bytes, big endian) followed by the encoded batch.
    commands: sled::Tree,
    /// index → encoded events; only indexes that produced events have a row.
    events: sled::Tree,
    meta: sled::Tree,
    retention: JournalRetention,
    /// The greatest cursor of an event no longer in the journal: a subscriber at or after it
    /// has missed nothing.
    lost_through: Arc<Mutex<Option<Cursor>>>,
}

/// The journal rows produced by applying some Raft entries, written together.
#[derive(Default)]
pub(crate) struct JournalBatch {
    commands: sled::Batch,
    events: sled::Batch,
    newest: Option<(u64, Timestamp)>,
}

impl JournalBatch {
    pub(crate) fn record(
        &mut self,
        index: u64,
        batch: &Batch,
        events: &[Event],
    ) -> Result<(), codec::CodecError> {
        let at = batch.entries().iter().map(|entry| entry.at).max().unwrap_or_default();
        let encoded = batch.encoded();
        let mut row = Vec::with_capacity(8 + encoded.len());
        row.extend_from_slice(&at.0.to_be_bytes());
        row.extend_from_slice(encoded);
        self.commands.insert(&index.to_be_bytes(), row);
        if !events.is_empty() {
            self.events.insert(&index.to_be_bytes(), codec::encode_events(events)?);
        }
        self.newest = Some((index, at));
        Ok(())
    }
}

impl Journal {
    pub(crate) fn open(
        db: &sled::Db,
        retention: JournalRetention,
    ) -> Result<Journal, JournalError> {
        let meta = db.open_tree("journal_meta")?;
        let lost_through = meta.get(LOST_THROUGH_KEY)?.map(|bytes| decode_cursor(&bytes));
        Ok(Journal {
            commands: db.open_tree("journal")?,
            events: db.open_tree("journal_events")?,
            meta,
            retention,
            lost_through: Arc::new(Mutex::new(lost_through)),
        })
    }

    pub(crate) fn write(&self, batch: JournalBatch) -> Result<(), JournalError> {
        let Some((newest_index, newest_at)) = batch.newest else { return Ok(()) };
        self.commands.apply_batch(batch.commands)?;
        self.events.apply_batch(batch.events)?;
        if !self.retention.keeps_everything() {
            self.enforce_retention(newest_index, newest_at)?;
        }
        Ok(())
    }

    /// Events after `lost_through()` are all still here.
    pub fn lost_through(&self) -> Option<Cursor> {
        *self.lost_through.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The commands journaled at indexes in `range`, in log order.
    pub fn commands(
        &self,
        range: RangeInclusive<u64>,
    ) -> impl Iterator<Item = Result<(u64, Timestamp, Vec<Entry>), JournalError>> + '_ {
        let (start, end) = (range.start().to_be_bytes(), range.end().to_be_bytes());
        self.commands.range(start..=end).map(|row| {
            let (key, value) = row?;
            let index = decode_index(&key);
            if value.len() < 8 {
                return Err(JournalError::Corrupt { index, source: CodecError::Truncated });
            }
            let at = Timestamp(u64::from_be_bytes(value[..8].try_into().unwrap_or_default()));
            let entries = codec::decode_entries(&value[8..])
                .map_err(|source| JournalError::Corrupt { index, source })?;
            Ok((index, at, entries))
        })
    }

    /// Applies the journaled commands in `range` to `state`, in log order, and returns how
    /// many were applied. Rows are read and decoded on a helper thread while this one
    /// applies: replay is what `corral replay` and audits wait for.
    pub fn replay(
        &self,
        state: &mut ClusterState,
        range: RangeInclusive<u64>,
    ) -> Result<u64, JournalError> {
        let (sender, receiver) =
            std::sync::mpsc::sync_channel::<Result<Vec<Entry>, JournalError>>(256);
        std::thread::scope(|scope| {
            scope.spawn(move || {
                for row in self.commands(range) {
                    let failed = row.is_err();
                    if sender.send(row.map(|(_, _, entries)| entries)).is_err() || failed {
                        return;
                    }
                }
            });
            let mut applied = 0u64;
            for entries in receiver {
                let entries = entries?;
                for entry in &entries {
                    state.apply(entry);
                }
                applied += entries.len() as u64;
            }
            Ok(applied)
        })
    }

    /// Up to `max_rows` rows of events at indexes in `range`, in log order.
    pub fn events(
        &self,
        range: RangeInclusive<u64>,
        max_rows: usize,
    ) -> Result<Vec<(u64, Vec<Event>)>, JournalError> {
        let (start, end) = (range.start().to_be_bytes(), range.end().to_be_bytes());
        let mut rows = Vec::new();
        for row in self.events.range(start..=end).take(max_rows) {
            let (key, value) = row?;
            let index = decode_index(&key);
            let events = codec::decode_events(&value)
                .map_err(|source| JournalError::Corrupt { index, source })?;
            rows.push((index, events));
        }
        Ok(rows)
    }

    /// The first and last journaled command indexes.
    pub fn bounds(&self) -> Result<Option<(u64, u64)>, JournalError> {
        let first = self.commands.first()?.map(|(key, _)| decode_index(&key));
        let last = self.commands.last()?.map(|(key, _)| decode_index(&key));
        Ok(first.zip(last))
    }

    pub fn len(&self) -> usize {
        self.commands.len()
    }

    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    /// A snapshot installed from another master skips the entries between this master's last
    /// applied index and the snapshot's: the journal restarts after the snapshot and says
    /// everything up to it is unavailable here.
    pub(crate) fn restart_after(&self, snapshot_index: u64) -> Result<(), JournalError> {
        let lost = Cursor::new(snapshot_index, u32::MAX);
        self.record_lost_through(lost)?;
        self.commands.clear()?;
        self.events.clear()?;
        Ok(())
    }

    fn record_lost_through(&self, cursor: Cursor) -> Result<(), JournalError> {
        let mut lost_through = self.lost_through.lock().unwrap_or_else(PoisonError::into_inner);
        if lost_through.is_some_and(|current| current >= cursor) {
            return Ok(());
        }
        // Persisted before any row goes, so a crash never shows a gap as if it were history.
        self.meta.insert(LOST_THROUGH_KEY, encode_cursor(cursor).to_vec())?;
        *lost_through = Some(cursor);
        Ok(())
    }

    fn enforce_retention(
        &self,
        newest_index: u64,
        newest_at: Timestamp,
    ) -> Result<(), JournalError> {
        let oldest_kept_index = self
            .retention
            .max_indexes
            .map_or(0, |max_indexes| newest_index.saturating_sub(max_indexes.saturating_sub(1)));
        let oldest_kept_at = self.retention.max_age.map_or(0, |max_age| {
            newest_at.0.saturating_sub(u64::try_from(max_age.as_nanos()).unwrap_or(u64::MAX))
        });
        let mut doomed = Vec::new();
        for row in self.commands.iter().take(RETENTION_PASS_LIMIT) {
            let (key, value) = row?;
            let index = decode_index(&key);
            let at = value
                .get(..8)
                .map_or(0, |at| u64::from_be_bytes(at.try_into().unwrap_or_default()));
            if index >= oldest_kept_index && at >= oldest_kept_at {
                break;
            }
            doomed.push(index);
        }
        let Some(&last_doomed) = doomed.last() else { return Ok(()) };
        let last_lost_event =
            self.events.range(..=last_doomed.to_be_bytes()).next_back().transpose()?.map(
                |(key, value)| {
                    let index = decode_index(&key);
                    let count = codec::decode_events(&value).map_or(u32::MAX, |events| {
                        u32::try_from(events.len().saturating_sub(1)).unwrap_or(u32::MAX)
                    });
                    Cursor::new(index, count)
                },
            );
        if let Some(cursor) = last_lost_event {
            self.record_lost_through(cursor)?;
        }
        let mut commands = sled::Batch::default();
        let mut events = sled::Batch::default();
        for index in doomed {
            commands.remove(&index.to_be_bytes());
            events.remove(&index.to_be_bytes());
        }
        self.commands.apply_batch(commands)?;
        self.events.apply_batch(events)?;
        Ok(())
    }
}

fn decode_index(key: &[u8]) -> u64 {
    u64::from_be_bytes(key.try_into().unwrap_or_default())
}

fn encode_cursor(cursor: Cursor) -> [u8; 12] {
    let mut bytes = [0; 12];
    bytes[..8].copy_from_slice(&cursor.index.to_be_bytes());
    bytes[8..].copy_from_slice(&cursor.seq.to_be_bytes());
    bytes
}

fn decode_cursor(bytes: &[u8]) -> Cursor {
    let index =
        bytes.get(..8).map_or(0, |index| u64::from_be_bytes(index.try_into().unwrap_or_default()));
    let seq =
        bytes.get(8..12).map_or(0, |seq| u32::from_be_bytes(seq.try_into().unwrap_or_default()));
    Cursor::new(index, seq)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use corral_state::{Actor, Command, Cursor, Entry, Event, RequestId, Timestamp};

    use super::{Journal, JournalBatch, JournalRetention};
    use crate::Batch;

    fn open(retention: JournalRetention) -> (tempfile::TempDir, Journal) {
        let directory = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(directory.path()).open().unwrap();
        (directory, Journal::open(&db, retention).unwrap())
    }

    fn write(journal: &Journal, index: u64, at_secs: u64, event_count: usize) {
        let command = Command::AgentHeartbeat { agent_id: "agent-1".into() };
        let at = Timestamp::from_secs(at_secs);
        let entry = Entry {
            request_id: RequestId::new(format!("r-{index}")),
            actor: Actor::Leader,
            at,
            command,
        };
        let event = Event::AgentRemoved { agent_id: "agent-1".into(), by_operator: false };
        let mut batch = JournalBatch::default();
        let entries = Batch::encode(vec![entry]).expect("a test entry encodes");
        batch.record(index, &entries, &vec![event; event_count]).expect("test events encode");
        journal.write(batch).unwrap();
    }

    #[test]
    fn keeping_everything_loses_nothing() {
        let (_directory, journal) = open(JournalRetention::KEEP_ALL);
        (1..=50).for_each(|index| write(&journal, index, index, 1));
        assert_eq!(journal.len(), 50);
        assert_eq!(journal.lost_through(), None);
        assert_eq!(journal.bounds().unwrap(), Some((1, 50)));
    }

    #[test]
    fn trimming_by_count_records_the_last_event_lost() {
        let (_directory, journal) = open(JournalRetention { max_age: None, max_indexes: Some(10) });
        (1..=30)
            .for_each(|index| write(&journal, index, index, if index % 2 == 0 { 3 } else { 0 }));
        assert_eq!(journal.bounds().unwrap(), Some((21, 30)));
        // Index 20 was the last trimmed index with events; it had three.
        assert_eq!(journal.lost_through(), Some(Cursor::new(20, 2)));
        let rows = journal.events(0..=u64::MAX, 100).unwrap();
        assert_eq!(rows.first().map(|(index, _)| *index), Some(22));
    }

    #[test]
    fn trimming_by_age_follows_the_entries_own_clock() {
        let (_directory, journal) =
            open(JournalRetention { max_age: Some(Duration::from_secs(5)), max_indexes: None });
        (1..=20).for_each(|index| write(&journal, index, 100 + index, 1));
        assert_eq!(journal.bounds().unwrap(), Some((15, 20)));
        assert_eq!(journal.lost_through(), Some(Cursor::new(14, 0)));
    }

    #[test]
    fn replay_applies_every_journaled_command() {
        let (_directory, journal) = open(JournalRetention::KEEP_ALL);
        (1..=25).for_each(|index| write(&journal, index, index, 0));
        let mut state = corral_state::ClusterState::default();
        assert_eq!(journal.replay(&mut state, 0..=u64::MAX).unwrap(), 25);
        assert_eq!(state.applied_commands(), 25);
    }
}
