//! The process containerizer: a command task runs as its own process group, in its own
//! sandbox, under a small shell wrapper that outlives the agent and records the exit code.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use corral_state::model::TaskInfo;
use corral_state::{AgentId, FrameworkId};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::AsyncWriteExt;

use crate::checkpoint::{boot_id, ProcessStat, RuntimeCheckpoint, TaskCheckpoint};
use crate::environment::{container_name, sandbox_dir, task_environment};
use crate::limits::{LimitMode, TaskCgroup, TaskLimits};
use crate::transition::Termination;

/// How often a task that is not the agent's child (after recovery) is looked at.
const ORPHAN_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// The wrapper's exit code when the agent vanished before telling it to start.
const WRAPPER_NOT_STARTED: i32 = 125;

/// Runs as `sh -c WRAPPER corral-task <exit-status-file> <command…>`.
///
/// It waits for one line on stdin so the agent can move it into the task's cgroup before
/// the command exists; it catches SIGTERM so that it outlives the task and can record the
/// exit code (a caught signal reverts to the default in the command); it runs the command
/// as a child, not with `exec`, for the same reason.
const WRAPPER: &str = r#"status_file=$1
shift
IFS= read -r corral_go || exit 125
exec </dev/null
__LIMITS__trap : TERM
"$@"
code=$?
printf '%s\n' "$code" > "$status_file.tmp" && mv -f "$status_file.tmp" "$status_file"
exit "$code"
"#;

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot signal process group {pid}: {source}")]
    Signal { pid: u32, source: nix::Error },
}

#[derive(Clone, Debug)]
pub struct ProcessContainerizer {
    work_dir: PathBuf,
    agent_id: AgentId,
    limit_mode: LimitMode,
}

impl ProcessContainerizer {
    pub fn new(
        work_dir: PathBuf,
        agent_id: AgentId,
        limit_mode: LimitMode,
    ) -> ProcessContainerizer {
        ProcessContainerizer { work_dir, agent_id, limit_mode }
    }

    pub fn limit_mode(&self) -> &LimitMode {
        &self.limit_mode
    }

    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }

    pub fn agent_id(&self) -> &AgentId {
        &self.agent_id
    }

    /// Starts the task. An `Err` is how it ended without ever running.
    pub async fn launch(
        &self,
        task: &TaskInfo,
        framework_id: &FrameworkId,
    ) -> Result<ProcessContainer, Termination> {
        let launch_failed = |message: String| Termination::LaunchFailed { message };
        let invalid = |message: &str| Termination::Invalid { message: message.to_owned() };
        let Some(command_info) = task.command.as_ref() else {
            return Err(invalid("task has neither a command nor a Docker container"));
        };
        let Some(value) = command_info.value.as_deref().filter(|value| !value.is_empty()) else {
            return Err(invalid("task command has no value"));
        };
        let user = resolve_user(command_info.user.as_deref()).map_err(launch_failed)?;

        let sandbox = sandbox_dir(&self.work_dir, framework_id, &task.task_id);
        let exit_status_file = sandbox.join(".corral-exit-status");
        prepare_sandbox(&sandbox, user).map_err(|error| {
            launch_failed(format!("cannot create sandbox {}: {error}", sandbox.display()))
        })?;
        // A status left by an earlier run of the same task id must not pass for this one's.
        let _ = std::fs::remove_file(&exit_status_file);
        let environment =
            task_environment(task, framework_id, &self.agent_id, &sandbox.display().to_string());
        if !command_info.shell && !is_executable_on_path(value, &environment) {
            return Err(launch_failed(format!(
                "cannot start task: executable '{value}' not found or not executable"
            )));
        }

        let limits = TaskLimits::from_resources(&task.resources);
        let cgroup_name = container_name(&self.agent_id, framework_id, &task.task_id);
        let cgroup =
            TaskCgroup::create(&self.limit_mode, &cgroup_name, &limits).map_err(|error| {
                launch_failed(format!("cannot create cgroup {cgroup_name}: {error}"))
            })?;
        let limit_lines = match cgroup {
            None => limits.rlimit_shell_lines(),
            Some(_) => String::new(),
        };

        let open_log = |name: &str| {
            std::fs::OpenOptions::new().create(true).append(true).open(sandbox.join(name))
        };
        let (stdout, stderr) = match (open_log("stdout"), open_log("stderr")) {
            (Ok(stdout), Ok(stderr)) => (stdout, stderr),
            (Err(error), _) | (_, Err(error)) => {
                return Err(launch_failed(format!("cannot open sandbox log files: {error}")))
            }
        };

        let mut command = tokio::process::Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(WRAPPER.replace("__LIMITS__", &limit_lines))
            .arg("corral-task")
            .arg(&exit_status_file);
        if command_info.shell {
            command.args(["/bin/sh", "-c", value]);
        } else {
            // As in Mesos, `arguments[0]` is argv[0]; the wrapper can only pass the path.
            command.arg(value).args(command_info.arguments.iter().skip(1));
        }
        command
            .current_dir(&sandbox)
            .envs(environment.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::piped())
            .stdout(stdout)
            .stderr(stderr)
            // Its own group: signals reach the whole task, and the agent's death does not.
            .process_group(0)
            .kill_on_drop(false);
        if let Some((uid, gid)) = user {
            command.uid(uid).gid(gid);
        }
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(error) => {
                if let Some(cgroup) = &cgroup {
                    cgroup.remove().await;
                }
                return Err(launch_failed(format!("cannot start task wrapper /bin/sh: {error}")));
            }
        };
        let Some(pid) = child.id() else {
            return Err(launch_failed("task wrapper ended before it could be observed".to_owned()));
        };
        let start_time = ProcessStat::read(pid).map(|stat| stat.start_time).unwrap_or_default();
        if let Some(cgroup) = &cgroup {
            if let Err(error) = cgroup.add_process(pid) {
                let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
                let _ = child.wait().await;
                cgroup.remove().await;
                return Err(launch_failed(format!("cannot move task into its cgroup: {error}")));
            }
        }
        if let Some(mut stdin) = child.stdin.take() {
            if let Err(error) = stdin.write_all(b"go\n").await {
                let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
                let _ = child.wait().await;
                return Err(launch_failed(format!("cannot start task wrapper: {error}")));
            }
        }
        tracing::info!(task = %task.task_id, pid, sandbox = %sandbox.display(), "process task started");
        Ok(ProcessContainer {
            pid,
            start_time,
            sandbox,
            exit_status_file,
            cgroup,
            limits,
            child: Some(child),
            ended: None,
            cleaned_up: false,
        })
    }

    /// Finds a task again from its checkpoint, in a new agent process: still running
    /// (same pid, same start time, same boot), or how it ended while nobody watched.
    pub async fn recover(
        &self,
        checkpoint: &TaskCheckpoint,
    ) -> Result<ProcessContainer, Termination> {
        let RuntimeCheckpoint::Process { pid, start_time, exit_status_file, cgroup } =
            &checkpoint.runtime
        else {
            return Err(Termination::Unknown {
                message: "checkpoint is not a process task".to_owned(),
            });
        };
        let container = ProcessContainer {
            pid: *pid,
            start_time: *start_time,
            sandbox: checkpoint.sandbox.clone(),
            exit_status_file: exit_status_file.clone(),
            cgroup: cgroup.clone(),
            limits: TaskLimits::from_resources(&checkpoint.task.resources),
            child: None,
            ended: None,
            cleaned_up: false,
        };
        if checkpoint.boot_id != boot_id() {
            return Err(container
                .ended_while_down("the machine rebooted since the task started")
                .await);
        }
        if !container.is_same_process_alive() {
            return Err(container
                .ended_while_down("the task ended while the agent was down")
                .await);
        }
        Ok(container)
    }
}

pub(crate) fn resolve_user(user: Option<&str>) -> Result<Option<(u32, u32)>, String> {
    let Some(name) = user else { return Ok(None) };
    // Switching users needs root; an unprivileged agent runs tasks as itself, as Mesos does
    // with `--switch_user=false`.
    if !nix::unistd::geteuid().is_root() {
        tracing::warn!(user = name, "agent is not root: running the task as the agent's user");
        return Ok(None);
    }
    match nix::unistd::User::from_name(name) {
        Ok(Some(user)) => Ok(Some((user.uid.as_raw(), user.gid.as_raw()))),
        Ok(None) => Err(format!("cannot start task: user '{name}' does not exist")),
        Err(error) => Err(format!("cannot start task: cannot look up user '{name}': {error}")),
    }
}

fn prepare_sandbox(sandbox: &Path, user: Option<(u32, u32)>) -> std::io::Result<()> {
    std::fs::create_dir_all(sandbox)?;
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(sandbox, Some(uid), Some(gid))?;
        for name in ["stdout", "stderr"] {
            let path = sandbox.join(name);
            std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
            std::os::unix::fs::chown(&path, Some(uid), Some(gid))?;
        }
    }
    Ok(())
}

fn is_executable_on_path(value: &str, environment: &[(String, String)]) -> bool {
    let is_executable = |path: &Path| {
        path.metadata().is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    };
    if value.contains('/') {
        return is_executable(Path::new(value));
    }
    let path_variable = environment
        .iter()
        .rev()
        .find(|(key, _)| key == "PATH")
        .map(|(_, value)| value.clone())
        .or_else(|| std::env::var("PATH").ok())
        .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".to_owned());
    path_variable.split(':').any(|dir| is_executable(&Path::new(dir).join(value)))
}

/// A running (or just ended) process task.
#[derive(Debug)]
pub struct ProcessContainer {
    pid: u32,
    start_time: u64,
    sandbox: PathBuf,
    exit_status_file: PathBuf,
    cgroup: Option<TaskCgroup>,
    limits: TaskLimits,
    /// `None` after recovery: the task is another process's child now.
    child: Option<tokio::process::Child>,
    ended: Option<Termination>,
    cleaned_up: bool,
}

impl ProcessContainer {
    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn sandbox(&self) -> &Path {
        &self.sandbox
    }

    pub fn cgroup(&self) -> Option<&TaskCgroup> {
        self.cgroup.as_ref()
    }

    pub fn runtime_checkpoint(&self) -> RuntimeCheckpoint {
        RuntimeCheckpoint::Process {
            pid: self.pid,
            start_time: self.start_time,
            exit_status_file: self.exit_status_file.clone(),
            cgroup: self.cgroup.clone(),
        }
    }

    fn is_same_process_alive(&self) -> bool {
        ProcessStat::read(self.pid)
            .is_some_and(|stat| stat.is_alive() && stat.start_time == self.start_time)
    }

    fn recorded_exit_code(&self) -> Option<i32> {
        std::fs::read_to_string(&self.exit_status_file).ok()?.trim().parse().ok()
    }

    async fn ended_while_down(&self, context: &str) -> Termination {
        let termination = match self.recorded_exit_code() {
            Some(code) => self.judge_wrapper_code(code),
            None => Termination::Unknown { message: format!("{context}; it left no exit status") },
        };
        self.clean_up().await;
        termination
    }

    fn judge_wrapper_code(&self, code: i32) -> Termination {
        if self.cgroup.as_ref().is_some_and(|cgroup| cgroup.oom_kills() > 0) {
            return Termination::OutOfMemory { limit_mib: self.limits.mem_mib };
        }
        // A shell reports a command killed by signal N as 128 + N.
        if code > 128 && code < 128 + 65 {
            return Termination::Signalled { signal: code - 128 };
        }
        if code == WRAPPER_NOT_STARTED && self.recorded_exit_code().is_none() {
            return Termination::LaunchFailed {
                message: "the agent went away before the task was started".to_owned(),
            };
        }
        Termination::Exited { code }
    }

    /// Waits for the task to end. Cancel-safe: a `select!` may drop it and call it again.
    /// The verdict is kept before the clean-up, which removes the cgroup it is read from.
    pub async fn wait(&mut self) -> Termination {
        let termination = match &self.ended {
            Some(ended) => ended.clone(),
            None => self.judge_end().await,
        };
        self.ended = Some(termination.clone());
        if !self.cleaned_up {
            self.clean_up().await;
            self.cleaned_up = true;
        }
        termination
    }

    async fn judge_end(&mut self) -> Termination {
        match self.child.as_mut() {
            Some(child) => match child.wait().await {
                Ok(status) => match (status.code(), status.signal()) {
                    (Some(code), _) => self.judge_wrapper_code(code),
                    (None, Some(signal)) => {
                        if self.cgroup.as_ref().is_some_and(|cgroup| cgroup.oom_kills() > 0) {
                            Termination::OutOfMemory { limit_mib: self.limits.mem_mib }
                        } else {
                            Termination::Signalled { signal }
                        }
                    }
                    (None, None) => Termination::Unknown {
                        message: format!("task wrapper ended with {status}"),
                    },
                },
                Err(error) => {
                    Termination::Unknown { message: format!("cannot wait for the task: {error}") }
                }
            },
            None => {
                while self.is_same_process_alive() {
                    tokio::time::sleep(ORPHAN_POLL_INTERVAL).await;
                }
                match self.recorded_exit_code() {
                    Some(code) => self.judge_wrapper_code(code),
                    None => Termination::Unknown {
                        message: "the task ended and left no exit status".to_owned(),
                    },
                }
            }
        }
    }

    /// Whatever the task left behind (daemons, orphans) ends with it, as it would with a
    /// container: its cgroup's members, and its process group while the agent is the
    /// parent. A recovered task's group is left alone: once its leader is gone, the group
    /// id could in time name someone else's processes.
    async fn clean_up(&self) {
        if self.child.is_some() {
            let _ = killpg(Pid::from_raw(self.pid as i32), Signal::SIGKILL);
        }
        if let Some(cgroup) = &self.cgroup {
            cgroup.kill_all();
            cgroup.remove().await;
        }
    }

    /// Sends `signal` to the task's whole process group.
    pub fn signal(&self, signal: Signal) -> Result<(), ProcessError> {
        if self.ended.is_some() || (self.child.is_none() && !self.is_same_process_alive()) {
            return Ok(());
        }
        match killpg(Pid::from_raw(self.pid as i32), signal) {
            Ok(()) | Err(nix::Error::ESRCH) => Ok(()),
            Err(source) => Err(ProcessError::Signal { pid: self.pid, source }),
        }
    }

    /// SIGTERM to the group, then SIGKILL once `grace` has passed, as the Mesos command
    /// executor does.
    pub async fn kill(&mut self, grace: Duration) -> Termination {
        if let Err(error) = self.signal(Signal::SIGTERM) {
            tracing::warn!(%error, "SIGTERM failed; sending SIGKILL");
        }
        if let Ok(termination) = tokio::time::timeout(grace, self.wait()).await {
            return termination;
        }
        tracing::info!(pid = self.pid, ?grace, "task outlived its grace period; sending SIGKILL");
        if let Err(error) = self.signal(Signal::SIGKILL) {
            tracing::warn!(%error, "SIGKILL failed");
        }
        self.wait().await
    }

    /// The last non-empty line the task wrote to stderr, to explain a failure.
    pub fn last_stderr_line(&self) -> Option<String> {
        last_line_of(&self.sandbox.join("stderr"))
    }
}

pub(crate) fn last_line_of(path: &Path) -> Option<String> {
    let text = std::fs::read(path).ok()?;
    let tail = &text[text.len().saturating_sub(4096)..];
    String::from_utf8_lossy(tail)
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .map(|line| line.trim().to_owned())
}
