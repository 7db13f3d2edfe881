//! The `corral agent` process: it registers with the masters (or re-registers with the id it
//! checkpointed), heartbeats, follows its own event stream from a checkpointed cursor and
//! makes the machine match it (launch, kill), and turns every task transition into a status
//! update that reaches the log exactly once, across agent restarts and master failovers. It
//! serves its own HTTP API on `--listen` from start-up, and stops when asked, leaving its
//! tasks running or killing them as [`OnStop`] says.

mod client;
mod pending;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::SocketAddr;
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
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};

use crate::checkpoint::{boot_id, AgentCheckpoint, CheckpointError, CheckpointStore};
use crate::containerizer::{Containerizer, TaskEvent, TaskHandle, TaskRunner, UnhealthyPolicy};
use crate::docker::DockerContainerizer;
use crate::environment::sandbox_dir;
use crate::http::{AgentApi, AgentIdentity};
use crate::limits::LimitMode;
use crate::metrics::AgentMetrics;
use crate::process::ProcessContainerizer;
use crate::resources::{agent_attributes, agent_resources, ResourcesError};
use crate::tasks::{ContainerizerKind, StatusRecord, TaskKey, TaskRecord, TaskTable};
use crate::transition::TaskTransition;
use crate::usage::UsageSampler;

pub use client::{CommandReply, MasterClient, StreamRefused, StreamSource};
pub use pending::{PendingStore, PendingUpdates};

/// How often each task's usage is read by default ("every few seconds").
pub const DEFAULT_USAGE_INTERVAL: Duration = Duration::from_secs(5);
/// How long a stopping agent lets HTTP requests in flight (a download, say) finish.
const HTTP_DRAIN: Duration = Duration::from_secs(3);

/// What happens to the tasks when the agent stops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnStop {
    /// As Mesos: tasks keep running without the agent, and an agent restarted on the same
    /// work dir finds them again. Production's choice.
    #[default]
    LeaveTasksRunning,
    /// Every task is killed (process groups and containers, each with its kill policy) and
    /// the agent waits for them to end before it returns: `corral dev`'s choice, so stopping
    /// it leaves nothing behind.
    KillTasks,
}

impl OnStop {
    fn as_flag(self) -> &'static str {
        match self {
            OnStop::LeaveTasksRunning => "leave_tasks_running",
            OnStop::KillTasks => "kill_tasks",
        }
    }
}

/// Everything `corral agent` takes from its flags.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// `host:port` of every master; commands follow the leader's redirects.
    pub masters: Vec<String>,
    /// Where the agent's HTTP API listens; port 0 picks a free one.
    pub listen: String,
    /// The address masters are told; defaults to the address actually listened on (with
    /// the host name when listening on every interface).
    pub advertise: Option<String>,
    pub work_dir: PathBuf,
    /// Mesos `--resources`; replaces the detected value of every resource it names.
    pub resources: Option<String>,
    /// Mesos `--attributes`.
    pub attributes: Option<String>,
    /// Defaults to the machine's host name.
    pub hostname: Option<String>,
    /// Well under the state's agent timeout (75 s by default).
    pub heartbeat_interval: Duration,
    /// How often each task's CPU and memory usage is read.
    pub usage_interval: Duration,
    pub on_stop: OnStop,
    /// Mutual TLS: the agent's API is served over TLS and masters are dialled with this
    /// agent's certificate, trusting only certificates naming `master.<cluster>`.
    pub tls: Option<corral_tls::Tls>,
    /// Sent as `Authorization: Bearer` on every request to a master; with access control
    /// enforced, its principal needs `register_agents` for this agent's host.
    pub token: Option<AgentToken>,
}

/// An ACL token (`crl_…`), never printed.
#[derive(Clone)]
pub struct AgentToken(String);

impl AgentToken {
    /// The token as `corral acl` or the bootstrap gave it; surrounding whitespace (a
    /// token file's final newline) is not part of it.
    pub fn new(text: &str) -> Result<AgentToken, String> {
        let token = text.trim();
        if token.is_empty() {
            return Err("the token is empty".to_owned());
        }
        if token.chars().any(|c| !c.is_ascii_graphic()) {
            return Err("the token has characters other than printable ASCII".to_owned());
        }
        Ok(AgentToken(token.to_owned()))
    }

    pub(crate) fn authorization(&self) -> reqwest::header::HeaderValue {
        let mut value = reqwest::header::HeaderValue::try_from(format!("Bearer {}", self.0))
            .expect("a token of printable ASCII makes a valid header value");
        value.set_sensitive(true);
        value
    }
}

impl std::fmt::Debug for AgentToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AgentToken(…)")
    }
}

impl AgentConfig {
    pub fn new(masters: Vec<String>, work_dir: PathBuf) -> AgentConfig {
        AgentConfig {
            masters,
            listen: "127.0.0.1:5051".to_owned(),
            advertise: None,
            work_dir,
            resources: None,
            attributes: None,
            hostname: None,
            heartbeat_interval: Duration::from_secs(5),
            usage_interval: DEFAULT_USAGE_INTERVAL,
            on_stop: OnStop::default(),
            tls: None,
            token: None,
        }
    }

    /// Mesos's `flags` object in `/state`.
    fn flags(&self) -> BTreeMap<String, String> {
        let mut flags = BTreeMap::from([
            ("master".to_owned(), self.masters.join(",")),
            ("listen".to_owned(), self.listen.clone()),
            ("work_dir".to_owned(), self.work_dir.display().to_string()),
            ("heartbeat_interval".to_owned(), format!("{:?}", self.heartbeat_interval)),
            ("usage_interval".to_owned(), format!("{:?}", self.usage_interval)),
            ("on_stop".to_owned(), self.on_stop.as_flag().to_owned()),
        ]);
        let optional = [
            ("advertise", &self.advertise),
            ("resources", &self.resources),
            ("attributes", &self.attributes),
            ("hostname", &self.hostname),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                flags.insert(name.to_owned(), value.clone());
            }
        }
        flags
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
    #[error("cannot listen on --listen {address}: {source}")]
    Listen { address: String, source: std::io::Error },
    #[error("cannot build the HTTP client for the masters: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error("cannot set up metrics: {0}")]
    Metrics(#[from] prometheus::Error),
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

struct Agent {
    agent_id: AgentId,
    info: AgentInfo,
    resources: Resources,
    boot_id: String,
    work_dir: PathBuf,
    client: Arc<MasterClient>,
    checkpoints: CheckpointStore,
    pending: PendingStore,
    runner: TaskRunner,
    tasks: Mutex<BTreeMap<TaskKey, KnownTask>>,
    /// Tasks whose end the master committed: a replayed TaskAdded must not launch them again.
    ended: Mutex<BTreeSet<TaskKey>>,
    /// What the API shows of every task.
    table: Arc<TaskTable>,
    metrics: Arc<AgentMetrics>,
    /// The loops that act on the masters' word (events, heartbeats) and the usage sampler:
    /// a stopping agent ends them first.
    loops: Mutex<JoinSet<()>>,
    /// Per-task supervisors and status deliveries: they end last.
    workers: Mutex<JoinSet<()>>,
}

/// Runs the agent until the process ends. Returns early only for start-up errors
/// (malformed flags, unusable work dir or listen address, registration refused).
pub async fn run(config: AgentConfig) -> Result<(), AgentError> {
    run_until(config, std::future::pending()).await
}

/// Runs the agent until `shutdown` resolves, then stops it as `config.on_stop` says.
pub async fn run_until(
    config: AgentConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    let mut shutdown = std::pin::pin!(shutdown);
    let agent = tokio::select! {
        started = start(config) => started?,
        () = &mut shutdown => {
            tracing::info!("asked to stop before the agent had started");
            return Ok(());
        }
    };
    shutdown.await;
    agent.stop().await;
    Ok(())
}

/// A started agent: registered, its API served, its loops running. Dropping it without
/// [`RunningAgent::stop`] ends the agent's work at once (tasks keep running).
pub struct RunningAgent {
    agent: Arc<Agent>,
    api: AgentApi,
    http_address: SocketAddr,
    server: Option<JoinHandle<std::io::Result<()>>>,
    stop_server: Option<oneshot::Sender<()>>,
    on_stop: OnStop,
}

impl Drop for RunningAgent {
    fn drop(&mut self) {
        self.agent.loops.lock().unwrap_or_else(|p| p.into_inner()).abort_all();
        self.agent.workers.lock().unwrap_or_else(|p| p.into_inner()).abort_all();
        if let Some(server) = &self.server {
            server.abort();
        }
    }
}

/// Aborts the server when a start-up fails half-way, so nothing keeps holding the port.
struct AbortOnDrop(Option<JoinHandle<std::io::Result<()>>>);

impl AbortOnDrop {
    fn disarm(mut self) -> Option<JoinHandle<std::io::Result<()>>> {
        self.0.take()
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(handle) = &self.0 {
            handle.abort();
        }
    }
}

/// Starts the agent: detects resources, listens, registers (or recovers), and starts its
/// loops. Returns once it is registered and its checkpointed tasks are found again.
pub async fn start(config: AgentConfig) -> Result<RunningAgent, AgentError> {
    if config.masters.is_empty() {
        return Err(AgentError::NoMaster);
    }
    let work_dir_error = |source| AgentError::WorkDir { path: config.work_dir.clone(), source };
    // Sandbox paths are shown to clients and read back from them: they must be absolute.
    let work_dir = std::path::absolute(&config.work_dir).map_err(work_dir_error)?;
    std::fs::create_dir_all(&work_dir).map_err(work_dir_error)?;
    let resources = agent_resources(&work_dir, config.resources.as_deref())?;
    let attributes = agent_attributes(config.attributes.as_deref())?;
    let limit_mode = LimitMode::detect();
    tracing::info!(limits = %limit_mode, resources = %resources, "agent starting");
    let hostname = config.hostname.clone().unwrap_or_else(machine_hostname);

    let listen_error = |source| AgentError::Listen { address: config.listen.clone(), source };
    let listener = tokio::net::TcpListener::bind(&config.listen).await.map_err(listen_error)?;
    let http_address = listener.local_addr().map_err(listen_error)?;
    let address =
        config.advertise.clone().unwrap_or_else(|| advertised_address(http_address, &hostname));
    let info = AgentInfo { hostname, address, attributes };

    let metrics = Arc::new(AgentMetrics::new()?);
    let table = Arc::new(TaskTable::new());
    let client = Arc::new(MasterClient::new(
        config.masters.clone(),
        config.tls.as_ref(),
        config.token.as_ref(),
    )?);
    let mut flags = config.flags();
    flags.insert("work_dir".to_owned(), work_dir.display().to_string());
    let identity = AgentIdentity {
        hostname: info.hostname.clone(),
        address: info.address.clone(),
        resources: resources.clone(),
        attributes: info.attributes.clone(),
        flags,
    };
    let api = AgentApi::new(identity, table.clone(), metrics.clone(), client.clone());
    let (stop_server, server_stopped) = oneshot::channel::<()>();
    let server = AbortOnDrop(Some(tokio::spawn(crate::http::serve(
        listener,
        api.clone(),
        config.tls.clone(),
        async {
            let _ = server_stopped.await;
        },
    ))));
    tracing::info!(listen = %http_address, advertise = %info.address, "agent API listening");

    let checkpoints = CheckpointStore::new(&work_dir);
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
    api.set_agent_id(agent_id.clone());

    let docker = match DockerContainerizer::connect(work_dir.clone(), agent_id.clone()).await {
        Ok(docker) => Some(docker),
        Err(error) => {
            tracing::warn!(%error, "no Docker engine: DOCKER tasks will fail");
            None
        }
    };
    let engine = docker.as_ref().map(|docker| docker.docker().clone());
    let process = ProcessContainerizer::new(work_dir.clone(), agent_id.clone(), limit_mode);
    let containerizer = Arc::new(Containerizer::new(process, docker));
    let runner =
        TaskRunner::new(containerizer.clone(), checkpoints.clone(), UnhealthyPolicy::KillTask)
            .counting_health_checks(metrics.health_checks.clone());
    let agent = Arc::new(Agent {
        agent_id,
        info,
        resources,
        boot_id: boot_id(),
        work_dir,
        client,
        pending: PendingStore::new(checkpoints.meta_dir()),
        checkpoints,
        runner,
        tasks: Mutex::default(),
        ended: Mutex::default(),
        table: table.clone(),
        metrics,
        loops: Mutex::default(),
        workers: Mutex::default(),
    });

    agent.recover(&containerizer).await?;
    if restarted {
        agent.reregister().await;
    }
    agent.spawn_loop(agent.clone().heartbeats(config.heartbeat_interval));
    agent.spawn_loop(UsageSampler::new(table, engine, config.usage_interval).run());
    let reconciler = agent.clone();
    agent.spawn_loop(async move { reconciler.follow_events(cursor).await });
    Ok(RunningAgent {
        agent,
        api,
        http_address,
        server: server.disarm(),
        stop_server: Some(stop_server),
        on_stop: config.on_stop,
    })
}

impl RunningAgent {
    /// What the HTTP API serves; `crate::http::router(api)` answers in-process.
    pub fn api(&self) -> &AgentApi {
        &self.api
    }

    /// The address the API listens on (the port picked, when `--listen` said 0).
    pub fn http_address(&self) -> SocketAddr {
        self.http_address
    }

    pub fn agent_id(&self) -> &AgentId {
        &self.agent.agent_id
    }

    /// Runs until `shutdown` resolves, then stops.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) {
        shutdown.await;
        self.stop().await;
    }

    /// Stops the agent: it stops following its events and heartbeating; with
    /// [`OnStop::KillTasks`] it kills every task and waits for each to end; then it stops
    /// delivering updates and serving HTTP. Updates not yet delivered stay on disk for the
    /// next start.
    pub async fn stop(mut self) {
        let agent = self.agent.clone();
        let loops = std::mem::take(&mut *agent.loops.lock().unwrap_or_else(|p| p.into_inner()));
        shut_down(loops).await;
        match self.on_stop {
            OnStop::LeaveTasksRunning => {
                let tasks = agent.table.live_count();
                tracing::info!(tasks, "agent stopping; its tasks keep running");
            }
            OnStop::KillTasks => {
                let killed = agent.kill_all();
                tracing::info!(tasks = killed, "agent stopping; killing its tasks");
                agent.table.wait_until_no_live_tasks().await;
                tracing::info!("every task has ended");
            }
        }
        let workers = std::mem::take(&mut *agent.workers.lock().unwrap_or_else(|p| p.into_inner()));
        shut_down(workers).await;
        if let Some(stop_server) = self.stop_server.take() {
            let _ = stop_server.send(());
        }
        let Some(mut server) = self.server.take() else { return };
        match tokio::time::timeout(HTTP_DRAIN, &mut server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => tracing::error!(%error, "the agent API failed"),
            Ok(Err(error)) => tracing::error!(%error, "the agent API task failed"),
            Err(_) => {
                tracing::warn!(?HTTP_DRAIN, "requests still open; closing the agent API");
                server.abort();
            }
        }
    }
}

async fn shut_down(mut set: JoinSet<()>) {
    set.shutdown().await;
}

/// `ip:port` of the listener; the host name instead of an unspecified address (0.0.0.0),
/// which masters could not reach.
fn advertised_address(bound: SocketAddr, hostname: &str) -> String {
    if bound.ip().is_unspecified() {
        return format!("{hostname}:{}", bound.port());
    }
    bound.to_string()
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
                let state = pending.last().map(|status| status.state).unwrap_or(TaskState::Lost);
                self.table.insert(TaskRecord::new(
                    key.0.clone(),
                    checkpoint.task.clone(),
                    None,
                    checkpoint.sandbox.clone(),
                    state,
                ));
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
            let mut record = TaskRecord::new(
                key.0.clone(),
                checkpoint.task.clone(),
                None,
                checkpoint.sandbox.clone(),
                state,
            );
            record.runtime = Some(checkpoint.runtime.clone());
            self.table.insert(record);
            let handle = self.runner.adopt(checkpoint, recovered);
            self.supervise(key, executor_id, state, handle, pending, None);
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
        // The first stream follows a registration (or start-up's re-registration): nothing
        // was lost before it, as after a move.
        let mut ended = StreamEnd::Moved;
        loop {
            let from = cursor.unwrap_or(Cursor::START);
            let (response, source) = match self.client.open_events(&self.agent_id, from).await {
                Ok(opened) => opened,
                Err(StreamRefused::Gone { oldest }) => {
                    tracing::error!(%from, %oldest, "events before {oldest} are gone; resuming there and re-registering");
                    cursor = Some(oldest);
                    self.reregister().await;
                    continue;
                }
            };
            if ended == StreamEnd::Broke {
                // The master that served the stream went away: a failover, perhaps; tell
                // the masters again what runs here. Beside the new stream, not before it:
                // the command may wait on a leader that paused, and the new stream's
                // heartbeats are what name the leader to send it to.
                let agent = self.clone();
                self.spawn_worker(async move { agent.reregister().await });
            }
            let url = response.url().clone();
            tracing::info!(%url, "following agent events");
            ended = self.read_events(response, source, &mut cursor).await;
            match ended {
                StreamEnd::Broke => self.client.stream_lost(source),
                StreamEnd::Moved => {
                    tracing::info!(%url, "the stream's master leads now; moving the stream to a follower")
                }
            }
        }
    }

    /// Acts on each event of one stream until it breaks or its master turns out to lead.
    async fn read_events(
        self: &Arc<Self>,
        response: reqwest::Response,
        source: StreamSource,
        cursor: &mut Option<Cursor>,
    ) -> StreamEnd {
        let mut body = response.bytes_stream();
        let mut buffer = Vec::new();
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(error) => {
                    tracing::warn!(%error, "agent event stream broke");
                    return StreamEnd::Broke;
                }
            };
            buffer.extend_from_slice(&chunk);
            while let Some(newline) = buffer.iter().position(|&byte| byte == b'\n') {
                let line: Vec<u8> = buffer.drain(..=newline).collect();
                let (at, event) = match parse_line(&line) {
                    StreamLine::Event(at, event) => (at, event),
                    StreamLine::Heartbeat { leader: Some(leader) } => {
                        self.client.heard_leader(&leader);
                        if self.client.streaming_from_leader(source) {
                            return StreamEnd::Moved;
                        }
                        continue;
                    }
                    StreamLine::Heartbeat { leader: None } | StreamLine::Other => continue,
                };
                self.handle_event(*event);
                *cursor = Some(at);
                let checkpoint = AgentCheckpoint {
                    agent_id: self.agent_id.clone(),
                    boot_id: self.boot_id.clone(),
                    cursor: *cursor,
                };
                if let Err(error) = self.checkpoints.save_agent(&checkpoint) {
                    tracing::error!(%error, "cannot checkpoint the event cursor");
                }
            }
        }
        StreamEnd::Broke
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
                let kind = ContainerizerKind::of(&task.info);
                self.metrics.launches.with_label_values(&[kind.as_str()]).inc();
                let launch = LaunchAsked { at: tokio::time::Instant::now(), kind };
                self.table.insert(TaskRecord::new(
                    key.0.clone(),
                    task.info.clone(),
                    Some(task.role.clone()),
                    sandbox_dir(&self.work_dir, &key.0, &key.1),
                    TaskState::Staging,
                ));
                let handle = self.runner.launch(task.info.clone(), task.framework_id.clone());
                self.supervise(
                    key,
                    task.info.executor_id(),
                    TaskState::Staging,
                    handle,
                    Vec::new(),
                    Some(launch),
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
    /// `launch` is when the launch was asked, for a task launched (not recovered) here.
    fn supervise(
        self: &Arc<Self>,
        key: TaskKey,
        executor_id: Option<ExecutorId>,
        state: TaskState,
        mut handle: TaskHandle,
        already_pending: Vec<TaskStatus>,
        mut launch: Option<LaunchAsked>,
    ) {
        let (kills, mut kill_requests) = mpsc::unbounded_channel();
        self.tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(key.clone(), KnownTask { executor_id, state, kills: Some(kills) });
        let deliveries = self.start_delivery(key.clone(), already_pending);
        let agent = self.clone();
        self.spawn_worker(async move {
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
                        agent.observe(&key, &status, &mut launch);
                        if let Err(error) = agent.pending.push(&key.0, &status) {
                            tracing::error!(task = %key.1, %error, "cannot checkpoint a status update");
                        }
                        agent.metrics.status_updates_pending.inc();
                        let _ = deliveries.send(status);
                    }
                    Some(policy) = kill_requests.recv() => handle.kill(policy),
                }
            }
        });
    }

    /// What a transition tells the API and the metrics.
    fn observe(&self, key: &TaskKey, status: &TaskStatus, launch: &mut Option<LaunchAsked>) {
        self.table.record_status(
            key,
            StatusRecord {
                state: status.state,
                timestamp: status.timestamp,
                healthy: status.healthy,
            },
        );
        if status.state == TaskState::Running {
            if let Some(asked) = launch.take() {
                self.metrics
                    .launch_seconds
                    .with_label_values(&[asked.kind.as_str()])
                    .observe(asked.at.elapsed().as_secs_f64());
                // The runner checkpointed how to find the container before RUNNING.
                match self.checkpoints.load_task(&key.0, &key.1) {
                    Ok(Some(checkpoint)) => self.table.set_runtime(key, checkpoint.runtime),
                    Ok(None) => tracing::warn!(task = %key.1, "running task has no checkpoint"),
                    Err(error) => {
                        tracing::warn!(task = %key.1, %error, "cannot read task checkpoint")
                    }
                }
            }
        }
        if !status.state.is_terminal() {
            return;
        }
        self.metrics.tasks_completed.with_label_values(&[status.state.as_mesos_str()]).inc();
        let failed_to_start = matches!(status.state, TaskState::Failed | TaskState::Error);
        if let (Some(asked), true) = (launch.take(), failed_to_start) {
            let reason = status.reason.map_or("none", |reason| reason.as_mesos_str());
            self.metrics.launch_failures.with_label_values(&[asked.kind.as_str(), reason]).inc();
        }
    }

    /// Asks every running task to end (each with its own kill policy); how many were asked.
    fn kill_all(&self) -> usize {
        let tasks = self.tasks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        tasks
            .values()
            .filter_map(|known| known.kills.as_ref())
            .filter(|kills| kills.send(None).is_ok())
            .count()
    }

    fn spawn_loop(&self, work: impl Future<Output = ()> + Send + 'static) {
        spawn_into(&self.loops, work);
    }

    fn spawn_worker(&self, work: impl Future<Output = ()> + Send + 'static) {
        spawn_into(&self.workers, work);
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
            self.metrics.status_updates_pending.inc();
            let _ = sender.send(status);
        }
        let agent = self.clone();
        self.spawn_worker(async move {
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
                    self.metrics.status_updates.with_label_values(&["committed"]).inc();
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
                    self.metrics.status_updates.with_label_values(&["rejected"]).inc();
                    break;
                }
            }
        }
        self.metrics.status_updates_pending.dec();
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

/// When a launch was asked of the agent, and of which containerizer.
struct LaunchAsked {
    at: tokio::time::Instant,
    kind: ContainerizerKind,
}

/// Spawns into `set`, first reaping what has finished so the set stays small.
fn spawn_into(set: &Mutex<JoinSet<()>>, work: impl Future<Output = ()> + Send + 'static) {
    let mut set = set.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    while let Some(finished) = set.try_join_next() {
        if let Err(error) = finished {
            if error.is_panic() {
                tracing::error!(%error, "an agent task panicked");
            }
        }
    }
    set.spawn(work);
}

/// Why the agent stopped reading an event stream.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum StreamEnd {
    /// It broke, went quiet or was ended by its master.
    Broke,
    /// Its master leads: the agent reads from a follower instead.
    Moved,
}

/// One NDJSON line of the agent stream.
#[derive(Debug, PartialEq)]
enum StreamLine {
    /// Boxed: events are large, and most lines are heartbeats.
    Event(Cursor, Box<Event>),
    /// The master is alive, and says who leads (nobody while it is cut off).
    Heartbeat { leader: Option<String> },
    /// The final `disconnected` line, or anything unreadable (logged).
    Other,
}

fn parse_line(line: &[u8]) -> StreamLine {
    let value: serde_json::Value = match serde_json::from_slice(line) {
        Ok(value) => value,
        Err(error) => {
            tracing::warn!(%error, "unreadable agent stream line");
            return StreamLine::Other;
        }
    };
    if let Some(reason) = value.get("disconnected") {
        tracing::warn!(%reason, "the master ended the agent event stream");
        return StreamLine::Other;
    }
    if value["kind"] == "heartbeat" {
        return StreamLine::Heartbeat { leader: value["leader"].as_str().map(str::to_owned) };
    }
    let Some(cursor) = value["cursor"].as_str().and_then(|cursor| cursor.parse().ok()) else {
        tracing::warn!(%value, "an agent stream line without a cursor");
        return StreamLine::Other;
    };
    match serde_json::from_value(value["event"].clone()) {
        Ok(event) => StreamLine::Event(cursor, Box::new(event)),
        Err(error) => {
            tracing::warn!(%error, %cursor, "unreadable agent event");
            StreamLine::Other
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

#[cfg(test)]
mod tests {
    use super::{parse_line, StreamLine};

    #[test]
    fn a_heartbeat_names_the_leader_or_nobody() {
        assert_eq!(
            parse_line(b"{\"kind\":\"heartbeat\",\"leader\":\"127.0.0.1:5050\"}\n"),
            StreamLine::Heartbeat { leader: Some("127.0.0.1:5050".to_owned()) }
        );
        assert_eq!(
            parse_line(b"{\"kind\":\"heartbeat\",\"leader\":null}\n"),
            StreamLine::Heartbeat { leader: None }
        );
        // What masters before the leader was named sent.
        assert_eq!(
            parse_line(b"{\"kind\":\"heartbeat\"}\n"),
            StreamLine::Heartbeat { leader: None }
        );
    }

    #[test]
    fn the_last_line_and_garbage_are_neither_events_nor_heartbeats() {
        assert_eq!(parse_line(b"{\"disconnected\":\"too slow\"}\n"), StreamLine::Other);
        assert_eq!(parse_line(b"not json\n"), StreamLine::Other);
        assert_eq!(parse_line(b"{\"cursor\":\"12\"}\n"), StreamLine::Other);
    }
}
