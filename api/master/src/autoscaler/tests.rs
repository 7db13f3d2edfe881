//! The leader's side of the autoscaler without its IO: usage turned into utilization, the
//! state turned into each app's view (which instances count as ready), and a view and its
//! samples turned into what is proposed to the log.

use std::collections::BTreeMap;
use std::time::Duration;

use corral_marathon::parse_app;
use corral_state::autoscale::{InstanceSample, MetricSample, Readiness, Recommendation};
use corral_state::model::{
    AgentInfo, Attributes, AutoscalerPolicy, Decision, Filters, Hold, HoldReason, Limit,
    MetricKind, MetricReading, MetricTarget, Millionths, Scaling, ScalingRules, TaskInfo,
    TaskSource, TaskState, TaskStatus,
};
use corral_state::{
    Actor, AgentId, AppId, Cancellation, ClusterState, Command, DeploymentId, Entry, Event,
    FrameworkId, KillScaling, OfferSpec, Outcome, PutMode, RequestId, Role, ServiceLaunch, TaskId,
    Timestamp, UpdateUuid, Wipe,
};
use serde_json::{json, Value};

use super::{
    agents_to_sample, per_instance, plan, readings, stale_series, view_apps, AppView, Memory, Plan,
    Proposal, StatisticsEntry, TaskUsage, UsageReading, UsageTable,
};

const MIB: u64 = 1 << 20;

fn reading(timestamp: f64, cpu_seconds: f64) -> UsageReading {
    UsageReading {
        timestamp,
        cpu_seconds,
        cpus_limit: Some(0.5),
        mem_rss_bytes: 24 * MIB,
        mem_limit_bytes: Some(32 * MIB),
    }
}

fn usage(latest: UsageReading, previous: Option<UsageReading>) -> TaskUsage {
    TaskUsage {
        framework_id: FrameworkId::new("services"),
        agent_id: AgentId::new("agent-1"),
        latest,
        previous,
    }
}

#[test]
fn cpu_utilization_is_the_cpu_seconds_used_between_two_samples_over_the_tasks_cpus() {
    // 1.5 CPU seconds in 2 s is 0.75 CPU, of the 0.5 asked for: 150 %.
    let busy = usage(reading(102.0, 11.5), Some(reading(100.0, 10.0)));
    assert_eq!(busy.cpu_utilization(), Some(Millionths(1_500_000)));
    // 0.25 CPU seconds in 2 s of 0.5: 25 %.
    let light = usage(reading(102.0, 10.25), Some(reading(100.0, 10.0)));
    assert_eq!(light.cpu_utilization(), Some(Millionths(250_000)));
    // A counter that went back (the task's cgroup was recreated) reads as idle, not negative.
    let reset = usage(reading(102.0, 1.0), Some(reading(100.0, 10.0)));
    assert_eq!(reset.cpu_utilization(), Some(Millionths(0)));
}

#[test]
fn cpu_utilization_needs_two_samples_time_between_them_and_a_cpu_limit() {
    let first = usage(reading(100.0, 10.0), None);
    assert_eq!(first.cpu_utilization(), None, "one sample is no rate");
    let same_instant = usage(reading(100.0, 11.0), Some(reading(100.0, 10.0)));
    assert_eq!(same_instant.cpu_utilization(), None);
    let backwards = usage(reading(99.0, 11.0), Some(reading(100.0, 10.0)));
    assert_eq!(backwards.cpu_utilization(), None);
    for cpus_limit in [None, Some(0.0)] {
        let latest = UsageReading { cpus_limit, ..reading(102.0, 11.0) };
        let unlimited = usage(latest, Some(reading(100.0, 10.0)));
        assert_eq!(unlimited.cpu_utilization(), None, "{cpus_limit:?}");
    }
}

#[test]
fn memory_utilization_is_the_rss_over_the_memory_limit() {
    // One sample is enough: memory is a level, not a rate.
    assert_eq!(usage(reading(100.0, 0.0), None).memory_utilization(), Some(Millionths(750_000)));
    let over = UsageReading { mem_rss_bytes: 48 * MIB, ..reading(100.0, 0.0) };
    assert_eq!(usage(over, None).memory_utilization(), Some(Millionths(1_500_000)));
    let empty = UsageReading { mem_rss_bytes: 0, ..reading(100.0, 0.0) };
    assert_eq!(usage(empty, None).memory_utilization(), Some(Millionths(0)));
    for mem_limit_bytes in [None, Some(0)] {
        let unlimited = UsageReading { mem_limit_bytes, ..reading(100.0, 0.0) };
        assert_eq!(usage(unlimited, None).memory_utilization(), None, "{mem_limit_bytes:?}");
    }
}

/// An agent's `/monitor/statistics` answer, one entry per `(task, timestamp, cpu seconds,
/// rss)`, each task asking for 0.5 CPU and 32 MiB.
fn statistics(entries: &[(&str, f64, f64, u64)]) -> Vec<StatisticsEntry> {
    let entries: Vec<Value> = entries
        .iter()
        .map(|(task_id, timestamp, cpu_seconds, rss)| {
            json!({
                "executor_id": task_id,
                "executor_name": format!("Command Executor (Task: {task_id})"),
                "framework_id": "services",
                "source": task_id,
                "statistics": {
                    "timestamp": timestamp,
                    "cpus_user_time_secs": cpu_seconds * 0.75,
                    "cpus_system_time_secs": cpu_seconds * 0.25,
                    "cpus_limit": 0.5,
                    "mem_rss_bytes": rss,
                    "mem_limit_bytes": 32 * MIB,
                },
            })
        })
        .collect();
    serde_json::from_value(Value::Array(entries)).expect("the agent's shape")
}

#[test]
fn an_agents_statistics_become_one_reading_per_task() {
    let entries: Vec<StatisticsEntry> = serde_json::from_value(json!([
        {"executor_id": "web.1", "framework_id": "services", "source": "web.1",
         "statistics": {"timestamp": 100.5, "cpus_user_time_secs": 3.0,
                        "cpus_system_time_secs": 1.0, "cpus_limit": 0.5,
                        "mem_rss_bytes": 1024, "mem_limit_bytes": 4096}},
        // A Mesos agent's command task: no source, its executor is the task; counters it
        // does not know are absent.
        {"executor_id": "batch.7", "framework_id": "spark",
         "statistics": {"timestamp": 101.0}},
        // An executor running a task group names each task in `source`.
        {"executor_id": "pod-executor", "framework_id": "services", "source": "pod.db",
         "statistics": {"timestamp": 102.0, "cpus_user_time_secs": 0.5}},
    ]))
    .expect("the agent's shape");
    assert_eq!(
        readings(entries),
        [
            (
                TaskId::new("web.1"),
                FrameworkId::new("services"),
                UsageReading {
                    timestamp: 100.5,
                    cpu_seconds: 4.0,
                    cpus_limit: Some(0.5),
                    mem_rss_bytes: 1024,
                    mem_limit_bytes: Some(4096),
                },
            ),
            (
                TaskId::new("batch.7"),
                FrameworkId::new("spark"),
                UsageReading {
                    timestamp: 101.0,
                    cpu_seconds: 0.0,
                    cpus_limit: None,
                    mem_rss_bytes: 0,
                    mem_limit_bytes: None,
                },
            ),
            (
                TaskId::new("pod.db"),
                FrameworkId::new("services"),
                UsageReading {
                    timestamp: 102.0,
                    cpu_seconds: 0.5,
                    cpus_limit: None,
                    mem_rss_bytes: 0,
                    mem_limit_bytes: None,
                },
            ),
        ]
    );
}

fn kept(table: &UsageTable, task_id: &str) -> Option<(f64, Option<f64>)> {
    let usage = table.get(&TaskId::new(task_id))?;
    Some((usage.latest.timestamp, usage.previous.map(|previous| previous.timestamp)))
}

#[test]
fn the_usage_table_keeps_two_samples_per_task_and_forgets_what_is_no_longer_reported() {
    let table = UsageTable::default();
    let (one, two) = (AgentId::new("agent-1"), AgentId::new("agent-2"));
    table.record(&one, readings(statistics(&[("a", 100.0, 1.0, MIB), ("b", 100.0, 1.0, MIB)])));
    table.record(&two, readings(statistics(&[("c", 100.0, 1.0, MIB)])));
    assert_eq!(kept(&table, "a"), Some((100.0, None)));

    // The agent's next sample pushes the first back; the one before that is dropped.
    table.record(&one, readings(statistics(&[("a", 101.0, 1.5, MIB), ("b", 101.0, 1.0, MIB)])));
    table.record(&one, readings(statistics(&[("a", 102.0, 2.5, MIB), ("b", 102.0, 1.0, MIB)])));
    assert_eq!(kept(&table, "a"), Some((102.0, Some(101.0))));
    // The leader reading faster than the agent samples sees the same sample again: it must
    // not become its own previous (no time between them, no rate).
    table.record(&one, readings(statistics(&[("a", 102.0, 2.5, MIB), ("b", 102.0, 1.0, MIB)])));
    assert_eq!(kept(&table, "a"), Some((102.0, Some(101.0))));
    let a = table.get(&TaskId::new("a")).expect("a is kept");
    assert_eq!(a.cpu_utilization(), Some(Millionths(2_000_000)), "1 CPU second in 1 s of 0.5");

    // `b` ended: agent-1 no longer reports it. agent-2's task is not agent-1's to forget.
    table.record(&one, readings(statistics(&[("a", 103.0, 3.0, MIB)])));
    assert_eq!(kept(&table, "b"), None);
    assert_eq!(kept(&table, "c"), Some((100.0, None)));
    // agent-2 runs nothing any more (or left): not asked, forgotten.
    table.keep_agents(&[one.clone()].into());
    assert_eq!(kept(&table, "c"), None);
    assert_eq!(kept(&table, "a"), Some((103.0, Some(102.0))));
    table.clear();
    assert_eq!(kept(&table, "a"), None);
}

#[test]
fn the_leader_exports_each_tasks_latest_usage() {
    let table = UsageTable::default();
    table.record(
        &AgentId::new("agent-1"),
        readings(statistics(&[("a", 100.0, 2.0, 3 * MIB), ("b", 100.0, 0.5, MIB)])),
    );
    let families = table.metric_families().expect("valid families");
    let series: Vec<(String, String, f64)> = families
        .iter()
        .flat_map(|family| {
            family.get_metric().iter().map(|metric| {
                let task = metric
                    .get_label()
                    .iter()
                    .find(|label| label.name() == "task_id")
                    .expect("a task label")
                    .value()
                    .to_owned();
                let value = metric.get_counter().value() + metric.get_gauge().value();
                (family.name().to_owned(), task, value)
            })
        })
        .collect();
    let cpu = "corral_task_cpu_seconds_total".to_owned();
    let rss = "corral_task_memory_rss_bytes".to_owned();
    assert_eq!(
        series,
        [
            (cpu.clone(), "a".to_owned(), 2.0),
            (cpu, "b".to_owned(), 0.5),
            (rss.clone(), "a".to_owned(), (3 * MIB) as f64),
            (rss, "b".to_owned(), MIB as f64),
        ]
    );
    assert!(UsageTable::default().metric_families().expect("valid").is_empty());
}

/// A cluster state driven through real entries, with a clock the test sets.
struct World {
    state: ClusterState,
    clock: Timestamp,
    agent_id: AgentId,
}

impl World {
    /// One agent, nothing else.
    fn new() -> World {
        let mut world = World {
            state: ClusterState::default(),
            clock: Timestamp::from_secs(1_000),
            agent_id: AgentId::new("none yet"),
        };
        world.agent_id = world.register("host-a", "10.0.0.1:5051");
        world
    }

    /// Registers one more agent; launches and reports stay on the current one.
    fn register(&mut self, hostname: &str, address: &str) -> AgentId {
        let info = AgentInfo {
            hostname: hostname.to_owned(),
            address: address.to_owned(),
            attributes: Attributes::default(),
        };
        let resources = "cpus:8;mem:8192;ports:[31000-31010]".parse().expect("resources");
        let events = self.apply(Actor::Leader, Command::RegisterAgent { info, resources });
        let [Event::AgentAdded { agent_id, .. }] = &events[..] else {
            panic!("no agent added: {events:?}")
        };
        agent_id.clone()
    }

    fn apply(&mut self, actor: Actor, command: Command) -> Vec<Event> {
        let request = self.state.applied_commands() + 1;
        let entry = Entry {
            request_id: RequestId::new(format!("r{request}")),
            actor,
            at: self.clock,
            command,
        };
        match self.state.apply(&entry) {
            Outcome::Accepted(events) => events,
            other => panic!("{:?} refused: {other:?}", entry.command),
        }
    }

    fn operator(&mut self, command: Command) -> Vec<Event> {
        self.apply(Actor::Operator { principal: Some("ops".to_owned()) }, command)
    }

    /// Creates or replaces an app from its Marathon JSON.
    fn put_app(&mut self, app: Value, deployment: &str) -> AppId {
        let definition = parse_app(app.to_string().as_bytes()).expect("test app is valid");
        let app_id = AppId::new(&definition.id);
        self.operator(Command::PutApp {
            app_id: app_id.clone(),
            spec: definition.spec(),
            definition: definition.stored_definition(),
            mode: PutMode::CreateOrReplace,
            force: corral_state::Force::Yes,
            deployment_id: DeploymentId::new(deployment),
        });
        app_id
    }

    fn finish(&mut self, deployment: &str) {
        self.operator(Command::CancelDeployment {
            deployment_id: DeploymentId::new(deployment),
            cancellation: Cancellation::Abandon,
        });
    }

    fn autoscale(&mut self, app_id: &AppId, policy: AutoscalerPolicy) {
        self.operator(Command::PutAutoscaler { app_id: app_id.clone(), policy });
    }

    /// The built-in scheduler launches `task_ids` of the app on the agent.
    fn launch(&mut self, app_id: &AppId, task_ids: &[&str]) {
        let framework_id = self.state.service_framework_id();
        let count = task_ids.len();
        let offer = OfferSpec {
            framework_id,
            agent_id: self.agent_id.clone(),
            role: Role::parse("*").expect("the default role"),
            resources: format!("cpus:{count};mem:{}", 128 * count).parse().expect("resources"),
        };
        let events = self.apply(Actor::Leader, Command::OfferResources { offers: vec![offer] });
        let [Event::OfferCreated { offer }] = &events[..] else { panic!("no offer: {events:?}") };
        let config_version =
            self.state.services().app(app_id).expect("the app exists").config_version;
        let launches = task_ids
            .iter()
            .map(|task_id| ServiceLaunch {
                app_id: app_id.clone(),
                config_version,
                task_info: TaskInfo::shell(
                    TaskId::new(*task_id),
                    self.agent_id.clone(),
                    "cpus:1;mem:128".parse().expect("resources"),
                    "serve",
                ),
            })
            .collect();
        let launch = Command::LaunchServiceTasks {
            offer_ids: vec![offer.id.clone()],
            launches,
            filters: Filters::default(),
        };
        self.apply(Actor::Leader, launch);
    }

    /// The agent reports the task in `state`, with a health verdict when it has one.
    fn report(&mut self, task_id: &str, state: TaskState, healthy: Option<bool>) {
        let framework_id = self.state.service_framework_id();
        let status = TaskStatus {
            task_id: TaskId::new(task_id),
            state,
            message: None,
            source: TaskSource::Executor,
            reason: None,
            healthy,
            agent_id: Some(self.agent_id.clone()),
            executor_id: None,
            timestamp: self.clock,
            uuid: Some(UpdateUuid::new(format!("{task_id}-{}", self.state.applied_commands()))),
            exit_code: None,
        };
        let agent = Actor::Agent(self.agent_id.clone());
        self.apply(agent, Command::UpdateStatus { framework_id, status });
    }
}

fn percent(value: u64) -> Millionths {
    Millionths::from_percent(value)
}

fn policy(min: u32, max: u32, metrics: Vec<MetricTarget>) -> AutoscalerPolicy {
    AutoscalerPolicy {
        min,
        max,
        evaluation_interval: Duration::from_secs(15),
        metrics,
        tolerance: Millionths(100_000),
        scale_up: ScalingRules::default_up(),
        scale_down: ScalingRules::default_down(),
    }
}

fn cpu_at(target: u64) -> MetricTarget {
    MetricTarget::Cpu { target_utilization: percent(target) }
}

fn memory_at(target: u64) -> MetricTarget {
    MetricTarget::Memory { target_utilization: percent(target) }
}

fn readiness_of(view: &AppView) -> Vec<(&str, Readiness)> {
    view.instances.iter().map(|(task_id, readiness)| (task_id.as_str(), *readiness)).collect()
}

#[test]
fn running_healthy_instances_are_ready_starting_or_unhealthy_ones_are_not_and_killed_ones_leave() {
    let mut world = World::new();
    let checked = world.put_app(
        json!({"id": "/checked", "cmd": "serve", "cpus": 1, "mem": 128, "instances": 6,
               "healthChecks": [{"protocol": "COMMAND", "command": {"value": "true"}}]}),
        "start-checked",
    );
    world.launch(
        &checked,
        &[
            "checked.staging",
            "checked.unchecked",
            "checked.healthy",
            "checked.unhealthy",
            "checked.recovered",
            "checked.killed",
        ],
    );
    world.finish("start-checked");
    for task_id in [
        "checked.unchecked",
        "checked.healthy",
        "checked.unhealthy",
        "checked.recovered",
        "checked.killed",
    ] {
        world.report(task_id, TaskState::Running, None);
    }
    world.report("checked.healthy", TaskState::Running, Some(true));
    world.report("checked.unhealthy", TaskState::Running, Some(false));
    world.report("checked.recovered", TaskState::Running, Some(false));
    world.report("checked.recovered", TaskState::Running, Some(true));
    world.report("checked.killed", TaskState::Running, Some(true));
    world.operator(Command::KillServiceTasks {
        task_ids: vec![TaskId::new("checked.killed")],
        scaling: KillScaling::Replace,
        wipe: Wipe::Keep,
        force: corral_state::Force::Yes,
        deployment_id: DeploymentId::new("kill"),
    });
    // Without health checks, running is ready.
    let plain = world.put_app(
        json!({"id": "/plain", "cmd": "serve", "cpus": 1, "mem": 128, "instances": 2}),
        "start-plain",
    );
    world.launch(&plain, &["plain.running", "plain.starting"]);
    world.report("plain.running", TaskState::Running, None);
    world.report("plain.starting", TaskState::Starting, None);
    world.autoscale(&checked, policy(1, 10, vec![cpu_at(50)]));
    world.autoscale(&plain, policy(1, 4, vec![memory_at(80)]));
    // Not autoscaled: not viewed.
    world.put_app(json!({"id": "/other", "cmd": "serve", "instances": 0}), "start-other");

    let views = view_apps(&world.state);
    assert_eq!(views.keys().collect::<Vec<_>>(), [&checked, &plain]);
    let view = &views[&checked];
    assert_eq!(
        readiness_of(view),
        [
            ("checked.healthy", Readiness::Ready),
            ("checked.recovered", Readiness::Ready),
            ("checked.staging", Readiness::NotReady),
            ("checked.unchecked", Readiness::NotReady),
            ("checked.unhealthy", Readiness::NotReady),
        ]
    );
    assert_eq!((view.current, view.deployment.clone()), (6, None));
    assert_eq!(view.policy, policy(1, 10, vec![cpu_at(50)]));
    let view = &views[&plain];
    assert_eq!(
        readiness_of(view),
        [("plain.running", Readiness::Ready), ("plain.starting", Readiness::NotReady)]
    );
    // Its start deployment still runs: the view carries it, so the decision holds.
    assert_eq!(
        (view.current, view.deployment.clone()),
        (2, Some(DeploymentId::new("start-plain")))
    );
}

#[test]
fn usage_is_read_only_from_the_agents_running_live_instances_of_autoscaled_apps() {
    let mut world = World::new();
    let first = world.agent_id.clone();
    let second = world.register("host-b", "10.0.0.2:5051");
    let third = world.register("host-c", "10.0.0.3:5051");
    let web = world.put_app(
        json!({"id": "/web", "cmd": "serve", "cpus": 1, "mem": 128, "instances": 2}),
        "start-web",
    );
    let batch = world.put_app(
        json!({"id": "/batch", "cmd": "serve", "cpus": 1, "mem": 128, "instances": 1}),
        "start-batch",
    );
    world.launch(&web, &["web.1"]);
    world.agent_id = second.clone();
    world.launch(&web, &["web.2"]);
    world.agent_id = third;
    world.launch(&batch, &["batch.1"]);
    let sampled = |world: &World| -> Vec<(AgentId, String)> {
        agents_to_sample(&world.state).into_iter().collect()
    };
    // Nothing autoscales: no agent is asked anything.
    assert_eq!(sampled(&world), []);

    world.autoscale(&web, policy(1, 4, vec![cpu_at(50)]));
    assert_eq!(
        sampled(&world),
        [(first.clone(), "10.0.0.1:5051".to_owned()), (second.clone(), "10.0.0.2:5051".to_owned())]
    );

    world.agent_id = second;
    world.report("web.2", TaskState::Failed, None);
    assert_eq!(sampled(&world), [(first, "10.0.0.1:5051".to_owned())]);
}

#[test]
fn the_view_carries_the_recorded_window_and_scalings() {
    let mut world = World::new();
    let web = world.put_app(
        json!({"id": "/web", "cmd": "serve", "cpus": 1, "mem": 128, "instances": 1}),
        "start",
    );
    world.finish("start");
    world.autoscale(&web, policy(1, 10, vec![cpu_at(50)]));
    world.apply(Actor::Leader, Command::RecordRecommendation { app_id: web.clone(), count: 2 });
    world.clock = world.clock.plus(Duration::from_secs(20));
    let scaling = Scaling {
        inputs: Vec::new(),
        current: 1,
        recommended: 3,
        desired: 3,
        limited_by: Limit::None,
    };
    let command = Command::AutoscaleApp {
        app_id: web.clone(),
        scaling: scaling.clone(),
        deployment_id: DeploymentId::new("auto-1"),
    };
    world.apply(Actor::Leader, command);

    let view = view_apps(&world.state).remove(&web).expect("autoscaled");
    let started = Timestamp::from_secs(1_000);
    assert_eq!(
        view.recommendations,
        [
            Recommendation { at: started, count: 2 },
            // A scaling records the recommendation it acted on.
            Recommendation { at: started.plus(Duration::from_secs(20)), count: 3 },
        ]
    );
    assert_eq!(view.scalings.len(), 1);
    assert_eq!(view.scalings[0].scaling, scaling);
    assert_eq!(view.current, 3);
    assert_eq!(view.deployment, Some(DeploymentId::new("auto-1")));
}

fn table_with(entries: &[(&str, UsageReading, Option<UsageReading>)]) -> UsageTable {
    let table = UsageTable::default();
    let agent = AgentId::new("agent-1");
    let framework = FrameworkId::new("services");
    let previous: Vec<(TaskId, FrameworkId, UsageReading)> = entries
        .iter()
        .filter_map(|(task_id, _, previous)| {
            Some((TaskId::new(*task_id), framework.clone(), (*previous)?))
        })
        .collect();
    table.record(&agent, previous);
    let latest = entries
        .iter()
        .map(|(task_id, latest, _)| (TaskId::new(*task_id), framework.clone(), *latest))
        .collect();
    table.record(&agent, latest);
    table
}

#[test]
fn each_instance_is_sampled_with_its_readiness_and_its_utilization_when_the_leader_has_one() {
    let table = table_with(&[
        ("busy", reading(102.0, 11.0), Some(reading(100.0, 10.0))),
        ("new", reading(102.0, 0.5), None),
    ]);
    let instances = [
        (TaskId::new("busy"), Readiness::Ready),
        (TaskId::new("new"), Readiness::NotReady),
        (TaskId::new("unreported"), Readiness::Ready),
    ];
    let sample = |utilization: Option<u64>, readiness| InstanceSample {
        readiness,
        utilization: utilization.map(Millionths),
    };
    assert_eq!(
        per_instance(&instances, &table, TaskUsage::cpu_utilization),
        MetricSample::PerInstance(vec![
            sample(Some(1_000_000), Readiness::Ready),
            sample(None, Readiness::NotReady),
            sample(None, Readiness::Ready),
        ])
    );
    assert_eq!(
        per_instance(&instances, &table, TaskUsage::memory_utilization),
        MetricSample::PerInstance(vec![
            sample(Some(750_000), Readiness::Ready),
            sample(Some(750_000), Readiness::NotReady),
            sample(None, Readiness::Ready),
        ])
    );
}

const NOW: Timestamp = Timestamp::from_secs(10_000);

/// An hour-old recommendation of `count`: a window that holds nothing back.
fn settled(count: u32) -> Vec<Recommendation> {
    vec![Recommendation { at: Timestamp::from_secs(6_400), count }]
}

fn view(policy: AutoscalerPolicy, readiness: &[Readiness]) -> AppView {
    let instances: Vec<(TaskId, Readiness)> = readiness
        .iter()
        .enumerate()
        .map(|(index, readiness)| (TaskId::new(format!("web.{index}")), *readiness))
        .collect();
    AppView {
        policy,
        current: u32::try_from(instances.len()).expect("a few instances"),
        deployment: None,
        instances,
        scalings: Vec::new(),
        recommendations: settled(1),
    }
}

fn busy(utilizations: &[(Readiness, u64)]) -> Vec<MetricSample> {
    let samples = utilizations
        .iter()
        .map(|(readiness, value)| InstanceSample {
            readiness: *readiness,
            utilization: Some(percent(*value)),
        })
        .collect();
    vec![MetricSample::PerInstance(samples)]
}

fn web() -> AppId {
    AppId::new("/web")
}

fn cpu_reading(value: u64, ready: u32, not_ready: u32, recommendation: u32) -> MetricReading {
    MetricReading {
        metric: MetricKind::Cpu,
        target: percent(50),
        value: percent(value),
        ready,
        not_ready,
        missing: 0,
        recommendation,
    }
}

#[test]
fn a_scaling_is_proposed_as_one_autoscale_command_carrying_its_inputs() {
    use Readiness::{NotReady, Ready};
    // Two ready at 100 % of a 50 % target, one starting counted as idle: the ready average
    // is the value shown, ceil(3 × (2 × 100 %) / 3 / 50 %) = 4 the recommendation.
    let view = view(policy(1, 10, vec![cpu_at(50)]), &[Ready, Ready, NotReady]);
    let samples = busy(&[(Ready, 100), (Ready, 100), (NotReady, 100)]);
    let scaling = Scaling {
        inputs: vec![cpu_reading(100, 2, 1, 4)],
        current: 3,
        recommended: 4,
        desired: 4,
        limited_by: Limit::None,
    };
    let reason = "scale up from 3 to 4: cpu at 1.000 against a target of 0.500 asked for 4";
    assert_eq!(
        plan(NOW, &web(), &view, &samples, DeploymentId::new("auto-1")),
        Plan {
            decision: Decision::Scale(scaling.clone()),
            at_max: false,
            proposal: Some(Proposal::Scale {
                command: Command::AutoscaleApp {
                    app_id: web(),
                    scaling,
                    deployment_id: DeploymentId::new("auto-1"),
                },
                direction: "up",
                reason: reason.to_owned(),
            }),
        }
    );
}

#[test]
fn not_ready_instances_are_ignored_when_scaling_down() {
    use Readiness::{NotReady, Ready};
    let mut view = view(policy(1, 10, vec![cpu_at(50)]), &[Ready, Ready, Ready, NotReady]);
    view.policy.scale_down.stabilization_window = Duration::ZERO;
    // The unhealthy instance's 100 % does not hold the idle ones up: ceil(3 × 10 % / 50 %).
    let samples = busy(&[(Ready, 10), (Ready, 10), (Ready, 10), (NotReady, 100)]);
    let planned = plan(NOW, &web(), &view, &samples, DeploymentId::new("auto-2"));
    let Some(Proposal::Scale { command, direction, .. }) = planned.proposal else {
        panic!("no scaling: {planned:?}")
    };
    assert_eq!(direction, "down");
    let Command::AutoscaleApp { scaling, .. } = command else { panic!("{command:?}") };
    assert_eq!((scaling.current, scaling.desired), (4, 1));
    assert_eq!(scaling.inputs, [cpu_reading(10, 3, 1, 1)]);
}

#[test]
fn a_hold_records_its_recommendation_only_when_it_changed() {
    use Readiness::Ready;
    // 10 % of 50 % asks for one instance, but the 300 s window remembers three.
    let mut view = view(policy(1, 10, vec![cpu_at(50)]), &[Ready, Ready, Ready]);
    view.recommendations = vec![Recommendation { at: Timestamp::from_secs(9_940), count: 3 }];
    let samples = busy(&[(Ready, 10), (Ready, 10), (Ready, 10)]);
    let planned = plan(NOW, &web(), &view, &samples, DeploymentId::new("unused"));
    assert_eq!(
        planned.decision,
        Decision::Hold(Hold {
            inputs: vec![cpu_reading(10, 3, 0, 1)],
            current: 3,
            recommended: Some(1),
            reason: HoldReason::Stabilized { window: Duration::from_secs(300) },
        })
    );
    assert_eq!(
        planned.proposal,
        Some(Proposal::Record(Command::RecordRecommendation { app_id: web(), count: 1 }))
    );
    // Recorded, the same evaluation proposes nothing: a steady app adds nothing to the log.
    view.recommendations.push(Recommendation { at: NOW, count: 1 });
    let planned = plan(NOW, &web(), &view, &samples, DeploymentId::new("unused"));
    assert!(matches!(planned.decision, Decision::Hold(_)), "{planned:?}");
    assert_eq!(planned.proposal, None);
    // No sample at all recommends nothing, and nothing is recorded.
    let unsampled =
        vec![MetricSample::PerInstance(vec![
            InstanceSample { readiness: Ready, utilization: None };
            3
        ])];
    view.recommendations = settled(3);
    let planned = plan(NOW, &web(), &view, &unsampled, DeploymentId::new("unused"));
    let Decision::Hold(hold) = &planned.decision else { panic!("{planned:?}") };
    assert_eq!(hold.reason, HoldReason::NoMetrics);
    assert_eq!(planned.proposal, None);
}

#[test]
fn a_running_deployment_is_never_scaled_and_is_recorded_as_stay() {
    use Readiness::{NotReady, Ready};
    // The metrics would ask for 4 (a max of 10 allows it); the deployment holds the app.
    let mut view = view(policy(1, 10, vec![cpu_at(50)]), &[Ready, NotReady]);
    view.deployment = Some(DeploymentId::new("operator-upgrade"));
    let samples = busy(&[(Ready, 100), (NotReady, 100)]);
    let planned = plan(NOW, &web(), &view, &samples, DeploymentId::new("unused"));
    assert_eq!(
        planned.decision,
        Decision::Hold(Hold {
            inputs: Vec::new(),
            current: 2,
            recommended: None,
            reason: HoldReason::DeploymentRunning {
                deployment_id: DeploymentId::new("operator-upgrade")
            },
        })
    );
    assert!(!planned.at_max);
    // The window sees the deployment as a recommendation to stay at 2...
    assert_eq!(
        planned.proposal,
        Some(Proposal::Record(Command::RecordRecommendation { app_id: web(), count: 2 }))
    );
    // ...once.
    view.recommendations = settled(2);
    assert_eq!(plan(NOW, &web(), &view, &samples, DeploymentId::new("unused")).proposal, None);
}

#[test]
fn at_max_means_clamped_at_max_while_the_metrics_ask_for_more() {
    use Readiness::Ready;
    let view_at =
        |max: u32, current: usize| view(policy(1, max, vec![cpu_at(50)]), &vec![Ready; current]);
    // 2 at 100 % asks for 4: clamped from 2 to max 3.
    let planned =
        plan(NOW, &web(), &view_at(3, 2), &busy(&[(Ready, 100); 2]), DeploymentId::new("a"));
    assert!(planned.at_max, "{planned:?}");
    let Decision::Scale(scaling) = &planned.decision else { panic!("{planned:?}") };
    assert_eq!((scaling.desired, scaling.limited_by), (3, Limit::Max));
    // Already at max 3, asking for 6: held at its bound, still at max.
    let planned =
        plan(NOW, &web(), &view_at(3, 3), &busy(&[(Ready, 100); 3]), DeploymentId::new("b"));
    assert!(planned.at_max, "{planned:?}");
    let Decision::Hold(hold) = &planned.decision else { panic!("{planned:?}") };
    assert_eq!(hold.reason, HoldReason::AtBound);
    // Reaching max exactly is not being held at it.
    let planned =
        plan(NOW, &web(), &view_at(4, 2), &busy(&[(Ready, 100); 2]), DeploymentId::new("c"));
    assert_eq!(planned.decision.desired(), 4);
    assert!(!planned.at_max, "{planned:?}");
}

#[test]
fn a_memory_policy_scales_from_rss_over_the_limit() {
    // /cache: two running instances holding 24 MiB of their 32 MiB (75 %) against a 50 %
    // target, CPU idle: ceil(2 × 75 / 50) = 3 from the memory metric alone.
    let mut world = World::new();
    let cache = world.put_app(
        json!({"id": "/cache", "cmd": "hold", "cpus": 0.5, "mem": 32, "instances": 2}),
        "start",
    );
    world.launch(&cache, &["cache.1", "cache.2"]);
    world.report("cache.1", TaskState::Running, None);
    // Both running, the start deployment succeeded: nothing holds the app.
    world.report("cache.2", TaskState::Running, None);
    world.autoscale(&cache, policy(1, 5, vec![cpu_at(80), memory_at(50)]));

    let table = UsageTable::default();
    let idle = |timestamp| UsageReading { cpu_seconds: 1.0, ..reading(timestamp, 0.0) };
    for timestamp in [100.0, 101.0] {
        let entries = ["cache.1", "cache.2"]
            .iter()
            .map(|task_id| (TaskId::new(*task_id), FrameworkId::new("services"), idle(timestamp)))
            .collect();
        table.record(&world.agent_id, entries);
    }
    let view = view_apps(&world.state).remove(&cache).expect("autoscaled");
    assert_eq!(view.deployment, None);
    let samples = [
        per_instance(&view.instances, &table, TaskUsage::cpu_utilization),
        per_instance(&view.instances, &table, TaskUsage::memory_utilization),
    ];
    let planned = plan(world.clock, &cache, &view, &samples, DeploymentId::new("auto-memory"));
    let Some(Proposal::Scale { command, direction: "up", reason }) = planned.proposal else {
        panic!("no scale up: {planned:?}")
    };
    assert_eq!(
        reason,
        "scale up from 2 to 3: memory at 0.750 against a target of 0.500 asked for 3"
    );
    let Command::AutoscaleApp { scaling, .. } = &command else { panic!("{command:?}") };
    let memory = MetricReading {
        metric: MetricKind::Memory,
        target: percent(50),
        value: percent(75),
        ready: 2,
        not_ready: 0,
        missing: 0,
        recommendation: 3,
    };
    let cpu = MetricReading {
        metric: MetricKind::Cpu,
        target: percent(80),
        value: percent(0),
        ready: 2,
        not_ready: 0,
        missing: 0,
        // Idle asks for none; the bounds, not the metric, keep one.
        recommendation: 0,
    };
    assert_eq!(scaling.inputs, [cpu, memory]);
    assert_eq!((scaling.current, scaling.desired), (2, 3));

    // The log takes it: the app is at 3, its scaling recorded with the memory reading.
    world.apply(Actor::Leader, command);
    let services = world.state.services();
    assert_eq!(services.app(&cache).expect("the app").spec.instances, 3);
    let recorded = services.autoscalers[&cache].scalings.iter().last().expect("recorded");
    assert_eq!(recorded.scaling.inputs[1].metric, MetricKind::Memory);
}

#[test]
fn an_app_is_evaluated_at_once_then_once_per_interval_and_forgotten_when_no_longer_autoscaled() {
    use Readiness::Ready;
    let mut memory = Memory::new(NOW, Duration::from_secs(5));
    let (web, api) = (AppId::new("/web"), AppId::new("/api"));
    let every = |seconds| {
        let mut policy = policy(1, 3, vec![cpu_at(50)]);
        policy.evaluation_interval = Duration::from_secs(seconds);
        view(policy, &[Ready])
    };
    let mut apps = BTreeMap::from([(web.clone(), every(15)), (api.clone(), every(5))]);
    let at = |seconds| NOW.plus(Duration::from_secs(seconds));
    assert_eq!(memory.due(at(0), &apps), [api.clone(), web.clone()]);
    assert_eq!(memory.due(at(1), &apps), Vec::<AppId>::new());
    assert_eq!(memory.due(at(5), &apps), std::slice::from_ref(&api));
    // Late ticks (a slow round) count the next interval from when it ran.
    assert_eq!(memory.due(at(17), &apps), [api.clone(), web.clone()]);
    assert_eq!(memory.due(at(21), &apps), Vec::<AppId>::new());
    assert_eq!(memory.due(at(22), &apps), std::slice::from_ref(&api));
    // Its policy deleted and put back, /web starts afresh: due at once.
    apps.remove(&web);
    assert_eq!(memory.due(at(23), &apps), Vec::<AppId>::new());
    apps.insert(web.clone(), every(15));
    assert_eq!(memory.due(at(24), &apps), [web]);
}

#[test]
fn a_new_leader_evaluates_once_each_ready_instance_has_usage_or_its_grace_is_over() {
    use Readiness::{NotReady, Ready};
    // Taken over at NOW, reading usage every second: the grace is 2 × (1 s + the 3 s fetch
    // timeout).
    let mut memory = Memory::new(NOW, Duration::from_secs(1));
    let at = |seconds| NOW.plus(Duration::from_secs(seconds));
    let idle = |sampled: &[Option<u64>]| {
        let instances = sampled
            .iter()
            .map(|value| InstanceSample { readiness: Ready, utilization: value.map(percent) })
            .collect();
        vec![MetricSample::PerInstance(instances)]
    };
    // Three idle instances; the old leader recorded the quiet 7 s before it died, half way
    // through the 14 s window that began with three.
    let quiet = || {
        let mut view = view(policy(1, 3, vec![cpu_at(50)]), &[Ready, Ready, Ready]);
        view.policy.scale_down.stabilization_window = Duration::from_secs(14);
        view.recommendations = vec![
            Recommendation { at: Timestamp::from_secs(9_980), count: 3 },
            Recommendation { at: Timestamp::from_secs(9_993), count: 0 },
        ];
        view
    };
    let apps = BTreeMap::from([(web(), quiet())]);
    let view = &apps[&web()];
    let partly = idle(&[Some(0), Some(0), None]);
    let fully = idle(&[Some(0), Some(0), Some(0)]);

    // Why it waits: one instance not sampled yet counts as busy, so the new leader would
    // record a recommendation of 2, which the window then holds once the 3 ages out.
    let hasty = plan(at(1), &web(), view, &partly, DeploymentId::new("unused"));
    assert_eq!(
        hasty.proposal,
        Some(Proposal::Record(Command::RecordRecommendation { app_id: web(), count: 2 }))
    );
    let mut stepped = quiet();
    stepped.recommendations.push(Recommendation { at: at(1), count: 2 });
    let Decision::Scale(step) =
        plan(at(8), &web(), &stepped, &fully, DeploymentId::new("s")).decision
    else {
        panic!("no scaling")
    };
    assert_eq!((step.current, step.desired), (3, 2));

    // So it is not evaluated, and due again at the next look.
    assert_eq!(memory.due(at(1), &apps), [web()]);
    assert!(!memory.usage_gathered(at(1), &partly));
    memory.retry(&web(), at(1));
    assert_eq!(memory.due(at(2), &apps), [web()]);
    // Every ready instance sampled: evaluated, nothing recorded, and the window began by the
    // old leader ends as it would have: one scaling from 3 to 1.
    assert!(memory.usage_gathered(at(2), &fully));
    assert_eq!(plan(at(2), &web(), view, &fully, DeploymentId::new("unused")).proposal, None);
    let Decision::Scale(down) = plan(at(8), &web(), view, &fully, DeploymentId::new("d")).decision
    else {
        panic!("no scaling")
    };
    assert_eq!((down.current, down.desired), (3, 1));

    // Instances that are not ready need no sample, nor does a Prometheus query.
    let starting = vec![MetricSample::PerInstance(vec![
        InstanceSample { readiness: Ready, utilization: Some(percent(0)) },
        InstanceSample { readiness: NotReady, utilization: None },
    ])];
    assert!(memory.usage_gathered(at(1), &starting));
    assert!(memory.usage_gathered(at(1), &[MetricSample::Whole(None)]));
    // An agent that never reports holds its apps up for the grace only; after it, a missing
    // sample counts against the scale-down as the HPA's does.
    assert!(!memory.usage_gathered(at(7), &partly));
    assert!(memory.usage_gathered(at(8), &partly));
}

#[test]
fn the_at_max_series_of_apps_no_longer_autoscaled_are_stale() {
    use Readiness::Ready;
    let gauge = prometheus::IntGaugeVec::new(prometheus::Opts::new("at_max", "test"), &["app"])
        .expect("a gauge");
    gauge.with_label_values(&["/web"]).set(1);
    gauge.with_label_values(&["/gone"]).set(0);
    let apps = BTreeMap::from([(web(), view(policy(1, 3, vec![cpu_at(50)]), &[Ready]))]);
    assert_eq!(stale_series(&gauge, &apps), ["/gone"]);
    assert_eq!(stale_series(&gauge, &BTreeMap::new()).len(), 2);
}
