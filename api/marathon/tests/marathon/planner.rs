//! The built-in service scheduler's planner, given real states built by applying commands:
//! placement by constraints, offer verdicts, scaling, rolling replacement, launch delays,
//! deleted apps, suppress and revive. And the constraint operators on their own.

use std::collections::BTreeMap;
use std::time::Duration;

use corral_marathon::constraints::{AppConstraints, Placement};
use corral_marathon::offers::NoMatchReason;
use corral_marathon::planner::{self, AgentLaunch, OfferVerdict, Plan, Verdict};
use corral_marathon::{parse_app, AppDefinition, Constraint};
use corral_state::model::{
    AgentInfo, Attributes, Filters, MachineId, MaintenanceWindow, TaskState, Unavailability,
};
use corral_state::{
    Actor, AgentId, AppId, Command, DeploymentId, Event, Force, KillScaling, OfferId, PutMode,
    Ranges, Resources, Role, ServiceLaunch, TaskId, Timestamp, Wipe,
};
use corral_testkit::state::StateBuilder;
use serde_json::{json, Value};

const AGENT_RESOURCES: &str = "cpus:4;mem:4096;disk:1000;ports:[31000-31009]";

/// The shared state builder, plus what planning needs: definitions, the planner's task ids,
/// carrying a plan out as the scheduler would.
struct World {
    builder: StateBuilder,
    task_ids: u64,
}

impl std::ops::Deref for World {
    type Target = StateBuilder;
    fn deref(&self) -> &StateBuilder {
        &self.builder
    }
}

impl std::ops::DerefMut for World {
    fn deref_mut(&mut self) -> &mut StateBuilder {
        &mut self.builder
    }
}

impl World {
    fn new() -> World {
        let mut builder = StateBuilder::default();
        builder.clock = Timestamp::from_secs(1_000);
        World { builder, task_ids: 0 }
    }

    fn ok(&mut self, actor: Actor, command: Command) -> Vec<Event> {
        self.builder.accepted(actor, command)
    }

    fn agent(&mut self, hostname: &str, attributes: &str) -> AgentId {
        let info = AgentInfo {
            hostname: hostname.to_owned(),
            address: format!("10.0.0.{}:5051", self.state.agents().len() + 1),
            attributes: Attributes::parse(attributes).expect("test attributes parse"),
        };
        let resources = AGENT_RESOURCES.parse().expect("test resources parse");
        self.builder.register_agent(info, resources)
    }

    /// Creates or replaces an app from its Marathon JSON.
    fn put(&mut self, app: Value) {
        let definition = parse_app(app.to_string().as_bytes()).expect("test app is valid");
        let number = self.next_number();
        let command = Command::PutApp {
            app_id: AppId::new(&definition.id),
            spec: definition.spec(),
            definition: definition.stored_definition(),
            mode: PutMode::CreateOrReplace,
            force: Force::Yes,
            deployment_id: DeploymentId::new(format!("d{number}")),
        };
        self.ok(operator(), command);
    }

    fn framework_id(&self) -> corral_state::FrameworkId {
        self.state.service_framework_id()
    }

    fn offer(&mut self, agent_id: &AgentId, role: &str, resources: &str) -> OfferId {
        let resources = resources.parse().expect("test resources parse");
        self.offer_resources(agent_id, role, resources)
    }

    fn offer_resources(&mut self, agent_id: &AgentId, role: &str, resources: Resources) -> OfferId {
        let framework_id = self.framework_id();
        let role = Role::parse(role).expect("test role");
        self.builder.offer_to(framework_id, agent_id, role, resources)
    }

    /// Offers whatever of the agent is free, unreserved, for role `*`.
    fn offer_free(&mut self, agent_id: &AgentId) -> OfferId {
        let free = self.state.agent(agent_id).expect("known agent").free();
        self.offer_resources(agent_id, "*", free)
    }

    fn definitions(&self) -> BTreeMap<AppId, AppDefinition> {
        self.state
            .services()
            .apps
            .iter()
            .map(|(app_id, app)| {
                let definition = AppDefinition::from_stored(&app.definition, app.spec.instances)
                    .expect("stored definition parses");
                (app_id.clone(), definition)
            })
            .collect()
    }

    /// Plans a round; task ids are `{app}.{n}`, counting across rounds.
    fn plan(&mut self) -> Plan {
        let definitions = self.definitions();
        let task_ids = &mut self.task_ids;
        planner::plan(&self.builder.state, &definitions, self.builder.clock, &mut |app_id| {
            *task_ids += 1;
            TaskId::new(format!("{}.{}", app_id.safe_name(), task_ids))
        })
    }

    /// Proposes what a plan says, as the scheduler would, insisting the log takes it all.
    fn carry_out(&mut self, plan: &Plan) {
        let framework_id = self.framework_id();
        if !plan.kills.is_empty() {
            let number = self.next_number();
            let kill = Command::KillServiceTasks {
                task_ids: plan.kills.clone(),
                scaling: KillScaling::Replace,
                wipe: Wipe::Keep,
                force: Force::Yes,
                deployment_id: DeploymentId::new(format!("kill{number}")),
            };
            self.ok(Actor::Leader, kill);
        }
        for launch in &plan.launches {
            let command = Command::LaunchServiceTasks {
                offer_ids: launch.offer_ids.clone(),
                launches: launch.launches.clone(),
                filters: Filters { refuse: Duration::ZERO },
            };
            let events = self.ok(Actor::Leader, command);
            let added = events.iter().filter(|e| matches!(e, Event::TaskAdded { .. })).count();
            assert_eq!(added, launch.launches.len(), "not every task was added: {events:?}");
        }
        if !plan.declines.is_empty() {
            let offer_ids = plan.declines.clone();
            let filters = Filters { refuse: Duration::ZERO };
            let framework_id = framework_id.clone();
            self.ok(Actor::Leader, Command::Decline { framework_id, offer_ids, filters });
        }
        if !plan.suppress.is_empty() {
            let roles = plan.suppress.clone();
            let framework_id = framework_id.clone();
            self.ok(Actor::Leader, Command::Suppress { framework_id, roles });
        }
        if !plan.revive.is_empty() {
            let roles = plan.revive.clone();
            self.ok(Actor::Leader, Command::Revive { framework_id, roles });
        }
    }

    fn report(&mut self, task_id: &str, state: TaskState, healthy: Option<bool>) {
        let framework_id = self.framework_id();
        self.builder.report(framework_id, &TaskId::new(task_id), state, healthy);
    }

    fn running(&mut self, task_id: &str) {
        self.report(task_id, TaskState::Running, None);
    }

    /// Offers every agent's free resources, plans, carries the plan out and reports every
    /// new task RUNNING (healthy with `healthy`); returns the plan.
    fn launch_round(&mut self, agents: &[&AgentId], healthy: Option<bool>) -> Plan {
        for agent_id in agents {
            self.offer_free(agent_id);
        }
        let plan = self.plan();
        self.carry_out(&plan);
        for launch in plan.launches.iter().flat_map(|launch| &launch.launches) {
            let task_id = launch.task_info.task_id.as_str().to_owned();
            self.report(&task_id, TaskState::Running, healthy);
        }
        plan
    }

    /// The launch the planner should produce: the app's current definition, on `agent_id`,
    /// taking host port `port`, with the offer's unreserved resources.
    fn launch(&self, app: &str, agent_id: &AgentId, task_id: &str, port: u64) -> ServiceLaunch {
        let app_id = AppId::new(app);
        let stored = self.state.services().app(&app_id).expect("known app");
        let definition = AppDefinition::from_stored(&stored.definition, stored.spec.instances)
            .expect("stored definition parses");
        let task_info = definition
            .task_info(agent_id.clone(), TaskId::new(task_id), &Ranges::single(port, port))
            .expect("task info builds");
        ServiceLaunch { app_id, config_version: stored.config_version, task_info }
    }

    fn hostname(&self, agent_id: &AgentId) -> String {
        self.state.agent(agent_id).expect("known agent").info.hostname.clone()
    }

    fn used(&self, app: &str, agent_id: &AgentId, offer_id: &OfferId) -> OfferVerdict {
        OfferVerdict {
            app_id: AppId::new(app),
            agent_id: agent_id.clone(),
            hostname: self.hostname(agent_id),
            offer_ids: vec![offer_id.clone()],
            verdict: Verdict::Used,
        }
    }

    fn unused(
        &self,
        app: &str,
        agent_id: &AgentId,
        offer_id: &OfferId,
        reasons: &[NoMatchReason],
        details: &[&str],
    ) -> OfferVerdict {
        OfferVerdict {
            app_id: AppId::new(app),
            agent_id: agent_id.clone(),
            hostname: self.hostname(agent_id),
            offer_ids: vec![offer_id.clone()],
            verdict: Verdict::Unused {
                reasons: reasons.to_vec(),
                details: details.iter().map(|detail| (*detail).to_owned()).collect(),
            },
        }
    }
}

fn operator() -> Actor {
    Actor::Operator { principal: Some("ops".to_owned()) }
}

fn task(id: &str) -> TaskId {
    TaskId::new(id)
}

fn star() -> Role {
    Role::default_role()
}

fn agent_launch(
    agent_id: &AgentId,
    offer_id: &OfferId,
    launches: Vec<ServiceLaunch>,
) -> AgentLaunch {
    AgentLaunch {
        agent_id: agent_id.clone(),
        role: star(),
        offer_ids: vec![offer_id.clone()],
        launches,
    }
}

fn web(instances: u32, extra: Value) -> Value {
    let mut app = json!({"id": "/web", "cmd": "serve", "cpus": 1, "mem": 128, "disk": 0, "instances": instances});
    for (key, value) in extra.as_object().expect("extra is an object") {
        app[key] = value.clone();
    }
    app
}

#[test]
fn unique_hostname_spreads_instances_and_explains_the_taken_host() {
    let mut world = World::new();
    let a = world.agent("host-a", "");
    let b = world.agent("host-b", "");
    world.put(web(3, json!({"constraints": [["hostname", "UNIQUE"]]})));
    let offer_a = world.offer_free(&a);
    let offer_b = world.offer_free(&b);

    let plan = world.plan();

    let expected = Plan {
        kills: vec![],
        launches: vec![
            agent_launch(&a, &offer_a, vec![world.launch("/web", &a, "web.1", 31000)]),
            agent_launch(&b, &offer_b, vec![world.launch("/web", &b, "web.2", 31000)]),
        ],
        declines: vec![],
        suppress: vec![],
        revive: vec![],
        verdicts: vec![world.used("/web", &a, &offer_a), world.used("/web", &b, &offer_b)],
    };
    assert_eq!(plan, expected);
    world.carry_out(&plan);
    world.running("web.1");

    // The third instance has no host left: each offer is declined, and says why.
    let offer_a = world.offer_free(&a);
    let plan = world.plan();
    let expected = Plan {
        declines: vec![offer_a.clone()],
        verdicts: vec![world.unused(
            "/web",
            &a,
            &offer_a,
            &[NoMatchReason::UnfulfilledConstraint],
            &["hostname:UNIQUE is already used on host-a"],
        )],
        ..Plan::default()
    };
    assert_eq!(plan, expected);
}

#[test]
fn several_instances_share_one_agent_taking_distinct_ports() {
    let mut world = World::new();
    let a = world.agent("host-a", "");
    world.put(web(2, json!({})));
    let offer_a = world.offer_free(&a);

    let plan = world.plan();

    let launches =
        vec![world.launch("/web", &a, "web.1", 31000), world.launch("/web", &a, "web.2", 31001)];
    assert_eq!(plan.launches, vec![agent_launch(&a, &offer_a, launches)]);
    assert_eq!(plan.verdicts, vec![world.used("/web", &a, &offer_a)]);
    assert_eq!(plan.declines, Vec::<OfferId>::new());
    world.carry_out(&plan);
}

#[test]
fn max_per_caps_instances_per_attribute_value() {
    let mut world = World::new();
    let a = world.agent("host-a", "rack:r1");
    let b = world.agent("host-b", "rack:r1");
    let c = world.agent("host-c", "rack:r2");
    world.put(web(3, json!({"constraints": [["rack", "MAX_PER", "1"]]})));
    let offer_a = world.offer_free(&a);
    let offer_b = world.offer_free(&b);
    let offer_c = world.offer_free(&c);

    let plan = world.plan();

    let expected = Plan {
        launches: vec![
            agent_launch(&a, &offer_a, vec![world.launch("/web", &a, "web.1", 31000)]),
            agent_launch(&c, &offer_c, vec![world.launch("/web", &c, "web.2", 31000)]),
        ],
        declines: vec![offer_b.clone()],
        verdicts: vec![
            world.used("/web", &a, &offer_a),
            world.unused(
                "/web",
                &b,
                &offer_b,
                &[NoMatchReason::UnfulfilledConstraint],
                &["rack:MAX_PER:1 already has 1 instances on r1"],
            ),
            world.used("/web", &c, &offer_c),
        ],
        ..Plan::default()
    };
    assert_eq!(plan, expected);
}

#[test]
fn like_and_missing_attributes_rule_agents_out() {
    let mut world = World::new();
    let a = world.agent("host-a", "zone:east");
    let b = world.agent("host-b", "");
    let c = world.agent("host-c", "zone:west-2");
    world.put(web(1, json!({"constraints": [["zone", "LIKE", "west-[0-9]"]]})));
    let offer_a = world.offer_free(&a);
    let offer_b = world.offer_free(&b);
    let offer_c = world.offer_free(&c);

    let plan = world.plan();

    let expected = Plan {
        launches: vec![agent_launch(&c, &offer_c, vec![world.launch("/web", &c, "web.1", 31000)])],
        declines: vec![offer_a.clone(), offer_b.clone()],
        verdicts: vec![
            world.unused(
                "/web",
                &a,
                &offer_a,
                &[NoMatchReason::UnfulfilledConstraint],
                &["zone:LIKE:west-[0-9] does not match east"],
            ),
            world.unused(
                "/web",
                &b,
                &offer_b,
                &[NoMatchReason::UnfulfilledConstraint],
                &["zone:LIKE:west-[0-9] cannot hold: the agent has no attribute zone"],
            ),
            world.used("/web", &c, &offer_c),
        ],
        ..Plan::default()
    };
    assert_eq!(plan, expected);
}

#[test]
fn is_and_unlike_narrow_placement_to_one_agent() {
    let mut world = World::new();
    let a = world.agent("host-a", "zone:a");
    let b = world.agent("host-b", "zone:a");
    let c = world.agent("host-c", "zone:b");
    let constraints =
        json!({"constraints": [["zone", "IS", "a"], ["hostname", "UNLIKE", "host-b"]]});
    world.put(web(2, constraints));
    let offer_a = world.offer_free(&a);
    let offer_b = world.offer_free(&b);
    let offer_c = world.offer_free(&c);

    let plan = world.plan();

    let launches =
        vec![world.launch("/web", &a, "web.1", 31000), world.launch("/web", &a, "web.2", 31001)];
    let expected = Plan {
        launches: vec![agent_launch(&a, &offer_a, launches)],
        declines: vec![offer_b, offer_c],
        verdicts: vec![world.used("/web", &a, &offer_a)],
        ..Plan::default()
    };
    assert_eq!(plan, expected, "the app was placed before the other offers were considered");
    world.carry_out(&plan);

    let offer_b = world.offer_free(&b);
    let offer_c = world.offer_free(&c);
    world.put(web(
        3,
        json!({"constraints": [["zone", "IS", "a"], ["hostname", "UNLIKE", "host-b"]]}),
    ));
    let plan = world.plan();
    let verdicts = vec![
        world.unused(
            "/web",
            &b,
            &offer_b,
            &[NoMatchReason::UnfulfilledConstraint],
            &["hostname:UNLIKE:host-b matches host-b"],
        ),
        world.unused(
            "/web",
            &c,
            &offer_c,
            &[NoMatchReason::UnfulfilledConstraint],
            &["zone:IS:a wants a, not b"],
        ),
    ];
    assert_eq!(plan.verdicts, verdicts);
}

#[test]
fn cluster_keeps_instances_on_its_value() {
    let mut world = World::new();
    let b = world.agent("host-b", "rack:r2");
    let c = world.agent("host-c", "rack:r1");
    world.put(web(1, json!({"constraints": [["rack", "CLUSTER", "r1"]]})));
    let offer_b = world.offer_free(&b);
    let offer_c = world.offer_free(&c);

    let plan = world.plan();

    let expected = Plan {
        launches: vec![agent_launch(&c, &offer_c, vec![world.launch("/web", &c, "web.1", 31000)])],
        declines: vec![offer_b.clone()],
        verdicts: vec![
            world.unused(
                "/web",
                &b,
                &offer_b,
                &[NoMatchReason::UnfulfilledConstraint],
                &["rack:CLUSTER:r1 wants r1, not r2"],
            ),
            world.used("/web", &c, &offer_c),
        ],
        ..Plan::default()
    };
    assert_eq!(plan, expected);
}

#[test]
fn group_by_spreads_evenly_over_groups() {
    let mut world = World::new();
    let a = world.agent("host-a", "rack:r1");
    let b = world.agent("host-b", "rack:r1");
    let c = world.agent("host-c", "rack:r2");
    world.put(web(2, json!({"constraints": [["rack", "GROUP_BY", "2"]]})));
    world.launch_round(&[&a], None);
    assert_eq!(world.state.services().instances_of(&AppId::new("/web")).count(), 1);

    // r1 already has one instance and r2 none: r1 must wait until r2 has as many.
    let offer_b = world.offer_free(&b);
    let offer_c = world.offer_free(&c);
    let plan = world.plan();
    let expected = Plan {
        launches: vec![agent_launch(&c, &offer_c, vec![world.launch("/web", &c, "web.2", 31000)])],
        declines: vec![offer_b.clone()],
        verdicts: vec![
            world.unused(
                "/web",
                &b,
                &offer_b,
                &[NoMatchReason::UnfulfilledConstraint],
                &["rack:GROUP_BY:2 wants 2 groups but only 1 are used; r1 is one of them"],
            ),
            world.used("/web", &c, &offer_c),
        ],
        ..Plan::default()
    };
    assert_eq!(plan, expected);
}

#[test]
fn insufficient_resources_name_every_shortfall() {
    let mut world = World::new();
    let a = world.agent("host-a", "");
    world.put(web(1, json!({"mem": 512, "portDefinitions": [{"port": 80}], "requirePorts": true})));
    let offer_a = world.offer(&a, "*", "cpus:0.5;mem:256;disk:10;ports:[31000-31001]");

    let plan = world.plan();

    let expected = Plan {
        declines: vec![offer_a.clone()],
        verdicts: vec![world.unused(
            "/web",
            &a,
            &offer_a,
            &[
                NoMatchReason::InsufficientCpus,
                NoMatchReason::InsufficientMemory,
                NoMatchReason::InsufficientPorts,
            ],
            &[
                "needs 1.0 cpus, offer has 0.5",
                "needs 512.0 mem, offer has 256.0",
                "host port 80 is not in the offer; offer has ports [31000-31001]",
            ],
        )],
        ..Plan::default()
    };
    assert_eq!(plan, expected);
}

#[test]
fn offers_of_other_roles_or_unaccepted_reservations_fulfil_no_role() {
    let mut world = World::new();
    let a = world.agent("host-a", "");
    let b = world.agent("host-b", "");
    world.put(json!({"id": "/batch", "cmd": "crunch", "cpus": 1, "mem": 64, "instances": 0, "role": "batch"}));
    world.put(web(1, json!({"acceptedResourceRoles": ["prod"]})));
    let offer_batch = world.offer(&a, "batch", "cpus:4;mem:4096");
    let offer_star = world.offer_free(&b);

    let plan = world.plan();

    let expected = Plan {
        declines: vec![offer_batch.clone(), offer_star.clone()],
        suppress: vec![Role::parse("batch").unwrap()],
        verdicts: vec![
            world.unused(
                "/web",
                &a,
                &offer_batch,
                &[NoMatchReason::UnfulfilledRole],
                &["the offer is for role batch, the app runs as role *"],
            ),
            world.unused(
                "/web",
                &b,
                &offer_star,
                &[NoMatchReason::UnfulfilledRole],
                &["the offer holds no resources of the accepted roles prod"],
            ),
        ],
        ..Plan::default()
    };
    assert_eq!(plan, expected);
}

#[test]
fn agents_in_maintenance_are_not_used() {
    let mut world = World::new();
    let a = world.agent("host-a", "");
    world.put(web(1, json!({})));
    let window = MaintenanceWindow {
        machine_ids: vec![MachineId { hostname: Some("host-a".to_owned()), ip: None }],
        unavailability: Unavailability { start: world.clock, duration: None },
    };
    world.ok(operator(), Command::UpdateMaintenanceSchedule { windows: vec![window] });
    let offer_a = world.offer_free(&a);

    let plan = world.plan();

    let expected = Plan {
        declines: vec![offer_a.clone()],
        verdicts: vec![world.unused(
            "/web",
            &a,
            &offer_a,
            &[NoMatchReason::AgentMaintenance],
            &["host-a is in maintenance (DRAINING)"],
        )],
        ..Plan::default()
    };
    assert_eq!(plan, expected);
}

/// Three instances launched a second apart: web.1 oldest, web.3 youngest.
#[test]
fn an_unreachable_instance_is_replaced_once_inactive_and_killed_if_it_returns_in_excess() {
    let mut world = World::new();
    let a = world.agent("host-a", "");
    let unreachable = json!({"inactiveAfterSeconds": 60, "expungeAfterSeconds": 120});
    world.put(web(1, json!({"unreachableStrategy": unreachable})));
    world.launch_round(&[&a], None);
    let timeout = world.state.settings().agent_heartbeat_timeout;
    world.advance(timeout);
    world.ok(Actor::Leader, Command::Tick);
    let b = world.agent("host-b", "");

    // Unreachable but not yet inactive: web.1 still counts, so the offer is not needed.
    let offer_b = world.offer_free(&b);
    let plan = world.plan();
    assert_eq!(plan, Plan { declines: vec![offer_b], suppress: vec![star()], ..Plan::default() });
    world.carry_out(&plan);

    world.advance(Duration::from_secs(60));
    world.ok(Actor::Agent(b.clone()), Command::AgentHeartbeat { agent_id: b.clone() });
    world.ok(Actor::Leader, Command::Tick);
    // Inactive now: web.1 no longer counts, so the app wants offers again.
    let plan = world.plan();
    assert_eq!(plan, Plan { revive: vec![star()], ..Plan::default() });
    world.carry_out(&plan);
    let offer_b = world.offer_free(&b);
    let plan = world.plan();
    let expected = Plan {
        launches: vec![agent_launch(&b, &offer_b, vec![world.launch("/web", &b, "web.2", 31000)])],
        verdicts: vec![world.used("/web", &b, &offer_b)],
        ..Plan::default()
    };
    assert_eq!(plan, expected);
    world.carry_out(&plan);
    world.running("web.2");

    // web.1 comes back before it is expunged: one instance too many, and it is the one
    // that goes (unready first, then the youngest: both are ready, web.2 is younger).
    let info = world.state.agent(&a).expect("known agent").info.clone();
    let resources = world.state.agent(&a).expect("known agent").total.clone();
    let tasks = vec![corral_state::model::ReportedTask {
        framework_id: world.framework_id(),
        task_id: task("web.1"),
        state: TaskState::Running,
    }];
    world.ok(
        Actor::Agent(a.clone()),
        Command::ReregisterAgent { agent_id: a.clone(), info, resources, tasks },
    );
    assert_eq!(
        world.plan(),
        Plan { kills: vec![task("web.2")], suppress: vec![star()], ..Plan::default() }
    );
}

fn three_instances(kill_selection: &str) -> World {
    let mut world = World::new();
    let a = world.agent("host-a", "");
    world.put(web(1, json!({"killSelection": kill_selection})));
    for _ in 0..3 {
        let instances = world.state.services().instances_of(&AppId::new("/web")).count() as u32;
        world.put(web(instances + 1, json!({"killSelection": kill_selection})));
        world.launch_round(&[&a], None);
        world.advance(Duration::from_secs(1));
    }
    world
}

#[test]
fn scaling_down_kills_the_youngest_first_by_default() {
    let mut world = three_instances("YOUNGEST_FIRST");
    world.put(web(1, json!({"killSelection": "YOUNGEST_FIRST"})));

    let plan = world.plan();

    let expected = Plan {
        kills: vec![task("web.3"), task("web.2")],
        suppress: vec![star()],
        ..Plan::default()
    };
    assert_eq!(plan, expected);
}

#[test]
fn scaling_down_kills_the_oldest_first_when_asked() {
    let mut world = three_instances("OLDEST_FIRST");
    world.put(web(1, json!({"killSelection": "OLDEST_FIRST"})));

    let plan = world.plan();

    let expected = Plan {
        kills: vec![task("web.1"), task("web.2")],
        suppress: vec![star()],
        ..Plan::default()
    };
    assert_eq!(plan, expected);
}

#[test]
fn scaling_down_kills_unready_instances_before_ready_ones() {
    let mut world = World::new();
    let a = world.agent("host-a", "");
    world.put(web(3, json!({})));
    world.offer_free(&a);
    let plan = world.plan();
    world.carry_out(&plan);
    world.running("web.1");
    world.report("web.2", TaskState::Starting, None);
    world.running("web.3");
    world.put(web(2, json!({})));

    let plan = world.plan();

    assert_eq!(
        plan,
        Plan { kills: vec![task("web.2")], suppress: vec![star()], ..Plan::default() }
    );
}

#[test]
fn a_rolling_replacement_keeps_half_healthy_and_kills_one_old_at_a_time() {
    let mut world = World::new();
    let a = world.agent("host-a", "");
    let strategy =
        json!({"upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.0}});
    world.put(web(2, strategy.clone()));
    world.launch_round(&[&a], None);
    world.advance(Duration::from_secs(1));
    let mut changed = strategy.clone();
    changed["cmd"] = json!("serve --v2");
    world.put(web(2, changed));

    // No room for a new instance: one old one goes first, the other keeps serving.
    let plan = world.plan();
    assert_eq!(plan, Plan { kills: vec![task("web.1")], ..Plan::default() });
    world.carry_out(&plan);
    assert_eq!(world.plan(), Plan::default(), "a kill requested still takes room");

    world.report("web.1", TaskState::Killed, None);
    let offer_a = world.offer_free(&a);
    let plan = world.plan();
    let expected = Plan {
        launches: vec![agent_launch(&a, &offer_a, vec![world.launch("/web", &a, "web.3", 31000)])],
        verdicts: vec![world.used("/web", &a, &offer_a)],
        ..Plan::default()
    };
    assert_eq!(plan, expected);
    world.carry_out(&plan);

    // The second old instance goes only once the new one is ready.
    assert_eq!(world.plan(), Plan::default());
    world.running("web.3");
    assert_eq!(world.plan(), Plan { kills: vec![task("web.2")], ..Plan::default() });
}

/// Two instances of `/web` launched as `before`, then `after` (health checked) put at full
/// capacity on the same agent: one extra new instance first, and no old one killed until
/// that new one is healthy.
fn replace_at_full_capacity(before: Value, after: Value) {
    let mut world = World::new();
    let a = world.agent("host-a", "");
    let healthy = before.get("healthChecks").map(|_| true);
    world.put(web(2, before));
    world.launch_round(&[&a], healthy);
    world.put(web(2, after));

    let offer_a = world.offer_free(&a);
    let plan = world.plan();
    let expected = Plan {
        launches: vec![agent_launch(&a, &offer_a, vec![world.launch("/web", &a, "web.3", 31002)])],
        verdicts: vec![world.used("/web", &a, &offer_a)],
        ..Plan::default()
    };
    assert_eq!(plan, expected);
    world.carry_out(&plan);

    world.running("web.3");
    assert_eq!(world.plan(), Plan::default(), "running but not yet healthy");
    world.report("web.3", TaskState::Running, Some(true));
    assert_eq!(world.plan(), Plan { kills: vec![task("web.1")], ..Plan::default() });
}

#[test]
fn a_full_capacity_replacement_launches_one_extra_and_waits_for_it_to_be_healthy() {
    let strategy = json!({
        "upgradeStrategy": {"minimumHealthCapacity": 1.0, "maximumOverCapacity": 0.0},
        "healthChecks": [{"protocol": "COMMAND", "command": {"value": "true"}}],
    });
    let mut changed = strategy.clone();
    changed["cmd"] = json!("serve --v2");
    replace_at_full_capacity(strategy, changed);
}

/// Health checks added to an app that had none: its old instances were launched without a
/// check, so running is all their version asks of them. Judged by the new version's checks
/// instead, they had no verdict and were all killed at once, before any new instance was
/// healthy: an outage on a change meant to make the app safer.
#[test]
fn adding_health_checks_keeps_the_old_instances_until_the_new_ones_are_healthy() {
    let strategy =
        json!({"upgradeStrategy": {"minimumHealthCapacity": 1.0, "maximumOverCapacity": 0.0}});
    let mut checked = strategy.clone();
    checked["healthChecks"] = json!([{"protocol": "COMMAND", "command": {"value": "true"}}]);
    replace_at_full_capacity(strategy, checked);
}

#[test]
fn a_launch_delay_holds_launches_back_until_it_ends() {
    let mut world = World::new();
    let a = world.agent("host-a", "");
    world.put(web(1, json!({"backoffSeconds": 10})));
    world.launch_round(&[&a], None);
    world.report("web.1", TaskState::Failed, None);
    let offer_a = world.offer_free(&a);

    // Still wanted, so not suppressed; but the offer is declined without a verdict.
    let plan = world.plan();
    assert_eq!(plan, Plan { declines: vec![offer_a.clone()], ..Plan::default() });

    world.advance(Duration::from_secs(10));
    let plan = world.plan();
    let expected = Plan {
        launches: vec![agent_launch(&a, &offer_a, vec![world.launch("/web", &a, "web.2", 31000)])],
        verdicts: vec![world.used("/web", &a, &offer_a)],
        ..Plan::default()
    };
    assert_eq!(plan, expected);
}

#[test]
fn a_deleted_apps_instances_are_killed_once() {
    let mut world = World::new();
    let a = world.agent("host-a", "");
    world.put(web(2, json!({})));
    world.launch_round(&[&a], None);
    let delete = Command::DeleteApp {
        app_id: AppId::new("/web"),
        force: Force::No,
        deployment_id: DeploymentId::new("delete"),
    };
    world.ok(operator(), delete);

    let plan = world.plan();
    let expected = Plan {
        kills: vec![task("web.1"), task("web.2")],
        suppress: vec![star()],
        ..Plan::default()
    };
    assert_eq!(plan, expected);
    world.carry_out(&plan);
    assert_eq!(world.plan(), Plan::default(), "kills already requested are not repeated");
}

#[test]
fn roles_are_suppressed_when_satisfied_and_revived_when_an_app_waits() {
    let mut world = World::new();
    let a = world.agent("host-a", "");
    world.put(web(1, json!({})));
    let plan = world.launch_round(&[&a], None);
    assert_eq!(plan.suppress, Vec::<Role>::new(), "the app still waited when planned");

    let plan = world.plan();
    assert_eq!(plan, Plan { suppress: vec![star()], ..Plan::default() });
    world.carry_out(&plan);
    assert_eq!(world.plan(), Plan::default(), "already suppressed");

    world.put(web(2, json!({})));
    let plan = world.plan();
    assert_eq!(plan, Plan { revive: vec![star()], ..Plan::default() });
}

#[test]
fn reserved_resources_of_an_accepted_role_are_claimed_first() {
    let mut world = World::new();
    let a = world.agent("host-a", "");
    world.put(web(1, json!({"role": "prod", "acceptedResourceRoles": ["prod", "*"]})));
    world.ok(
        operator(),
        Command::ReserveResources {
            agent_id: a.clone(),
            resources: "cpus(prod):0.5".parse::<Resources>().map(reserved_dynamic).unwrap(),
        },
    );
    let free = world.state.agent(&a).unwrap().free();
    let offer_a = world.offer_resources(&a, "prod", free);

    let plan = world.plan();

    let [launch] = &plan.launches[..] else { panic!("one launch expected: {plan:?}") };
    assert_eq!(launch.offer_ids, vec![offer_a]);
    let resources = launch.launches[0].task_info.resources.to_string();
    assert!(resources.contains("cpus(prod"), "reserved cpus claimed: {resources}");
    assert!(resources.contains("cpus:0.5"), "the rest unreserved: {resources}");
    world.carry_out(&plan);
}

fn reserved_dynamic(resources: Resources) -> Resources {
    let list = resources
        .iter()
        .map(|resource| {
            let role = resource.reservation.role().cloned().unwrap_or_else(Role::default_role);
            resource.clone().reserved(corral_state::Reservation::Dynamic {
                role,
                principal: Some("ops".to_owned()),
            })
        })
        .collect();
    Resources::from_list(list).unwrap()
}

// The operators on their own.

fn constraint(parts: &[&str]) -> Constraint {
    Constraint(parts.iter().map(|part| (*part).to_owned()).collect())
}

fn check(parts: &[&str], candidate: (&str, &str), placed: &[(&str, &str)]) -> Result<(), String> {
    let attributes = |text: &str| Attributes::parse(text).unwrap();
    let candidate_attributes = attributes(candidate.1);
    let placed_attributes: Vec<(String, Attributes)> =
        placed.iter().map(|(host, text)| ((*host).to_owned(), attributes(text))).collect();
    let placed: Vec<Placement<'_>> = placed_attributes
        .iter()
        .map(|(hostname, attributes)| Placement { hostname, attributes })
        .collect();
    let candidate = Placement { hostname: candidate.0, attributes: &candidate_attributes };
    AppConstraints::new(&[constraint(parts)])
        .check(&candidate, &placed)
        .map_err(|unmet| unmet.detail)
}

#[test]
fn unique_refuses_a_value_already_used() {
    assert_eq!(check(&["hostname", "UNIQUE"], ("b", ""), &[("a", "")]), Ok(()));
    assert_eq!(
        check(&["rack", "UNIQUE"], ("b", "rack:r1"), &[("a", "rack:r1")]),
        Err("rack:UNIQUE is already used on r1".to_owned())
    );
}

#[test]
fn cluster_pins_to_its_value_or_to_the_first_instances() {
    assert_eq!(check(&["rack", "CLUSTER", "r1"], ("a", "rack:r1"), &[]), Ok(()));
    assert_eq!(
        check(&["rack", "CLUSTER", "r1"], ("a", "rack:r2"), &[]),
        Err("rack:CLUSTER:r1 wants r1, not r2".to_owned())
    );
    assert_eq!(check(&["rack", "CLUSTER"], ("a", "rack:r2"), &[]), Ok(()));
    assert_eq!(
        check(&["rack", "CLUSTER"], ("b", "rack:r2"), &[("a", "rack:r1")]),
        Err("rack:CLUSTER wants r1, not r2".to_owned())
    );
    assert_eq!(
        check(&["rack", "CLUSTER", "r1"], ("a", ""), &[]),
        Err("rack:CLUSTER:r1 cannot hold: the agent has no attribute rack".to_owned())
    );
}

#[test]
fn like_and_unlike_match_the_whole_value() {
    assert_eq!(check(&["hostname", "LIKE", "web-[0-9]+"], ("web-12", ""), &[]), Ok(()));
    assert_eq!(
        check(&["hostname", "LIKE", "web-[0-9]"], ("web-12", ""), &[]),
        Err("hostname:LIKE:web-[0-9] does not match web-12".to_owned())
    );
    assert_eq!(check(&["hostname", "UNLIKE", "db.*"], ("web-1", ""), &[]), Ok(()));
    assert_eq!(
        check(&["hostname", "UNLIKE", "web.*"], ("web-1", ""), &[]),
        Err("hostname:UNLIKE:web.* matches web-1".to_owned())
    );
    assert_eq!(check(&["zone", "UNLIKE", "east"], ("a", ""), &[]), Ok(()), "missing passes");
}

#[test]
fn is_wants_the_exact_value() {
    assert_eq!(check(&["zone", "IS", "2"], ("a", "zone:2"), &[]), Ok(()));
    assert_eq!(
        check(&["zone", "IS", "2"], ("a", "zone:20"), &[]),
        Err("zone:IS:2 wants 2, not 20".to_owned())
    );
}

#[test]
fn max_per_counts_instances_per_value() {
    let placed = [("a", "rack:r1"), ("b", "rack:r1"), ("c", "rack:r2")];
    assert_eq!(check(&["rack", "MAX_PER", "2"], ("d", "rack:r2"), &placed), Ok(()));
    assert_eq!(
        check(&["rack", "MAX_PER", "2"], ("d", "rack:r1"), &placed),
        Err("rack:MAX_PER:2 already has 2 instances on r1".to_owned())
    );
}

#[test]
fn group_by_allows_new_groups_and_the_smallest_ones() {
    let placed = [("a", "rack:r1"), ("b", "rack:r1"), ("c", "rack:r2")];
    assert_eq!(check(&["rack", "GROUP_BY"], ("d", "rack:r3"), &placed), Ok(()));
    assert_eq!(check(&["rack", "GROUP_BY"], ("d", "rack:r2"), &placed), Ok(()));
    assert_eq!(
        check(&["rack", "GROUP_BY"], ("d", "rack:r1"), &placed),
        Err("rack:GROUP_BY already has 2 instances on r1, the smallest group 1".to_owned())
    );
    assert_eq!(
        check(&["rack", "GROUP_BY", "3"], ("d", "rack:r2"), &placed),
        Err("rack:GROUP_BY:3 wants 3 groups but only 2 are used; r2 is one of them".to_owned())
    );
}
