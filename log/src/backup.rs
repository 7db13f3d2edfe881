//! Backups of the cluster state and seeding a new cluster from one.
//!
//! A [`Backup`] is the applied state at one log index, read atomically with that index (under
//! the state machine's lock), with the index's term, the state's digest, the settings the
//! cluster's log started from, and the journal tail: every journaled command and its events
//! after the last Raft snapshot (this log's checkpoint) up to the index, so what happened
//! just before the backup stays readable after a restore.
//!
//! [`restore`] seeds an empty data directory as the only voter of a new cluster: the state
//! becomes its snapshot, the journal restarts with the tail (nothing older is claimed), and
//! its vote is set to the backup's term so its first election continues the term numbering.
//! Other masters then join with `members add`.
//!
//! The new log resumes [`RESTORE_INDEX_GAP`] indexes after the backup's. The lost cluster
//! went on past the backup, and agents and stream subscribers hold cursors from that lost
//! stretch: had the new log reused those indexes, a cursor would name different events
//! there and its holder would skip new ones in silence. After the gap every new event lies
//! beyond any cursor of the lost cluster, so resuming from one misses nothing that still
//! exists.
//!
//! The file is `CORRALBK`, then a postcard [`BackupFile`] starting with its format version.

use std::path::Path;

use corral_state::model::Settings;
use corral_state::{codec, ClusterState, Digest};
use openraft::storage::RaftLogStorage;
use openraft::{BasicNode, CommittedLeaderId, Membership, SnapshotMeta, StoredMembership};
use serde::{Deserialize, Serialize};

use crate::journal::{JournalBatch, JournalRetention};
use crate::store::{self, InitialSettings};
use crate::typ::{LogId, Vote};
use crate::{Batch, LogError, LogNode, NodeId, ReadConsistency};

const MAGIC: &[u8; 8] = b"CORRALBK";

/// How far past the backup's index a restored log resumes: more entries than a lost cluster
/// writes between its last backup and its loss (a billion is days at full speed).
pub const RESTORE_INDEX_GAP: u64 = 1_000_000_000;
const FORMAT_VERSION: u32 = 1;

/// One journal row of the tail: a Raft entry's commands and the events they produced.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct TailRow {
    index: u64,
    /// `codec::encode_entries` of the entry's commands.
    commands: Vec<u8>,
    /// `codec::encode_events` of its events (empty list when it had none).
    events: Vec<u8>,
}

/// The file's body. Append new fields only at the end, with a format version bump.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct BackupFile {
    format: u32,
    index: u64,
    term: u64,
    digest: Digest,
    initial_settings: Settings,
    /// `ClusterState::snapshot()` at `index`.
    state: Vec<u8>,
    tail: Vec<TailRow>,
}

/// A consistent copy of the cluster state.
#[derive(Clone, Debug)]
pub struct Backup {
    file: BackupFile,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("not a Corral backup (it does not start with CORRALBK)")]
    NotABackup,
    #[error("backup format {0} is not one this version reads ({FORMAT_VERSION})")]
    UnknownFormat(u32),
    #[error("the backup does not decode: {0}")]
    Corrupt(String),
    #[error("the backup's state has digest {actual}, not the {recorded} it records")]
    DigestMismatch { recorded: Digest, actual: Digest },
    #[error("{0} is not empty: restore only seeds a new data directory")]
    NotEmpty(String),
    #[error("{0}")]
    Storage(String),
}

impl Backup {
    pub fn index(&self) -> u64 {
        self.file.index
    }

    pub fn term(&self) -> u64 {
        self.file.term
    }

    pub fn digest(&self) -> Digest {
        self.file.digest
    }

    /// The first and last log index of the journal tail it carries.
    pub fn tail_bounds(&self) -> Option<(u64, u64)> {
        Some((self.file.tail.first()?.index, self.file.tail.last()?.index))
    }

    pub fn encode(&self) -> Result<Vec<u8>, BackupError> {
        let mut bytes = MAGIC.to_vec();
        let body = postcard::to_allocvec(&self.file)
            .map_err(|error| BackupError::Corrupt(error.to_string()))?;
        bytes.extend_from_slice(&body);
        Ok(bytes)
    }

    /// Decodes a backup and checks that its state has the digest it records.
    pub fn decode(bytes: &[u8]) -> Result<Backup, BackupError> {
        let body = bytes.strip_prefix(MAGIC.as_slice()).ok_or(BackupError::NotABackup)?;
        let format: u32 = postcard::take_from_bytes(body)
            .map_err(|error| BackupError::Corrupt(error.to_string()))?
            .0;
        if format != FORMAT_VERSION {
            return Err(BackupError::UnknownFormat(format));
        }
        let file: BackupFile =
            postcard::from_bytes(body).map_err(|error| BackupError::Corrupt(error.to_string()))?;
        let actual = Backup::state_of(&file)?.digest();
        if actual != file.digest {
            return Err(BackupError::DigestMismatch { recorded: file.digest, actual });
        }
        Ok(Backup { file })
    }

    fn state_of(file: &BackupFile) -> Result<ClusterState, BackupError> {
        ClusterState::from_snapshot(&file.state)
            .map_err(|error| BackupError::Corrupt(format!("the state: {error}")))
    }
}

impl LogNode {
    /// The applied state at one index with its term and digest, and the journal after the
    /// last snapshot up to it. With [`ReadConsistency::Linearizable`] (leader only) the
    /// index includes everything committed before the call.
    pub async fn backup(&self, consistency: ReadConsistency) -> Result<Backup, LogError> {
        if consistency == ReadConsistency::Linearizable {
            self.ensure_linearizable().await?;
        }
        let state_machine = self.state_machine();
        // Copied under the lock so the state and its log id belong together; encoded after.
        let (state, last_applied) = {
            let applied = state_machine.read();
            (applied.state.clone(), applied.last_applied)
        };
        let index = last_applied.map_or(0, |log_id| log_id.index);
        let term = last_applied.map_or(0, |log_id| log_id.leader_id.term);
        let initial_settings = state_machine.initial_state().settings().clone();
        let (state, digest) = tokio::task::spawn_blocking(move || {
            state.snapshot().map(|bytes| (bytes, state.digest()))
        })
        .await
        .map_err(|error| LogError::Raft(error.to_string()))??;
        // The journal rows of `index` are written just after the state moves past it; the
        // applied-index watch moves once they are.
        let mut applied_index = state_machine.applied_index();
        applied_index
            .wait_for(|applied| *applied >= index)
            .await
            .map_err(|_| LogError::ShuttingDown)?;
        let snapshot_index =
            self.raft().metrics().borrow().snapshot.map_or(0, |log_id| log_id.index);
        let tail = self.journal_tail(snapshot_index + 1, index)?;
        let file = BackupFile {
            format: FORMAT_VERSION,
            index,
            term,
            digest,
            initial_settings,
            state,
            tail,
        };
        Ok(Backup { file })
    }

    fn journal_tail(&self, from: u64, to: u64) -> Result<Vec<TailRow>, LogError> {
        if from > to {
            return Ok(Vec::new());
        }
        let journal = self.journal();
        let mut events: std::collections::BTreeMap<u64, Vec<u8>> = journal
            .events(from..=to, usize::MAX)?
            .into_iter()
            .map(|(index, events)| codec::encode_events(&events).map(|bytes| (index, bytes)))
            .collect::<Result<_, _>>()?;
        let mut tail = Vec::new();
        for row in journal.commands(from..=to) {
            let (index, _, entries) = row?;
            let events = match events.remove(&index) {
                Some(bytes) => bytes,
                None => codec::encode_events(&[])?,
            };
            tail.push(TailRow { index, commands: codec::encode_entries(&entries)?, events });
        }
        Ok(tail)
    }
}

/// What [`restore`] made, read back from the data directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restored {
    /// The backup's index.
    pub index: u64,
    /// The index the restored state stands at: the new log continues after it.
    pub resumes_after: u64,
    pub term: u64,
    /// The digest of the state the data directory now holds (equal to the backup's).
    pub digest: Digest,
    pub journal_rows: usize,
}

/// Seeds the empty `data_dir` from `backup` as master `node_id` at `address`, the only voter
/// of a new cluster. Start it with `corral master` on that address and data directory.
pub async fn restore(
    backup: &Backup,
    data_dir: &Path,
    node_id: NodeId,
    address: &str,
) -> Result<Restored, BackupError> {
    let storage = |error: &dyn std::fmt::Display| BackupError::Storage(error.to_string());
    if let Ok(mut entries) = std::fs::read_dir(data_dir) {
        if entries.next().is_some() {
            return Err(BackupError::NotEmpty(data_dir.display().to_string()));
        }
    }
    let file = &backup.file;
    let (mut log_store, state_machine) = store::open(
        data_dir,
        InitialSettings::Given(file.initial_settings.clone()),
        JournalRetention::KEEP_ALL,
    )
    .map_err(|error| storage(&error))?;
    let resumes_after = file.index.checked_add(RESTORE_INDEX_GAP).ok_or_else(|| {
        BackupError::Corrupt(format!("index {} leaves no room for a new log", file.index))
    })?;
    let log_id = LogId::new(CommittedLeaderId::new(file.term, node_id), resumes_after);
    let membership = Membership::new(
        vec![std::collections::BTreeSet::from([node_id])],
        std::collections::BTreeMap::from([(node_id, BasicNode::new(address))]),
    );
    let meta = SnapshotMeta {
        last_log_id: Some(log_id),
        last_membership: StoredMembership::new(Some(log_id), membership),
        snapshot_id: format!("restored-{}-{}", file.term, file.index),
    };
    state_machine.seed_snapshot(meta, file.state.clone()).map_err(|error| storage(&error))?;
    // The journal says honestly what it lacks: everything before the tail.
    let journal = state_machine.journal();
    let first = file.tail.first().map_or(file.index + 1, |row| row.index);
    let lost_through = first - 1;
    journal.restart_after(lost_through).map_err(|error| storage(&error))?;
    let mut rows = JournalBatch::default();
    for row in &file.tail {
        let entries = codec::decode_entries(&row.commands)
            .map_err(|error| BackupError::Corrupt(format!("tail row {}: {error}", row.index)))?;
        let events = codec::decode_events(&row.events)
            .map_err(|error| BackupError::Corrupt(format!("tail row {}: {error}", row.index)))?;
        let batch = Batch::encode(entries).map_err(|error| storage(&error))?;
        rows.record(row.index, &batch, &events).map_err(|error| storage(&error))?;
    }
    journal.write(rows).map_err(|error| storage(&error))?;
    // Its first election then stands in the term after the backup's.
    log_store.save_vote(&Vote::new(file.term, node_id)).await.map_err(|error| storage(&error))?;
    state_machine.flush().await.map_err(|error| storage(&error))?;
    drop((log_store, state_machine));
    // Read back what a master starting on this directory will find.
    let (_, state_machine) =
        store::open(data_dir, InitialSettings::Recorded, JournalRetention::KEEP_ALL)
            .map_err(|error| storage(&error))?;
    let (found_index, digest) = {
        let applied = state_machine.read();
        (applied.last_applied.map(|log_id| log_id.index), applied.state.digest())
    };
    if digest != file.digest {
        return Err(BackupError::DigestMismatch { recorded: file.digest, actual: digest });
    }
    if found_index != Some(resumes_after) {
        return Err(BackupError::Storage(format!(
            "the restored directory stands at index {found_index:?}, not {resumes_after}"
        )));
    }
    Ok(Restored {
        index: file.index,
        resumes_after,
        term: file.term,
        digest,
        journal_rows: file.tail.len(),
    })
}
