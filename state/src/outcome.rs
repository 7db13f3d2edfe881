//! The result of applying one command: the events it produced, or why it was refused.

use serde::{Deserialize, Serialize};

use crate::model::TaskState;
use crate::resources::Shortfall;
use crate::{
    AgentId, AppId, DeploymentId, Event, ExecutorId, FrameworkId, OfferId, Role, TaskId, Timestamp,
    UpdateUuid,
};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Accepted(Vec<Event>),
    Rejected(Rejection),
    /// The request id was applied before; this is what is remembered of the first outcome:
    /// its verdict, and the event naming an id it assigned (agent or framework). No new
    /// events.
    Duplicate(Box<Outcome>),
}

impl Outcome {
    /// The events this application produced (none for a rejection or a duplicate).
    pub fn events(&self) -> &[Event] {
        match self {
            Outcome::Accepted(events) => events,
            Outcome::Rejected(_) | Outcome::Duplicate(_) => &[],
        }
    }

    pub fn into_events(self) -> Vec<Event> {
        match self {
            Outcome::Accepted(events) => events,
            Outcome::Rejected(_) | Outcome::Duplicate(_) => Vec::new(),
        }
    }

    /// The first outcome, looking through a duplicate.
    pub fn original(&self) -> &Outcome {
        match self {
            Outcome::Duplicate(first) => first.original(),
            other => other,
        }
    }

    pub fn rejection(&self) -> Option<&Rejection> {
        match self.original() {
            Outcome::Rejected(rejection) => Some(rejection),
            _ => None,
        }
    }

    pub fn is_rejected(&self) -> bool {
        self.rejection().is_some()
    }
}

/// Why a command changed nothing. Each names what was wrong so a person can act on it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum Rejection {
    #[error("unknown agent {0}")]
    UnknownAgent(AgentId),
    #[error("agent {0} is gone and may not come back under this id")]
    AgentGone(AgentId),
    #[error("agent {0} is unreachable; it must re-register")]
    AgentUnreachable(AgentId),
    #[error("unknown framework {0}")]
    UnknownFramework(FrameworkId),
    #[error("framework {0} was removed and may not subscribe again")]
    FrameworkRemoved(FrameworkId),
    #[error("framework {0} is not subscribed")]
    FrameworkNotSubscribed(FrameworkId),
    #[error("unknown task {task_id} of framework {framework_id}")]
    UnknownTask { framework_id: FrameworkId, task_id: TaskId },
    #[error("task {task_id} runs on agent {actual}, not {claimed}")]
    WrongAgent { task_id: TaskId, claimed: AgentId, actual: AgentId },
    #[error("unknown executor {executor_id} of framework {framework_id} on agent {agent_id}")]
    UnknownExecutor { framework_id: FrameworkId, executor_id: ExecutorId, agent_id: AgentId },
    #[error("unknown offer {0}")]
    UnknownOffer(OfferId),
    #[error("offer {offer_id} belongs to framework {owner}, not {claimed}")]
    OfferNotOwned { offer_id: OfferId, owner: FrameworkId, claimed: FrameworkId },
    #[error(
        "offers {first} and {second} are on different agents; ACCEPT takes offers of one agent"
    )]
    OffersOnDifferentAgents { first: OfferId, second: OfferId },
    #[error("task {task_id} cannot go from {} to {}", .from.as_mesos_str(), .to.as_mesos_str())]
    InvalidTransition { task_id: TaskId, from: TaskState, to: TaskState },
    #[error("no unacknowledged update {uuid} for task {task_id}")]
    UnknownUpdate { task_id: TaskId, uuid: UpdateUuid },
    #[error(transparent)]
    InsufficientResources(#[from] Shortfall),
    #[error("role {role} is not one of framework {framework_id}'s roles")]
    RoleNotSubscribed { framework_id: FrameworkId, role: Role },
    #[error("actor may not issue {command}: {why}")]
    NotPermitted { command: String, why: String },
    #[error("{field}: {problem}")]
    Invalid { field: String, problem: String },
    #[error("machine {0} is in maintenance (DOWN)")]
    MachineDown(String),
    #[error("app '{0}' does not exist")]
    UnknownApp(AppId),
    #[error("an app with id [{0}] already exists")]
    AppExists(AppId),
    #[error("app '{app_id}' is locked by one or more deployments: {}", .deployments.iter().map(|d| d.as_str()).collect::<Vec<_>>().join(", "))]
    AppLocked { app_id: AppId, deployments: Vec<DeploymentId> },
    #[error("deployment {0} does not exist")]
    UnknownDeployment(DeploymentId),
    #[error("app '{app_id}' has no version {version}")]
    UnknownAppVersion { app_id: AppId, version: Timestamp },
    #[error("app '{app_id}' may not launch before {until} (backoff after failures)")]
    LaunchDelayed { app_id: AppId, until: Timestamp },
    #[error("not authorized: {0}")]
    Unauthorized(Box<crate::auth::Denial>),
    #[error("access control was bootstrapped already")]
    AlreadyBootstrapped,
    #[error("unknown {kind} '{name}'")]
    UnknownAclObject { kind: String, name: String },
    #[error("{kind} '{name}' exists already")]
    AclObjectExists { kind: String, name: String },
}

impl Rejection {
    pub fn invalid(field: &str, problem: impl Into<String>) -> Rejection {
        Rejection::Invalid { field: field.to_owned(), problem: problem.into() }
    }
}
