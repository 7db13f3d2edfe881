//! The allocator's mirror of the state: compact free resources per agent, allocations per
//! (framework, role), the role tree with weights and quotas, and refusal filters. Events
//! mark what changed; the next cycle re-reads only that from the state, so the mirror cannot
//! drift from what `ClusterState::apply` decided.

use std::collections::{BTreeMap, BTreeSet};

use corral_state::model::{Agent, Framework, MachineMode};
use corral_state::{
    AgentId, ClusterState, Event, FrameworkId, OfferSpec, Resource, Resources, Role, Timestamp,
};

use crate::amounts::Amounts;
use crate::config::AllocatorConfig;
use crate::explain::CycleSummary;

pub(crate) const AGENT_OFFERS_CHANGED: u8 = 1;
pub(crate) const AGENT_CHANGED: u8 = 2;
pub(crate) const FRAMEWORK_META_CHANGED: u8 = 1;
pub(crate) const FRAMEWORK_TASKS_CHANGED: u8 = 2;
pub(crate) const FRAMEWORK_OFFERS_CHANGED: u8 = 4;
const FRAMEWORK_ALL_CHANGED: u8 =
    FRAMEWORK_META_CHANGED | FRAMEWORK_TASKS_CHANGED | FRAMEWORK_OFFERS_CHANGED;

/// Free resources of one agent set aside for one reservation role, or unreserved.
#[derive(Clone, Debug)]
pub(crate) struct FreeClass {
    /// The role node the resources are reserved for; `None` for unreserved (`*`).
    pub(crate) reserved_for: Option<u32>,
    pub(crate) amounts: Amounts,
    pub(crate) resources: Resources,
}

#[derive(Clone, Debug)]
pub(crate) struct AgentEntry {
    pub(crate) id: AgentId,
    pub(crate) known: bool,
    pub(crate) offerable: bool,
    pub(crate) total: Amounts,
    /// Unreserved class first, then reserved classes by role name.
    pub(crate) classes: Vec<FreeClass>,
    /// The classes were computed while no offer was outstanding, so a change of offers
    /// alone that leaves none outstanding cannot have changed them.
    pub(crate) computed_without_offers: bool,
    /// Offers on the agent not yet answered, counted from events.
    pub(crate) outstanding_offers: u32,
    pub(crate) dirty: u8,
}

impl AgentEntry {
    pub(crate) fn unreserved_amounts(&self) -> Amounts {
        match self.classes.first() {
            Some(class) if class.reserved_for.is_none() => class.amounts,
            _ => Amounts::ZERO,
        }
    }
}

/// A refusal filter, reduced to what the hot path compares.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Filter {
    pub(crate) until: Timestamp,
    /// Flattened amounts refused: an offer within them is what the state would refuse.
    pub(crate) amounts: Amounts,
}

/// One framework's refusal filters by agent slot, sorted: for the handful a framework
/// holds, a binary search beats hashing, and the order is fixed.
#[derive(Clone, Debug, Default)]
pub(crate) struct FilterSet {
    entries: Vec<(u32, Filter)>,
}

impl FilterSet {
    pub(crate) fn insert(&mut self, agent: u32, filter: Filter) {
        match self.entries.binary_search_by_key(&agent, |(slot, _)| *slot) {
            Ok(index) => self.entries[index].1 = filter,
            Err(index) => self.entries.insert(index, (agent, filter)),
        }
    }

    pub(crate) fn get(&self, agent: u32) -> Option<&Filter> {
        let index = self.entries.binary_search_by_key(&agent, |(slot, _)| *slot).ok()?;
        Some(&self.entries[index].1)
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.entries.capacity()
    }

    pub(crate) fn retain_active(&mut self, now: Timestamp) {
        self.entries.retain(|(_, filter)| filter.until > now);
    }

    pub(crate) fn active_count(&self, now: Timestamp) -> usize {
        self.entries.iter().filter(|(_, filter)| filter.until > now).count()
    }
}

/// What the last cycle did for a framework, kept for explanations.
#[derive(Clone, Debug, Default)]
pub(crate) struct FrameworkRecord {
    pub(crate) offers: u32,
    pub(crate) filtered_agents: u32,
    pub(crate) filtered_sample: Vec<u32>,
    pub(crate) cap_reached: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct FrameworkEntry {
    pub(crate) id: FrameworkId,
    pub(crate) known: bool,
    pub(crate) connected: bool,
    /// Connected as far as the state knows, but its scheduler stream is not on the leader
    /// (see `Allocator::set_unsubscribed`).
    pub(crate) unsubscribed: bool,
    /// One client per role the framework is subscribed to or still holds resources in.
    pub(crate) clients: Vec<u32>,
    pub(crate) filters: FilterSet,
    pub(crate) prune_filters_at: usize,
    /// Offers to the framework not yet answered, counted from events.
    pub(crate) outstanding_offers: u32,
    pub(crate) dirty: u8,
    pub(crate) record: FrameworkRecord,
}

/// What the last cycle saw for a (framework, role) pair.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ClientRecord {
    pub(crate) share: u64,
    pub(crate) rank: Option<u32>,
}

/// A framework acting for one role: the unit DRF orders within a role.
#[derive(Clone, Debug)]
pub(crate) struct Client {
    pub(crate) framework: u32,
    pub(crate) node: u32,
    pub(crate) live: bool,
    pub(crate) subscribed: bool,
    pub(crate) suppressed: bool,
    pub(crate) task_allocation: Amounts,
    pub(crate) offer_allocation: Amounts,
    pub(crate) record: ClientRecord,
}

impl Client {
    pub(crate) fn allocation(&self) -> Amounts {
        self.task_allocation.plus(self.offer_allocation)
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct RoleRecord {
    pub(crate) share: u64,
    pub(crate) rank: Option<u32>,
    pub(crate) siblings: u32,
    pub(crate) eligible_clients: u32,
    pub(crate) offers: u32,
    pub(crate) limit_blocked: u32,
    pub(crate) headroom_blocked: u32,
}

/// A role in the tree; node 0 is the root above every top-level role.
#[derive(Clone, Debug)]
pub(crate) struct RoleNode {
    pub(crate) role: Option<Role>,
    pub(crate) parent: Option<u32>,
    pub(crate) depth: u32,
    pub(crate) children: Vec<u32>,
    pub(crate) clients: Vec<u32>,
    pub(crate) weight_milli: i64,
    pub(crate) guarantees: Amounts,
    pub(crate) limits: Amounts,
    /// Allocated plus offered in the whole subtree.
    pub(crate) allocation: Amounts,
    pub(crate) record: RoleRecord,
}

pub(crate) const ROOT: u32 = 0;

const MIN_FILTERS_BEFORE_PRUNING: usize = 64;

/// The offers of one cycle and what the cycle saw.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Allocation {
    /// In the order decided: agents by id, and on each agent in DRF order.
    pub offers: Vec<OfferSpec>,
    pub summary: CycleSummary,
}

/// Hierarchical weighted DRF with quotas, reservations and filters; see the crate docs.
#[derive(Clone, Debug)]
pub struct Allocator {
    pub(crate) config: AllocatorConfig,
    pub(crate) agents: Vec<AgentEntry>,
    pub(crate) agent_index: BTreeMap<AgentId, u32>,
    /// Offerable agents with some free resources, by id: what a cycle walks.
    pub(crate) candidates: BTreeMap<AgentId, u32>,
    pub(crate) frameworks: Vec<FrameworkEntry>,
    pub(crate) framework_index: BTreeMap<FrameworkId, u32>,
    pub(crate) clients: Vec<Client>,
    pub(crate) free_clients: Vec<u32>,
    pub(crate) nodes: Vec<RoleNode>,
    pub(crate) node_index: BTreeMap<Role, u32>,
    /// Nodes deepest first, so a pass builds children before parents.
    pub(crate) nodes_deepest_first: Vec<u32>,
    /// Every known agent's total, what dominant shares divide by.
    pub(crate) cluster_total: Amounts,
    /// Unreserved free resources on candidate agents, what quota headroom is held from.
    pub(crate) unreserved_free: Amounts,
    pub(crate) dirty_agents: Vec<u32>,
    pub(crate) dirty_frameworks: Vec<u32>,
    pub(crate) dirty_roles: BTreeSet<Role>,
    pub(crate) every_agent_dirty: bool,
    pub(crate) last_summary: Option<CycleSummary>,
    /// Scratch for one cycle: roles a walk found at their limit.
    pub(crate) exhausted_roles: Vec<u32>,
    /// Scratch for one agent: frameworks already offered something on it.
    pub(crate) offered_here: Vec<u32>,
    /// Whether every minimum allocatable quantity names only cpus, mem, disk or gpus, so
    /// checking one needs no look at the resources themselves.
    pub(crate) minimums_name_only_dimensions: bool,
    /// The minimums as amounts (zero where unnamed), for comparing without names.
    pub(crate) minimum_amounts: Vec<Amounts>,
    pub(crate) no_resources: Resources,
}

impl Allocator {
    pub fn new(config: AllocatorConfig) -> Allocator {
        let root = RoleNode {
            role: None,
            parent: None,
            depth: 0,
            children: Vec::new(),
            clients: Vec::new(),
            weight_milli: 1000,
            guarantees: Amounts::ZERO,
            limits: Amounts::UNLIMITED,
            allocation: Amounts::ZERO,
            record: RoleRecord::default(),
        };
        let minimums_name_only_dimensions = config.min_allocatable.iter().all(|minimum| {
            minimum.iter().all(|(name, _)| crate::amounts::dimension_of(name).is_some())
        });
        let minimum_amounts = config.min_allocatable.iter().map(Amounts::of_quantities).collect();
        Allocator {
            config,
            agents: Vec::new(),
            agent_index: BTreeMap::new(),
            candidates: BTreeMap::new(),
            frameworks: Vec::new(),
            framework_index: BTreeMap::new(),
            clients: Vec::new(),
            free_clients: Vec::new(),
            nodes: vec![root],
            node_index: BTreeMap::new(),
            nodes_deepest_first: vec![ROOT],
            cluster_total: Amounts::ZERO,
            unreserved_free: Amounts::ZERO,
            dirty_agents: Vec::new(),
            dirty_frameworks: Vec::new(),
            dirty_roles: BTreeSet::new(),
            every_agent_dirty: false,
            last_summary: None,
            exhausted_roles: Vec::new(),
            offered_here: Vec::new(),
            minimums_name_only_dimensions,
            minimum_amounts,
            no_resources: Resources::new(),
        }
    }

    /// Rebuilds everything from the state, as a new leader does.
    pub fn from_state(config: AllocatorConfig, state: &ClusterState) -> Allocator {
        let mut allocator = Allocator::new(config);
        for agent_id in state.agents().keys() {
            allocator.agent_slot(agent_id);
        }
        for (framework_id, framework) in state.frameworks() {
            let slot = allocator.framework_slot(framework_id);
            for (agent_id, filter) in &framework.filters {
                let agent = allocator.agent_slot(agent_id);
                allocator.frameworks[slot as usize].filters.insert(
                    agent,
                    Filter {
                        until: filter.until,
                        amounts: Amounts::of_resources(&filter.resources),
                    },
                );
            }
        }
        for offer in state.offers().values() {
            let agent = allocator.agent_slot(&offer.agent_id);
            allocator.agents[agent as usize].outstanding_offers += 1;
            let framework = allocator.framework_slot(&offer.framework_id);
            allocator.frameworks[framework as usize].outstanding_offers += 1;
        }
        allocator.dirty_roles.extend(state.role_configs().keys().cloned());
        allocator.refresh(state);
        allocator
    }

    pub fn config(&self) -> &AllocatorConfig {
        &self.config
    }

    /// Notes what an applied event changed; the next cycle re-reads exactly that.
    pub fn observe(&mut self, event: &Event) {
        match event {
            Event::OfferFilterAdded { framework_id, agent_id, resources, until } => {
                let framework = self.framework_slot(framework_id);
                let agent = self.agent_slot(agent_id);
                let filter = Filter { until: *until, amounts: Amounts::of_resources(resources) };
                let last_cycle_at =
                    self.last_summary.as_ref().map(|summary| summary.at).unwrap_or_default();
                let entry = &mut self.frameworks[framework as usize];
                entry.filters.insert(agent, filter);
                // Expired filters are harmless (checks compare times) and pruning them all
                // every cycle would walk every filter: prune when the set has doubled.
                if entry.filters.len() > entry.prune_filters_at {
                    entry.filters.retain_active(last_cycle_at);
                    entry.prune_filters_at =
                        (entry.filters.len() * 2).max(MIN_FILTERS_BEFORE_PRUNING);
                }
                return;
            }
            Event::FrameworkRevived { framework_id, .. }
            | Event::FrameworkRemoved { framework_id, .. } => {
                let framework = self.framework_slot(framework_id);
                self.frameworks[framework as usize].filters.clear();
            }
            Event::WeightUpdated { role, .. } => {
                self.dirty_roles.insert(role.clone());
                return;
            }
            Event::QuotaUpdated { config } => {
                self.dirty_roles.insert(config.role.clone());
                return;
            }
            Event::MaintenanceScheduleUpdated { .. }
            | Event::MaintenanceStarted { .. }
            | Event::MaintenanceStopped { .. }
            | Event::SettingsUpdated { .. } => {
                self.every_agent_dirty = true;
                return;
            }
            _ => {}
        }
        let offer_event = matches!(
            event,
            Event::OfferCreated { .. }
                | Event::OfferAccepted { .. }
                | Event::OfferDeclined { .. }
                | Event::OfferRescinded { .. }
        );
        let resource_neutral = matches!(
            event,
            Event::MessageToExecutor { .. }
                | Event::MessageToFramework { .. }
                | Event::StatusAcknowledged { .. }
                | Event::TaskReconciled { .. }
                | Event::TaskKillRequested { .. }
                | Event::TaskDropped { .. }
                | Event::ExecutorShutdownRequested { .. }
        );
        if resource_neutral {
            return;
        }
        if offer_event {
            self.count_outstanding_offer(event);
        }
        if let Some(agent_id) = event.agent_id() {
            let flag = if offer_event { AGENT_OFFERS_CHANGED } else { AGENT_CHANGED };
            let slot = self.agent_slot(agent_id);
            self.mark_agent(slot, flag);
        }
        if let Some(framework_id) = event.framework_id() {
            let flag = match event {
                _ if offer_event => FRAMEWORK_OFFERS_CHANGED,
                Event::TaskAdded { .. }
                | Event::TaskUpdated { .. }
                | Event::TaskCompleted { .. } => FRAMEWORK_TASKS_CHANGED,
                _ => FRAMEWORK_ALL_CHANGED,
            };
            let slot = self.framework_slot(framework_id);
            self.mark_framework(slot, flag);
        }
    }

    fn count_outstanding_offer(&mut self, event: &Event) {
        let (Some(agent_id), Some(framework_id)) = (event.agent_id(), event.framework_id()) else {
            return;
        };
        let agent = self.agent_slot(agent_id) as usize;
        let framework = self.framework_slot(framework_id) as usize;
        if let Event::OfferCreated { .. } = event {
            self.agents[agent].outstanding_offers += 1;
            self.frameworks[framework].outstanding_offers += 1;
            return;
        }
        let agent = &mut self.agents[agent];
        agent.outstanding_offers = agent.outstanding_offers.saturating_sub(1);
        let framework = &mut self.frameworks[framework];
        framework.outstanding_offers = framework.outstanding_offers.saturating_sub(1);
    }

    pub(crate) fn agent_slot(&mut self, agent_id: &AgentId) -> u32 {
        if let Some(slot) = self.agent_index.get(agent_id) {
            return *slot;
        }
        let slot = self.agents.len() as u32;
        self.agents.push(AgentEntry {
            id: agent_id.clone(),
            known: false,
            offerable: false,
            total: Amounts::ZERO,
            classes: Vec::new(),
            computed_without_offers: false,
            outstanding_offers: 0,
            dirty: 0,
        });
        self.agent_index.insert(agent_id.clone(), slot);
        self.mark_agent(slot, AGENT_CHANGED);
        slot
    }

    pub(crate) fn framework_slot(&mut self, framework_id: &FrameworkId) -> u32 {
        if let Some(slot) = self.framework_index.get(framework_id) {
            return *slot;
        }
        let slot = self.frameworks.len() as u32;
        self.frameworks.push(FrameworkEntry {
            id: framework_id.clone(),
            known: false,
            connected: false,
            unsubscribed: false,
            clients: Vec::new(),
            filters: FilterSet::default(),
            prune_filters_at: MIN_FILTERS_BEFORE_PRUNING,
            outstanding_offers: 0,
            dirty: 0,
            record: FrameworkRecord::default(),
        });
        self.framework_index.insert(framework_id.clone(), slot);
        self.mark_framework(slot, FRAMEWORK_ALL_CHANGED);
        slot
    }

    fn mark_agent(&mut self, slot: u32, flag: u8) {
        let agent = &mut self.agents[slot as usize];
        if agent.dirty == 0 {
            self.dirty_agents.push(slot);
        }
        agent.dirty |= flag;
    }

    fn mark_framework(&mut self, slot: u32, flag: u8) {
        let framework = &mut self.frameworks[slot as usize];
        if framework.dirty == 0 {
            self.dirty_frameworks.push(slot);
        }
        framework.dirty |= flag;
    }

    pub(crate) fn node_for(&mut self, role: &Role) -> u32 {
        if let Some(node) = self.node_index.get(role) {
            return *node;
        }
        let parent = match role.parent() {
            Some(parent_role) => self.node_for(&parent_role),
            None => ROOT,
        };
        let node = self.nodes.len() as u32;
        let depth = self.nodes[parent as usize].depth + 1;
        self.nodes.push(RoleNode {
            role: Some(role.clone()),
            parent: Some(parent),
            depth,
            children: Vec::new(),
            clients: Vec::new(),
            weight_milli: 1000,
            guarantees: Amounts::ZERO,
            limits: Amounts::UNLIMITED,
            allocation: Amounts::ZERO,
            record: RoleRecord::default(),
        });
        self.node_index.insert(role.clone(), node);
        self.nodes[parent as usize].children.push(node);
        let nodes = &self.nodes;
        let position =
            self.nodes_deepest_first.partition_point(|other| nodes[*other as usize].depth >= depth);
        self.nodes_deepest_first.insert(position, node);
        // A role with a default config may have been updated before it had a node.
        self.dirty_roles.insert(role.clone());
        node
    }

    /// Adds `delta` (which may be negative) to a node and every ancestor.
    fn add_to_chain(&mut self, node: u32, delta: Amounts, sign: i64) {
        let mut current = Some(node);
        while let Some(index) = current {
            let entry = &mut self.nodes[index as usize];
            for dimension in 0..4 {
                entry.allocation.0[dimension] += sign * delta.0[dimension];
            }
            current = entry.parent;
        }
    }

    /// Re-reads from the state everything events marked as changed.
    pub(crate) fn refresh(&mut self, state: &ClusterState) {
        if self.every_agent_dirty {
            self.every_agent_dirty = false;
            for agent_id in state.agents().keys() {
                self.agent_slot(agent_id);
            }
            for slot in 0..self.agents.len() as u32 {
                self.mark_agent(slot, AGENT_CHANGED);
            }
        }
        let mut dirty_agents = std::mem::take(&mut self.dirty_agents);
        // The steady state: offers made and all answered. Nothing the allocator keeps can
        // have changed, and no look at the state is needed to know it.
        dirty_agents.retain(|slot| {
            let entry = &mut self.agents[*slot as usize];
            let settled = entry.dirty == AGENT_OFFERS_CHANGED
                && entry.known
                && entry.computed_without_offers
                && entry.outstanding_offers == 0;
            if settled {
                entry.dirty = 0;
            }
            !settled
        });
        let agents: Vec<(u32, Option<&Agent>)> = if dirty_agents.len() * 4 < self.agent_index.len()
        {
            let id_of = |slot: u32| &self.agents[slot as usize].id;
            dirty_agents.iter().map(|slot| (*slot, state.agent(id_of(*slot)))).collect()
        } else {
            pair_dirty_with_state(&self.agent_index, state.agents(), |slot| {
                self.agents[slot as usize].dirty != 0
            })
        };
        for (slot, agent) in agents {
            self.refresh_agent(state, slot, agent);
        }
        let mut dirty_frameworks = std::mem::take(&mut self.dirty_frameworks);
        let clients = &self.clients;
        dirty_frameworks.retain(|slot| {
            let entry = &mut self.frameworks[*slot as usize];
            let settled = entry.dirty == FRAMEWORK_OFFERS_CHANGED
                && entry.known
                && entry.outstanding_offers == 0
                && entry
                    .clients
                    .iter()
                    .all(|client| clients[*client as usize].offer_allocation.is_zero());
            if settled {
                entry.dirty = 0;
            }
            !settled
        });
        let frameworks: Vec<(u32, Option<&Framework>)> =
            if dirty_frameworks.len() * 4 < self.framework_index.len() {
                let id_of = |slot: u32| &self.frameworks[slot as usize].id;
                dirty_frameworks.iter().map(|slot| (*slot, state.framework(id_of(*slot)))).collect()
            } else {
                pair_dirty_with_state(&self.framework_index, state.frameworks(), |slot| {
                    self.frameworks[slot as usize].dirty != 0
                })
            };
        for (slot, framework) in frameworks {
            self.refresh_framework(state, slot, framework);
        }
        // Last, because refreshing agents and frameworks may create nodes for new roles.
        while let Some(role) = self.dirty_roles.pop_first() {
            self.refresh_role(state, &role);
        }
    }

    fn refresh_role(&mut self, state: &ClusterState, role: &Role) {
        let node = self.node_for(role);
        let config = state.role_config(role);
        let entry = &mut self.nodes[node as usize];
        entry.weight_milli = config.weight.milli().max(1);
        entry.guarantees = Amounts::of_quantities(&config.guarantees);
        entry.limits = Amounts::of_limits(&config.limits);
    }

    fn refresh_agent(&mut self, state: &ClusterState, slot: u32, agent: Option<&Agent>) {
        let flags = std::mem::take(&mut self.agents[slot as usize].dirty);
        let Some(agent) = agent.filter(|agent| !agent.is_gone()) else {
            self.forget_agent(slot);
            return;
        };
        let entry = &self.agents[slot as usize];
        let offers_only = flags & AGENT_CHANGED == 0;
        if offers_only && entry.known && entry.computed_without_offers && agent.offered.is_empty() {
            return;
        }
        self.withdraw_agent(slot);
        let offerable = agent.is_offerable()
            && state.machine_mode_of(&agent.info.hostname, &agent.info.address)
                != MachineMode::Down;
        let free = agent.free();
        let classes = self.split_into_classes(&free);
        let total = Amounts::of_resources(&agent.total);
        let entry = &mut self.agents[slot as usize];
        entry.known = true;
        entry.offerable = offerable;
        entry.total = total;
        entry.classes = classes;
        entry.computed_without_offers = agent.offered.is_empty();
        self.admit_agent(slot);
    }

    /// Takes an agent's contribution out of the cluster totals and the candidates.
    fn withdraw_agent(&mut self, slot: u32) {
        let entry = &self.agents[slot as usize];
        if !entry.known {
            return;
        }
        self.cluster_total = self.cluster_total.minus(entry.total);
        if self.candidates.remove(&entry.id).is_some() {
            self.unreserved_free = self.unreserved_free.minus(entry.unreserved_amounts());
        }
    }

    fn admit_agent(&mut self, slot: u32) {
        let entry = &self.agents[slot as usize];
        self.cluster_total = self.cluster_total.plus(entry.total);
        let has_free = entry.classes.iter().any(|class| !class.resources.is_empty());
        if entry.offerable && has_free {
            self.candidates.insert(entry.id.clone(), slot);
            self.unreserved_free = self.unreserved_free.plus(entry.unreserved_amounts());
        }
    }

    fn forget_agent(&mut self, slot: u32) {
        self.withdraw_agent(slot);
        let entry = &mut self.agents[slot as usize];
        entry.known = false;
        entry.offerable = false;
        entry.total = Amounts::ZERO;
        entry.classes = Vec::new();
    }

    fn split_into_classes(&mut self, free: &Resources) -> Vec<FreeClass> {
        let mut by_role: BTreeMap<Option<Role>, Vec<Resource>> = BTreeMap::new();
        for resource in free.iter() {
            by_role.entry(resource.reservation.role().cloned()).or_default().push(resource.clone());
        }
        let mut classes = Vec::with_capacity(by_role.len());
        for (role, list) in by_role {
            let resources = Resources::from_list(list).unwrap_or_default();
            let reserved_for = role.map(|role| self.node_for(&role));
            classes.push(FreeClass {
                reserved_for,
                amounts: Amounts::of_resources(&resources),
                resources,
            });
        }
        classes
    }

    fn refresh_framework(
        &mut self,
        state: &ClusterState,
        slot: u32,
        framework: Option<&Framework>,
    ) {
        let flags = std::mem::take(&mut self.frameworks[slot as usize].dirty);
        let Some(framework) = framework else {
            self.forget_framework(slot);
            return;
        };
        let framework_id = &framework.id;
        let entry = &mut self.frameworks[slot as usize];
        let was_known = entry.known;
        entry.known = true;
        entry.connected = framework.is_connected();
        if was_known && flags == FRAMEWORK_OFFERS_CHANGED {
            self.refresh_offer_allocation(state, slot, framework);
            return;
        }

        let mut task_allocation: BTreeMap<Role, Amounts> = BTreeMap::new();
        let mut offer_allocation: BTreeMap<Role, Amounts> = BTreeMap::new();
        if flags & FRAMEWORK_TASKS_CHANGED != 0 {
            let mut counted_executors = BTreeSet::new();
            for task in framework.tasks.values().filter(|task| !task.state.is_terminal()) {
                let sum = task_allocation.entry(task.role.clone()).or_default();
                *sum = sum.plus(Amounts::of_resources(task.resources()));
                // An executor holds its resources once; charge them to its first live task's role.
                if let Some(executor) = &task.info.executor {
                    if counted_executors.insert(executor.executor_id.clone()) {
                        let key = (framework_id.clone(), executor.executor_id.clone());
                        if let Some(known) = state.executors().get(&key) {
                            *sum = sum.plus(Amounts::of_resources(&known.info.resources));
                        }
                    }
                }
            }
        }
        if flags & FRAMEWORK_OFFERS_CHANGED != 0 {
            for offer in framework.offers.iter().filter_map(|offer_id| state.offer(offer_id)) {
                let sum = offer_allocation.entry(offer.role.clone()).or_default();
                *sum = sum.plus(Amounts::of_resources(&offer.resources));
            }
        }

        // Every role that is subscribed or still holds something gets a client.
        let mut wanted: BTreeSet<Role> = framework.info.roles.iter().cloned().collect();
        wanted.extend(task_allocation.keys().cloned());
        wanted.extend(offer_allocation.keys().cloned());
        for role in &wanted {
            self.client_for(slot, role);
        }
        let clients = self.frameworks[slot as usize].clients.clone();
        for client in clients {
            let node = self.clients[client as usize].node;
            let Some(role) = self.nodes[node as usize].role.clone() else { continue };
            let before = self.clients[client as usize].allocation();
            let entry = &mut self.clients[client as usize];
            entry.subscribed = framework.info.roles.contains(&role);
            entry.suppressed = framework.suppressed_roles.contains(&role);
            if flags & FRAMEWORK_TASKS_CHANGED != 0 {
                entry.task_allocation = task_allocation.get(&role).copied().unwrap_or_default();
            }
            if flags & FRAMEWORK_OFFERS_CHANGED != 0 {
                entry.offer_allocation = offer_allocation.get(&role).copied().unwrap_or_default();
            }
            let after = entry.allocation();
            let unused = !entry.subscribed && after.is_zero();
            if before != after {
                self.add_to_chain(node, before, -1);
                self.add_to_chain(node, after, 1);
            }
            if unused {
                self.release_client(client);
            }
        }
    }

    /// The common case, every cycle for every framework offered something: only offers
    /// came or went, so only what is on offer per role needs reading again.
    fn refresh_offer_allocation(&mut self, state: &ClusterState, slot: u32, framework: &Framework) {
        for position in 0..self.frameworks[slot as usize].clients.len() {
            let client = self.frameworks[slot as usize].clients[position];
            let node = self.clients[client as usize].node;
            let role = self.nodes[node as usize].role.as_ref();
            let mut offered = Amounts::ZERO;
            for offer in framework.offers.iter().filter_map(|offer_id| state.offer(offer_id)) {
                if Some(&offer.role) == role {
                    offered = offered.plus(Amounts::of_resources(&offer.resources));
                }
            }
            let before = self.clients[client as usize].allocation();
            self.clients[client as usize].offer_allocation = offered;
            let after = self.clients[client as usize].allocation();
            if before != after {
                self.add_to_chain(node, before, -1);
                self.add_to_chain(node, after, 1);
            }
        }
    }

    fn client_for(&mut self, framework: u32, role: &Role) -> u32 {
        let node = self.node_for(role);
        let existing = self.frameworks[framework as usize]
            .clients
            .iter()
            .copied()
            .find(|client| self.clients[*client as usize].node == node);
        if let Some(client) = existing {
            return client;
        }
        let entry = Client {
            framework,
            node,
            live: true,
            subscribed: false,
            suppressed: false,
            task_allocation: Amounts::ZERO,
            offer_allocation: Amounts::ZERO,
            record: ClientRecord::default(),
        };
        let client = match self.free_clients.pop() {
            Some(reused) => {
                self.clients[reused as usize] = entry;
                reused
            }
            None => {
                self.clients.push(entry);
                self.clients.len() as u32 - 1
            }
        };
        self.frameworks[framework as usize].clients.push(client);
        self.nodes[node as usize].clients.push(client);
        client
    }

    fn release_client(&mut self, client: u32) {
        let entry = &self.clients[client as usize];
        let (framework, node, allocation) = (entry.framework, entry.node, entry.allocation());
        self.add_to_chain(node, allocation, -1);
        self.frameworks[framework as usize].clients.retain(|other| *other != client);
        self.nodes[node as usize].clients.retain(|other| *other != client);
        self.clients[client as usize].live = false;
        self.free_clients.push(client);
    }

    fn forget_framework(&mut self, slot: u32) {
        let clients = self.frameworks[slot as usize].clients.clone();
        for client in clients {
            self.release_client(client);
        }
        let entry = &mut self.frameworks[slot as usize];
        entry.known = false;
        entry.connected = false;
        entry.filters.clear();
    }

    /// Marks the frameworks the state calls connected whose scheduler stream this leader does
    /// not hold: `subscribed` says which do. After a failover every stream was on the old
    /// leader, and a framework learns of the new one only when it notices; offers made to it
    /// meanwhile would hold their resources from everyone else. Mesos likewise offers only
    /// to frameworks subscribed to the leading master.
    pub fn set_unsubscribed(&mut self, subscribed: impl Fn(&FrameworkId) -> bool) {
        for entry in &mut self.frameworks {
            entry.unsubscribed = !subscribed(&entry.id);
        }
    }

    /// The ids of the agents a cycle would walk, for tests that check the mirror.
    pub fn candidate_agents(&self) -> impl Iterator<Item = &AgentId> {
        self.candidates.keys()
    }

    /// The free resources the allocator believes an agent has, for tests that check the
    /// mirror against the state. Meaningful after a cycle has refreshed it.
    pub fn believed_free(&self, agent_id: &AgentId) -> Option<Resources> {
        let slot = self.agent_index.get(agent_id)?;
        let entry = &self.agents[*slot as usize];
        if !entry.known {
            return None;
        }
        let mut free = Resources::new();
        for class in &entry.classes {
            free.add(&class.resources);
        }
        Some(free)
    }

    /// Roughly how many heap bytes the allocator's structures hold: element counts times
    /// element sizes, with a factor for tree and hash overhead. For capacity planning and
    /// the benchmark's memory figure, not an exact measure.
    pub fn approximate_heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let tree_entry = |key_and_value: usize| key_and_value * 3 / 2;
        let resources_bytes = |resources: &Resources| {
            resources
                .iter()
                .map(|resource| {
                    let heap = match &resource.value {
                        corral_state::Value::Ranges(ranges) => ranges.as_slice().len() * 16,
                        corral_state::Value::Set(set) => set.len() * 48,
                        corral_state::Value::Scalar(_) => 0,
                    };
                    size_of::<Resource>() + heap
                })
                .sum::<usize>()
        };
        let mut bytes = self.agents.capacity() * size_of::<AgentEntry>();
        for agent in &self.agents {
            bytes += agent.classes.capacity() * size_of::<FreeClass>();
            bytes +=
                agent.classes.iter().map(|class| resources_bytes(&class.resources)).sum::<usize>();
        }
        bytes += self.agent_index.len() * tree_entry(size_of::<(AgentId, u32)>());
        bytes += self.candidates.len() * tree_entry(size_of::<(AgentId, u32)>());
        bytes += self.frameworks.capacity() * size_of::<FrameworkEntry>();
        for framework in &self.frameworks {
            bytes += framework.clients.capacity() * size_of::<u32>();
            bytes += framework.filters.capacity() * (size_of::<(u32, Filter)>() + 1);
            bytes += framework.record.filtered_sample.capacity() * size_of::<u32>();
        }
        bytes += self.framework_index.len() * tree_entry(size_of::<(FrameworkId, u32)>());
        bytes += self.clients.capacity() * size_of::<Client>();
        bytes += self.nodes.capacity() * size_of::<RoleNode>();
        for node in &self.nodes {
            bytes += (node.children.capacity() + node.clients.capacity()) * size_of::<u32>();
        }
        bytes += self.node_index.len() * tree_entry(size_of::<(Role, u32)>());
        bytes
    }

    pub fn last_cycle(&self) -> Option<&CycleSummary> {
        self.last_summary.as_ref()
    }
}

/// The state's record of every dirty slot, found by one walk over both id-sorted maps: when
/// most slots changed (every cycle, in the steady state) that is cheaper than a lookup each.
fn pair_dirty_with_state<'state, Id: Ord + 'state, Value: 'state>(
    index: &BTreeMap<Id, u32>,
    theirs: impl IntoIterator<Item = (&'state Id, &'state Value)>,
    is_dirty: impl Fn(u32) -> bool,
) -> Vec<(u32, Option<&'state Value>)> {
    let mut pairs = Vec::new();
    let mut their_entries = theirs.into_iter().peekable();
    for (id, slot) in index {
        while their_entries.peek().is_some_and(|(their_id, _)| *their_id < id) {
            their_entries.next();
        }
        if !is_dirty(*slot) {
            continue;
        }
        let value = match their_entries.peek() {
            Some((their_id, value)) if *their_id == id => Some(*value),
            _ => None,
        };
        pairs.push((*slot, value));
    }
    pairs
}
