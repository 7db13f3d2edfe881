use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use corral_agent::checkpoint::CheckpointStore;
use corral_agent::containerizer::{
    Container, Containerizer, TaskEvent, TaskRunner, UnhealthyPolicy,
};
use corral_agent::limits::LimitMode;
use corral_agent::process::ProcessContainerizer;
use corral_agent::transition::{TaskTransition, Termination};
use corral_state::{AgentId, FrameworkId};

use crate::support::{eventually, run_to_end};

#[tokio::test]
async fn tasks_survive_a_sigkilled_agent_and_are_found_again() {
    let work_dir = tempfile::tempdir().expect("temp dir");
    let agent_id = AgentId::from(format!("recovery-{}", std::process::id()));
    let release = work_dir.path().join("release");
    let mut probe = Command::new(env!("CARGO_BIN_EXE_corral-agent-recovery-probe"))
        .arg(work_dir.path())
        .arg(agent_id.as_str())
        .arg("fw")
        .arg("survivor=while true; do sleep 0.1; done")
        .arg(format!("ends-later=while [ ! -e {} ]; do sleep 0.1; done; exit 7", release.display()))
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the probe agent");
    let mut first_line = String::new();
    BufReader::new(probe.stdout.take().expect("stdout"))
        .read_line(&mut first_line)
        .expect("read the probe");
    assert_eq!(first_line.trim(), "ready");

    probe.kill().expect("SIGKILL the probe agent");
    probe.wait().expect("reap the probe");
    // With the agent gone, one task ends: nobody is watching it.
    std::fs::write(&release, "").expect("release the task");

    let process =
        ProcessContainerizer::new(work_dir.path().to_owned(), agent_id.clone(), LimitMode::Rlimit);
    let containerizer = Arc::new(Containerizer::new(process, None));
    let store = CheckpointStore::new(work_dir.path());
    let checkpoints = store.load_tasks().expect("load checkpoints");
    assert_eq!(checkpoints.len(), 2, "{checkpoints:?}");
    let checkpoint_of = |task: &str| {
        checkpoints
            .iter()
            .find(|checkpoint| checkpoint.task_id().as_str() == task)
            .expect("checkpoint")
            .clone()
    };
    assert_eq!(checkpoint_of("survivor").framework_id, FrameworkId::new("fw"));

    // The released task ends a moment later; recovery then reports its real exit code.
    let ended = checkpoint_of("ends-later");
    let deadline = tokio::time::Instant::now() + crate::support::DEADLINE;
    let recovered_end = loop {
        if let Err(termination) = containerizer.recover(&ended).await {
            break Some(termination);
        }
        assert!(tokio::time::Instant::now() < deadline, "the released task did not end");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(recovered_end, Some(Termination::Exited { code: 7 }));

    let survivor = checkpoint_of("survivor");
    let recovered = containerizer.recover(&survivor).await;
    let Ok(Container::Process(process)) = &recovered else {
        panic!("the surviving task was not found running: {recovered:?}");
    };
    let pid = process.pid();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());

    // A new runner adopts it and can still kill it, without being its parent.
    let runner = TaskRunner::new(containerizer.clone(), store, UnhealthyPolicy::KillTask);
    let mut handle = runner.adopt(survivor, recovered);
    handle
        .kill(Some(corral_state::model::KillPolicy { grace_period: Some(Duration::from_secs(2)) }));
    let events = run_to_end(&mut handle).await;
    assert_eq!(events.first(), Some(&TaskEvent::Transition(TaskTransition::Killing)));
    assert!(
        matches!(events.last(), Some(TaskEvent::Transition(TaskTransition::Killed { .. }))),
        "{events:?}"
    );
    eventually("the survivor's process to be gone", || {
        corral_agent::checkpoint::ProcessStat::read(pid).is_none_or(|stat| !stat.is_alive())
    })
    .await;
}
