//! Properties over random clusters driven through real entries: no agent over-offered,
//! reservations kept to their role, filters honoured, limits kept, guarantees met, DRF order
//! respected, and the same state and time giving the same offers.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use corral_allocator::{Allocation, Allocator, AllocatorConfig};
use corral_state::model::{Offer, TaskSource, TaskState, TaskStatus};
use corral_state::{
    Actor, AgentId, Command, FrameworkId, Resources, Scalar, Timestamp, UpdateUuid,
};
use proptest::prelude::*;

use super::support::{res, role, Cluster};

const ROLES: [&str; 5] = ["a", "b", "a/x", "a/y", "c"];

#[derive(Clone, Debug)]
struct AgentShape {
    cpus: u32,
    mem_gb: u32,
    reserved: Option<(usize, u32)>,
    ports: bool,
}

#[derive(Clone, Debug)]
struct QuotaShape {
    role: usize,
    guarantee_cpus: u32,
    limit_cpus: Option<u32>,
    limit_mem_gb: Option<u32>,
}

#[derive(Clone, Debug)]
enum Step {
    /// Run a cycle; each offer is answered by the response picked by `seed`.
    Cycle {
        seed: u64,
    },
    Advance {
        seconds: u64,
    },
    Suppress {
        framework: usize,
    },
    Revive {
        framework: usize,
    },
    FinishATask {
        seed: u64,
    },
    Drain {
        agent: usize,
    },
    Deactivate {
        agent: usize,
    },
    Reactivate {
        agent: usize,
    },
}

fn agent_shape() -> impl Strategy<Value = AgentShape> {
    (1u32..=16, 1u32..=16, proptest::option::of((0..ROLES.len(), 1u32..=4)), any::<bool>())
        .prop_map(|(cpus, mem_gb, reserved, ports)| AgentShape { cpus, mem_gb, reserved, ports })
}

fn framework_roles() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::btree_set(0..ROLES.len(), 1..=2).prop_map(|set| set.into_iter().collect())
}

fn quota_shape() -> impl Strategy<Value = QuotaShape> {
    (0..ROLES.len(), 0u32..=6, proptest::option::of(1u32..=12), proptest::option::of(1u32..=24))
        .prop_map(|(role, guarantee_cpus, limit_cpus, limit_mem_gb)| QuotaShape {
            role,
            guarantee_cpus,
            limit_cpus: limit_cpus.map(|limit| limit.max(guarantee_cpus)),
            limit_mem_gb,
        })
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => any::<u64>().prop_map(|seed| Step::Cycle { seed }),
        3 => (0u64..8).prop_map(|seconds| Step::Advance { seconds }),
        1 => (0usize..5).prop_map(|framework| Step::Suppress { framework }),
        1 => (0usize..5).prop_map(|framework| Step::Revive { framework }),
        2 => any::<u64>().prop_map(|seed| Step::FinishATask { seed }),
        1 => (0usize..6).prop_map(|agent| Step::Drain { agent }),
        1 => (0usize..6).prop_map(|agent| Step::Deactivate { agent }),
        1 => (0usize..6).prop_map(|agent| Step::Reactivate { agent }),
    ]
}

fn agent_resources(shape: &AgentShape) -> String {
    let mut text = format!("cpus:{};mem:{}", shape.cpus, shape.mem_gb * 1024);
    if let Some((role_index, cpus)) = shape.reserved {
        text.push_str(&format!(
            ";cpus({}):{cpus};mem({}):1024",
            ROLES[role_index], ROLES[role_index]
        ));
    }
    if shape.ports {
        text.push_str(";ports:[31000-31999]");
    }
    text
}

struct World {
    cluster: Cluster,
    agents: Vec<AgentId>,
    frameworks: Vec<FrameworkId>,
    limits: Vec<(String, Resources)>,
}

impl World {
    fn build(
        agents: &[AgentShape],
        frameworks: &[Vec<usize>],
        quotas: &[QuotaShape],
        offer_cap: Option<u32>,
    ) -> World {
        let config =
            AllocatorConfig { max_offers_per_framework: offer_cap, ..AllocatorConfig::default() };
        let mut cluster = Cluster::new(config);
        let mut limits = Vec::new();
        let mut seen = BTreeSet::new();
        for quota in quotas.iter().filter(|quota| seen.insert(quota.role)) {
            let name = ROLES[quota.role];
            let guarantees = if quota.guarantee_cpus > 0 {
                format!("cpus:{}", quota.guarantee_cpus)
            } else {
                String::new()
            };
            let mut limit_text = Vec::new();
            if let Some(cpus) = quota.limit_cpus {
                limit_text.push(format!("cpus:{cpus}"));
            }
            if let Some(mem_gb) = quota.limit_mem_gb {
                limit_text.push(format!("mem:{}", mem_gb * 1024));
            }
            let limit_text = limit_text.join(";");
            cluster.set_quota(name, &guarantees, &limit_text);
            limits.push((name.to_owned(), res(&limit_text)));
        }
        let agents =
            agents.iter().map(|shape| cluster.add_agent(&agent_resources(shape))).collect();
        let frameworks = frameworks
            .iter()
            .enumerate()
            .map(|(number, roles)| {
                let names: Vec<&str> = roles.iter().map(|index| ROLES[*index]).collect();
                cluster.subscribe(&format!("framework-{number}"), &names)
            })
            .collect();
        World { cluster, agents, frameworks, limits }
    }

    fn run(&mut self, step: &Step) {
        match step {
            Step::Cycle { seed } => self.cycle(*seed),
            Step::Advance { seconds } => self.cluster.advance(Duration::from_secs(*seconds)),
            Step::Suppress { framework } => {
                let Some(framework_id) = self.frameworks.get(*framework).cloned() else { return };
                self.cluster.suppress(&framework_id, &[]);
            }
            Step::Revive { framework } => {
                let Some(framework_id) = self.frameworks.get(*framework).cloned() else { return };
                self.cluster.revive(&framework_id, &[]);
            }
            Step::FinishATask { seed } => self.finish_a_task(*seed),
            Step::Drain { agent } => self.operate(*agent, |agent_id| Command::DrainAgent {
                agent_id,
                max_grace_period: None,
                mark_gone: false,
            }),
            Step::Deactivate { agent } => {
                self.operate(*agent, |agent_id| Command::DeactivateAgent { agent_id })
            }
            Step::Reactivate { agent } => {
                self.operate(*agent, |agent_id| Command::ReactivateAgent { agent_id })
            }
        }
    }

    /// Operator commands that may be refused (draining twice, say); refusals are fine.
    fn operate(&mut self, agent: usize, command: impl Fn(AgentId) -> Command) {
        let Some(agent_id) = self.agents.get(agent).cloned() else { return };
        self.cluster.apply(Actor::Operator { principal: None }, command(agent_id));
    }

    fn finish_a_task(&mut self, seed: u64) {
        let live: Vec<(FrameworkId, corral_state::TaskId, AgentId)> = self
            .cluster
            .state
            .tasks()
            .filter(|task| !task.state.is_terminal())
            .map(|task| (task.framework_id.clone(), task.id().clone(), task.agent_id().clone()))
            .collect();
        if live.is_empty() {
            return;
        }
        let (framework_id, task_id, agent_id) = live[(seed % live.len() as u64) as usize].clone();
        let status = TaskStatus {
            task_id,
            state: TaskState::Finished,
            message: None,
            source: TaskSource::Executor,
            reason: None,
            healthy: None,
            agent_id: Some(agent_id.clone()),
            executor_id: None,
            timestamp: self.cluster.clock,
            uuid: Some(UpdateUuid::new(format!("u{seed}"))),
            exit_code: Some(0),
        };
        self.cluster.apply(Actor::Agent(agent_id), Command::UpdateStatus { framework_id, status });
    }

    fn cycle(&mut self, seed: u64) {
        let allocation = self.cluster.decide();
        self.check_allocation(&allocation);
        let offers = self.cluster.apply_offers(allocation.offers);
        self.check_limits();
        for (position, offer) in offers.iter().enumerate() {
            self.respond(offer, seed.rotate_left(position as u32 * 7) % 6);
        }
    }

    fn respond(&mut self, offer: &Offer, choice: u64) {
        match choice {
            0 => {
                self.cluster.launch_all(offer);
            }
            1 => {
                let cpus = offer.resources.scalar("cpus");
                let mem = offer.resources.scalar("mem");
                if cpus.milli() >= 2 && mem.milli() >= 2 {
                    let half = Resources::from_list(vec![
                        corral_state::Resource::scalar(
                            "cpus",
                            Scalar::from_milli(cpus.milli() / 2),
                        ),
                        corral_state::Resource::scalar("mem", Scalar::from_milli(mem.milli() / 2)),
                    ])
                    .expect("half parses");
                    // Unreserved halves may not exist when the offer is all reserved.
                    if offer.resources.contains(&half) {
                        self.cluster.launch(offer, half);
                        return;
                    }
                }
                self.cluster.decline(offer, Duration::ZERO);
            }
            2 => self.cluster.decline(offer, Duration::from_secs(2)),
            3 => self.cluster.decline(offer, Duration::from_secs(5)),
            4 => self.cluster.decline(offer, Duration::from_secs(30)),
            _ => {}
        }
    }

    fn check_allocation(&self, allocation: &Allocation) {
        let state = &self.cluster.state;
        let now = self.cluster.clock;
        let mut offered: BTreeMap<&AgentId, Resources> = BTreeMap::new();
        for offer in &allocation.offers {
            offered.entry(&offer.agent_id).or_default().add(&offer.resources);
            let framework =
                state.framework(&offer.framework_id).expect("offers go to known frameworks");
            assert!(framework.is_connected(), "offer to a disconnected framework");
            assert!(
                framework.info.roles.contains(&offer.role),
                "offer for a role the framework lacks"
            );
            assert!(
                !framework.suppressed_roles.contains(&offer.role),
                "offer for a suppressed role"
            );
            for resource in offer.resources.iter() {
                assert!(
                    resource.reservation.is_allocatable_to(&offer.role),
                    "{resource:?} reached role {}",
                    offer.role
                );
            }
            if let Some(filter) = framework.filters.get(&offer.agent_id) {
                let active = now < filter.until;
                assert!(
                    !(active && filter.resources.contains(&offer.resources)),
                    "re-offered a declined agent before its filter expired"
                );
            }
            let agent = state.agent(&offer.agent_id).expect("offers are on known agents");
            assert!(
                agent.is_offerable(),
                "offer on an agent that is draining, deactivated or gone"
            );
        }
        if let Some(cap) = self.cluster.allocator.config().max_offers_per_framework {
            let mut per_framework: BTreeMap<&FrameworkId, u32> = BTreeMap::new();
            for offer in &allocation.offers {
                *per_framework.entry(&offer.framework_id).or_default() += 1;
            }
            assert!(
                per_framework.values().all(|count| *count <= cap),
                "a framework got more than {cap} offers"
            );
        }
        for (agent_id, resources) in offered {
            let free = state.agent(agent_id).expect("known agent").free();
            assert!(
                free.checked_sub(&resources).is_ok(),
                "offered {resources} of {agent_id} with only {free} free"
            );
        }
        self.cluster.assert_mirror_matches_state();
        let config = self.cluster.allocator.config().clone();
        let rebuilt = Allocator::from_state(config, state).allocate(state, now);
        assert_eq!(rebuilt.offers, allocation.offers, "a rebuilt allocator decided differently");
        let mut again = self.cluster.allocator.clone();
        assert_eq!(
            again.allocate(state, now),
            *allocation,
            "the same state and time decided differently"
        );
    }

    fn check_limits(&self) {
        for (role_name, limits) in &self.limits {
            let consumed = self.cluster.consumed_by(role_name);
            for (name, limit) in limits.scalar_quantities().iter() {
                assert!(
                    consumed.scalar(name) <= limit,
                    "{role_name} consumed {} {name}, over its limit {limit}",
                    consumed.scalar(name)
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn offers_respect_resources_reservations_filters_limits_and_are_deterministic(
        agents in proptest::collection::vec(agent_shape(), 1..=6),
        frameworks in proptest::collection::vec(framework_roles(), 1..=5),
        quotas in proptest::collection::vec(quota_shape(), 0..=3),
        offer_cap in proptest::option::of(1u32..=3),
        steps in proptest::collection::vec(step(), 1..=14),
    ) {
        let mut world = World::build(&agents, &frameworks, &quotas, offer_cap);
        for step in &steps {
            world.run(step);
        }
        world.cycle(0);
    }

    #[test]
    fn guarantees_are_met_whenever_the_cluster_has_the_resources(
        agents in proptest::collection::vec((1u32..=16, 1u32..=16), 1..=6),
        guarantees in proptest::collection::vec((0u32..=6, 0u32..=8), 1..=3),
    ) {
        let mut cluster = Cluster::default();
        let mut total_cpus = 0;
        let mut total_mem_gb = 0;
        for (cpus, mem_gb) in &agents {
            cluster.add_agent(&format!("cpus:{cpus};mem:{}", mem_gb * 1024));
            total_cpus += cpus;
            total_mem_gb += mem_gb;
        }
        // Subscribed first, so it would win every tie.
        cluster.subscribe("greedy", &["greedy"]);
        let wanted_cpus: u32 = guarantees.iter().map(|(cpus, _)| cpus).sum();
        let wanted_mem_gb: u32 = guarantees.iter().map(|(_, mem_gb)| mem_gb).sum();
        prop_assume!(wanted_cpus <= total_cpus && wanted_mem_gb <= total_mem_gb);
        let mut roles = Vec::new();
        for (number, (cpus, mem_gb)) in guarantees.iter().enumerate() {
            let name = format!("quota-{number}");
            let mut text = Vec::new();
            if *cpus > 0 {
                text.push(format!("cpus:{cpus}"));
            }
            if *mem_gb > 0 {
                text.push(format!("mem:{}", mem_gb * 1024));
            }
            cluster.set_quota(&name, &text.join(";"), "");
            cluster.subscribe(&name, &[&name]);
            roles.push((name, *cpus, *mem_gb));
        }

        for _ in 0..2 {
            for offer in cluster.cycle() {
                cluster.launch_all(&offer);
            }
        }

        for (name, cpus, mem_gb) in roles {
            let consumed = cluster.consumed_by(&name);
            prop_assert!(consumed.scalar("cpus") >= Scalar::from_units(i64::from(cpus)), "{name} got {consumed}, guaranteed {cpus} cpus");
            prop_assert!(consumed.scalar("mem") >= Scalar::from_units(i64::from(mem_gb) * 1024), "{name} got {consumed}, guaranteed {mem_gb} GB");
        }
    }

    #[test]
    fn each_offer_goes_to_the_lowest_dominant_share_that_may_take_it(
        agents in proptest::collection::vec((1u32..=16, 1u32..=16), 1..=8),
        framework_count in 1usize..=5,
        rounds in proptest::collection::vec(any::<u64>(), 1..=6),
    ) {
        let mut cluster = Cluster::default();
        for (cpus, mem_gb) in &agents {
            cluster.add_agent(&format!("cpus:{cpus};mem:{}", mem_gb * 1024));
        }
        for number in 0..framework_count {
            cluster.subscribe(&format!("framework-{number}"), &["shared"]);
        }
        for seed in rounds {
            let allocation = cluster.decide();
            check_drf_order(&cluster, &allocation);
            let offers = cluster.apply_offers(allocation.offers);
            for (position, offer) in offers.iter().enumerate() {
                match seed.rotate_left(position as u32 * 5) % 3 {
                    0 => {
                        let half = format!("cpus:{};mem:{}", Scalar::from_milli(offer.resources.scalar("cpus").milli() / 2), Scalar::from_milli(offer.resources.scalar("mem").milli() / 2));
                        let half = res(&half);
                        if half.scalar("cpus").is_zero() || half.scalar("mem").is_zero() {
                            cluster.decline(offer, Duration::ZERO);
                        } else {
                            cluster.launch(offer, half);
                        }
                    }
                    1 => cluster.decline(offer, Duration::from_secs(5)),
                    _ => cluster.decline(offer, Duration::ZERO),
                }
            }
            cluster.advance(Duration::from_secs(1));
        }
    }
}

/// Replays a cycle's offers in order: each must go to a framework whose dominant share,
/// counting the offers already made in the cycle, is no larger than that of any other
/// framework that could have taken the same resources.
fn check_drf_order(cluster: &Cluster, allocation: &Allocation) {
    let state = &cluster.state;
    let now: Timestamp = cluster.clock;
    let mut total = Resources::new();
    for agent in state.agents().values().filter(|agent| !agent.is_gone()) {
        total.add(&agent.total);
    }
    let mut used: BTreeMap<FrameworkId, Resources> = BTreeMap::new();
    for framework_id in state.frameworks().keys() {
        used.insert(framework_id.clone(), Resources::new());
    }
    for task in state.tasks().filter(|task| !task.state.is_terminal()) {
        used.entry(task.framework_id.clone()).or_default().add(task.resources());
    }
    for offer in state.offers().values() {
        used.entry(offer.framework_id.clone()).or_default().add(&offer.resources);
    }
    let share = |resources: &Resources| -> f64 {
        ["cpus", "mem", "disk", "gpus"]
            .iter()
            .filter(|name| !total.scalar(name).is_zero())
            .map(|name| resources.scalar(name).as_f64() / total.scalar(name).as_f64())
            .fold(0.0, f64::max)
    };
    let mut offered_on: BTreeSet<(AgentId, FrameworkId)> = BTreeSet::new();
    for offer in &allocation.offers {
        let winner = share(&used[&offer.framework_id]);
        for (framework_id, framework) in state.frameworks() {
            if framework_id == &offer.framework_id
                || !framework.is_connected()
                || framework.suppressed_roles.contains(&role("shared"))
                || offered_on.contains(&(offer.agent_id.clone(), framework_id.clone()))
            {
                continue;
            }
            let filtered = framework.filters.get(&offer.agent_id).is_some_and(|filter| {
                now < filter.until && filter.resources.contains(&offer.resources)
            });
            if filtered {
                continue;
            }
            let other = share(&used[framework_id]);
            assert!(
                winner <= other + 1e-9,
                "{} (share {winner}) got {} on {} before {framework_id} (share {other})",
                offer.framework_id,
                offer.resources,
                offer.agent_id
            );
        }
        offered_on.insert((offer.agent_id.clone(), offer.framework_id.clone()));
        used.entry(offer.framework_id.clone()).or_default().add(&offer.resources);
    }
}
