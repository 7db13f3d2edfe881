//! A stand-in agent for the recovery test: it launches the tasks described on its command
//! line, checkpoints them, says `ready`, and waits to be killed with SIGKILL.
//!
//! Usage: corral-agent-recovery-probe WORK_DIR AGENT_ID FRAMEWORK_ID (TASK_ID=SHELL_COMMAND)…

use std::path::PathBuf;
use std::sync::Arc;

use corral_agent::checkpoint::CheckpointStore;
use corral_agent::containerizer::{Containerizer, TaskEvent, TaskRunner, UnhealthyPolicy};
use corral_agent::limits::LimitMode;
use corral_agent::process::ProcessContainerizer;
use corral_agent::transition::TaskTransition;
use corral_state::model::TaskInfo;
use corral_state::{parse_resources, AgentId, FrameworkId, TaskId};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut arguments = std::env::args().skip(1);
    let (Some(work_dir), Some(agent_id), Some(framework_id)) =
        (arguments.next(), arguments.next(), arguments.next())
    else {
        eprintln!(
            "usage: corral-agent-recovery-probe WORK_DIR AGENT_ID FRAMEWORK_ID TASK=COMMAND…"
        );
        std::process::exit(2);
    };
    let work_dir = PathBuf::from(work_dir);
    let agent_id = AgentId::from(agent_id);
    let framework_id = FrameworkId::from(framework_id);
    let process = ProcessContainerizer::new(work_dir.clone(), agent_id.clone(), LimitMode::Rlimit);
    let runner = TaskRunner::new(
        Arc::new(Containerizer::new(process, None)),
        CheckpointStore::new(&work_dir),
        UnhealthyPolicy::ReportOnly,
    );
    let mut handles = Vec::new();
    for task_spec in arguments {
        let Some((task_id, command)) = task_spec.split_once('=') else {
            eprintln!("task '{task_spec}' is not TASK=COMMAND");
            std::process::exit(2);
        };
        let resources =
            parse_resources("cpus:0.1;mem:32").expect("a constant resource string parses");
        let task = TaskInfo::shell(TaskId::new(task_id), agent_id.clone(), resources, command);
        handles.push(runner.launch(task, framework_id.clone()));
    }
    for handle in &mut handles {
        loop {
            match handle.next_event().await {
                Some(TaskEvent::Transition(TaskTransition::Running)) => break,
                Some(TaskEvent::Transition(transition)) if transition.is_terminal() => {
                    eprintln!("task ended before running: {transition:?}");
                    std::process::exit(1);
                }
                Some(_) => {}
                None => std::process::exit(1),
            }
        }
    }
    println!("ready");
    // The test ends this process with SIGKILL; until then the tasks are watched as usual.
    std::future::pending::<()>().await;
}
