//! A cluster driven through real entries, with the allocator observing every event, and a
//! clock the test moves.

use std::time::Duration;

use corral_allocator::{Allocation, Allocator, AllocatorConfig};
use corral_state::model::{
    AgentInfo, Attributes, Filters, FrameworkCapability, FrameworkInfo, Offer, QuotaConfig,
    TaskInfo,
};
use corral_state::{
    Actor, AgentId, ClusterState, Command, Entry, Event, FrameworkId, OfferSpec, Operation,
    Outcome, Quantities, RequestId, Resources, Role, Scalar, TaskId, Timestamp,
};

pub fn res(text: &str) -> Resources {
    text.parse().expect("test resources parse")
}

pub fn role(text: &str) -> Role {
    Role::parse(text).expect("test role parses")
}

pub fn quantities(text: &str) -> Quantities {
    res(text).scalar_quantities()
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
        failover_timeout: Duration::from_secs(3600),
        checkpoint: true,
        hostname: None,
        principal: None,
        webui_url: None,
        capabilities,
        labels: Vec::new(),
    }
}

pub fn task_info(task_id: &str, agent_id: &AgentId, resources: Resources) -> TaskInfo {
    TaskInfo::shell(TaskId::new(task_id), agent_id.clone(), resources, "sleep 600")
}

pub struct Cluster {
    pub state: ClusterState,
    pub allocator: Allocator,
    pub clock: Timestamp,
    next_request: u64,
    next_task: u64,
}

impl Default for Cluster {
    fn default() -> Cluster {
        Cluster::new(AllocatorConfig::default())
    }
}

impl Cluster {
    pub fn new(config: AllocatorConfig) -> Cluster {
        Cluster {
            state: ClusterState::default(),
            allocator: Allocator::new(config),
            clock: Timestamp::from_secs(1_000),
            next_request: 0,
            next_task: 0,
        }
    }

    pub fn apply(&mut self, actor: Actor, command: Command) -> Outcome {
        self.next_request += 1;
        let entry = Entry {
            request_id: RequestId::new(format!("r{}", self.next_request)),
            actor,
            at: self.clock,
            command,
        };
        let outcome = self.state.apply(&entry);
        for event in outcome.events() {
            self.allocator.observe(event);
        }
        outcome
    }

    pub fn ok(&mut self, actor: Actor, command: Command) -> Vec<Event> {
        match self.apply(actor, command) {
            Outcome::Accepted(events) => events,
            other => panic!("expected acceptance, got {other:?}"),
        }
    }

    pub fn operator(&mut self, command: Command) -> Vec<Event> {
        self.ok(Actor::Operator { principal: Some("ops".to_owned()) }, command)
    }

    pub fn advance(&mut self, duration: Duration) {
        self.clock = self.clock.plus(duration);
    }

    pub fn add_agent(&mut self, resources: &str) -> AgentId {
        let number = self.state.agents().len() + 1;
        let info = AgentInfo {
            hostname: format!("host-{number}"),
            address: format!("10.0.{}.{}:5051", number / 250, number % 250),
            attributes: Attributes::default(),
        };
        let events =
            self.ok(Actor::Leader, Command::RegisterAgent { info, resources: res(resources) });
        match &events[..] {
            [Event::AgentAdded { agent_id, .. }] => agent_id.clone(),
            other => panic!("unexpected events {other:?}"),
        }
    }

    pub fn subscribe(&mut self, name: &str, roles: &[&str]) -> FrameworkId {
        let info = framework_info(name, roles);
        let events = self.ok(Actor::Leader, Command::Subscribe { framework_id: None, info });
        match &events[..] {
            [Event::FrameworkAdded { framework_id, .. }] => framework_id.clone(),
            other => panic!("unexpected events {other:?}"),
        }
    }

    pub fn set_quota(&mut self, role_name: &str, guarantees: &str, limits: &str) {
        let config = QuotaConfig {
            role: role(role_name),
            guarantees: quantities(guarantees),
            limits: quantities(limits),
        };
        self.operator(Command::UpdateQuota { configs: vec![config] });
    }

    pub fn set_weight(&mut self, role_name: &str, weight: i64) {
        self.operator(Command::UpdateWeights {
            weights: vec![(role(role_name), Scalar::from_units(weight))],
        });
    }

    /// Runs the allocator at the current time without applying its offers.
    pub fn decide(&mut self) -> Allocation {
        self.allocator.allocate(&self.state, self.clock)
    }

    /// Runs a cycle and applies its offers, insisting the state accepts every one of them:
    /// the allocator must never propose what the state would refuse.
    pub fn cycle(&mut self) -> Vec<Offer> {
        let allocation = self.decide();
        self.apply_offers(allocation.offers)
    }

    pub fn apply_offers(&mut self, specs: Vec<OfferSpec>) -> Vec<Offer> {
        if specs.is_empty() {
            return Vec::new();
        }
        let wanted = specs.len();
        let events = self.ok(Actor::Leader, Command::OfferResources { offers: specs.clone() });
        let created: Vec<Offer> = events
            .into_iter()
            .filter_map(|event| match event {
                Event::OfferCreated { offer } => Some(offer),
                _ => None,
            })
            .collect();
        // The state re-checks every offer when the entry applies, at the entry's time, and
        // skips any it refuses: all must come through.
        assert_eq!(
            created.len(),
            wanted,
            "the state refused some of the allocator's offers: {specs:?}"
        );
        created
    }

    pub fn decline(&mut self, offer: &Offer, refuse: Duration) {
        let command = Command::Decline {
            framework_id: offer.framework_id.clone(),
            offer_ids: vec![offer.id.clone()],
            filters: Filters { refuse },
        };
        self.ok(Actor::Framework(offer.framework_id.clone()), command);
    }

    /// Launches one task using `resources` from the offer; the rest goes back unfiltered.
    pub fn launch(&mut self, offer: &Offer, resources: Resources) -> TaskId {
        self.next_task += 1;
        let task_id = format!("task-{}", self.next_task);
        let command = Command::Accept {
            framework_id: offer.framework_id.clone(),
            offer_ids: vec![offer.id.clone()],
            operations: vec![Operation::Launch {
                task_infos: vec![task_info(&task_id, &offer.agent_id, resources)],
            }],
            filters: Filters { refuse: Duration::ZERO },
        };
        let events = self.ok(Actor::Framework(offer.framework_id.clone()), command);
        assert!(
            events.iter().any(|event| matches!(event, Event::TaskAdded { .. })),
            "task was not launched: {events:?}"
        );
        TaskId::new(task_id)
    }

    /// Launches one task using the whole offer.
    pub fn launch_all(&mut self, offer: &Offer) -> TaskId {
        self.launch(offer, offer.resources.clone())
    }

    pub fn suppress(&mut self, framework_id: &FrameworkId, roles: &[&str]) {
        let roles = roles.iter().map(|r| role(r)).collect();
        self.ok(
            Actor::Framework(framework_id.clone()),
            Command::Suppress { framework_id: framework_id.clone(), roles },
        );
    }

    pub fn revive(&mut self, framework_id: &FrameworkId, roles: &[&str]) {
        let roles = roles.iter().map(|r| role(r)).collect();
        self.ok(
            Actor::Framework(framework_id.clone()),
            Command::Revive { framework_id: framework_id.clone(), roles },
        );
    }

    /// Allocated plus offered to frameworks acting for `role` or its sub-roles.
    pub fn consumed_by(&self, role_name: &str) -> Resources {
        let ancestor = role(role_name);
        let mut consumed = Resources::new();
        for task in self.state.tasks().filter(|task| !task.state.is_terminal()) {
            if task.role.is_same_or_descendant_of(&ancestor) {
                consumed.add(task.resources());
            }
        }
        for offer in self.state.offers().values() {
            if offer.role.is_same_or_descendant_of(&ancestor) {
                consumed.add(&offer.resources);
            }
        }
        consumed
    }

    /// Checks the allocator's mirror against the state; call right after `decide`.
    pub fn assert_mirror_matches_state(&self) {
        for (agent_id, agent) in self.state.agents() {
            if agent.is_gone() {
                continue;
            }
            let believed = self.allocator.believed_free(agent_id);
            assert_eq!(
                believed.as_ref(),
                Some(&agent.free()),
                "allocator's free resources of {agent_id} drifted"
            );
        }
    }
}
