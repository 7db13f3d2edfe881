//! What the agent writes to disk so that a new agent process, after a crash or a restart,
//! finds its tasks again: one JSON file per task under `work_dir/meta/`, written atomically.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use corral_state::model::{TaskInfo, TaskState};
use corral_state::{AgentId, Cursor, FrameworkId, TaskId};
use serde::{Deserialize, Serialize};

use crate::limits::TaskCgroup;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot write checkpoint {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot read checkpoint {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("checkpoint {path} is corrupt: {source}")]
    Corrupt { path: PathBuf, source: serde_json::Error },
}

/// The agent-wide record: who it is and how far it has read its stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentCheckpoint {
    pub agent_id: AgentId,
    pub boot_id: String,
    /// The last event the reconciler fully handled; the stream resumes after it.
    pub cursor: Option<Cursor>,
}

/// How to find a task's container again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RuntimeCheckpoint {
    Process {
        /// The wrapper shell: leader of the task's process group.
        pid: u32,
        /// Field 22 of `/proc/<pid>/stat`; with the boot id, tells a live task from a
        /// recycled pid.
        start_time: u64,
        /// Where the wrapper writes the task's exit code when it ends.
        exit_status_file: PathBuf,
        cgroup: Option<TaskCgroup>,
    },
    Docker {
        container_id: String,
        container_name: String,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskCheckpoint {
    pub agent_id: AgentId,
    pub framework_id: FrameworkId,
    pub task: TaskInfo,
    pub sandbox: PathBuf,
    pub boot_id: String,
    pub runtime: RuntimeCheckpoint,
    /// The newest state the master has committed for this task, so a recovered agent does
    /// not report a transition twice.
    pub last_reported: Option<TaskState>,
}

impl TaskCheckpoint {
    pub fn task_id(&self) -> &TaskId {
        &self.task.task_id
    }
}

/// The `meta/` folder of a work dir.
#[derive(Clone, Debug)]
pub struct CheckpointStore {
    meta_dir: PathBuf,
}

impl CheckpointStore {
    pub fn new(work_dir: &Path) -> CheckpointStore {
        CheckpointStore { meta_dir: work_dir.join("meta") }
    }

    pub fn meta_dir(&self) -> &Path {
        &self.meta_dir
    }

    fn agent_path(&self) -> PathBuf {
        self.meta_dir.join("agent.json")
    }

    fn tasks_dir(&self) -> PathBuf {
        self.meta_dir.join("tasks")
    }

    fn task_path(&self, framework_id: &FrameworkId, task_id: &TaskId) -> PathBuf {
        self.tasks_dir()
            .join(file_name_for(framework_id.as_str()))
            .join(format!("{}.json", file_name_for(task_id.as_str())))
    }

    pub fn save_agent(&self, checkpoint: &AgentCheckpoint) -> Result<(), CheckpointError> {
        write_atomically(&self.agent_path(), checkpoint)
    }

    pub fn load_agent(&self) -> Result<Option<AgentCheckpoint>, CheckpointError> {
        read_optional(&self.agent_path())
    }

    pub fn save_task(&self, checkpoint: &TaskCheckpoint) -> Result<(), CheckpointError> {
        write_atomically(
            &self.task_path(&checkpoint.framework_id, checkpoint.task_id()),
            checkpoint,
        )
    }

    pub fn remove_task(
        &self,
        framework_id: &FrameworkId,
        task_id: &TaskId,
    ) -> Result<(), CheckpointError> {
        let path = self.task_path(framework_id, task_id);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(CheckpointError::Write { path, source }),
        }
    }

    pub fn load_task(
        &self,
        framework_id: &FrameworkId,
        task_id: &TaskId,
    ) -> Result<Option<TaskCheckpoint>, CheckpointError> {
        read_optional(&self.task_path(framework_id, task_id))
    }

    /// Every task checkpoint, in file-name order so recovery is repeatable.
    pub fn load_tasks(&self) -> Result<Vec<TaskCheckpoint>, CheckpointError> {
        let mut checkpoints = Vec::new();
        for framework_dir in sorted_entries(&self.tasks_dir())? {
            for path in sorted_entries(&framework_dir)? {
                if path.extension().is_some_and(|extension| extension == "json") {
                    if let Some(checkpoint) = read_optional(&path)? {
                        checkpoints.push(checkpoint);
                    }
                }
            }
        }
        Ok(checkpoints)
    }
}

/// The entries of `dir`, sorted; none when it does not exist.
pub(crate) fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, CheckpointError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(CheckpointError::Read { path: dir.to_owned(), source }),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let entry =
            entry.map_err(|source| CheckpointError::Read { path: dir.to_owned(), source })?;
        paths.push(entry.path());
    }
    paths.sort();
    Ok(paths)
}

/// Ids are chosen by frameworks: escape anything that is not safe in a file name, so that
/// distinct ids give distinct files.
pub(crate) fn file_name_for(id: &str) -> String {
    let mut name = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' || byte == b'.' {
            name.push(byte as char);
        } else {
            name.push_str(&format!("%{byte:02X}"));
        }
    }
    if name.starts_with('.') {
        name.replace_range(0..1, "%2E");
    }
    name
}

/// Temp file, fsync, rename, fsync of the folder: a crash leaves the old or the new file,
/// never a torn one.
pub(crate) fn write_atomically<T: Serialize>(
    path: &Path,
    value: &T,
) -> Result<(), CheckpointError> {
    let error = |source| CheckpointError::Write { path: path.to_owned(), source };
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir).map_err(error)?;
    let bytes = serde_json::to_vec_pretty(value).map_err(|source| error(source.into()))?;
    let temp_path = path.with_extension("json.tmp");
    let mut file = File::create(&temp_path).map_err(error)?;
    file.write_all(&bytes).map_err(error)?;
    file.sync_all().map_err(error)?;
    drop(file);
    std::fs::rename(&temp_path, path).map_err(error)?;
    File::open(dir).and_then(|dir| dir.sync_all()).map_err(error)?;
    Ok(())
}

pub(crate) fn read_optional<T: for<'de> Deserialize<'de>>(
    path: &Path,
) -> Result<Option<T>, CheckpointError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(CheckpointError::Read { path: path.to_owned(), source }),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| CheckpointError::Corrupt { path: path.to_owned(), source })
}

/// This boot's id: a pid recorded under another boot id names no process of ours.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|text| text.trim().to_owned())
        .unwrap_or_default()
}

/// What `/proc/<pid>/stat` says about a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessStat {
    pub state: char,
    pub process_group: i32,
    pub start_time: u64,
    /// CPU time in user mode of the process and of its children it has waited for, in
    /// clock ticks (`utime + cutime`).
    pub user_ticks: u64,
    /// Likewise in kernel mode (`stime + cstime`).
    pub system_ticks: u64,
}

impl ProcessStat {
    pub fn read(pid: u32) -> Option<ProcessStat> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name may hold spaces and parentheses; the fields after the last ')'
        // are fixed.
        let after_name = &text[text.rfind(')')? + 1..];
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        // `fields[0]` is field 3 (state); field N is at index N - 3.
        let field = |number: usize| -> Option<u64> { fields.get(number - 3)?.parse().ok() };
        Some(ProcessStat {
            state: fields.first()?.chars().next()?,
            process_group: fields.get(2)?.parse().ok()?,
            start_time: field(22)?,
            // utime, stime, cutime, cstime are fields 14 to 17; the children's are signed
            // in the kernel's format but never negative.
            user_ticks: field(14)? + field(16)?,
            system_ticks: field(15)? + field(17)?,
        })
    }

    /// A zombie has ended; only its parent's `wait` is missing.
    pub fn is_alive(&self) -> bool {
        !matches!(self.state, 'Z' | 'X')
    }
}
