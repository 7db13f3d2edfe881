use std::time::Duration;

use corral_agent::checkpoint::{boot_id, TaskCheckpoint};
use corral_agent::containerizer::{Container, TaskEvent};
use corral_agent::docker::DockerContainerizer;
use corral_agent::transition::{TaskTransition, Termination};
use corral_state::model::{
    CommandInfo, ContainerInfo, ContainerType, DockerInfo, DockerNetwork, HealthCheck,
    HealthCheckKind, HttpCheck, KillPolicy, PortMapping, TaskInfo, TaskReason,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{
    file_text, framework, free_port, run_to_end, shell_task, terminal, transitions, DockerAgent,
    TEST_IMAGE,
};

fn docker_task(
    task_id: &str,
    resources: &str,
    command: &str,
    network: DockerNetwork,
    mappings: Vec<PortMapping>,
) -> TaskInfo {
    let mut task = shell_task(task_id, resources, command);
    task.container = Some(ContainerInfo {
        kind: ContainerType::Docker,
        docker: Some(DockerInfo {
            image: TEST_IMAGE.to_owned(),
            network,
            port_mappings: mappings,
            privileged: false,
            parameters: Vec::new(),
            force_pull_image: false,
        }),
        hostname: None,
    });
    task
}

#[tokio::test]
async fn a_docker_task_runs_and_keeps_its_exit_code_and_output() {
    let agent = DockerAgent::new("docker-exit").await;
    let task = docker_task(
        "exits",
        "cpus:0.2;mem:64",
        "echo \"task $MESOS_TASK_ID\"; echo oops >&2; echo in-sandbox > $MESOS_SANDBOX/file; exit 3",
        DockerNetwork::None,
        Vec::new(),
    );
    let mut handle = agent.runner.launch(task, framework());

    let events = run_to_end(&mut handle).await;

    let states = transitions(&events);
    assert_eq!(states[..2], [TaskTransition::Starting, TaskTransition::Running]);
    let TaskTransition::Failed { exit_code, message, .. } = terminal(&events) else {
        panic!("expected Failed: {events:?}");
    };
    assert_eq!(exit_code, Some(3));
    assert!(message.contains("oops"), "{message}");
    let sandbox = corral_agent::environment::sandbox_dir(
        agent.work_dir.path(),
        &framework(),
        &"exits".into(),
    );
    assert_eq!(file_text(&sandbox.join("stdout")), "task exits\n");
    assert_eq!(file_text(&sandbox.join("file")), "in-sandbox\n");
}

async fn http_get(port: u16) -> std::io::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    Ok(answer)
}

#[tokio::test]
async fn a_bridged_docker_task_is_reachable_limited_health_checked_and_killed() {
    let agent = DockerAgent::new("docker-bridge").await;
    let host_port = free_port();
    let mut task = docker_task(
        "web",
        &format!("cpus:0.5;mem:96;ports:[{host_port}-{host_port}]"),
        "trap 'exit 0' TERM; httpd -f -p 8080 -h /www & while true; do sleep 0.1; done",
        DockerNetwork::Bridge,
        vec![PortMapping { host_port: u32::from(host_port), container_port: 8080, protocol: None }],
    );
    task.health_check = Some(HealthCheck {
        http: Some(HttpCheck { scheme: None, port: 8080, path: Some("/index.html".to_owned()) }),
        delay: Duration::ZERO,
        interval: Duration::from_millis(200),
        timeout: Duration::from_secs(2),
        grace_period: Duration::from_secs(30),
        ..HealthCheck::new(HealthCheckKind::Http)
    });
    let mut handle = agent.runner.launch(task.clone(), framework());
    crate::support::events_until(&mut handle, |event| {
        *event == TaskEvent::Health { healthy: true }
    })
    .await;

    let answer = http_get(host_port).await.expect("the mapped port answers");
    assert!(answer.starts_with("HTTP/1.") && answer.contains("corral test page"), "{answer}");

    let docker = agent.containerizer.docker().expect("docker").docker().clone();
    let name =
        corral_agent::environment::container_name(&agent.agent_id, &framework(), &task.task_id);
    let inspect = docker.inspect_container(&name, None).await.expect("inspect");
    let host_config = inspect.host_config.expect("host config");
    assert_eq!(host_config.nano_cpus, Some(500_000_000));
    assert_eq!(host_config.memory, Some(96 * 1024 * 1024));
    let labels = inspect.config.and_then(|config| config.labels).expect("labels");
    assert_eq!(labels.get("corral.task_id").map(String::as_str), Some("web"));

    handle.kill(Some(KillPolicy { grace_period: Some(Duration::from_secs(10)) }));
    let events = run_to_end(&mut handle).await;
    assert!(transitions(&events).contains(&TaskTransition::Killing));
    assert!(matches!(terminal(&events), TaskTransition::Killed { .. }), "{events:?}");
    let deadline = tokio::time::Instant::now() + crate::support::DEADLINE;
    while docker.inspect_container(&name, None).await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "container {name} was not removed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Force-removes a container made outside the agent when the test ends, passed or not.
struct RemoveContainer(String);

impl Drop for RemoveContainer {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f", &self.0])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

#[tokio::test]
async fn an_orphan_container_holding_the_tasks_name_and_port_is_replaced() {
    let agent = DockerAgent::new("docker-orphan").await;
    let host_port = free_port();
    let name =
        corral_agent::environment::container_name(&agent.agent_id, &framework(), &"web".into());
    // What a crashed agent with a wiped work dir leaves: a running container by the name
    // this task's container will want, bound to its host port.
    let planted = std::process::Command::new("docker")
        .args(["run", "-d", "--name", &name, "-p", &format!("{host_port}:8080"), TEST_IMAGE])
        .args(["sleep", "600"])
        .output()
        .expect("docker runs");
    assert!(planted.status.success(), "{}", String::from_utf8_lossy(&planted.stderr));
    let _remove_even_on_failure = RemoveContainer(name.clone());
    let task = docker_task(
        "web",
        &format!("cpus:0.2;mem:64;ports:[{host_port}-{host_port}]"),
        "trap 'exit 0' TERM; httpd -f -p 8080 -h /www & while true; do sleep 0.1; done",
        DockerNetwork::Bridge,
        vec![PortMapping { host_port: u32::from(host_port), container_port: 8080, protocol: None }],
    );
    let mut handle = agent.runner.launch(task, framework());
    crate::support::events_until(&mut handle, |event| {
        matches!(event, TaskEvent::Transition(TaskTransition::Running))
    })
    .await;

    let orphan_id = String::from_utf8_lossy(&planted.stdout).trim().to_owned();
    let docker = agent.containerizer.docker().expect("docker").docker().clone();
    let inspect = docker.inspect_container(&name, None).await.expect("inspect");
    assert_ne!(inspect.id.as_deref(), Some(orphan_id.as_str()), "the orphan still holds the name");
    handle.kill(None);
    assert!(matches!(terminal(&run_to_end(&mut handle).await), TaskTransition::Killed { .. }));
}

#[tokio::test]
async fn a_docker_task_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let agent = DockerAgent::new("docker-stubborn").await;
    let task = docker_task(
        "stubborn",
        "cpus:0.2;mem:64",
        "trap '' TERM; while true; do sleep 0.1; done",
        DockerNetwork::Host,
        Vec::new(),
    );
    let mut container = agent.containerizer.launch(&task, &framework()).await.expect("launch");
    let started = tokio::time::Instant::now();
    let termination = container.kill(Duration::from_secs(1)).await;
    assert!(started.elapsed() >= Duration::from_secs(1), "{:?}", started.elapsed());
    assert!(matches!(termination, Termination::Signalled { signal: 9 }), "{termination:?}");
    assert!(matches!(container, Container::Docker(_)));
}

#[tokio::test]
async fn a_missing_image_fails_with_a_clear_reason_and_is_never_pulled() {
    let agent = DockerAgent::new("docker-missing").await;
    let mut task =
        docker_task("missing", "cpus:0.1;mem:32", "true", DockerNetwork::Host, Vec::new());
    if let Some(docker) = task.container.as_mut().and_then(|container| container.docker.as_mut()) {
        docker.image = "corral-test-no-such-image:latest".to_owned();
    }
    let mut handle = agent.runner.launch(task, framework());

    let events = run_to_end(&mut handle).await;

    let TaskTransition::Failed { reason, message, .. } = terminal(&events) else {
        panic!("expected Failed: {events:?}");
    };
    assert_eq!(reason, Some(TaskReason::ContainerLaunchFailed));
    assert!(
        message.contains("corral-test-no-such-image:latest")
            && message.contains("not found locally"),
        "{message}"
    );
}

fn checkpoint_for(agent: &DockerAgent, task: &TaskInfo, container: &Container) -> TaskCheckpoint {
    TaskCheckpoint {
        agent_id: agent.agent_id.clone(),
        framework_id: framework(),
        task: task.clone(),
        sandbox: container.sandbox().to_owned(),
        boot_id: boot_id(),
        runtime: container.runtime_checkpoint(),
        last_reported: None,
    }
}

#[tokio::test]
async fn a_new_agent_finds_running_and_ended_docker_tasks_again() {
    let agent = DockerAgent::new("docker-recover").await;
    let running_task = docker_task(
        "runs",
        "cpus:0.1;mem:32",
        "trap 'exit 0' TERM; while true; do sleep 0.1; done",
        DockerNetwork::None,
        Vec::new(),
    );
    let ending_task = docker_task(
        "ends",
        "cpus:0.1;mem:32",
        "while [ ! -e $MESOS_SANDBOX/release ]; do sleep 0.1; done; exit 5",
        DockerNetwork::None,
        Vec::new(),
    );
    let running = agent.containerizer.launch(&running_task, &framework()).await.expect("launch");
    let ending = agent.containerizer.launch(&ending_task, &framework()).await.expect("launch");
    let running_checkpoint = checkpoint_for(&agent, &running_task, &running);
    let ending_checkpoint = checkpoint_for(&agent, &ending_task, &ending);
    // The first agent goes away without stopping anything.
    drop((running, ending));
    std::fs::write(ending_checkpoint.sandbox.join("release"), "").expect("release");

    let fresh =
        DockerContainerizer::connect(agent.work_dir.path().to_owned(), agent.agent_id.clone())
            .await
            .expect("engine");
    let listed = fresh.list_agent_containers().await.expect("list");
    assert_eq!(listed.len(), 2, "{listed:?}");

    let deadline = tokio::time::Instant::now() + crate::support::DEADLINE;
    let ended = loop {
        match fresh.recover(&ending_checkpoint).await {
            Err(termination) => break termination,
            Ok(_) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the released container did not end"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(ended, Termination::Exited { code: 5 });

    let mut survivor = fresh.recover(&running_checkpoint).await.expect("still running");
    let killed = survivor.kill(Duration::from_secs(5)).await;
    assert_eq!(killed, Termination::Exited { code: 0 });
}

#[tokio::test]
async fn a_command_health_check_runs_inside_the_container() {
    let agent = DockerAgent::new("docker-health").await;
    let mut task = docker_task(
        "checked",
        "cpus:0.1;mem:32",
        "while true; do sleep 0.1; done",
        DockerNetwork::None,
        Vec::new(),
    );
    task.health_check = Some(HealthCheck {
        // Only the container has /www/index.html.
        command: Some(CommandInfo {
            value: Some("test -e /www/index.html".to_owned()),
            ..CommandInfo::default()
        }),
        delay: Duration::ZERO,
        interval: Duration::from_millis(200),
        timeout: Duration::from_secs(5),
        grace_period: Duration::from_secs(30),
        ..HealthCheck::new(HealthCheckKind::Command)
    });
    let mut handle = agent.runner.launch(task, framework());

    crate::support::events_until(&mut handle, |event| {
        *event == TaskEvent::Health { healthy: true }
    })
    .await;

    handle.kill(Some(KillPolicy { grace_period: Some(Duration::from_secs(1)) }));
    assert!(matches!(terminal(&run_to_end(&mut handle).await), TaskTransition::Killed { .. }));
}

#[tokio::test]
async fn a_docker_task_over_its_memory_limit_fails_with_the_memory_reason() {
    let agent = DockerAgent::new("docker-oom").await;
    let task = docker_task(
        "hog",
        "cpus:0.5;mem:32",
        "hog=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ${#hog}",
        DockerNetwork::None,
        Vec::new(),
    );
    let mut handle = agent.runner.launch(task, framework());

    let ended = terminal(&run_to_end(&mut handle).await);

    let TaskTransition::Failed { reason, .. } = &ended else {
        panic!("expected Failed: {ended:?}");
    };
    assert_eq!(*reason, Some(TaskReason::ContainerLimitationMemory), "{ended:?}");
}
