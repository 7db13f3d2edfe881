//! Backups of the cluster state and seeding a new cluster from one.
//!
//! A [`Backup`] holds the cluster state at one applied index `N` as the journal's newest
//! checkpoint at or before `N` plus the journal tail after it up to `N` (the commands, with
//! the leader's stamps), and what replaying that tail onto the checkpoint must give: the
//! digest of the state at `N` and the journal's hash chain at `N`, both read atomically with
//! `N` under the state machine's lock. [`Backup::decode`] replays the tail and checks both,
//! so a file that decodes is the state at `N`. Without a usable checkpoint the state at `N`
//! itself is the base and the tail is empty.
//!
//! [`restore`] seeds an empty data directory as the only voter of a new cluster: its
//! journal restarts at the checkpoint and journals the tail again (the same rows, so the
//! same hash chain, verdicts and entity index as the lost cluster had), the state at `N`
//! becomes its snapshot, and its vote is set to the backup's term so its first election
//! continues the term numbering. Other masters then join with `members add`.
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

use crate::journal::{ChainHead, JournalBatch, JournalRetention};
use crate::store::{self, InitialSettings};
use crate::typ::{LogId, Vote};
use crate::{Batch, LogError, LogNode, NodeId, ReadConsistency};

const MAGIC: &[u8; 8] = b"CORRALBK";

/// How far past the backup's index a restored log resumes: more entries than a lost cluster
/// writes between its last backup and its loss (a billion is days at full speed).
pub const RESTORE_INDEX_GAP: u64 = 1_000_000_000;
const FORMAT_VERSION: u32 = 1;

/// One journal row of the tail: a Raft entry's commands.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct TailRow {
    index: u64,
    /// `codec::encode_entries` of the entry's commands (each with the leader's stamp).
    commands: Vec<u8>,
}

/// The file's body. Append new fields only at the end, with a format version bump.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct BackupFile {
    format: u32,
    /// `N`: the applied index the backup stands at.
    index: u64,
    term: u64,
    /// The digest of the state at `N`.
    digest: Digest,
    /// The journal's hash chain at `N`.
    chain: ChainHead,
    initial_settings: Settings,
    /// The checkpoint the tail starts from: its index, the chain there, the state there.
    base_index: u64,
    base_chain: ChainHead,
    base_state: Vec<u8>,
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
    #[error("the backup's journal tail chains to {actual}, not the {recorded} it records")]
    ChainMismatch { recorded: ChainHead, actual: ChainHead },
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

    /// The journal's hash chain at the backup's index.
    pub fn chain(&self) -> ChainHead {
        self.file.chain
    }

    /// The checkpoint index the journal tail starts after, and the tail's last index.
    pub fn tail_bounds(&self) -> (u64, u64) {
        (self.file.base_index, self.file.index)
    }

    pub fn encode(&self) -> Result<Vec<u8>, BackupError> {
        let mut bytes = MAGIC.to_vec();
        let body = postcard::to_allocvec(&self.file)
            .map_err(|error| BackupError::Corrupt(error.to_string()))?;
        bytes.extend_from_slice(&body);
        Ok(bytes)
    }

    /// Decodes a backup, replays its tail onto its checkpoint and checks that this gives the
    /// digest and the hash chain it records.
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
        let mut state = ClusterState::from_snapshot(&file.base_state)
            .map_err(|error| BackupError::Corrupt(format!("the checkpoint: {error}")))?;
        let mut chain = file.base_chain;
        for row in &file.tail {
            let (batch, at) = row.batch()?;
            for entry in batch.entries() {
                state.apply(entry);
            }
            chain = chain.link(row.index, &journal_row(at, &batch));
        }
        let actual = state.digest();
        if actual != file.digest {
            return Err(BackupError::DigestMismatch { recorded: file.digest, actual });
        }
        if chain.hash != file.chain.hash {
            return Err(BackupError::ChainMismatch { recorded: file.chain, actual: chain });
        }
        Ok(Backup { file })
    }
}

impl TailRow {
    fn batch(&self) -> Result<(Batch, u64), BackupError> {
        let entries = codec::decode_entries(&self.commands)
            .map_err(|error| BackupError::Corrupt(format!("tail row {}: {error}", self.index)))?;
        // Stamped as the journal stamps a row (`JournalBatch::record`): the newest command's
        // time; a journaled row always holds at least one command.
        let at = entries.iter().map(|entry| entry.at.0).max().ok_or_else(|| {
            BackupError::Corrupt(format!("tail row {} holds no command", self.index))
        })?;
        let batch = Batch::encode(entries)
            .map_err(|error| BackupError::Corrupt(format!("tail row {}: {error}", self.index)))?;
        Ok((batch, at))
    }
}

/// The bytes the journal stores and chains for one entry: the leader's stamp, then the batch.
fn journal_row(at: u64, batch: &Batch) -> Vec<u8> {
    let mut row = Vec::with_capacity(8 + batch.encoded().len());
    row.extend_from_slice(&at.to_be_bytes());
    row.extend_from_slice(batch.encoded());
    row
}

impl LogNode {
    /// The applied state at one index `N` with its term, digest and hash chain, as the newest
    /// checkpoint at or before `N` and the journal after it. With
    /// [`ReadConsistency::Linearizable`] (leader only) `N` includes everything committed
    /// before the call.
    pub async fn backup(&self, consistency: ReadConsistency) -> Result<Backup, LogError> {
        if consistency == ReadConsistency::Linearizable {
            self.ensure_linearizable().await?;
        }
        let state_machine = self.state_machine();
        // Read together under the lock; the journal rows up to `last_applied` are written
        // before it is released.
        let (state, last_applied, chain) = {
            let applied = state_machine.read();
            (applied.state.clone(), applied.last_applied, applied.chain)
        };
        let index = last_applied.map_or(0, |log_id| log_id.index);
        let term = last_applied.map_or(0, |log_id| log_id.leader_id.term);
        let initial_settings = state_machine.initial_state().settings().clone();
        let journal = self.journal().clone();
        let file = tokio::task::spawn_blocking(move || -> Result<BackupFile, LogError> {
            let digest = state.digest();
            let usable = |at: u64| {
                at >= journal.chain_base().index
                    && journal.trimmed_through().is_none_or(|trimmed| trimmed <= at)
            };
            let complete = journal.chain_base().index == 0 && journal.trimmed_through().is_none();
            let (base_index, base_chain, base_state) =
                match journal.checkpoint_at_or_before(index)? {
                    Some((at, checkpoint)) if usable(at) => (at, journal.chain_at(at)?, checkpoint),
                    // Before the first checkpoint, a journal kept from the first entry
                    // starts from the state before it.
                    _ if complete => {
                        (0, journal.chain_at(0)?, ClusterState::new(initial_settings.clone()))
                    }
                    _ => (index, chain, state),
                };
            let mut tail = Vec::new();
            if base_index < index {
                for row in journal.commands(base_index + 1..=index) {
                    let (row_index, _, entries) = row?;
                    tail.push(TailRow {
                        index: row_index,
                        commands: codec::encode_entries(&entries)?,
                    });
                }
            }
            Ok(BackupFile {
                format: FORMAT_VERSION,
                index,
                term,
                digest,
                chain,
                initial_settings,
                base_index,
                base_chain,
                base_state: base_state.snapshot()?,
                tail,
            })
        })
        .await
        .map_err(|error| LogError::Raft(error.to_string()))??;
        Ok(Backup { file })
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
    // The journal restarts at the checkpoint and journals the tail again.
    let journal = state_machine.journal();
    let base_state = ClusterState::from_snapshot(&file.base_state)
        .map_err(|error| BackupError::Corrupt(format!("the checkpoint: {error}")))?;
    journal
        .restart_after(file.base_index, file.base_chain, &base_state)
        .map_err(|error| storage(&error))?;
    let mut state = base_state;
    let mut rows = JournalBatch::new(file.base_chain, journal);
    for row in &file.tail {
        let (batch, _) = row.batch()?;
        let outcomes: Vec<_> = batch.entries().iter().map(|entry| state.apply(entry)).collect();
        rows.record(row.index, &batch, &outcomes, &state).map_err(|error| storage(&error))?;
    }
    if rows.head().hash != file.chain.hash {
        return Err(BackupError::ChainMismatch { recorded: file.chain, actual: rows.head() });
    }
    journal.write(rows).map_err(|error| storage(&error))?;
    let state_bytes = state.snapshot().map_err(|error| storage(&error))?;
    let log_id = LogId::new(CommittedLeaderId::new(file.term, node_id), resumes_after);
    let membership = Membership::new(
        vec![std::collections::BTreeSet::from([node_id])],
        std::collections::BTreeMap::from([(node_id, BasicNode::new(address))]),
    );
    // The id carries the chain, as every snapshot's does: a master that installs it from
    // this one continues the same chain.
    let meta = SnapshotMeta {
        last_log_id: Some(log_id),
        last_membership: StoredMembership::new(Some(log_id), membership),
        snapshot_id: format!("restored-{}-{}-{}", file.term, file.index, file.chain.to_tag()),
    };
    state_machine.seed_snapshot(meta, state_bytes).map_err(|error| storage(&error))?;
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
