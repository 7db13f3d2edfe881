//! What the log reports about its own work, for the master's metrics. The log knows no
//! Prometheus: the master implements [`LogObserver`] and turns observations into histograms.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// One piece of work the log did, with how long it took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observation {
    /// Writing an append's entries into sled (no fsync).
    Append { took: Duration },
    /// The fsync that makes an append durable.
    Flush { took: Duration },
    /// Applying committed entries to the state and journaling their events.
    Apply { entries: usize, took: Duration },
    /// A batch of commands from the proposer's queue to committed and applied (leader).
    Commit { commands: usize, took: Duration },
    /// Building (and persisting) a snapshot of the state.
    SnapshotBuild { bytes: u64, took: Duration },
    /// Installing a snapshot received from the leader.
    SnapshotInstall { bytes: u64, took: Duration },
}

/// Told of every [`Observation`]; called on the log's hot paths, so it must be quick.
pub trait LogObserver: Send + Sync {
    fn observe(&self, observation: Observation);
}

/// Where the master plugs its observer in once the log is running (set once, shared by the
/// stores and the proposer).
#[derive(Clone, Default)]
pub(crate) struct ObserverSlot(Arc<OnceLock<Arc<dyn LogObserver>>>);

impl ObserverSlot {
    /// Installs the observer; later calls are ignored.
    pub(crate) fn set(&self, observer: Arc<dyn LogObserver>) {
        let _ = self.0.set(observer);
    }

    pub(crate) fn record(&self, observation: Observation) {
        if let Some(observer) = self.0.get() {
            observer.observe(observation);
        }
    }
}
