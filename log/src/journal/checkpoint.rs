//! Checkpoints: the whole state, encoded, every so many commands (tree
//! `journal_checkpoints`, index → `ClusterState::snapshot` bytes). The state at any index is
//! the nearest checkpoint at or before it plus a replay of the rows between.
//!
//! They are a local cache, not part of what the masters agree on: a checkpoint is written on
//! its own thread from a copy of the state, so applying never waits for an encoding, and a
//! checkpoint skipped because the previous one is still being written only makes one
//! replay longer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};

use corral_state::ClusterState;

use super::JournalError;

/// How often a checkpoint is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointPolicy {
    Never,
    /// Whenever the number of commands applied crosses a multiple of this.
    EveryCommands(u64),
}

impl CheckpointPolicy {
    /// Chosen by measurement (BENCHMARKS.md, "Audit"): decoding a checkpoint of 100,000
    /// tasks and replaying this many commands after it each take about half of the 1 s
    /// budget of `state_at`.
    pub const DEFAULT: CheckpointPolicy = CheckpointPolicy::EveryCommands(50_000);

    fn as_number(self) -> u64 {
        match self {
            CheckpointPolicy::Never => 0,
            CheckpointPolicy::EveryCommands(every) => every,
        }
    }
}

/// What the checkpoint thread is handed: the index and a copy of the state right after it.
type Pending = (u64, Box<ClusterState>);

/// The checkpoint thread and the channel it is handed states by.
struct Writer {
    sender: SyncSender<Pending>,
    thread: std::thread::JoinHandle<()>,
}

#[derive(Clone)]
pub(crate) struct Checkpoints {
    tree: sled::Tree,
    /// 0 for never.
    every: Arc<AtomicU64>,
    writer: Arc<Mutex<Option<Writer>>>,
}

impl Checkpoints {
    pub(crate) fn open(db: &sled::Db) -> Result<Checkpoints, JournalError> {
        Ok(Checkpoints {
            tree: db.open_tree("journal_checkpoints")?,
            every: Arc::new(AtomicU64::new(CheckpointPolicy::DEFAULT.as_number())),
            writer: Arc::new(Mutex::new(None)),
        })
    }

    pub(crate) fn set_policy(&self, policy: CheckpointPolicy) {
        self.every.store(policy.as_number(), Ordering::Relaxed);
    }

    pub(crate) fn offer(&self, index: u64, commands_before: u64, state: &ClusterState) {
        let every = self.every.load(Ordering::Relaxed);
        if every == 0 || state.applied_commands() / every == commands_before / every {
            return;
        }
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let running = writer.get_or_insert_with(|| self.spawn_writer());
        match running.sender.try_send((index, Box::new(state.clone()))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                tracing::debug!(
                    index,
                    "checkpoint skipped: the previous one is still being written"
                )
            }
            Err(TrySendError::Disconnected(_)) => {
                tracing::warn!(index, "the checkpoint writer stopped; starting another");
                *writer = None;
            }
        }
    }

    /// Waits until every checkpoint handed to the thread is written; the next one offered
    /// starts another thread.
    pub(crate) fn finish_writing(&self) {
        let running = self.writer.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(Writer { sender, thread }) = running {
            // Without its sender the thread writes what it holds, then ends.
            drop(sender);
            if thread.join().is_err() {
                tracing::warn!("the checkpoint writer panicked");
            }
        }
    }

    fn spawn_writer(&self) -> Writer {
        let (sender, receiver) = sync_channel::<Pending>(1);
        // Without the sender: the thread must not keep its own channel open, or it would
        // outlive the journal and hold the database (and its file lock) for good.
        let checkpoints = Checkpoints { writer: Arc::new(Mutex::new(None)), ..self.clone() };
        let thread = std::thread::Builder::new()
            .name("journal-checkpoints".to_owned())
            .spawn(move || {
                for (index, state) in receiver {
                    if let Err(error) = checkpoints.write(index, &state) {
                        tracing::warn!(index, %error, "cannot write a journal checkpoint");
                    }
                }
            })
            .expect("a thread can be started: the process is not out of threads at this size");
        Writer { sender, thread }
    }

    pub(crate) fn write(&self, index: u64, state: &ClusterState) -> Result<(), JournalError> {
        let bytes = state.snapshot().map_err(|source| JournalError::Corrupt { index, source })?;
        self.tree.insert(index.to_be_bytes(), bytes)?;
        Ok(())
    }

    /// The newest checkpoint at or before `index`.
    pub(crate) fn at_or_before(
        &self,
        index: u64,
    ) -> Result<Option<(u64, sled::IVec)>, JournalError> {
        Ok(self
            .tree
            .range(..=index.to_be_bytes())
            .next_back()
            .transpose()?
            .map(|(key, value)| (super::decode_index(&key), value)))
    }

    /// The oldest checkpoint at or after `index`.
    pub(crate) fn at_or_after(&self, index: u64) -> Result<Option<u64>, JournalError> {
        Ok(self
            .tree
            .range(index.to_be_bytes()..)
            .next()
            .transpose()?
            .map(|(key, _)| super::decode_index(&key)))
    }

    /// Drops checkpoints older than `index`: no retained row follows them.
    pub(crate) fn trim_before(&self, index: u64) -> Result<(), JournalError> {
        let mut batch = sled::Batch::default();
        for row in self.tree.range(..index.to_be_bytes()) {
            batch.remove(row?.0);
        }
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    pub(crate) fn clear(&self) -> Result<(), JournalError> {
        self.tree.clear()?;
        Ok(())
    }

    /// Count and bytes, for the benchmark's cost report.
    pub(crate) fn footprint(&self) -> Result<(usize, u64), JournalError> {
        let mut bytes = 0u64;
        let mut count = 0;
        for row in self.tree.iter() {
            bytes += row?.1.len() as u64;
            count += 1;
        }
        Ok((count, bytes))
    }
}

#[cfg(test)]
mod tests {
    use corral_state::ClusterState;

    use super::Checkpoints;

    #[test]
    fn finishing_waits_for_the_checkpoints_handed_to_the_thread_and_a_new_one_starts_another() {
        let directory = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(directory.path()).open().unwrap();
        let checkpoints = Checkpoints::open(&db).unwrap();
        let writer = checkpoints.spawn_writer();
        writer.sender.send((7, Box::new(ClusterState::default()))).unwrap();
        *checkpoints.writer.lock().unwrap() = Some(writer);
        checkpoints.finish_writing();
        assert_eq!(checkpoints.at_or_before(10).unwrap().map(|(index, _)| index), Some(7));
        assert!(checkpoints.writer.lock().unwrap().is_none());
        // Nothing running: finishing again returns at once.
        checkpoints.finish_writing();
    }

    #[test]
    fn a_journal_let_go_lets_its_database_go_once_its_checkpoint_is_written() {
        let directory = tempfile::tempdir().unwrap();
        {
            let db = sled::Config::new().path(directory.path()).open().unwrap();
            let checkpoints = Checkpoints::open(&db).unwrap();
            let writer = checkpoints.spawn_writer();
            writer.sender.send((7, Box::new(ClusterState::default()))).unwrap();
            *checkpoints.writer.lock().unwrap() = Some(writer);
        }
        // The writer thread finishes its checkpoint and ends; then nothing holds the files.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let reopened = loop {
            match sled::Config::new().path(directory.path()).open() {
                Ok(db) => break db,
                Err(error) if std::time::Instant::now() > deadline => {
                    panic!("the database is still held: {error}")
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        };
        let checkpoints = Checkpoints::open(&reopened).unwrap();
        let written = checkpoints.at_or_before(10).unwrap().map(|(index, _)| index);
        assert_eq!(written, Some(7));
    }
}
