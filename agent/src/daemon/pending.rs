//! Status updates the master has not committed yet, one file per task under
//! `work_dir/meta/updates/`, so an agent restarted mid-delivery resends the same uuids and
//! the master's de-duplication keeps each update in the log once.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use corral_state::model::TaskStatus;
use corral_state::{FrameworkId, TaskId};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{
    file_name_for, read_optional, sorted_entries, write_atomically, CheckpointError,
};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingUpdates {
    pub framework_id: FrameworkId,
    pub task_id: TaskId,
    /// Oldest first: the order they must reach the master in.
    pub statuses: Vec<TaskStatus>,
}

#[derive(Debug)]
pub struct PendingStore {
    updates_dir: PathBuf,
    // Appends and removals are read-modify-write of one file.
    writing: Mutex<()>,
}

impl PendingStore {
    pub fn new(meta_dir: &Path) -> PendingStore {
        PendingStore { updates_dir: meta_dir.join("updates"), writing: Mutex::new(()) }
    }

    fn path(&self, framework_id: &FrameworkId, task_id: &TaskId) -> PathBuf {
        self.updates_dir
            .join(file_name_for(framework_id.as_str()))
            .join(format!("{}.json", file_name_for(task_id.as_str())))
    }

    pub fn load(
        &self,
        framework_id: &FrameworkId,
        task_id: &TaskId,
    ) -> Result<Vec<TaskStatus>, CheckpointError> {
        let pending: Option<PendingUpdates> = read_optional(&self.path(framework_id, task_id))?;
        Ok(pending.map(|pending| pending.statuses).unwrap_or_default())
    }

    /// Every task with updates still to deliver, in file-name order.
    pub fn load_all(&self) -> Result<Vec<PendingUpdates>, CheckpointError> {
        let mut all = Vec::new();
        for framework_dir in sorted_entries(&self.updates_dir)? {
            for path in sorted_entries(&framework_dir)? {
                if path.extension().is_none_or(|extension| extension != "json") {
                    continue;
                }
                if let Some(pending) = read_optional::<PendingUpdates>(&path)? {
                    all.push(pending);
                }
            }
        }
        Ok(all)
    }

    pub fn push(
        &self,
        framework_id: &FrameworkId,
        status: &TaskStatus,
    ) -> Result<(), CheckpointError> {
        self.modify(framework_id, &status.task_id, |statuses| statuses.push(status.clone()))
    }

    /// Replaces the update with `old_uuid` (its uuid was spent on a rejection) by `status`.
    pub fn replace(
        &self,
        framework_id: &FrameworkId,
        old_uuid: &corral_state::UpdateUuid,
        status: &TaskStatus,
    ) -> Result<(), CheckpointError> {
        self.modify(framework_id, &status.task_id, |statuses| {
            for pending in statuses.iter_mut() {
                if pending.uuid.as_ref() == Some(old_uuid) {
                    *pending = status.clone();
                }
            }
        })
    }

    /// Forgets the update once the master has decided on it.
    pub fn remove(
        &self,
        framework_id: &FrameworkId,
        status: &TaskStatus,
    ) -> Result<(), CheckpointError> {
        self.modify(framework_id, &status.task_id, |statuses| {
            statuses.retain(|pending| pending.uuid != status.uuid)
        })
    }

    fn modify(
        &self,
        framework_id: &FrameworkId,
        task_id: &TaskId,
        change: impl FnOnce(&mut Vec<TaskStatus>),
    ) -> Result<(), CheckpointError> {
        let _writing = self.writing.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let path = self.path(framework_id, task_id);
        let mut statuses = self.load(framework_id, task_id)?;
        change(&mut statuses);
        if statuses.is_empty() {
            return match std::fs::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(source) => Err(CheckpointError::Write { path, source }),
            };
        }
        let pending = PendingUpdates {
            framework_id: framework_id.clone(),
            task_id: task_id.clone(),
            statuses,
        };
        write_atomically(&path, &pending)
    }
}
