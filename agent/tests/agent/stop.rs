//! What happens to tasks when the agent stops: production leaves them running (a restarted
//! agent finds them again); `corral dev` kills them and waits for them to end.

use std::time::Duration;

use corral_agent::daemon::OnStop;
use corral_state::model::{ContainerInfo, ContainerType, DockerInfo, DockerNetwork, TaskState};

use crate::running::{is_running, TestAgent};
use crate::support::{ensure_test_image, shell_task, TEST_IMAGE};

/// Ignores SIGTERM for a moment, so the kill's grace period is exercised too.
const STUBBORN: &str = "trap 'sleep 0.5; exit 0' TERM; while true; do sleep 0.1; done";

fn container_exists(agent: &TestAgent, task_id: &str) -> bool {
    let name = corral_agent::environment::container_name(
        &agent.agent_id,
        &agent.framework_id(),
        &task_id.into(),
    );
    std::process::Command::new("docker")
        .args(["container", "inspect", &name])
        .output()
        .expect("docker runs")
        .status
        .success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_tasks_on_stop_ends_every_task_before_returning() {
    ensure_test_image();
    let mut agent = TestAgent::start("stop-kill", OnStop::KillTasks).await;
    agent.launch(shell_task("stop-kill-process", "cpus:0.1;mem:32", STUBBORN));
    let mut container = shell_task("stop-kill-docker", "cpus:0.1;mem:32", "sleep 600");
    container.container = Some(ContainerInfo {
        kind: ContainerType::Docker,
        docker: Some(DockerInfo {
            image: TEST_IMAGE.to_owned(),
            network: DockerNetwork::None,
            port_mappings: Vec::new(),
            privileged: false,
            parameters: Vec::new(),
            force_pull_image: false,
        }),
        hostname: None,
    });
    agent.launch(container);
    agent.master.wait_for_state("stop-kill-process", TaskState::Running).await;
    agent.master.wait_for_state("stop-kill-docker", TaskState::Running).await;
    let (pid, start_time) = agent.process_of("stop-kill-process");
    assert!(is_running(pid, start_time));
    assert!(container_exists(&agent, "stop-kill-docker"));
    let address = agent.running().http_address();

    agent.stop().await;

    assert!(!is_running(pid, start_time), "the process task outlived the agent");
    assert!(!container_exists(&agent, "stop-kill-docker"), "the container outlived the agent");
    assert!(
        tokio::net::TcpStream::connect(address).await.is_err(),
        "the stopped agent still listens"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leave_tasks_running_on_stop_leaves_them_running() {
    let mut agent = TestAgent::start("stop-leave", OnStop::LeaveTasksRunning).await;
    agent.launch(shell_task("stop-leave-task", "cpus:0.1;mem:32", STUBBORN));
    agent.master.wait_for_state("stop-leave-task", TaskState::Running).await;
    let (pid, start_time) = agent.process_of("stop-leave-task");
    let address = agent.running().http_address();

    agent.stop().await;

    assert!(
        tokio::net::TcpStream::connect(address).await.is_err(),
        "the stopped agent still listens"
    );
    // Longer than the task's SIGTERM handling would take, had it been signalled.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(is_running(pid, start_time), "the task died with the agent");
    assert_eq!(agent.master.task_state("stop-leave-task"), Some(TaskState::Running));
}
