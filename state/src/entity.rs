//! Entities: the things an operator asks about ("what happened to task X?"). Every command
//! names the entities it touches ([`Entry::entities`]) and every event the ones it concerns
//! ([`Event::concerns`]); the journal indexes both, so the history of one thing is a lookup,
//! never a scan.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use crate::model::TaskInfo;
use crate::{
    Actor, AgentId, AppId, Cancellation, Command, DeploymentId, Entry, Event, FrameworkId,
    Operation, Role, TaskId,
};

/// The kinds of things history is kept for. The order is the order of a diff's sections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EntityKind {
    Agent,
    Framework,
    Task,
    App,
    Role,
    /// An operator, by authenticated principal (`anonymous` without one).
    Operator,
    /// A Marathon deployment, by id.
    Deployment,
}

impl EntityKind {
    pub const ALL: [EntityKind; 7] = [
        EntityKind::Agent,
        EntityKind::Framework,
        EntityKind::Task,
        EntityKind::App,
        EntityKind::Role,
        EntityKind::Operator,
        EntityKind::Deployment,
    ];

    /// The query parameter and JSON name (`task`, `agent`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Agent => "agent",
            EntityKind::Framework => "framework",
            EntityKind::Task => "task",
            EntityKind::App => "app",
            EntityKind::Role => "role",
            EntityKind::Operator => "operator",
            EntityKind::Deployment => "deployment",
        }
    }

    pub fn parse(text: &str) -> Result<EntityKind, String> {
        EntityKind::ALL.into_iter().find(|kind| kind.as_str() == text).ok_or_else(|| {
            format!("unknown kind '{text}'; known: agent, framework, task, app, role, operator, deployment")
        })
    }

    /// A stable byte for storage keys; never reuse one.
    pub fn tag(self) -> u8 {
        match self {
            EntityKind::Agent => 1,
            EntityKind::Framework => 2,
            EntityKind::Task => 3,
            EntityKind::App => 4,
            EntityKind::Role => 5,
            EntityKind::Operator => 6,
            EntityKind::Deployment => 7,
        }
    }

    pub fn from_tag(tag: u8) -> Option<EntityKind> {
        EntityKind::ALL.into_iter().find(|kind| kind.tag() == tag)
    }
}

/// One thing: its kind and id. Tasks are named by task id alone, as operators name them
/// (ids chosen by two frameworks alike share one history).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Entity {
    pub kind: EntityKind,
    pub id: SmolStr,
}

/// What an operator without a principal is called in history.
pub const ANONYMOUS_OPERATOR: &str = "anonymous";

impl Entity {
    pub fn new(kind: EntityKind, id: impl Into<SmolStr>) -> Entity {
        Entity { kind, id: id.into() }
    }

    pub fn agent(id: &AgentId) -> Entity {
        Entity::new(EntityKind::Agent, id.0.clone())
    }

    pub fn framework(id: &FrameworkId) -> Entity {
        Entity::new(EntityKind::Framework, id.0.clone())
    }

    pub fn task(id: &TaskId) -> Entity {
        Entity::new(EntityKind::Task, id.0.clone())
    }

    pub fn app(id: &AppId) -> Entity {
        Entity::new(EntityKind::App, id.0.clone())
    }

    pub fn role(role: &Role) -> Entity {
        Entity::new(EntityKind::Role, role.as_str())
    }

    pub fn deployment(id: &DeploymentId) -> Entity {
        Entity::new(EntityKind::Deployment, id.as_str())
    }

    /// The entity an actor is, if any: the leader's own loops are nobody to look up.
    pub fn of_actor(actor: &Actor) -> Option<Entity> {
        match actor {
            Actor::Leader => None,
            Actor::Operator { principal } => Some(Entity::new(
                EntityKind::Operator,
                principal.as_deref().unwrap_or(ANONYMOUS_OPERATOR),
            )),
            Actor::Framework(framework_id) => Some(Entity::framework(framework_id)),
            Actor::Agent(agent_id) => Some(Entity::agent(agent_id)),
            Actor::Client { acting, .. } => Entity::of_actor(acting),
        }
    }
}

impl std::fmt::Display for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind.as_str(), self.id)
    }
}

/// Collects entities without duplicates, in a stable order.
#[derive(Default)]
struct Named(BTreeSet<Entity>);

impl Named {
    fn agent(&mut self, id: &AgentId) -> &mut Named {
        self.0.insert(Entity::agent(id));
        self
    }
    fn framework(&mut self, id: &FrameworkId) -> &mut Named {
        self.0.insert(Entity::framework(id));
        self
    }
    fn task(&mut self, id: &TaskId) -> &mut Named {
        self.0.insert(Entity::task(id));
        self
    }
    fn app(&mut self, id: &AppId) -> &mut Named {
        self.0.insert(Entity::app(id));
        self
    }
    fn role(&mut self, role: &Role) -> &mut Named {
        self.0.insert(Entity::role(role));
        self
    }
    fn deployment(&mut self, id: &DeploymentId) -> &mut Named {
        self.0.insert(Entity::deployment(id));
        self
    }
    fn task_info(&mut self, info: &TaskInfo) -> &mut Named {
        self.task(&info.task_id).agent(&info.agent_id)
    }
    fn done(self) -> Vec<Entity> {
        self.0.into_iter().collect()
    }
}

impl Command {
    /// The entities this command names, whatever its outcome: a refused kill of task X is
    /// part of X's history.
    pub fn entities(&self) -> Vec<Entity> {
        let mut named = Named::default();
        use Command as C;
        match self {
            // The agent's id is assigned when applied; `AgentAdded` names it.
            C::RegisterAgent { .. }
            | C::Tick
            | C::UpdateMaintenanceSchedule { .. }
            | C::StartMaintenance { .. }
            | C::StopMaintenance { .. }
            | C::UpdateSettings { .. }
            | C::ChangeSettings { .. }
            // Offers are named by id only; their events name the rest.
            | C::RescindOffers { .. } => {}
            C::CancelDeployment { deployment_id, cancellation } => {
                named.deployment(deployment_id);
                if let Cancellation::RollBack { rollback_id } = cancellation {
                    named.deployment(rollback_id);
                }
            }
            C::ReregisterAgent { agent_id, tasks, .. } => {
                named.agent(agent_id);
                for task in tasks {
                    named.task(&task.task_id).framework(&task.framework_id);
                }
            }
            C::AgentHeartbeat { agent_id }
            | C::DrainAgent { agent_id, .. }
            | C::DeactivateAgent { agent_id }
            | C::ReactivateAgent { agent_id }
            | C::MarkAgentGone { agent_id }
            | C::ReserveResources { agent_id, .. }
            | C::UnreserveResources { agent_id, .. } => {
                named.agent(agent_id);
            }
            C::UpdateStatus { framework_id, status } => {
                named.framework(framework_id).task(&status.task_id);
                if let Some(agent_id) = &status.agent_id {
                    named.agent(agent_id);
                }
            }
            C::ExecutorMessage { agent_id, framework_id, .. }
            | C::Shutdown { framework_id, agent_id, .. }
            | C::Message { framework_id, agent_id, .. } => {
                named.framework(framework_id).agent(agent_id);
            }
            C::Subscribe { framework_id, info } => {
                if let Some(framework_id) = framework_id {
                    named.framework(framework_id);
                }
                info.roles.iter().for_each(|role| {
                    named.role(role);
                });
            }
            C::DisconnectFramework { framework_id }
            | C::Teardown { framework_id }
            | C::Decline { framework_id, .. } => {
                named.framework(framework_id);
            }
            C::Accept { framework_id, operations, .. } => {
                named.framework(framework_id);
                for operation in operations {
                    match operation {
                        Operation::Launch { task_infos }
                        | Operation::LaunchGroup { task_infos, .. } => {
                            task_infos.iter().for_each(|info| {
                                named.task_info(info);
                            });
                        }
                        Operation::Reserve { .. } | Operation::Unreserve { .. } => {}
                    }
                }
            }
            C::Revive { framework_id, roles } | C::Suppress { framework_id, roles } => {
                named.framework(framework_id);
                roles.iter().for_each(|role| {
                    named.role(role);
                });
            }
            C::Kill { framework_id, task_id, agent_id, .. } => {
                named.framework(framework_id).task(task_id);
                if let Some(agent_id) = agent_id {
                    named.agent(agent_id);
                }
            }
            C::Acknowledge { framework_id, agent_id, task_id, .. } => {
                named.framework(framework_id).agent(agent_id).task(task_id);
            }
            C::Reconcile { framework_id, tasks } => {
                named.framework(framework_id);
                for (task_id, agent_id) in tasks {
                    named.task(task_id);
                    if let Some(agent_id) = agent_id {
                        named.agent(agent_id);
                    }
                }
            }
            C::OfferResources { offers } => {
                for offer in offers {
                    named.framework(&offer.framework_id).agent(&offer.agent_id).role(&offer.role);
                }
            }
            C::UpdateWeights { weights } => {
                weights.iter().for_each(|(role, _)| {
                    named.role(role);
                });
            }
            C::UpdateQuota { configs } => {
                configs.iter().for_each(|config| {
                    named.role(&config.role);
                });
            }
            C::PutApp { app_id, deployment_id, .. }
            | C::RestartApp { app_id, deployment_id, .. }
            | C::RollBackApp { app_id, deployment_id, .. }
            | C::DeleteApp { app_id, deployment_id, .. } => {
                named.app(app_id).deployment(deployment_id);
            }
            C::ResetLaunchDelay { app_id }
            | C::PutAutoscaler { app_id, .. }
            | C::DeleteAutoscaler { app_id }
            | C::RecordRecommendation { app_id, .. } => {
                named.app(app_id);
            }
            C::AutoscaleApp { app_id, deployment_id, .. } => {
                named.app(app_id).deployment(deployment_id);
            }
            C::PutApps { apps } => {
                apps.iter().for_each(|put| {
                    named.app(&put.app_id).deployment(&put.deployment_id);
                });
            }
            C::KillServiceTasks { task_ids, deployment_id, .. } => {
                named.deployment(deployment_id);
                task_ids.iter().for_each(|task_id| {
                    named.task(task_id);
                });
            }
            C::LaunchServiceTasks { launches, .. } => {
                for launch in launches {
                    named.app(&launch.app_id).task_info(&launch.task_info);
                }
            }
            C::BootstrapAcl { .. }
            | C::PutToken { .. }
            | C::RevokeToken { .. }
            | C::PutCredential { .. }
            | C::DeleteCredential { .. }
            | C::PutPolicy { .. }
            | C::DeletePolicy { .. }
            | C::SetAuthMode { .. } => {}
        }
        named.done()
    }
}

impl Entry {
    /// The command's entities and the actor who sent it.
    pub fn entities(&self) -> Vec<Entity> {
        let mut entities = self.command.entities();
        if let Some(actor) = Entity::of_actor(&self.actor) {
            if let Err(at) = entities.binary_search(&actor) {
                entities.insert(at, actor);
            }
        }
        entities
    }
}

impl Event {
    /// The entities this event is about, sorted, without duplicates.
    pub fn concerns(&self) -> Vec<Entity> {
        let mut named = Named::default();
        if let Some(framework_id) = self.framework_id() {
            named.framework(framework_id);
        }
        if let Some(agent_id) = self.agent_id() {
            named.agent(agent_id);
        }
        use Event as E;
        match self {
            E::TaskAdded { task } => {
                named.task(&task.info.task_id).role(&task.role);
            }
            E::TaskUpdated { status, .. }
            | E::TaskDropped { status, .. }
            | E::TaskReconciled { status, .. } => {
                named.task(&status.task_id);
            }
            E::TaskKillRequested { task_id, .. }
            | E::StatusAcknowledged { task_id, .. }
            | E::TaskCompleted { task_id, .. } => {
                named.task(task_id);
            }
            E::OfferCreated { offer } => {
                named.role(&offer.role);
            }
            E::FrameworkSuppressed { roles, .. } | E::FrameworkRevived { roles, .. } => {
                roles.iter().for_each(|role| {
                    named.role(role);
                });
            }
            E::WeightUpdated { role, .. } => {
                named.role(role);
            }
            E::QuotaUpdated { config } => {
                named.role(&config.role);
            }
            E::AppUpdated { app_id, .. }
            | E::AppDeleted { app_id }
            | E::AppLaunchDelayReset { app_id }
            | E::AutoscalerUpdated { app_id, .. }
            | E::AutoscalerDeleted { app_id } => {
                named.app(app_id);
            }
            E::DeploymentSucceeded { app_id, deployment_id }
            | E::DeploymentCanceled { app_id, deployment_id } => {
                named.app(app_id).deployment(deployment_id);
            }
            E::DeploymentStarted { deployment } => {
                named.app(&deployment.app_id).deployment(&deployment.id);
            }
            E::AppLaunchDelayed { app_id, failure, .. } => {
                named.app(app_id).task(&failure.task_id).agent(&failure.agent_id);
            }
            E::AppInstanceExpunged { app_id, task_id } => {
                named.app(app_id).task(task_id);
            }
            E::AppAutoscaled { app_id, scaling } => {
                named.app(app_id).deployment(&scaling.deployment_id);
            }
            E::AutoscalerRecommended { app_id, .. } => {
                named.app(app_id);
            }
            E::AgentAdded { .. }
            | E::AgentReregistered { .. }
            | E::AgentUnreachable { .. }
            | E::AgentRemoved { .. }
            | E::AgentDeactivated { .. }
            | E::AgentReactivated { .. }
            | E::AgentDraining { .. }
            | E::AgentDrained { .. }
            | E::AgentResourcesChanged { .. }
            | E::FrameworkAdded { .. }
            | E::FrameworkResubscribed { .. }
            | E::FrameworkDisconnected { .. }
            | E::FrameworkRemoved { .. }
            | E::OfferFilterAdded { .. }
            | E::OfferAccepted { .. }
            | E::OfferDeclined { .. }
            | E::OfferRescinded { .. }
            | E::ExecutorShutdownRequested { .. }
            | E::MessageToExecutor { .. }
            | E::MessageToFramework { .. }
            | E::ResourcesReserved { .. }
            | E::ResourcesUnreserved { .. }
            | E::MaintenanceScheduleUpdated { .. }
            | E::MaintenanceStarted { .. }
            | E::MaintenanceStopped { .. }
            | E::SettingsUpdated { .. }
            | E::AclChanged { .. } => {}
        }
        named.done()
    }
}
