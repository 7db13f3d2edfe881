//! One entry point over both containerizers, and the task runner that turns a container's
//! life into transitions: STARTING, RUNNING, health changes, KILLING, and exactly one end.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use corral_state::model::{ContainerType, DockerNetwork, KillPolicy, TaskInfo};
use corral_state::FrameworkId;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::checkpoint::{boot_id, CheckpointStore, RuntimeCheckpoint, TaskCheckpoint};
use crate::docker::{DockerContainer, DockerContainerizer};
use crate::environment::task_environment;
use crate::health::{HealthChecker, HealthEvent, HealthTarget};
use crate::process::{resolve_user, ProcessContainer, ProcessContainerizer};
use crate::transition::{KillRequested, TaskTransition, Termination};

/// The Mesos command executor's default time between SIGTERM and SIGKILL.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(3);

/// The containerizers this agent has; Docker is absent when no engine answered.
#[derive(Clone, Debug)]
pub struct Containerizer {
    process: ProcessContainerizer,
    docker: Option<DockerContainerizer>,
}

/// A task's container, of either kind.
#[derive(Debug)]
pub enum Container {
    Process(ProcessContainer),
    Docker(DockerContainer),
}

impl Containerizer {
    pub fn new(
        process: ProcessContainerizer,
        docker: Option<DockerContainerizer>,
    ) -> Containerizer {
        Containerizer { process, docker }
    }

    pub fn process(&self) -> &ProcessContainerizer {
        &self.process
    }

    pub fn docker(&self) -> Option<&DockerContainerizer> {
        self.docker.as_ref()
    }

    fn is_docker_task(task: &TaskInfo) -> bool {
        task.container.as_ref().is_some_and(|container| container.kind == ContainerType::Docker)
    }

    /// Starts the task in the containerizer its `ContainerInfo` asks for.
    pub async fn launch(
        &self,
        task: &TaskInfo,
        framework_id: &FrameworkId,
    ) -> Result<Container, Termination> {
        if !Self::is_docker_task(task) {
            return self.process.launch(task, framework_id).await.map(Container::Process);
        }
        match &self.docker {
            Some(docker) => docker.launch(task, framework_id).await.map(Container::Docker),
            None => Err(Termination::LaunchFailed {
                message: "DOCKER task, but this agent has no Docker engine".to_owned(),
            }),
        }
    }

    /// Finds a checkpointed task again: its container if it still runs, otherwise how it
    /// ended while the agent was down.
    pub async fn recover(&self, checkpoint: &TaskCheckpoint) -> Result<Container, Termination> {
        match &checkpoint.runtime {
            RuntimeCheckpoint::Process { .. } => {
                self.process.recover(checkpoint).await.map(Container::Process)
            }
            RuntimeCheckpoint::Docker { .. } => match &self.docker {
                Some(docker) => docker.recover(checkpoint).await.map(Container::Docker),
                None => Err(Termination::Unknown {
                    message: "the task ran in Docker and this agent has no Docker engine now"
                        .to_owned(),
                }),
            },
        }
    }

    /// Where the task's health checks run.
    pub fn health_target(
        &self,
        task: &TaskInfo,
        framework_id: &FrameworkId,
        container: &Container,
    ) -> HealthTarget {
        match container {
            Container::Process(process) => HealthTarget::Process {
                sandbox: process.sandbox().to_owned(),
                environment: task_environment(
                    task,
                    framework_id,
                    self.process.agent_id(),
                    &process.sandbox().display().to_string(),
                ),
                user: task
                    .command
                    .as_ref()
                    .and_then(|command| resolve_user(command.user.as_deref()).ok().flatten()),
                port_mappings: Vec::new(),
            },
            Container::Docker(docker) => {
                let docker_info =
                    task.container.as_ref().and_then(|container| container.docker.as_ref());
                let port_mappings = docker_info
                    .filter(|info| {
                        matches!(info.network, DockerNetwork::Bridge | DockerNetwork::User)
                    })
                    .map(|info| {
                        info.port_mappings
                            .iter()
                            .map(|mapping| (mapping.container_port, mapping.host_port))
                            .collect()
                    })
                    .unwrap_or_default();
                HealthTarget::Docker { exec: docker.exec_handle(), port_mappings }
            }
        }
    }
}

impl Container {
    pub async fn wait(&mut self) -> Termination {
        match self {
            Container::Process(process) => process.wait().await,
            Container::Docker(docker) => docker.wait().await,
        }
    }

    pub async fn kill(&mut self, grace: Duration) -> Termination {
        match self {
            Container::Process(process) => process.kill(grace).await,
            Container::Docker(docker) => docker.kill(grace).await,
        }
    }

    pub fn runtime_checkpoint(&self) -> RuntimeCheckpoint {
        match self {
            Container::Process(process) => process.runtime_checkpoint(),
            Container::Docker(docker) => docker.runtime_checkpoint(),
        }
    }

    pub fn sandbox(&self) -> &Path {
        match self {
            Container::Process(process) => process.sandbox(),
            Container::Docker(docker) => docker.sandbox(),
        }
    }

    fn last_stderr_line(&self) -> Option<String> {
        match self {
            Container::Process(process) => process.last_stderr_line(),
            Container::Docker(docker) => docker.last_stderr_line(),
        }
    }

    /// The terminal transition, with the task's last stderr line when it failed on its own.
    fn judge(&self, termination: Termination, kill_requested: KillRequested) -> TaskTransition {
        let transition = termination.into_transition(kill_requested);
        match transition {
            TaskTransition::Failed { exit_code, reason, message } if exit_code.is_some() => {
                let message = match self.last_stderr_line() {
                    Some(line) => format!("{message}: {line}"),
                    None => message,
                };
                TaskTransition::Failed { exit_code, reason, message }
            }
            other => other,
        }
    }
}

/// What the runner does when health checks reach `consecutive_failures`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnhealthyPolicy {
    /// As the Mesos command executor does.
    KillTask,
    /// Report `healthy: false` and let the framework decide.
    ReportOnly,
}

/// What a running task tells the reconciler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskEvent {
    Transition(TaskTransition),
    /// A health verdict changed: a RUNNING update with `healthy` set.
    Health {
        healthy: bool,
    },
    /// The agent could not write the task's checkpoint: it runs, but would not be found
    /// again after an agent restart.
    CheckpointFailed {
        message: String,
    },
}

/// The reconciler's handle on one task.
#[derive(Debug)]
pub struct TaskHandle {
    events: mpsc::UnboundedReceiver<TaskEvent>,
    kills: mpsc::UnboundedSender<Option<KillPolicy>>,
}

impl TaskHandle {
    /// The next event; `None` once the task has ended and every event was read.
    pub async fn next_event(&mut self) -> Option<TaskEvent> {
        self.events.recv().await
    }

    /// Asks for the task to be killed; the task's own KillPolicy applies when `policy` is
    /// `None`, then the 3 s default.
    pub fn kill(&self, policy: Option<KillPolicy>) {
        let _ = self.kills.send(policy);
    }
}

/// Everything a runner needs, cheap to clone per task.
#[derive(Clone, Debug)]
pub struct TaskRunner {
    containerizer: Arc<Containerizer>,
    checkpoints: CheckpointStore,
    unhealthy_policy: UnhealthyPolicy,
    health_results: Option<prometheus::IntCounterVec>,
}

impl TaskRunner {
    pub fn new(
        containerizer: Arc<Containerizer>,
        checkpoints: CheckpointStore,
        unhealthy_policy: UnhealthyPolicy,
    ) -> TaskRunner {
        TaskRunner { containerizer, checkpoints, unhealthy_policy, health_results: None }
    }

    /// Counts every health check result of the tasks it runs (labels: kind, outcome).
    pub fn counting_health_checks(self, results: prometheus::IntCounterVec) -> TaskRunner {
        TaskRunner { health_results: Some(results), ..self }
    }

    /// Launches the task and drives it to its end in a background task.
    pub fn launch(&self, task: TaskInfo, framework_id: FrameworkId) -> TaskHandle {
        let (event_sender, events) = mpsc::unbounded_channel();
        let (kills, kill_receiver) = mpsc::unbounded_channel();
        let runner = self.clone();
        tokio::spawn(async move {
            let _ = event_sender.send(TaskEvent::Transition(TaskTransition::Starting));
            let launch = runner.containerizer.launch(&task, &framework_id).await;
            let container = match launch {
                Ok(container) => container,
                Err(termination) => {
                    let transition = termination.into_transition(KillRequested::No);
                    let _ = event_sender.send(TaskEvent::Transition(transition));
                    return;
                }
            };
            let checkpoint = TaskCheckpoint {
                agent_id: runner.containerizer.process().agent_id().clone(),
                framework_id: framework_id.clone(),
                task: task.clone(),
                sandbox: container.sandbox().to_owned(),
                boot_id: boot_id(),
                runtime: container.runtime_checkpoint(),
                last_reported: None,
            };
            if let Err(error) = runner.checkpoints.save_task(&checkpoint) {
                tracing::error!(task = %task.task_id, %error, "cannot checkpoint task");
                let _ =
                    event_sender.send(TaskEvent::CheckpointFailed { message: error.to_string() });
            }
            let _ = event_sender.send(TaskEvent::Transition(TaskTransition::Running));
            runner
                .drive(container, task, framework_id, Instant::now(), event_sender, kill_receiver)
                .await;
        });
        TaskHandle { events, kills }
    }

    /// Takes over a task found by recovery: it is RUNNING already, so only what follows is
    /// reported. A task that ended while the agent was down yields its end at once.
    pub fn adopt(
        &self,
        checkpoint: TaskCheckpoint,
        recovered: Result<Container, Termination>,
    ) -> TaskHandle {
        let (event_sender, events) = mpsc::unbounded_channel();
        let (kills, kill_receiver) = mpsc::unbounded_channel();
        let runner = self.clone();
        tokio::spawn(async move {
            match recovered {
                Ok(container) => {
                    runner
                        .drive(
                            container,
                            checkpoint.task,
                            checkpoint.framework_id,
                            Instant::now(),
                            event_sender,
                            kill_receiver,
                        )
                        .await;
                }
                Err(termination) => {
                    let _ = event_sender.send(TaskEvent::Transition(
                        termination.into_transition(KillRequested::No),
                    ));
                }
            }
        });
        TaskHandle { events, kills }
    }

    async fn drive(
        &self,
        mut container: Container,
        task: TaskInfo,
        framework_id: FrameworkId,
        launched_at: Instant,
        events: mpsc::UnboundedSender<TaskEvent>,
        mut kills: mpsc::UnboundedReceiver<Option<KillPolicy>>,
    ) {
        let (health_sender, mut health_events) = mpsc::unbounded_channel();
        let health_task = task.health_check.clone().map(|check| {
            let target = self.containerizer.health_target(&task, &framework_id, &container);
            let checker = HealthChecker::new(check, target);
            let checker = match &self.health_results {
                Some(results) => checker.counting(results.clone()),
                None => checker,
            };
            tokio::spawn(checker.run(launched_at, health_sender))
        });
        let default_grace =
            task.kill_policy.and_then(|policy| policy.grace_period).unwrap_or(DEFAULT_KILL_GRACE);

        let (grace, kill_message) = loop {
            tokio::select! {
                termination = container.wait() => {
                    if let Some(health_task) = &health_task {
                        health_task.abort();
                    }
                    let transition = container.judge(termination, KillRequested::No);
                    let _ = events.send(TaskEvent::Transition(transition));
                    return;
                }
                Some(policy) = kills.recv() => {
                    let grace = policy.and_then(|policy| policy.grace_period).unwrap_or(default_grace);
                    break (grace, None);
                }
                Some(event) = health_events.recv() => match event {
                    HealthEvent::Changed { healthy, message } => {
                        tracing::info!(task = %task.task_id, healthy, %message, "health changed");
                        let _ = events.send(TaskEvent::Health { healthy });
                    }
                    HealthEvent::FailureLimitReached { message, .. } => {
                        if self.unhealthy_policy == UnhealthyPolicy::KillTask {
                            break (default_grace, Some(message));
                        }
                    }
                },
            }
        };
        if let Some(health_task) = &health_task {
            health_task.abort();
        }
        let _ = events.send(TaskEvent::Transition(TaskTransition::Killing));
        let termination = container.kill(grace).await;
        let transition = match (container.judge(termination, KillRequested::Yes), kill_message) {
            (TaskTransition::Killed { .. }, Some(message)) => TaskTransition::Killed { message },
            (transition, _) => transition,
        };
        let _ = events.send(TaskEvent::Transition(transition));
    }
}
