//! Offers: made by the leader's allocator, then accepted, declined or rescinded.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::{require_framework, require_leader, require_operator};
use crate::cluster::{ClusterState, Executor};
use crate::model::{
    ExecutorInfo, Filters, HealthCheckKind, MachineMode, Offer, OfferFilter, RescindReason, Task,
    TaskInfo, TaskReason, TaskSource, TaskState, TaskStatus,
};
use crate::resources::Reservation;
use crate::{
    AgentId, Entry, Event, ExecutorId, FrameworkId, OfferId, OfferSpec, Operation, Rejection,
    Resource, Resources, Role, TaskId,
};

/// The resources an ACCEPT may still use, as its operations consume them.
struct Pool {
    framework_id: FrameworkId,
    agent_id: AgentId,
    role: Role,
    available: Resources,
}

fn dropped_status(
    task: &TaskInfo,
    reason: TaskReason,
    message: String,
    at: crate::Timestamp,
) -> TaskStatus {
    TaskStatus {
        task_id: task.task_id.clone(),
        state: TaskState::Error,
        message: Some(message),
        source: TaskSource::Master,
        reason: Some(reason),
        healthy: None,
        agent_id: Some(task.agent_id.clone()),
        executor_id: task.executor.as_ref().map(|e| e.executor_id.clone()),
        timestamp: at,
        uuid: None,
        exit_code: None,
    }
}

/// What a task must satisfy on its own, before resources are considered.
fn validate_task_shape(task: &TaskInfo) -> Result<(), String> {
    if task.task_id.as_str().is_empty() {
        return Err("task_id must not be empty".to_owned());
    }
    if task.resources.is_empty() {
        return Err("task uses no resources".to_owned());
    }
    if task.resources.scalar("cpus").is_zero() && task.resources.scalar("mem").is_zero() {
        return Err("task must use some cpus or mem".to_owned());
    }
    if task.command.is_none() && task.executor.is_none() {
        return Err("task needs a command or an executor".to_owned());
    }
    if let Some(command) = &task.command {
        let has_docker = task.container.as_ref().is_some_and(|c| c.docker.is_some());
        if command.value.as_deref().is_none_or(str::is_empty)
            && command.arguments.is_empty()
            && !has_docker
        {
            return Err("command.value must not be empty".to_owned());
        }
    }
    if let Some(container) = &task.container {
        if container.kind == crate::model::ContainerType::Docker
            && container.docker.as_ref().is_none_or(|d| d.image.trim().is_empty())
        {
            return Err("container.docker.image must be set for a DOCKER container".to_owned());
        }
    }
    if let Some(check) = &task.health_check {
        let complete = match check.kind {
            HealthCheckKind::Command => check.command.as_ref().is_some_and(|c| c.value.is_some()),
            HealthCheckKind::Http => check.http.is_some(),
            HealthCheckKind::Tcp => check.tcp.is_some(),
        };
        if !complete {
            return Err("health_check lacks the field its type needs".to_owned());
        }
        if check.interval.is_zero() {
            return Err("health_check.interval_seconds must be positive".to_owned());
        }
    }
    Ok(())
}

impl ClusterState {
    pub(crate) fn offer_resources(
        &mut self,
        entry: &Entry,
        specs: &[OfferSpec],
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        require_leader(entry)?;
        // Each offer is checked against the state as it is now; the allocator decided on an
        // older view, so offers that no longer fit are skipped rather than failing the rest.
        for spec in specs {
            if self.check_offer_spec(spec).is_err() {
                continue;
            }
            let offer_id = self.next_offer_id();
            let hostname = self
                .agents
                .get(&spec.agent_id)
                .map(|a| a.info.hostname.clone())
                .unwrap_or_default();
            let offer = Offer {
                id: offer_id.clone(),
                framework_id: spec.framework_id.clone(),
                agent_id: spec.agent_id.clone(),
                hostname,
                role: spec.role.clone(),
                resources: spec.resources.clone(),
                created_at: self.now,
            };
            if let Some(agent) = self.agents.get_mut(&spec.agent_id) {
                agent.offered.add(&spec.resources);
            }
            if let Some(framework) = self.frameworks.get_mut(&spec.framework_id) {
                framework.offers.insert(offer_id.clone());
            }
            self.tally.add_offer(&offer);
            self.offers.insert(offer_id, offer.clone());
            events.push(Event::OfferCreated { offer });
        }
        Ok(())
    }

    /// Whether an offer may be made now: the invariant "offered + allocated ≤ total" and
    /// every rule about who may be offered what.
    pub fn check_offer_spec(&self, spec: &OfferSpec) -> Result<(), Rejection> {
        self.connected_framework(&spec.framework_id)?;
        let framework = &self.frameworks[&spec.framework_id];
        if !framework.info.roles.contains(&spec.role) {
            return Err(Rejection::RoleNotSubscribed {
                framework_id: spec.framework_id.clone(),
                role: spec.role.clone(),
            });
        }
        if framework.suppressed_roles.contains(&spec.role) {
            return Err(Rejection::invalid("role", format!("{} is suppressed", spec.role)));
        }
        let agent = self.known_agent(&spec.agent_id)?;
        if !agent.is_offerable() {
            return Err(Rejection::invalid(
                "agent_id",
                format!("agent {} is not active and reachable", spec.agent_id),
            ));
        }
        if self.machine_mode_of(&agent.info.hostname, &agent.info.address) == MachineMode::Down {
            return Err(Rejection::MachineDown(agent.info.hostname.clone()));
        }
        if spec.resources.is_empty() {
            return Err(Rejection::invalid("resources", "an offer must hold something"));
        }
        if spec.resources.iter().any(|r| !r.reservation.is_allocatable_to(&spec.role)) {
            return Err(Rejection::invalid(
                "resources",
                format!("holds resources reserved for a role other than {}", spec.role),
            ));
        }
        agent.check_fits(&spec.resources)?;
        if let Some(filter) = framework.filters.get(&spec.agent_id) {
            if self.now < filter.until && filter.resources.contains(&spec.resources) {
                return Err(Rejection::invalid(
                    "agent_id",
                    "the framework refused these resources until its filter expires",
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn rescind_offers(
        &mut self,
        entry: &Entry,
        offer_ids: &[OfferId],
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        require_operator(entry)?;
        if let Some(unknown) = offer_ids.iter().find(|id| !self.offers.contains_key(*id)) {
            return Err(Rejection::UnknownOffer(unknown.clone()));
        }
        let wanted: BTreeSet<&OfferId> = offer_ids.iter().collect();
        self.rescind_offers_where(
            |offer| wanted.contains(&offer.id),
            RescindReason::Requested,
            events,
        );
        Ok(())
    }

    /// Checks that the offers are named once each, exist, and belong to the framework.
    fn owned_offers(
        &self,
        framework_id: &FrameworkId,
        offer_ids: &[OfferId],
    ) -> Result<Vec<Offer>, Rejection> {
        if offer_ids.is_empty() {
            return Err(Rejection::invalid("offer_ids", "must name at least one offer"));
        }
        let distinct: BTreeSet<&OfferId> = offer_ids.iter().collect();
        if distinct.len() != offer_ids.len() {
            return Err(Rejection::invalid("offer_ids", "names an offer twice"));
        }
        let mut offers: Vec<Offer> = Vec::with_capacity(offer_ids.len());
        for offer_id in offer_ids {
            let offer = self
                .offers
                .get(offer_id)
                .ok_or_else(|| Rejection::UnknownOffer(offer_id.clone()))?;
            if &offer.framework_id != framework_id {
                return Err(Rejection::OfferNotOwned {
                    offer_id: offer_id.clone(),
                    owner: offer.framework_id.clone(),
                    claimed: framework_id.clone(),
                });
            }
            offers.push(offer.clone());
        }
        Ok(offers)
    }

    /// Owned offers that may be accepted together: one agent, one role.
    fn offers_to_accept(
        &self,
        framework_id: &FrameworkId,
        offer_ids: &[OfferId],
    ) -> Result<Vec<Offer>, Rejection> {
        let offers = self.owned_offers(framework_id, offer_ids)?;
        let first = &offers[0];
        for offer in &offers[1..] {
            if first.agent_id != offer.agent_id {
                return Err(Rejection::OffersOnDifferentAgents {
                    first: first.id.clone(),
                    second: offer.id.clone(),
                });
            }
            if first.role != offer.role {
                return Err(Rejection::invalid(
                    "offer_ids",
                    "offers for different roles cannot be accepted together",
                ));
            }
        }
        Ok(offers)
    }

    pub(crate) fn accept(
        &mut self,
        entry: &Entry,
        framework_id: &FrameworkId,
        offer_ids: &[OfferId],
        operations: &[Operation],
        filters: Filters,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        require_framework(entry, framework_id)?;
        self.connected_framework(framework_id)?;
        let offers = self.offers_to_accept(framework_id, offer_ids)?;
        for operation in operations {
            if let Operation::Reserve { resources } | Operation::Unreserve { resources } = operation
            {
                validate_reservation_request(resources)?;
            }
        }
        let mut pool = Pool {
            framework_id: framework_id.clone(),
            agent_id: offers[0].agent_id.clone(),
            role: offers[0].role.clone(),
            available: Resources::new(),
        };
        for offer in &offers {
            pool.available.add(&offer.resources);
        }
        // Reservations must fit the offer; checking them all before any change keeps a
        // rejected ACCEPT from half-applying.
        let mut dry = pool.available.clone();
        for operation in operations {
            match operation {
                Operation::Reserve { resources } => {
                    if resources.iter().any(|r| r.reservation.role() != Some(&offers[0].role)) {
                        return Err(Rejection::invalid(
                            "operations.reserve.resources",
                            format!(
                                "a framework may reserve only for the offer's role {}",
                                offers[0].role
                            ),
                        ));
                    }
                    dry = dry.checked_sub(&unreserved_equivalent(resources))?;
                    dry.add(resources);
                }
                Operation::Unreserve { resources } => {
                    dry = dry.checked_sub(resources)?;
                    dry.add(&unreserved_equivalent(resources));
                }
                Operation::Launch { .. } | Operation::LaunchGroup { .. } => {}
            }
        }

        for offer in &offers {
            self.remove_offer(&offer.id);
            events.push(Event::OfferAccepted {
                offer_id: offer.id.clone(),
                framework_id: framework_id.clone(),
                agent_id: offer.agent_id.clone(),
            });
        }
        let mut launched_ids: BTreeSet<TaskId> = BTreeSet::new();
        let framework_user =
            self.frameworks.get(framework_id).map(|framework| framework.info.user.clone());
        // Mesos asks `run_tasks` for the task's user, else the framework's.
        let refusal = |state: &ClusterState, task: &TaskInfo| {
            let user = task
                .command
                .as_ref()
                .and_then(|command| command.user.as_deref())
                .or(framework_user.as_deref());
            state.run_tasks_refusal(entry, user)
        };
        for operation in operations {
            match operation {
                Operation::Reserve { resources } => {
                    self.reserve_from_pool(&mut pool, resources, events)
                }
                Operation::Unreserve { resources } => {
                    self.unreserve_from_pool(&mut pool, resources, events)
                }
                Operation::Launch { task_infos } => {
                    for task in task_infos {
                        if let Some(denial) = refusal(self, task) {
                            let message = format!("Not authorized to launch task: {denial}");
                            let status = dropped_status(
                                task,
                                TaskReason::TaskUnauthorized,
                                message,
                                self.now,
                            );
                            events.push(Event::TaskDropped {
                                framework_id: framework_id.clone(),
                                status,
                            });
                            continue;
                        }
                        self.launch_one(&mut pool, task, None, &mut launched_ids, events);
                    }
                }
                Operation::LaunchGroup { executor, task_infos } => {
                    // A group launches whole or not at all: one refused task refuses it.
                    if let Some(denial) = task_infos.iter().find_map(|task| refusal(self, task)) {
                        let message = format!("Not authorized to launch task group: {denial}");
                        for task in task_infos {
                            let status = dropped_status(
                                task,
                                TaskReason::TaskGroupUnauthorized,
                                message.clone(),
                                self.now,
                            );
                            events.push(Event::TaskDropped {
                                framework_id: framework_id.clone(),
                                status,
                            });
                        }
                        continue;
                    }
                    self.launch_group(&mut pool, executor, task_infos, &mut launched_ids, events);
                }
            }
        }
        if !pool.available.is_empty() && !filters.refuse.is_zero() {
            self.add_filter(framework_id, &pool.agent_id, pool.available, filters, events);
        }
        Ok(())
    }

    fn reserve_from_pool(
        &mut self,
        pool: &mut Pool,
        resources: &Resources,
        events: &mut Vec<Event>,
    ) {
        let unreserved = unreserved_equivalent(resources);
        let Ok(rest) = pool.available.checked_sub(&unreserved) else { return };
        pool.available = rest;
        pool.available.add(resources);
        let reserved = Event::ResourcesReserved {
            agent_id: pool.agent_id.clone(),
            resources: resources.clone(),
        };
        self.reshape_agent(&pool.agent_id, &unreserved, resources, reserved, events);
    }

    fn unreserve_from_pool(
        &mut self,
        pool: &mut Pool,
        resources: &Resources,
        events: &mut Vec<Event>,
    ) {
        let Ok(rest) = pool.available.checked_sub(resources) else { return };
        let unreserved = unreserved_equivalent(resources);
        pool.available = rest;
        pool.available.add(&unreserved);
        let unreserved_event = Event::ResourcesUnreserved {
            agent_id: pool.agent_id.clone(),
            resources: resources.clone(),
        };
        self.reshape_agent(&pool.agent_id, resources, &unreserved, unreserved_event, events);
    }

    /// Why a task cannot be launched from the pool, or `None` when it can.
    fn task_problem(
        &self,
        pool: &Pool,
        task: &TaskInfo,
        launched_ids: &BTreeSet<TaskId>,
    ) -> Option<String> {
        if let Err(problem) = validate_task_shape(task) {
            return Some(problem);
        }
        if task.agent_id != pool.agent_id {
            return Some(format!(
                "task names agent {} but the offers are for agent {}",
                task.agent_id, pool.agent_id
            ));
        }
        let framework = self.frameworks.get(&pool.framework_id)?;
        if framework.tasks.contains_key(&task.task_id) || launched_ids.contains(&task.task_id) {
            return Some(format!("task id {} is already in use", task.task_id));
        }
        if task.resources.iter().any(|r| !r.reservation.is_allocatable_to(&pool.role)) {
            return Some(format!(
                "task uses resources reserved for a role other than {}",
                pool.role
            ));
        }
        if let Err(shortfall) = pool.available.checked_sub(&task.resources) {
            return Some(format!("task uses more than the offers hold: {shortfall}"));
        }
        None
    }

    fn launch_one(
        &mut self,
        pool: &mut Pool,
        task: &TaskInfo,
        group_executor: Option<&ExecutorInfo>,
        launched_ids: &mut BTreeSet<TaskId>,
        events: &mut Vec<Event>,
    ) {
        if let Some(problem) = self.task_problem(pool, task, launched_ids) {
            let status = dropped_status(task, TaskReason::TaskInvalid, problem, self.now);
            events.push(Event::TaskDropped { framework_id: pool.framework_id.clone(), status });
            return;
        }
        let executor = group_executor.or(task.executor.as_ref());
        if let Some(executor) = executor {
            if let Err(problem) = self.claim_executor(pool, executor) {
                let status = dropped_status(task, TaskReason::TaskInvalid, problem, self.now);
                events.push(Event::TaskDropped { framework_id: pool.framework_id.clone(), status });
                return;
            }
        }
        let Ok(rest) = pool.available.checked_sub(&task.resources) else { return };
        pool.available = rest;
        launched_ids.insert(task.task_id.clone());
        let mut info = task.clone();
        if info.executor.is_none() {
            info.executor = group_executor.cloned();
        }
        let record = Arc::new(Task {
            framework_id: pool.framework_id.clone(),
            info,
            role: pool.role.clone(),
            state: TaskState::Staging,
            statuses: Vec::new(),
            launched_at: self.now,
            kill_requested: None,
        });
        if let Some(agent) = self.agents.get_mut(&pool.agent_id) {
            agent.allocated.add(&task.resources);
            agent.tasks.insert((pool.framework_id.clone(), task.task_id.clone()));
        }
        if let Some(framework) = self.frameworks.get_mut(&pool.framework_id) {
            self.tally.add_task(&record);
            framework.tasks.insert(task.task_id.clone(), Arc::clone(&record));
        }
        events.push(Event::TaskAdded { task: record });
    }

    /// An executor holds its resources once, however many tasks it runs.
    fn claim_executor(&mut self, pool: &mut Pool, executor: &ExecutorInfo) -> Result<(), String> {
        let key = (pool.framework_id.clone(), executor.executor_id.clone());
        if let Some(existing) = self.executors.get_mut(&key) {
            if existing.agent_id != pool.agent_id {
                return Err(format!(
                    "executor {} already runs on agent {}",
                    executor.executor_id, existing.agent_id
                ));
            }
            existing.live_tasks += 1;
            return Ok(());
        }
        let rest = pool
            .available
            .checked_sub(&executor.resources)
            .map_err(|shortfall| format!("executor uses more than the offers hold: {shortfall}"))?;
        pool.available = rest;
        if let Some(agent) = self.agents.get_mut(&pool.agent_id) {
            agent.allocated.add(&executor.resources);
            agent.executors.insert(key.clone());
        }
        self.executors.insert(
            key,
            Executor {
                framework_id: pool.framework_id.clone(),
                agent_id: pool.agent_id.clone(),
                info: executor.clone(),
                live_tasks: 1,
            },
        );
        Ok(())
    }

    fn launch_group(
        &mut self,
        pool: &mut Pool,
        executor: &ExecutorInfo,
        task_infos: &[TaskInfo],
        launched_ids: &mut BTreeSet<TaskId>,
        events: &mut Vec<Event>,
    ) {
        // A task group launches whole or not at all.
        let mut trial = Pool {
            framework_id: pool.framework_id.clone(),
            agent_id: pool.agent_id.clone(),
            role: pool.role.clone(),
            available: pool.available.clone(),
        };
        let executor_known =
            self.executors.contains_key(&(pool.framework_id.clone(), executor.executor_id.clone()));
        let mut problem =
            if task_infos.is_empty() { Some("task group is empty".to_owned()) } else { None };
        if problem.is_none() && executor.executor_id.as_str().is_empty() {
            problem = Some("executor.executor_id must not be empty".to_owned());
        }
        if problem.is_none() && !executor_known {
            match trial.available.checked_sub(&executor.resources) {
                Ok(rest) => trial.available = rest,
                Err(shortfall) => {
                    problem = Some(format!("executor uses more than the offers hold: {shortfall}"))
                }
            }
        }
        let mut trial_ids = launched_ids.clone();
        for task in task_infos {
            if problem.is_some() {
                break;
            }
            let mut with_executor = task.clone();
            with_executor.executor = Some(executor.clone());
            if let Some(task_problem) = self.task_problem(&trial, &with_executor, &trial_ids) {
                problem = Some(format!("task {}: {task_problem}", task.task_id));
                break;
            }
            if let Ok(rest) = trial.available.checked_sub(&task.resources) {
                trial.available = rest;
            }
            trial_ids.insert(task.task_id.clone());
        }
        if let Some(problem) = problem {
            for task in task_infos {
                let status =
                    dropped_status(task, TaskReason::TaskGroupInvalid, problem.clone(), self.now);
                events.push(Event::TaskDropped { framework_id: pool.framework_id.clone(), status });
            }
            return;
        }
        for task in task_infos {
            let mut with_executor = task.clone();
            with_executor.executor = Some(executor.clone());
            self.launch_one(pool, &with_executor, Some(executor), launched_ids, events);
        }
    }

    fn add_filter(
        &mut self,
        framework_id: &FrameworkId,
        agent_id: &AgentId,
        resources: Resources,
        filters: Filters,
        events: &mut Vec<Event>,
    ) {
        let until = self.now.plus(filters.refuse);
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            framework
                .filters
                .insert(agent_id.clone(), OfferFilter { resources: resources.clone(), until });
        }
        events.push(Event::OfferFilterAdded {
            framework_id: framework_id.clone(),
            agent_id: agent_id.clone(),
            resources,
            until,
        });
    }

    pub(crate) fn decline(
        &mut self,
        entry: &Entry,
        framework_id: &FrameworkId,
        offer_ids: &[OfferId],
        filters: Filters,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        require_framework(entry, framework_id)?;
        self.existing_framework(framework_id)?;
        let offers = self.owned_offers(framework_id, offer_ids)?;
        let mut refused: std::collections::BTreeMap<AgentId, Resources> =
            std::collections::BTreeMap::new();
        for offer in offers {
            self.remove_offer(&offer.id);
            refused.entry(offer.agent_id.clone()).or_default().add(&offer.resources);
            events.push(Event::OfferDeclined {
                offer_id: offer.id,
                framework_id: framework_id.clone(),
                agent_id: offer.agent_id,
            });
        }
        if !filters.refuse.is_zero() {
            for (agent_id, resources) in refused {
                self.add_filter(framework_id, &agent_id, resources, filters, events);
            }
        }
        Ok(())
    }

    pub(crate) fn shutdown(
        &mut self,
        entry: &Entry,
        framework_id: &FrameworkId,
        executor_id: &ExecutorId,
        agent_id: &AgentId,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        require_framework(entry, framework_id)?;
        self.connected_framework(framework_id)?;
        let key = (framework_id.clone(), executor_id.clone());
        match self.executors.get(&key) {
            Some(executor) if &executor.agent_id == agent_id => {}
            _ => {
                return Err(Rejection::UnknownExecutor {
                    framework_id: framework_id.clone(),
                    executor_id: executor_id.clone(),
                    agent_id: agent_id.clone(),
                })
            }
        }
        events.push(Event::ExecutorShutdownRequested {
            framework_id: framework_id.clone(),
            executor_id: executor_id.clone(),
            agent_id: agent_id.clone(),
        });
        Ok(())
    }
}

/// Reservation requests must name a reserved role for every resource.
pub(crate) fn validate_reservation_request(resources: &Resources) -> Result<(), Rejection> {
    if resources.is_empty() {
        return Err(Rejection::invalid("resources", "must not be empty"));
    }
    for resource in resources.iter() {
        match &resource.reservation {
            Reservation::Dynamic { role, .. } if !role.is_default() => {}
            _ => {
                return Err(Rejection::invalid(
                    "resources",
                    format!(
                        "{} must carry a dynamic reservation for a role other than '*'",
                        resource.name
                    ),
                ))
            }
        }
    }
    Ok(())
}

/// The same resources, unreserved: what a reservation is carved from.
pub(crate) fn unreserved_equivalent(resources: &Resources) -> Resources {
    let list: Vec<Resource> = resources
        .iter()
        .map(|r| Resource {
            name: r.name.clone(),
            reservation: Reservation::Unreserved,
            value: r.value.clone(),
        })
        .collect();
    Resources::from_list(list).unwrap_or_default()
}
