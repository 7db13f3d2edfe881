//! What the agent shows of its tasks: each task's info, sandbox, state history, how to find
//! its container and its latest usage sample. Live tasks, and a bounded list of completed
//! ones, as Mesos keeps completed executors. The daemon writes it; the HTTP API, the usage
//! sampler and the metrics read it.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Mutex;

use corral_state::model::{ContainerType, TaskInfo, TaskState};
use corral_state::{ExecutorId, FrameworkId, Role, TaskId, Timestamp};
use tokio::sync::watch;

use crate::checkpoint::RuntimeCheckpoint;
use crate::usage::UsageSample;

/// How many completed tasks the agent remembers for `/state` and sandbox reads; the oldest
/// is forgotten first (Mesos keeps up to 150 completed executors per framework).
pub const MAX_COMPLETED_TASKS: usize = 1000;
/// How many status changes of one task are kept; a task whose health flaps keeps the newest.
pub const MAX_STATUSES_PER_TASK: usize = 50;

/// Task ids are unique only within their framework.
pub type TaskKey = (FrameworkId, TaskId);

/// Which containerizer runs a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ContainerizerKind {
    Process,
    Docker,
}

impl ContainerizerKind {
    pub const ALL: [ContainerizerKind; 2] = [ContainerizerKind::Process, ContainerizerKind::Docker];

    pub fn of(task: &TaskInfo) -> ContainerizerKind {
        match &task.container {
            Some(container) if container.kind == ContainerType::Docker => ContainerizerKind::Docker,
            _ => ContainerizerKind::Process,
        }
    }

    /// The label value in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerizerKind::Process => "process",
            ContainerizerKind::Docker => "docker",
        }
    }
}

/// One status change as the agent saw it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StatusRecord {
    pub state: TaskState,
    pub timestamp: Timestamp,
    pub healthy: Option<bool>,
}

#[derive(Clone, Debug)]
pub struct TaskRecord {
    pub framework_id: FrameworkId,
    pub info: TaskInfo,
    /// The role its resources are allocated to; unknown for tasks found by recovery.
    pub role: Option<Role>,
    pub sandbox: PathBuf,
    pub containerizer: ContainerizerKind,
    pub state: TaskState,
    /// Oldest first, at most `MAX_STATUSES_PER_TASK`.
    pub statuses: Vec<StatusRecord>,
    /// How to find its container; known once it started.
    pub runtime: Option<RuntimeCheckpoint>,
    pub usage: Option<UsageSample>,
    /// When the table first saw it: per-task metrics keep the oldest tasks when capped, so
    /// a task's series does not come and go between scrapes.
    pub order: u64,
}

impl TaskRecord {
    pub fn new(
        framework_id: FrameworkId,
        info: TaskInfo,
        role: Option<Role>,
        sandbox: PathBuf,
        state: TaskState,
    ) -> TaskRecord {
        TaskRecord {
            framework_id,
            containerizer: ContainerizerKind::of(&info),
            info,
            role,
            sandbox,
            state,
            statuses: Vec::new(),
            runtime: None,
            usage: None,
            order: 0,
        }
    }

    pub fn key(&self) -> TaskKey {
        (self.framework_id.clone(), self.info.task_id.clone())
    }

    /// The task's executor: its own for a custom executor; for a command task, Mesos names
    /// the command executor after the task.
    pub fn executor_id(&self) -> ExecutorId {
        match &self.info.executor {
            Some(executor) => executor.executor_id.clone(),
            None => ExecutorId::new(self.info.task_id.as_str()),
        }
    }

    pub fn is_command_task(&self) -> bool {
        self.info.executor.is_none()
    }
}

#[derive(Default)]
struct Tables {
    live: BTreeMap<TaskKey, TaskRecord>,
    completed: VecDeque<TaskRecord>,
    next_order: u64,
}

/// Cheap to share; every method takes the lock briefly and never across an await.
pub struct TaskTable {
    tables: Mutex<Tables>,
    /// Bumped on every change, so a waiter can re-check what it waits for.
    changes: watch::Sender<u64>,
}

impl Default for TaskTable {
    fn default() -> TaskTable {
        TaskTable::new()
    }
}

impl TaskTable {
    pub fn new() -> TaskTable {
        TaskTable { tables: Mutex::default(), changes: watch::Sender::new(0) }
    }

    fn change<T>(&self, apply: impl FnOnce(&mut Tables) -> T) -> T {
        let result = {
            let mut tables = self.tables.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            apply(&mut tables)
        };
        self.changes.send_modify(|version| *version += 1);
        result
    }

    fn read<T>(&self, read: impl FnOnce(&Tables) -> T) -> T {
        let tables = self.tables.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        read(&tables)
    }

    /// A task launched or found again; a terminal one goes straight to the completed list.
    pub fn insert(&self, mut record: TaskRecord) {
        self.change(|tables| {
            record.order = tables.next_order;
            tables.next_order += 1;
            let key = record.key();
            if record.state.is_terminal() {
                tables.live.remove(&key);
                push_completed(tables, record);
            } else {
                tables.live.insert(key, record);
            }
        });
    }

    /// Records a transition; a terminal one moves the task to the completed list.
    pub fn record_status(&self, key: &TaskKey, status: StatusRecord) {
        self.change(|tables| {
            let Some(record) = tables.live.get_mut(key) else { return };
            record.state = status.state;
            record.statuses.push(status);
            if record.statuses.len() > MAX_STATUSES_PER_TASK {
                let excess = record.statuses.len() - MAX_STATUSES_PER_TASK;
                record.statuses.drain(..excess);
            }
            if status.state.is_terminal() {
                if let Some(record) = tables.live.remove(key) {
                    push_completed(tables, record);
                }
            }
        });
    }

    pub fn set_runtime(&self, key: &TaskKey, runtime: RuntimeCheckpoint) {
        self.change(|tables| {
            if let Some(record) = tables.live.get_mut(key) {
                record.runtime = Some(runtime);
            }
        });
    }

    pub fn set_usage(&self, key: &TaskKey, usage: UsageSample) {
        self.change(|tables| {
            if let Some(record) = tables.live.get_mut(key) {
                record.usage = Some(usage);
            }
        });
    }

    /// Live tasks, in key order.
    pub fn live(&self) -> Vec<TaskRecord> {
        self.read(|tables| tables.live.values().cloned().collect())
    }

    /// Completed tasks, oldest first.
    pub fn completed(&self) -> Vec<TaskRecord> {
        self.read(|tables| tables.completed.iter().cloned().collect())
    }

    pub fn live_count(&self) -> usize {
        self.read(|tables| tables.live.len())
    }

    /// Waits until no task is live any more.
    pub async fn wait_until_no_live_tasks(&self) {
        let mut changes = self.changes.subscribe();
        while self.live_count() > 0 {
            if changes.changed().await.is_err() {
                return;
            }
        }
    }
}

fn push_completed(tables: &mut Tables, record: TaskRecord) {
    tables.completed.push_back(record);
    while tables.completed.len() > MAX_COMPLETED_TASKS {
        tables.completed.pop_front();
    }
}
