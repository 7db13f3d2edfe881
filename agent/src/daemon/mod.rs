//! The `corral agent` process: it registers with the masters (or re-registers with the id it
//! checkpointed), heartbeats, follows its own event stream from a checkpointed cursor and
//! makes the machine match it (launch, kill), and turns every task transition into a status
//! update that reaches the log exactly once, across agent restarts and master failovers.

mod client;
mod pending;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use corral_state::model::{AgentInfo, KillPolicy, ReportedTask, TaskInfo, TaskState, TaskStatus};
use corral_state::{
    AgentId, Command, Cursor, Event, ExecutorId, FrameworkId, Outcome, Rejection, Resources,
    TaskId, Timestamp, UpdateUuid,
};
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::checkpoint::{boot_id, AgentCheckpoint, CheckpointError, CheckpointStore};
use crate::containerizer::{Containerizer, TaskEvent, TaskHandle, TaskRunner, UnhealthyPolicy};
use crate::docker::DockerContainerizer;
use crate::limits::LimitMode;
use crate::process::ProcessContainerizer;
use crate::resources::{agent_attributes, agent_resources, ResourcesError};
use crate::transition::TaskTransition;

pub use client::{CommandReply, MasterClient, StreamRefused};
pub use pending::{PendingStore, PendingUpdates};

/// Everything `corral agent` takes from its flags.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// `host:port` of every master; commands follow the leader's redirects.
    pub masters: Vec<String>,
    /// The address the agent advertises as its own.
    pub listen: String,
    pub work_dir: PathBuf,
    /// Mesos `--resources`; replaces the detected value of every resource it names.
    pub resources: Option<String>,
    /// Mesos `--attributes`.
    pub attributes: Option<String>,
    /// Defaults to the machine's host name.
    pub hostname: Option<String>,
    /// Well under the state's agent timeout (75 s by default).
    pub heartbeat_interval: Duration,
}

impl AgentConfig {
    pub fn new(masters: Vec<String>, work_dir: PathBuf) -> AgentConfig {
        AgentConfig {
            masters,
            listen: "127.0.0.1:5051".to_owned(),
            work_dir,
            resources: None,
            attributes: None,
            hostname: None,
            heartbeat_interval: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Resources(#[from] ResourcesError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("cannot create --work-dir {path}: {source}")]
    WorkDir { path: PathBuf, source: std::io::Error },
    #[error("no --master given")]
    NoMaster,
    #[error("the master refused to register this agent: {0:?}")]
    RegistrationRefused(Rejection),
}

/// A task as the reconciler knows it, from launch (or recovery) to its committed end.
struct KnownTask {
    executor_id: Option<ExecutorId>,
    /// The newest state the agent has seen; what re-registration reports.
    state: TaskState,
    /// Absent once the task has ended and only its updates remain to deliver.
    kills: Option<mpsc::UnboundedSender<Option<KillPolicy>>>,
}

type TaskKey = (FrameworkId, TaskId);

struct Agent {
    agent_id: AgentId,
    info: AgentInfo,
    resources: Resources,
    boot_id: String,
    client: MasterClient,
    checkpoints: CheckpointStore,
    pending: PendingStore,
    runner: TaskRunner,
    tasks: Mutex<BTreeMap<TaskKey, KnownTask>>,
    /// Tasks whose end the master committed: a replayed TaskAdded must not launch them again.
    ended: Mutex<BTreeSet<TaskKey>>,
}

/// Runs the agent until the process ends. Returns early only for start-up errors
/// (malformed flags, unusable work dir, registration refused).
pub async fn run(config: AgentConfig) -> Result<(), AgentError> {
    if config.masters.is_empty() {
        return Err(AgentError::NoMaster);
    }
    std::fs::create_dir_all(&config.work_dir)
        .map_err(|source| AgentError::WorkDir { path: config.work_dir.clone(), source })?;
    let resources = agent_resources(&config.work_dir, config.resources.as_deref())?;
    let attributes = agent_attributes(config.attributes.as_deref())?;
    let limit_mode = LimitMode::detect();
    tracing::info!(limits = %limit_mode, resources = %resources, "agent starting");
    let hostname = config.hostname.clone().unwrap_or_else(machine_hostname);
    let info = AgentInfo { hostname, address: config.listen.clone(), attributes };

    let checkpoints = CheckpointStore::new(&config.work_dir);
    let client = MasterClient::new(config.masters.clone());
    let previous = checkpoints.load_agent()?;
    let (agent_id, cursor, restarted) = match previous {
        Some(previous) => (previous.agent_id, previous.cursor, true),
        None => {
            let agent_id = register(&client, &info, &resources).await?;
            let checkpoint =
                AgentCheckpoint { agent_id: agent_id.clone(), boot_id: boot_id(), cursor: None };
            checkpoints.save_agent(&checkpoint)?;
            (agent_id, None, false)
        }
    };
    tracing::info!(%agent_id, restarted, "agent registered");

    let docker = match DockerContainerizer::connect(config.work_dir.clone(), agent_id.clone()).await
    {
        Ok(docker) => Some(docker),
        Err(error) => {
            tracing::warn!(%error, "no Docker engine: DOCKER tasks will fail");
            None
        }
    };
    let process = ProcessContainerizer::new(config.work_dir.clone(), agent_id.clone(), limit_mode);
    let containerizer = Arc::new(Containerizer::new(process, docker));
    let runner =
        TaskRunner::new(containerizer.clone(), checkpoints.clone(), UnhealthyPolicy::KillTask);
    let agent = Arc::new(Agent {
        agent_id,
        info,
        resources,
        boot_id: boot_id(),
        client,
        pending: PendingStore::new(checkpoints.meta_dir()),
        checkpoints,
        runner,
        tasks: Mutex::default(),
        ended: Mutex::default(),
    });

    agent.recover(&containerizer).await?;
    if restarted {
        agent.reregister().await;
    }
    tokio::spawn(agent.clone().heartbeats(config.heartbeat_interval));
    agent.follow_events(cursor).await;
    Ok(())
}

fn machine_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

fn now() -> Timestamp {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    Timestamp(since_epoch.as_nanos() as u64)
}

/// Mesos frameworks expect `TaskStatus.uuid` as base64 of 16 random bytes.
fn fresh_uuid() -> UpdateUuid {
    UpdateUuid::new(
        base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::new_v4().as_bytes()),
    )
}

async fn register(
    client: &MasterClient,
    info: &AgentInfo,
    resources: &Resources,
) -> Result<AgentId, AgentError> {
    let command = Command::RegisterAgent { info: info.clone(), resources: resources.clone() };
    let request_id = format!("register-{}", uuid::Uuid::new_v4());
    match client.send(&request_id, None, &command).await {
        CommandReply::Rejected(rejection) => Err(AgentError::RegistrationRefused(rejection)),
        CommandReply::Committed(outcome) => {
            let events = match outcome {
                Outcome::Accepted(events) => events,
                Outcome::Duplicate(first) => first.events().to_vec(),
                Outcome::Rejected(rejection) => {
                    return Err(AgentError::RegistrationRefused(rejection))
                }
            };
            events
                .into_iter()
                .find_map(|event| match event {
                    Event::AgentAdded { agent_id, .. } => Some(agent_id),
                    _ => None,
                })
                .ok_or_else(|| {
                    AgentError::RegistrationRefused(Rejection::invalid(
                        "outcome",
                        "the registration named no agent id",
                    ))
                })
        }
    }
}

impl Agent {
    /// Finds checkpointed tasks again: running ones are adopted, ended ones report their end
    /// once, and updates that were not committed before the restart are sent again.
    async fn recover(self: &Arc<Self>, containerizer: &Containerizer) -> Result<(), AgentError> {
        let mut pending_by_task: BTreeMap<TaskKey, Vec<TaskStatus>> = self
            .pending
            .load_all()?
            .into_iter()
            .map(|pending| ((pending.framework_id, pending.task_id), pending.statuses))
            .collect();
        for checkpoint in self.checkpoints.load_tasks()? {
            let key = (checkpoint.framework_id.clone(), checkpoint.task_id().clone());
            let pending = pending_by_task.remove(&key).unwrap_or_default();
            let already_ended = checkpoint.last_reported.is_some_and(TaskState::is_terminal)
                || pending.iter().any(|status| status.state.is_terminal());
            if already_ended {
                if pending.is_empty() {
                    self.checkpoints.remove_task(&key.0, &key.1)?;
                    continue;
                }
                tracing::info!(task = %key.1, "recovered an ended task with updates to send");
                self.deliver_only(key, checkpoint.task.executor_id(), pending);
                continue;
            }
            let recovered = containerizer.recover(&checkpoint).await;
            match &recovered {
                Ok(_) => tracing::info!(task = %key.1, "recovered a running task"),
                Err(termination) => {
                    tracing::info!(task = %key.1, ended = %termination.describe(), "task ended while the agent was down")
                }
            }
            let state = pending
                .last()
                .map(|status| status.state)
                .or(checkpoint.last_reported)
                .unwrap_or(TaskState::Running);
            let executor_id = checkpoint.task.executor_id();
            let handle = self.runner.adopt(checkpoint, recovered);
            self.supervise(key, executor_id, state, handle, pending);
        }
        for (key, pending) in pending_by_task {
            tracing::info!(task = %key.1, "recovered updates of a task that never ran");
            self.deliver_only(key, None, pending);
        }
        Ok(())
    }

    fn reported_tasks(&self) -> Vec<ReportedTask> {
        let tasks = self.tasks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        tasks
            .iter()
            .map(|((framework_id, task_id), known)| ReportedTask {
                framework_id: framework_id.clone(),
                task_id: task_id.clone(),
                state: known.state,
            })
            .collect()
    }

    async fn reregister(&self) {
        let command = Command::ReregisterAgent {
            agent_id: self.agent_id.clone(),
            info: self.info.clone(),
            resources: self.resources.clone(),
            tasks: self.reported_tasks(),
        };
        let request_id = format!("reregister-{}", uuid::Uuid::new_v4());
        match self.client.send(&request_id, Some(&self.agent_id), &command).await {
            CommandReply::Committed(_) => {
                tracing::info!(agent_id = %self.agent_id, "re-registered")
            }
            CommandReply::Rejected(rejection) => {
                tracing::error!(agent_id = %self.agent_id, ?rejection, "re-registration refused")
            }
        }
    }

    async fn heartbeats(self: Arc<Self>, interval: Duration) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let command = Command::AgentHeartbeat { agent_id: self.agent_id.clone() };
            let request_id = format!("heartbeat-{}-{}", self.agent_id, uuid::Uuid::new_v4());
            let reply = self.client.send(&request_id, Some(&self.agent_id), &command).await;
            match reply {
                CommandReply::Committed(_) => {}
                CommandReply::Rejected(Rejection::AgentUnreachable(_)) => {
                    tracing::warn!("the master marked this agent unreachable; re-registering");
                    self.reregister().await;
                }
                CommandReply::Rejected(rejection) => {
                    tracing::error!(?rejection, "heartbeat refused")
                }
            }
        }
    }

    /// The reconciler: follows the agent's events from `cursor` on any master, acts on each,
    /// then checkpoints the cursor, so a restart resumes after the last event acted on.
    async fn follow_events(self: &Arc<Self>, mut cursor: Option<Cursor>) {
        let mut connections = 0u64;
        loop {
            let from = cursor.unwrap_or(Cursor::START);
            let response = match self.client.open_events(&self.agent_id, from).await {
                Ok(response) => response,
                Err(StreamRefused::Gone { oldest }) => {
                    tracing::error!(%from, %oldest, "events before {oldest} are gone; resuming there and re-registering");
                    cursor = Some(oldest);
                    self.reregister().await;
                    continue;
                }
            };
            connections += 1;
            if connections > 1 {
                // The master that served the stream went away: a failover, perhaps; tell
                // the masters again what runs here.
                self.reregister().await;
            }
            tracing::info!(url = %response.url(), "following agent events");
            let mut body = response.bytes_stream();
            let mut buffer = Vec::new();
            while let Some(chunk) = body.next().await {
                let chunk = match chunk {
                    Ok(chunk) => chunk,
                    Err(error) => {
                        tracing::warn!(%error, "agent event stream broke");
                        break;
                    }
                };
                buffer.extend_from_slice(&chunk);
                while let Some(newline) = buffer.iter().position(|&byte| byte == b'\n') {
                    let line: Vec<u8> = buffer.drain(..=newline).collect();
                    let Some((at, event)) = parse_line(&line) else { continue };
                    self.handle_event(event);
                    cursor = Some(at);
                    let checkpoint = AgentCheckpoint {
                        agent_id: self.agent_id.clone(),
                        boot_id: self.boot_id.clone(),
                        cursor,
                    };
                    if let Err(error) = self.checkpoints.save_agent(&checkpoint) {
                        tracing::error!(%error, "cannot checkpoint the event cursor");
                    }
                }
            }
        }
    }

    fn handle_event(self: &Arc<Self>, event: Event) {
        match event {
            Event::TaskAdded { task } => {
                if task.agent_id() != &self.agent_id {
                    return;
                }
                let key = (task.framework_id.clone(), task.id().clone());
                if self.is_known(&key) {
                    return;
                }
                tracing::info!(task = %key.1, framework = %key.0, "launching");
                let handle = self.runner.launch(task.info.clone(), task.framework_id.clone());
                self.supervise(
                    key,
                    task.info.executor_id(),
                    TaskState::Staging,
                    handle,
                    Vec::new(),
                );
            }
            Event::TaskKillRequested { framework_id, task_id, agent_id, kill_policy } => {
                if agent_id != self.agent_id {
                    return;
                }
                let tasks = self.tasks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                match tasks.get(&(framework_id, task_id.clone())).and_then(|t| t.kills.as_ref()) {
                    Some(kills) => {
                        tracing::info!(task = %task_id, "killing");
                        let _ = kills.send(kill_policy);
                    }
                    None => tracing::info!(task = %task_id, "kill of a task not running here"),
                }
            }
            Event::ExecutorShutdownRequested { framework_id, executor_id, agent_id } => {
                if agent_id != self.agent_id {
                    return;
                }
                let tasks = self.tasks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                for ((task_framework, task_id), known) in tasks.iter() {
                    if task_framework != &framework_id
                        || known.executor_id.as_ref() != Some(&executor_id)
                    {
                        continue;
                    }
                    if let Some(kills) = &known.kills {
                        tracing::info!(task = %task_id, executor = %executor_id, "executor shutdown: killing");
                        let _ = kills.send(None);
                    }
                }
            }
            Event::AgentRemoved { agent_id, by_operator } if agent_id == self.agent_id => {
                tracing::error!(by_operator, "the masters removed this agent");
            }
            _ => {}
        }
    }

    fn is_known(&self, key: &TaskKey) -> bool {
        let ended = self.ended.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let tasks = self.tasks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        ended.contains(key) || tasks.contains_key(key)
    }

    /// Watches one task: each transition and health change becomes a pending update,
    /// delivered in order by the task's own delivery loop; kills reach the runner.
    fn supervise(
        self: &Arc<Self>,
        key: TaskKey,
        executor_id: Option<ExecutorId>,
        state: TaskState,
        mut handle: TaskHandle,
        already_pending: Vec<TaskStatus>,
    ) {
        let (kills, mut kill_requests) = mpsc::unbounded_channel();
        self.tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(key.clone(), KnownTask { executor_id, state, kills: Some(kills) });
        let deliveries = self.start_delivery(key.clone(), already_pending);
        let agent = self.clone();
        tokio::spawn(async move {
            let mut healthy = None;
            loop {
                tokio::select! {
                    event = handle.next_event() => {
                        let transition = match event {
                            None => break,
                            Some(TaskEvent::Transition(transition)) => transition,
                            Some(TaskEvent::Health { healthy: verdict }) => {
                                healthy = Some(verdict);
                                TaskTransition::Running
                            }
                            Some(TaskEvent::CheckpointFailed { message }) => {
                                tracing::error!(task = %key.1, %message, "task runs unrecoverably");
                                continue;
                            }
                        };
                        let status = transition.to_status(
                            key.1.clone(),
                            agent.agent_id.clone(),
                            now(),
                            fresh_uuid(),
                            healthy,
                        );
                        agent.note_state(&key, status.state);
                        if let Err(error) = agent.pending.push(&key.0, &status) {
                            tracing::error!(task = %key.1, %error, "cannot checkpoint a status update");
                        }
                        let _ = deliveries.send(status);
                    }
                    Some(policy) = kill_requests.recv() => handle.kill(policy),
                }
            }
        });
    }

    /// A task that ended while the agent was down and whose end is still to be delivered.
    fn deliver_only(
        self: &Arc<Self>,
        key: TaskKey,
        executor_id: Option<ExecutorId>,
        pending: Vec<TaskStatus>,
    ) {
        let state = pending.last().map(|status| status.state).unwrap_or(TaskState::Lost);
        self.tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(key.clone(), KnownTask { executor_id, state, kills: None });
        // The sender is dropped at once: the loop ends after the recovered updates.
        let _ = self.start_delivery(key, pending);
    }

    fn note_state(&self, key: &TaskKey, state: TaskState) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(known) = tasks.get_mut(key) {
            known.state = state;
        }
    }

    fn start_delivery(
        self: &Arc<Self>,
        key: TaskKey,
        already_pending: Vec<TaskStatus>,
    ) -> mpsc::UnboundedSender<TaskStatus> {
        let (sender, mut statuses) = mpsc::unbounded_channel();
        for status in already_pending {
            let _ = sender.send(status);
        }
        let agent = self.clone();
        tokio::spawn(async move {
            while let Some(status) = statuses.recv().await {
                let terminal = status.state.is_terminal();
                agent.deliver(&key.0, status).await;
                if terminal {
                    agent.forget(&key);
                    return;
                }
            }
        });
        sender
    }

    /// Sends one update until the log decides on it. Its uuid is its request id, so resends
    /// (after a timeout, a failover, an agent restart) are applied once.
    async fn deliver(&self, framework_id: &FrameworkId, mut status: TaskStatus) {
        loop {
            let request_id = status.uuid.as_ref().map(|uuid| uuid.as_str().to_owned());
            let request_id = request_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            let command = Command::UpdateStatus {
                framework_id: framework_id.clone(),
                status: status.clone(),
            };
            match self.client.send(&request_id, Some(&self.agent_id), &command).await {
                CommandReply::Committed(_) => {
                    tracing::info!(task = %status.task_id, state = ?status.state, "status committed");
                    break;
                }
                CommandReply::Rejected(Rejection::AgentUnreachable(_)) => {
                    // The uuid is spent on the rejection; after re-registering the update
                    // goes again as a new one.
                    tracing::warn!(task = %status.task_id, "update refused: agent unreachable; re-registering");
                    self.reregister().await;
                    let old_uuid = status.uuid.clone().unwrap_or_else(fresh_uuid);
                    status.uuid = Some(fresh_uuid());
                    if let Err(error) = self.pending.replace(framework_id, &old_uuid, &status) {
                        tracing::error!(%error, "cannot checkpoint a status update");
                    }
                }
                CommandReply::Rejected(rejection) => {
                    tracing::error!(task = %status.task_id, state = ?status.state, ?rejection, "status update rejected");
                    break;
                }
            }
        }
        if let Err(error) = self.pending.remove(framework_id, &status) {
            tracing::error!(%error, "cannot forget a delivered status update");
        }
        self.note_reported(framework_id, &status.task_id, status.state);
    }

    fn note_reported(&self, framework_id: &FrameworkId, task_id: &TaskId, state: TaskState) {
        let checkpoint = match self.checkpoints.load_task(framework_id, task_id) {
            Ok(Some(checkpoint)) => checkpoint,
            Ok(None) => return,
            Err(error) => {
                tracing::error!(%error, "cannot read a task checkpoint");
                return;
            }
        };
        let checkpoint =
            crate::checkpoint::TaskCheckpoint { last_reported: Some(state), ..checkpoint };
        if let Err(error) = self.checkpoints.save_task(&checkpoint) {
            tracing::error!(%error, "cannot checkpoint what was reported");
        }
    }

    /// The task's end is in the log: nothing about it remains to do.
    fn forget(&self, key: &TaskKey) {
        if let Err(error) = self.checkpoints.remove_task(&key.0, &key.1) {
            tracing::error!(%error, "cannot remove a task checkpoint");
        }
        self.ended.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(key.clone());
        self.tasks.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(key);
    }
}

/// One NDJSON line of the agent stream: an event with its cursor, or `None` for heartbeats,
/// the final `disconnected` line and anything unreadable.
fn parse_line(line: &[u8]) -> Option<(Cursor, Event)> {
    let value: serde_json::Value = serde_json::from_slice(line).ok()?;
    if let Some(reason) = value.get("disconnected") {
        tracing::warn!(%reason, "the master ended the agent event stream");
        return None;
    }
    let cursor = value.get("cursor")?.as_str()?.parse().ok()?;
    match serde_json::from_value(value.get("event")?.clone()) {
        Ok(event) => Some((cursor, event)),
        Err(error) => {
            tracing::warn!(%error, %cursor, "unreadable agent event");
            None
        }
    }
}

trait ExecutorOfTask {
    fn executor_id(&self) -> Option<ExecutorId>;
}

impl ExecutorOfTask for TaskInfo {
    fn executor_id(&self) -> Option<ExecutorId> {
        self.executor.as_ref().map(|executor| executor.executor_id.clone())
    }
}
