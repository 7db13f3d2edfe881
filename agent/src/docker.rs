//! The Docker containerizer, through the engine API. Images must already be on the machine:
//! no registry is reachable from these machines, so the agent never pulls.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::container::{
    Config, CreateContainerOptions, ListContainersOptions, LogOutput, LogsOptions,
    RemoveContainerOptions, StartContainerOptions, StopContainerOptions, WaitContainerOptions,
};
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{HostConfig, PortBinding};
use bollard::Docker;
use corral_state::model::{DockerNetwork, TaskInfo};
use corral_state::{AgentId, FrameworkId};
use futures::StreamExt;

use crate::checkpoint::{RuntimeCheckpoint, TaskCheckpoint};
use crate::environment::{container_name, sandbox_dir, task_environment};
use crate::limits::TaskLimits;
use crate::transition::Termination;

/// Where a Docker task sees its sandbox, as in Mesos.
pub const CONTAINER_SANDBOX: &str = "/mnt/mesos/sandbox";
pub const LABEL_AGENT_ID: &str = "corral.agent_id";
pub const LABEL_FRAMEWORK_ID: &str = "corral.framework_id";
pub const LABEL_TASK_ID: &str = "corral.task_id";
/// How long to wait before asking the engine again after it failed to answer.
const ENGINE_RETRY_INTERVAL: Duration = Duration::from_millis(200);
/// A container's exit code when SIGKILL ended it (128 + 9).
const SIGKILL_EXIT_CODE: i32 = 137;
/// How often, and how far apart, a SIGKILLed container is asked whether it ran out of memory.
const OOM_FLAG_CHECKS: u32 = 5;
const OOM_FLAG_INTERVAL: Duration = Duration::from_millis(100);
/// Time for the engine to answer on top of what the request itself waits for.
const ENGINE_REQUEST_MARGIN: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("cannot reach the Docker engine: {0}")]
    Engine(#[from] bollard::errors::Error),
}

#[derive(Clone, Debug)]
pub struct DockerContainerizer {
    docker: Docker,
    work_dir: PathBuf,
    agent_id: AgentId,
}

impl DockerContainerizer {
    /// Connects to the local engine and agrees on an API version it speaks.
    pub async fn connect(
        work_dir: PathBuf,
        agent_id: AgentId,
    ) -> Result<DockerContainerizer, DockerError> {
        let docker = Docker::connect_with_local_defaults()?.negotiate_version().await?;
        Ok(DockerContainerizer { docker, work_dir, agent_id })
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// Creates and starts the task's container. An `Err` is how it ended without running.
    pub async fn launch(
        &self,
        task: &TaskInfo,
        framework_id: &FrameworkId,
    ) -> Result<DockerContainer, Termination> {
        let launch_failed = |message: String| Termination::LaunchFailed { message };
        let Some(docker_info) =
            task.container.as_ref().and_then(|container| container.docker.as_ref())
        else {
            return Err(Termination::Invalid {
                message: "DOCKER container without docker info".to_owned(),
            });
        };
        let image = docker_info.image.as_str();
        if image.is_empty() {
            return Err(Termination::Invalid { message: "docker image is empty".to_owned() });
        }
        match self.docker.inspect_image(image).await {
            Ok(_) => {}
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {
                return Err(launch_failed(format!(
                    "image {image} not found locally; no registry is reachable, so it is never pulled"
                )));
            }
            Err(error) => {
                return Err(launch_failed(format!("cannot inspect image {image}: {error}")));
            }
        }

        let sandbox = sandbox_dir(&self.work_dir, framework_id, &task.task_id);
        std::fs::create_dir_all(&sandbox).map_err(|error| {
            launch_failed(format!("cannot create sandbox {}: {error}", sandbox.display()))
        })?;
        let name = container_name(&self.agent_id, framework_id, &task.task_id);
        let environment: Vec<String> =
            task_environment(task, framework_id, &self.agent_id, CONTAINER_SANDBOX)
                .into_iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect();
        let limits = TaskLimits::from_resources(&task.resources);

        let (network_mode, port_bindings, exposed_ports) = match docker_info.network {
            DockerNetwork::Host => ("host".to_owned(), None, None),
            DockerNetwork::None => ("none".to_owned(), None, None),
            DockerNetwork::Bridge | DockerNetwork::User => {
                let mut bindings = HashMap::new();
                let mut exposed = HashMap::new();
                for mapping in &docker_info.port_mappings {
                    let protocol = mapping.protocol.as_deref().unwrap_or("tcp").to_lowercase();
                    let key = format!("{}/{protocol}", mapping.container_port);
                    bindings.insert(
                        key.clone(),
                        Some(vec![PortBinding {
                            host_ip: None,
                            host_port: Some(mapping.host_port.to_string()),
                        }]),
                    );
                    exposed.insert(key, HashMap::new());
                }
                ("bridge".to_owned(), Some(bindings), Some(exposed))
            }
        };
        let memory = limits.mem_mib.map(|mib| (mib * 1024 * 1024) as i64);
        let host_config = HostConfig {
            nano_cpus: limits.cpus.map(|cpus| (cpus * 1e9) as i64),
            memory,
            // Equal to `memory`: no swap beyond the limit.
            memory_swap: memory,
            network_mode: Some(network_mode),
            port_bindings,
            privileged: Some(docker_info.privileged),
            binds: Some(vec![format!("{}:{CONTAINER_SANDBOX}", sandbox.display())]),
            ..HostConfig::default()
        };
        let (entrypoint, cmd) = docker_command(task);
        let labels = HashMap::from([
            (LABEL_AGENT_ID.to_owned(), self.agent_id.to_string()),
            (LABEL_FRAMEWORK_ID.to_owned(), framework_id.to_string()),
            (LABEL_TASK_ID.to_owned(), task.task_id.to_string()),
        ]);
        let config = Config {
            image: Some(image.to_owned()),
            env: Some(environment),
            entrypoint,
            cmd,
            labels: Some(labels),
            exposed_ports,
            hostname: task.container.as_ref().and_then(|container| container.hostname.clone()),
            host_config: Some(host_config),
            ..Config::default()
        };
        // A container by this name outlives whatever agent started it (a wiped work dir, a
        // crash before the checkpoint): it is an orphan, as Mesos would call it, and would
        // hold the name and its host ports. This agent launches each task once, so it goes.
        let _ = self.docker.remove_container(&name, Some(force_remove())).await;
        let created = self
            .docker
            .create_container(
                Some(CreateContainerOptions { name: name.clone(), platform: None }),
                config,
            )
            .await
            .map_err(|error| launch_failed(format!("cannot create container {name}: {error}")))?;
        if let Err(error) =
            self.docker.start_container(&created.id, None::<StartContainerOptions<String>>).await
        {
            let _ = self.docker.remove_container(&created.id, Some(force_remove())).await;
            return Err(launch_failed(format!("cannot start container {name}: {error}")));
        }
        tracing::info!(task = %task.task_id, container = %name, "docker task started");
        Ok(DockerContainer {
            docker: self.docker.clone(),
            id: created.id,
            name,
            sandbox,
            mem_mib: limits.mem_mib,
            ended: None,
        })
    }

    /// Finds a task's container again from its checkpoint: running, or how it ended.
    pub async fn recover(
        &self,
        checkpoint: &TaskCheckpoint,
    ) -> Result<DockerContainer, Termination> {
        let RuntimeCheckpoint::Docker { container_id, container_name } = &checkpoint.runtime else {
            return Err(Termination::Unknown {
                message: "checkpoint is not a docker task".to_owned(),
            });
        };
        let container = DockerContainer {
            docker: self.docker.clone(),
            id: container_id.clone(),
            name: container_name.clone(),
            sandbox: checkpoint.sandbox.clone(),
            mem_mib: TaskLimits::from_resources(&checkpoint.task.resources).mem_mib,
            ended: None,
        };
        match container.state().await {
            // An engine that does not answer now is asked again by `wait`.
            ContainerRun::Running | ContainerRun::Unreachable(_) => Ok(container),
            ContainerRun::Ended(termination) => {
                container.finish(&termination).await;
                Err(termination)
            }
        }
    }

    /// Names of this agent's containers, for finding ones no checkpoint mentions.
    pub async fn list_agent_containers(&self) -> Result<Vec<String>, DockerError> {
        let filters = HashMap::from([(
            "label".to_owned(),
            vec![format!("{LABEL_AGENT_ID}={}", self.agent_id)],
        )]);
        let containers = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters,
                ..Default::default()
            }))
            .await?;
        Ok(containers.into_iter().filter_map(|container| container.id).collect())
    }
}

/// Mesos semantics: `shell` runs `/bin/sh -c value`; otherwise `value` and `arguments`
/// replace the image's command and its entrypoint stays.
fn docker_command(task: &TaskInfo) -> (Option<Vec<String>>, Option<Vec<String>>) {
    let Some(command) = &task.command else { return (None, None) };
    let Some(value) = command.value.clone().filter(|value| !value.is_empty()) else {
        let arguments = (!command.arguments.is_empty()).then(|| command.arguments.clone());
        return (None, arguments);
    };
    if command.shell {
        return (Some(vec!["/bin/sh".to_owned(), "-c".to_owned()]), Some(vec![value]));
    }
    let mut cmd = vec![value];
    cmd.extend(command.arguments.iter().skip(1).cloned());
    (None, Some(cmd))
}

fn force_remove() -> RemoveContainerOptions {
    RemoveContainerOptions { force: true, v: true, link: false }
}

enum ContainerRun {
    Running,
    Ended(Termination),
    /// The engine did not answer; the container may well be running.
    Unreachable(String),
}

#[derive(Debug)]
pub struct DockerContainer {
    docker: Docker,
    id: String,
    name: String,
    sandbox: PathBuf,
    mem_mib: Option<u64>,
    ended: Option<Termination>,
}

impl DockerContainer {
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn sandbox(&self) -> &Path {
        &self.sandbox
    }

    pub fn runtime_checkpoint(&self) -> RuntimeCheckpoint {
        RuntimeCheckpoint::Docker {
            container_id: self.id.clone(),
            container_name: self.name.clone(),
        }
    }

    async fn state(&self) -> ContainerRun {
        let inspect = match self.docker.inspect_container(&self.id, None).await {
            Ok(inspect) => inspect,
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {
                return ContainerRun::Ended(Termination::Unknown {
                    message: format!("container {} is gone", self.name),
                });
            }
            Err(error) => return ContainerRun::Unreachable(error.to_string()),
        };
        let state = inspect.state.unwrap_or_default();
        if state.running == Some(true) {
            return ContainerRun::Running;
        }
        if state.oom_killed == Some(true) {
            return ContainerRun::Ended(Termination::OutOfMemory { limit_mib: self.mem_mib });
        }
        let code = state.exit_code.unwrap_or(-1) as i32;
        if code == SIGKILL_EXIT_CODE && self.mem_mib.is_some() && self.oom_flag_arrives().await {
            return ContainerRun::Ended(Termination::OutOfMemory { limit_mib: self.mem_mib });
        }
        if state.error.as_deref().is_some_and(|error| !error.is_empty()) {
            return ContainerRun::Ended(Termination::LaunchFailed {
                message: state.error.unwrap_or_default(),
            });
        }
        // The engine reports a container killed by signal N as exit code 128 + N.
        if code > 128 && code < 128 + 65 {
            return ContainerRun::Ended(Termination::Signalled { signal: code - 128 });
        }
        ContainerRun::Ended(Termination::Exited { code })
    }

    /// The engine learns of an OOM kill and of the exit from two separate events, and may
    /// record the exit first: a SIGKILLed container is asked again, briefly, whether memory
    /// was the cause.
    async fn oom_flag_arrives(&self) -> bool {
        for _ in 0..OOM_FLAG_CHECKS {
            tokio::time::sleep(OOM_FLAG_INTERVAL).await;
            let Ok(inspect) = self.docker.inspect_container(&self.id, None).await else {
                return false;
            };
            if inspect.state.and_then(|state| state.oom_killed) == Some(true) {
                return true;
            }
        }
        false
    }

    /// Waits for the container to end. Cancel-safe.
    pub async fn wait(&mut self) -> Termination {
        if let Some(ended) = &self.ended {
            return ended.clone();
        }
        loop {
            match self.state().await {
                ContainerRun::Ended(termination) => {
                    self.finish(&termination).await;
                    self.ended = Some(termination.clone());
                    return termination;
                }
                ContainerRun::Unreachable(error) => {
                    tracing::warn!(container = %self.name, %error, "cannot inspect container; retrying");
                    tokio::time::sleep(ENGINE_RETRY_INTERVAL).await;
                    continue;
                }
                ContainerRun::Running => {}
            }
            // The wait stream ends, or errs for a non-zero exit, when the container stops;
            // the inspect above then says how. An engine hiccup just goes round again.
            let mut stream =
                self.docker.wait_container(&self.id, None::<WaitContainerOptions<String>>);
            if stream.next().await.is_none() {
                tokio::time::sleep(ENGINE_RETRY_INTERVAL).await;
            }
        }
    }

    /// Copies the container's output into the sandbox, then removes the container.
    async fn finish(&self, termination: &Termination) {
        self.save_logs().await;
        tracing::info!(container = %self.name, ?termination, "docker task ended");
        if let Err(error) = self.docker.remove_container(&self.id, Some(force_remove())).await {
            tracing::warn!(container = %self.name, %error, "cannot remove container");
        }
    }

    async fn save_logs(&self) {
        let options = LogsOptions::<String> { stdout: true, stderr: true, ..Default::default() };
        let mut logs = self.docker.logs(&self.id, Some(options));
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        while let Some(Ok(output)) = logs.next().await {
            match output {
                LogOutput::StdOut { message } | LogOutput::Console { message } => {
                    stdout.extend_from_slice(&message)
                }
                LogOutput::StdErr { message } => stderr.extend_from_slice(&message),
                LogOutput::StdIn { .. } => {}
            }
        }
        for (name, bytes) in [("stdout", stdout), ("stderr", stderr)] {
            if let Err(error) = std::fs::write(self.sandbox.join(name), bytes) {
                tracing::warn!(container = %self.name, %error, "cannot save container {name}");
            }
        }
    }

    /// `docker stop` with the grace period: SIGTERM, then SIGKILL when it runs out.
    pub async fn kill(&mut self, grace: Duration) -> Termination {
        let seconds = grace.as_secs_f64().ceil() as i64;
        // The engine answers only once the container stopped: the request must outlast the
        // grace period, which may be longer than the client's default timeout.
        let docker = self.docker.clone().with_timeout(grace + ENGINE_REQUEST_MARGIN);
        if let Err(error) =
            docker.stop_container(&self.id, Some(StopContainerOptions { t: seconds })).await
        {
            tracing::warn!(container = %self.name, %error, "stop failed; killing");
            let _ = self.docker.kill_container::<String>(&self.id, None).await;
        }
        self.wait().await
    }

    /// A handle health checks use to run commands inside the container.
    pub fn exec_handle(&self) -> DockerExec {
        DockerExec { docker: self.docker.clone(), id: self.id.clone() }
    }

    pub fn last_stderr_line(&self) -> Option<String> {
        crate::process::last_line_of(&self.sandbox.join("stderr"))
    }
}

/// Runs commands inside a running container; cheap to clone.
#[derive(Clone, Debug)]
pub struct DockerExec {
    docker: Docker,
    id: String,
}

impl DockerExec {
    /// Runs `command` through `/bin/sh -c` inside the container; its exit code.
    pub async fn exec(&self, command: &str) -> Result<i64, DockerError> {
        let exec = self
            .docker
            .create_exec(
                &self.id,
                CreateExecOptions {
                    cmd: Some(vec!["/bin/sh".to_owned(), "-c".to_owned(), command.to_owned()]),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await?;
        if let StartExecResults::Attached { mut output, .. } =
            self.docker.start_exec(&exec.id, None).await?
        {
            while output.next().await.is_some() {}
        }
        let inspect = self.docker.inspect_exec(&exec.id).await?;
        Ok(inspect.exit_code.unwrap_or(-1))
    }
}
