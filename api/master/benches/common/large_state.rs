//! The state both in-process master benches read: 10,000 agents, 100 frameworks in two
//! roles, 100,000 running tasks, 1,000 open offers, built through real commands.

use std::time::Duration;

use corral_state::model::{AgentInfo, Attributes, Filters, TaskInfo, TaskState};
use corral_state::{Actor, AgentId, Command, FrameworkId, Operation, Resources, Role, TaskId};
use corral_testkit::state::StateBuilder;

const AGENTS: usize = 10_000;
const FRAMEWORKS: usize = 100;
const TASKS_PER_AGENT: usize = 10;
/// Agents with an outstanding offer besides their tasks.
const OFFERED_AGENTS: usize = 1_000;

fn task(task_id: &TaskId, agent_id: &AgentId, resources: &Resources) -> TaskInfo {
    TaskInfo::shell(task_id.clone(), agent_id.clone(), resources.clone(), "sleep 600")
}

/// 10,000 agents, 100 frameworks in two roles, 100,000 running tasks, 1,000 open offers.
/// Says what it built and how long it took, for the bench's log.
pub(crate) fn large_state() -> StateBuilder {
    let started = std::time::Instant::now();
    let cluster = build();
    let state = &cluster.state;
    eprintln!(
        "built {} agents, {} tasks, {} offers in {:?}",
        state.agents().len(),
        state.tasks().count(),
        state.offers().len(),
        started.elapsed()
    );
    cluster
}

fn build() -> StateBuilder {
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
