//! Operator calls: weights, quota, maintenance, draining, reservations, settings.

use std::collections::BTreeSet;
use std::time::Duration;

use super::offers::{unreserved_equivalent, validate_reservation_request};
use super::require_operator;
use crate::cluster::ClusterState;
use crate::model::{
    AgentMode, DrainConfig, KillPolicy, MachineId, MachineMode, MaintenanceWindow, QuotaConfig,
    RescindReason, Settings,
};
use crate::resources::Reservation;
use crate::{AgentId, Entry, Event, Rejection, Resources, Role, Scalar};

impl ClusterState {
    pub(crate) fn update_weights(
        &mut self,
        entry: &Entry,
        weights: &[(Role, Scalar)],
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        require_operator(entry)?;
        if weights.is_empty() {
            return Err(Rejection::invalid("weight_infos", "must not be empty"));
        }
        for (role, weight) in weights {
            if role.is_default() {
                return Err(Rejection::invalid("weight_infos.role", "the '*' role has no weight"));
            }
            if weight.milli() <= 0 {
                return Err(Rejection::invalid(
                    "weight_infos.weight",
                    format!("weight of {role} must be positive, got {weight}"),
                ));
            }
        }
        for (role, weight) in weights {
            self.roles.entry(role.clone()).or_default().weight = *weight;
            events.push(Event::WeightUpdated { role: role.clone(), weight: *weight });
        }
        Ok(())
    }

    pub(crate) fn update_quota(
        &mut self,
        entry: &Entry,
        configs: &[QuotaConfig],
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        require_operator(entry)?;
        if configs.is_empty() {
            return Err(Rejection::invalid("quota_configs", "must not be empty"));
        }
        for config in configs {
            if config.role.is_default() {
                return Err(Rejection::invalid(
                    "quota_configs.role",
                    "the '*' role cannot have quota",
                ));
            }
            for (name, amount) in config.guarantees.iter().chain(config.limits.iter()) {
                if amount.milli() < 0 {
                    return Err(Rejection::invalid(
                        "quota_configs",
                        format!("{name} of {} is negative", config.role),
                    ));
                }
            }
            for (name, guarantee) in config.guarantees.iter() {
                let limited = config.limits.iter().any(|(limit_name, _)| limit_name == name);
                if limited && guarantee > config.limits.get(name) {
                    return Err(Rejection::invalid(
                        "quota_configs.guarantees",
                        format!(
                            "{name} guarantee {guarantee} of {} exceeds its limit {}",
                            config.role,
                            config.limits.get(name)
                        ),
                    ));
                }
            }
        }
        for config in configs {
            let role_config = self.roles.entry(config.role.clone()).or_default();
            role_config.guarantees = config.guarantees.clone();
            role_config.limits = config.limits.clone();
            events.push(Event::QuotaUpdated { config: config.clone() });
        }
        Ok(())
    }

    pub(crate) fn update_maintenance_schedule(
        &mut self,
        entry: &Entry,
        windows: &[MaintenanceWindow],
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        require_operator(entry)?;
        let mut scheduled: BTreeSet<&MachineId> = BTreeSet::new();
        for window in windows {
            if window.machine_ids.is_empty() {
                return Err(Rejection::invalid(
                    "windows.machine_ids",
                    "a window must name machines",
                ));
            }
            for machine in &window.machine_ids {
                if machine.hostname.is_none() && machine.ip.is_none() {
                    return Err(Rejection::invalid(
                        "windows.machine_ids",
                        "a machine needs a hostname or an ip",
                    ));
                }
                if !scheduled.insert(machine) {
                    return Err(Rejection::invalid(
                        "windows.machine_ids",
                        format!("machine {machine:?} appears in more than one window"),
                    ));
                }
            }
        }
        for (machine, mode) in &self.machine_modes {
            if *mode == MachineMode::Down && !scheduled.contains(machine) {
                return Err(Rejection::invalid(
                    "windows",
                    format!(
                        "machine {machine:?} is DOWN; stop its maintenance before unscheduling it"
                    ),
                ));
            }
        }
        self.machine_modes
            .retain(|machine, mode| *mode == MachineMode::Down || scheduled.contains(machine));
        for machine in scheduled {
            self.machine_modes.entry(machine.clone()).or_insert(MachineMode::Draining);
        }
        self.maintenance_windows = windows.to_vec();
        events.push(Event::MaintenanceScheduleUpdated { windows: windows.to_vec() });
        Ok(())
    }

    /// Maintenance moves machines one mode at a time: every machine named must be in `mode`.
    fn require_machines_in(
        &self,
        machines: &[MachineId],
        mode: MachineMode,
        otherwise: &str,
    ) -> Result<(), Rejection> {
        if machines.is_empty() {
            return Err(Rejection::invalid("machines", "must not be empty"));
        }
        match machines.iter().find(|machine| self.machine_modes.get(*machine) != Some(&mode)) {
            Some(machine) => {
                Err(Rejection::invalid("machines", format!("machine {machine:?} {otherwise}")))
            }
            None => Ok(()),
        }
    }

    pub(crate) fn start_maintenance(
        &mut self,
        entry: &Entry,
        machines: &[MachineId],
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        require_operator(entry)?;
        self.require_machines_in(
            machines,
            MachineMode::Draining,
            "is not scheduled for maintenance (DRAINING)",
        )?;
        for machine in machines {
            self.machine_modes.insert(machine.clone(), MachineMode::Down);
        }
        events.push(Event::MaintenanceStarted { machines: machines.to_vec() });
        let affected: Vec<AgentId> = self
            .agents
            .values()
            .filter(|agent| !agent.is_gone())
            .filter(|agent| {
                machines.iter().any(|m| m.matches(&agent.info.hostname, &agent.info.address))
            })
            .map(|agent| agent.id.clone())
            .collect();
        for agent_id in affected {
            self.mark_agent_gone(&agent_id, true, events);
        }
        Ok(())
    }

    pub(crate) fn stop_maintenance(
        &mut self,
        entry: &Entry,
        machines: &[MachineId],
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        require_operator(entry)?;
        self.require_machines_in(machines, MachineMode::Down, "is not DOWN")?;
        for machine in machines {
            self.machine_modes.remove(machine);
        }
        for window in &mut self.maintenance_windows {
            window.machine_ids.retain(|m| !machines.contains(m));
        }
        self.maintenance_windows.retain(|window| !window.machine_ids.is_empty());
        events.push(Event::MaintenanceStopped { machines: machines.to_vec() });
        Ok(())
    }

    pub(crate) fn drain_agent(
        &mut self,
        entry: &Entry,
        agent_id: &AgentId,
        max_grace_period: Option<Duration>,
        mark_gone: bool,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        require_operator(entry)?;
        let agent = self.known_agent(agent_id)?;
        if matches!(agent.mode, AgentMode::Draining(_) | AgentMode::Drained(_)) {
            return Err(Rejection::invalid(
                "agent_id",
                format!("agent {agent_id} is already draining"),
            ));
        }
        let config = DrainConfig { max_grace_period, mark_gone };
        self.change_agent(agent_id, |agent| agent.mode = AgentMode::Draining(config));
        events.push(Event::AgentDraining { agent_id: agent_id.clone(), config });
        self.rescind_agent_offers(agent_id, RescindReason::AgentDrainingOrDeactivated, events);
        for (framework_id, task_id) in self.live_tasks_on(agent_id) {
            let Some(task) = self.task(&framework_id, &task_id) else { continue };
            let own_grace = task.info.kill_policy.and_then(|p| p.grace_period);
            let grace = match (own_grace, max_grace_period) {
                (Some(own), Some(cap)) => Some(own.min(cap)),
                (None, cap) => cap,
                (own, None) => own,
            };
            let policy = KillPolicy { grace_period: grace };
            self.request_task_kill(&framework_id, &task_id, Some(policy), events);
        }
        self.check_drained(agent_id, events);
        Ok(())
    }

    pub(crate) fn deactivate_agent(
        &mut self,
        entry: &Entry,
        agent_id: &AgentId,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        require_operator(entry)?;
        let agent = self.known_agent(agent_id)?;
        if agent.mode != AgentMode::Active {
            return Err(Rejection::invalid("agent_id", format!("agent {agent_id} is not active")));
        }
        self.change_agent(agent_id, |agent| agent.mode = AgentMode::Deactivated);
        events.push(Event::AgentDeactivated { agent_id: agent_id.clone() });
        self.rescind_agent_offers(agent_id, RescindReason::AgentDrainingOrDeactivated, events);
        Ok(())
    }

    pub(crate) fn reactivate_agent(
        &mut self,
        entry: &Entry,
        agent_id: &AgentId,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        require_operator(entry)?;
        let agent = self.known_agent(agent_id)?;
        if agent.mode == AgentMode::Active {
            return Err(Rejection::invalid(
                "agent_id",
                format!("agent {agent_id} is already active"),
            ));
        }
        self.change_agent(agent_id, |agent| agent.mode = AgentMode::Active);
        events.push(Event::AgentReactivated { agent_id: agent_id.clone() });
        Ok(())
    }

    pub(crate) fn mark_agent_gone_by_operator(
        &mut self,
        entry: &Entry,
        agent_id: &AgentId,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        require_operator(entry)?;
        self.known_agent(agent_id)?;
        self.mark_agent_gone(agent_id, true, events);
        Ok(())
    }

    pub(crate) fn operator_reserve(
        &mut self,
        entry: &Entry,
        agent_id: &AgentId,
        resources: &Resources,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        require_operator(entry)?;
        validate_reservation_request(resources)?;
        let agent = self.known_agent(agent_id)?;
        let unreserved = unreserved_equivalent(resources);
        agent.check_fits(&unreserved)?;
        let reserved =
            Event::ResourcesReserved { agent_id: agent_id.clone(), resources: resources.clone() };
        self.reshape_agent(agent_id, &unreserved, resources, reserved, events);
        Ok(())
    }

    pub(crate) fn operator_unreserve(
        &mut self,
        entry: &Entry,
        agent_id: &AgentId,
        resources: &Resources,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        require_operator(entry)?;
        validate_reservation_request(resources)?;
        if resources.iter().any(|r| matches!(r.reservation, Reservation::Static { .. })) {
            return Err(Rejection::invalid(
                "resources",
                "static reservations cannot be unreserved",
            ));
        }
        let agent = self.known_agent(agent_id)?;
        agent.check_fits(resources)?;
        let unreserved = unreserved_equivalent(resources);
        let unreserved_event =
            Event::ResourcesUnreserved { agent_id: agent_id.clone(), resources: resources.clone() };
        self.reshape_agent(agent_id, resources, &unreserved, unreserved_event, events);
        Ok(())
    }

    pub(crate) fn update_settings(
        &mut self,
        entry: &Entry,
        settings: &Settings,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        require_operator(entry)?;
        if let Err(problem) = Settings::check_cluster_id(&settings.cluster_id) {
            return Err(Rejection::invalid("settings.cluster_id", problem));
        }
        if settings.dedup_capacity == 0 {
            return Err(Rejection::invalid("settings.dedup_capacity", "must be at least 1"));
        }
        if settings.agent_heartbeat_timeout.is_zero() {
            return Err(Rejection::invalid("settings.agent_heartbeat_timeout", "must be positive"));
        }
        if settings.max_statuses_per_task == 0 {
            return Err(Rejection::invalid("settings.max_statuses_per_task", "must be at least 1"));
        }
        self.settings = settings.clone();
        events.push(Event::SettingsUpdated { settings: settings.clone() });
        Ok(())
    }
}
