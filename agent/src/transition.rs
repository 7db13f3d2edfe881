//! Outcomes as data: what happened to a task, for the reconciler to turn into status updates.

use corral_state::model::{TaskReason, TaskSource, TaskState, TaskStatus};
use corral_state::{AgentId, TaskId, Timestamp, UpdateUuid};

/// One step in a task's life as the agent saw it. Each becomes exactly one status update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskTransition {
    Starting,
    Running,
    Killing,
    Finished,
    Failed {
        exit_code: Option<i32>,
        reason: Option<TaskReason>,
        message: String,
    },
    Killed {
        message: String,
    },
    /// The task could not be made into anything that runs (bad input, not a crash).
    Error {
        message: String,
    },
}

impl TaskTransition {
    pub fn state(&self) -> TaskState {
        match self {
            TaskTransition::Starting => TaskState::Starting,
            TaskTransition::Running => TaskState::Running,
            TaskTransition::Killing => TaskState::Killing,
            TaskTransition::Finished => TaskState::Finished,
            TaskTransition::Failed { .. } => TaskState::Failed,
            TaskTransition::Killed { .. } => TaskState::Killed,
            TaskTransition::Error { .. } => TaskState::Error,
        }
    }

    pub fn is_terminal(&self) -> bool {
        self.state().is_terminal()
    }

    pub fn exit_code(&self) -> Option<i32> {
        match self {
            TaskTransition::Failed { exit_code, .. } => *exit_code,
            TaskTransition::Finished => Some(0),
            _ => None,
        }
    }

    /// The status update carrying this transition; `healthy` is the latest health check
    /// verdict, if the task has a health check and one was reached.
    pub fn to_status(
        &self,
        task_id: TaskId,
        agent_id: AgentId,
        timestamp: Timestamp,
        uuid: UpdateUuid,
        healthy: Option<bool>,
    ) -> TaskStatus {
        let (message, reason) = match self {
            TaskTransition::Failed { reason, message, .. } => (Some(message.clone()), *reason),
            TaskTransition::Killed { message } => (Some(message.clone()), None),
            TaskTransition::Error { message } => {
                (Some(message.clone()), Some(TaskReason::TaskInvalid))
            }
            _ => (None, None),
        };
        TaskStatus {
            task_id,
            state: self.state(),
            message,
            source: TaskSource::Executor,
            reason,
            healthy,
            agent_id: Some(agent_id),
            executor_id: None,
            timestamp,
            uuid: Some(uuid),
            exit_code: self.exit_code(),
        }
    }
}

/// Whether the agent asked for the task to end: then it ends KILLED, however it exited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KillRequested {
    Yes,
    No,
}

/// How a container ended, before it is judged against what was asked of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Termination {
    Exited {
        code: i32,
    },
    Signalled {
        signal: i32,
    },
    /// The memory limit was hit and the kernel (or engine) killed the task.
    OutOfMemory {
        limit_mib: Option<u64>,
    },
    /// It ended while the agent was not watching and nothing recorded how.
    Unknown {
        message: String,
    },
    /// It could not be started, or the engine lost it.
    LaunchFailed {
        message: String,
    },
    /// The task asks for something no containerizer can run (no command, no image).
    Invalid {
        message: String,
    },
}

impl Termination {
    /// The terminal transition: a kill the agent asked for ends KILLED whatever the code.
    pub fn into_transition(self, kill_requested: KillRequested) -> TaskTransition {
        if kill_requested == KillRequested::Yes {
            return TaskTransition::Killed { message: self.describe() };
        }
        match self {
            Termination::Exited { code: 0 } => TaskTransition::Finished,
            Termination::OutOfMemory { .. } => TaskTransition::Failed {
                exit_code: None,
                reason: Some(TaskReason::ContainerLimitationMemory),
                message: self.describe(),
            },
            Termination::Exited { code } => TaskTransition::Failed {
                exit_code: Some(code),
                reason: None,
                message: self.describe(),
            },
            Termination::Signalled { .. } | Termination::Unknown { .. } => {
                TaskTransition::Failed { exit_code: None, reason: None, message: self.describe() }
            }
            Termination::Invalid { message } => TaskTransition::Error { message },
            Termination::LaunchFailed { .. } => TaskTransition::Failed {
                exit_code: None,
                reason: Some(TaskReason::ContainerLaunchFailed),
                message: self.describe(),
            },
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Termination::Exited { code } => format!("Command exited with status {code}"),
            Termination::Signalled { signal } => format!("Command terminated with signal {signal}"),
            Termination::OutOfMemory { limit_mib: Some(limit) } => {
                format!("Memory limit of {limit} MiB exceeded; the task was killed")
            }
            Termination::OutOfMemory { limit_mib: None } => {
                "Memory limit exceeded; the task was killed".to_owned()
            }
            Termination::Unknown { message }
            | Termination::LaunchFailed { message }
            | Termination::Invalid { message } => message.clone(),
        }
    }
}
