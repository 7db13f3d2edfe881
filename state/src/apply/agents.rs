//! Agents joining, coming back, staying in touch, and falling out of touch.

use std::collections::{BTreeMap, BTreeSet};

use super::{master_status, require_agent};
use crate::cluster::ClusterState;
use crate::model::{
    Agent, AgentInfo, AgentMode, Liveness, MachineMode, ReportedTask, RescindReason, TaskReason,
    TaskState,
};
use crate::resources::Reservation;
use crate::{Actor, AgentId, Entry, Event, FrameworkId, Rejection, Resources, TaskId};

fn validate_agent_info(info: &AgentInfo, resources: &Resources) -> Result<(), Rejection> {
    if info.hostname.trim().is_empty() {
        return Err(Rejection::invalid("info.hostname", "must not be empty"));
    }
    if info.address.trim().is_empty() {
        return Err(Rejection::invalid("info.address", "must not be empty"));
    }
    if resources.is_empty() {
        return Err(Rejection::invalid("resources", "an agent must offer some resources"));
    }
    if resources.iter().any(|r| matches!(r.reservation, Reservation::Dynamic { .. })) {
        return Err(Rejection::invalid(
            "resources",
            "dynamic reservations are made through RESERVE, not declared by the agent",
        ));
    }
    Ok(())
}

impl ClusterState {
    fn refuse_down_machine(&self, info: &AgentInfo) -> Result<(), Rejection> {
        if self.machine_mode_of(&info.hostname, &info.address) == MachineMode::Down {
            return Err(Rejection::MachineDown(info.hostname.clone()));
        }
        Ok(())
    }

    pub(crate) fn register_agent(
        &mut self,
        entry: &Entry,
        info: &AgentInfo,
        resources: &Resources,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        if let Actor::Framework(_) = entry.actor.acting() {
            return Err(Rejection::NotPermitted {
                command: "register_agent".to_owned(),
                why: "frameworks do not register agents".to_owned(),
            });
        }
        validate_agent_info(info, resources)?;
        self.refuse_down_machine(info)?;
        self.next_agent += 1;
        let agent_id =
            AgentId(smol_str::format_smolstr!("{}-S{}", self.settings.cluster_id, self.next_agent));
        let agent = Agent {
            id: agent_id.clone(),
            info: info.clone(),
            total: resources.clone(),
            allocated: Resources::new(),
            offered: Resources::new(),
            liveness: Liveness::Reachable,
            mode: AgentMode::Active,
            registered_at: self.now,
            reregistered_at: None,
            last_heartbeat: self.now,
            tasks: BTreeSet::new(),
            executors: BTreeSet::new(),
        };
        self.tally.add_agent(&agent);
        self.agents.insert(agent_id.clone(), agent);
        events.push(Event::AgentAdded { agent_id, info: info.clone(), total: resources.clone() });
        Ok(())
    }

    pub(crate) fn reregister_agent(
        &mut self,
        entry: &Entry,
        agent_id: &AgentId,
        info: &AgentInfo,
        resources: &Resources,
        reported: &[ReportedTask],
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        require_agent(entry, agent_id)?;
        validate_agent_info(info, resources)?;
        self.known_agent(agent_id)?;
        self.refuse_down_machine(info)?;

        let now = self.now;
        let (was_unreachable, resized, total) = self
            .change_agent(agent_id, |agent| {
                let was_unreachable = matches!(agent.liveness, Liveness::Unreachable { .. });
                agent.info = info.clone();
                agent.liveness = Liveness::Reachable;
                agent.last_heartbeat = now;
                agent.reregistered_at = Some(now);
                // The master's books keep dynamic reservations the agent does not know
                // about; take the agent's word only when the machine itself changed size.
                let resized = agent.total.flattened() != resources.flattened();
                if resized {
                    agent.total = resources.clone();
                }
                (was_unreachable, resized, agent.total.clone())
            })
            .ok_or_else(|| Rejection::UnknownAgent(agent_id.clone()))?;
        events.push(Event::AgentReregistered {
            agent_id: agent_id.clone(),
            info: info.clone(),
            total,
            was_unreachable,
        });
        if resized {
            self.rescind_agent_offers(agent_id, RescindReason::ResourcesChanged, events);
        }
        self.reconcile_reported_tasks(agent_id, reported, events);
        Ok(())
    }

    /// Brings the master's view of an agent's tasks in line with what the agent reports.
    fn reconcile_reported_tasks(
        &mut self,
        agent_id: &AgentId,
        reported: &[ReportedTask],
        events: &mut Vec<Event>,
    ) {
        let now = self.now;
        let reported_states: BTreeMap<(FrameworkId, TaskId), TaskState> = reported
            .iter()
            .map(|task| ((task.framework_id.clone(), task.task_id.clone()), task.state))
            .collect();
        let tracked: Vec<(FrameworkId, TaskId)> = self
            .agents
            .get(agent_id)
            .map(|agent| agent.tasks.iter().cloned().collect())
            .unwrap_or_default();

        for key in &tracked {
            let (framework_id, task_id) = key;
            let Some(task) = self.task(framework_id, task_id) else { continue };
            if task.state.is_terminal() || task.state == TaskState::Staging {
                // Staging tasks may simply not have reached the agent yet.
                continue;
            }
            let partition_aware =
                self.frameworks.get(framework_id).is_some_and(|f| f.info.is_partition_aware());
            let status = match reported_states.get(key) {
                Some(&state)
                    if task.state == TaskState::Unreachable && task.state.may_become(state) =>
                {
                    master_status(
                        task,
                        state,
                        TaskReason::AgentReregistered,
                        "agent re-registered",
                        now,
                    )
                }
                Some(_) => continue,
                None => {
                    let state = if partition_aware { TaskState::Dropped } else { TaskState::Lost };
                    master_status(
                        task,
                        state,
                        TaskReason::AgentReregistered,
                        "task not found on re-registered agent",
                        now,
                    )
                }
            };
            self.set_task_status(framework_id, status, events);
        }

        for task in reported {
            if task.state.is_terminal() {
                continue;
            }
            let known = self
                .task(&task.framework_id, &task.task_id)
                .filter(|known| !known.state.is_terminal() && known.agent_id() == agent_id);
            // A kill asked for while the agent was away is asked again: the agent may have
            // missed it.
            let kill_policy = match known {
                None => Some(None),
                Some(known) => known.kill_requested.map(Some),
            };
            if let Some(kill_policy) = kill_policy {
                events.push(Event::TaskKillRequested {
                    framework_id: task.framework_id.clone(),
                    task_id: task.task_id.clone(),
                    agent_id: agent_id.clone(),
                    kill_policy,
                });
            }
        }
    }

    pub(crate) fn agent_heartbeat(
        &mut self,
        entry: &Entry,
        agent_id: &AgentId,
    ) -> Result<(), Rejection> {
        require_agent(entry, agent_id)?;
        let agent = self.known_agent(agent_id)?;
        if let Liveness::Unreachable { .. } = agent.liveness {
            return Err(Rejection::AgentUnreachable(agent_id.clone()));
        }
        let now = self.now;
        self.change_agent(agent_id, |agent| agent.last_heartbeat = now);
        Ok(())
    }

    /// The agent missed its heartbeats: its offers go; its tasks become UNREACHABLE for
    /// partition-aware frameworks and LOST for the others.
    pub(crate) fn mark_agent_unreachable(&mut self, agent_id: &AgentId, events: &mut Vec<Event>) {
        let now = self.now;
        let Some(agent) = self.agents.get(agent_id) else { return };
        if agent.liveness != Liveness::Reachable {
            return;
        }
        self.change_agent(agent_id, |agent| agent.liveness = Liveness::Unreachable { since: now });
        events.push(Event::AgentUnreachable { agent_id: agent_id.clone() });
        self.rescind_agent_offers(agent_id, RescindReason::AgentUnreachable, events);
        for (framework_id, task_id) in self.live_tasks_on(agent_id) {
            let Some(task) = self.task(&framework_id, &task_id) else { continue };
            let partition_aware =
                self.frameworks.get(&framework_id).is_some_and(|f| f.info.is_partition_aware());
            let state = if partition_aware { TaskState::Unreachable } else { TaskState::Lost };
            if !task.state.may_become(state) {
                continue;
            }
            let status = master_status(
                task,
                state,
                TaskReason::AgentDisconnected,
                "agent is unreachable",
                now,
            );
            self.set_task_status(&framework_id, status, events);
        }
    }
}
