//! Frameworks subscribing, leaving, and steering their offers.

use std::collections::{BTreeSet, VecDeque};

use super::{master_status, require_agent, require_framework, require_leader};
use crate::cluster::ClusterState;
use crate::model::{
    CompletedFramework, Framework, FrameworkCapability, FrameworkInfo, FrameworkState,
    RemovalReason, RescindReason, TaskReason, TaskState,
};
use crate::shared::{SharedMap, SharedMapExt, SharedSet};
use crate::{Actor, AgentId, Entry, Event, ExecutorId, FrameworkId, Rejection, Role};

fn validate_framework_info(info: &FrameworkInfo) -> Result<(), Rejection> {
    if info.name.trim().is_empty() {
        return Err(Rejection::invalid("framework_info.name", "must not be empty"));
    }
    if info.roles.is_empty() {
        return Err(Rejection::invalid("framework_info.roles", "must name at least one role"));
    }
    let distinct: BTreeSet<&Role> = info.roles.iter().collect();
    if distinct.len() != info.roles.len() {
        return Err(Rejection::invalid("framework_info.roles", "names a role twice"));
    }
    if info.roles.len() > 1 && !info.capabilities.contains(&FrameworkCapability::MultiRole) {
        return Err(Rejection::invalid(
            "framework_info.roles",
            "several roles need the MULTI_ROLE capability",
        ));
    }
    Ok(())
}

impl ClusterState {
    pub(crate) fn subscribe(
        &mut self,
        entry: &Entry,
        framework_id: Option<&FrameworkId>,
        info: &FrameworkInfo,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        match (entry.actor.acting(), framework_id) {
            (Actor::Agent(_), _) => {
                return Err(Rejection::NotPermitted {
                    command: "subscribe".to_owned(),
                    why: "agents do not subscribe".to_owned(),
                })
            }
            (Actor::Framework(actor), Some(id)) if actor != id => {
                return Err(Rejection::NotPermitted {
                    command: "subscribe".to_owned(),
                    why: format!("framework {actor} may not subscribe as {id}"),
                })
            }
            _ => {}
        }
        validate_framework_info(info)?;
        self.not_service_framework(framework_id)?;
        let now = self.now;
        let Some(framework_id) = framework_id else {
            self.next_framework += 1;
            let framework_id = FrameworkId(smol_str::format_smolstr!(
                "{}-{:04}",
                self.settings.cluster_id,
                self.next_framework
            ));
            self.frameworks.insert(
                framework_id.clone(),
                Framework {
                    id: framework_id.clone(),
                    info: info.clone(),
                    state: FrameworkState::Connected,
                    registered_at: now,
                    reregistered_at: None,
                    suppressed_roles: BTreeSet::new(),
                    filters: SharedMap::new(),
                    offers: SharedSet::new(),
                    tasks: SharedMap::new(),
                    pending_updates: SharedMap::new(),
                    completed_tasks: VecDeque::new(),
                },
            );
            events.push(Event::FrameworkAdded { framework_id, info: info.clone() });
            return Ok(());
        };
        self.existing_framework(framework_id)?;
        // The new scheduler instance does not know the old one's offers.
        self.rescind_framework_offers(framework_id, RescindReason::FrameworkResubscribed, events);
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return Err(Rejection::UnknownFramework(framework_id.clone()));
        };
        framework.info = info.clone();
        framework.state = FrameworkState::Connected;
        framework.reregistered_at = Some(now);
        framework.suppressed_roles.retain(|role| info.roles.contains(role));
        events.push(Event::FrameworkResubscribed {
            framework_id: framework_id.clone(),
            info: info.clone(),
        });
        Ok(())
    }

    pub(crate) fn disconnect_framework(
        &mut self,
        entry: &Entry,
        framework_id: &FrameworkId,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        require_leader(entry)?;
        self.connected_framework(framework_id)?;
        self.not_service_framework(Some(framework_id))?;
        let now = self.now;
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            framework.state = FrameworkState::Disconnected { since: now };
        }
        events.push(Event::FrameworkDisconnected { framework_id: framework_id.clone() });
        self.rescind_framework_offers(framework_id, RescindReason::FrameworkDisconnected, events);
        let failover_timeout = self.frameworks.get(framework_id).map(|f| f.info.failover_timeout);
        if failover_timeout.is_some_and(|timeout| timeout.is_zero()) {
            self.remove_framework(framework_id, RemovalReason::FailoverTimeout, events);
        }
        Ok(())
    }

    pub(crate) fn teardown(
        &mut self,
        entry: &Entry,
        framework_id: &FrameworkId,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        let reason = match entry.actor.acting() {
            Actor::Operator { .. } => RemovalReason::OperatorTeardown,
            _ => {
                require_framework(entry, framework_id)?;
                RemovalReason::Teardown
            }
        };
        self.existing_framework(framework_id)?;
        self.not_service_framework(Some(framework_id))?;
        self.remove_framework(framework_id, reason, events);
        Ok(())
    }

    /// Ends a framework: its offers go, its tasks are killed, it joins the completed ones.
    pub(crate) fn remove_framework(
        &mut self,
        framework_id: &FrameworkId,
        reason: RemovalReason,
        events: &mut Vec<Event>,
    ) {
        let now = self.now;
        self.rescind_framework_offers(framework_id, RescindReason::FrameworkRemoved, events);
        let task_ids: Vec<_> = self
            .frameworks
            .get(framework_id)
            .map(|framework| framework.tasks.keys().cloned().collect())
            .unwrap_or_default();
        for task_id in &task_ids {
            let Some(task) = self.task(framework_id, task_id) else { continue };
            if task.state.is_terminal() {
                continue;
            }
            events.push(Event::TaskKillRequested {
                framework_id: framework_id.clone(),
                task_id: task_id.clone(),
                agent_id: task.agent_id().clone(),
                kill_policy: task.info.kill_policy,
            });
            let status = master_status(
                task,
                TaskState::Killed,
                TaskReason::FrameworkRemoved,
                "framework removed",
                now,
            );
            self.set_task_status(framework_id, status, events);
        }
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            // Nobody is left to acknowledge.
            framework.pending_updates.clear();
        }
        for task_id in &task_ids {
            self.complete_task_if_done(framework_id, task_id, events);
        }
        let Some(framework) = self.frameworks.remove(framework_id) else { return };
        for task in framework.tasks.values() {
            self.tally.remove_task(task);
        }
        self.executors.retain(|(owner, _), _| owner != framework_id);
        self.completed_frameworks.insert(
            framework_id.clone(),
            CompletedFramework { framework, removed_at: now, reason },
        );
        self.completed_framework_order.push_back(framework_id.clone());
        while self.completed_framework_order.len() > self.settings.max_completed_frameworks as usize
        {
            if let Some(oldest) = self.completed_framework_order.pop_front() {
                self.completed_frameworks.remove(&oldest);
            }
        }
        events.push(Event::FrameworkRemoved { framework_id: framework_id.clone(), reason });
    }

    /// The built-in service framework lives in the log: nobody subscribes as it, and it is
    /// never disconnected or torn down (its apps are deleted instead).
    fn not_service_framework(&self, framework_id: Option<&FrameworkId>) -> Result<(), Rejection> {
        if framework_id.is_some() && self.services.framework_id.as_ref() == framework_id {
            return Err(Rejection::invalid(
                "framework_id",
                "is the built-in service framework, which is driven by its apps",
            ));
        }
        Ok(())
    }

    fn framework_roles_or_all(
        &self,
        framework_id: &FrameworkId,
        roles: &[Role],
    ) -> Result<Vec<Role>, Rejection> {
        let framework = self
            .frameworks
            .get(framework_id)
            .ok_or_else(|| Rejection::UnknownFramework(framework_id.clone()))?;
        if roles.is_empty() {
            return Ok(framework.info.roles.clone());
        }
        for role in roles {
            if !framework.info.roles.contains(role) {
                return Err(Rejection::RoleNotSubscribed {
                    framework_id: framework_id.clone(),
                    role: role.clone(),
                });
            }
        }
        Ok(roles.to_vec())
    }

    pub(crate) fn revive(
        &mut self,
        entry: &Entry,
        framework_id: &FrameworkId,
        roles: &[Role],
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        require_framework(entry, framework_id)?;
        self.connected_framework(framework_id)?;
        let roles = self.framework_roles_or_all(framework_id, roles)?;
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            for role in &roles {
                framework.suppressed_roles.remove(role);
            }
            // REVIVE clears the refusal filters, so declined agents come back at once.
            framework.filters.clear();
        }
        events.push(Event::FrameworkRevived { framework_id: framework_id.clone(), roles });
        Ok(())
    }

    pub(crate) fn suppress(
        &mut self,
        entry: &Entry,
        framework_id: &FrameworkId,
        roles: &[Role],
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        require_framework(entry, framework_id)?;
        self.connected_framework(framework_id)?;
        let roles = self.framework_roles_or_all(framework_id, roles)?;
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            framework.suppressed_roles.extend(roles.iter().cloned());
        }
        events.push(Event::FrameworkSuppressed { framework_id: framework_id.clone(), roles });
        Ok(())
    }

    pub(crate) fn message(
        &mut self,
        entry: &Entry,
        framework_id: &FrameworkId,
        agent_id: &AgentId,
        executor_id: &ExecutorId,
        data: &[u8],
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        require_framework(entry, framework_id)?;
        self.connected_framework(framework_id)?;
        self.known_agent(agent_id)?;
        events.push(Event::MessageToExecutor {
            framework_id: framework_id.clone(),
            agent_id: agent_id.clone(),
            executor_id: executor_id.clone(),
            data: data.to_vec(),
        });
        Ok(())
    }

    pub(crate) fn executor_message(
        &mut self,
        entry: &Entry,
        agent_id: &AgentId,
        framework_id: &FrameworkId,
        executor_id: &ExecutorId,
        data: &[u8],
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        require_agent(entry, agent_id)?;
        self.known_agent(agent_id)?;
        self.existing_framework(framework_id)?;
        events.push(Event::MessageToFramework {
            framework_id: framework_id.clone(),
            agent_id: agent_id.clone(),
            executor_id: executor_id.clone(),
            data: data.to_vec(),
        });
        Ok(())
    }
}
