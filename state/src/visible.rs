//! What a principal may see: Mesos's `view_frameworks`, `view_tasks`, `view_executors`,
//! `view_roles` and `get_quotas`, and Corral's `view_apps`, filter reads instead of refusing
//! them. An object
//! the principal may not view is left out of the answer, as Mesos does.
//!
//! Two steps, both pure: `hidden_from` decides, from the ACLs in this state, what one identity
//! may not view; `retain_visible` removes that from a copy of the state, which the readers then
//! render as usual. The API decides whether to apply it (only when enforcing; permissive
//! counts what would have been hidden).

use std::collections::BTreeSet;

use crate::auth::{Action, Identity};
use crate::cluster::ClusterState;
use crate::event::Event;
use crate::model::{Framework, Task};
use crate::resources::Quantities;
use crate::shared::SharedMapExt;
use crate::{AppId, ExecutorId, FrameworkId, Role, TaskId};

/// What one identity may not view.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hidden {
    /// Frameworks (registered or completed), their tasks, executors and offers with them.
    pub frameworks: BTreeSet<FrameworkId>,
    /// Tasks of frameworks that are shown.
    pub tasks: BTreeSet<(FrameworkId, TaskId)>,
    /// Executors of frameworks that are shown.
    pub executors: BTreeSet<(FrameworkId, ExecutorId)>,
    /// Every role name the state mentions that may not be viewed.
    pub roles: BTreeSet<Role>,
    /// Roles shown whose quota may not be (`get_quotas`): shown without one.
    pub quotas: BTreeSet<Role>,
    pub apps: BTreeSet<AppId>,
}

impl Hidden {
    pub fn is_empty(&self) -> bool {
        self.frameworks.is_empty()
            && self.tasks.is_empty()
            && self.executors.is_empty()
            && self.roles.is_empty()
            && self.quotas.is_empty()
            && self.apps.is_empty()
    }

    /// How many objects are hidden (a framework counts once, whatever it holds).
    pub fn count(&self) -> usize {
        self.frameworks.len()
            + self.tasks.len()
            + self.executors.len()
            + self.roles.len()
            + self.quotas.len()
            + self.apps.len()
    }
}

/// The user a task runs as, the object of `view_tasks` (as of `run_tasks`): its command's
/// user, else its executor's, else its framework's.
fn task_user<'a>(task: &'a Task, framework: &'a Framework) -> &'a str {
    task_user_or(task, &framework.info.user)
}

fn task_user_or<'a>(task: &'a Task, framework_user: &'a str) -> &'a str {
    task.info
        .command
        .as_ref()
        .and_then(|command| command.user.as_deref())
        .or_else(|| {
            let executor = task.info.executor.as_ref()?;
            executor.command.as_ref()?.user.as_deref()
        })
        .unwrap_or(framework_user)
}

impl Event {
    /// The app an event is about, if it is about one.
    pub fn app_id(&self) -> Option<&AppId> {
        event_app(self)
    }
}

fn event_app(event: &Event) -> Option<&AppId> {
    match event {
        Event::AppUpdated { app_id, .. }
        | Event::AppDeleted { app_id }
        | Event::DeploymentSucceeded { app_id, .. }
        | Event::DeploymentCanceled { app_id, .. }
        | Event::AppLaunchDelayed { app_id, .. }
        | Event::AppLaunchDelayReset { app_id }
        | Event::AppInstanceExpunged { app_id, .. }
        | Event::AutoscalerUpdated { app_id, .. }
        | Event::AutoscalerDeleted { app_id }
        | Event::AppAutoscaled { app_id, .. }
        | Event::AutoscalerRecommended { app_id, .. } => Some(app_id),
        Event::DeploymentStarted { deployment } => Some(&deployment.app_id),
        _ => None,
    }
}

/// The task an event is about, if it is about one.
fn event_task(event: &Event) -> Option<&TaskId> {
    match event {
        Event::TaskAdded { task } => Some(task.id()),
        Event::TaskUpdated { status, .. }
        | Event::TaskDropped { status, .. }
        | Event::TaskReconciled { status, .. } => Some(&status.task_id),
        Event::TaskKillRequested { task_id, .. }
        | Event::StatusAcknowledged { task_id, .. }
        | Event::TaskCompleted { task_id, .. } => Some(task_id),
        _ => None,
    }
}

/// The executor an event is about, if it is about one.
fn event_executor(event: &Event) -> Option<&ExecutorId> {
    match event {
        Event::ExecutorShutdownRequested { executor_id, .. }
        | Event::MessageToExecutor { executor_id, .. }
        | Event::MessageToFramework { executor_id, .. } => Some(executor_id),
        _ => None,
    }
}

impl ClusterState {
    /// What `identity` may not view, decided by the ACLs in this state whatever the mode (the
    /// caller applies the mode). A management token, like Mesos's superuser, views all.
    pub fn hidden_from(&self, identity: Identity<'_>) -> Hidden {
        self.hidden_by(&self.auth, identity)
    }

    /// What `identity` may not view of this state under the ACLs `auth`, not this state's
    /// own: a state of the past is shown under today's ACLs, so that revoking a view revokes
    /// it in the audit trail as well.
    pub fn hidden_by(&self, auth: &crate::auth::AuthState, identity: Identity<'_>) -> Hidden {
        let mut hidden = Hidden::default();
        if identity
            .and_then(|identity| auth.principal(identity))
            .is_some_and(|principal| principal.kind == crate::auth::TokenKind::Management)
        {
            return hidden;
        }
        let may =
            |action: Action, object: &str| auth.decide(identity, action, Some(object)).is_ok();
        let completed = self.completed_frameworks.values().map(|completed| &completed.framework);
        for framework in self.frameworks.values().chain(completed) {
            if !may(Action::ViewFrameworks, &framework.info.user) {
                hidden.frameworks.insert(framework.id.clone());
                continue;
            }
            let tasks = framework.tasks.values().chain(&framework.completed_tasks);
            for task in tasks {
                if !may(Action::ViewTasks, task_user(task, framework)) {
                    hidden.tasks.insert((framework.id.clone(), task.id().clone()));
                }
            }
        }
        for ((framework_id, executor_id), executor) in &self.executors {
            if hidden.frameworks.contains(framework_id) {
                continue;
            }
            let user = executor
                .info
                .command
                .as_ref()
                .and_then(|command| command.user.as_deref())
                .or_else(|| Some(&self.frameworks.get(framework_id)?.info.user))
                .unwrap_or_default();
            if !may(Action::ViewExecutors, user) {
                hidden.executors.insert((framework_id.clone(), executor_id.clone()));
            }
        }
        for role in self.role_names() {
            if !may(Action::ViewRoles, role.as_str()) {
                hidden.roles.insert(role);
            }
        }
        for (role, config) in &self.roles {
            let has_quota = !config.guarantees.is_empty() || !config.limits.is_empty();
            if has_quota && !hidden.roles.contains(role) && !may(Action::GetQuotas, role.as_str()) {
                hidden.quotas.insert(role.clone());
            }
        }
        for app_id in self.services.apps.keys() {
            if !may(Action::ViewApps, app_id.as_str()) {
                hidden.apps.insert(app_id.clone());
            }
        }
        hidden
    }

    /// Which `view_*` rule keeps `event` from `identity` (`None`: it may be shown), as
    /// `hidden_from` decides for the objects of the state: an event about a framework, its
    /// offers, tasks or executors follows `view_frameworks` on the framework's user, then
    /// `view_tasks` on the task's user (its command's, else its executor's, else the
    /// framework's) or `view_executors` on the executor's; a weight `view_roles` on its role,
    /// a quota `view_roles` then `get_quotas`; an app or deployment `view_apps` on its app id. Agents, maintenance, settings
    /// and access control are shown, as Mesos shows agents. Meant for a state that has applied
    /// at least the event's entry: a framework it knows neither live nor completed is hidden.
    pub fn event_hidden_by(&self, identity: Identity<'_>, event: &Event) -> Option<Action> {
        let auth = &self.auth;
        if identity
            .and_then(|identity| auth.principal(identity))
            .is_some_and(|principal| principal.kind == crate::auth::TokenKind::Management)
        {
            return None;
        }
        let hides = |action: Action, object: &str| {
            auth.decide(identity, action, Some(object)).is_err().then_some(action)
        };
        if let Some(app_id) = event_app(event) {
            return hides(Action::ViewApps, app_id.as_str());
        }
        match event {
            Event::WeightUpdated { role, .. } => return hides(Action::ViewRoles, role.as_str()),
            Event::QuotaUpdated { config } => {
                let role = config.role.as_str();
                return hides(Action::ViewRoles, role).or_else(|| hides(Action::GetQuotas, role));
            }
            _ => {}
        }
        let framework_id = event.framework_id()?;
        let framework = self
            .frameworks
            .get(framework_id)
            .or_else(|| Some(&self.completed_frameworks.get(framework_id)?.framework));
        let framework_user = match event {
            Event::FrameworkAdded { info, .. } | Event::FrameworkResubscribed { info, .. } => {
                info.user.as_str()
            }
            _ => match framework {
                Some(framework) => framework.info.user.as_str(),
                None => return Some(Action::ViewFrameworks),
            },
        };
        if let Some(action) = hides(Action::ViewFrameworks, framework_user) {
            return Some(action);
        }
        if let Some(task_id) = event_task(event) {
            let task = match event {
                Event::TaskAdded { task } => Some(task.as_ref()),
                _ => framework.and_then(|framework| {
                    let live = framework.tasks.get(task_id);
                    let completed = || framework.completed_tasks.iter().find(|t| t.id() == task_id);
                    live.or_else(completed).map(std::sync::Arc::as_ref)
                }),
            };
            // A task that never was (dropped) runs as nobody but its framework.
            let user = task.map_or(framework_user, |task| task_user_or(task, framework_user));
            return hides(Action::ViewTasks, user);
        }
        if let Some(executor_id) = event_executor(event) {
            let user = self
                .executors
                .get(&(framework_id.clone(), executor_id.clone()))
                .and_then(|executor| executor.info.command.as_ref()?.user.as_deref())
                .unwrap_or(framework_user);
            return hides(Action::ViewExecutors, user);
        }
        None
    }

    /// Whether `identity` may not view the app `app_id` (`view_apps`, by id prefix).
    pub fn app_hidden_from(&self, identity: Identity<'_>, app_id: &AppId) -> bool {
        let auth = &self.auth;
        let management = identity
            .and_then(|identity| auth.principal(identity))
            .is_some_and(|principal| principal.kind == crate::auth::TokenKind::Management);
        !management && auth.decide(identity, Action::ViewApps, Some(app_id.as_str())).is_err()
    }

    /// Every role the state names: configured, subscribed to, allocated, offered, reserved.
    fn role_names(&self) -> BTreeSet<Role> {
        let mut roles: BTreeSet<Role> = self.roles.keys().cloned().collect();
        for framework in self.frameworks.values() {
            roles.extend(framework.info.roles.iter().cloned());
            roles.extend(framework.tasks.values().map(|task| task.role.clone()));
        }
        roles.extend(self.offers.values().map(|offer| offer.role.clone()));
        for agent in self.agents.values() {
            roles.extend(agent.total.iter().filter_map(|r| r.reservation.role().cloned()));
        }
        roles
    }

    /// Removes what `hidden` names, and what hangs off it (a hidden framework's tasks,
    /// executors and offers; a hidden app's instances), so that the readers render a
    /// consistent state. Meant for a copy (`without_bookkeeping`): the tallies are not
    /// adjusted, and the agents' resources still count what hidden tasks hold.
    pub fn retain_visible(&mut self, hidden: &Hidden) {
        if hidden.is_empty() {
            return;
        }
        let shown = |framework_id: &FrameworkId| !hidden.frameworks.contains(framework_id);
        self.frameworks.retain(|id, _| shown(id));
        self.completed_frameworks.retain(|id, _| shown(id));
        self.completed_framework_order.retain(shown);
        self.executors.retain(|(framework_id, executor_id), _| {
            shown(framework_id)
                && !hidden.executors.contains(&(framework_id.clone(), executor_id.clone()))
        });
        let hidden_offers: BTreeSet<_> = self
            .offers
            .values()
            .filter(|offer| !shown(&offer.framework_id))
            .map(|offer| offer.id.clone())
            .collect();
        self.offers.retain(|id, _| !hidden_offers.contains(id));
        let task_shown = |framework_id: &FrameworkId, task_id: &TaskId| {
            shown(framework_id) && !hidden.tasks.contains(&(framework_id.clone(), task_id.clone()))
        };
        let retain_tasks = |framework: &mut Framework| {
            let id = framework.id.clone();
            framework.tasks.retain(|task_id, _| task_shown(&id, task_id));
            framework.pending_updates.retain(|task_id, _| task_shown(&id, task_id));
            framework.completed_tasks.retain(|task| task_shown(&id, task.id()));
        };
        self.frameworks.for_each_value_mut(retain_tasks);
        self.completed_frameworks
            .for_each_value_mut(|completed| retain_tasks(&mut completed.framework));
        self.agents.for_each_value_mut(|agent| {
            agent.tasks.retain(|(framework_id, task_id)| task_shown(framework_id, task_id));
            agent.executors.retain(|(framework_id, executor_id)| {
                shown(framework_id)
                    && !hidden.executors.contains(&(framework_id.clone(), executor_id.clone()))
            });
        });
        self.roles.retain(|role, _| !hidden.roles.contains(role));
        for (role, config) in &mut self.roles {
            if hidden.quotas.contains(role) {
                config.guarantees = Quantities::default();
                config.limits = Quantities::default();
            }
        }
        let services = &mut self.services;
        services.apps.retain(|app_id, _| !hidden.apps.contains(app_id));
        services.instances.retain(|app_id, _| !hidden.apps.contains(app_id));
        services.instance_apps.retain(|_, app_id| !hidden.apps.contains(app_id));
        services.autoscalers.retain(|app_id, _| !hidden.apps.contains(app_id));
        services.service_ports.retain(|_, app_id| !hidden.apps.contains(app_id));
    }
}
