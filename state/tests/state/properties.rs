//! Properties over random command sequences. Commands are generated as choices ("the
//! third agent", "an offer of half its free cpus") resolved against the live state, so that
//! most of them are meaningful and the rest exercise rejection.

use std::collections::BTreeMap;
use std::time::Duration;

use corral_state::model::{
    AgentInfo, AppSpec, Attributes, Backoff, Deployment, Filters, FrameworkCapability, KillPolicy,
    MachineId, MaintenanceWindow, QuotaConfig, SettingsChange, TaskSource, TaskState, TaskStatus,
    Unavailability, UnreachablePolicy, UpgradeBounds,
};
use corral_state::model::{
    AutoscalerPolicy, Limit, MetricTarget, Millionths, Scaling, ScalingRules,
};
use corral_state::{
    diff_excerpts, diff_fingerprints, Actor, AgentId, AppId, AppPut, Cancellation, ClusterState,
    Command, DeploymentId, Entity, Entry, Event, Fingerprint, Force, FrameworkId, KillScaling,
    OfferId, OfferSpec, Operation, Outcome, PutMode, Quantities, RequestId, Role, Scalar,
    ServiceLaunch, Tally, TaskId, Timestamp, UpdateUuid, Wipe,
};
use proptest::prelude::*;

use super::support::{assert_not_overcommitted, dynamic, framework_info, res, task_info};

#[derive(Clone, Debug)]
enum Op {
    RegisterAgent { host: u8, cpus: u8, mem: u16 },
    Heartbeat { agent: u8 },
    Subscribe { partition_aware: bool },
    Resubscribe { framework: u8 },
    Disconnect { framework: u8 },
    Teardown { framework: u8 },
    Offer { framework: u8, agent: u8, percent: u8 },
    Accept { offer: u8, tasks: Vec<(u8, u16)>, refuse: u8 },
    Decline { offer: u8, refuse: u8 },
    Update { task: u8, state: u8 },
    Acknowledge { task: u8 },
    Kill { task: u8 },
    Reconcile { framework: u8 },
    Suppress { framework: u8 },
    Revive { framework: u8 },
    Tick { seconds: u16 },
    Drain { agent: u8 },
    Deactivate { agent: u8 },
    Reactivate { agent: u8 },
    MarkGone { agent: u8 },
    Reserve { agent: u8, cpus: u8 },
    Retry { back: u8 },
    Garbage { which: u8, text: String, amount: u16 },
    // Long-running services (the built-in Marathon framework).
    PutApp { app: u8, instances: u8, health: bool, over: u16, under: u16, config: u8, force: bool },
    PutApps { first: u8, second: u8, instances: u8, force: bool },
    OfferService { agent: u8, percent: u8 },
    LaunchService { app: u8, offer: u8, count: u8, stale: bool },
    Health { task: u8, healthy: bool },
    KillService { task: u8, scale: bool, wipe: bool, force: bool },
    RestartApp { app: u8, force: bool },
    DeleteApp { app: u8, force: bool },
    CancelDeployment { which: u8, roll_back: bool },
    ResetDelay { app: u8 },
    // The autoscaler: a policy, and scalings from the app's count (some stale).
    Autoscaler { app: u8, min: u8, spread: u8, delete: bool },
    Autoscale { app: u8, delta: i8, stale: bool },
    Recommend { app: u8, count: u8 },
    // Operator settings of roles, machines and the cluster.
    Weight { role: u8, weight: u8 },
    Quota { role: u8, cpus: u8 },
    Maintenance { agent: u8, start: u8 },
    StartMaintenance { agent: u8 },
    StopMaintenance { agent: u8 },
    Settings { which: u8, seconds: u16 },
}

const APPS: [&str; 3] = ["/web", "/api", "/db/main"];
const ROLES: [&str; 3] = ["*", "eng", "ops"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (any::<u8>(), 1..16u8, 64..4096u16).prop_map(|(host, cpus, mem)| Op::RegisterAgent { host, cpus, mem }),
        1 => any::<u8>().prop_map(|agent| Op::Heartbeat { agent }),
        2 => any::<bool>().prop_map(|partition_aware| Op::Subscribe { partition_aware }),
        1 => any::<u8>().prop_map(|framework| Op::Resubscribe { framework }),
        1 => any::<u8>().prop_map(|framework| Op::Disconnect { framework }),
        1 => any::<u8>().prop_map(|framework| Op::Teardown { framework }),
        6 => (any::<u8>(), any::<u8>(), 1..=120u8).prop_map(|(framework, agent, percent)| Op::Offer { framework, agent, percent }),
        5 => (any::<u8>(), proptest::collection::vec((1..8u8, 16..2048u16), 0..4), 0..3u8)
            .prop_map(|(offer, tasks, refuse)| Op::Accept { offer, tasks, refuse }),
        2 => (any::<u8>(), 0..3u8).prop_map(|(offer, refuse)| Op::Decline { offer, refuse }),
        6 => (any::<u8>(), any::<u8>()).prop_map(|(task, state)| Op::Update { task, state }),
        3 => any::<u8>().prop_map(|task| Op::Acknowledge { task }),
        1 => any::<u8>().prop_map(|task| Op::Kill { task }),
        1 => any::<u8>().prop_map(|framework| Op::Reconcile { framework }),
        1 => any::<u8>().prop_map(|framework| Op::Suppress { framework }),
        1 => any::<u8>().prop_map(|framework| Op::Revive { framework }),
        3 => (0..120u16).prop_map(|seconds| Op::Tick { seconds }),
        1 => any::<u8>().prop_map(|agent| Op::Drain { agent }),
        1 => any::<u8>().prop_map(|agent| Op::Deactivate { agent }),
        1 => any::<u8>().prop_map(|agent| Op::Reactivate { agent }),
        1 => any::<u8>().prop_map(|agent| Op::MarkGone { agent }),
        1 => (any::<u8>(), 1..8u8).prop_map(|(agent, cpus)| Op::Reserve { agent, cpus }),
        2 => any::<u8>().prop_map(|back| Op::Retry { back }),
        2 => (any::<u8>(), ".{0,12}", any::<u16>()).prop_map(|(which, text, amount)| Op::Garbage { which, text, amount }),
        3 => (any::<u8>(), 0..5u8, any::<bool>(), 0..=1000u16, 0..=1000u16, 0..3u8, any::<bool>())
            .prop_map(|(app, instances, health, over, under, config, force)| Op::PutApp { app, instances, health, over, under, config, force }),
        1 => (any::<u8>(), any::<u8>(), 0..4u8, any::<bool>())
            .prop_map(|(first, second, instances, force)| Op::PutApps { first, second, instances, force }),
        6 => (any::<u8>(), 10..=100u8).prop_map(|(agent, percent)| Op::OfferService { agent, percent }),
        10 => (any::<u8>(), any::<u8>(), 1..4u8, prop::bool::weighted(0.1))
            .prop_map(|(app, offer, count, stale)| Op::LaunchService { app, offer, count, stale }),
        2 => (any::<u8>(), any::<bool>()).prop_map(|(task, healthy)| Op::Health { task, healthy }),
        1 => (any::<u8>(), any::<bool>(), any::<bool>(), any::<bool>())
            .prop_map(|(task, scale, wipe, force)| Op::KillService { task, scale, wipe, force }),
        1 => (any::<u8>(), any::<bool>()).prop_map(|(app, force)| Op::RestartApp { app, force }),
        1 => (any::<u8>(), any::<bool>()).prop_map(|(app, force)| Op::DeleteApp { app, force }),
        1 => (any::<u8>(), any::<bool>()).prop_map(|(which, roll_back)| Op::CancelDeployment { which, roll_back }),
        1 => any::<u8>().prop_map(|app| Op::ResetDelay { app }),
        1 => (any::<u8>(), 0..3u8, 0..5u8, any::<bool>()).prop_map(|(app, min, spread, delete)| Op::Autoscaler { app, min, spread, delete }),
        2 => (any::<u8>(), -4..6i8, any::<bool>()).prop_map(|(app, delta, stale)| Op::Autoscale { app, delta, stale }),
        1 => (any::<u8>(), 0..6u8).prop_map(|(app, count)| Op::Recommend { app, count }),
        1 => (any::<u8>(), 0..10u8).prop_map(|(role, weight)| Op::Weight { role, weight }),
        1 => (any::<u8>(), 0..8u8).prop_map(|(role, cpus)| Op::Quota { role, cpus }),
        1 => (any::<u8>(), 0..100u8).prop_map(|(agent, start)| Op::Maintenance { agent, start }),
        1 => any::<u8>().prop_map(|agent| Op::StartMaintenance { agent }),
        1 => any::<u8>().prop_map(|agent| Op::StopMaintenance { agent }),
        1 => (any::<u8>(), 0..400u16).prop_map(|(which, seconds)| Op::Settings { which, seconds }),
    ]
}

fn app_spec(instances: u8, health: bool, over: u16, under: u16) -> AppSpec {
    AppSpec {
        instances: u32::from(instances),
        role: Role::default_role(),
        health_checked: health,
        upgrade: UpgradeBounds {
            minimum_health_capacity_permille: u32::from(under),
            maximum_over_capacity_permille: u32::from(over),
        },
        backoff: Backoff {
            initial: Duration::from_secs(1),
            factor_permille: 2000,
            maximum: Duration::from_secs(30),
        },
        unreachable: UnreachablePolicy::Enabled {
            inactive_after: Duration::from_secs(30),
            expunge_after: Duration::from_secs(90),
        },
        service_ports: vec![0],
    }
}

fn operator() -> Actor {
    Actor::Operator { principal: None }
}

fn machine_of(agent: &corral_state::model::Agent) -> MachineId {
    MachineId { hostname: Some(agent.info.hostname.clone()), ip: None }
}

fn force_if(force: bool) -> Force {
    if force {
        Force::Yes
    } else {
        Force::No
    }
}

fn pick<T: Clone>(items: &[T], index: u8) -> Option<T> {
    if items.is_empty() {
        return None;
    }
    Some(items[index as usize % items.len()].clone())
}

/// Turns generated choices into entries against the current state, applying each.
struct Driver {
    state: ClusterState,
    clock: Timestamp,
    entries: Vec<Entry>,
    outcomes: Vec<Outcome>,
    next_uuid: u64,
}

impl Driver {
    fn new() -> Driver {
        Driver {
            state: ClusterState::default(),
            clock: Timestamp::from_secs(1_000),
            entries: Vec::new(),
            outcomes: Vec::new(),
            next_uuid: 0,
        }
    }

    /// A name no earlier step used: `prefix` and a counter.
    fn fresh(&mut self, prefix: &str) -> String {
        self.next_uuid += 1;
        format!("{prefix}{}", self.next_uuid)
    }

    fn fresh_deployment_id(&mut self) -> DeploymentId {
        DeploymentId::new(self.fresh("d"))
    }

    fn agents(&self) -> Vec<AgentId> {
        self.state.agents().keys().cloned().collect()
    }

    fn frameworks(&self) -> Vec<FrameworkId> {
        self.state.frameworks().keys().cloned().collect()
    }

    fn offers(&self) -> Vec<OfferId> {
        self.state.offers().keys().cloned().collect()
    }

    fn tasks(&self) -> Vec<(FrameworkId, TaskId, AgentId)> {
        self.state
            .tasks()
            .map(|t| (t.framework_id.clone(), t.id().clone(), t.agent_id().clone()))
            .collect()
    }

    fn command_for(&mut self, op: &Op) -> Option<(Actor, Command, Option<RequestId>)> {
        let leader = Actor::Leader;
        Some(match op.clone() {
            Op::RegisterAgent { host, cpus, mem } => {
                let info = AgentInfo {
                    hostname: format!("host{host}"),
                    address: format!("10.0.0.{host}:5051"),
                    attributes: Attributes::default(),
                };
                (
                    leader,
                    Command::RegisterAgent {
                        info,
                        resources: res(&format!("cpus:{cpus};mem:{mem};ports:[31000-31009]")),
                    },
                    None,
                )
            }
            Op::Heartbeat { agent } => {
                let agent_id = pick(&self.agents(), agent)?;
                (Actor::Agent(agent_id.clone()), Command::AgentHeartbeat { agent_id }, None)
            }
            Op::Subscribe { partition_aware } => {
                let mut info = framework_info("f", &["*"]);
                if partition_aware {
                    info.capabilities.insert(FrameworkCapability::PartitionAware);
                }
                (leader, Command::Subscribe { framework_id: None, info }, None)
            }
            Op::Resubscribe { framework } => {
                let framework_id = pick(&self.frameworks(), framework)?;
                (
                    Actor::Framework(framework_id.clone()),
                    Command::Subscribe {
                        framework_id: Some(framework_id),
                        info: framework_info("f", &["*"]),
                    },
                    None,
                )
            }
            Op::Disconnect { framework } => (
                leader,
                Command::DisconnectFramework { framework_id: pick(&self.frameworks(), framework)? },
                None,
            ),
            Op::Teardown { framework } => {
                let framework_id = pick(&self.frameworks(), framework)?;
                (Actor::Framework(framework_id.clone()), Command::Teardown { framework_id }, None)
            }
            Op::Offer { framework, agent, percent } => {
                let framework_id = pick(&self.frameworks(), framework)?;
                let agent_id = pick(&self.agents(), agent)?;
                let free = self.state.agent(&agent_id)?.free();
                let cpus =
                    Scalar::from_milli(free.scalar("cpus").milli() * i64::from(percent) / 100);
                let mem = Scalar::from_milli(free.scalar("mem").milli() * i64::from(percent) / 100);
                let resources = res(&format!("cpus:{cpus};mem:{mem}"));
                let spec =
                    OfferSpec { framework_id, agent_id, role: Role::default_role(), resources };
                (leader, Command::OfferResources { offers: vec![spec] }, None)
            }
            Op::Accept { offer, tasks, refuse } => {
                let offer_id = pick(&self.offers(), offer)?;
                let offer = self.state.offer(&offer_id)?.clone();
                let task_infos = tasks
                    .iter()
                    .map(|(cpus, mem)| {
                        self.next_uuid += 1;
                        let cpus = f64::from(*cpus) / 4.0;
                        task_info(
                            &format!("t{}", self.next_uuid),
                            &offer.agent_id,
                            &format!("cpus:{cpus};mem:{mem}"),
                        )
                    })
                    .collect();
                let command = Command::Accept {
                    framework_id: offer.framework_id.clone(),
                    offer_ids: vec![offer_id],
                    operations: vec![Operation::Launch { task_infos }],
                    filters: Filters { refuse: Duration::from_secs(u64::from(refuse) * 5) },
                };
                (Actor::Framework(offer.framework_id), command, None)
            }
            Op::Decline { offer, refuse } => {
                let offer_id = pick(&self.offers(), offer)?;
                let framework_id = self.state.offer(&offer_id)?.framework_id.clone();
                let command = Command::Decline {
                    framework_id: framework_id.clone(),
                    offer_ids: vec![offer_id],
                    filters: Filters { refuse: Duration::from_secs(u64::from(refuse) * 5) },
                };
                (Actor::Framework(framework_id), command, None)
            }
            Op::Update { task, state } => {
                let (framework_id, task_id, agent_id) = pick(&self.tasks(), task)?;
                let uuid = self.fresh("u");
                let status = TaskStatus {
                    task_id,
                    state: TaskState::ALL[state as usize % TaskState::ALL.len()],
                    message: None,
                    source: TaskSource::Executor,
                    reason: None,
                    healthy: None,
                    agent_id: Some(agent_id.clone()),
                    executor_id: None,
                    timestamp: Timestamp::default(),
                    uuid: Some(UpdateUuid::new(&uuid)),
                    exit_code: None,
                };
                // Agents use the update's uuid as the request id, as the real agent does.
                (
                    Actor::Agent(agent_id),
                    Command::UpdateStatus { framework_id, status },
                    Some(RequestId::new(uuid)),
                )
            }
            Op::Acknowledge { task } => {
                let (framework_id, task_id, agent_id) = pick(&self.tasks(), task)?;
                let pending = self
                    .state
                    .framework(&framework_id)?
                    .pending_updates
                    .get(&task_id)?
                    .front()?
                    .uuid
                    .clone()?;
                (
                    Actor::Framework(framework_id.clone()),
                    Command::Acknowledge { framework_id, agent_id, task_id, uuid: pending },
                    None,
                )
            }
            Op::Kill { task } => {
                let (framework_id, task_id, agent_id) = pick(&self.tasks(), task)?;
                let command = Command::Kill {
                    framework_id: framework_id.clone(),
                    task_id,
                    agent_id: Some(agent_id),
                    kill_policy: Some(KillPolicy { grace_period: None }),
                };
                (Actor::Framework(framework_id), command, None)
            }
            Op::Reconcile { framework } => {
                let framework_id = pick(&self.frameworks(), framework)?;
                (
                    Actor::Framework(framework_id.clone()),
                    Command::Reconcile { framework_id, tasks: vec![] },
                    None,
                )
            }
            Op::Suppress { framework } => {
                let framework_id = pick(&self.frameworks(), framework)?;
                (
                    Actor::Framework(framework_id.clone()),
                    Command::Suppress { framework_id, roles: vec![] },
                    None,
                )
            }
            Op::Revive { framework } => {
                let framework_id = pick(&self.frameworks(), framework)?;
                (
                    Actor::Framework(framework_id.clone()),
                    Command::Revive { framework_id, roles: vec![] },
                    None,
                )
            }
            Op::Tick { seconds } => {
                self.clock = self.clock.plus(Duration::from_secs(u64::from(seconds)));
                (leader, Command::Tick, None)
            }
            Op::Drain { agent } => {
                let agent_id = pick(&self.agents(), agent)?;
                (
                    Actor::Operator { principal: None },
                    Command::DrainAgent {
                        agent_id,
                        max_grace_period: None,
                        mark_gone: agent % 2 == 0,
                    },
                    None,
                )
            }
            Op::Deactivate { agent } => (
                Actor::Operator { principal: None },
                Command::DeactivateAgent { agent_id: pick(&self.agents(), agent)? },
                None,
            ),
            Op::Reactivate { agent } => (
                Actor::Operator { principal: None },
                Command::ReactivateAgent { agent_id: pick(&self.agents(), agent)? },
                None,
            ),
            Op::MarkGone { agent } => (
                Actor::Operator { principal: None },
                Command::MarkAgentGone { agent_id: pick(&self.agents(), agent)? },
                None,
            ),
            Op::Reserve { agent, cpus } => {
                let agent_id = pick(&self.agents(), agent)?;
                let resources = dynamic(&format!("cpus:{cpus}"), "eng");
                (
                    Actor::Operator { principal: None },
                    Command::ReserveResources { agent_id, resources },
                    None,
                )
            }
            Op::PutApp { app, instances, health, over, under, config, force } => {
                let app_id = AppId::new(pick(&APPS, app)?);
                let command = Command::PutApp {
                    app_id,
                    spec: app_spec(instances, health, over, under),
                    definition: format!("{{\"cmd\":\"v{config}\"}}"),
                    mode: PutMode::CreateOrReplace,
                    force: force_if(force),
                    deployment_id: self.fresh_deployment_id(),
                };
                (operator(), command, None)
            }
            Op::PutApps { first, second, instances, force } => {
                let mut apps = Vec::new();
                for (app, config) in [(first, 0), (second, 1)] {
                    apps.push(AppPut {
                        app_id: AppId::new(pick(&APPS, app)?),
                        spec: app_spec(instances, false, 1000, 500),
                        definition: format!("{{\"cmd\":\"v{config}\"}}"),
                        mode: PutMode::CreateOrReplace,
                        force: force_if(force),
                        deployment_id: self.fresh_deployment_id(),
                    });
                }
                (operator(), Command::PutApps { apps }, None)
            }
            Op::OfferService { agent, percent } => {
                let framework_id = self.state.services().framework_id.clone()?;
                let agent_id = pick(&self.agents(), agent)?;
                let free = self.state.agent(&agent_id)?.free();
                let cpus =
                    Scalar::from_milli(free.scalar("cpus").milli() * i64::from(percent) / 100);
                let mem = Scalar::from_milli(free.scalar("mem").milli() * i64::from(percent) / 100);
                let resources = res(&format!("cpus:{cpus};mem:{mem}"));
                let spec =
                    OfferSpec { framework_id, agent_id, role: Role::default_role(), resources };
                (leader, Command::OfferResources { offers: vec![spec] }, None)
            }
            Op::LaunchService { app, offer, count, stale } => {
                let service = self.state.services().framework_id.clone()?;
                let offers: Vec<OfferId> = self
                    .state
                    .offers()
                    .values()
                    .filter(|offer| offer.framework_id == service)
                    .map(|offer| offer.id.clone())
                    .collect();
                let offer_id = pick(&offers, offer)?;
                let agent_id = self.state.offer(&offer_id)?.agent_id.clone();
                let app_id = AppId::new(pick(&APPS, app)?);
                let current = self.state.services().app(&app_id)?.config_version;
                let config_version =
                    if stale { current.plus(Duration::from_secs(1)) } else { current };
                let launches = (0..count)
                    .map(|_| {
                        self.next_uuid += 1;
                        let task_id = format!("{}.{}", app_id.safe_name(), self.next_uuid);
                        ServiceLaunch {
                            app_id: app_id.clone(),
                            config_version,
                            task_info: task_info(&task_id, &agent_id, "cpus:0.25;mem:16"),
                        }
                    })
                    .collect();
                let command = Command::LaunchServiceTasks {
                    offer_ids: vec![offer_id],
                    launches,
                    filters: Filters::default(),
                };
                (leader, command, None)
            }
            Op::Health { task, healthy } => {
                let (framework_id, task_id, agent_id) = pick(&self.tasks(), task)?;
                let uuid = self.fresh("u");
                let status = TaskStatus {
                    task_id,
                    state: TaskState::Running,
                    message: None,
                    source: TaskSource::Executor,
                    reason: None,
                    healthy: Some(healthy),
                    agent_id: Some(agent_id.clone()),
                    executor_id: None,
                    timestamp: Timestamp::default(),
                    uuid: Some(UpdateUuid::new(&uuid)),
                    exit_code: None,
                };
                (
                    Actor::Agent(agent_id),
                    Command::UpdateStatus { framework_id, status },
                    Some(RequestId::new(uuid)),
                )
            }
            Op::KillService { task, scale, wipe, force } => {
                let service = self.state.services().framework_id.clone()?;
                let tasks: Vec<TaskId> = self
                    .tasks()
                    .into_iter()
                    .filter(|(framework_id, _, _)| *framework_id == service)
                    .map(|(_, task_id, _)| task_id)
                    .collect();
                let command = Command::KillServiceTasks {
                    task_ids: vec![pick(&tasks, task)?],
                    scaling: if scale { KillScaling::ScaleDown } else { KillScaling::Replace },
                    wipe: if wipe { Wipe::Expunge } else { Wipe::Keep },
                    force: force_if(force),
                    deployment_id: self.fresh_deployment_id(),
                };
                (operator(), command, None)
            }
            Op::RestartApp { app, force } => {
                let command = Command::RestartApp {
                    app_id: AppId::new(pick(&APPS, app)?),
                    force: force_if(force),
                    deployment_id: self.fresh_deployment_id(),
                };
                (operator(), command, None)
            }
            Op::DeleteApp { app, force } => {
                let command = Command::DeleteApp {
                    app_id: AppId::new(pick(&APPS, app)?),
                    force: force_if(force),
                    deployment_id: self.fresh_deployment_id(),
                };
                (operator(), command, None)
            }
            Op::CancelDeployment { which, roll_back } => {
                let deployments: Vec<DeploymentId> =
                    self.state.services().deployments.keys().cloned().collect();
                let cancellation = if roll_back {
                    Cancellation::RollBack { rollback_id: self.fresh_deployment_id() }
                } else {
                    Cancellation::Abandon
                };
                let command = Command::CancelDeployment {
                    deployment_id: pick(&deployments, which)?,
                    cancellation,
                };
                (operator(), command, None)
            }
            Op::Autoscaler { app, min, spread, delete } => {
                let app_id = AppId::new(pick(&APPS, app)?);
                let command = if delete {
                    Command::DeleteAutoscaler { app_id }
                } else {
                    let mut policy = AutoscalerPolicy {
                        min: u32::from(min),
                        max: u32::from(min + spread),
                        evaluation_interval: Duration::from_secs(15),
                        metrics: vec![MetricTarget::Cpu {
                            target_utilization: Millionths::from_percent(50),
                        }],
                        tolerance: Millionths(100_000),
                        scale_up: ScalingRules::default_up(),
                        scale_down: ScalingRules::default_down(),
                    };
                    policy.scale_up.policies[1].value = u32::from(spread);
                    Command::PutAutoscaler { app_id, policy }
                };
                (operator(), command, None)
            }
            Op::Autoscale { app, delta, stale } => {
                let app_id = AppId::new(pick(&APPS, app)?);
                let instances =
                    self.state.services().app(&app_id).map_or(1, |app| app.spec.instances);
                let current = if stale { instances + 1 } else { instances };
                let desired = u32::try_from(i64::from(current) + i64::from(delta)).ok()?;
                let command = Command::AutoscaleApp {
                    app_id,
                    scaling: Scaling {
                        inputs: Vec::new(),
                        current,
                        recommended: desired,
                        desired,
                        limited_by: Limit::None,
                    },
                    deployment_id: self.fresh_deployment_id(),
                };
                (Actor::Leader, command, None)
            }
            Op::Recommend { app, count } => {
                let app_id = AppId::new(pick(&APPS, app)?);
                (
                    Actor::Leader,
                    Command::RecordRecommendation { app_id, count: u32::from(count) },
                    None,
                )
            }
            Op::ResetDelay { app } => (
                operator(),
                Command::ResetLaunchDelay { app_id: AppId::new(pick(&APPS, app)?) },
                None,
            ),
            Op::Weight { role, weight } => {
                let role = Role::parse(pick(&ROLES, role)?).ok()?;
                let command = Command::UpdateWeights {
                    weights: vec![(role, Scalar::from_units(i64::from(weight)))],
                };
                (operator(), command, None)
            }
            Op::Quota { role, cpus } => {
                let role = Role::parse(pick(&ROLES, role)?).ok()?;
                let amount = Scalar::from_units(i64::from(cpus));
                let config = QuotaConfig {
                    role,
                    guarantees: Quantities::from_pairs(&[("cpus", amount)]),
                    limits: Quantities::from_pairs(&[("cpus", amount)]),
                };
                (operator(), Command::UpdateQuota { configs: vec![config] }, None)
            }
            Op::Maintenance { agent, start } => {
                let agents: Vec<corral_state::model::Agent> =
                    self.state.agents().values().cloned().collect();
                let agent = pick(&agents, agent)?;
                let window = MaintenanceWindow {
                    machine_ids: vec![machine_of(&agent)],
                    unavailability: Unavailability {
                        start: self.clock.plus(Duration::from_secs(u64::from(start))),
                        duration: Some(Duration::from_secs(600)),
                    },
                };
                (operator(), Command::UpdateMaintenanceSchedule { windows: vec![window] }, None)
            }
            Op::StartMaintenance { agent } => {
                let agents: Vec<corral_state::model::Agent> =
                    self.state.agents().values().cloned().collect();
                let machines = vec![machine_of(&pick(&agents, agent)?)];
                (operator(), Command::StartMaintenance { machines }, None)
            }
            Op::StopMaintenance { agent } => {
                let agents: Vec<corral_state::model::Agent> =
                    self.state.agents().values().cloned().collect();
                let machines = vec![machine_of(&pick(&agents, agent)?)];
                (operator(), Command::StopMaintenance { machines }, None)
            }
            Op::Settings { which, seconds } => {
                let seconds = Duration::from_secs(u64::from(seconds));
                let mut change = SettingsChange::default();
                match which % 4 {
                    0 => change.agent_heartbeat_timeout = Some(seconds),
                    1 => change.offer_timeout = Some((!seconds.is_zero()).then_some(seconds)),
                    2 => change.max_statuses_per_task = Some(u32::from(which)),
                    _ => change.dedup_window = Some(seconds),
                }
                (operator(), Command::ChangeSettings { change }, None)
            }
            Op::Retry { .. } => return None,
            Op::Garbage { which, text, amount } => garbage(which, &text, amount),
        })
    }

    fn step(&mut self, op: &Op) {
        if let Op::Retry { back } = op {
            self.retry(*back);
            return;
        }
        let Some((actor, command, request_id)) = self.command_for(op) else { return };
        let request_id =
            request_id.unwrap_or_else(|| RequestId::new(format!("req-{}", self.entries.len())));
        let entry = Entry { request_id, actor, at: self.clock, command };
        let before = self.state.without_bookkeeping();
        let outcome = self.state.apply(&entry);
        if outcome.is_rejected() {
            assert_eq!(
                before,
                self.state.without_bookkeeping(),
                "rejected {:?} changed the state: {outcome:?}",
                entry.command.kind()
            );
        }
        check_terminal_states_stay(outcome.events());
        assert_not_overcommitted(&self.state);
        check_tally(&self.state, &entry.command);
        check_services(&before, &self.state, &entry.command);
        self.entries.push(entry);
        self.outcomes.push(outcome);
    }

    /// Applies an earlier entry again: a remembered request id returns its first outcome.
    fn retry(&mut self, back: u8) {
        if self.entries.is_empty() {
            return;
        }
        let index = self.entries.len() - 1 - (back as usize % self.entries.len());
        let entry = self.entries[index].clone();
        let remembered = self.state.outcome_of(&entry.request_id).cloned();
        let before = self.state.without_bookkeeping();
        let outcome = self.state.apply(&entry);
        if let Some(first) = remembered {
            assert_eq!(outcome, Outcome::Duplicate(Box::new(first)));
            assert_eq!(before, self.state.without_bookkeeping(), "a duplicate changed the state");
        }
        assert_not_overcommitted(&self.state);
        check_tally(&self.state, &entry.command);
        self.entries.push(entry);
        self.outcomes.push(outcome);
    }
}

/// The metrics' running totals, kept command by command, equal a count from scratch.
fn check_tally(state: &ClusterState, command: &Command) {
    assert_eq!(
        state.tally(),
        &Tally::recount(state),
        "the running tally drifted from a recount after {}",
        command.kind()
    );
}

/// Every app holds one service port per port asked for, none 0 and none another app's, and
/// the state's index of them says exactly that; an app that stays keeps its ports.
fn check_service_ports(state: &ClusterState) {
    let mut held = std::collections::BTreeMap::new();
    for app in state.services().apps.values() {
        assert_eq!(app.service_ports.len(), app.spec.service_ports.len(), "{}", app.id);
        for (&asked, &port) in app.spec.service_ports.iter().zip(&app.service_ports) {
            assert_ne!(port, 0, "{} holds port 0", app.id);
            assert!(asked == 0 || asked == port, "{} asked for {asked}, holds {port}", app.id);
            let previous = held.insert(port, app.id.clone());
            assert!(previous.is_none(), "port {port} held by {previous:?} and {}", app.id);
        }
    }
    assert_eq!(held, state.services().service_ports);
}

/// Commands naming ids that may not exist, with odd amounts: they must be rejected or
/// applied cleanly, never panic.
fn garbage(which: u8, text: &str, amount: u16) -> (Actor, Command, Option<RequestId>) {
    let framework_id = FrameworkId::new(text);
    let agent_id = AgentId::new(text);
    let task_id = TaskId::new(text);
    let resources = res(&format!("cpus:{amount};mem:{amount}"));
    let command = match which % 10 {
        0 => Command::Kill {
            framework_id: framework_id.clone(),
            task_id,
            agent_id: None,
            kill_policy: None,
        },
        1 => Command::Acknowledge {
            framework_id: framework_id.clone(),
            agent_id,
            task_id,
            uuid: UpdateUuid::new(text),
        },
        2 => Command::Accept {
            framework_id: framework_id.clone(),
            offer_ids: vec![OfferId::new(text)],
            operations: vec![],
            filters: Filters::default(),
        },
        3 => Command::OfferResources {
            offers: vec![OfferSpec {
                framework_id: framework_id.clone(),
                agent_id,
                role: Role::default_role(),
                resources,
            }],
        },
        4 => Command::ReregisterAgent {
            agent_id: agent_id.clone(),
            info: AgentInfo {
                hostname: text.to_owned(),
                address: text.to_owned(),
                attributes: Attributes::default(),
            },
            resources,
            tasks: vec![],
        },
        5 => Command::Subscribe {
            framework_id: Some(framework_id.clone()),
            info: framework_info(text, &["*"]),
        },
        6 => Command::UnreserveResources { agent_id, resources },
        7 => Command::Shutdown {
            framework_id: framework_id.clone(),
            executor_id: text.into(),
            agent_id,
        },
        8 => Command::Decline {
            framework_id: framework_id.clone(),
            offer_ids: vec![],
            filters: Filters::default(),
        },
        _ => Command::Reconcile {
            framework_id: framework_id.clone(),
            tasks: vec![(task_id, Some(agent_id))],
        },
    };
    let actor = if which % 3 == 0 { Actor::Framework(framework_id) } else { Actor::Leader };
    (actor, command, None)
}

/// The service invariants, after every step:
/// - a launch never takes an app past its instances of the current configuration, nor past
///   what its upgrade strategy allows in all (counts above a limit, after a scale down, only
///   fall);
/// - the instance index and the service framework's tasks agree;
/// - no deployment outlives its met target.
fn check_services(before: &ClusterState, after: &ClusterState, command: &Command) {
    check_service_ports(after);
    for app in after.services().apps.values() {
        let now = after.instance_counts(app);
        let instances = app.spec.instances;
        let maximum = app.spec.upgrade.maximum_live(instances);
        // Instances of the configuration the app has now, counted before the command: a
        // rollback to an earlier configuration finds that configuration's instances still
        // running (the deployment it starts scales them down), and only a launch may add to
        // them. A deleted app's instances stay live until they end; the same id created
        // again finds them.
        let current_then = before.instance_counts(app).current;
        let live_then = match before.services().app(&app.id) {
            Some(old) => before.instance_counts(old).live,
            None => before.instance_counts(app).live,
        };
        assert!(
            now.current <= instances.max(current_then),
            "{} has {} instances of its configuration, {} asked, after {}",
            app.id,
            now.current,
            instances,
            command.kind()
        );
        assert!(
            now.live <= maximum.max(live_then),
            "{} has {} live instances, its strategy allows {}, after {}",
            app.id,
            now.live,
            maximum,
            command.kind()
        );
    }
    let services = after.services();
    let framework_id = after.service_framework_id();
    for (app_id, instances) in &services.instances {
        for (task_id, instance) in instances {
            assert_eq!(services.instance_apps.get(task_id), Some(app_id), "index of {task_id}");
            let task = after.task(&framework_id, task_id);
            let task = task.unwrap_or_else(|| panic!("instance {task_id} has no task"));
            assert!(!task.state.is_terminal(), "instance {task_id} is {:?}", task.state);
            assert_eq!(task.agent_id(), &instance.agent_id, "agent of {task_id}");
        }
    }
    assert_eq!(
        services.instance_apps.len(),
        services.instances.values().map(|instances| instances.len()).sum::<usize>(),
        "every indexed task is an instance"
    );
    for task in after.tasks().filter(|task| task.framework_id == framework_id) {
        if !task.state.is_terminal() && services.instance(task.id()).is_none() {
            assert!(
                task.kill_requested.is_some(),
                "{} runs outside the index without being killed",
                task.id()
            );
        }
    }
    // The autoscaler scales only an app no deployment held, from its count, within bounds.
    if let Command::AutoscaleApp { app_id, scaling, .. } = command {
        let scaled = after.services().autoscalers.get(app_id).map(|a| a.scalings.len());
        let was = before.services().autoscalers.get(app_id).map(|a| a.scalings.len());
        if scaled != was {
            let policy = &before.services().autoscalers[app_id].policy;
            assert!(
                before.services().deployments_of(app_id).next().is_none(),
                "scaled while deploying"
            );
            assert_eq!(before.services().apps[app_id].spec.instances, scaling.current);
            assert_eq!(after.services().apps[app_id].spec.instances, scaling.desired);
            assert!(policy.min <= scaling.desired && scaling.desired <= policy.max);
        }
    }
    for deployment in services.deployments.values() {
        assert!(
            !deployment_met(after, deployment),
            "deployment {} of {} is met but still open after {}",
            deployment.id,
            deployment.app_id,
            command.kind()
        );
    }
}

/// The target of a deployment, as the state defines it: every active instance runs the
/// app's configuration and is ready, and there are `instances` of them (none for a stop).
fn deployment_met(state: &ClusterState, deployment: &Deployment) -> bool {
    let services = state.services();
    let Some(app) = services.app(&deployment.app_id) else {
        return services.instances_of(&deployment.app_id).next().is_none();
    };
    let framework_id = state.service_framework_id();
    let mut ready = 0;
    for (task_id, instance) in services.instances_of(&app.id) {
        if instance.is_inactive(app.spec.unreachable, state.now()) {
            continue;
        }
        let Some(task) = state.task(&framework_id, task_id) else { return false };
        if instance.config_version != app.config_version || !task.is_ready(app.spec.health_checked)
        {
            return false;
        }
        ready += 1;
    }
    ready == app.spec.instances
}

/// Invariant 4: a terminal state never changes (LOST may be followed by the true end).
fn check_terminal_states_stay(events: &[Event]) {
    for event in events {
        if let Event::TaskUpdated { previous, status, .. } = event {
            assert!(
                !previous.is_terminal()
                    || (*previous == TaskState::Lost && status.state.is_terminal()),
                "terminal {previous:?} became {:?}",
                status.state
            );
        }
    }
}

fn run(ops: &[Op]) -> Driver {
    let mut driver = Driver::new();
    for op in ops {
        driver.step(op);
    }
    driver
}

fn replay(entries: &[Entry]) -> (ClusterState, Vec<Outcome>) {
    let mut state = ClusterState::default();
    let outcomes = entries.iter().map(|entry| state.apply(entry)).collect();
    (state, outcomes)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, max_shrink_iters: 2_000, ..ProptestConfig::default() })]

    /// Over-commitment, terminal states, rejections that change nothing and duplicates are
    /// checked after every step inside the driver.
    #[test]
    fn invariants_hold_after_every_command(ops in proptest::collection::vec(op(), 1..80)) {
        let driver = run(&ops);
        prop_assert_eq!(driver.entries.len(), driver.outcomes.len());
    }

    #[test]
    fn replaying_the_same_entries_gives_the_same_events_and_digest(ops in proptest::collection::vec(op(), 1..80)) {
        let driver = run(&ops);
        let (first, first_outcomes) = replay(&driver.entries);
        let (second, second_outcomes) = replay(&driver.entries);
        prop_assert_eq!(first.digest(), driver.state.digest());
        prop_assert_eq!(second.digest(), driver.state.digest());
        prop_assert_eq!(&first_outcomes, &driver.outcomes);
        prop_assert_eq!(&second_outcomes, &driver.outcomes);
    }

    /// The journal answers a diff from the fingerprints it wrote with each entry, for the
    /// entities the entry named; that is the diff of the two states only if nothing a diff
    /// compares ever changes without the entry (or its events) naming it.
    #[test]
    fn a_diff_from_fingerprints_equals_the_diff_of_the_states(ops in proptest::collection::vec(op(), 1..80), from in any::<prop::sample::Index>(), to in any::<prop::sample::Index>()) {
        let driver = run(&ops);
        let steps = driver.entries.len();
        let (from, to) = (from.index(steps + 1), to.index(steps + 1));
        let (from, to) = (from.min(to), from.max(to));
        // Each step's state and the fingerprints of what its entry named, as the journal
        // writes them; step 0 is the empty state before the first entry.
        let mut states = vec![ClusterState::default()];
        let mut named: Vec<Vec<(Entity, Fingerprint)>> = vec![Vec::new()];
        for entry in &driver.entries {
            let mut state = states.last().expect("the empty state is first").clone();
            let outcome = state.apply(entry);
            let mut entities: std::collections::BTreeSet<Entity> = entry.entities().into_iter().collect();
            entities.extend(outcome.events().iter().flat_map(Event::concerns));
            named.push(
                entities
                    .into_iter()
                    .filter_map(|entity| Some((entity.clone(), state.fingerprint(&entity)?)))
                    .collect(),
            );
            states.push(state);
        }
        let last_at = |entity: &Entity, step: usize| -> Fingerprint {
            (0..=step)
                .rev()
                .find_map(|at| named[at].iter().find(|(e, _)| e == entity).map(|(_, f)| f.clone()))
                .unwrap_or_default()
        };
        let touched: std::collections::BTreeSet<Entity> =
            named[from + 1..=to].iter().flatten().map(|(entity, _)| entity.clone()).collect();
        let fingerprints: Vec<(Entity, Fingerprint, Fingerprint)> = touched
            .iter()
            .map(|entity| (entity.clone(), last_at(entity, from), last_at(entity, to)))
            .collect();
        let by_fingerprints = diff_fingerprints(fingerprints.iter().map(|(e, b, a)| (e, b, a)));
        let by_states = diff_excerpts(&states[from].excerpt(&touched), &states[to].excerpt(&touched));
        prop_assert_eq!(by_fingerprints, by_states);
    }

    #[test]
    fn snapshot_then_tail_equals_full_replay(ops in proptest::collection::vec(op(), 1..80), cut in any::<prop::sample::Index>()) {
        let driver = run(&ops);
        let cut = cut.index(driver.entries.len() + 1);
        let (head, _) = replay(&driver.entries[..cut]);
        let mut restored = ClusterState::from_snapshot(&head.snapshot().expect("the state encodes")).unwrap();
        let tail_outcomes: Vec<Outcome> = driver.entries[cut..].iter().map(|entry| restored.apply(entry)).collect();
        prop_assert_eq!(restored.digest(), driver.state.digest());
        prop_assert_eq!(restored.tally(), driver.state.tally());
        prop_assert_eq!(&tail_outcomes[..], &driver.outcomes[cut..]);
    }
}

#[test]
fn a_rollback_finds_the_running_instances_of_the_configuration_it_restores() {
    // Found by `snapshot_then_tail_equals_full_replay`: /web runs one instance of its first
    // configuration, is scaled to 0 (the kill is the scheduler's to send), then given a new
    // configuration; rolling that back makes the running instance current again, above the 0
    // asked, which the deployment the rollback starts then scales down.
    let ops = vec![
        Op::RegisterAgent { host: 0, cpus: 1, mem: 64 },
        Op::PutApps { first: 69, second: 28, instances: 1, force: false },
        Op::Offer { framework: 0, agent: 0, percent: 25 },
        Op::LaunchService { app: 42, offer: 0, count: 1, stale: false },
        Op::PutApps { first: 69, second: 25, instances: 0, force: true },
        Op::PutApp {
            app: 198,
            instances: 0,
            health: false,
            over: 0,
            under: 0,
            config: 0,
            force: true,
        },
        Op::CancelDeployment { which: 0, roll_back: true },
    ];
    let driver = run(&ops);
    let web = driver.state.services().app(&AppId::new("/web")).expect("/web exists");
    assert_eq!(web.spec.instances, 0);
    assert_eq!(driver.state.instance_counts(web).current, 1);
}

#[test]
fn equal_states_built_in_different_orders_have_equal_digests() {
    // Two agents registered, then the frameworks: the maps are ordered by id, not by history.
    let build = |names: &[&str]| {
        let mut driver = Driver::new();
        for name in names {
            let info = AgentInfo {
                hostname: (*name).to_owned(),
                address: "10.0.0.1:5051".to_owned(),
                attributes: Attributes::default(),
            };
            let entry = Entry {
                request_id: RequestId::new(*name),
                actor: Actor::Leader,
                at: driver.clock,
                command: Command::RegisterAgent { info, resources: res("cpus:1") },
            };
            driver.state.apply(&entry);
        }
        driver.state
    };
    let state = build(&["a", "b"]);
    assert_eq!(state.digest(), build(&["a", "b"]).digest());
    let by_host: BTreeMap<String, AgentId> =
        state.agents().values().map(|a| (a.info.hostname.clone(), a.id.clone())).collect();
    assert_eq!(by_host.len(), 2);
}

/// A state with a bit of everything, for arbitrary commands to hit.
fn populated() -> ClusterState {
    let ops = [
        Op::RegisterAgent { host: 1, cpus: 8, mem: 4096 },
        Op::RegisterAgent { host: 2, cpus: 4, mem: 2048 },
        Op::Subscribe { partition_aware: true },
        Op::Subscribe { partition_aware: false },
        Op::Offer { framework: 0, agent: 0, percent: 50 },
        Op::Offer { framework: 1, agent: 1, percent: 50 },
        Op::Accept { offer: 0, tasks: vec![(1, 64), (2, 128)], refuse: 1 },
        Op::Update { task: 0, state: 2 },
    ];
    run(&ops).state
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4_000, ..ProptestConfig::default() })]

    /// Whatever bytes decode as a command, applying it never panics, and a rejection changes
    /// nothing.
    #[test]
    fn arbitrary_decoded_commands_never_panic(body in proptest::collection::vec(any::<u8>(), 0..96)) {
        let mut bytes = corral_state::FORMAT_VERSION.to_le_bytes().to_vec();
        bytes.extend_from_slice(&body);
        if let Ok(entry) = corral_state::codec::decode_entry(&bytes) {
            let mut state = populated();
            let before = state.without_bookkeeping();
            let outcome = state.apply(&entry);
            if outcome.is_rejected() {
                prop_assert_eq!(before, state.without_bookkeeping());
            }
            assert_not_overcommitted(&state);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    /// Real commands with a few bytes changed decode far more often than random bytes, so
    /// this reaches deep into every handler with odd values.
    #[test]
    fn mutated_commands_never_panic(
        ops in proptest::collection::vec(op(), 10..40),
        pick_entry in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let driver = run(&ops);
        prop_assume!(!driver.entries.is_empty());
        let entry = &driver.entries[pick_entry.index(driver.entries.len())];
        let mut bytes = corral_state::codec::encode_entry(entry).expect("generated entries encode");
        for (position, value) in flips {
            let position = 2 + position.index(bytes.len() - 2);
            bytes[position] = value;
        }
        if let Ok(mutated) = corral_state::codec::decode_entry(&bytes) {
            let mut state = driver.state.clone();
            let before = state.without_bookkeeping();
            let outcome = state.apply(&mutated);
            if outcome.is_rejected() {
                prop_assert_eq!(before, state.without_bookkeeping());
            }
            assert_not_overcommitted(&state);
        }
    }
}

/// The encoding is what replicas, snapshots on disk and `corral replay` compare: states built
/// from fixed pseudo-random histories (every kind of command, services and maintenance
/// included) must encode byte for byte as they did when every map was a `BTreeMap`.
#[test]
fn states_from_fixed_histories_encode_as_before() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let histories = proptest::collection::vec(op(), 100..200);
    let mut all = blake3::Hasher::new();
    for _ in 0..24 {
        let ops = histories.new_tree(&mut runner).expect("a history").current();
        let state = run(&ops).state;
        all.update(&state.snapshot().expect("the state encodes"));
        all.update(state.digest().to_string().as_bytes());
    }
    assert_eq!(
        all.finalize().to_hex().to_string(),
        "a7e00adac8ca78b7974487f3583a1886bfd48332b2c51f3203d5dff761565332"
    );
}
