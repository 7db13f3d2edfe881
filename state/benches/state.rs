//! Apply throughput, snapshot and digest on a state of 10,000 agents and 100,000 tasks.
//!
//! `cargo bench -p corral-state --bench state`

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use corral_state::model::{
    AgentInfo, Attributes, Filters, FrameworkInfo, Settings, TaskInfo, TaskSource, TaskState,
    TaskStatus,
};
use corral_state::{
    Actor, AgentId, ClusterState, Command, Entry, Event, FrameworkId, OfferId, OfferSpec,
    Operation, Outcome, RequestId, Resources, Role, TaskId, Timestamp, UpdateUuid,
};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

const AGENTS: usize = 10_000;
const FRAMEWORKS: usize = 100;
const TASKS_PER_AGENT: usize = 10;
/// Task lifecycles in the measured mix; each is six commands.
const LIFECYCLES: usize = 50_000;

struct Builder {
    state: ClusterState,
    clock: Timestamp,
    request: u64,
    entries: Vec<Entry>,
    record: bool,
}

impl Builder {
    fn apply(&mut self, actor: Actor, command: Command) -> Vec<Event> {
        self.request += 1;
        self.clock = self.clock.plus(Duration::from_micros(10));
        let entry = Entry {
            request_id: RequestId::new(format!("r{}", self.request)),
            actor,
            at: self.clock,
            command,
        };
        let outcome = self.state.apply(&entry);
        if self.record {
            self.entries.push(entry);
        }
        match outcome {
            Outcome::Accepted(events) => events,
            other => panic!("benchmark setup command failed: {other:?}"),
        }
    }

    fn offer(
        &mut self,
        framework_id: &FrameworkId,
        agent_id: &AgentId,
        resources: &Resources,
    ) -> OfferId {
        let spec = OfferSpec {
            framework_id: framework_id.clone(),
            agent_id: agent_id.clone(),
            role: Role::default_role(),
            resources: resources.clone(),
        };
        let events = self.apply(Actor::Leader, Command::OfferResources { offers: vec![spec] });
        match &events[..] {
            [Event::OfferCreated { offer }] => offer.id.clone(),
            other => panic!("no offer: {other:?}"),
        }
    }

    fn launch(&mut self, framework_id: &FrameworkId, offer_id: OfferId, tasks: Vec<TaskInfo>) {
        self.apply(
            Actor::Framework(framework_id.clone()),
            Command::Accept {
                framework_id: framework_id.clone(),
                offer_ids: vec![offer_id],
                operations: vec![Operation::Launch { task_infos: tasks }],
                filters: Filters { refuse: Duration::ZERO },
            },
        );
    }

    fn report(
        &mut self,
        framework_id: &FrameworkId,
        agent_id: &AgentId,
        task_id: &TaskId,
        state: TaskState,
    ) -> UpdateUuid {
        let uuid = UpdateUuid::new(format!("u{}", self.request));
        let status = TaskStatus {
            task_id: task_id.clone(),
            state,
            message: None,
            source: TaskSource::Executor,
            reason: None,
            healthy: None,
            agent_id: Some(agent_id.clone()),
            executor_id: None,
            timestamp: Timestamp::default(),
            uuid: Some(uuid.clone()),
            exit_code: None,
        };
        self.apply(
            Actor::Agent(agent_id.clone()),
            Command::UpdateStatus { framework_id: framework_id.clone(), status },
        );
        uuid
    }

    fn ack(
        &mut self,
        framework_id: &FrameworkId,
        agent_id: &AgentId,
        task_id: &TaskId,
        uuid: UpdateUuid,
    ) {
        self.apply(
            Actor::Framework(framework_id.clone()),
            Command::Acknowledge {
                framework_id: framework_id.clone(),
                agent_id: agent_id.clone(),
                task_id: task_id.clone(),
                uuid,
            },
        );
    }
}

fn task(task_id: &TaskId, agent_id: &AgentId, resources: &Resources) -> TaskInfo {
    TaskInfo::shell(task_id.clone(), agent_id.clone(), resources.clone(), "sleep 600")
}

/// 10,000 agents, 100 frameworks, 100,000 running tasks with every update acknowledged.
fn large_state() -> (Builder, Vec<AgentId>, Vec<FrameworkId>) {
    // A de-duplication record already at its bound, as on a cluster that has run for a while:
    // the measured commands evict as many request ids as they add, instead of growing (and
    // rehashing) a young table.
    let settings = Settings { dedup_capacity: 200_000, ..Settings::default() };
    let mut builder = Builder {
        state: ClusterState::new(settings),
        clock: Timestamp::from_secs(1_000_000),
        request: 0,
        entries: Vec::new(),
        record: false,
    };
    let agent_resources: Resources =
        "cpus:64;mem:262144;disk:1000000;ports:[31000-32000]".parse().expect("resources");
    let mut agents = Vec::with_capacity(AGENTS);
    for index in 0..AGENTS {
        let info = AgentInfo {
            hostname: format!("agent-{index:05}.example"),
            address: format!("10.{}.{}.{}:5051", index / 65536, (index / 256) % 256, index % 256),
            attributes: Attributes::parse(&format!("rack:r{};zone:z{}", index % 40, index % 3))
                .expect("attributes"),
        };
        let events = builder.apply(
            Actor::Leader,
            Command::RegisterAgent { info, resources: agent_resources.clone() },
        );
        let [Event::AgentAdded { agent_id, .. }] = &events[..] else { panic!("no agent") };
        agents.push(agent_id.clone());
    }
    let mut frameworks = Vec::with_capacity(FRAMEWORKS);
    for index in 0..FRAMEWORKS {
        let info = FrameworkInfo {
            user: "svc".to_owned(),
            name: format!("framework-{index}"),
            roles: vec![Role::default_role()],
            failover_timeout: Duration::from_secs(3600),
            checkpoint: true,
            hostname: None,
            principal: None,
            webui_url: None,
            capabilities: BTreeSet::new(),
            labels: Vec::new(),
        };
        let events = builder.apply(Actor::Leader, Command::Subscribe { framework_id: None, info });
        let [Event::FrameworkAdded { framework_id, .. }] = &events[..] else {
            panic!("no framework")
        };
        frameworks.push(framework_id.clone());
    }
    let task_resources: Resources = "cpus:0.5;mem:1024;disk:100".parse().expect("resources");
    let offer_resources: Resources = "cpus:5;mem:10240;disk:1000".parse().expect("resources");
    for (agent_index, agent_id) in agents.iter().enumerate() {
        let framework_id = &frameworks[agent_index % FRAMEWORKS];
        let offer_id = builder.offer(framework_id, agent_id, &offer_resources);
        let task_ids: Vec<TaskId> = (0..TASKS_PER_AGENT)
            .map(|n| TaskId::new(format!("task-{agent_index:05}-{n}")))
            .collect();
        let tasks = task_ids.iter().map(|id| task(id, agent_id, &task_resources)).collect();
        builder.launch(framework_id, offer_id, tasks);
        for task_id in &task_ids {
            let uuid = builder.report(framework_id, agent_id, task_id, TaskState::Running);
            builder.ack(framework_id, agent_id, task_id, uuid);
        }
    }
    (builder, agents, frameworks)
}

/// Records `LIFECYCLES` task lifecycles (offer, launch, RUNNING, ack, FINISHED, ack) against
/// the large state, and returns the entries to replay on a copy of it.
fn mixed_workload(base: &Builder, agents: &[AgentId], frameworks: &[FrameworkId]) -> Vec<Entry> {
    let mut builder = Builder {
        state: base.state.clone(),
        clock: base.clock,
        request: base.request,
        entries: Vec::with_capacity(LIFECYCLES * 6),
        record: true,
    };
    let resources: Resources = "cpus:0.5;mem:512".parse().expect("resources");
    for n in 0..LIFECYCLES {
        let agent_id = &agents[n % agents.len()];
        let framework_id = &frameworks[n % frameworks.len()];
        let task_id = TaskId::new(format!("mix-{n}"));
        let offer_id = builder.offer(framework_id, agent_id, &resources);
        builder.launch(framework_id, offer_id, vec![task(&task_id, agent_id, &resources)]);
        let running = builder.report(framework_id, agent_id, &task_id, TaskState::Running);
        builder.ack(framework_id, agent_id, &task_id, running);
        let finished = builder.report(framework_id, agent_id, &task_id, TaskState::Finished);
        builder.ack(framework_id, agent_id, &task_id, finished);
    }
    builder.entries
}

fn benches(c: &mut Criterion) {
    let started = Instant::now();
    let (base, agents, frameworks) = large_state();
    let tasks = base.state.tasks().count();
    eprintln!(
        "built {} agents, {tasks} tasks in {:?}",
        base.state.agents().len(),
        started.elapsed()
    );
    let entries = mixed_workload(&base, &agents, &frameworks);

    let mut group = c.benchmark_group("apply");
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(entries.len() as u64));
    group.bench_function("mixed_10k_agents_100k_tasks", |b| {
        b.iter_batched(
            || base.state.clone(),
            |mut state| {
                for entry in &entries {
                    std::hint::black_box(state.apply(entry));
                }
                state
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();

    let snapshot = base.state.snapshot().expect("the state encodes");
    eprintln!(
        "snapshot of {tasks} tasks: {} bytes ({:.1} MiB)",
        snapshot.len(),
        snapshot.len() as f64 / 1048576.0
    );
    eprintln!(
        "without bookkeeping: {} bytes",
        base.state.without_bookkeeping().snapshot().expect("the state encodes").len()
    );
    let mut group = c.benchmark_group("snapshot");
    group.sample_size(10).measurement_time(Duration::from_secs(10));
    group.bench_function("encode_100k_tasks", |b| {
        b.iter(|| std::hint::black_box(base.state.snapshot().expect("the state encodes")))
    });
    group.bench_function("decode_100k_tasks", |b| {
        b.iter(|| std::hint::black_box(ClusterState::from_snapshot(&snapshot).expect("decodes")))
    });
    group.bench_function("digest_100k_tasks", |b| {
        b.iter(|| std::hint::black_box(base.state.digest()))
    });
    group.finish();
}

criterion_group!(state, benches);
criterion_main!(state);
