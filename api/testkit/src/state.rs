//! A `ClusterState` built through real commands at a clock the test moves, for tests of what
//! the API renders from a state and of the pure planners that read one.

use corral_state::model::{
    AgentInfo, Attributes, Filters, FrameworkInfo, TaskInfo, TaskSource, TaskState, TaskStatus,
};
use corral_state::{
    Actor, AgentId, ClusterState, Command, Entry, Event, FrameworkId, OfferId, OfferSpec,
    Operation, Outcome, RequestId, Resources, Role, TaskId, Timestamp, UpdateUuid,
};

/// The ids a fresh cluster hands out first.
pub const FRAMEWORK: &str = "corral-0001";
pub const AGENT: &str = "corral-S1";

pub struct StateBuilder {
    pub state: ClusterState,
    /// What the next command is stamped with.
    pub clock: Timestamp,
    request: u64,
}

impl Default for StateBuilder {
    fn default() -> StateBuilder {
        StateBuilder { state: ClusterState::default(), clock: Timestamp::from_secs(50), request: 0 }
    }
}

impl StateBuilder {
    pub fn apply(&mut self, actor: Actor, command: Command) -> Outcome {
        let entry = Entry {
            request_id: RequestId::new(format!("r{}", self.next_number())),
            actor,
            at: self.clock,
            command,
        };
        self.state.apply(&entry)
    }

    /// A number no earlier call gave, for ids the test makes up (deployments, uuids).
    pub fn next_number(&mut self) -> u64 {
        self.request += 1;
        self.request
    }

    pub fn advance(&mut self, duration: std::time::Duration) {
        self.clock = self.clock.plus(duration);
    }

    pub fn register_agent(&mut self, info: AgentInfo, resources: Resources) -> AgentId {
        let events = self.accepted(Actor::Leader, Command::RegisterAgent { info, resources });
        match &events[..] {
            [Event::AgentAdded { agent_id, .. }] => agent_id.clone(),
            other => panic!("agent not added: {other:?}"),
        }
    }

    /// Offers `resources` of `agent_id` to `framework_id` for `role`.
    pub fn offer_to(
        &mut self,
        framework_id: FrameworkId,
        agent_id: &AgentId,
        role: Role,
        resources: Resources,
    ) -> OfferId {
        let spec = OfferSpec { framework_id, agent_id: agent_id.clone(), role, resources };
        let events = self.accepted(Actor::Leader, Command::OfferResources { offers: vec![spec] });
        match &events[..] {
            [Event::OfferCreated { offer }] => offer.id.clone(),
            other => panic!("offer not created: {other:?}"),
        }
    }

    /// The task's agent reports `state` (and health), with a fresh uuid.
    pub fn report(
        &mut self,
        framework_id: FrameworkId,
        task_id: &TaskId,
        state: TaskState,
        healthy: Option<bool>,
    ) {
        let task = self.state.task(&framework_id, task_id).expect("a known task");
        let agent_id = task.agent_id().clone();
        let status = TaskStatus {
            task_id: task_id.clone(),
            state,
            message: None,
            source: TaskSource::Executor,
            reason: None,
            healthy,
            agent_id: Some(agent_id.clone()),
            executor_id: None,
            timestamp: self.clock,
            uuid: Some(UpdateUuid::new(format!("u{}", self.next_number()))),
            exit_code: None,
        };
        self.accepted(Actor::Agent(agent_id), Command::UpdateStatus { framework_id, status });
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

    /// Offers exactly `resources` and launches one task on all of it, as the first framework.
    pub fn launch(&mut self, task_id: &str, resources: &str) -> &mut Self {
        self.launch_for(FRAMEWORK, task_id, resources)
    }

    /// Offers exactly `resources` of the first agent to `framework_id` and launches one task
    /// on all of it.
    pub fn launch_for(&mut self, framework_id: &str, task_id: &str, resources: &str) -> &mut Self {
        let spec = OfferSpec {
            framework_id: framework_id.into(),
            agent_id: AGENT.into(),
            role: Role::parse("*").expect("role"),
            resources: resources.parse().expect("resources"),
        };
        let events = self.accepted(Actor::Leader, Command::OfferResources { offers: vec![spec] });
        let [Event::OfferCreated { offer }] = &events[..] else { panic!("no offer: {events:?}") };
        let task = TaskInfo::shell(
            task_id.into(),
            AGENT.into(),
            resources.parse().expect("resources"),
            "sleep 9",
        );
        let accept = Command::Accept {
            framework_id: framework_id.into(),
            offer_ids: vec![offer.id.clone()],
            operations: vec![Operation::Launch { task_infos: vec![task] }],
            filters: Filters { refuse: std::time::Duration::ZERO },
        };
        self.accepted(Actor::Framework(framework_id.into()), accept);
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
