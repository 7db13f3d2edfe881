//! What a `/metrics` scrape costs on a state of 10,000 agents and 100,000 running tasks,
//! built in-process through real commands (no cluster, no HTTP).
//!
//! `cargo bench -p corral-master --bench metrics`
//!
//! - `gauges_under_lock`: the cluster gauges read from the state's running totals and set:
//!   what a scrape holds the state's read lock for.
//! - `render`: the same and the whole Prometheus exposition rendered (what `/metrics` does
//!   besides the log's status and the stream counts).
//! - `copy_and_recount`: the state copied without its request ids and its totals counted
//!   from scratch, roughly what a scrape did before the totals were kept (a copy under the
//!   lock, then a walk of every agent, task and offer).

use std::time::{Duration, Instant};

use corral_master::Metrics;
use corral_state::model::{AgentInfo, Attributes, CommandInfo, Filters, TaskInfo, TaskState};
use corral_state::{
    Actor, AgentId, Command, FrameworkId, Operation, Resources, Role, Tally, TaskId,
};
use corral_testkit::state::StateBuilder;
use criterion::{criterion_group, criterion_main, Criterion};

const AGENTS: usize = 10_000;
const FRAMEWORKS: usize = 100;
const TASKS_PER_AGENT: usize = 10;
/// Agents with an outstanding offer besides their tasks.
const OFFERED_AGENTS: usize = 1_000;

fn task(task_id: &TaskId, agent_id: &AgentId, resources: &Resources) -> TaskInfo {
    TaskInfo {
        name: task_id.to_string(),
        task_id: task_id.clone(),
        agent_id: agent_id.clone(),
        resources: resources.clone(),
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

/// 10,000 agents, 100 frameworks in two roles, 100,000 running tasks, 1,000 open offers.
fn large_state() -> StateBuilder {
    let mut cluster = StateBuilder::default();
    let agent_resources: Resources =
        "cpus:64;mem:262144;disk:1000000;ports:[31000-32000]".parse().expect("resources");
    let agents: Vec<AgentId> = (0..AGENTS)
        .map(|index| {
            let info = AgentInfo {
                hostname: format!("agent-{index:05}.example"),
                address: format!(
                    "10.{}.{}.{}:5051",
                    index / 65536,
                    (index / 256) % 256,
                    index % 256
                ),
                attributes: Attributes::default(),
            };
            cluster.register_agent(info, agent_resources.clone())
        })
        .collect();
    for index in 0..FRAMEWORKS {
        cluster
            .framework(&format!("framework-{index}"), if index % 2 == 0 { "eng" } else { "ops" });
    }
    let frameworks: Vec<(FrameworkId, Role)> = cluster
        .state
        .frameworks()
        .values()
        .map(|framework| (framework.id.clone(), framework.info.roles[0].clone()))
        .collect();
    let task_resources: Resources = "cpus:0.5;mem:1024;disk:100".parse().expect("resources");
    let offer_resources: Resources = "cpus:5;mem:10240;disk:1000".parse().expect("resources");
    for (agent_index, agent_id) in agents.iter().enumerate() {
        let (framework_id, role) = &frameworks[agent_index % FRAMEWORKS];
        let offer_id =
            cluster.offer_to(framework_id.clone(), agent_id, role.clone(), offer_resources.clone());
        let task_ids: Vec<TaskId> = (0..TASKS_PER_AGENT)
            .map(|n| TaskId::new(format!("task-{agent_index:05}-{n}")))
            .collect();
        let launch = Command::Accept {
            framework_id: framework_id.clone(),
            offer_ids: vec![offer_id],
            operations: vec![Operation::Launch {
                task_infos: task_ids.iter().map(|id| task(id, agent_id, &task_resources)).collect(),
            }],
            filters: Filters { refuse: Duration::ZERO },
        };
        cluster.accepted(Actor::Framework(framework_id.clone()), launch);
        for task_id in &task_ids {
            cluster.report(framework_id.clone(), task_id, TaskState::Running, None);
        }
        if agent_index < OFFERED_AGENTS {
            cluster.offer_to(framework_id.clone(), agent_id, role.clone(), offer_resources.clone());
        }
    }
    cluster
}

fn benches(c: &mut Criterion) {
    let started = Instant::now();
    let cluster = large_state();
    let state = &cluster.state;
    eprintln!(
        "built {} agents, {} tasks, {} offers in {:?}",
        state.agents().len(),
        state.tasks().count(),
        state.offers().len(),
        started.elapsed()
    );
    let metrics = Metrics::new().expect("the metrics register");
    metrics.set_cluster_gauges(state);
    let text = metrics.render().expect("the metrics render");
    eprintln!("exposition: {} bytes", text.len());
    assert!(text.contains("corral_tasks{state=\"TASK_RUNNING\"} 100000"), "{text}");

    let mut group = c.benchmark_group("metrics_10k_agents_100k_tasks");
    group.sample_size(50).measurement_time(Duration::from_secs(10));
    group.bench_function("gauges_under_lock", |b| b.iter(|| metrics.set_cluster_gauges(state)));
    group.bench_function("render", |b| {
        b.iter(|| {
            metrics.set_cluster_gauges(state);
            std::hint::black_box(metrics.render().expect("the metrics render"))
        })
    });
    group.sample_size(10);
    group.bench_function("copy_and_recount", |b| {
        b.iter(|| {
            let copy = state.without_bookkeeping();
            std::hint::black_box(Tally::recount(&copy))
        })
    });
    group.finish();
}

criterion_group!(metrics, benches);
criterion_main!(metrics);
