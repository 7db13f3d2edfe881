//! Questions about the past, answered from the journal while the master runs: the history of
//! one entity (an index lookup), the command trail (a streaming read, for export), the index
//! at a time (a binary search on the entries' stamps), the state at an index (nearest
//! checkpoint plus a replay) and what changed between two indexes.

use std::ops::RangeInclusive;

use std::collections::BTreeMap;

use corral_state::{
    diff_excerpts, diff_fingerprints, Actor, ClusterState, Cursor, Entity, EntityChange, Entry,
    Event, Fingerprint, Timestamp, Verdict,
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

/// One command as history and the trail show it in JSON, serialized straight into the
/// output (an export of millions of commands builds no `serde_json::Value` per command):
///
/// `actor` (`{"kind": "leader"}` or `{"id", "kind"}`), `command` (its kind), `cursor`,
/// `detail` (the command), `epoch` (seconds), `event_count`, `events` (when it has any, each
/// `{"cursor", "event", "kind"}`), `index`, `outcome`, `position`, `reason` (a rejection's),
/// `request_id`, `time` (RFC 3339). Keys in that (alphabetical) order, as a
/// `serde_json::Value` of the same record writes them.
pub struct RecordJson<'a>(pub &'a CommandRecord);

impl serde::Serialize for RecordJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let record = self.0;
        let at = record.entry.at;
        let rejection = record.verdict.rejection();
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("actor", &ActorJson(&record.entry.actor))?;
        map.serialize_entry("command", record.entry.command.kind())?;
        map.serialize_entry("cursor", &Displayed(&record.cursor))?;
        map.serialize_entry("detail", &record.entry.command)?;
        map.serialize_entry("epoch", &at.as_secs_f64())?;
        map.serialize_entry("event_count", &record.event_count)?;
        if !record.events.is_empty() {
            map.serialize_entry("events", &EventsJson(&record.events))?;
        }
        map.serialize_entry("index", &record.cursor.index)?;
        map.serialize_entry("outcome", record.verdict.as_str())?;
        map.serialize_entry("position", &record.position)?;
        if let Some(rejection) = rejection {
            map.serialize_entry("reason", &Displayed(rejection))?;
        }
        map.serialize_entry("request_id", record.entry.request_id.as_str())?;
        map.serialize_entry("time", at.rfc3339().as_str())?;
        map.end()
    }
}

impl RecordJson<'_> {
    /// Appends the record to `out` as the bytes `serde_json::to_writer` writes for it, the
    /// export's fast path: the keys are constants written as they are, the cursor, numbers
    /// and time are written without `fmt`, and only the command, the ids and a rejection go
    /// through `serde_json` (they may need escaping).
    pub fn write_line(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        let record = self.0;
        let at = record.entry.at;
        out.extend_from_slice(br#"{"actor":"#);
        match Entity::of_actor(&record.entry.actor) {
            None => out.extend_from_slice(br#"{"kind":"leader"}"#),
            Some(entity) => {
                out.extend_from_slice(br#"{"id":"#);
                serde_json::to_writer(&mut *out, entity.id.as_str())?;
                out.extend_from_slice(br#","kind":"#);
                serde_json::to_writer(&mut *out, entity.kind.as_str())?;
                out.push(b'}');
            }
        }
        out.extend_from_slice(br#","command":"#);
        serde_json::to_writer(&mut *out, record.entry.command.kind())?;
        out.extend_from_slice(br#","cursor":""#);
        push_decimal(out, record.cursor.index);
        out.push(b'-');
        push_decimal(out, u64::from(record.cursor.seq));
        out.extend_from_slice(br#"","detail":"#);
        serde_json::to_writer(&mut *out, &record.entry.command)?;
        out.extend_from_slice(br#","epoch":"#);
        serde_json::to_writer(&mut *out, &at.as_secs_f64())?;
        out.extend_from_slice(br#","event_count":"#);
        push_decimal(out, u64::from(record.event_count));
        if !record.events.is_empty() {
            out.extend_from_slice(br#","events":"#);
            serde_json::to_writer(&mut *out, &EventsJson(&record.events))?;
        }
        out.extend_from_slice(br#","index":"#);
        push_decimal(out, record.cursor.index);
        out.extend_from_slice(br#","outcome":"#);
        serde_json::to_writer(&mut *out, record.verdict.as_str())?;
        out.extend_from_slice(br#","position":"#);
        push_decimal(out, u64::from(record.position));
        if let Some(rejection) = record.verdict.rejection() {
            out.extend_from_slice(br#","reason":"#);
            serde_json::to_writer(&mut *out, &Displayed(rejection))?;
        }
        out.extend_from_slice(br#","request_id":"#);
        serde_json::to_writer(&mut *out, record.entry.request_id.as_str())?;
        out.extend_from_slice(br#","time":""#);
        out.extend_from_slice(at.rfc3339().as_str().as_bytes());
        out.extend_from_slice(br#""}"#);
        Ok(())
    }
}

/// `value` in decimal, as `serde_json` writes an unsigned integer.
fn push_decimal(out: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// A value serialized as the string its `Display` writes, without building the string.
struct Displayed<'a, T: std::fmt::Display>(&'a T);

impl<T: std::fmt::Display> serde::Serialize for Displayed<'_, T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self.0)
    }
}

/// `{"kind": "leader"}`, or the actor's entity as `{"id", "kind"}`.
struct ActorJson<'a>(&'a Actor);

impl serde::Serialize for ActorJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        match Entity::of_actor(self.0) {
            None => map.serialize_entry("kind", "leader")?,
            Some(entity) => {
                map.serialize_entry("id", entity.id.as_str())?;
                map.serialize_entry("kind", entity.kind.as_str())?;
            }
        }
        map.end()
    }
}

struct EventsJson<'a>(&'a [(Cursor, Event)]);

impl serde::Serialize for EventsJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        struct One<'a>(&'a Cursor, &'a Event);
        impl serde::Serialize for One<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(3))?;
                map.serialize_entry("cursor", &Displayed(self.0))?;
                map.serialize_entry("event", self.1)?;
                map.serialize_entry("kind", self.1.kind())?;
                map.end()
            }
        }
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for (cursor, event) in self.0 {
            seq.serialize_element(&One(cursor, event))?;
        }
        seq.end()
    }
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
            for record in self.records_at(index, entity)? {
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

    /// The commands of the row at `index`, with their verdicts and the events about
    /// `entity`.
    fn records_at(&self, index: u64, entity: &Entity) -> Result<Vec<CommandRecord>, JournalError> {
        let Some(row) = self.commands(index..=index).next().transpose()? else {
            return Ok(Vec::new());
        };
        let (_, _, entries) = row;
        let recorded = self.recorded(index)?;
        let events =
            self.events(index..=index, 1)?.into_iter().flat_map(|(_, events)| events).collect();
        Ok(assemble(index, entries, recorded, events, entity))
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
        Ok(Trail {
            rows: self.commands(range),
            verdicts: self.verdicts.range(start..=end),
            row: None,
            filter,
        })
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
    ///
    /// Only what the entries in between name (or their events concern) can differ; each of
    /// those is compared as it was at `from` and at `to` by the fingerprints the entity
    /// index keeps: its newest key at or before each point. So a diff costs the rows in
    /// between and two lookups per entity they name, wherever it lies in the journal. Where
    /// a fingerprint is missing (keys written by an older build, or entities last named
    /// before a trim) the two states are rebuilt instead ([`Journal::diff_by_replay`]).
    pub fn diff(
        &self,
        from: u64,
        to: u64,
        initial: ClusterState,
    ) -> Result<Vec<DiffRecord>, AuditError> {
        self.check_diff(from, to)?;
        let Some(untouched) = self.untouched_fingerprints()? else {
            return self.diff_by_replay(from, to, initial);
        };
        self.state_available(from)?;
        if from == to {
            return Ok(Vec::new());
        }
        let touched = self.touched(from, to)?;
        match self.diff_from_fingerprints(from, &touched, untouched)? {
            Some(records) => Ok(records),
            None => self.diff_from_states(from, to, initial, &touched),
        }
    }

    /// [`Journal::diff`] from the state at `from`, replayed to `to`, with excerpts of what
    /// the entries in between name compared: the reference the fingerprints answer for, and
    /// what answers where they cannot.
    pub fn diff_by_replay(
        &self,
        from: u64,
        to: u64,
        initial: ClusterState,
    ) -> Result<Vec<DiffRecord>, AuditError> {
        self.check_diff(from, to)?;
        let state = self.state_at(from, initial)?;
        if from == to {
            return Ok(Vec::new());
        }
        let touched = self.touched(from, to)?;
        self.replay_diff(state, from, to, &touched)
    }

    fn check_diff(&self, from: u64, to: u64) -> Result<(), AuditError> {
        if to < from {
            return Err(AuditError::Invalid {
                parameter: "to",
                problem: format!("{to} is before from ({from})"),
            });
        }
        self.audited("that diff", &(from + 1..=to))
    }

    /// What `state_at(index)` would refuse where fingerprints answer, without rebuilding
    /// the state: an index beyond the journal. (It cannot be older than the oldest state:
    /// fingerprints answer only for a journal kept from its first row, or restarted from a
    /// checkpoint at its base, and `check_diff` refused anything before the base.)
    fn state_available(&self, index: u64) -> Result<(), AuditError> {
        let last = self.last_index().or_else(|error| match error {
            AuditError::Beyond { .. } if index == 0 => Ok(0),
            other => Err(other),
        })?;
        if index > last {
            return Err(AuditError::Beyond { asked: index, last });
        }
        Ok(())
    }

    /// Each entity the rows in `from + 1..=to` name or whose events concern it, with the
    /// last of those indexes.
    fn touched(&self, from: u64, to: u64) -> Result<BTreeMap<Entity, u64>, AuditError> {
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
        Ok(touched)
    }

    /// Where the fingerprint of an entity no key at or before a point names comes from, or
    /// `None` when nothing can tell (the journal was trimmed, or restarted by a build that
    /// kept no base).
    fn untouched_fingerprints(&self) -> Result<Option<Untouched>, AuditError> {
        match self.trimmed_through() {
            // Every row from the first is indexed: an entity never named did not exist.
            None => Ok(Some(Untouched::NeverExisted)),
            Some(trimmed) if self.fingerprint_base_index()? == Some(trimmed) => {
                Ok(Some(Untouched::Base))
            }
            Some(_) => Ok(None),
        }
    }

    /// The entity's fingerprint right after `index`: its newest key at or before it.
    /// `None` when the key has no fingerprint (written by an older build).
    fn fingerprint_at(
        &self,
        entity: &Entity,
        index: u64,
        untouched: Untouched,
    ) -> Result<Option<Fingerprint>, JournalError> {
        let newest = self
            .entities
            .range(index::key(entity, 0)..=index::key(entity, index))
            .next_back()
            .transpose()?;
        let (at, bytes) = match newest {
            Some((key, bytes)) => (index::index_of(&key).unwrap_or(index), bytes),
            None => match untouched {
                Untouched::NeverExisted => return Ok(Some(Fingerprint::default())),
                Untouched::Base => match self.fingerprint_base.get(index::prefix(entity))? {
                    Some(bytes) => (index, bytes),
                    None => return Ok(Some(Fingerprint::default())),
                },
            },
        };
        index::decode_fingerprint(&bytes).map_err(|reason| JournalError::CorruptAudit {
            what: "fingerprint",
            index: at,
            reason,
        })
    }

    /// The diff from fingerprints, or `None` when one it needs was never written.
    fn diff_from_fingerprints(
        &self,
        from: u64,
        touched: &BTreeMap<Entity, u64>,
        untouched: Untouched,
    ) -> Result<Option<Vec<DiffRecord>>, AuditError> {
        let mut compared = Vec::with_capacity(touched.len());
        for (entity, &last) in touched {
            if !super::state_is_diffed(entity) {
                continue;
            }
            let Some(before) = self.fingerprint_at(entity, from, untouched)? else {
                return Ok(None);
            };
            let Some(after) = self.fingerprint_at(entity, last, untouched)? else {
                return Ok(None);
            };
            compared.push((entity, before, after));
        }
        let changes = diff_fingerprints(
            compared.iter().map(|(entity, before, after)| (*entity, before, after)),
        );
        Ok(Some(with_indexes(changes, touched)))
    }

    fn diff_from_states(
        &self,
        from: u64,
        to: u64,
        initial: ClusterState,
        touched: &BTreeMap<Entity, u64>,
    ) -> Result<Vec<DiffRecord>, AuditError> {
        let state = self.state_at(from, initial)?;
        self.replay_diff(state, from, to, touched)
    }

    fn replay_diff(
        &self,
        mut state: ClusterState,
        from: u64,
        to: u64,
        touched: &BTreeMap<Entity, u64>,
    ) -> Result<Vec<DiffRecord>, AuditError> {
        let before = state.excerpt(touched.keys());
        self.replay(&mut state, from + 1..=to)?;
        let after = state.excerpt(touched.keys());
        Ok(with_indexes(diff_excerpts(&before, &after), touched))
    }

    /// Count and bytes of the checkpoints and of the entity index, for the benchmark.
    pub fn audit_footprint(&self) -> Result<AuditFootprint, JournalError> {
        let (checkpoints, checkpoint_bytes) = self.checkpoints.footprint()?;
        let mut index_keys = 0u64;
        let mut index_bytes = 0u64;
        for row in self.entities.iter() {
            let (key, fingerprint) = row?;
            index_bytes += (key.len() + fingerprint.len()) as u64;
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
    /// Keys and the fingerprints they hold.
    pub index_bytes: u64,
    pub chain_bytes: u64,
    pub verdict_bytes: u64,
}

/// The command trail as it is read: each row's commands with the row's verdicts, which
/// come from their own tree in the same order.
struct Trail<R> {
    rows: R,
    verdicts: sled::Iter,
    /// The row read last, while it has commands not handed out yet.
    row: Option<TrailRow>,
    filter: TrailFilter,
}

/// A row's commands and verdicts, handed out one record at a time: no vector of records
/// is built per row, and a command the filter refuses is never moved into one.
struct TrailRow {
    index: u64,
    entries: std::vec::IntoIter<Entry>,
    recorded: std::vec::IntoIter<Recorded>,
    /// The position and first seq of the next command.
    position: u32,
    seq: u32,
}

impl TrailRow {
    fn next_wanted(&mut self, filter: &TrailFilter) -> Option<CommandRecord> {
        while let (Some(entry), Some(recorded)) = (self.entries.next(), self.recorded.next()) {
            let (position, seq) = (self.position, self.seq);
            self.position = self.position.saturating_add(1);
            self.seq += recorded.events;
            if filter.matches(&entry, &recorded.verdict) {
                return Some(CommandRecord {
                    cursor: Cursor::new(self.index, seq),
                    position,
                    entry,
                    verdict: recorded.verdict,
                    event_count: recorded.events,
                    events: Vec::new(),
                });
            }
        }
        None
    }
}

impl<R> Iterator for Trail<R>
where
    R: Iterator<Item = Result<(u64, Timestamp, Vec<Entry>), JournalError>>,
{
    type Item = Result<CommandRecord, JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(record) = self.row.as_mut().and_then(|row| row.next_wanted(&self.filter)) {
                return Some(Ok(record));
            }
            let (index, _, entries) = match self.rows.next()? {
                Ok(row) => row,
                Err(error) => return Some(Err(error)),
            };
            let recorded = match self.verdicts_of(index) {
                Ok(recorded) => recorded,
                Err(error) => return Some(Err(error)),
            };
            self.row = Some(TrailRow {
                index,
                entries: entries.into_iter(),
                recorded: recorded.into_iter(),
                position: 0,
                seq: 0,
            });
        }
    }
}

impl<R> Trail<R> {
    /// The verdicts of the row at `index`: the next verdict row, past any whose command row
    /// is gone.
    fn verdicts_of(&mut self, index: u64) -> Result<Vec<Recorded>, JournalError> {
        let missing =
            || JournalError::CorruptAudit { what: "verdicts", index, reason: "missing".to_owned() };
        loop {
            let (key, bytes) = self.verdicts.next().ok_or_else(missing)??;
            match decode_index(&key).cmp(&index) {
                std::cmp::Ordering::Less => continue,
                std::cmp::Ordering::Equal => return decode_recorded(index, &bytes),
                std::cmp::Ordering::Greater => return Err(missing()),
            }
        }
    }
}

/// Where a diff finds what an entity was at a point no key of it precedes.
#[derive(Clone, Copy)]
enum Untouched {
    /// The entity index covers the journal from its first row: the entity did not exist.
    NeverExisted,
    /// The journal restarted from a state whose fingerprints are kept (`fingerprint_base`).
    Base,
}

/// Each change with the last index in the range that touched its entity.
fn with_indexes(changes: Vec<EntityChange>, touched: &BTreeMap<Entity, u64>) -> Vec<DiffRecord> {
    changes
        .into_iter()
        .map(|change| {
            let index = *touched.get(&change.entity).expect("every compared entity was touched");
            DiffRecord { change, index }
        })
        .collect()
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

/// Splits a row's events among its commands by the counts recorded with the verdicts,
/// keeping those about `entity`.
fn assemble(
    index: u64,
    entries: Vec<Entry>,
    recorded: Vec<Recorded>,
    events: Vec<Event>,
    entity: &Entity,
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
                if event.concerns().contains(entity) {
                    own.push((Cursor::new(index, seq + offset), event));
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use corral_state::model::{
        AgentInfo, Attributes, Filters, FrameworkInfo, TaskInfo, TaskSource, TaskState, TaskStatus,
    };
    use corral_state::{
        Actor, AgentId, Change, ClusterState, Command, Entity, EntityChange, Entry, Event,
        FrameworkId, OfferSpec, Operation, Outcome, RequestId, Role, TaskId, Timestamp, UpdateUuid,
    };

    use super::DiffRecord;
    use crate::journal::{Journal, JournalBatch, JournalRetention};
    use crate::Batch;

    /// A journal written as the state machine writes it: each entry applied to `state`, then
    /// its row recorded with the state right after it.
    struct Journaled {
        _directory: tempfile::TempDir,
        journal: Journal,
        state: ClusterState,
        index: u64,
    }

    impl Journaled {
        fn new() -> Journaled {
            Journaled::keeping(JournalRetention::KEEP_ALL)
        }

        fn keeping(retention: JournalRetention) -> Journaled {
            let directory = tempfile::tempdir().unwrap();
            let db = sled::Config::new().path(directory.path()).open().unwrap();
            let journal = Journal::open(&db, retention).unwrap();
            Journaled { _directory: directory, journal, state: ClusterState::default(), index: 0 }
        }

        fn apply(&mut self, actor: Actor, command: Command) -> Outcome {
            self.index += 1;
            let entry = Entry {
                request_id: RequestId::new(format!("r{}", self.index)),
                actor,
                at: Timestamp::from_secs(self.index),
                command,
            };
            let outcome = self.state.apply(&entry);
            let head = self.journal.chain_at(self.index - 1).unwrap();
            let mut batch = JournalBatch::new(head, &self.journal);
            let entries = Batch::encode(vec![entry]).unwrap();
            batch
                .record(self.index, &entries, std::slice::from_ref(&outcome), &self.state)
                .unwrap();
            self.journal.write(batch).unwrap();
            // Every index has a checkpoint, so a trimmed journal can still rebuild a state
            // for the reference diff.
            self.journal.write_checkpoint(self.index, &self.state).unwrap();
            outcome
        }

        fn diff(&self, from: u64, to: u64) -> Vec<DiffRecord> {
            let diff = self.journal.diff(from, to, ClusterState::default()).unwrap();
            let replayed = self.journal.diff_by_replay(from, to, ClusterState::default()).unwrap();
            assert_eq!(diff, replayed, "from {from} to {to}");
            diff
        }
    }

    fn record(entity: Entity, change: Change, index: u64) -> DiffRecord {
        DiffRecord { change: EntityChange { entity, change }, index }
    }

    fn status(task: &str, agent_id: &AgentId, state: TaskState, uuid: &str) -> TaskStatus {
        TaskStatus {
            task_id: TaskId::new(task),
            state,
            message: None,
            source: TaskSource::Executor,
            reason: None,
            healthy: None,
            agent_id: Some(agent_id.clone()),
            executor_id: None,
            timestamp: Timestamp::default(),
            uuid: Some(UpdateUuid::new(uuid)),
            exit_code: None,
        }
    }

    /// 1 an agent registers, 2 a framework subscribes, 3 it is offered the agent, 4 it
    /// launches t1, 5 t1 runs, 6 the agent heartbeats, 7 t1 is asked to die, 8 t1 is killed,
    /// 9 the kill is acknowledged (the running update is not, so t1 stays, terminal).
    fn scenario() -> (Journaled, AgentId, FrameworkId) {
        scenario_in(Journaled::new())
    }

    fn scenario_in(mut journaled: Journaled) -> (Journaled, AgentId, FrameworkId) {
        let info = AgentInfo {
            hostname: "host-a".to_owned(),
            address: "10.0.0.1:5051".to_owned(),
            attributes: Attributes::default(),
        };
        let resources = "cpus:4;mem:1024".parse().unwrap();
        let outcome = journaled.apply(Actor::Leader, Command::RegisterAgent { info, resources });
        let [Event::AgentAdded { agent_id, .. }] = outcome.events() else { panic!("{outcome:?}") };
        let agent_id = agent_id.clone();
        let info = FrameworkInfo {
            user: "root".to_owned(),
            name: "batch".to_owned(),
            roles: vec![Role::default_role()],
            failover_timeout: Duration::from_secs(60),
            checkpoint: true,
            hostname: None,
            principal: None,
            webui_url: None,
            capabilities: Default::default(),
            labels: Vec::new(),
        };
        let outcome =
            journaled.apply(Actor::Leader, Command::Subscribe { framework_id: None, info });
        let [Event::FrameworkAdded { framework_id, .. }] = outcome.events() else {
            panic!("{outcome:?}")
        };
        let framework_id = framework_id.clone();
        let offer = OfferSpec {
            framework_id: framework_id.clone(),
            agent_id: agent_id.clone(),
            role: Role::default_role(),
            resources: "cpus:4;mem:1024".parse().unwrap(),
        };
        let outcome =
            journaled.apply(Actor::Leader, Command::OfferResources { offers: vec![offer] });
        let [Event::OfferCreated { offer }] = outcome.events() else { panic!("{outcome:?}") };
        let task = TaskInfo::shell(
            TaskId::new("t1"),
            agent_id.clone(),
            "cpus:1;mem:64".parse().unwrap(),
            "sleep 60",
        );
        let framework = Actor::Framework(framework_id.clone());
        let accept = Command::Accept {
            framework_id: framework_id.clone(),
            offer_ids: vec![offer.id.clone()],
            operations: vec![Operation::Launch { task_infos: vec![task] }],
            filters: Filters::default(),
        };
        assert!(!journaled.apply(framework.clone(), accept).is_rejected());
        let agent = Actor::Agent(agent_id.clone());
        let running = Command::UpdateStatus {
            framework_id: framework_id.clone(),
            status: status("t1", &agent_id, TaskState::Running, "u1"),
        };
        assert!(!journaled.apply(agent.clone(), running).is_rejected());
        let heartbeat = Command::AgentHeartbeat { agent_id: agent_id.clone() };
        assert!(!journaled.apply(agent.clone(), heartbeat).is_rejected());
        let kill = Command::Kill {
            framework_id: framework_id.clone(),
            task_id: TaskId::new("t1"),
            agent_id: None,
            kill_policy: None,
        };
        assert!(!journaled.apply(framework.clone(), kill).is_rejected());
        let killed = Command::UpdateStatus {
            framework_id: framework_id.clone(),
            status: status("t1", &agent_id, TaskState::Killed, "u2"),
        };
        assert!(!journaled.apply(agent.clone(), killed).is_rejected());
        let acknowledge = Command::Acknowledge {
            framework_id: framework_id.clone(),
            agent_id: agent_id.clone(),
            task_id: TaskId::new("t1"),
            uuid: UpdateUuid::new("u2"),
        };
        assert!(!journaled.apply(framework, acknowledge).is_rejected());
        (journaled, agent_id, framework_id)
    }

    #[test]
    fn a_diff_names_exactly_what_changed_between_two_points_and_the_last_index_that_touched_it() {
        let (journaled, agent_id, framework_id) = scenario();
        let (agent, framework, t1) = (
            Entity::agent(&agent_id),
            Entity::framework(&framework_id),
            Entity::task(&TaskId::new("t1")),
        );
        // Launched and running: the task is new and holds part of the agent.
        assert_eq!(
            journaled.diff(3, 5),
            vec![record(agent.clone(), Change::Changed, 5), record(t1.clone(), Change::Added, 5)]
        );
        // A heartbeat changes nothing a diff reports.
        assert_eq!(journaled.diff(5, 6), vec![]);
        // Killed: its resources came back, so the agent is as it was before the launch.
        assert_eq!(journaled.diff(3, 9), vec![record(t1.clone(), Change::Added, 9)]);
        assert_eq!(
            journaled.diff(6, 9),
            vec![record(agent.clone(), Change::Changed, 9), record(t1.clone(), Change::Changed, 9)]
        );
        // From the empty state. The role the framework named has no configuration (weight,
        // quota) to add.
        assert_eq!(
            journaled.diff(0, 2),
            vec![record(agent, Change::Added, 1), record(framework, Change::Added, 2)]
        );
        assert_eq!(journaled.diff(4, 4), vec![]);
    }

    #[test]
    fn a_diff_reads_the_fingerprints_not_a_replay_from_the_start() {
        let (journaled, agent_id, _) = scenario();
        // Without the first row (and the checkpoints) a replay builds another state; the
        // fingerprints do not need either.
        journaled.journal.commands.remove(1u64.to_be_bytes()).unwrap();
        journaled.journal.checkpoints.clear().unwrap();
        let diff = journaled.journal.diff(3, 5, ClusterState::default()).unwrap();
        let summary: Vec<(Entity, Change)> =
            diff.into_iter().map(|record| (record.change.entity, record.change.change)).collect();
        assert_eq!(
            summary,
            vec![
                (Entity::agent(&agent_id), Change::Changed),
                (Entity::task(&TaskId::new("t1")), Change::Added)
            ]
        );
        let replayed = journaled.journal.diff_by_replay(3, 5, ClusterState::default()).unwrap();
        assert_ne!(replayed.len(), 2, "a replay without the agent's registration differs");
    }

    #[test]
    fn a_journal_restarted_from_a_state_diffs_what_it_had_then_from_its_base() {
        let (mut journaled, agent_id, framework_id) = scenario();
        // As a master that installs a snapshot taken at 9: its journal restarts there.
        let head = journaled.journal.chain_at(9).unwrap();
        journaled.journal.restart_after(9, head, &journaled.state).unwrap();
        let info = AgentInfo {
            hostname: "host-b".to_owned(),
            address: "10.0.0.2:5051".to_owned(),
            attributes: Attributes::default(),
        };
        let resources = "cpus:2;mem:512".parse().unwrap();
        journaled.apply(Actor::Leader, Command::RegisterAgent { info, resources });
        let deactivate = Command::DeactivateAgent { agent_id: agent_id.clone() };
        assert!(!journaled.apply(Actor::Leader, deactivate).is_rejected());
        let teardown = Command::Teardown { framework_id: framework_id.clone() };
        assert!(!journaled.apply(Actor::Leader, teardown).is_rejected());
        let added = journaled.state.diffed_entities();
        let added = added.iter().find(|entity| entity.id.ends_with("S2")).expect("the new agent");
        // Deactivated at 11, and its task killed with the framework at 12.
        assert_eq!(
            journaled.diff(9, 12),
            vec![
                record(Entity::agent(&agent_id), Change::Changed, 12),
                record(added.clone(), Change::Added, 10),
                record(Entity::framework(&framework_id), Change::Removed, 12),
                record(Entity::task(&TaskId::new("t1")), Change::Removed, 12),
            ]
        );
    }

    #[test]
    fn a_trimmed_journal_keeps_the_fingerprints_of_what_it_let_go() {
        let retention = JournalRetention { max_age: None, max_indexes: Some(5) };
        let (journaled, agent_id, _) = scenario_in(Journaled::keeping(retention));
        // Rows 1 to 4 are gone, t1's launch (4) with them: the base says what t1 was then.
        assert_eq!(journaled.journal.trimmed_through(), Some(4));
        assert_eq!(journaled.journal.fingerprint_base_index().unwrap(), Some(4));
        let t1 = Entity::task(&TaskId::new("t1"));
        assert_eq!(journaled.diff(4, 6), vec![record(t1.clone(), Change::Changed, 5)]);
        assert_eq!(
            journaled.diff(4, 9),
            vec![
                record(Entity::agent(&agent_id), Change::Changed, 9),
                record(t1, Change::Changed, 9)
            ]
        );
    }

    /// The record as the API wrote it before `RecordJson`: a `serde_json::Value` built key
    /// by key.
    fn as_the_api_built_it(record: &super::CommandRecord) -> serde_json::Value {
        let at = record.entry.at;
        let actor = match Entity::of_actor(&record.entry.actor) {
            None => serde_json::json!({"kind": "leader"}),
            Some(entity) => {
                serde_json::json!({"kind": entity.kind.as_str(), "id": entity.id.as_str()})
            }
        };
        let mut body = serde_json::json!({
            "cursor": record.cursor.to_string(),
            "index": record.cursor.index,
            "position": record.position,
            "time": at.to_rfc3339(),
            "epoch": at.as_secs_f64(),
            "actor": actor,
            "request_id": record.entry.request_id.as_str(),
            "command": record.entry.command.kind(),
            "outcome": record.verdict.as_str(),
            "event_count": record.event_count,
            "detail": record.entry.command,
        });
        if let Some(rejection) = record.verdict.rejection() {
            body["reason"] = serde_json::json!(rejection.to_string());
        }
        if !record.events.is_empty() {
            body["events"] = record
                .events
                .iter()
                .map(|(cursor, event)| {
                    serde_json::json!({"cursor": cursor.to_string(), "kind": event.kind(), "event": event})
                })
                .collect();
        }
        body
    }

    #[test]
    fn a_record_written_straight_is_the_json_the_api_built_through_a_value() {
        let (journaled, _, framework_id) = scenario();
        let t1 = Entity::task(&TaskId::new("t1"));
        let mut records = journaled.journal.history(&t1, 1..=9, 100).unwrap();
        assert!(records.iter().any(|record| !record.events.is_empty()));
        records.extend(
            journaled
                .journal
                .trail(1..=9, super::TrailFilter::default())
                .unwrap()
                .map(Result::unwrap),
        );
        // A refused command, from an operator, with a fractional time.
        let mut refused = records[0].clone();
        refused.verdict = corral_state::Verdict::Rejected(corral_state::Rejection::UnknownTask {
            framework_id,
            task_id: TaskId::new("ghost"),
        });
        refused.entry.actor = Actor::Operator { principal: Some("ops".into()) };
        refused.entry.at = Timestamp(1_764_558_720_250_000_000);
        records.push(refused.clone());
        // Nanoseconds, an operator without a principal, a request id that needs escaping.
        let mut odd = refused;
        odd.entry.at = Timestamp(1_764_558_720_000_000_007);
        odd.entry.actor = Actor::Operator { principal: None };
        odd.entry.request_id = RequestId::new("r\"quoted\"\n\u{e9}");
        odd.verdict = corral_state::Verdict::Duplicate;
        records.push(odd);
        assert!(records.iter().any(|record| record.entry.actor == Actor::Leader));
        assert!(records.iter().any(|record| record.entry.at.0 % 1_000_000_000 == 0));
        for record in &records {
            let written = serde_json::to_vec(&super::RecordJson(record)).unwrap();
            let built = as_the_api_built_it(record);
            let read: serde_json::Value = serde_json::from_slice(&written).unwrap();
            assert_eq!(read, built, "written straight, as a line");
            assert_eq!(serde_json::to_value(super::RecordJson(record)).unwrap(), built);
            // The export's fast path writes the very bytes serde_json writes.
            let mut line = b"previous line\n".to_vec();
            super::RecordJson(record).write_line(&mut line).unwrap();
            assert_eq!(
                String::from_utf8(line).unwrap(),
                format!("previous line\n{}", String::from_utf8(written).unwrap())
            );
        }
    }
}
