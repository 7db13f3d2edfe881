//! A `ClusterState` built through real commands, for tests of what the API renders from it.

use corral_state::model::{
    AgentInfo, Attributes, CommandInfo, Filters, FrameworkInfo, TaskInfo, TaskSource, TaskState,
    TaskStatus,
};
use corral_state::{
    Actor, ClusterState, Command, Entry, Event, OfferSpec, Operation, Outcome, RequestId, Role,
    Timestamp,
};

/// The ids a fresh cluster hands out first.
pub const FRAMEWORK: &str = "corral-0001";
pub const AGENT: &str = "corral-S1";

#[derive(Default)]
pub struct StateBuilder {
    pub state: ClusterState,
    request: u64,
}

impl StateBuilder {
    pub fn apply(&mut self, actor: Actor, command: Command) -> Outcome {
        self.request += 1;
        let entry = Entry {
            request_id: RequestId::new(format!("r{}", self.request)),
            actor,
            at: Timestamp::from_secs(50),
            command,
        };
        self.state.apply(&entry)
    }

    /// Applies and insists the command was accepted.
    pub fn accepted(&mut self, actor: Actor, command: Command) -> Vec<Event> {
        let outcome = self.apply(actor, command);
        assert!(!outcome.is_rejected(), "{outcome:?}");
        outcome.into_events()
    }

    pub fn agent(&mut self, hostname: &str, attributes: &str, resources: &str) -> &mut Self {
        let info = AgentInfo {
            hostname: hostname.into(),
            address: "127.0.0.1:5051".into(),
            attributes: Attributes::parse(attributes).expect("attributes"),
        };
        let resources = resources.parse().expect("resources");
        self.accepted(Actor::Leader, Command::RegisterAgent { info, resources });
        self
    }

    pub fn framework(&mut self, name: &str, role: &str) -> &mut Self {
        let info = FrameworkInfo {
            user: "u".into(),
            name: name.into(),
            roles: vec![Role::parse(role).expect("role")],
            failover_timeout: std::time::Duration::from_secs(60),
            checkpoint: true,
            hostname: None,
            principal: None,
            webui_url: None,
            capabilities: Default::default(),
            labels: vec![],
        };
        self.accepted(Actor::Leader, Command::Subscribe { framework_id: None, info });
        self
    }

    /// Offers `resources` of the first agent to the first framework, for `role`.
    pub fn offer(&mut self, role: &str, resources: &str) -> Vec<Event> {
        let spec = OfferSpec {
            framework_id: FRAMEWORK.into(),
            agent_id: AGENT.into(),
            role: Role::parse(role).expect("role"),
            resources: resources.parse().expect("resources"),
        };
        self.accepted(Actor::Leader, Command::OfferResources { offers: vec![spec] })
    }

    /// Offers exactly `resources` and launches one task on all of it.
    pub fn launch(&mut self, task_id: &str, resources: &str) -> &mut Self {
        let events = self.offer("*", resources);
        let [Event::OfferCreated { offer }] = &events[..] else { panic!("no offer: {events:?}") };
        let task = TaskInfo {
            name: task_id.into(),
            task_id: task_id.into(),
            agent_id: AGENT.into(),
            resources: resources.parse().expect("resources"),
            executor: None,
            command: Some(CommandInfo { value: Some("sleep 9".into()), ..CommandInfo::default() }),
            container: None,
            health_check: None,
            kill_policy: None,
            labels: vec![],
        };
        let accept = Command::Accept {
            framework_id: FRAMEWORK.into(),
            offer_ids: vec![offer.id.clone()],
            operations: vec![Operation::Launch { task_infos: vec![task] }],
            filters: Filters { refuse: std::time::Duration::ZERO },
        };
        self.accepted(Actor::Framework(FRAMEWORK.into()), accept);
        self
    }

    /// The agent reports the task RUNNING with `uuid`; the framework has not acknowledged it.
    pub fn running(&mut self, task_id: &str, uuid: &str) -> &mut Self {
        let status = TaskStatus {
            task_id: task_id.into(),
            state: TaskState::Running,
            message: None,
            source: TaskSource::Executor,
            reason: None,
            healthy: None,
            agent_id: Some(AGENT.into()),
            executor_id: None,
            timestamp: Timestamp::default(),
            uuid: Some(uuid.into()),
            exit_code: None,
        };
        let command = Command::UpdateStatus { framework_id: FRAMEWORK.into(), status };
        self.accepted(Actor::Agent(AGENT.into()), command);
        self
    }
}
