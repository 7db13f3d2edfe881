//! One allocation cycle: guarantees first, then weighted DRF over the role tree, agent by
//! agent. The orderings are balanced trees keyed by share, so picking the next framework
//! for an agent costs a walk down the tree, not a scan of every framework.

use std::borrow::Cow;
use std::collections::BTreeSet;

use corral_state::{OfferSpec, Resource, Resources, Timestamp, Value};

use crate::allocator::{Allocation, Allocator, ClientRecord, FrameworkRecord, RoleRecord, ROOT};
use crate::amounts::{dimension_of, weighted_share, Amounts, UNLIMITED};
use crate::explain::CycleSummary;

/// (share, rank by id, slot): ordered by share, ties broken by id.
type Key = (u64, u32, u32);

/// Stands for a role's own frameworks among its sub-roles, as Mesos's "." leaf does.
const OWN_FRAMEWORKS: u32 = u32::MAX;

/// Keeps agent id lists in explanations short.
const SAMPLE_SIZE: usize = 8;

/// The cycle's view of shares: the mirror's allocations plus this cycle's offers so far.
struct Working {
    now: Timestamp,
    total: Amounts,
    client_allocation: Vec<Amounts>,
    own_allocation: Vec<Amounts>,
    node_allocation: Vec<Amounts>,
    client_key: Vec<Option<Key>>,
    own_key: Vec<Option<Key>>,
    node_key: Vec<Option<Key>>,
    quota_key: Vec<Option<Key>>,
    /// Per node: its sub-roles and its own frameworks (as `OWN_FRAMEWORKS`) in DRF order.
    node_children: Vec<BTreeSet<Key>>,
    /// Per node: its own eligible frameworks in DRF order.
    node_clients: Vec<BTreeSet<Key>>,
    /// Roles whose guarantee is not yet met and that have eligible frameworks.
    quota_roles: BTreeSet<Key>,
    headroom: Vec<Amounts>,
    child_headroom: Vec<Amounts>,
    role_rank: Vec<u32>,
    framework_rank: Vec<u32>,
    offers_by_framework: Vec<u32>,
    offer_cap: u32,
    unreserved_free: Amounts,
}

/// One agent's free resources of one reservation class, as this cycle consumes them.
struct WorkingClass<'a> {
    reserved_for: Option<u32>,
    amounts: Amounts,
    resources: Cow<'a, Resources>,
}

/// What a chosen framework gets on an agent.
struct Choice {
    client: u32,
    reserved: Amounts,
    unreserved: Amounts,
}

/// The resources on offer to a walk down the tree, before per-role limits.
#[derive(Clone, Copy)]
struct Available {
    reserved_class: Option<usize>,
    reserved: Amounts,
    unreserved: Amounts,
    /// The most of each unreserved dimension that may go without eating quota headroom.
    unreserved_cap: Amounts,
    /// When set, the offer must be positive in a dimension where this is positive.
    needed: Option<Amounts>,
}

impl Allocator {
    /// Runs one cycle at `now` (the time that expires refusal filters): re-reads what events
    /// marked as changed, then decides offers. The same state and time give the same offers.
    pub fn allocate(&mut self, state: &corral_state::ClusterState, now: Timestamp) -> Allocation {
        self.refresh(state);
        let mut working = self.begin_cycle(now);
        let mut summary = CycleSummary {
            at: now,
            agents_with_free_resources: self.candidates.len() as u32,
            quota_headroom: working.child_headroom[ROOT as usize].to_quantities(),
            unreserved_free: self.unreserved_free.to_quantities(),
            ..CycleSummary::default()
        };
        // Usually about one offer per agent; growing a large vector copies it over and over.
        let mut offers = Vec::with_capacity(self.candidates.len());
        let candidates: Vec<u32> = self.candidates.values().copied().collect();
        for agent in candidates {
            self.allocate_agent(&mut working, agent, &mut offers, &mut summary);
        }
        summary.offers = offers.len() as u32;
        self.finish_cycle(&working);
        self.last_summary = Some(summary.clone());
        Allocation { offers, summary }
    }

    fn begin_cycle(&mut self, now: Timestamp) -> Working {
        let node_count = self.nodes.len();
        let client_count = self.clients.len();
        let mut role_rank = vec![0; node_count];
        for (rank, node) in self.node_index.values().enumerate() {
            role_rank[*node as usize] = rank as u32 + 1;
        }
        let mut framework_rank = vec![0; self.frameworks.len()];
        for (rank, framework) in self.framework_index.values().enumerate() {
            framework_rank[*framework as usize] = rank as u32;
        }
        for framework in &mut self.frameworks {
            framework.record = FrameworkRecord::default();
        }
        for node in &mut self.nodes {
            node.record = RoleRecord::default();
        }
        let mut working = Working {
            now,
            total: self.cluster_total,
            client_allocation: self.clients.iter().map(|client| client.allocation()).collect(),
            own_allocation: vec![Amounts::ZERO; node_count],
            node_allocation: self.nodes.iter().map(|node| node.allocation).collect(),
            client_key: vec![None; client_count],
            own_key: vec![None; node_count],
            node_key: vec![None; node_count],
            quota_key: vec![None; node_count],
            node_children: vec![BTreeSet::new(); node_count],
            node_clients: vec![BTreeSet::new(); node_count],
            quota_roles: BTreeSet::new(),
            headroom: vec![Amounts::ZERO; node_count],
            child_headroom: vec![Amounts::ZERO; node_count],
            role_rank,
            framework_rank,
            offers_by_framework: vec![0; self.frameworks.len()],
            offer_cap: self.config.max_offers_per_framework.unwrap_or(u32::MAX),
            unreserved_free: self.unreserved_free,
        };
        for (slot, client) in self.clients.iter_mut().enumerate() {
            client.record = ClientRecord::default();
            if !client.live {
                continue;
            }
            let node = client.node as usize;
            working.own_allocation[node] = working.own_allocation[node].plus(client.allocation());
            let framework = &self.frameworks[client.framework as usize];
            let eligible = framework.known
                && framework.connected
                && !framework.unsubscribed
                && client.subscribed
                && !client.suppressed
                && working.offer_cap > 0;
            if !eligible {
                continue;
            }
            let key = (
                weighted_share(client.allocation(), working.total, 1000),
                working.framework_rank[client.framework as usize],
                slot as u32,
            );
            working.node_clients[node].insert(key);
            working.client_key[slot] = Some(key);
        }
        for position in 0..self.nodes_deepest_first.len() {
            let node = self.nodes_deepest_first[position];
            self.enter_node(&mut working, node);
        }
        self.record_standings(&working);
        working
    }

    /// Places a node's own frameworks among its children, the node under its parent, and
    /// its quota headroom; children must have been entered first.
    fn enter_node(&self, working: &mut Working, node: u32) {
        let index = node as usize;
        if !working.node_clients[index].is_empty() {
            let key = (
                weighted_share(working.own_allocation[index], working.total, 1000),
                0,
                OWN_FRAMEWORKS,
            );
            working.node_children[index].insert(key);
            working.own_key[index] = Some(key);
        }
        let entry = &self.nodes[index];
        let headroom = self.unmet_guarantee(working, node).max(working.child_headroom[index]);
        working.headroom[index] = headroom;
        let Some(parent) = entry.parent else { return };
        working.child_headroom[parent as usize] =
            working.child_headroom[parent as usize].plus(headroom);
        if working.node_children[index].is_empty() {
            return;
        }
        let key = (self.node_share(working, node), working.role_rank[index], node);
        working.node_children[parent as usize].insert(key);
        working.node_key[index] = Some(key);
        if self.unmet_guarantee(working, node).is_positive_anywhere() {
            working.quota_roles.insert(key);
            working.quota_key[index] = Some(key);
        }
    }

    fn node_share(&self, working: &Working, node: u32) -> u64 {
        let weight = self.nodes[node as usize].weight_milli;
        weighted_share(working.node_allocation[node as usize], working.total, weight)
    }

    fn unmet_guarantee(&self, working: &Working, node: u32) -> Amounts {
        self.nodes[node as usize].guarantees.minus_floored(working.node_allocation[node as usize])
    }

    /// How much more a role may get before it or an ancestor reaches its limit.
    fn limit_budget(&self, working: &Working, node: u32) -> Amounts {
        let mut budget = Amounts::UNLIMITED;
        let mut current = Some(node);
        while let Some(index) = current {
            if index == ROOT {
                break;
            }
            let entry = &self.nodes[index as usize];
            for dimension in 0..4 {
                let limit = entry.limits.0[dimension];
                if limit == UNLIMITED {
                    continue;
                }
                let left = (limit - working.node_allocation[index as usize].0[dimension]).max(0);
                budget.0[dimension] = budget.0[dimension].min(left);
            }
            current = entry.parent;
        }
        budget
    }

    /// What unreserved resources may go to anyone without eating into quota headroom.
    fn headroom_slack(working: &Working) -> Amounts {
        working.unreserved_free.minus_floored(working.child_headroom[ROOT as usize])
    }

    fn record_standings(&mut self, working: &Working) {
        for (node, clients) in working.node_clients.iter().enumerate() {
            self.nodes[node].record.eligible_clients = clients.len() as u32;
            for (rank, (share, _, client)) in clients.iter().enumerate() {
                self.clients[*client as usize].record =
                    ClientRecord { share: *share, rank: Some(rank as u32 + 1) };
            }
        }
        for client in 0..self.clients.len() {
            if working.client_key[client].is_none() && self.clients[client].live {
                let share = weighted_share(working.client_allocation[client], working.total, 1000);
                self.clients[client].record = ClientRecord { share, rank: None };
            }
        }
        for node in 0..self.nodes.len() as u32 {
            let share = self.node_share(working, node);
            self.nodes[node as usize].record.share = share;
        }
        for children in &working.node_children {
            let siblings = children.iter().filter(|(_, _, child)| *child != OWN_FRAMEWORKS).count();
            let roles = children.iter().filter(|(_, _, child)| *child != OWN_FRAMEWORKS);
            for (rank, (_, _, child)) in roles.enumerate() {
                let record = &mut self.nodes[*child as usize].record;
                record.rank = Some(rank as u32 + 1);
                record.siblings = siblings as u32;
            }
        }
    }

    fn finish_cycle(&mut self, working: &Working) {
        for (framework, offers) in working.offers_by_framework.iter().enumerate() {
            let record = &mut self.frameworks[framework].record;
            record.offers = *offers;
            record.cap_reached = *offers >= working.offer_cap;
        }
    }

    /// Whether an offer of `amounts` (and of whatever else `parts` hold) is worth making.
    /// With no minimum configured, anything is.
    fn allocatable(&self, amounts: Amounts, parts: &[&Resources]) -> bool {
        if self.config.min_allocatable.is_empty() {
            return true;
        }
        if self.minimums_name_only_dimensions {
            return self.minimum_amounts.iter().any(|minimum| minimum.fits_within(amounts));
        }
        self.config.min_allocatable.iter().any(|minimum| {
            minimum.iter().all(|(name, wanted)| {
                let have = match dimension_of(name) {
                    Some(dimension) => amounts.0[dimension],
                    None => parts.iter().map(|part| part.scalar(name).milli()).sum(),
                };
                wanted.milli() <= have
            })
        })
    }

    fn allocate_agent(
        &mut self,
        working: &mut Working,
        agent: u32,
        offers: &mut Vec<OfferSpec>,
        summary: &mut CycleSummary,
    ) {
        // Taken out and put back so the classes can be borrowed while records change.
        let stored = std::mem::take(&mut self.agents[agent as usize].classes);
        let mut classes: Vec<WorkingClass<'_>> = stored
            .iter()
            .map(|class| WorkingClass {
                reserved_for: class.reserved_for,
                amounts: class.amounts,
                resources: Cow::Borrowed(&class.resources),
            })
            .collect();
        let free = stored.iter().fold(Amounts::ZERO, |sum, class| sum.plus(class.amounts));
        let allocatable = if self.minimums_name_only_dimensions {
            self.allocatable(free, &[])
        } else {
            let all_parts: Vec<&Resources> = stored.iter().map(|class| &class.resources).collect();
            self.allocatable(free, &all_parts)
        };
        if !allocatable {
            summary.agents_too_small += 1;
            if summary.agents_too_small_sample.len() < SAMPLE_SIZE {
                summary.agents_too_small_sample.push(self.agents[agent as usize].id.clone());
            }
            self.agents[agent as usize].classes = stored;
            return;
        }
        // Reused from agent to agent: allocating it per agent shows in the cycle time.
        let mut offered_here = std::mem::take(&mut self.offered_here);
        offered_here.clear();
        let unreserved_class = classes.iter().position(|class| class.reserved_for.is_none());
        if let Some(unreserved) = unreserved_class {
            self.satisfy_guarantees(
                working,
                agent,
                &mut classes,
                unreserved,
                &mut offered_here,
                offers,
            );
        }
        for class in 0..classes.len() {
            let Some(reserved_for) = classes[class].reserved_for else { continue };
            if classes[class].resources.is_empty() {
                continue;
            }
            let slack = Self::headroom_slack(working);
            let available = Available {
                reserved_class: Some(class),
                reserved: classes[class].amounts,
                unreserved: unreserved_class
                    .map(|index| classes[index].amounts)
                    .unwrap_or_default(),
                unreserved_cap: slack,
                needed: None,
            };
            let choice = self.pick(
                working,
                reserved_for,
                agent,
                &available,
                &classes,
                unreserved_class,
                &offered_here,
            );
            self.withdraw_exhausted_roles(working);
            if let Some(choice) = choice {
                self.make_offer(
                    working,
                    agent,
                    choice,
                    &available,
                    &mut classes,
                    unreserved_class,
                    &mut offered_here,
                    offers,
                );
            }
        }
        if let Some(unreserved) = unreserved_class {
            loop {
                let remaining = classes[unreserved].amounts;
                if classes[unreserved].resources.is_empty()
                    || !self.allocatable(remaining, &[classes[unreserved].resources.as_ref()])
                {
                    break;
                }
                let slack = Self::headroom_slack(working);
                // Nothing past the headroom held for quota is worth a walk down the tree.
                if !self
                    .allocatable(remaining.min(slack), &[classes[unreserved].resources.as_ref()])
                {
                    summary.agents_held_for_quota += 1;
                    break;
                }
                let available = Available {
                    reserved_class: None,
                    reserved: Amounts::ZERO,
                    unreserved: remaining,
                    unreserved_cap: slack,
                    needed: None,
                };
                let choice = self.pick(
                    working,
                    ROOT,
                    agent,
                    &available,
                    &classes,
                    Some(unreserved),
                    &offered_here,
                );
                self.withdraw_exhausted_roles(working);
                let Some(choice) = choice else { break };
                self.make_offer(
                    working,
                    agent,
                    choice,
                    &available,
                    &mut classes,
                    Some(unreserved),
                    &mut offered_here,
                    offers,
                );
            }
        }
        drop(classes);
        self.agents[agent as usize].classes = stored;
        self.offered_here = offered_here;
    }

    /// Stage one: roles below their guarantee get unreserved resources first, up to it.
    fn satisfy_guarantees(
        &mut self,
        working: &mut Working,
        agent: u32,
        classes: &mut [WorkingClass<'_>],
        unreserved: usize,
        offered_here: &mut Vec<u32>,
        offers: &mut Vec<OfferSpec>,
    ) {
        loop {
            let free = classes[unreserved].amounts;
            let needed_somewhere = working.child_headroom[ROOT as usize];
            if working.quota_roles.is_empty()
                || !(0..4)
                    .any(|dimension| free.0[dimension] > 0 && needed_somewhere.0[dimension] > 0)
            {
                return;
            }
            let slack = Self::headroom_slack(working);
            let mut chosen = None;
            for &(_, _, node) in &working.quota_roles {
                let unmet = self.unmet_guarantee(working, node);
                let guarantees = self.nodes[node as usize].guarantees;
                let mut base = free;
                for dimension in 0..4 {
                    base.0[dimension] = if guarantees.0[dimension] > 0 {
                        free.0[dimension].min(unmet.0[dimension])
                    } else {
                        free.0[dimension].min(slack.0[dimension])
                    };
                }
                let available = Available {
                    reserved_class: None,
                    reserved: Amounts::ZERO,
                    unreserved: base,
                    unreserved_cap: Amounts::UNLIMITED,
                    needed: Some(unmet),
                };
                if let Some(choice) = self.pick(
                    &*working,
                    node,
                    agent,
                    &available,
                    classes,
                    Some(unreserved),
                    offered_here,
                ) {
                    chosen = Some((choice, available));
                    break;
                }
            }
            self.withdraw_exhausted_roles(working);
            let Some((choice, available)) = chosen else { return };
            self.make_offer(
                working,
                agent,
                choice,
                &available,
                classes,
                Some(unreserved),
                offered_here,
                offers,
            );
        }
    }

    /// Walks the role tree from `start` in DRF order to the first framework that may take
    /// something from this agent.
    #[allow(clippy::too_many_arguments)]
    fn pick(
        &mut self,
        working: &Working,
        start: u32,
        agent: u32,
        available: &Available,
        classes: &[WorkingClass<'_>],
        unreserved_class: Option<usize>,
        offered_here: &[u32],
    ) -> Option<Choice> {
        for &(_, _, child) in &working.node_children[start as usize] {
            let found = if child == OWN_FRAMEWORKS {
                self.pick_own_framework(
                    working,
                    start,
                    agent,
                    available,
                    classes,
                    unreserved_class,
                    offered_here,
                )
            } else {
                self.pick(working, child, agent, available, classes, unreserved_class, offered_here)
            };
            if found.is_some() {
                return found;
            }
        }
        None
    }

    #[allow(clippy::too_many_arguments)]
    fn pick_own_framework(
        &mut self,
        working: &Working,
        node: u32,
        agent: u32,
        available: &Available,
        classes: &[WorkingClass<'_>],
        unreserved_class: Option<usize>,
        offered_here: &[u32],
    ) -> Option<Choice> {
        let budget = self.limit_budget(working, node);
        let reserved = available.reserved.min(budget);
        let left = budget.minus_floored(reserved);
        let unreserved_uncapped = available.unreserved.min(left);
        let unreserved = unreserved_uncapped.min(available.unreserved_cap);
        let total = reserved.plus(unreserved);
        if let Some(needed) = available.needed {
            if !(0..4).any(|dimension| needed.0[dimension] > 0 && total.0[dimension] > 0) {
                return None;
            }
        }
        let reserved_part = available.reserved_class.map(|class| classes[class].resources.as_ref());
        let unreserved_part = unreserved_class
            .filter(|_| unreserved.is_positive_anywhere())
            .map(|class| classes[class].resources.as_ref());
        let parts: [&Resources; 2] = [
            reserved_part.unwrap_or(&self.no_resources),
            unreserved_part.unwrap_or(&self.no_resources),
        ];
        let only_unmeasured =
            reserved_part.is_some_and(|part| !part.is_empty() && available.reserved.is_zero());
        if !total.is_positive_anywhere() && !only_unmeasured {
            return None;
        }
        if !self.allocatable(total, &parts) {
            // A role whose limit leaves less than any minimum can take nothing from any
            // agent: out of this cycle with it, or every later agent would walk past it.
            if !self.allocatable(budget, &[]) {
                self.exhausted_roles.push(node);
            }
            let unlimited_total = available.reserved.plus(available.unreserved);
            let record = &mut self.nodes[node as usize].record;
            if !unlimited_total.fits_within(total) {
                if unreserved_uncapped != unreserved {
                    record.headroom_blocked += 1;
                } else {
                    record.limit_blocked += 1;
                }
            }
            return None;
        }
        for (_, _, client) in &working.node_clients[node as usize] {
            let framework = self.clients[*client as usize].framework;
            if offered_here.contains(&framework) {
                continue;
            }
            let entry = &mut self.frameworks[framework as usize];
            if let Some(filter) = entry.filters.get(agent) {
                if working.now < filter.until && total.fits_within(filter.amounts) {
                    entry.record.filtered_agents += 1;
                    if entry.record.filtered_sample.len() < SAMPLE_SIZE {
                        entry.record.filtered_sample.push(agent);
                    }
                    continue;
                }
            }
            return Some(Choice { client: *client, reserved, unreserved });
        }
        None
    }

    #[allow(clippy::too_many_arguments)]
    fn make_offer(
        &mut self,
        working: &mut Working,
        agent: u32,
        choice: Choice,
        available: &Available,
        classes: &mut [WorkingClass<'_>],
        unreserved_class: Option<usize>,
        offered_here: &mut Vec<u32>,
        offers: &mut Vec<OfferSpec>,
    ) {
        let mut resources = Resources::new();
        if let Some(class) = available.reserved_class {
            let only_unmeasured = classes[class].amounts.is_zero();
            if choice.reserved.is_positive_anywhere() || only_unmeasured {
                resources = take_from(&mut classes[class], choice.reserved);
            }
        }
        if let Some(class) = unreserved_class {
            if choice.unreserved.is_positive_anywhere() {
                let part = take_from(&mut classes[class], choice.unreserved);
                if resources.is_empty() {
                    resources = part;
                } else {
                    resources.add(&part);
                }
            }
        }
        let client = &self.clients[choice.client as usize];
        let (framework, node) = (client.framework, client.node);
        // First, so that a loop over candidates always moves on, even past an empty offer.
        offered_here.push(framework);
        if resources.is_empty() {
            return;
        }
        let Some(role) = self.nodes[node as usize].role.clone() else { return };
        offers.push(OfferSpec {
            framework_id: self.frameworks[framework as usize].id.clone(),
            agent_id: self.agents[agent as usize].id.clone(),
            role,
            resources,
        });
        self.nodes[node as usize].record.offers += 1;
        self.account_offer(
            working,
            choice.client,
            choice.reserved.plus(choice.unreserved),
            choice.unreserved,
        );
    }

    /// Moves an offer's amounts into the working shares and re-sorts what they changed.
    fn account_offer(
        &mut self,
        working: &mut Working,
        client: u32,
        amounts: Amounts,
        unreserved: Amounts,
    ) {
        let framework = self.clients[client as usize].framework;
        let node = self.clients[client as usize].node;
        working.unreserved_free = working.unreserved_free.minus(unreserved);
        working.client_allocation[client as usize] =
            working.client_allocation[client as usize].plus(amounts);
        working.own_allocation[node as usize] = working.own_allocation[node as usize].plus(amounts);
        let mut current = Some(node);
        while let Some(index) = current {
            working.node_allocation[index as usize] =
                working.node_allocation[index as usize].plus(amounts);
            current = self.nodes[index as usize].parent;
        }
        if let Some(old) = working.client_key[client as usize] {
            let clients = &mut working.node_clients[node as usize];
            clients.remove(&old);
            let key = (
                weighted_share(working.client_allocation[client as usize], working.total, 1000),
                old.1,
                old.2,
            );
            clients.insert(key);
            working.client_key[client as usize] = Some(key);
        }
        if let Some(old) = working.own_key[node as usize] {
            let children = &mut working.node_children[node as usize];
            children.remove(&old);
            let key = (
                weighted_share(working.own_allocation[node as usize], working.total, 1000),
                old.1,
                old.2,
            );
            children.insert(key);
            working.own_key[node as usize] = Some(key);
        }
        let mut current = node;
        while current != ROOT {
            let parent = self.nodes[current as usize].parent.unwrap_or(ROOT);
            let index = current as usize;
            if let Some(old) = working.node_key[index] {
                let key = (self.node_share(working, current), old.1, old.2);
                working.node_children[parent as usize].remove(&old);
                working.node_children[parent as usize].insert(key);
                working.node_key[index] = Some(key);
                if let Some(old_quota) = working.quota_key[index].take() {
                    working.quota_roles.remove(&old_quota);
                }
                if self.unmet_guarantee(working, current).is_positive_anywhere() {
                    working.quota_roles.insert(key);
                    working.quota_key[index] = Some(key);
                }
            }
            let headroom =
                self.unmet_guarantee(working, current).max(working.child_headroom[index]);
            let change = headroom.minus(working.headroom[index]);
            working.headroom[index] = headroom;
            working.child_headroom[parent as usize] =
                working.child_headroom[parent as usize].plus(change);
            current = parent;
        }
        working.offers_by_framework[framework as usize] += 1;
        if working.offers_by_framework[framework as usize] >= working.offer_cap {
            let clients = self.frameworks[framework as usize].clients.clone();
            for client in clients {
                self.withdraw_client(working, client);
            }
        }
    }

    /// Takes out of this cycle the roles a walk found at their limit.
    fn withdraw_exhausted_roles(&mut self, working: &mut Working) {
        while let Some(node) = self.exhausted_roles.pop() {
            let clients: Vec<u32> =
                working.node_clients[node as usize].iter().map(|(_, _, client)| *client).collect();
            for client in clients {
                self.withdraw_client(working, client);
            }
        }
    }

    /// Takes a client out of this cycle's orderings, and roles left with nobody with it.
    fn withdraw_client(&self, working: &mut Working, client: u32) {
        let Some(key) = working.client_key[client as usize].take() else { return };
        let node = self.clients[client as usize].node;
        working.node_clients[node as usize].remove(&key);
        if !working.node_clients[node as usize].is_empty() {
            return;
        }
        if let Some(own) = working.own_key[node as usize].take() {
            working.node_children[node as usize].remove(&own);
        }
        let mut current = node;
        while current != ROOT && working.node_children[current as usize].is_empty() {
            let parent = self.nodes[current as usize].parent.unwrap_or(ROOT);
            if let Some(old) = working.node_key[current as usize].take() {
                working.node_children[parent as usize].remove(&old);
            }
            if let Some(old) = working.quota_key[current as usize].take() {
                working.quota_roles.remove(&old);
            }
            current = parent;
        }
    }
}

/// Takes `amounts` of the class's dimensions, and all of its other resources (ports and
/// the like), returning what was taken and leaving the rest in the class.
fn take_from(class: &mut WorkingClass<'_>, amounts: Amounts) -> Resources {
    if class.amounts.fits_within(amounts) {
        class.amounts = Amounts::ZERO;
        return std::mem::replace(&mut class.resources, Cow::Owned(Resources::new())).into_owned();
    }
    let mut budget = amounts;
    let mut taken = Vec::new();
    for resource in class.resources.iter() {
        let dimension = dimension_of(&resource.name);
        match (&resource.value, dimension) {
            (Value::Scalar(amount), Some(dimension)) => {
                let take = amount.milli().min(budget.0[dimension]).max(0);
                budget.0[dimension] -= take;
                if take > 0 {
                    taken.push(Resource {
                        name: resource.name.clone(),
                        reservation: resource.reservation.clone(),
                        value: Value::Scalar(corral_state::Scalar::from_milli(take)),
                    });
                }
            }
            _ => taken.push(resource.clone()),
        }
    }
    let taken = Resources::from_list(taken).unwrap_or_default();
    let rest = class.resources.saturating_sub(&taken);
    class.amounts = Amounts::of_resources(&rest);
    class.resources = Cow::Owned(rest);
    taken
}
