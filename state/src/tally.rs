//! Running totals of what a cluster's metrics report: agents by standing, the oldest
//! heartbeat, tasks by state, and resources (total, allocated and offered, by role and by
//! framework). `apply` keeps them as it changes agents, tasks and offers, so reading them
//! costs the same at ten agents as at ten thousand: a metrics scrape reads them under the
//! state's read lock instead of copying and walking the whole state.
//!
//! Derived data, like an index: never encoded (a snapshot restores them by counting,
//! [`Tally::recount`]) and the same on every replica because `apply` is. Every change of a
//! counted field takes the entity's old contribution out and puts its new one in, through
//! the `add_*`/`remove_*` pairs here; `recount` is what the running totals must always equal
//! (state/tests/state/properties.rs checks that after every command of random sequences).

use std::collections::BTreeMap;

use crate::model::{Agent, AgentMode, Liveness, Offer, Task, TaskState};
use crate::{ClusterState, FrameworkId, Resources, Role, Scalar, Timestamp};

/// The scalar resources the metrics report, summed exactly (thousandths).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Amounts {
    pub cpus: Scalar,
    pub mem: Scalar,
    pub disk: Scalar,
    pub gpus: Scalar,
}

impl Amounts {
    pub fn of(resources: &Resources) -> Amounts {
        Amounts {
            cpus: resources.scalar("cpus"),
            mem: resources.scalar("mem"),
            disk: resources.scalar("disk"),
            gpus: resources.scalar("gpus"),
        }
    }

    pub fn plus(self, other: Amounts) -> Amounts {
        Amounts {
            cpus: self.cpus + other.cpus,
            mem: self.mem + other.mem,
            disk: self.disk + other.disk,
            gpus: self.gpus + other.gpus,
        }
    }

    /// Exact as long as `other` was added before (the sums are integers).
    fn minus(self, other: Amounts) -> Amounts {
        Amounts {
            cpus: self.cpus - other.cpus,
            mem: self.mem - other.mem,
            disk: self.disk - other.disk,
            gpus: self.gpus - other.gpus,
        }
    }

    /// Each amount by name, for shares computed over all of them.
    pub fn named(self) -> [(&'static str, Scalar); 4] {
        [("cpus", self.cpus), ("mem", self.mem), ("disk", self.disk), ("gpus", self.gpus)]
    }
}

/// How many tasks (or offers) hold resources, and how much they hold together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Held {
    pub count: i64,
    pub amounts: Amounts,
}

/// Where an agent stands, as the metrics name it: gone and unreachable first, then the mode
/// of a reachable agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AgentStanding {
    Active,
    Deactivated,
    Draining,
    Drained,
    Unreachable,
    Gone,
}

impl AgentStanding {
    pub const ALL: [AgentStanding; 6] = [
        AgentStanding::Active,
        AgentStanding::Deactivated,
        AgentStanding::Draining,
        AgentStanding::Drained,
        AgentStanding::Unreachable,
        AgentStanding::Gone,
    ];

    pub fn of(agent: &Agent) -> AgentStanding {
        match (&agent.liveness, agent.mode) {
            (Liveness::Gone { .. }, _) => AgentStanding::Gone,
            (Liveness::Unreachable { .. }, _) => AgentStanding::Unreachable,
            (Liveness::Reachable, AgentMode::Active) => AgentStanding::Active,
            (Liveness::Reachable, AgentMode::Deactivated) => AgentStanding::Deactivated,
            (Liveness::Reachable, AgentMode::Draining(_)) => AgentStanding::Draining,
            (Liveness::Reachable, AgentMode::Drained(_)) => AgentStanding::Drained,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AgentStanding::Active => "active",
            AgentStanding::Deactivated => "deactivated",
            AgentStanding::Draining => "draining",
            AgentStanding::Drained => "drained",
            AgentStanding::Unreachable => "unreachable",
            AgentStanding::Gone => "gone",
        }
    }
}

/// In or out of the totals: the two halves of every change.
#[derive(Clone, Copy)]
enum Way {
    In,
    Out,
}

impl Way {
    fn count(self) -> i64 {
        match self {
            Way::In => 1,
            Way::Out => -1,
        }
    }

    fn apply(self, sum: Amounts, amounts: Amounts) -> Amounts {
        match self {
            Way::In => sum.plus(amounts),
            Way::Out => sum.minus(amounts),
        }
    }
}

/// Adds (or takes out) one count of `key`; a key counted zero times is not kept, so the
/// running map and a recount hold the same keys.
fn count<K: Ord + Copy>(map: &mut BTreeMap<K, i64>, key: K, way: Way) {
    let entry = map.entry(key).or_default();
    *entry += way.count();
    if *entry == 0 {
        map.remove(&key);
    }
}

fn hold<K: Ord + Clone>(map: &mut BTreeMap<K, Held>, key: &K, amounts: Amounts, way: Way) {
    let held = map.entry(key.clone()).or_default();
    held.count += way.count();
    held.amounts = way.apply(held.amounts, amounts);
    if held.count == 0 {
        map.remove(key);
    }
}

/// The running totals; see the module documentation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    agents: BTreeMap<AgentStanding, i64>,
    /// Resources of every agent not gone.
    agent_total: Amounts,
    /// Last heartbeats of reachable agents, with how many agents share each.
    heartbeats: BTreeMap<Timestamp, i64>,
    tasks: BTreeMap<TaskState, i64>,
    /// Tasks that are not terminal, by role and by framework.
    allocated_by_role: BTreeMap<Role, Held>,
    allocated_by_framework: BTreeMap<FrameworkId, Held>,
    /// Outstanding offers, by role and by framework.
    offered_by_role: BTreeMap<Role, Held>,
    offered_by_framework: BTreeMap<FrameworkId, Held>,
}

impl Tally {
    /// The totals counted from scratch: what the running ones must equal.
    pub fn recount(state: &ClusterState) -> Tally {
        let mut tally = Tally::default();
        for agent in state.agents().values() {
            tally.add_agent(agent);
        }
        for task in state.tasks() {
            tally.add_task(task);
        }
        for offer in state.offers().values() {
            tally.add_offer(offer);
        }
        tally
    }

    pub fn agents(&self, standing: AgentStanding) -> i64 {
        self.agents.get(&standing).copied().unwrap_or(0)
    }

    /// Resources of every agent that is not gone.
    pub fn agent_total(&self) -> Amounts {
        self.agent_total
    }

    /// The oldest last heartbeat of a reachable agent (none without reachable agents).
    pub fn oldest_heartbeat(&self) -> Option<Timestamp> {
        self.heartbeats.keys().next().copied()
    }

    /// Tasks the master tracks (not those it has completed) in `state`.
    pub fn tasks(&self, state: TaskState) -> i64 {
        self.tasks.get(&state).copied().unwrap_or(0)
    }

    /// What tasks that are not terminal hold, by role (roles without such tasks left out).
    pub fn allocated_by_role(&self) -> &BTreeMap<Role, Held> {
        &self.allocated_by_role
    }

    pub fn allocated_by_framework(&self) -> &BTreeMap<FrameworkId, Held> {
        &self.allocated_by_framework
    }

    /// What outstanding offers hold, by role (roles without offers left out).
    pub fn offered_by_role(&self) -> &BTreeMap<Role, Held> {
        &self.offered_by_role
    }

    pub fn offered_by_framework(&self) -> &BTreeMap<FrameworkId, Held> {
        &self.offered_by_framework
    }

    pub(crate) fn add_agent(&mut self, agent: &Agent) {
        self.agent(agent, Way::In);
    }

    pub(crate) fn remove_agent(&mut self, agent: &Agent) {
        self.agent(agent, Way::Out);
    }

    fn agent(&mut self, agent: &Agent, way: Way) {
        count(&mut self.agents, AgentStanding::of(agent), way);
        if !agent.is_gone() {
            self.agent_total = way.apply(self.agent_total, Amounts::of(&agent.total));
        }
        if agent.liveness == Liveness::Reachable {
            count(&mut self.heartbeats, agent.last_heartbeat, way);
        }
    }

    pub(crate) fn add_task(&mut self, task: &Task) {
        self.task(task, Way::In);
    }

    pub(crate) fn remove_task(&mut self, task: &Task) {
        self.task(task, Way::Out);
    }

    fn task(&mut self, task: &Task, way: Way) {
        count(&mut self.tasks, task.state, way);
        if task.state.is_terminal() {
            return;
        }
        let amounts = Amounts::of(task.resources());
        hold(&mut self.allocated_by_role, &task.role, amounts, way);
        hold(&mut self.allocated_by_framework, &task.framework_id, amounts, way);
    }

    pub(crate) fn add_offer(&mut self, offer: &Offer) {
        self.offer(offer, Way::In);
    }

    pub(crate) fn remove_offer(&mut self, offer: &Offer) {
        self.offer(offer, Way::Out);
    }

    fn offer(&mut self, offer: &Offer, way: Way) {
        let amounts = Amounts::of(&offer.resources);
        hold(&mut self.offered_by_role, &offer.role, amounts, way);
        hold(&mut self.offered_by_framework, &offer.framework_id, amounts, way);
    }
}
