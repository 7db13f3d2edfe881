//! The command handlers, one file per area, and the mutations they share.
//!
//! Every handler validates everything first and mutates after, so a rejection leaves the
//! state as it was.

mod agents;
mod auth;
mod autoscaler;
mod frameworks;
mod offers;
mod operator;
mod services;

pub(crate) use services::KillHow;
mod tasks;
mod tick;

use crate::cluster::ClusterState;
use crate::model::{
    AgentMode, Liveness, Offer, RescindReason, Task, TaskReason, TaskSource, TaskState, TaskStatus,
};
use crate::{
    Actor, AgentId, Entry, Event, FrameworkId, OfferId, Rejection, Resources, TaskId, Timestamp,
};

/// Which actors may issue a command.
pub(crate) fn require_leader(entry: &Entry) -> Result<(), Rejection> {
    match entry.actor {
        Actor::Leader => Ok(()),
        _ => Err(not_permitted(entry, "only the leader's own loops issue it")),
    }
}

pub(crate) fn require_operator(entry: &Entry) -> Result<(), Rejection> {
    match entry.actor.acting() {
        Actor::Leader | Actor::Operator { .. } => Ok(()),
        _ => Err(not_permitted(entry, "only operators issue it")),
    }
}

/// Scheduler calls: the framework itself (or the leader acting for a built-in framework).
pub(crate) fn require_framework(
    entry: &Entry,
    framework_id: &FrameworkId,
) -> Result<(), Rejection> {
    match entry.actor.acting() {
        Actor::Leader => Ok(()),
        Actor::Framework(actor) if actor == framework_id => Ok(()),
        Actor::Framework(actor) => Err(not_permitted(
            entry,
            &format!("framework {actor} may not act for framework {framework_id}"),
        )),
        _ => Err(not_permitted(entry, "only the framework itself issues it")),
    }
}

pub(crate) fn require_agent(entry: &Entry, agent_id: &AgentId) -> Result<(), Rejection> {
    match entry.actor.acting() {
        Actor::Leader => Ok(()),
        Actor::Agent(actor) if actor == agent_id => Ok(()),
        Actor::Agent(actor) => {
            Err(not_permitted(entry, &format!("agent {actor} may not act for agent {agent_id}")))
        }
        _ => Err(not_permitted(entry, "only the agent itself issues it")),
    }
}

fn not_permitted(entry: &Entry, why: &str) -> Rejection {
    Rejection::NotPermitted { command: entry.command.kind().to_owned(), why: why.to_owned() }
}

/// A status the master writes itself (no uuid: nothing to acknowledge).
pub(crate) fn master_status(
    task: &Task,
    state: TaskState,
    reason: TaskReason,
    message: &str,
    at: Timestamp,
) -> TaskStatus {
    TaskStatus {
        task_id: task.id().clone(),
        state,
        message: Some(message.to_owned()),
        source: TaskSource::Master,
        reason: Some(reason),
        healthy: None,
        agent_id: Some(task.agent_id().clone()),
        executor_id: task.info.executor.as_ref().map(|e| e.executor_id.clone()),
        timestamp: at,
        uuid: None,
        exit_code: None,
    }
}

impl ClusterState {
    pub(crate) fn connected_framework(&self, framework_id: &FrameworkId) -> Result<(), Rejection> {
        match self.frameworks.get(framework_id) {
            Some(framework) if framework.is_connected() => Ok(()),
            Some(_) => Err(Rejection::FrameworkNotSubscribed(framework_id.clone())),
            None if self.completed_frameworks.contains_key(framework_id) => {
                Err(Rejection::FrameworkRemoved(framework_id.clone()))
            }
            None => Err(Rejection::UnknownFramework(framework_id.clone())),
        }
    }

    pub(crate) fn existing_framework(&self, framework_id: &FrameworkId) -> Result<(), Rejection> {
        if self.frameworks.contains_key(framework_id) {
            return Ok(());
        }
        if self.completed_frameworks.contains_key(framework_id) {
            return Err(Rejection::FrameworkRemoved(framework_id.clone()));
        }
        Err(Rejection::UnknownFramework(framework_id.clone()))
    }

    pub(crate) fn known_agent(
        &self,
        agent_id: &AgentId,
    ) -> Result<&crate::model::Agent, Rejection> {
        let agent =
            self.agents.get(agent_id).ok_or_else(|| Rejection::UnknownAgent(agent_id.clone()))?;
        if agent.is_gone() {
            return Err(Rejection::AgentGone(agent_id.clone()));
        }
        Ok(agent)
    }

    pub(crate) fn next_offer_id(&mut self) -> OfferId {
        self.next_offer += 1;
        OfferId(smol_str::format_smolstr!("{}-O{}", self.settings.cluster_id, self.next_offer))
    }

    /// Takes an offer out of the books; its resources become free again.
    pub(crate) fn remove_offer(&mut self, offer_id: &OfferId) -> Option<Offer> {
        let offer = self.offers.remove(offer_id)?;
        self.tally.remove_offer(&offer);
        if let Some(agent) = self.agents.get_mut(&offer.agent_id) {
            agent.offered = agent.offered.saturating_sub(&offer.resources);
        }
        if let Some(framework) = self.frameworks.get_mut(&offer.framework_id) {
            framework.offers.remove(offer_id);
        }
        Some(offer)
    }

    pub(crate) fn rescind_offers_where(
        &mut self,
        matches: impl Fn(&Offer) -> bool,
        reason: RescindReason,
        events: &mut Vec<Event>,
    ) {
        let doomed: Vec<OfferId> = self
            .offers
            .values()
            .filter(|offer| matches(offer))
            .map(|offer| offer.id.clone())
            .collect();
        for offer_id in doomed {
            if let Some(offer) = self.remove_offer(&offer_id) {
                events.push(Event::OfferRescinded {
                    offer_id,
                    framework_id: offer.framework_id,
                    agent_id: offer.agent_id,
                    reason,
                });
            }
        }
    }

    pub(crate) fn rescind_agent_offers(
        &mut self,
        agent_id: &AgentId,
        reason: RescindReason,
        events: &mut Vec<Event>,
    ) {
        let doomed: Vec<OfferId> = self
            .frameworks
            .values()
            .flat_map(|framework| framework.offers.iter())
            .filter(|offer_id| {
                self.offers.get(*offer_id).is_some_and(|offer| &offer.agent_id == agent_id)
            })
            .cloned()
            .collect();
        self.rescind_ids(doomed, reason, events);
    }

    pub(crate) fn rescind_framework_offers(
        &mut self,
        framework_id: &FrameworkId,
        reason: RescindReason,
        events: &mut Vec<Event>,
    ) {
        let doomed: Vec<OfferId> = self
            .frameworks
            .get(framework_id)
            .map(|framework| framework.offers.iter().cloned().collect())
            .unwrap_or_default();
        self.rescind_ids(doomed, reason, events);
    }

    fn rescind_ids(
        &mut self,
        offer_ids: Vec<OfferId>,
        reason: RescindReason,
        events: &mut Vec<Event>,
    ) {
        for offer_id in offer_ids {
            if let Some(offer) = self.remove_offer(&offer_id) {
                events.push(Event::OfferRescinded {
                    offer_id,
                    framework_id: offer.framework_id,
                    agent_id: offer.agent_id,
                    reason,
                });
            }
        }
    }

    /// Records a validated status for a tracked task: state, history, acknowledgement
    /// tracking, freed resources, completion and drain progress.
    pub(crate) fn set_task_status(
        &mut self,
        framework_id: &FrameworkId,
        status: TaskStatus,
        events: &mut Vec<Event>,
    ) {
        let max_statuses = self.settings.max_statuses_per_task as usize;
        let Some(framework) = self.frameworks.get_mut(framework_id) else { return };
        let Some(task) = framework.tasks.get_mut(&status.task_id).map(std::sync::Arc::make_mut)
        else {
            return;
        };
        let previous = task.state;
        self.tally.remove_task(task);
        task.state = status.state;
        self.tally.add_task(task);
        if task.statuses.len() >= max_statuses.max(1) {
            task.statuses.remove(0);
        }
        task.statuses.push(status.clone());
        let agent_id = task.agent_id().clone();
        let task_id = status.task_id.clone();
        let released = (!previous.is_terminal() && status.state.is_terminal()).then(|| {
            (task.resources().clone(), task.info.executor.as_ref().map(|e| e.executor_id.clone()))
        });
        let kill_requested = task.kill_requested.is_some();
        // The built-in service framework takes each update as it is applied: nobody is
        // there to acknowledge it later.
        let service = self.services.framework_id.as_ref() == Some(framework_id);
        if status.uuid.is_some() && !service {
            framework.pending_updates.entry(task_id.clone()).or_default().push_back(status.clone());
        }
        events.push(Event::TaskUpdated {
            framework_id: framework_id.clone(),
            agent_id: agent_id.clone(),
            status: status.clone(),
            previous,
        });
        if let Some((resources, executor_id)) = released {
            self.release_task_resources(framework_id, &agent_id, &resources, executor_id);
            self.complete_task_if_done(framework_id, &task_id, events);
            self.check_drained(&agent_id, events);
        }
        if service {
            self.service_task_changed(&task_id, &status, kill_requested, events);
        }
    }

    fn release_task_resources(
        &mut self,
        framework_id: &FrameworkId,
        agent_id: &AgentId,
        resources: &Resources,
        executor_id: Option<crate::ExecutorId>,
    ) {
        let mut freed = resources.clone();
        if let Some(executor_id) = executor_id {
            let key = (framework_id.clone(), executor_id);
            if let Some(executor) = self.executors.get_mut(&key) {
                executor.live_tasks = executor.live_tasks.saturating_sub(1);
                if executor.live_tasks == 0 {
                    if let Some(executor) = self.executors.remove(&key) {
                        freed.add(&executor.info.resources);
                    }
                    if let Some(agent) = self.agents.get_mut(agent_id) {
                        agent.executors.remove(&key);
                    }
                }
            }
        }
        if let Some(agent) = self.agents.get_mut(agent_id) {
            agent.allocated = agent.allocated.saturating_sub(&freed);
        }
    }

    /// A terminal task whose updates are all acknowledged leaves the master's working set.
    pub(crate) fn complete_task_if_done(
        &mut self,
        framework_id: &FrameworkId,
        task_id: &TaskId,
        events: &mut Vec<Event>,
    ) {
        let max_completed = self.settings.max_completed_tasks_per_framework as usize;
        let Some(framework) = self.frameworks.get_mut(framework_id) else { return };
        let done = framework.tasks.get(task_id).is_some_and(|task| task.state.is_terminal())
            && framework.pending_updates.get(task_id).is_none_or(|pending| pending.is_empty());
        if !done {
            return;
        }
        framework.pending_updates.remove(task_id);
        let Some(task) = framework.tasks.remove(task_id) else { return };
        self.tally.remove_task(&task);
        let agent_id = task.agent_id().clone();
        framework.completed_tasks.push_back(task);
        while framework.completed_tasks.len() > max_completed {
            framework.completed_tasks.pop_front();
        }
        if let Some(agent) = self.agents.get_mut(&agent_id) {
            agent.tasks.remove(&(framework_id.clone(), task_id.clone()));
        }
        events.push(Event::TaskCompleted {
            framework_id: framework_id.clone(),
            task_id: task_id.clone(),
            agent_id,
        });
    }

    /// Replaces `take` with `give` in an agent's total — a reservation made or undone — and
    /// records why and the agent's new shape.
    pub(crate) fn reshape_agent(
        &mut self,
        agent_id: &AgentId,
        take: &Resources,
        give: &Resources,
        why: Event,
        events: &mut Vec<Event>,
    ) {
        let Some(total) = self.change_agent(agent_id, |agent| {
            agent.total = agent.total.saturating_sub(take);
            agent.total.add(give);
            agent.total.clone()
        }) else {
            return;
        };
        events.push(why);
        events.push(Event::AgentResourcesChanged { agent_id: agent_id.clone(), total });
    }

    /// Tasks on an agent that are not terminal yet.
    pub(crate) fn live_tasks_on(&self, agent_id: &AgentId) -> Vec<(FrameworkId, TaskId)> {
        let Some(agent) = self.agents.get(agent_id) else { return Vec::new() };
        agent
            .tasks
            .iter()
            .filter(|(framework_id, task_id)| {
                self.task(framework_id, task_id).is_some_and(|task| !task.state.is_terminal())
            })
            .cloned()
            .collect()
    }

    /// A draining agent with no live task left is drained (and gone, if asked).
    pub(crate) fn check_drained(&mut self, agent_id: &AgentId, events: &mut Vec<Event>) {
        let Some(agent) = self.agents.get(agent_id) else { return };
        let AgentMode::Draining(config) = agent.mode else { return };
        if !self.live_tasks_on(agent_id).is_empty() {
            return;
        }
        self.change_agent(agent_id, |agent| agent.mode = AgentMode::Drained(config));
        events.push(Event::AgentDrained { agent_id: agent_id.clone() });
        if config.mark_gone {
            self.mark_agent_gone(agent_id, true, events);
        }
    }

    /// The agent will never return under this id: its offers go, its tasks end.
    pub(crate) fn mark_agent_gone(
        &mut self,
        agent_id: &AgentId,
        by_operator: bool,
        events: &mut Vec<Event>,
    ) {
        let now = self.now;
        let Some(agent) = self.agents.get(agent_id) else { return };
        if agent.is_gone() {
            return;
        }
        self.change_agent(agent_id, |agent| {
            agent.liveness = Liveness::Gone { at: now, by_operator }
        });
        events.push(Event::AgentRemoved { agent_id: agent_id.clone(), by_operator });
        self.rescind_agent_offers(agent_id, RescindReason::AgentRemoved, events);
        let tracked: Vec<(FrameworkId, TaskId)> = self
            .agents
            .get(agent_id)
            .map(|agent| agent.tasks.iter().cloned().collect())
            .unwrap_or_default();
        for (framework_id, task_id) in tracked {
            let Some(task) = self.task(&framework_id, &task_id) else { continue };
            if task.state.is_terminal() {
                continue;
            }
            let partition_aware =
                self.frameworks.get(&framework_id).is_some_and(|f| f.info.is_partition_aware());
            let (state, reason, message) = match (partition_aware, by_operator) {
                (true, true) => (
                    TaskState::GoneByOperator,
                    TaskReason::AgentRemovedByOperator,
                    "agent marked gone by an operator",
                ),
                (true, false) => {
                    (TaskState::Gone, TaskReason::AgentRemoved, "agent unreachable for too long")
                }
                (false, true) => (
                    TaskState::Lost,
                    TaskReason::AgentRemovedByOperator,
                    "agent marked gone by an operator",
                ),
                (false, false) => {
                    (TaskState::Lost, TaskReason::AgentRemoved, "agent unreachable for too long")
                }
            };
            let status = master_status(task, state, reason, message, now);
            self.set_task_status(&framework_id, status, events);
        }
    }
}
