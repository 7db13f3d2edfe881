//! The journal: every committed command and the events it produced, by log index.
//!
//! Raft compacts its own log behind snapshots; the journal is what replay, audit and event
//! subscriptions read, so it is kept apart (its own sled trees) and trimmed only by a
//! [`JournalRetention`] policy. Rows are written when an entry is applied; they need no
//! flush of their own because the Raft log they are derived from is durable and is
//! re-applied on restart, and the journal is flushed before any snapshot lets Raft purge
//! that log and when the master stops (`LogNode::shutdown`). A killed master's journal may
//! lack the rows applied since the last flush until it restarts.
//!
//! Beside each row, written in the same pass: its link in the hash chain ([`chain`], tree
//! `journal_chain`), each command's verdict and event count (`journal_verdicts`), and its
//! keys in the entity index ([`index`], `journal_entities`), each with the fingerprint of
//! what a diff compares of that entity right after the row. Then a marker: after a crash,
//! rows past it were cut short and are dropped when the journal opens. Every so many commands a
//! checkpoint of the whole state is written (`journal_checkpoints`, [`checkpoint`]), so the
//! state at any index is a checkpoint plus a short replay ([`audit`]).
//!
//! Upgrade: a data directory journaled by an older build has rows but no chain. Its chain
//! starts after its last row (recorded as the chain's base, `journal_meta/chain_base`), and
//! audit queries before that answer "too old" naming the first audited index.

pub mod audit;
mod chain;
mod checkpoint;
mod index;

pub use chain::ChainHead;
pub use checkpoint::CheckpointPolicy;

use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use corral_state::{
    codec, ClusterState, CodecError, Cursor, Entity, Entry, Event, Outcome, Timestamp, Verdict,
};

use crate::Batch;
use checkpoint::Checkpoints;

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
    #[error("journal {what} at index {index} does not decode: {reason}")]
    CorruptAudit { what: &'static str, index: u64, reason: String },
}

const LOST_THROUGH_KEY: &[u8] = b"lost_through";
/// The newest index whose rows were all written (see `Journal::write`). Absent in a journal
/// written by an older build, whose rows are all taken as whole.
const JOURNALED_THROUGH_KEY: &[u8] = b"journaled_through";
/// The chain's base: rows at or before its index are not in the chain, the entity index or
/// the verdicts (trimmed, before an installed snapshot, or journaled by an older build).
const CHAIN_BASE_KEY: &[u8] = b"chain_base";
/// The last index whose row is gone or was never audited: state and history before it
/// cannot be rebuilt here. Absent while the journal holds every entry from the first.
const TRIMMED_THROUGH_KEY: &[u8] = b"trimmed_through";
/// The index the fingerprints in `journal_fingerprint_base` answer for (see
/// `Journal::restart_after`). Absent while there are none.
const FINGERPRINT_BASE_KEY: &[u8] = b"fingerprint_base";
/// Version byte of a `journal_verdicts` row.
const VERDICTS_VERSION: u8 = 1;

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
    /// index → the row's chain hash (32 bytes).
    chain: sled::Tree,
    /// index → each command's verdict and event count, in batch order.
    verdicts: sled::Tree,
    /// (entity, index) → the entity's fingerprint right after it: see [`index`].
    entities: sled::Tree,
    /// Entity index prefix → the entity's fingerprint at the journal's restart point, for
    /// every entity the state had there: what a diff reads for an entity no row after the
    /// restart has named yet.
    fingerprint_base: sled::Tree,
    checkpoints: Checkpoints,
    retention: JournalRetention,
    /// The greatest cursor of an event no longer in the journal: a subscriber at or after it
    /// has missed nothing.
    lost_through: Arc<Mutex<Option<Cursor>>>,
    bases: Arc<Mutex<Bases>>,
}

/// Where the chain and the audit trail start.
#[derive(Clone, Copy, Debug)]
struct Bases {
    chain: ChainHead,
    trimmed_through: Option<u64>,
}

/// One command's verdict and how many events it produced, as `journal_verdicts` keeps it.
#[derive(serde::Serialize, serde::Deserialize)]
struct Recorded {
    verdict: Verdict,
    events: u32,
}

/// The journal rows produced by applying some Raft entries, written together.
pub(crate) struct JournalBatch {
    commands: sled::Batch,
    events: sled::Batch,
    chain: sled::Batch,
    verdicts: sled::Batch,
    entities: sled::Batch,
    head: ChainHead,
    /// Rows at or before this index are already behind the chain's base: not linked again.
    base_index: u64,
    newest: Option<(u64, Timestamp)>,
}

impl JournalBatch {
    /// The head is the chain as of the entry before the first one recorded.
    pub(crate) fn new(head: ChainHead, journal: &Journal) -> JournalBatch {
        JournalBatch {
            commands: sled::Batch::default(),
            events: sled::Batch::default(),
            chain: sled::Batch::default(),
            verdicts: sled::Batch::default(),
            entities: sled::Batch::default(),
            head,
            base_index: journal.chain_base().index,
            newest: None,
        }
    }

    /// The chain after every row recorded so far.
    pub(crate) fn head(&self) -> ChainHead {
        self.head
    }

    /// `state` is the state right after the row: the entity index keeps the fingerprints
    /// of what the row named.
    pub(crate) fn record(
        &mut self,
        index: u64,
        batch: &Batch,
        outcomes: &[Outcome],
        state: &ClusterState,
    ) -> Result<(), codec::CodecError> {
        let at = batch.entries().iter().map(|entry| entry.at).max().unwrap_or_default();
        let encoded = batch.encoded();
        let mut row = Vec::with_capacity(8 + encoded.len());
        row.extend_from_slice(&at.0.to_be_bytes());
        row.extend_from_slice(encoded);
        let key = index.to_be_bytes();
        let events: Vec<Event> = outcomes.iter().flat_map(|o| o.events()).cloned().collect();
        if !events.is_empty() {
            self.events.insert(&key, codec::encode_events(&events)?);
        }
        if index > self.base_index {
            self.head = self.head.link(index, &row);
            self.chain.insert(&key, &self.head.hash);
            let recorded: Vec<Recorded> = outcomes
                .iter()
                .map(|outcome| Recorded {
                    verdict: Verdict::of(outcome),
                    events: u32::try_from(outcome.events().len()).unwrap_or(u32::MAX),
                })
                .collect();
            let mut value = vec![VERDICTS_VERSION];
            value = postcard::to_extend(&recorded, value)
                .map_err(|error| CodecError::Unencodable(error.to_string()))?;
            self.verdicts.insert(&key, value);
            for entity in entities_of(batch.entries(), &events) {
                let value = match state.fingerprint(&entity) {
                    Some(fingerprint) => {
                        index::encode_fingerprint(&fingerprint).map_err(CodecError::Unencodable)?
                    }
                    None => Vec::new(),
                };
                self.entities.insert(index::key(&entity, index), value);
            }
        }
        self.commands.insert(&key, row);
        self.newest = Some((index, at));
        Ok(())
    }
}

/// Whether a diff compares the entity (and the entity index keeps its fingerprints).
fn state_is_diffed(entity: &Entity) -> bool {
    !matches!(
        entity.kind,
        corral_state::EntityKind::Operator | corral_state::EntityKind::Deployment
    )
}

/// Every entity the commands of one row name or their events concern, once each.
fn entities_of(entries: &[Entry], events: &[Event]) -> std::collections::BTreeSet<Entity> {
    entries
        .iter()
        .flat_map(Entry::entities)
        .chain(events.iter().flat_map(Event::concerns))
        .collect()
}

impl Journal {
    pub(crate) fn open(
        db: &sled::Db,
        retention: JournalRetention,
    ) -> Result<Journal, JournalError> {
        let meta = db.open_tree("journal_meta")?;
        let lost_through = meta.get(LOST_THROUGH_KEY)?.map(|bytes| decode_cursor(&bytes));
        let commands = db.open_tree("journal")?;
        let chain = db.open_tree("journal_chain")?;
        let base = match meta.get(CHAIN_BASE_KEY)? {
            Some(bytes) => ChainHead::decode(&bytes).ok_or_else(|| JournalError::CorruptAudit {
                what: "chain base",
                index: 0,
                reason: format!("{} bytes, expected 40", bytes.len()),
            })?,
            None => {
                // A journal written by an older build has rows but no chain: the chain (and
                // the audit trail) start after its last row.
                let last = commands.last()?.map_or(0, |(key, _)| decode_index(&key));
                let base = ChainHead { index: last, hash: chain::GENESIS };
                meta.insert(CHAIN_BASE_KEY, base.encode().to_vec())?;
                if last > 0 {
                    meta.insert(TRIMMED_THROUGH_KEY, last.to_be_bytes().to_vec())?;
                    tracing::warn!(
                        last_index = last,
                        "this journal was written by an older build: history, state and the hash chain start after index {last}"
                    );
                }
                base
            }
        };
        let trimmed_through = meta.get(TRIMMED_THROUGH_KEY)?.map(|bytes| decode_index(&bytes));
        let journal = Journal {
            commands,
            events: db.open_tree("journal_events")?,
            meta,
            chain,
            verdicts: db.open_tree("journal_verdicts")?,
            entities: db.open_tree("journal_entities")?,
            fingerprint_base: db.open_tree("journal_fingerprint_base")?,
            checkpoints: Checkpoints::open(db)?,
            retention,
            lost_through: Arc::new(Mutex::new(lost_through)),
            bases: Arc::new(Mutex::new(Bases { chain: base, trimmed_through })),
        };
        journal.drop_torn_tail()?;
        Ok(journal)
    }

    /// Rows after the marker were being written when the master stopped (killed between
    /// two trees): some trees have them, some not. They go; applying the entries again from
    /// the Raft log after restart writes them whole. Entity index keys may stay: they are
    /// written again the same.
    fn drop_torn_tail(&self) -> Result<(), JournalError> {
        let Some(through) = self.meta.get(JOURNALED_THROUGH_KEY)?.map(|bytes| decode_index(&bytes))
        else {
            return Ok(());
        };
        let after = (through + 1).to_be_bytes();
        let mut dropped = 0;
        for tree in [&self.commands, &self.events, &self.chain, &self.verdicts] {
            let mut batch = sled::Batch::default();
            for row in tree.range(after..) {
                batch.remove(row?.0);
                dropped += 1;
            }
            tree.apply_batch(batch)?;
        }
        if dropped > 0 {
            tracing::warn!(
                journaled_through = through,
                dropped,
                "the journal's last write was cut short; its rows are written again as the entries are applied"
            );
        }
        Ok(())
    }

    pub(crate) fn write(&self, batch: JournalBatch) -> Result<(), JournalError> {
        let Some((newest_index, newest_at)) = batch.newest else { return Ok(()) };
        // Tree by tree (a transaction over the five trees would hold sled's global write
        // lock for all of them, stalling the Raft log's appends behind big applies), then the
        // marker: sled recovers a prefix of its writes, so after a crash every row at or
        // before the marker is whole, and `open` drops what lies after it.
        self.commands.apply_batch(batch.commands)?;
        self.events.apply_batch(batch.events)?;
        self.chain.apply_batch(batch.chain)?;
        self.verdicts.apply_batch(batch.verdicts)?;
        self.entities.apply_batch(batch.entities)?;
        self.meta.insert(JOURNALED_THROUGH_KEY, newest_index.to_be_bytes().to_vec())?;
        if !self.retention.keeps_everything() {
            self.enforce_retention(newest_index, newest_at)?;
        }
        Ok(())
    }

    /// Rows at or before the base's index are outside the chain and the audit trail.
    pub fn chain_base(&self) -> ChainHead {
        self.bases.lock().unwrap_or_else(PoisonError::into_inner).chain
    }

    /// The last index whose row is gone (or was never audited); `None` while the journal
    /// holds every entry from the first.
    pub fn trimmed_through(&self) -> Option<u64> {
        self.bases.lock().unwrap_or_else(PoisonError::into_inner).trimmed_through
    }

    /// The chain as of `index`: the hash of the last row at or before it.
    pub fn chain_at(&self, index: u64) -> Result<ChainHead, JournalError> {
        let base = self.chain_base();
        if index <= base.index {
            return Ok(base);
        }
        match self.chain.range(..=index.to_be_bytes()).next_back().transpose()? {
            Some((key, hash)) => {
                let index = decode_index(&key);
                let hash = hash.as_ref().try_into().map_err(|_| JournalError::CorruptAudit {
                    what: "chain hash",
                    index,
                    reason: format!("{} bytes, expected 32", hash.len()),
                })?;
                Ok(ChainHead { index, hash })
            }
            None => Ok(base),
        }
    }

    /// The newest link of the chain.
    pub fn chain_head(&self) -> Result<ChainHead, JournalError> {
        self.chain_at(u64::MAX)
    }

    /// Recomputes the chain from its base over every row and compares it with the hashes
    /// recorded as the rows were applied. `Err(index)` names the first row that is not what
    /// was journaled (altered, missing or moved).
    pub fn verify_chain(&self) -> Result<Result<ChainHead, u64>, JournalError> {
        let base = self.chain_base();
        let mut head = base;
        let mut recorded = self.chain.range((base.index + 1).to_be_bytes()..);
        for row in self.commands.range((base.index + 1).to_be_bytes()..) {
            let (key, value) = row?;
            let index = decode_index(&key);
            head = head.link(index, &value);
            match recorded.next().transpose()? {
                Some((recorded_key, hash))
                    if decode_index(&recorded_key) == index && hash.as_ref() == head.hash =>
                {
                    continue
                }
                _ => return Ok(Err(index)),
            }
        }
        match recorded.next().transpose()? {
            // A link without its row: the row was removed.
            Some((key, _)) => Ok(Err(decode_index(&key))),
            None => Ok(Ok(head)),
        }
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
            let at = Timestamp(u64::from_be_bytes(
                value[..8].try_into().expect("checked above: the row holds at least 8 bytes"),
            ));
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
    ///
    /// The chain continues from `head`, the chain as of the snapshot (carried in its id), so
    /// this master's chain stays the same as every other's.
    pub(crate) fn restart_after(
        &self,
        snapshot_index: u64,
        head: ChainHead,
        state: &ClusterState,
    ) -> Result<(), JournalError> {
        let lost = Cursor::new(snapshot_index, u32::MAX);
        self.record_lost_through(lost)?;
        self.set_bases(ChainHead { index: snapshot_index, hash: head.hash }, snapshot_index)?;
        self.meta.remove(JOURNALED_THROUGH_KEY)?;
        self.commands.clear()?;
        self.events.clear()?;
        self.chain.clear()?;
        self.verdicts.clear()?;
        self.entities.clear()?;
        self.checkpoints.clear()?;
        self.checkpoints.write(snapshot_index, state)?;
        self.write_fingerprint_base(snapshot_index, state)?;
        Ok(())
    }

    /// Records the fingerprint of every entity `state` has, as the state right after
    /// `index`, the journal's new start: a diff from there on reads an entity that no later
    /// row names from here. The marker goes last; without it the base is not used.
    fn write_fingerprint_base(&self, index: u64, state: &ClusterState) -> Result<(), JournalError> {
        self.meta.remove(FINGERPRINT_BASE_KEY)?;
        self.fingerprint_base.clear()?;
        let mut batch = sled::Batch::default();
        for entity in state.diffed_entities() {
            let Some(fingerprint) = state.fingerprint(&entity) else { continue };
            let value = index::encode_fingerprint(&fingerprint).map_err(|reason| {
                JournalError::CorruptAudit { what: "fingerprint", index, reason }
            })?;
            batch.insert(index::prefix(&entity), value);
        }
        self.fingerprint_base.apply_batch(batch)?;
        self.meta.insert(FINGERPRINT_BASE_KEY, index.to_be_bytes().to_vec())?;
        Ok(())
    }

    /// The index `journal_fingerprint_base` answers for, if it is complete.
    fn fingerprint_base_index(&self) -> Result<Option<u64>, JournalError> {
        Ok(self.meta.get(FINGERPRINT_BASE_KEY)?.map(|bytes| decode_index(&bytes)))
    }

    fn set_bases(&self, chain: ChainHead, trimmed_through: u64) -> Result<(), JournalError> {
        let mut bases = self.bases.lock().unwrap_or_else(PoisonError::into_inner);
        // Persisted before any row goes, like `lost_through`.
        self.meta.insert(CHAIN_BASE_KEY, chain.encode().to_vec())?;
        self.meta.insert(TRIMMED_THROUGH_KEY, trimmed_through.to_be_bytes().to_vec())?;
        *bases = Bases { chain, trimmed_through: Some(trimmed_through) };
        Ok(())
    }

    /// Writes a checkpoint of `state` (the state right after `index`) if the policy says one
    /// is due, on the checkpoint thread: applying never waits for it.
    pub(crate) fn offer_checkpoint(&self, index: u64, commands_before: u64, state: &ClusterState) {
        self.checkpoints.offer(index, commands_before, state);
    }

    /// How often checkpoints are written (tests and benchmarks choose theirs).
    pub fn set_checkpoint_policy(&self, policy: CheckpointPolicy) {
        self.checkpoints.set_policy(policy);
    }

    /// Waits until the journal is quiet: the checkpoints handed to the checkpoint thread are
    /// written and every tree is flushed to disk. A benchmark times reads after it, so it
    /// measures the reads, not the reads while the writes of a moment ago still finish.
    pub fn settle(&self) -> Result<(), JournalError> {
        self.checkpoints.finish_writing();
        // One flush writes the whole database: every tree shares sled's page cache.
        self.commands.flush()?;
        Ok(())
    }

    /// Writes a checkpoint now, on this thread.
    pub fn write_checkpoint(&self, index: u64, state: &ClusterState) -> Result<(), JournalError> {
        self.checkpoints.write(index, state)
    }

    /// The newest checkpoint at or before `index`: its index and the state right after it
    /// (what a backup starts its journal tail from).
    pub fn checkpoint_at_or_before(
        &self,
        index: u64,
    ) -> Result<Option<(u64, ClusterState)>, JournalError> {
        let Some((at, bytes)) = self.checkpoints.at_or_before(index)? else { return Ok(None) };
        let state = ClusterState::from_snapshot(&bytes)
            .map_err(|source| JournalError::Corrupt { index: at, source })?;
        Ok(Some((at, state)))
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
            let at = value.get(..8).map_or(0, |at| {
                u64::from_be_bytes(at.try_into().expect("`..8` of a slice is 8 bytes"))
            });
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
        // The fingerprints of the keys that go are carried into the base, so a diff after
        // the trim still finds what an entity no later row names was: valid only if the
        // base answered for everything before (and withdrawn while this pass runs).
        let mut base_stays_whole = match self.trimmed_through() {
            None => true,
            Some(trimmed) => self.fingerprint_base_index()? == Some(trimmed),
        };
        self.meta.remove(FINGERPRINT_BASE_KEY)?;
        let base = self.chain_at(last_doomed)?;
        self.set_bases(ChainHead { index: last_doomed, hash: base.hash }, last_doomed)?;
        let mut commands = sled::Batch::default();
        let mut events = sled::Batch::default();
        let mut chain = sled::Batch::default();
        let mut verdicts = sled::Batch::default();
        let mut entities = sled::Batch::default();
        let mut fingerprint_base = sled::Batch::default();
        for index in doomed {
            let key = index.to_be_bytes();
            // The index keys of a row are found again from the row itself.
            if let Some(Ok((_, _, entries))) = self.commands(index..=index).next() {
                let row_events = self
                    .events(index..=index, 1)?
                    .into_iter()
                    .flat_map(|(_, events)| events)
                    .collect::<Vec<_>>();
                for entity in entities_of(&entries, &row_events) {
                    let key = index::key(&entity, index);
                    if base_stays_whole && state_is_diffed(&entity) {
                        match self.entities.get(&key)? {
                            // Rows go oldest first: the base ends with each entity's newest.
                            Some(fingerprint) if !fingerprint.is_empty() => {
                                fingerprint_base.insert(index::prefix(&entity), fingerprint);
                            }
                            _ => base_stays_whole = false,
                        }
                    }
                    entities.remove(key);
                }
            }
            commands.remove(&key);
            events.remove(&key);
            chain.remove(&key);
            verdicts.remove(&key);
        }
        self.commands.apply_batch(commands)?;
        self.events.apply_batch(events)?;
        self.chain.apply_batch(chain)?;
        self.verdicts.apply_batch(verdicts)?;
        self.entities.apply_batch(entities)?;
        self.checkpoints.trim_before(last_doomed)?;
        if base_stays_whole {
            self.fingerprint_base.apply_batch(fingerprint_base)?;
            self.meta.insert(FINGERPRINT_BASE_KEY, last_doomed.to_be_bytes().to_vec())?;
        }
        Ok(())
    }
}

/// The journal's trees (all but the entity index, which has its own key) are keyed by the
/// 8-byte big-endian log index `JournalBatch::record` writes; nothing else writes them.
fn decode_index(key: &[u8]) -> u64 {
    u64::from_be_bytes(key.try_into().expect("journal keys are 8-byte big-endian log indexes"))
}

fn encode_cursor(cursor: Cursor) -> [u8; 12] {
    let mut bytes = [0; 12];
    bytes[..8].copy_from_slice(&cursor.index.to_be_bytes());
    bytes[8..].copy_from_slice(&cursor.seq.to_be_bytes());
    bytes
}

/// Reads what [`encode_cursor`] wrote, the only writer of these 12 bytes.
fn decode_cursor(bytes: &[u8]) -> Cursor {
    let bytes: [u8; 12] =
        bytes.try_into().expect("stored cursors are the 12 bytes encode_cursor writes");
    let (index, seq) = bytes.split_at(8);
    Cursor::new(
        u64::from_be_bytes(index.try_into().expect("split at 8")),
        u32::from_be_bytes(seq.try_into().expect("12 - 8 = 4 bytes")),
    )
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
        let head = journal.chain_at(index - 1).unwrap();
        let mut batch = JournalBatch::new(head, journal);
        let entries = Batch::encode(vec![entry]).expect("a test entry encodes");
        let outcome = corral_state::Outcome::Accepted(vec![event; event_count]);
        batch
            .record(index, &entries, &[outcome], &corral_state::ClusterState::default())
            .expect("test events encode");
        journal.write(batch).unwrap();
    }

    /// Where `a_master_killed_mid_write_recovers_whole_rows_or_none` asks its child process,
    /// this same test binary, to write a journal until it is killed.
    const WRITER_DIRECTORY: &str = "CORRAL_JOURNAL_WRITER_DIRECTORY";

    /// The child half of the test below: does nothing unless that test started it.
    #[test]
    fn journal_writer_child_process() {
        let Some(directory) = std::env::var_os(WRITER_DIRECTORY) else { return };
        let db = sled::Config::new().path(directory).open().unwrap();
        let journal = Journal::open(&db, JournalRetention::KEEP_ALL).unwrap();
        // The Raft log store flushes the same database after every append, from another
        // task: flushes land anywhere in a journal write.
        let flusher = db.clone();
        std::thread::spawn(move || loop {
            flusher.flush().unwrap();
        });
        let mut stdout = std::io::stdout();
        for index in 1.. {
            write(&journal, index, index, 3);
            use std::io::Write;
            writeln!(stdout, "{index}").unwrap();
        }
    }

    #[test]
    fn a_master_killed_mid_write_recovers_whole_rows_or_none() {
        use std::io::BufRead;
        for round in 0..12u64 {
            let directory = tempfile::tempdir().unwrap();
            let mut child = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "journal::tests::journal_writer_child_process", "--nocapture"])
                .env(WRITER_DIRECTORY, directory.path())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("the test binary runs again as the writer");
            let stdout = child.stdout.take().expect("piped");
            let written_before_kill = 200 + round * 37;
            let reached = std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|line| line.parse::<u64>().ok())
                .any(|index| index >= written_before_kill);
            assert!(reached, "the writer stopped before index {written_before_kill}");
            child.kill().unwrap();
            child.wait().unwrap();

            let db = sled::Config::new().path(directory.path()).open().unwrap();
            let journal = Journal::open(&db, JournalRetention::KEEP_ALL).unwrap();
            let head = journal.verify_chain().unwrap();
            let head = head.unwrap_or_else(|index| {
                panic!("round {round}: the chain breaks at index {index} after the kill")
            });
            let rows = journal.commands.len();
            assert_eq!(head.index, u64::try_from(rows).unwrap(), "round {round}");
            assert_eq!(journal.events.len(), rows, "round {round}: events");
            assert_eq!(journal.verdicts.len(), rows, "round {round}: verdicts");
            // The entity index may keep the keys of the write cut short (one row here): they
            // are written again the same when the entry is applied again.
            let keys = journal.entities.len();
            assert!(keys == rows || keys == rows + 1, "round {round}: {keys} entity keys");
        }
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
