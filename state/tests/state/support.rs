//! A small world to drive `ClusterState` through real entries, with a clock the test moves.

use std::time::Duration;

use corral_state::model::{
    AgentInfo, AppSpec, Attributes, Backoff, CommandInfo, FrameworkCapability, FrameworkInfo,
    TaskInfo, TaskSource, TaskState, TaskStatus, UnreachablePolicy, UpgradeBounds,
};
use corral_state::{
    Actor, AgentId, ClusterState, Command, Entry, Event, FrameworkId, OfferId, OfferSpec, Outcome,
    RequestId, Resources, Role, TaskId, Timestamp, UpdateUuid,
};

#[derive(Clone)]
pub struct World {
    pub state: ClusterState,
    pub clock: Timestamp,
    next_request: u64,
}

pub fn res(text: &str) -> Resources {
    text.parse().expect("test resources parse")
}

pub fn role(text: &str) -> Role {
    Role::parse(text).expect("test role parses")
}

pub fn framework_info(name: &str, roles: &[&str]) -> FrameworkInfo {
    let mut capabilities = std::collections::BTreeSet::new();
    if roles.len() > 1 {
        capabilities.insert(FrameworkCapability::MultiRole);
    }
    FrameworkInfo {
        user: "root".to_owned(),
        name: name.to_owned(),
        roles: roles.iter().map(|r| role(r)).collect(),
        failover_timeout: Duration::from_secs(60),
        checkpoint: true,
        hostname: None,
        principal: None,
        webui_url: None,
        capabilities,
        labels: Vec::new(),
    }
}

pub fn task_info(task_id: &str, agent_id: &AgentId, resources: &str) -> TaskInfo {
    TaskInfo {
        name: task_id.to_owned(),
        task_id: TaskId::new(task_id),
        agent_id: agent_id.clone(),
        resources: res(resources),
        executor: None,
        command: Some(CommandInfo {
            value: Some("sleep 600".to_owned()),
            ..CommandInfo::default()
        }),
        container: None,
        health_check: None,
        kill_policy: None,
        labels: Vec::new(),
        discovery: None,
    }
}

pub fn agent_status(task_id: &str, agent_id: &AgentId, state: TaskState, uuid: &str) -> TaskStatus {
    TaskStatus {
        task_id: TaskId::new(task_id),
        state,
        message: None,
        source: TaskSource::Executor,
        reason: None,
        healthy: None,
        agent_id: Some(agent_id.clone()),
        executor_id: None,
        timestamp: Timestamp::default(),
        uuid: Some(UpdateUuid::new(uuid)),
        exit_code: None,
    }
}

impl Default for World {
    fn default() -> World {
        World::new()
    }
}

impl World {
    pub fn new() -> World {
        World {
            state: ClusterState::default(),
            clock: Timestamp::from_secs(1_000),
            next_request: 0,
        }
    }

    pub fn entry(&mut self, actor: Actor, command: Command) -> Entry {
        self.next_request += 1;
        Entry {
            request_id: RequestId::new(format!("r{}", self.next_request)),
            actor,
            at: self.clock,
            command,
        }
    }

    pub fn apply(&mut self, actor: Actor, command: Command) -> Outcome {
        let entry = self.entry(actor, command);
        self.state.apply(&entry)
    }

    /// Applies and insists the command was accepted; returns its events.
    pub fn ok(&mut self, actor: Actor, command: Command) -> Vec<Event> {
        match self.apply(actor, command) {
            Outcome::Accepted(events) => events,
            other => panic!("expected acceptance, got {other:?}"),
        }
    }

    /// Applies a command that must be rejected, and checks that nothing but bookkeeping
    /// changed.
    pub fn rejected(&mut self, actor: Actor, command: Command) -> corral_state::Rejection {
        let before = comparable(&self.state);
        let outcome = self.apply(actor, command);
        let after = comparable(&self.state);
        match outcome {
            Outcome::Rejected(rejection) => {
                assert_eq!(before, after, "a rejected command changed the state");
                rejection
            }
            other => panic!("expected rejection, got {other:?}"),
        }
    }

    pub fn advance(&mut self, duration: Duration) {
        self.clock = self.clock.plus(duration);
    }

    pub fn leader(&mut self, command: Command) -> Vec<Event> {
        self.ok(Actor::Leader, command)
    }

    pub fn operator(&mut self, command: Command) -> Vec<Event> {
        self.ok(Actor::Operator { principal: Some("ops".to_owned()) }, command)
    }

    pub fn as_framework(&mut self, framework_id: &FrameworkId, command: Command) -> Vec<Event> {
        self.ok(Actor::Framework(framework_id.clone()), command)
    }

    pub fn as_agent(&mut self, agent_id: &AgentId, command: Command) -> Vec<Event> {
        self.ok(Actor::Agent(agent_id.clone()), command)
    }

    pub fn add_agent(&mut self, hostname: &str, resources: &str) -> AgentId {
        let info = AgentInfo {
            hostname: hostname.to_owned(),
            address: format!("10.0.0.{}:5051", self.state.agents().len() + 1),
            attributes: Attributes::default(),
        };
        let events = self.leader(Command::RegisterAgent { info, resources: res(resources) });
        match &events[..] {
            [Event::AgentAdded { agent_id, .. }] => agent_id.clone(),
            other => panic!("unexpected events {other:?}"),
        }
    }

    pub fn subscribe_info(&mut self, info: FrameworkInfo) -> FrameworkId {
        let events = self.ok(Actor::Leader, Command::Subscribe { framework_id: None, info });
        match &events[..] {
            [Event::FrameworkAdded { framework_id, .. }] => framework_id.clone(),
            other => panic!("unexpected events {other:?}"),
        }
    }

    pub fn subscribe(&mut self, name: &str, roles: &[&str]) -> FrameworkId {
        self.subscribe_info(framework_info(name, roles))
    }

    pub fn offer(
        &mut self,
        framework_id: &FrameworkId,
        agent_id: &AgentId,
        role_name: &str,
        resources: &str,
    ) -> OfferId {
        let spec = OfferSpec {
            framework_id: framework_id.clone(),
            agent_id: agent_id.clone(),
            role: role(role_name),
            resources: res(resources),
        };
        let events = self.leader(Command::OfferResources { offers: vec![spec] });
        match &events[..] {
            [Event::OfferCreated { offer }] => offer.id.clone(),
            other => panic!("offer not created: {other:?}"),
        }
    }

    /// Offers and launches one task using all of `resources`; returns the task id.
    pub fn launch(
        &mut self,
        framework_id: &FrameworkId,
        agent_id: &AgentId,
        task_id: &str,
        resources: &str,
    ) -> TaskId {
        let offer_id = self.offer(framework_id, agent_id, "*", resources);
        let events = self.as_framework(
            framework_id,
            Command::Accept {
                framework_id: framework_id.clone(),
                offer_ids: vec![offer_id],
                operations: vec![corral_state::Operation::Launch {
                    task_infos: vec![task_info(task_id, agent_id, resources)],
                }],
                filters: corral_state::model::Filters::default(),
            },
        );
        assert!(
            events.iter().any(|e| matches!(e, Event::TaskAdded { .. })),
            "task not added: {events:?}"
        );
        TaskId::new(task_id)
    }

    /// The agent reports a state; returns the events.
    pub fn report(
        &mut self,
        framework_id: &FrameworkId,
        agent_id: &AgentId,
        task_id: &str,
        state: TaskState,
        uuid: &str,
    ) -> Outcome {
        let status = agent_status(task_id, agent_id, state, uuid);
        self.apply(
            Actor::Agent(agent_id.clone()),
            Command::UpdateStatus { framework_id: framework_id.clone(), status },
        )
    }

    pub fn ack(
        &mut self,
        framework_id: &FrameworkId,
        agent_id: &AgentId,
        task_id: &str,
        uuid: &str,
    ) -> Vec<Event> {
        self.as_framework(
            framework_id,
            Command::Acknowledge {
                framework_id: framework_id.clone(),
                agent_id: agent_id.clone(),
                task_id: TaskId::new(task_id),
                uuid: UpdateUuid::new(uuid),
            },
        )
    }
}

/// The state without the bookkeeping every command touches (clock, request ids, counter).
pub fn comparable(state: &ClusterState) -> ClusterState {
    state.without_bookkeeping()
}

/// Checks invariant 3 on every agent: offered + allocated ≤ total, per resource.
pub fn assert_not_overcommitted(state: &ClusterState) {
    for agent in state.agents().values() {
        let used = agent.allocated.plus(&agent.offered);
        assert!(
            agent.total.contains(&used),
            "agent {} over-committed: total {} < allocated {} + offered {}",
            agent.id,
            agent.total,
            agent.allocated,
            agent.offered
        );
    }
}

/// `text`'s resources, dynamically reserved for `role_name`.
pub fn dynamic(text: &str, role_name: &str) -> Resources {
    let reserved = res(text)
        .iter()
        .map(|r| {
            r.clone().reserved(corral_state::Reservation::Dynamic {
                role: role(role_name),
                principal: Some("ops".to_owned()),
            })
        })
        .collect();
    Resources::from_list(reserved).expect("test reservation")
}

/// A plain app of `instances`: no health check, upgrade bounds 100 % / 100 %, a 1 s launch
/// backoff doubling up to 5 s.
pub fn spec(instances: u32) -> AppSpec {
    AppSpec {
        instances,
        role: role("*"),
        health_checked: false,
        upgrade: UpgradeBounds {
            minimum_health_capacity_permille: 1000,
            maximum_over_capacity_permille: 1000,
        },
        backoff: Backoff {
            initial: Duration::from_secs(1),
            factor_permille: 2000,
            maximum: Duration::from_secs(5),
        },
        unreachable: UnreachablePolicy::MARATHON_DEFAULT,
        service_ports: Vec::new(),
    }
}
