//! Checkpoints: the whole state, encoded, every so many commands (tree
//! `journal_checkpoints`, index → `ClusterState::snapshot` bytes). The state at any index is
//! the nearest checkpoint at or before it plus a replay of the rows between.
//!
//! They are a local cache, not part of what the masters agree on: a checkpoint is written on
//! its own thread from a copy of the state, so applying never waits for an encoding, and a
//! checkpoint skipped because the previous one is still being written only makes one
//! replay longer.
//!
//! The newest [`RECENT_KEPT`] checkpoints this process wrote are also kept as states, so a
//! question about recent history (`state_at`, `diff`) starts from one without decoding it
//! (decoding 100,000 tasks takes a few hundred milliseconds). They cost little memory: the
//! state's maps are persistent and a kept copy shares every part the live state has not
//! changed since. Any checkpoint at or before an index gives the right state there (the rows
//! after it are replayed), so a kept one is used whenever it is at or before the index asked.

use std::collections::BTreeMap;
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

/// How many checkpoints written by this process are kept as states (see the module docs):
/// with the default policy, the last 400,000 commands.
pub(crate) const RECENT_KEPT: usize = 8;

#[derive(Clone)]
pub(crate) struct Checkpoints {
    tree: sled::Tree,
    /// 0 for never.
    every: Arc<AtomicU64>,
    writer: Arc<Mutex<Option<SyncSender<Pending>>>>,
    /// The newest checkpoints written here, by index, as states.
    recent: Arc<Mutex<BTreeMap<u64, ClusterState>>>,
}

impl Checkpoints {
    pub(crate) fn open(db: &sled::Db) -> Result<Checkpoints, JournalError> {
        Ok(Checkpoints {
            tree: db.open_tree("journal_checkpoints")?,
            every: Arc::new(AtomicU64::new(CheckpointPolicy::DEFAULT.as_number())),
            writer: Arc::new(Mutex::new(None)),
            recent: Arc::new(Mutex::new(BTreeMap::new())),
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
        let sender = writer.get_or_insert_with(|| self.spawn_writer());
        match sender.try_send((index, Box::new(state.clone()))) {
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

    fn spawn_writer(&self) -> SyncSender<Pending> {
        let (sender, receiver) = sync_channel::<Pending>(1);
        let checkpoints = self.clone();
        std::thread::Builder::new()
            .name("journal-checkpoints".to_owned())
            .spawn(move || {
                for (index, state) in receiver {
                    if let Err(error) = checkpoints.write(index, &state) {
                        tracing::warn!(index, %error, "cannot write a journal checkpoint");
                    }
                }
            })
            .expect("a thread can be started: the process is not out of threads at this size");
        sender
    }

    pub(crate) fn write(&self, index: u64, state: &ClusterState) -> Result<(), JournalError> {
        let bytes = state.snapshot().map_err(|source| JournalError::Corrupt { index, source })?;
        self.tree.insert(index.to_be_bytes(), bytes)?;
        let mut recent = self.recent();
        recent.insert(index, state.clone());
        while recent.len() > RECENT_KEPT {
            recent.pop_first();
        }
        Ok(())
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, ClusterState>> {
        self.recent.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The state at the newest checkpoint at or before `index` and that checkpoint's index:
    /// a kept state when there is one, else the newest on disk, decoded.
    pub(crate) fn state_at_or_before(
        &self,
        index: u64,
    ) -> Result<Option<(u64, ClusterState)>, JournalError> {
        if let Some((&at, state)) = self.recent().range(..=index).next_back() {
            return Ok(Some((at, state.clone())));
        }
        let Some((at, bytes)) = self.at_or_before(index)? else { return Ok(None) };
        let state = ClusterState::from_snapshot(&bytes)
            .map_err(|source| JournalError::Corrupt { index: at, source })?;
        Ok(Some((at, state)))
    }

    /// The newest checkpoint at or before `index`.
    fn at_or_before(&self, index: u64) -> Result<Option<(u64, sled::IVec)>, JournalError> {
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
        self.recent().retain(|&at, _| at >= index);
        Ok(())
    }

    pub(crate) fn clear(&self) -> Result<(), JournalError> {
        self.recent().clear();
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

    use super::{Checkpoints, RECENT_KEPT};
    use crate::journal::JournalError;

    /// Overwrites the checkpoint at `index` on disk with bytes that do not decode: a state
    /// that still comes back was kept, not decoded.
    fn spoil_on_disk(checkpoints: &Checkpoints, index: u64) {
        checkpoints.tree.insert(index.to_be_bytes(), b"not a state".to_vec()).unwrap();
    }

    fn index_of(answer: Result<Option<(u64, ClusterState)>, JournalError>) -> Option<u64> {
        answer.unwrap().map(|(index, _)| index)
    }

    #[test]
    fn the_newest_checkpoints_are_answered_without_decoding_and_older_ones_from_disk() {
        let directory = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(directory.path()).open().unwrap();
        let checkpoints = Checkpoints::open(&db).unwrap();
        let state = ClusterState::default();
        let written: Vec<u64> = (1..=RECENT_KEPT as u64 + 2).map(|n| n * 100).collect();
        for &index in &written {
            checkpoints.write(index, &state).unwrap();
            spoil_on_disk(&checkpoints, index);
        }
        // Kept: the newest RECENT_KEPT, each answering for the indexes up to the next one.
        assert_eq!(index_of(checkpoints.state_at_or_before(1_050)), Some(1_000));
        assert_eq!(index_of(checkpoints.state_at_or_before(350)), Some(300));
        assert_eq!(index_of(checkpoints.state_at_or_before(99)), None);
        // The two oldest were let go: they come from disk, where they no longer decode.
        assert!(matches!(
            checkpoints.state_at_or_before(250),
            Err(JournalError::Corrupt { index: 200, .. })
        ));
        // Trimming and clearing let go of kept states too.
        checkpoints.trim_before(500).unwrap();
        assert_eq!(index_of(checkpoints.state_at_or_before(450)), None);
        assert_eq!(index_of(checkpoints.state_at_or_before(550)), Some(500));
        checkpoints.clear().unwrap();
        assert_eq!(index_of(checkpoints.state_at_or_before(1_050)), None);
    }
}
