//! `ClusterState`: the whole cluster as the log has made it, and `apply`, the one way to
//! change it.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::apply::KillHow;
use crate::dedup::Dedup;
use crate::shared::SharedMap;

use crate::model::{
    Agent, CompletedFramework, ExecutorInfo, Framework, InstanceCounts, MachineId, MachineMode,
    MaintenanceWindow, Offer, RoleConfig, ServiceApp, ServiceState, Settings, Task,
};
use crate::{
    Actor, AgentId, AppPut, Command, Entry, Event, ExecutorId, FrameworkId, OfferId, Outcome,
    Rejection, RequestId, Role, TaskId, Timestamp,
};

/// An executor the master knows of, with the resources it holds once for all its tasks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Executor {
    pub framework_id: FrameworkId,
    pub agent_id: AgentId,
    pub info: ExecutorInfo,
    /// Tasks of this executor that are not terminal.
    pub live_tasks: u32,
}

/// What a retry gets back: the verdict (accepted, or rejected with its reason) and, for the
/// commands that assign an id, the event naming it. Keeping every event of every command
/// would make the de-duplication record larger than the cluster it describes.
fn remembered(outcome: &Outcome) -> Outcome {
    match outcome {
        Outcome::Accepted(events) => Outcome::Accepted(
            events
                .iter()
                .filter(|event| {
                    matches!(event, Event::AgentAdded { .. } | Event::FrameworkAdded { .. })
                })
                .cloned()
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Everything the masters agree on. Every field is ordered (`BTreeMap`, `SharedMap`, `Vec`), so the
/// encoding, the digest and every iteration are the same on every replica.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterState {
    pub(crate) settings: Settings,
    /// The latest entry time applied; never goes backwards even if a new leader's clock does.
    pub(crate) now: Timestamp,
    pub(crate) next_agent: u64,
    pub(crate) next_framework: u64,
    pub(crate) next_offer: u64,
    pub(crate) agents: SharedMap<AgentId, Agent>,
    pub(crate) frameworks: SharedMap<FrameworkId, Framework>,
    pub(crate) completed_frameworks: SharedMap<FrameworkId, CompletedFramework>,
    pub(crate) completed_framework_order: VecDeque<FrameworkId>,
    pub(crate) offers: SharedMap<OfferId, Offer>,
    pub(crate) executors: SharedMap<(FrameworkId, ExecutorId), Executor>,
    pub(crate) roles: BTreeMap<Role, RoleConfig>,
    pub(crate) maintenance_windows: Vec<MaintenanceWindow>,
    pub(crate) machine_modes: BTreeMap<MachineId, MachineMode>,
    pub(crate) services: ServiceState,
    pub(crate) dedup: Dedup,
    /// Commands applied, duplicates and rejections included.
    pub(crate) applied_commands: u64,
    /// Encoded after the rest by `snapshot` (and only when not empty), so a state without
    /// access control encodes, and digests, as it did before access control existed.
    #[serde(skip)]
    pub(crate) auth: crate::auth::AuthState,
    /// Running totals for the metrics, kept by `apply`; derived, so never encoded:
    /// `from_snapshot` counts them again.
    #[serde(skip)]
    pub(crate) tally: crate::tally::Tally,
}

impl ClusterState {
    pub fn new(settings: Settings) -> ClusterState {
        ClusterState { settings, ..ClusterState::default() }
    }

    /// Applies one command at its place in the log. Validation happens here, against the
    /// state as the log has made it, so every replica decides the same way. A rejected
    /// command changes nothing but the de-duplication record and the clock.
    /// The built-in service framework is driven by the leader's scheduler alone: a task it
    /// launched outside its instance index would be a service instance nobody counts.
    fn refuse_acting_as_the_service_framework(&self, entry: &Entry) -> Result<(), Rejection> {
        match (entry.actor.acting(), &self.services.framework_id) {
            (Actor::Framework(actor), Some(service)) if actor == service => {
                Err(Rejection::NotPermitted {
                    command: entry.command.kind().to_owned(),
                    why: format!("only the leader acts for the built-in framework {service}"),
                })
            }
            _ => Ok(()),
        }
    }

    pub fn apply(&mut self, entry: &Entry) -> Outcome {
        self.applied_commands += 1;
        if let Some(first) = self.dedup.get(&entry.request_id) {
            return Outcome::Duplicate(Box::new(first.clone()));
        }
        self.now = self.now.max(entry.at);
        let mut events = Vec::new();
        let outcome = match self.dispatch(entry, &mut events) {
            Ok(()) => {
                self.bind_agent_identity(entry, &events);
                Outcome::Accepted(events)
            }
            Err(rejection) => Outcome::Rejected(rejection),
        };
        self.remember(&entry.request_id, &outcome);
        outcome
    }

    fn dispatch(&mut self, entry: &Entry, events: &mut Vec<Event>) -> Result<(), Rejection> {
        use Command as C;
        self.authorize(entry)?;
        self.refuse_acting_as_the_service_framework(entry)?;
        match &entry.command {
            C::RegisterAgent { info, resources } => {
                self.register_agent(entry, info, resources, events)
            }
            C::ReregisterAgent { agent_id, info, resources, tasks } => {
                self.reregister_agent(entry, agent_id, info, resources, tasks, events)
            }
            C::AgentHeartbeat { agent_id } => self.agent_heartbeat(entry, agent_id),
            C::UpdateStatus { framework_id, status } => {
                self.update_status(entry, framework_id, status, events)
            }
            C::ExecutorMessage { agent_id, framework_id, executor_id, data } => {
                self.executor_message(entry, agent_id, framework_id, executor_id, data, events)
            }
            C::Subscribe { framework_id, info } => {
                self.subscribe(entry, framework_id.as_ref(), info, events)
            }
            C::DisconnectFramework { framework_id } => {
                self.disconnect_framework(entry, framework_id, events)
            }
            C::Teardown { framework_id } => self.teardown(entry, framework_id, events),
            C::Accept { framework_id, offer_ids, operations, filters } => {
                if Some(framework_id) == self.services.framework_id.as_ref() {
                    return Err(Rejection::NotPermitted {
                        command: entry.command.kind().to_owned(),
                        why: "the built-in service framework launches only its apps' instances"
                            .to_owned(),
                    });
                }
                self.accept(entry, framework_id, offer_ids, operations, *filters, events)
            }
            C::Decline { framework_id, offer_ids, filters } => {
                self.decline(entry, framework_id, offer_ids, *filters, events)
            }
            C::Revive { framework_id, roles } => self.revive(entry, framework_id, roles, events),
            C::Suppress { framework_id, roles } => {
                self.suppress(entry, framework_id, roles, events)
            }
            C::Kill { framework_id, task_id, agent_id, kill_policy } => {
                self.kill(entry, framework_id, task_id, agent_id.as_ref(), *kill_policy, events)
            }
            C::Shutdown { framework_id, executor_id, agent_id } => {
                self.shutdown(entry, framework_id, executor_id, agent_id, events)
            }
            C::Acknowledge { framework_id, agent_id, task_id, uuid } => {
                self.acknowledge(entry, framework_id, agent_id, task_id, uuid, events)
            }
            C::Reconcile { framework_id, tasks } => {
                self.reconcile(entry, framework_id, tasks, events)
            }
            C::Message { framework_id, agent_id, executor_id, data } => {
                self.message(entry, framework_id, agent_id, executor_id, data, events)
            }
            C::OfferResources { offers } => self.offer_resources(entry, offers, events),
            C::RescindOffers { offer_ids } => self.rescind_offers(entry, offer_ids, events),
            C::Tick => self.tick(entry, events),
            C::UpdateWeights { weights } => self.update_weights(entry, weights, events),
            C::UpdateQuota { configs } => self.update_quota(entry, configs, events),
            C::UpdateMaintenanceSchedule { windows } => {
                self.update_maintenance_schedule(entry, windows, events)
            }
            C::StartMaintenance { machines } => self.start_maintenance(entry, machines, events),
            C::StopMaintenance { machines } => self.stop_maintenance(entry, machines, events),
            C::DrainAgent { agent_id, max_grace_period, mark_gone } => {
                self.drain_agent(entry, agent_id, *max_grace_period, *mark_gone, events)
            }
            C::DeactivateAgent { agent_id } => self.deactivate_agent(entry, agent_id, events),
            C::ReactivateAgent { agent_id } => self.reactivate_agent(entry, agent_id, events),
            C::MarkAgentGone { agent_id } => {
                self.mark_agent_gone_by_operator(entry, agent_id, events)
            }
            C::ReserveResources { agent_id, resources } => {
                self.operator_reserve(entry, agent_id, resources, events)
            }
            C::UnreserveResources { agent_id, resources } => {
                self.operator_unreserve(entry, agent_id, resources, events)
            }
            C::UpdateSettings { settings } => self.update_settings(entry, settings, events),
            C::PutApp { app_id, spec, definition, mode, force, deployment_id } => {
                let put = AppPut {
                    app_id: app_id.clone(),
                    spec: spec.clone(),
                    definition: definition.clone(),
                    mode: *mode,
                    force: *force,
                    deployment_id: deployment_id.clone(),
                };
                self.put_app(entry, &put, events)
            }
            C::PutApps { apps } => self.put_apps(entry, apps, events),
            C::RestartApp { app_id, force, deployment_id } => {
                self.restart_app(entry, app_id, *force, deployment_id, events)
            }
            C::RollBackApp { app_id, version, force, deployment_id } => {
                self.roll_back_app(entry, app_id, *version, *force, deployment_id, events)
            }
            C::DeleteApp { app_id, force, deployment_id } => {
                self.delete_app(entry, app_id, *force, deployment_id, events)
            }
            C::CancelDeployment { deployment_id, cancellation } => {
                self.cancel_deployment(entry, deployment_id, cancellation, events)
            }
            C::KillServiceTasks { task_ids, scaling, wipe, force, deployment_id } => {
                let how = KillHow { scaling: *scaling, wipe: *wipe, force: *force };
                self.kill_service_tasks(entry, task_ids, how, deployment_id, events)
            }
            C::ResetLaunchDelay { app_id } => self.reset_launch_delay(entry, app_id, events),
            C::LaunchServiceTasks { offer_ids, launches, filters } => {
                self.launch_service_tasks(entry, offer_ids, launches, *filters, events)
            }
            C::PutAutoscaler { app_id, policy } => {
                self.put_autoscaler(entry, app_id, policy, events)
            }
            C::DeleteAutoscaler { app_id } => self.delete_autoscaler(entry, app_id, events),
            C::AutoscaleApp { app_id, scaling, deployment_id } => {
                self.autoscale_app(entry, app_id, scaling, deployment_id, events)
            }
            C::RecordRecommendation { app_id, count } => {
                self.record_recommendation(entry, app_id, *count, events)
            }
            C::ChangeSettings { change } => {
                let settings = self.settings.changed(change);
                self.update_settings(entry, &settings, events)
            }
            C::BootstrapAcl { token } => self.bootstrap_acl(token, events),
            C::PutToken { token } => self.put_token(token, events),
            C::RevokeToken { accessor } => self.revoke_token(accessor, events),
            C::PutCredential { credential } => self.put_credential(credential, events),
            C::DeleteCredential { principal } => self.delete_credential(principal, events),
            C::PutPolicy { policy } => self.put_policy(policy, events),
            C::DeletePolicy { name } => self.delete_policy(name, events),
            C::SetAuthMode { mode } => self.set_auth_mode(*mode, events),
        }
    }

    fn remember(&mut self, request_id: &RequestId, outcome: &Outcome) {
        let capacity = self.settings.dedup_capacity as usize;
        self.dedup.remember(self.now, request_id.clone(), remembered(outcome), capacity);
    }

    /// Forgets request ids older than the de-duplication window (called on Tick).
    pub(crate) fn expire_request_ids(&mut self) {
        self.dedup.expire(self.now, self.settings.dedup_window);
    }

    // Read access for the allocator, the API and tests. Nothing outside `apply` mutates.

    /// Apps, deployments and instances of the built-in service scheduler.
    pub fn services(&self) -> &ServiceState {
        &self.services
    }

    /// The counts the launch limits are checked against (and the queue reports).
    pub fn instance_counts(&self, app: &ServiceApp) -> InstanceCounts {
        let framework_id = self.service_framework_id();
        let mut counts = InstanceCounts::default();
        for (task_id, instance) in self.services.instances_of(&app.id) {
            if instance.is_inactive(app.spec.unreachable, self.now) {
                continue;
            }
            counts.live += 1;
            let killing =
                self.task(&framework_id, task_id).is_none_or(|task| task.kill_requested.is_some());
            if instance.config_version == app.config_version && !killing {
                counts.current += 1;
            }
        }
        counts
    }

    /// The id the built-in service framework has, or will have once an app exists.
    pub fn service_framework_id(&self) -> FrameworkId {
        FrameworkId(smol_str::format_smolstr!("{}-marathon", self.settings.cluster_id))
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The latest time the log has reached.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    pub fn applied_commands(&self) -> u64 {
        self.applied_commands
    }

    /// Running totals of agents, tasks and resources, for metrics read at any size.
    pub fn tally(&self) -> &crate::tally::Tally {
        &self.tally
    }

    /// Changes an agent's counted fields (liveness, mode, total, last heartbeat) with the
    /// tally kept: its old contribution out, its new one in.
    pub(crate) fn change_agent<T>(
        &mut self,
        agent_id: &AgentId,
        change: impl FnOnce(&mut Agent) -> T,
    ) -> Option<T> {
        let agent = self.agents.get_mut(agent_id)?;
        self.tally.remove_agent(agent);
        let result = change(agent);
        self.tally.add_agent(agent);
        Some(result)
    }

    pub fn agents(&self) -> &SharedMap<AgentId, Agent> {
        &self.agents
    }

    pub fn agent(&self, agent_id: &AgentId) -> Option<&Agent> {
        self.agents.get(agent_id)
    }

    pub fn frameworks(&self) -> &SharedMap<FrameworkId, Framework> {
        &self.frameworks
    }

    pub fn framework(&self, framework_id: &FrameworkId) -> Option<&Framework> {
        self.frameworks.get(framework_id)
    }

    pub fn completed_frameworks(&self) -> &SharedMap<FrameworkId, CompletedFramework> {
        &self.completed_frameworks
    }

    pub fn offers(&self) -> &SharedMap<OfferId, Offer> {
        &self.offers
    }

    pub fn offer(&self, offer_id: &OfferId) -> Option<&Offer> {
        self.offers.get(offer_id)
    }

    pub fn task(&self, framework_id: &FrameworkId, task_id: &TaskId) -> Option<&Task> {
        self.frameworks.get(framework_id)?.tasks.get(task_id).map(|task| &**task)
    }

    /// Every task the master tracks, framework by framework.
    pub fn tasks(&self) -> impl Iterator<Item = &Task> {
        self.frameworks.values().flat_map(|framework| framework.tasks.values().map(|task| &**task))
    }

    pub fn executors(&self) -> &SharedMap<(FrameworkId, ExecutorId), Executor> {
        &self.executors
    }

    /// Roles with an explicit weight or quota.
    pub fn role_configs(&self) -> &BTreeMap<Role, RoleConfig> {
        &self.roles
    }

    /// The weight and quota of a role, defaults when none was set.
    pub fn role_config(&self, role: &Role) -> RoleConfig {
        self.roles.get(role).cloned().unwrap_or_default()
    }

    pub fn maintenance_windows(&self) -> &[MaintenanceWindow] {
        &self.maintenance_windows
    }

    pub fn machine_modes(&self) -> &BTreeMap<MachineId, MachineMode> {
        &self.machine_modes
    }

    /// The maintenance mode of the machine an agent runs on.
    pub fn machine_mode_of(&self, hostname: &str, address: &str) -> MachineMode {
        self.machine_modes
            .iter()
            .filter(|(machine, _)| machine.matches(hostname, address))
            .map(|(_, mode)| *mode)
            .max()
            .unwrap_or(MachineMode::Up)
    }

    /// The state without what every command touches (clock, remembered request ids,
    /// command count): what a rejected command must leave exactly as it was.
    pub fn without_bookkeeping(&self) -> ClusterState {
        // Field by field, so the (large) de-duplication record is never copied: big reads
        // copy the state this way under the read lock to render it outside. The big maps
        // are `SharedMap`s, so their clones are pointer copies and applying is not held up.
        ClusterState {
            settings: self.settings.clone(),
            now: Timestamp::default(),
            next_agent: self.next_agent,
            next_framework: self.next_framework,
            next_offer: self.next_offer,
            agents: self.agents.clone(),
            frameworks: self.frameworks.clone(),
            completed_frameworks: self.completed_frameworks.clone(),
            completed_framework_order: self.completed_framework_order.clone(),
            offers: self.offers.clone(),
            executors: self.executors.clone(),
            roles: self.roles.clone(),
            maintenance_windows: self.maintenance_windows.clone(),
            machine_modes: self.machine_modes.clone(),
            services: self.services.clone(),
            dedup: Dedup::default(),
            applied_commands: 0,
            auth: self.auth.clone(),
            tally: self.tally.clone(),
        }
    }

    /// The first outcome of a request id still remembered.
    pub fn outcome_of(&self, request_id: &RequestId) -> Option<&Outcome> {
        self.dedup.get(request_id)
    }
}
