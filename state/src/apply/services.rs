//! Long-running services: apps, their deployments, and the instances of the built-in
//! service framework.
//!
//! A deployment is not a script of steps: it is a target (this configuration version, this
//! many ready instances, nothing else). The built-in scheduler moves the cluster towards it
//! through ordinary offers and kills; the state decides, as each status arrives, when the
//! target is met. A new leader therefore continues a deployment from exactly where the log
//! left it, and the launch limits checked here make sure no instance is launched twice.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use super::{require_leader, require_operator};
use crate::cluster::ClusterState;
use crate::command::{AppPut, Cancellation, Force, KillScaling, PutMode, ServiceLaunch, Wipe};
use crate::model::{
    AppRevision, AppSpec, Deployment, DeploymentAction, Filters, Framework, FrameworkCapability,
    FrameworkInfo, FrameworkState, Instance, InstanceCounts, LaunchDelay, ServiceApp, TaskFailure,
    TaskState, TaskStatus, UnreachablePolicy, MAX_APP_VERSIONS, SERVICE_PORT_RANGE,
};
use crate::shared::{SharedMap, SharedSet};
use crate::{
    AppId, DeploymentId, Entry, Event, FrameworkId, OfferId, Operation, Rejection, Role, TaskId,
    Timestamp,
};

/// How long the built-in framework's tasks survive without it: forever, in practice; it is
/// never disconnected, since it lives in the log.
const SERVICE_FAILOVER_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

/// How `KillServiceTasks` treats the instances it kills.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KillHow {
    pub(crate) scaling: KillScaling,
    pub(crate) wipe: Wipe,
    pub(crate) force: Force,
}

impl ClusterState {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn put_app(
        &mut self,
        entry: &Entry,
        put: &AppPut,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        let (action, config, revision) = self.check_put(entry, put, &BTreeSet::new())?;
        self.install_app(&put.app_id, revision, action, config, &put.deployment_id, events);
        Ok(())
    }

    /// Every app checked against the state before any is installed: all or nothing.
    pub(crate) fn put_apps(
        &mut self,
        entry: &Entry,
        puts: &[AppPut],
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        if puts.is_empty() {
            return Err(Rejection::invalid("apps", "must name at least one app"));
        }
        let mut app_ids = BTreeSet::new();
        let mut deployment_ids = BTreeSet::new();
        let mut installs = Vec::with_capacity(puts.len());
        // Service ports handed to earlier apps of the list, which the state does not show yet.
        let mut taken_ports = BTreeSet::new();
        for (index, put) in puts.iter().enumerate() {
            if !app_ids.insert(&put.app_id) {
                return Err(Rejection::invalid(
                    &format!("apps[{index}].app_id"),
                    format!("{} is named twice", put.app_id),
                ));
            }
            if !deployment_ids.insert(&put.deployment_id) {
                return Err(Rejection::invalid(
                    &format!("apps[{index}].deployment_id"),
                    "is used twice",
                ));
            }
            let install = self.check_put(entry, put, &taken_ports)?;
            taken_ports.extend(install.2.service_ports.iter().copied());
            installs.push(install);
        }
        // Each app's checks read only its own app and deployment id, distinct above, and
        // service ports no other app of the list holds, so installing one cannot invalidate
        // another's.
        for (put, (action, config, revision)) in puts.iter().zip(installs) {
            self.install_app(&put.app_id, revision, action, config, &put.deployment_id, events);
        }
        Ok(())
    }

    /// What putting `put` would do, or why it may not; changes nothing.
    fn check_put(
        &self,
        entry: &Entry,
        put: &AppPut,
        taken_ports: &BTreeSet<u16>,
    ) -> Result<(DeploymentAction, Configuration, AppRevision), Rejection> {
        let AppPut { app_id, spec, definition, mode, force, deployment_id } = put;
        require_operator(entry)?;
        validate_app_id(app_id)?;
        validate_spec(spec)?;
        self.unused_deployment_id(deployment_id)?;
        let existing = self.services.apps.get(app_id);
        if *mode == PutMode::Create && existing.is_some() {
            return Err(Rejection::AppExists(app_id.clone()));
        }
        self.unlocked(app_id, *force)?;
        let (action, config) = match existing {
            None => (DeploymentAction::StartApplication, Configuration::New),
            Some(app) if app.definition == *definition && same_config(&app.spec, spec) => {
                (DeploymentAction::ScaleApplication, Configuration::Keep(app.config_version))
            }
            Some(_) => (DeploymentAction::RestartApplication, Configuration::New),
        };
        let held = existing.map_or(&[][..], |app| &app.service_ports[..]);
        let service_ports =
            self.assign_service_ports(app_id, &spec.service_ports, held, taken_ports)?;
        let revision = AppRevision {
            version: Timestamp::default(),
            config_version: Timestamp::default(),
            spec: spec.clone(),
            definition: definition.clone(),
            service_ports,
        };
        Ok((action, config, revision))
    }

    pub(crate) fn restart_app(
        &mut self,
        entry: &Entry,
        app_id: &AppId,
        force: Force,
        deployment_id: &DeploymentId,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        require_operator(entry)?;
        // A restart puts the current version back: a new configuration, every instance
        // replaced. The rollback checks the deployment id.
        let version = self.known_app(app_id)?.version;
        self.roll_back_app(entry, app_id, version, force, deployment_id, events)
    }

    pub(crate) fn roll_back_app(
        &mut self,
        entry: &Entry,
        app_id: &AppId,
        version: Timestamp,
        force: Force,
        deployment_id: &DeploymentId,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        require_operator(entry)?;
        self.unused_deployment_id(deployment_id)?;
        let app = self.known_app(app_id)?;
        let mut revision = app
            .versions
            .iter()
            .find(|revision| revision.version == version)
            .cloned()
            .ok_or_else(|| Rejection::UnknownAppVersion { app_id: app_id.clone(), version })?;
        self.unlocked(app_id, force)?;
        revision.service_ports = self.assign_service_ports(
            app_id,
            &revision.spec.service_ports,
            &revision.service_ports,
            &BTreeSet::new(),
        )?;
        let action = DeploymentAction::RestartApplication;
        self.install_app(app_id, revision, action, Configuration::New, deployment_id, events);
        Ok(())
    }

    pub(crate) fn delete_app(
        &mut self,
        entry: &Entry,
        app_id: &AppId,
        force: Force,
        deployment_id: &DeploymentId,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        require_operator(entry)?;
        self.unused_deployment_id(deployment_id)?;
        let previous = current_revision(self.known_app(app_id)?);
        self.unlocked(app_id, force)?;
        self.cancel_deployments_of(app_id, events);
        self.remove_app(app_id);
        events.push(Event::AppDeleted { app_id: app_id.clone() });
        if self.services.autoscalers.remove(app_id).is_some() {
            events.push(Event::AutoscalerDeleted { app_id: app_id.clone() });
        }
        self.start_deployment(
            deployment_id,
            app_id,
            DeploymentAction::StopApplication,
            previous.version,
            Some(previous),
            events,
        );
        self.check_deployments(events);
        Ok(())
    }

    pub(crate) fn cancel_deployment(
        &mut self,
        entry: &Entry,
        deployment_id: &DeploymentId,
        cancellation: &Cancellation,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        require_operator(entry)?;
        let deployment = self
            .services
            .deployments
            .get(deployment_id)
            .cloned()
            .ok_or_else(|| Rejection::UnknownDeployment(deployment_id.clone()))?;
        let Cancellation::RollBack { rollback_id } = cancellation else {
            self.end_deployment(deployment_id, events);
            return Ok(());
        };
        self.unused_deployment_id(rollback_id)?;
        let app_id = &deployment.app_id;
        let mut previous = deployment.previous;
        if let Some(previous) = &mut previous {
            // Another app may have taken a port this app gave up since.
            previous.service_ports = self.assign_service_ports(
                app_id,
                &previous.spec.service_ports,
                &previous.service_ports,
                &BTreeSet::new(),
            )?;
        }
        self.end_deployment(deployment_id, events);
        match previous {
            // The deployment created the app: rolling back removes it.
            None => {
                let Some(app) = self.remove_app(app_id) else { return Ok(()) };
                events.push(Event::AppDeleted { app_id: app_id.clone() });
                let previous = current_revision(&app);
                let action = DeploymentAction::StopApplication;
                let version = previous.version;
                self.start_deployment(rollback_id, app_id, action, version, Some(previous), events);
                self.check_deployments(events);
            }
            // Instances of the previous configuration are current again; the new ones go.
            Some(previous) => {
                let action = match self.services.apps.get(app_id) {
                    Some(app) if app.config_version == previous.config_version => {
                        DeploymentAction::ScaleApplication
                    }
                    Some(_) => DeploymentAction::RestartApplication,
                    None => DeploymentAction::StartApplication,
                };
                let config = Configuration::Keep(previous.config_version);
                self.install_app(app_id, *previous, action, config, rollback_id, events);
            }
        }
        Ok(())
    }

    pub(crate) fn kill_service_tasks(
        &mut self,
        entry: &Entry,
        task_ids: &[TaskId],
        how: KillHow,
        deployment_id: &DeploymentId,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        let KillHow { scaling, wipe, force } = how;
        require_operator(entry)?;
        let framework_id = self.service_framework_or_unknown(task_ids)?;
        let mut by_app: BTreeMap<AppId, BTreeSet<TaskId>> = BTreeMap::new();
        for task_id in task_ids {
            let unknown = || Rejection::UnknownTask {
                framework_id: framework_id.clone(),
                task_id: task_id.clone(),
            };
            let app_id = self.services.instance_apps.get(task_id).ok_or_else(unknown)?;
            by_app.entry(app_id.clone()).or_default().insert(task_id.clone());
        }
        let deployment_ids = numbered_deployment_ids(deployment_id, by_app.len());
        if scaling == KillScaling::ScaleDown {
            for (app_id, deployment_id) in by_app.keys().zip(&deployment_ids) {
                self.unused_deployment_id(deployment_id)?;
                if self.services.apps.contains_key(app_id) {
                    self.unlocked(app_id, force)?;
                }
            }
        }
        for killed in by_app.values() {
            for task_id in killed {
                match wipe {
                    Wipe::Keep => self.request_service_kill(&framework_id, task_id, events),
                    Wipe::Expunge => self.expunge_instance(&framework_id, task_id, events),
                }
            }
        }
        if scaling == KillScaling::ScaleDown {
            for ((app_id, killed), deployment_id) in by_app.iter().zip(&deployment_ids) {
                let Some(app) = self.services.apps.get(app_id) else { continue };
                let mut revision = current_revision(app);
                let killed = u32::try_from(killed.len()).unwrap_or(u32::MAX);
                revision.spec.instances = revision.spec.instances.saturating_sub(killed);
                let action = DeploymentAction::ScaleApplication;
                let config = Configuration::Keep(app.config_version);
                self.install_app(app_id, revision, action, config, deployment_id, events);
            }
        }
        // Also for a deleted app: wiping its last instance meets the deployment stopping it.
        self.check_deployments(events);
        Ok(())
    }

    /// Changes only an app's instance count, as Marathon's `PUT /v2/apps/{id}
    /// {"instances": n}` does: one scaling deployment, the configuration kept.
    pub(super) fn scale_app(
        &mut self,
        app_id: &AppId,
        instances: u32,
        deployment_id: &DeploymentId,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        let app = self.known_app(app_id)?;
        let mut revision = current_revision(app);
        revision.spec.instances = instances;
        let config = Configuration::Keep(app.config_version);
        let action = DeploymentAction::ScaleApplication;
        self.install_app(app_id, revision, action, config, deployment_id, events);
        Ok(())
    }

    pub(crate) fn reset_launch_delay(
        &mut self,
        entry: &Entry,
        app_id: &AppId,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        require_operator(entry)?;
        self.known_app(app_id)?;
        if let Some(app) = self.services.apps.get_mut(app_id) {
            if app.launch_delay.take().is_some() {
                events.push(Event::AppLaunchDelayReset { app_id: app_id.clone() });
            }
        }
        Ok(())
    }

    pub(crate) fn launch_service_tasks(
        &mut self,
        entry: &Entry,
        offer_ids: &[OfferId],
        launches: &[ServiceLaunch],
        filters: Filters,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        require_leader(entry)?;
        let framework_id = self
            .services
            .framework_id
            .clone()
            .ok_or_else(|| Rejection::invalid("launches", "no service app exists"))?;
        let mut wanted: BTreeMap<&AppId, u32> = BTreeMap::new();
        for (index, launch) in launches.iter().enumerate() {
            let app = self.known_app(&launch.app_id)?;
            if launch.config_version != app.config_version {
                return Err(Rejection::invalid(
                    &format!("launches[{index}].config_version"),
                    format!(
                        "app {} is at configuration {}, not {}",
                        app.id, app.config_version, launch.config_version
                    ),
                ));
            }
            if let Some(delay) = &app.launch_delay {
                if entry.at < delay.until {
                    return Err(Rejection::LaunchDelayed {
                        app_id: app.id.clone(),
                        until: delay.until,
                    });
                }
            }
            let prefix = format!("{}.", app.id.safe_name());
            if !launch.task_info.task_id.as_str().starts_with(&prefix) {
                return Err(Rejection::invalid(
                    &format!("launches[{index}].task_info.task_id"),
                    format!("a task of app {} has an id starting with '{prefix}'", app.id),
                ));
            }
            *wanted.entry(&launch.app_id).or_default() += 1;
        }
        for (app_id, more) in &wanted {
            self.check_launch_limits(app_id, *more)?;
        }
        let first_new_event = events.len();
        let operations = [Operation::Launch {
            task_infos: launches.iter().map(|launch| launch.task_info.clone()).collect(),
        }];
        self.accept(entry, &framework_id, offer_ids, &operations, filters, events)?;
        let versions: BTreeMap<&TaskId, &ServiceLaunch> =
            launches.iter().map(|launch| (&launch.task_info.task_id, launch)).collect();
        let added: Vec<(TaskId, crate::AgentId)> = events[first_new_event..]
            .iter()
            .filter_map(|event| match event {
                Event::TaskAdded { task } => Some((task.id().clone(), task.agent_id().clone())),
                _ => None,
            })
            .collect();
        for (task_id, agent_id) in added {
            let Some(launch) = versions.get(&task_id) else { continue };
            let instance = Instance {
                app_id: launch.app_id.clone(),
                config_version: launch.config_version,
                agent_id,
                launched_at: self.now,
                unreachable_since: None,
            };
            self.services.instance_apps.insert(task_id.clone(), launch.app_id.clone());
            self.services
                .instances
                .entry(launch.app_id.clone())
                .or_default()
                .insert(task_id, instance);
        }
        self.check_deployments(events);
        Ok(())
    }

    /// Never more instances of the current configuration than asked for, and never more in
    /// all than the upgrade strategy allows: a launch planned twice (by a deposed leader and
    /// its successor) is refused here, whichever comes second.
    fn check_launch_limits(&self, app_id: &AppId, more: u32) -> Result<(), Rejection> {
        let Some(app) = self.services.apps.get(app_id) else {
            return Err(Rejection::UnknownApp(app_id.clone()));
        };
        let InstanceCounts { live, current } = self.instance_counts(app);
        let instances = app.spec.instances;
        if current + more > instances {
            return Err(Rejection::invalid(
                "launches",
                format!(
                    "app {app_id} has {current} of {instances} instances; {more} more is too many"
                ),
            ));
        }
        let maximum = app.spec.upgrade.maximum_live(instances);
        if live + more > maximum {
            return Err(Rejection::invalid(
                "launches",
                format!(
                    "app {app_id} has {live} live instances; {more} more exceeds its upgrade strategy's {maximum}"
                ),
            ));
        }
        Ok(())
    }

    /// Called for every status of a service-framework task, after it is recorded: failures
    /// delay the next launch, ended instances leave the index, deployments may be done.
    pub(crate) fn service_task_changed(
        &mut self,
        task_id: &TaskId,
        status: &TaskStatus,
        kill_requested: bool,
        events: &mut Vec<Event>,
    ) {
        self.note_reachability(task_id, status.state, kill_requested, events);
        if status.state.is_terminal() {
            let instance = self.services.remove_instance(task_id);
            let failed = !kill_requested && status.state != TaskState::Killed;
            if let (true, Some(instance)) = (failed, instance) {
                self.delay_launches(&instance.app_id, task_id, &instance, status, events);
            }
        }
        self.check_deployments(events);
    }

    fn delay_launches(
        &mut self,
        app_id: &AppId,
        task_id: &TaskId,
        instance: &Instance,
        status: &TaskStatus,
        events: &mut Vec<Event>,
    ) {
        let now = self.now;
        let Some(app) = self.services.apps.get_mut(app_id) else { return };
        let delay = app.spec.backoff.next(app.launch_delay.as_ref().map(|delay| delay.delay));
        let delay = LaunchDelay { delay, until: now.plus(delay) };
        let failure = TaskFailure {
            task_id: task_id.clone(),
            agent_id: instance.agent_id.clone(),
            state: status.state,
            message: status.message.clone(),
            at: now,
            version: instance.config_version,
        };
        app.launch_delay = Some(delay.clone());
        app.last_task_failure = Some(failure.clone());
        events.push(Event::AppLaunchDelayed { app_id: app_id.clone(), delay, failure });
    }

    /// Ends every deployment whose target is met.
    pub(crate) fn check_deployments(&mut self, events: &mut Vec<Event>) {
        let done: Vec<DeploymentId> = self
            .services
            .deployments
            .values()
            .filter(|deployment| self.deployment_met(deployment))
            .map(|deployment| deployment.id.clone())
            .collect();
        for deployment_id in done {
            if let Some(deployment) = self.services.deployments.remove(&deployment_id) {
                events
                    .push(Event::DeploymentSucceeded { deployment_id, app_id: deployment.app_id });
            }
        }
    }

    fn deployment_met(&self, deployment: &Deployment) -> bool {
        let app_id = &deployment.app_id;
        let Some(app) = self.services.apps.get(app_id) else {
            return self.services.instances_of(app_id).next().is_none();
        };
        let Some(framework_id) = &self.services.framework_id else {
            return app.spec.instances == 0;
        };
        let mut ready = 0u32;
        for (task_id, instance) in self.services.instances_of(app_id) {
            if instance.is_inactive(app.spec.unreachable, self.now) {
                continue;
            }
            if instance.config_version != app.config_version {
                return false;
            }
            let Some(task) = self.task(framework_id, task_id) else { return false };
            if !task.is_ready(app.spec.health_checked) {
                return false;
            }
            ready += 1;
        }
        ready == app.spec.instances
    }

    /// Makes `revision` the app's current version, with a new version stamp, and starts the
    /// deployment that brings the instances to it. Deployments it overrides (a forced change)
    /// are cancelled.
    fn install_app(
        &mut self,
        app_id: &AppId,
        mut revision: AppRevision,
        action: DeploymentAction,
        config: Configuration,
        deployment_id: &DeploymentId,
        events: &mut Vec<Event>,
    ) {
        let existing = self.services.apps.get(app_id);
        let previous = existing.map(current_revision);
        let version = self.next_app_version(app_id, existing);
        revision.version = version;
        revision.config_version = match config {
            Configuration::New => version,
            Configuration::Keep(config_version) => config_version,
        };
        let mut versions = existing.map(|app| app.versions.clone()).unwrap_or_default();
        versions.push_back(revision.clone());
        while versions.len() > MAX_APP_VERSIONS {
            versions.pop_front();
        }
        // A new configuration starts with a clean slate: its instances have not failed yet.
        let (launch_delay, last_task_failure) = match existing {
            Some(app) if app.config_version == revision.config_version => {
                (app.launch_delay.clone(), app.last_task_failure.clone())
            }
            Some(app) => (None, app.last_task_failure.clone()),
            None => (None, None),
        };
        let delay_reset =
            existing.is_some_and(|app| app.launch_delay.is_some()) && launch_delay.is_none();
        let created = existing.is_none();
        let app = ServiceApp {
            id: app_id.clone(),
            spec: revision.spec.clone(),
            definition: revision.definition.clone(),
            version,
            config_version: revision.config_version,
            versions,
            launch_delay,
            last_task_failure,
            service_ports: revision.service_ports.clone(),
        };

        self.cancel_deployments_of(app_id, events);
        self.ensure_service_framework(&revision.spec.role, events);
        self.remove_app(app_id);
        for &port in &app.service_ports {
            self.services.service_ports.insert(port, app_id.clone());
        }
        self.services.apps.insert(app_id.clone(), app);
        if delay_reset {
            events.push(Event::AppLaunchDelayReset { app_id: app_id.clone() });
        }
        events.push(Event::AppUpdated {
            app_id: app_id.clone(),
            revision: Box::new(revision),
            created,
        });
        self.start_deployment(deployment_id, app_id, action, version, previous, events);
        self.refresh_service_roles(events);
        self.check_deployments(events);
    }

    fn start_deployment(
        &mut self,
        deployment_id: &DeploymentId,
        app_id: &AppId,
        action: DeploymentAction,
        version: Timestamp,
        previous: Option<AppRevision>,
        events: &mut Vec<Event>,
    ) {
        let deployment = Deployment {
            id: deployment_id.clone(),
            app_id: app_id.clone(),
            action,
            version,
            started_at: self.now,
            previous: previous.map(Box::new),
        };
        self.services.deployments.insert(deployment_id.clone(), deployment.clone());
        events.push(Event::DeploymentStarted { deployment: Box::new(deployment) });
    }

    fn end_deployment(&mut self, deployment_id: &DeploymentId, events: &mut Vec<Event>) {
        if let Some(deployment) = self.services.deployments.remove(deployment_id) {
            events.push(Event::DeploymentCanceled {
                deployment_id: deployment_id.clone(),
                app_id: deployment.app_id,
            });
        }
    }

    fn cancel_deployments_of(&mut self, app_id: &AppId, events: &mut Vec<Event>) {
        let ids: Vec<DeploymentId> =
            self.services.deployments_of(app_id).map(|deployment| deployment.id.clone()).collect();
        for deployment_id in ids {
            self.end_deployment(&deployment_id, events);
        }
    }

    /// Versions are the entry's time, made strictly increasing per app so that two changes
    /// in one instant stay two versions. An app id's instances outlive a deleted app until
    /// they end, so a new app with that id also starts after every configuration they run:
    /// otherwise, created again in the same instant, it would count them as its own.
    fn next_app_version(&self, app_id: &AppId, existing: Option<&ServiceApp>) -> Timestamp {
        let newest = existing
            .map(|app| app.version)
            .into_iter()
            .chain(self.services.instances_of(app_id).map(|(_, instance)| instance.config_version))
            .max();
        match newest {
            Some(newest) if newest >= self.now => Timestamp(newest.0 + 1_000_000),
            _ => self.now,
        }
    }

    /// Takes the app out with the service ports it holds.
    fn remove_app(&mut self, app_id: &AppId) -> Option<ServiceApp> {
        let app = self.services.apps.remove(app_id)?;
        for port in &app.service_ports {
            self.services.service_ports.remove(port);
        }
        Some(app)
    }

    /// The service ports for `requested` (0: any free one from `SERVICE_PORT_RANGE`), as
    /// Marathon assigns them: a port asked for by number must not be another app's, and a
    /// dynamic one keeps what the app `held` at that position while nobody else holds it,
    /// else takes the lowest free one. `taken` are ports given to other apps of the same
    /// command.
    fn assign_service_ports(
        &self,
        app_id: &AppId,
        requested: &[u16],
        held: &[u16],
        taken: &BTreeSet<u16>,
    ) -> Result<Vec<u16>, Rejection> {
        let holder = |port: u16| match self.services.service_ports.get(&port) {
            Some(holder) if holder != app_id => Some(holder.as_str().to_owned()),
            _ if taken.contains(&port) => Some("another app of this command".to_owned()),
            _ => None,
        };
        let mut assigned = BTreeSet::new();
        for (index, &port) in requested.iter().enumerate() {
            if port == 0 {
                continue;
            }
            if let Some(holder) = holder(port) {
                return Err(Rejection::invalid(
                    &format!("spec.service_ports[{index}]"),
                    format!("service port {port} is held by {holder}"),
                ));
            }
            if !assigned.insert(port) {
                return Err(Rejection::invalid(
                    &format!("spec.service_ports[{index}]"),
                    format!("service port {port} is asked for twice"),
                ));
            }
        }
        let mut ports = Vec::with_capacity(requested.len());
        for (index, &port) in requested.iter().enumerate() {
            if port != 0 {
                ports.push(port);
                continue;
            }
            let free = |port: &u16| holder(*port).is_none() && !assigned.contains(port);
            let kept = held.get(index).copied().filter(|port| *port != 0 && free(port));
            let Some(port) = kept.or_else(|| SERVICE_PORT_RANGE.into_iter().find(free)) else {
                return Err(Rejection::invalid(
                    &format!("spec.service_ports[{index}]"),
                    format!(
                        "no service port is free in {}-{}",
                        SERVICE_PORT_RANGE.start(),
                        SERVICE_PORT_RANGE.end()
                    ),
                ));
            };
            assigned.insert(port);
            ports.push(port);
        }
        Ok(ports)
    }

    pub(super) fn known_app(&self, app_id: &AppId) -> Result<&ServiceApp, Rejection> {
        self.services.apps.get(app_id).ok_or_else(|| Rejection::UnknownApp(app_id.clone()))
    }

    pub(super) fn unlocked(&self, app_id: &AppId, force: Force) -> Result<(), Rejection> {
        let deployments: Vec<DeploymentId> =
            self.services.deployments_of(app_id).map(|deployment| deployment.id.clone()).collect();
        if deployments.is_empty() || force == Force::Yes {
            return Ok(());
        }
        Err(Rejection::AppLocked { app_id: app_id.clone(), deployments })
    }

    pub(super) fn unused_deployment_id(
        &self,
        deployment_id: &DeploymentId,
    ) -> Result<(), Rejection> {
        if deployment_id.as_str().is_empty() {
            return Err(Rejection::invalid("deployment_id", "must not be empty"));
        }
        if self.services.deployments.contains_key(deployment_id) {
            return Err(Rejection::invalid("deployment_id", "is in use"));
        }
        Ok(())
    }

    fn service_framework_or_unknown(&self, task_ids: &[TaskId]) -> Result<FrameworkId, Rejection> {
        match (&self.services.framework_id, task_ids.first()) {
            (Some(framework_id), _) => Ok(framework_id.clone()),
            (None, Some(task_id)) => Err(Rejection::UnknownTask {
                framework_id: self.service_framework_id(),
                task_id: task_id.clone(),
            }),
            (None, None) => Err(Rejection::invalid("task_ids", "must name at least one task")),
        }
    }

    /// A service instance is killed once: asking again, or after it ended, does nothing. An
    /// unreachable one cannot be killed now, so it is expunged (as Marathon does): waiting for
    /// its agent would hold up the scaling, deletion or replacement that asked for the kill.
    fn request_service_kill(
        &mut self,
        framework_id: &FrameworkId,
        task_id: &TaskId,
        events: &mut Vec<Event>,
    ) {
        if self.services.instance(task_id).is_some_and(|i| i.unreachable_since.is_some()) {
            self.expunge_instance(framework_id, task_id, events);
            return;
        }
        let Some(task) = self.task(framework_id, task_id) else { return };
        if task.state.is_terminal() || task.kill_requested.is_some() {
            return;
        }
        self.request_task_kill(framework_id, task_id, None, events);
    }

    /// Forgets an instance: it leaves the index (so it no longer counts for its app) and its
    /// task is asked to die, which an unreachable agent hears when it comes back.
    fn expunge_instance(
        &mut self,
        framework_id: &FrameworkId,
        task_id: &TaskId,
        events: &mut Vec<Event>,
    ) {
        let Some(instance) = self.services.remove_instance(task_id) else { return };
        // Out of the index, the instance is killed like any other: once, unless it ended.
        self.request_service_kill(framework_id, task_id, events);
        events
            .push(Event::AppInstanceExpunged { app_id: instance.app_id, task_id: task_id.clone() });
    }

    /// Keeps an instance's `unreachable_since` in step with its task. A task that was being
    /// killed when it became unreachable is expunged at once: nobody wants it back.
    fn note_reachability(
        &mut self,
        task_id: &TaskId,
        state: TaskState,
        kill_requested: bool,
        events: &mut Vec<Event>,
    ) {
        let now = self.now;
        let Some(instance) = self.services.instance_mut(task_id) else { return };
        if state != TaskState::Unreachable {
            instance.unreachable_since = None;
            return;
        }
        instance.unreachable_since.get_or_insert(now);
        if kill_requested {
            let framework_id = self.service_framework_id();
            self.expunge_instance(&framework_id, task_id, events);
        }
    }

    /// Expunges the instances unreachable for longer than their app's policy allows, and
    /// those of deleted apps at once, then ends the deployments time has met (decided on a
    /// Tick, at its time): an instance unreachable past `inactiveAfterSeconds` stops counting
    /// without any command touching it, which can meet a deployment by itself.
    pub(crate) fn expire_unreachable_instances(&mut self, events: &mut Vec<Event>) {
        let now = self.now;
        let services = &self.services;
        let due: Vec<TaskId> = services
            .instances
            .iter()
            .flat_map(|(app_id, instances)| {
                let policy = services.apps.get(app_id).map(|app| app.spec.unreachable);
                instances.iter().filter(move |(_, instance)| match policy {
                    Some(policy) => instance.is_due_for_expunge(policy, now),
                    None => instance.unreachable_since.is_some(),
                })
            })
            .map(|(task_id, _)| task_id.clone())
            .collect();
        let framework_id = self.service_framework_id();
        for task_id in due {
            self.expunge_instance(&framework_id, &task_id, events);
        }
        self.check_deployments(events);
    }

    /// The built-in framework exists from the first app on, acting for every app's role.
    fn ensure_service_framework(&mut self, role: &Role, events: &mut Vec<Event>) {
        if self.services.framework_id.is_some() {
            return;
        }
        let framework_id = self.service_framework_id();
        let info = FrameworkInfo {
            user: "root".to_owned(),
            name: "marathon".to_owned(),
            roles: vec![role.clone()],
            failover_timeout: SERVICE_FAILOVER_TIMEOUT,
            checkpoint: true,
            hostname: None,
            principal: None,
            webui_url: None,
            // Partition-aware: a task on an agent that stops answering is UNREACHABLE, not
            // LOST, so each app's unreachable strategy decides when to replace it.
            capabilities: [
                FrameworkCapability::MultiRole,
                FrameworkCapability::TaskKillingState,
                FrameworkCapability::PartitionAware,
            ]
            .into_iter()
            .collect(),
            labels: Vec::new(),
        };
        self.frameworks.insert(
            framework_id.clone(),
            Framework {
                id: framework_id.clone(),
                info: info.clone(),
                state: FrameworkState::Connected,
                registered_at: self.now,
                reregistered_at: None,
                suppressed_roles: BTreeSet::new(),
                filters: SharedMap::new(),
                offers: SharedSet::new(),
                tasks: SharedMap::new(),
                pending_updates: SharedMap::new(),
                completed_tasks: VecDeque::new(),
            },
        );
        self.services.framework_id = Some(framework_id.clone());
        events.push(Event::FrameworkAdded { framework_id, info });
    }

    /// The framework's roles follow the apps': every role an app names, sorted.
    fn refresh_service_roles(&mut self, events: &mut Vec<Event>) {
        let Some(framework_id) = self.services.framework_id.clone() else { return };
        let roles: BTreeSet<Role> =
            self.services.apps.values().map(|app| app.spec.role.clone()).collect();
        let Some(framework) = self.frameworks.get_mut(&framework_id) else { return };
        let mut wanted: Vec<Role> = roles.into_iter().collect();
        // A framework keeps at least one role; the last app's role stays until another comes.
        if wanted.is_empty() {
            wanted = framework.info.roles.clone();
        }
        if framework.info.roles == wanted {
            return;
        }
        framework.info.roles = wanted;
        let info = framework.info.clone();
        events.push(Event::FrameworkResubscribed { framework_id, info });
    }
}

/// Whether a change starts a new configuration (every instance replaced) or keeps one.
#[derive(Clone, Copy)]
enum Configuration {
    New,
    Keep(Timestamp),
}

fn current_revision(app: &ServiceApp) -> AppRevision {
    AppRevision {
        version: app.version,
        config_version: app.config_version,
        spec: app.spec.clone(),
        definition: app.definition.clone(),
        service_ports: app.service_ports.clone(),
    }
}

/// Everything but the instance count.
fn same_config(current: &AppSpec, wanted: &AppSpec) -> bool {
    AppSpec { instances: wanted.instances, ..current.clone() } == *wanted
}

fn numbered_deployment_ids(first: &DeploymentId, count: usize) -> Vec<DeploymentId> {
    (0..count)
        .map(|index| match index {
            0 => first.clone(),
            _ => DeploymentId::new(format!("{first}-{index}")),
        })
        .collect()
}

fn validate_app_id(app_id: &AppId) -> Result<(), Rejection> {
    let text = app_id.as_str();
    if !text.starts_with('/') || text.len() < 2 || text.ends_with('/') {
        return Err(Rejection::invalid("app_id", "must be an absolute path such as /group/app"));
    }
    let valid_segment = |segment: &str| {
        !segment.is_empty()
            && segment
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    };
    if !text[1..].split('/').all(valid_segment) {
        return Err(Rejection::invalid(
            "app_id",
            "segments hold lowercase letters, digits, '-' and '.' only",
        ));
    }
    Ok(())
}

fn validate_spec(spec: &AppSpec) -> Result<(), Rejection> {
    if spec.upgrade.minimum_health_capacity_permille > 1000 {
        return Err(Rejection::invalid(
            "spec.upgrade.minimum_health_capacity_permille",
            "must be between 0 and 1000",
        ));
    }
    if spec.upgrade.maximum_over_capacity_permille > 1000 {
        return Err(Rejection::invalid(
            "spec.upgrade.maximum_over_capacity_permille",
            "must be between 0 and 1000",
        ));
    }
    if spec.backoff.factor_permille < 1000 {
        return Err(Rejection::invalid("spec.backoff.factor_permille", "must be at least 1000"));
    }
    if let UnreachablePolicy::Enabled { inactive_after, expunge_after } = spec.unreachable {
        if expunge_after < inactive_after {
            return Err(Rejection::invalid(
                "spec.unreachable.expunge_after",
                "must not be shorter than inactive_after",
            ));
        }
    }
    Ok(())
}
