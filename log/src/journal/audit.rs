//! Questions about the past, answered from the journal while the master runs: the history of
//! one entity (an index lookup), the command trail (a streaming read, for export), the index
//! at a time (a binary search on the entries' stamps), the state at an index (nearest
//! checkpoint plus a replay) and what changed between two indexes.

use std::ops::RangeInclusive;

use std::collections::BTreeMap;

use corral_state::{
    diff_excerpts, Actor, ClusterState, Cursor, Entity, EntityChange, Entry, Event, Timestamp,
    Verdict,
};

use super::{decode_index, index, Journal, JournalError, Recorded, VERDICTS_VERSION};

/// Why an audit question has no answer. The API maps each to a status: `TooOld` 410,
/// `Beyond` 404, `Invalid` 400, `Journal` and `Failed` 500.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{what} is older than the journal keeps; the oldest available is {oldest}")]
    TooOld { what: &'static str, oldest: Cursor },
    #[error("index {asked} is beyond the last applied index {last}")]
    Beyond { asked: u64, last: u64 },
    #[error("{parameter}: {problem}")]
    Invalid { parameter: &'static str, problem: String },
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The work stopped before it answered (its thread panicked or was cancelled).
    #[error("{0}")]
    Failed(String),
}

/// One command as the audit trail shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandRecord {
    /// `(log index, seq of its first event)`; for a command without events, the seq its
    /// next event would have had.
    pub cursor: Cursor,
    /// Its position among the commands of its Raft entry.
    pub position: u32,
    pub entry: Entry,
    pub verdict: Verdict,
    pub event_count: u32,
    /// The events it produced (in a history: those about the entity asked for; in a trail:
    /// none, the trail is about commands).
    pub events: Vec<(Cursor, Event)>,
}

/// Who sent the commands a trail wants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActorFilter {
    Leader,
    Is(Entity),
}

impl ActorFilter {
    fn matches(&self, actor: &Actor) -> bool {
        match self {
            ActorFilter::Leader => *actor == Actor::Leader,
            ActorFilter::Is(entity) => Entity::of_actor(actor).as_ref() == Some(entity),
        }
    }
}

/// Which commands a trail wants; the default wants them all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrailFilter {
    pub actor: Option<ActorFilter>,
    /// `Command::kind()`.
    pub kind: Option<String>,
    /// `Verdict::as_str()`.
    pub outcome: Option<String>,
}

impl TrailFilter {
    fn matches(&self, entry: &Entry, verdict: &Verdict) -> bool {
        self.actor.as_ref().is_none_or(|actor| actor.matches(&entry.actor))
            && self.kind.as_deref().is_none_or(|kind| kind == entry.command.kind())
            && self.outcome.as_deref().is_none_or(|outcome| outcome == verdict.as_str())
    }
}

/// One changed entity of a diff and the last index in the range that touched it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffRecord {
    pub change: EntityChange,
    pub index: u64,
}

impl Journal {
    /// The first index the audit trail covers (entity index, verdicts, chain).
    pub fn audit_start(&self) -> u64 {
        self.chain_base().index + 1
    }

    /// The last journaled index, or `Beyond` for an empty journal.
    fn last_index(&self) -> Result<u64, AuditError> {
        match self.commands.last().map_err(JournalError::from)? {
            Some((key, _)) => Ok(decode_index(&key)),
            None => Err(AuditError::Beyond { asked: 0, last: 0 }),
        }
    }

    /// `TooOld` when `range` starts before what the audit trail covers.
    fn audited(&self, what: &'static str, range: &RangeInclusive<u64>) -> Result<(), AuditError> {
        let base = self.chain_base().index;
        if base > 0 && *range.start() <= base {
            return Err(AuditError::TooOld { what, oldest: Cursor::new(base + 1, 0) });
        }
        Ok(())
    }

    /// The indexes in `range` whose commands name `entity` or whose events concern it, in
    /// log order (`.rev()` walks back from the newest).
    pub fn indexes_of(
        &self,
        entity: &Entity,
        range: RangeInclusive<u64>,
    ) -> impl DoubleEndedIterator<Item = Result<u64, JournalError>> + '_ {
        let (start, end) = (index::key(entity, *range.start()), index::key(entity, *range.end()));
        self.entities.range(start..=end).map(|row| {
            let (key, _) = row?;
            index::index_of(&key).ok_or_else(|| JournalError::CorruptAudit {
                what: "entity index key",
                index: 0,
                reason: format!("{} bytes", key.len()),
            })
        })
    }

    /// Every command in `range` that touched `entity`, oldest first, at most `limit`, each
    /// with the events it produced about the entity.
    pub fn history(
        &self,
        entity: &Entity,
        range: RangeInclusive<u64>,
        limit: usize,
    ) -> Result<Vec<CommandRecord>, AuditError> {
        self.audited("history", &range)?;
        let mut records = Vec::new();
        for index in self.indexes_of(entity, range) {
            let index = index?;
            for record in self.records_at(index, RecordEvents::About(entity))? {
                if records.len() == limit {
                    return Ok(records);
                }
                let touched = record.entry.entities().contains(entity) || !record.events.is_empty();
                if touched {
                    records.push(record);
                }
            }
        }
        Ok(records)
    }

    /// The commands of the row at `index`, with their verdicts and the events wanted.
    fn records_at(
        &self,
        index: u64,
        events_wanted: RecordEvents<'_>,
    ) -> Result<Vec<CommandRecord>, JournalError> {
        let Some(row) = self.commands(index..=index).next().transpose()? else {
            return Ok(Vec::new());
        };
        let (_, _, entries) = row;
        let recorded = self.recorded(index)?;
        let events = match events_wanted {
            RecordEvents::None => Vec::new(),
            RecordEvents::About(_) => {
                self.events(index..=index, 1)?.into_iter().flat_map(|(_, events)| events).collect()
            }
        };
        Ok(assemble(index, entries, recorded, events, events_wanted))
    }

    fn recorded(&self, index: u64) -> Result<Vec<Recorded>, JournalError> {
        let corrupt =
            |reason: String| JournalError::CorruptAudit { what: "verdicts", index, reason };
        let bytes =
            self.verdicts.get(index.to_be_bytes())?.ok_or_else(|| corrupt("missing".to_owned()))?;
        match bytes.split_first() {
            Some((&VERDICTS_VERSION, rest)) => {
                postcard::from_bytes(rest).map_err(|error| corrupt(error.to_string()))
            }
            _ => Err(corrupt("unknown version".to_owned())),
        }
    }

    /// Every command in `range` that `filter` wants, in log order, read as it is consumed
    /// (for export: memory stays flat however long the range).
    pub fn trail(
        &self,
        range: RangeInclusive<u64>,
        filter: TrailFilter,
    ) -> Result<impl Iterator<Item = Result<CommandRecord, JournalError>> + '_, AuditError> {
        self.audited("the command trail", &range)?;
        // Verdicts are read in the same ordered pass as the rows, not looked up per row.
        let (start, end) = (range.start().to_be_bytes(), range.end().to_be_bytes());
        let mut verdicts = self.verdicts.range(start..=end).peekable();
        Ok(self
            .commands(range)
            .flat_map(move |row| -> Vec<Result<CommandRecord, JournalError>> {
                let (index, _, entries) = match row {
                    Ok(row) => row,
                    Err(error) => return vec![Err(error)],
                };
                while verdicts
                    .next_if(|verdict| {
                        verdict.as_ref().is_ok_and(|(key, _)| decode_index(key) < index)
                    })
                    .is_some()
                {}
                let recorded = match verdicts.next() {
                    Some(Ok((key, bytes))) if decode_index(&key) == index => {
                        decode_recorded(index, &bytes)
                    }
                    Some(Err(error)) => Err(JournalError::from(error)),
                    _ => Err(JournalError::CorruptAudit {
                        what: "verdicts",
                        index,
                        reason: "missing".to_owned(),
                    }),
                };
                let recorded = match recorded {
                    Ok(recorded) => recorded,
                    Err(error) => return vec![Err(error)],
                };
                assemble(index, entries, recorded, Vec::new(), RecordEvents::None)
                    .into_iter()
                    .map(Ok)
                    .collect()
            })
            .filter(move |record| match record {
                Ok(record) => filter.matches(&record.entry, &record.verdict),
                Err(_) => true,
            }))
    }

    /// The last index stamped at or before `at`. Stamps follow log order (a new leader's
    /// clock behind the old one's only blurs the answer by that skew).
    pub fn index_at(&self, at: Timestamp) -> Result<u64, AuditError> {
        let last = self.last_index()?;
        let first = self
            .commands
            .first()
            .map_err(JournalError::from)?
            .map_or(0, |(key, _)| decode_index(&key));
        let stamp = |index: u64| -> Result<Option<(u64, Timestamp)>, JournalError> {
            let Some((key, value)) =
                self.commands.range(index.to_be_bytes()..).next().transpose()?
            else {
                return Ok(None);
            };
            let index = decode_index(&key);
            let bytes = value.get(..8).ok_or(JournalError::Corrupt {
                index,
                source: corral_state::CodecError::Truncated,
            })?;
            let stamp = u64::from_be_bytes(bytes.try_into().expect("eight bytes were sliced"));
            Ok(Some((index, Timestamp(stamp))))
        };
        match stamp(first)? {
            Some((_, stamped)) if stamped <= at => {}
            _ => {
                return Err(AuditError::TooOld { what: "that time", oldest: Cursor::new(first, 0) })
            }
        }
        let (mut low, mut high) = (first, last);
        while low < high {
            let middle = low + (high - low).div_ceil(2);
            match stamp(middle)? {
                Some((index, stamped)) if stamped <= at && index <= high => low = index,
                _ => high = middle - 1,
            }
        }
        Ok(low)
    }

    /// The oldest index whose state this journal can rebuild.
    pub fn oldest_state_index(&self) -> Result<u64, AuditError> {
        match self.trimmed_through() {
            None => Ok(0),
            Some(trimmed) => Ok(self.checkpoints.at_or_after(trimmed)?.unwrap_or(u64::MAX)),
        }
    }

    /// The state right after the entry at `index`: the nearest checkpoint at or before it,
    /// then the rows after it. `initial` is the state before the first entry.
    pub fn state_at(&self, index: u64, initial: ClusterState) -> Result<ClusterState, AuditError> {
        let last = self.last_index().or_else(|error| match error {
            AuditError::Beyond { .. } if index == 0 => Ok(0),
            other => Err(other),
        })?;
        if index > last {
            return Err(AuditError::Beyond { asked: index, last });
        }
        let trimmed = self.trimmed_through();
        let (mut state, from) = match self.checkpoints.at_or_before(index)? {
            Some((at, bytes)) if trimmed.is_none_or(|trimmed| at >= trimmed) => {
                let state = ClusterState::from_snapshot(&bytes)
                    .map_err(|source| JournalError::Corrupt { index: at, source })?;
                (state, at + 1)
            }
            _ if trimmed.is_none() => (initial, 0),
            _ => {
                let oldest = self.oldest_state_index()?;
                return Err(AuditError::TooOld {
                    what: "that state",
                    oldest: Cursor::new(oldest, 0),
                });
            }
        };
        if from <= index {
            self.replay(&mut state, from..=index)?;
        }
        Ok(state)
    }

    /// What changed from right after `from` to right after `to`, each change with the last
    /// index in between that touched it.
    pub fn diff(
        &self,
        from: u64,
        to: u64,
        initial: ClusterState,
    ) -> Result<Vec<DiffRecord>, AuditError> {
        if to < from {
            return Err(AuditError::Invalid {
                parameter: "to",
                problem: format!("{to} is before from ({from})"),
            });
        }
        self.audited("that diff", &(from + 1..=to))?;
        let mut state = self.state_at(from, initial)?;
        if from == to {
            return Ok(Vec::new());
        }
        // Only what the entries in between name can differ: those are compared, with the
        // last index that touched each, instead of two whole states.
        let mut touched: BTreeMap<Entity, u64> = BTreeMap::new();
        for row in self.commands(from + 1..=to) {
            let (index, _, entries) = row?;
            for entity in entries.iter().flat_map(Entry::entities) {
                touched.insert(entity, index);
            }
        }
        for (index, events) in self.events(from + 1..=to, usize::MAX)? {
            for entity in events.iter().flat_map(Event::concerns) {
                let last = touched.entry(entity).or_insert(index);
                *last = (*last).max(index);
            }
        }
        let before = state.excerpt(touched.keys());
        self.replay(&mut state, from + 1..=to)?;
        let after = state.excerpt(touched.keys());
        let mut records = Vec::new();
        for change in diff_excerpts(&before, &after) {
            let index = *touched.get(&change.entity).expect("every excerpt entity was touched");
            records.push(DiffRecord { change, index });
        }
        Ok(records)
    }

    /// Count and bytes of the checkpoints and of the entity index, for the benchmark.
    pub fn audit_footprint(&self) -> Result<AuditFootprint, JournalError> {
        let (checkpoints, checkpoint_bytes) = self.checkpoints.footprint()?;
        let mut index_keys = 0u64;
        let mut index_bytes = 0u64;
        for row in self.entities.iter() {
            index_bytes += row?.0.len() as u64;
            index_keys += 1;
        }
        let chain_bytes = self.chain.len() as u64 * (8 + 32);
        let mut verdict_bytes = 0u64;
        for row in self.verdicts.iter() {
            let (key, value) = row?;
            verdict_bytes += (key.len() + value.len()) as u64;
        }
        Ok(AuditFootprint {
            checkpoints,
            checkpoint_bytes,
            index_keys,
            index_bytes,
            chain_bytes,
            verdict_bytes,
        })
    }
}

/// What the audit trees hold, in payload bytes (sled adds its own overhead on disk).
#[derive(Clone, Copy, Debug)]
pub struct AuditFootprint {
    pub checkpoints: usize,
    pub checkpoint_bytes: u64,
    pub index_keys: u64,
    pub index_bytes: u64,
    pub chain_bytes: u64,
    pub verdict_bytes: u64,
}

#[derive(Clone, Copy)]
enum RecordEvents<'a> {
    None,
    About(&'a Entity),
}

fn decode_recorded(index: u64, bytes: &[u8]) -> Result<Vec<Recorded>, JournalError> {
    let corrupt = |reason: String| JournalError::CorruptAudit { what: "verdicts", index, reason };
    match bytes.split_first() {
        Some((&VERDICTS_VERSION, rest)) => {
            postcard::from_bytes(rest).map_err(|error| corrupt(error.to_string()))
        }
        _ => Err(corrupt("unknown version".to_owned())),
    }
}

/// Splits a row's events among its commands by the counts recorded with the verdicts.
fn assemble(
    index: u64,
    entries: Vec<Entry>,
    recorded: Vec<Recorded>,
    events: Vec<Event>,
    wanted: RecordEvents<'_>,
) -> Vec<CommandRecord> {
    let mut events = events.into_iter();
    let mut seq = 0u32;
    entries
        .into_iter()
        .zip(recorded)
        .enumerate()
        .map(|(position, (entry, recorded))| {
            let cursor = Cursor::new(index, seq);
            let mut own = Vec::new();
            for offset in 0..recorded.events {
                let Some(event) = events.next() else { break };
                if let RecordEvents::About(entity) = wanted {
                    if event.concerns().contains(entity) {
                        own.push((Cursor::new(index, seq + offset), event));
                    }
                }
            }
            seq += recorded.events;
            CommandRecord {
                cursor,
                position: u32::try_from(position).unwrap_or(u32::MAX),
                entry,
                verdict: recorded.verdict,
                event_count: recorded.events,
                events: own,
            }
        })
        .collect()
}
