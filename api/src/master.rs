//! One master process: its shared state, its router and how it serves.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::Router;
use corral_allocator::AllocatorConfig;
use corral_log::{Committed, LogError, LogNode, ReadConsistency};
use corral_state::{Actor, ClusterState, Command, FrameworkId, RequestId, Role, Timestamp};
use tokio::sync::{mpsc, oneshot, Notify};

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::routes;

/// How often the leader's loops run.
#[derive(Clone, Debug)]
pub struct LoopIntervals {
    /// Mesos `--allocation_interval`.
    pub allocation: Duration,
    /// How often the leader proposes a `Tick` (time-based transitions).
    pub tick: Duration,
    /// HEARTBEAT events on scheduler and operator streams.
    pub stream_heartbeat: Duration,
}

impl Default for LoopIntervals {
    fn default() -> LoopIntervals {
        LoopIntervals {
            allocation: Duration::from_secs(1),
            tick: Duration::from_secs(1),
            stream_heartbeat: Duration::from_secs(15),
        }
    }
}

/// What `/corral/v1/allocation/explain` asks the leader's allocator.
#[derive(Clone, Debug)]
pub enum ExplainQuery {
    Framework(FrameworkId),
    Role(Role),
}

pub struct ExplainRequest {
    pub query: ExplainQuery,
    pub reply: oneshot::Sender<Option<serde_json::Value>>,
}

/// Messages for a framework's stream that are not in the log (what Mesos sends for an
/// invalid ACCEPT). Bounded: a framework that does not read them loses them, as in Mesos.
const DIRECT_EVENTS: usize = 1024;

struct StreamEntry {
    stream_id: String,
    close: oneshot::Sender<()>,
    direct: mpsc::Sender<serde_json::Value>,
    direct_receiver: Option<mpsc::Receiver<serde_json::Value>>,
}

/// The current scheduler stream of each framework: one at a time, a new SUBSCRIBE closes
/// the old one.
#[derive(Default)]
pub struct SchedulerStreams {
    streams: Mutex<HashMap<FrameworkId, StreamEntry>>,
}

impl SchedulerStreams {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<FrameworkId, StreamEntry>> {
        self.streams.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes `stream_id` the framework's stream; the previous one is told to close.
    pub fn replace(&self, framework_id: &FrameworkId, stream_id: &str) -> oneshot::Receiver<()> {
        let (close, closed) = oneshot::channel();
        let (direct, direct_receiver) = mpsc::channel(DIRECT_EVENTS);
        let entry = StreamEntry {
            stream_id: stream_id.to_owned(),
            close,
            direct,
            direct_receiver: Some(direct_receiver),
        };
        if let Some(previous) = self.lock().insert(framework_id.clone(), entry) {
            let _ = previous.close.send(());
        }
        closed
    }

    /// The receiving end of the stream's direct messages (once); a closed one otherwise.
    pub fn direct_receiver(
        &self,
        framework_id: &FrameworkId,
        stream_id: &str,
    ) -> mpsc::Receiver<serde_json::Value> {
        let taken = self
            .lock()
            .get_mut(framework_id)
            .filter(|entry| entry.stream_id == stream_id)
            .and_then(|entry| entry.direct_receiver.take());
        taken.unwrap_or_else(|| mpsc::channel(1).1)
    }

    pub fn send_direct(&self, framework_id: &FrameworkId, event: serde_json::Value) {
        if let Some(entry) = self.lock().get(framework_id) {
            let _ = entry.direct.try_send(event);
        }
    }

    pub fn is_current(&self, framework_id: &FrameworkId, stream_id: &str) -> bool {
        self.lock().get(framework_id).is_some_and(|entry| entry.stream_id == stream_id)
    }

    /// Forgets the stream if it is still the framework's current one; true if it was.
    pub fn remove_if_current(&self, framework_id: &FrameworkId, stream_id: &str) -> bool {
        let mut streams = self.lock();
        if streams.get(framework_id).is_some_and(|entry| entry.stream_id == stream_id) {
            streams.remove(framework_id);
            return true;
        }
        false
    }

    pub fn count(&self) -> usize {
        self.lock().len()
    }
}

pub struct MasterInner {
    pub node: LogNode,
    pub metrics: Metrics,
    pub intervals: LoopIntervals,
    pub allocator_config: AllocatorConfig,
    /// Set while this master's allocator runs (it is the leader).
    pub explain: Mutex<Option<mpsc::Sender<ExplainRequest>>>,
    pub scheduler_streams: SchedulerStreams,
    /// Woken when something may make new offers possible, so the allocator runs before its
    /// interval is up.
    pub allocation_wanted: Notify,
    pub address: String,
    pub started_at: Timestamp,
    /// The built-in service scheduler's recent offer matching, for `/v2/queue` (leader).
    pub service_offers: crate::marathon::offers::OfferReports,
}

/// Everything a handler needs. Cheap to clone.
#[derive(Clone)]
pub struct Master {
    pub inner: Arc<MasterInner>,
}

pub fn wall_clock() -> Timestamp {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    Timestamp(u64::try_from(nanos).unwrap_or(u64::MAX))
}

pub fn new_request_id() -> RequestId {
    RequestId::new(uuid::Uuid::new_v4().to_string())
}

impl Master {
    pub fn new(
        node: LogNode,
        address: String,
        intervals: LoopIntervals,
        allocator_config: AllocatorConfig,
    ) -> Result<Master, ApiError> {
        let metrics = Metrics::new().map_err(|error| ApiError::Internal(error.to_string()))?;
        let append_seconds = metrics.raft_append_seconds.clone();
        let flush_seconds = metrics.raft_flush_seconds.clone();
        node.observe_storage(std::sync::Arc::new(move |operation, took| match operation {
            corral_log::StorageOperation::Append => append_seconds.observe(took.as_secs_f64()),
            corral_log::StorageOperation::Flush => flush_seconds.observe(took.as_secs_f64()),
        }));
        Ok(Master {
            inner: Arc::new(MasterInner {
                node,
                metrics,
                intervals,
                allocator_config,
                explain: Mutex::new(None),
                scheduler_streams: SchedulerStreams::default(),
                allocation_wanted: Notify::new(),
                address,
                started_at: wall_clock(),
                service_offers: crate::marathon::offers::OfferReports::default(),
            }),
        })
    }

    pub fn node(&self) -> &LogNode {
        &self.inner.node
    }

    /// Proposes a command and waits for its outcome. `path` is where a client should retry
    /// on the leader.
    pub async fn propose(
        &self,
        request_id: RequestId,
        actor: Actor,
        command: Command,
        path: &str,
    ) -> Result<Committed, ApiError> {
        let wakes_allocator = matches!(
            command,
            Command::RegisterAgent { .. }
                | Command::ReregisterAgent { .. }
                | Command::Subscribe { .. }
                | Command::Revive { .. }
                | Command::Decline { .. }
                | Command::Accept { .. }
                | Command::LaunchServiceTasks { .. }
                | Command::UpdateStatus { .. }
                | Command::ReactivateAgent { .. }
        );
        let committed = self
            .inner
            .node
            .propose(request_id, actor, command)
            .await
            .map_err(|error| self.log_error(error, path))?;
        if wakes_allocator {
            self.inner.allocation_wanted.notify_one();
        }
        Ok(committed)
    }

    /// Turns a log error into what the client should see: "not leader" becomes a redirect.
    pub fn log_error(&self, error: LogError, path: &str) -> ApiError {
        match error {
            LogError::NotLeader { leader_hint: Some((_, address)) } if !address.is_empty() => {
                ApiError::NotLeader { leader_url: Some(format!("http://{address}{path}")) }
            }
            LogError::NotLeader { .. } => ApiError::NoLeader,
            other => ApiError::Internal(other.to_string()),
        }
    }

    /// Reads the state; a read that needs the leader and is made on a follower becomes a
    /// redirect to `path` on the leader.
    pub async fn read_state<T>(
        &self,
        consistency: ReadConsistency,
        path: &str,
        reader: impl FnOnce(&ClusterState) -> T,
    ) -> Result<T, ApiError> {
        self.inner.node.read(consistency, reader).await.map_err(|error| self.log_error(error, path))
    }

    /// For answers of megabytes: copies the state without its request ids (tasks are shared,
    /// so the copy is cheap) and renders the copy on a blocking thread, so applying never
    /// waits for the answer to be built.
    pub async fn render_off_lock<T: Send + 'static>(
        &self,
        consistency: ReadConsistency,
        path: &str,
        render: impl FnOnce(&ClusterState) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let copy = self.read_state(consistency, path, ClusterState::without_bookkeeping).await?;
        tokio::task::spawn_blocking(move || render(&copy))
            .await
            .map_err(|error| ApiError::Internal(error.to_string()))
    }

    /// The leader's URL for `path`, when this master is not the leader.
    pub fn redirect_if_follower(&self, path: &str) -> Result<(), ApiError> {
        if self.inner.node.is_leader() {
            return Ok(());
        }
        match self.inner.node.status().leader_address {
            Some(address) => {
                Err(ApiError::NotLeader { leader_url: Some(format!("http://{address}{path}")) })
            }
            None => Err(ApiError::NoLeader),
        }
    }

    /// What SUBSCRIBED and the v0 state say about this master.
    pub fn master_info(&self) -> serde_json::Value {
        let (ip, port) =
            self.inner.address.rsplit_once(':').unwrap_or((self.inner.address.as_str(), "5050"));
        serde_json::json!({
            "id": format!("corral-master-{}", self.inner.node.node_id()),
            "ip": 0,
            "port": port.parse::<u32>().unwrap_or(5050),
            "hostname": ip,
            "version": crate::mesos::operator::MESOS_API_VERSION,
            "address": {"ip": ip, "port": port.parse::<u32>().unwrap_or(5050)},
        })
    }
}

/// Counts and times every request by its matched route, never by its raw path, so ids in
/// paths do not explode the label set.
async fn track(
    State(master): State<Master>,
    matched: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let route = matched.map(|m| m.as_str().to_owned()).unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().as_str().to_owned();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let metrics = &master.inner.metrics;
    metrics.http_requests.with_label_values(&[&route, &method, response.status().as_str()]).inc();
    metrics
        .http_request_seconds
        .with_label_values(&[&route, &method])
        .observe(started.elapsed().as_secs_f64());
    response
}

/// Every HTTP route a master serves; tests call this directly.
pub fn router(master: Master) -> Router {
    let raft = master.inner.node.raft_router();
    Router::new()
        .route("/api/v1/scheduler", post(routes::scheduler::call))
        .route("/api/v1", post(routes::operator::call))
        .route("/master/state", get(routes::misc::master_state))
        .route("/state", get(routes::misc::master_state))
        .route("/health", get(routes::misc::health))
        .route("/version", get(routes::misc::version))
        .route("/metrics", get(routes::misc::metrics))
        .route("/corral/v1/cluster", get(routes::native::cluster))
        .route("/corral/v1/events", get(routes::native::events))
        .route("/corral/v1/allocation/explain", get(routes::native::explain))
        .route(
            "/corral/v1/settings",
            get(routes::settings::get_settings).patch(routes::settings::patch_settings),
        )
        .route("/corral/v1/agent/commands", post(routes::agent::command))
        .route("/corral/v1/agent/{agent_id}/events", get(routes::agent::events))
        .route(
            "/v2/apps",
            get(routes::marathon_apps::list)
                .post(routes::marathon_apps::create)
                .put(routes::marathon_apps::update_many)
                .patch(routes::marathon_apps::update_many),
        )
        .route(
            "/v2/apps/{*rest}",
            get(routes::marathon_apps::get_under)
                .put(routes::marathon_apps::put_under)
                .patch(routes::marathon_apps::put_under)
                .post(routes::marathon_apps::post_under)
                .delete(routes::marathon_apps::delete_under),
        )
        .route("/v2/tasks", get(routes::marathon::tasks))
        .route("/v2/tasks/delete", post(routes::marathon::delete_tasks))
        .route("/v2/deployments", get(routes::marathon::deployments))
        .route("/v2/deployments/{deployment_id}", delete(routes::marathon::cancel_deployment))
        .route("/v2/queue", get(routes::marathon::queue))
        .route("/v2/queue/{*rest}", delete(routes::marathon::reset_delay))
        .route("/v2/events", get(routes::marathon::events))
        .route("/v2/info", get(routes::marathon::info))
        .route("/v2/leader", get(routes::marathon::leader))
        .route("/ping", get(routes::marathon::ping))
        .layer(axum::middleware::from_fn_with_state(master.clone(), track))
        .with_state(master)
        .merge(raft)
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    master: Master,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(master);
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}
