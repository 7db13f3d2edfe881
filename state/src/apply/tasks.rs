//! Task lifecycle after launch: status updates, acknowledgements, kills, reconciliation.

use super::{master_status, require_agent, require_framework};
use crate::cluster::ClusterState;
use crate::model::{KillPolicy, Liveness, TaskReason, TaskSource, TaskState, TaskStatus};
use crate::{AgentId, Entry, Event, FrameworkId, Rejection, TaskId, UpdateUuid};

impl ClusterState {
    pub(crate) fn update_status(
        &mut self,
        entry: &Entry,
        framework_id: &FrameworkId,
        status: &TaskStatus,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        let agent_id = status.agent_id.as_ref().ok_or_else(|| {
            Rejection::invalid("status.agent_id", "must name the reporting agent")
        })?;
        require_agent(entry, agent_id)?;
        if status.source == TaskSource::Master {
            return Err(Rejection::invalid(
                "status.source",
                "agents report SOURCE_AGENT or SOURCE_EXECUTOR",
            ));
        }
        if status.uuid.is_none() {
            return Err(Rejection::invalid(
                "status.uuid",
                "agent updates carry a uuid to be acknowledged",
            ));
        }
        if matches!(status.state, TaskState::Staging | TaskState::Unknown | TaskState::Unreachable)
        {
            return Err(Rejection::invalid(
                "status.state",
                format!("{} is not a state an agent reports", status.state.as_mesos_str()),
            ));
        }
        let agent = self.known_agent(agent_id)?;
        if let Liveness::Unreachable { .. } = agent.liveness {
            return Err(Rejection::AgentUnreachable(agent_id.clone()));
        }
        self.existing_framework(framework_id)?;
        let Some(task) = self.task(framework_id, &status.task_id) else {
            return self.update_completed_lost_task(framework_id, status, events);
        };
        if task.agent_id() != agent_id {
            return Err(Rejection::WrongAgent {
                task_id: status.task_id.clone(),
                claimed: agent_id.clone(),
                actual: task.agent_id().clone(),
            });
        }
        if !task.state.may_become(status.state) {
            return Err(Rejection::InvalidTransition {
                task_id: status.task_id.clone(),
                from: task.state,
                to: status.state,
            });
        }
        let mut status = status.clone();
        status.timestamp = self.now;
        self.set_task_status(framework_id, status, events);
        Ok(())
    }

    /// A task the master called LOST and has already completed may turn out to have ended
    /// another way; Mesos lets that final word through, once.
    fn update_completed_lost_task(
        &mut self,
        framework_id: &FrameworkId,
        status: &TaskStatus,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        let now = self.now;
        let unknown = || Rejection::UnknownTask {
            framework_id: framework_id.clone(),
            task_id: status.task_id.clone(),
        };
        let framework = self.frameworks.get_mut(framework_id).ok_or_else(unknown)?;
        let task = framework
            .completed_tasks
            .iter_mut()
            .rev()
            .find(|task| task.id() == &status.task_id)
            .map(std::sync::Arc::make_mut)
            .ok_or_else(unknown)?;
        if !task.state.may_become(status.state) {
            return Err(Rejection::InvalidTransition {
                task_id: status.task_id.clone(),
                from: task.state,
                to: status.state,
            });
        }
        let previous = task.state;
        let mut status = status.clone();
        status.timestamp = now;
        // Nothing to acknowledge: the task has left the working set.
        status.uuid = None;
        task.state = status.state;
        task.statuses.push(status.clone());
        let agent_id = task.agent_id().clone();
        events.push(Event::TaskUpdated {
            framework_id: framework_id.clone(),
            agent_id,
            status,
            previous,
        });
        Ok(())
    }

    pub(crate) fn acknowledge(
        &mut self,
        entry: &Entry,
        framework_id: &FrameworkId,
        agent_id: &AgentId,
        task_id: &TaskId,
        uuid: &UpdateUuid,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        require_framework(entry, framework_id)?;
        self.connected_framework(framework_id)?;
        let task = self.task(framework_id, task_id).ok_or_else(|| Rejection::UnknownTask {
            framework_id: framework_id.clone(),
            task_id: task_id.clone(),
        })?;
        if task.agent_id() != agent_id {
            return Err(Rejection::WrongAgent {
                task_id: task_id.clone(),
                claimed: agent_id.clone(),
                actual: task.agent_id().clone(),
            });
        }
        let unknown_update =
            || Rejection::UnknownUpdate { task_id: task_id.clone(), uuid: uuid.clone() };
        let framework = self.frameworks.get_mut(framework_id).ok_or_else(unknown_update)?;
        let pending = framework.pending_updates.get_mut(task_id).ok_or_else(unknown_update)?;
        let position = pending
            .iter()
            .position(|status| status.uuid.as_ref() == Some(uuid))
            .ok_or_else(unknown_update)?;
        pending.remove(position);
        if pending.is_empty() {
            framework.pending_updates.remove(task_id);
        }
        events.push(Event::StatusAcknowledged {
            framework_id: framework_id.clone(),
            agent_id: agent_id.clone(),
            task_id: task_id.clone(),
            uuid: uuid.clone(),
        });
        self.complete_task_if_done(framework_id, task_id, events);
        Ok(())
    }

    pub(crate) fn kill(
        &mut self,
        entry: &Entry,
        framework_id: &FrameworkId,
        task_id: &TaskId,
        agent_id: Option<&AgentId>,
        kill_policy: Option<KillPolicy>,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        require_framework(entry, framework_id)?;
        self.connected_framework(framework_id)?;
        let task = self.task(framework_id, task_id).ok_or_else(|| Rejection::UnknownTask {
            framework_id: framework_id.clone(),
            task_id: task_id.clone(),
        })?;
        if let Some(agent_id) = agent_id {
            if task.agent_id() != agent_id {
                return Err(Rejection::WrongAgent {
                    task_id: task_id.clone(),
                    claimed: agent_id.clone(),
                    actual: task.agent_id().clone(),
                });
            }
        }
        if task.state.is_terminal() {
            return Err(Rejection::InvalidTransition {
                task_id: task_id.clone(),
                from: task.state,
                to: TaskState::Killed,
            });
        }
        let policy = kill_policy.or(task.info.kill_policy);
        self.request_task_kill(framework_id, task_id, policy, events);
        Ok(())
    }

    /// Records that the task is to be killed with `policy` (its own when `None`) and tells
    /// its agent. Every kill goes through here: a framework's KILL, a drain, the service
    /// scheduler's.
    pub(crate) fn request_task_kill(
        &mut self,
        framework_id: &FrameworkId,
        task_id: &TaskId,
        policy: Option<KillPolicy>,
        events: &mut Vec<Event>,
    ) {
        let Some(task) = self
            .frameworks
            .get_mut(framework_id)
            .and_then(|f| f.tasks.get_mut(task_id))
            .map(std::sync::Arc::make_mut)
        else {
            return;
        };
        task.kill_requested = Some(policy.unwrap_or(KillPolicy { grace_period: None }));
        events.push(Event::TaskKillRequested {
            framework_id: framework_id.clone(),
            task_id: task_id.clone(),
            agent_id: task.agent_id().clone(),
            kill_policy: policy,
        });
    }

    pub(crate) fn reconcile(
        &mut self,
        entry: &Entry,
        framework_id: &FrameworkId,
        asked: &[(TaskId, Option<AgentId>)],
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        require_framework(entry, framework_id)?;
        self.connected_framework(framework_id)?;
        let now = self.now;
        let Some(framework) = self.frameworks.get(framework_id) else {
            return Err(Rejection::UnknownFramework(framework_id.clone()));
        };
        let latest = |task: &crate::model::Task| {
            let mut status = task.latest_status().cloned().unwrap_or_else(|| {
                master_status(task, task.state, TaskReason::Reconciliation, "reconciliation", now)
            });
            status.uuid = None;
            status.reason = Some(TaskReason::Reconciliation);
            status.source = TaskSource::Master;
            status.timestamp = now;
            status
        };
        if asked.is_empty() {
            for task in framework.tasks.values() {
                events.push(Event::TaskReconciled {
                    framework_id: framework_id.clone(),
                    status: latest(task),
                });
            }
            return Ok(());
        }
        for (task_id, agent_id) in asked {
            let status = if let Some(task) = framework.tasks.get(task_id) {
                latest(task)
            } else if let Some(task) =
                framework.completed_tasks.iter().rev().find(|t| t.id() == task_id)
            {
                latest(task)
            } else {
                let agent_liveness =
                    agent_id.as_ref().and_then(|id| self.agents.get(id)).map(|a| &a.liveness);
                let state = match agent_liveness {
                    Some(Liveness::Unreachable { .. }) => TaskState::Unreachable,
                    Some(Liveness::Gone { .. }) => TaskState::Gone,
                    _ if framework.info.is_partition_aware() => TaskState::Unknown,
                    _ => TaskState::Lost,
                };
                TaskStatus {
                    task_id: task_id.clone(),
                    state,
                    message: Some("reconciliation: task unknown".to_owned()),
                    source: TaskSource::Master,
                    reason: Some(TaskReason::Reconciliation),
                    healthy: None,
                    agent_id: agent_id.clone(),
                    executor_id: None,
                    timestamp: now,
                    uuid: None,
                    exit_code: None,
                }
            };
            events.push(Event::TaskReconciled { framework_id: framework_id.clone(), status });
        }
        Ok(())
    }
}
