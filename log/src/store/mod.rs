//! sled-backed storage for openraft: the log and vote ([`LogStore`]), the state machine and
//! its snapshots ([`StateMachineStore`]), and the [`Journal`](crate::journal::Journal).
//!
//! One sled database per master, one tree per concern: `log`, `raft_meta` (vote, committed,
//! last purged), `snapshot`, `journal`, `journal_events`, `journal_meta`, `cluster` (the
//! settings the state started from).

mod log_store;
mod state_machine;

use std::path::Path;

use corral_state::model::Settings;

pub use log_store::{CommittedIndex, LogStore};
pub use state_machine::{off_the_workers, Applied, StateMachineStore};

use crate::journal::{Journal, JournalError, JournalRetention};
use crate::observe::ObserverSlot;
use crate::typ;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the sled database: {0}")]
    Sled(#[from] sled::Error),
    #[error("{0}")]
    Journal(#[from] JournalError),
    #[error("stored {what} does not decode: {reason}")]
    Corrupt { what: &'static str, reason: String },
}

/// The settings a master's state starts from, before its first entry. They are recorded
/// in the data directory when it is new, so a later replay of its journal starts from the
/// same state.
#[derive(Clone, Debug)]
pub enum InitialSettings {
    /// A new directory records these; an existing one keeps what it recorded.
    Given(Settings),
    /// What the directory recorded (the defaults for one older than the record).
    Recorded,
}

/// Opens (or creates) the stores of one master in `directory`.
pub fn open(
    directory: &Path,
    settings: InitialSettings,
    retention: JournalRetention,
) -> Result<(LogStore, StateMachineStore), StoreError> {
    let db = sled::Config::new()
        .path(directory)
        .mode(sled::Mode::HighThroughput)
        .cache_capacity(256 * 1024 * 1024)
        .open()?;
    let settings = initial_settings(&db, settings)?;
    let journal = Journal::open(&db, retention)?;
    // One observer for both stores: the master installs it once the node runs.
    let observer = ObserverSlot::default();
    let log_store = LogStore::open(db.clone(), observer.clone())?;
    let state_machine = StateMachineStore::open(db, journal, settings, observer)?;
    Ok((log_store, state_machine))
}

const INITIAL_SETTINGS_KEY: &[u8] = b"initial_settings";

fn initial_settings(db: &sled::Db, settings: InitialSettings) -> Result<Settings, StoreError> {
    let cluster = db.open_tree("cluster")?;
    let recorded = match cluster.get(INITIAL_SETTINGS_KEY)? {
        Some(bytes) => Some(postcard_decode::<Settings>("initial settings", &bytes)?),
        None => None,
    };
    match (settings, recorded) {
        (InitialSettings::Given(given), Some(recorded)) => {
            if recorded.cluster_id != given.cluster_id {
                tracing::warn!(
                    recorded = %recorded.cluster_id,
                    given = %given.cluster_id,
                    "this data directory belongs to another cluster id; keeping the recorded one"
                );
            }
            Ok(recorded)
        }
        (InitialSettings::Given(given), None) => {
            cluster.insert(INITIAL_SETTINGS_KEY, postcard_encode(&given))?;
            cluster.flush()?;
            Ok(given)
        }
        (InitialSettings::Recorded, recorded) => Ok(recorded.unwrap_or_default()),
    }
}

fn postcard_encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).expect(
        "votes, log ids, stored snapshots and Raft entries always encode: plain structs of integers and byte strings (a Batch is its encoded bytes already)",
    )
}

fn postcard_decode<T: serde::de::DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    postcard::from_bytes(bytes)
        .map_err(|error| StoreError::Corrupt { what, reason: error.to_string() })
}

fn io_error(error: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(error.to_string())
}

fn read_error(error: impl std::fmt::Display) -> typ::StorageError {
    typ::StorageIOError::read(&io_error(error)).into()
}

fn write_error(
    kind: fn(&std::io::Error) -> typ::StorageIOError,
    error: impl std::fmt::Display,
) -> typ::StorageError {
    kind(&io_error(error)).into()
}
