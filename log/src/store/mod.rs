//! sled-backed storage for openraft: the log and vote ([`LogStore`]), the state machine and
//! its snapshots ([`StateMachineStore`]), and the [`Journal`](crate::journal::Journal).
//!
//! One sled database per master, one tree per concern: `log`, `raft_meta` (vote, committed,
//! last purged), `snapshot`, `journal`, `journal_events`, `journal_meta`.

mod log_store;
mod state_machine;

use std::path::Path;

use corral_state::model::Settings;

pub use log_store::{
    CommittedIndex, LogStore, StorageObserver, StorageObserverSlot, StorageOperation,
};
pub use state_machine::{Applied, StateMachineStore};

use crate::journal::{Journal, JournalError, JournalRetention};
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

/// Opens (or creates) the stores of one master in `directory`.
pub fn open(
    directory: &Path,
    settings: Settings,
    retention: JournalRetention,
) -> Result<(LogStore, StateMachineStore), StoreError> {
    let db = sled::Config::new()
        .path(directory)
        .mode(sled::Mode::HighThroughput)
        .cache_capacity(256 * 1024 * 1024)
        .open()?;
    let journal = Journal::open(&db, retention)?;
    let log_store = LogStore::open(db.clone())?;
    let state_machine = StateMachineStore::open(db, journal, settings)?;
    Ok((log_store, state_machine))
}

fn postcard_encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Encoding openraft's plain data types into a Vec cannot fail.
    postcard::to_allocvec(value).unwrap_or_default()
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
