//! One master process: its shared state, its router and how it serves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use corral_allocator::AllocatorConfig;
use corral_log::{Committed, LogError, LogNode, ReadConsistency};
use corral_state::auth::AuthMode;
use corral_state::{
    Actor, ClusterState, Command, Entry, Event, FrameworkId, Hidden, Rejection, RequestId, Role,
    Timestamp,
};
use tokio::sync::{mpsc, oneshot, Notify};

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::written::BodyWriter;

/// How often the leader's loops run.
#[derive(Clone, Debug)]
pub struct LoopIntervals {
    /// Mesos `--allocation_interval`.
    pub allocation: Duration,
    /// How often the leader proposes a `Tick` (time-based transitions).
    pub tick: Duration,
    /// HEARTBEAT events on scheduler and operator streams.
    pub stream_heartbeat: Duration,
    /// How often the leader reads agents' `/monitor/statistics` (the autoscaler's input).
    pub usage: Duration,
}

impl Default for LoopIntervals {
    fn default() -> LoopIntervals {
        LoopIntervals {
            allocation: Duration::from_secs(1),
            tick: Duration::from_secs(1),
            stream_heartbeat: Duration::from_secs(15),
            usage: Duration::from_secs(5),
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

    /// Whether the framework's scheduler stream is on this master.
    pub fn holds(&self, framework_id: &FrameworkId) -> bool {
        self.lock().contains_key(framework_id)
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
    /// Native and operator event streams, for the subscriber and lag metrics.
    pub event_streams: crate::stream::OpenStreams,
    /// Woken when something may make new offers possible, so the allocator runs before its
    /// interval is up.
    pub allocation_wanted: Notify,
    pub address: String,
    pub started_at: Timestamp,
    /// The built-in service scheduler's recent offer matching, for `/v2/queue` (leader).
    pub service_offers: crate::service_scheduler::OfferReports,
    /// Talks to agents for the `/agent/{id}/...` proxy.
    pub agent_http: reqwest::Client,
    /// Talks to the leader for a follower's proxy of Marathon writes (`leader_proxy`).
    pub(crate) leader_http: reqwest::Client,
    /// Basic credentials verified lately (see `auth`).
    pub basic_cache: crate::auth::BasicCache,
    /// TLS, the plain listener's peers and the per-client stream cap.
    pub serving: crate::transport::Serving,
    pub(crate) client_streams: crate::stream::ClientStreams,
    /// The built-in DNS's configuration and records.
    pub dns: crate::dns::Dns,
    /// The service catalog of the applied state, for `/corral/v1/services`.
    pub catalog: crate::catalog::CatalogCache,
    /// The leader's latest autoscaler evaluations, for `/decisions`.
    pub autoscaler: crate::autoscaler::AutoscalerStatus,
    /// Per-task usage the leader gathered from agents.
    pub usage: crate::autoscaler::UsageTable,
    /// The agent streams' heartbeat line, naming the leader (made by the first stream).
    pub(crate) agent_beat: std::sync::OnceLock<tokio::sync::watch::Receiver<bytes::Bytes>>,
}

/// Everything a handler needs. Cheap to clone.
#[derive(Clone)]
pub struct Master {
    pub inner: Arc<MasterInner>,
}

pub(crate) fn wall_clock() -> Timestamp {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    Timestamp(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// Which `view_*` rules filter a read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Views {
    /// Mesos's reads: frameworks, tasks, executors and roles (and apps).
    Mesos,
    /// Marathon's: apps by id and their instances. The apps' tasks belong to the built-in
    /// framework, which a Marathon user has no reason to be allowed to view.
    Apps,
}

/// What one stream's subscriber may be shown (`Master::event_viewer`).
pub(crate) struct EventViewer {
    master: Master,
    identity: Option<String>,
    route: String,
    views: Views,
}

impl EventViewer {
    /// Whether to leave `event` out: only when enforcing (with `permissive` what would be
    /// left out is counted as `reason="hidden"`). `app` is the app Marathon's rendering
    /// names, for `Views::Apps`. Decided on the applied state, which holds at least the
    /// event's entry, as the pump sends it.
    pub(crate) fn hides(&self, event: &Event, app: Option<&corral_state::AppId>) -> bool {
        use futures::FutureExt as _;
        let identity = self.identity.as_deref();
        let views = self.views;
        let read = self.master.inner.node.read(ReadConsistency::Local, |state| {
            let mode = state.auth().mode();
            let hidden = mode != AuthMode::Off
                && match views {
                    Views::Mesos => state.event_hidden_by(identity, event).is_some(),
                    Views::Apps => app.is_some_and(|app| state.app_hidden_from(identity, app)),
                };
            (mode, hidden)
        });
        let (mode, hidden) = read
            .now_or_never()
            .expect("a local read takes the state's lock and never waits on the log")
            .expect("a local read does not fail");
        if !hidden {
            return false;
        }
        let metrics = &self.master.inner.metrics;
        metrics.http_auth_denied.with_label_values(&["hidden", &self.route]).inc();
        mode == AuthMode::Enforce
    }
}

/// The mode, and what `identity` may not view (nothing when access control is off).
fn hidden_from(state: &ClusterState, identity: Option<&str>) -> (AuthMode, Hidden) {
    let mode = state.auth().mode();
    if mode == AuthMode::Off {
        return (mode, Hidden::default());
    }
    (mode, state.hidden_from(identity))
}

pub(crate) fn new_request_id() -> RequestId {
    RequestId::new(uuid::Uuid::new_v4().to_string())
}

impl Master {
    pub fn new(
        node: LogNode,
        address: String,
        intervals: LoopIntervals,
        allocator_config: AllocatorConfig,
    ) -> Result<Master, prometheus::Error> {
        let serving = crate::transport::Serving::default();
        Master::serving(node, address, intervals, allocator_config, serving)
    }

    /// A master that serves as `serving` says (TLS, a plain listener, stream caps).
    pub fn serving(
        node: LogNode,
        address: String,
        intervals: LoopIntervals,
        allocator_config: AllocatorConfig,
        serving: crate::transport::Serving,
    ) -> Result<Master, prometheus::Error> {
        let metrics = Metrics::new()?;
        let agent_http =
            crate::transport::peer_client(serving.tls.as_ref(), corral_tls::Role::Agent);
        let leader_http =
            crate::transport::peer_client(serving.tls.as_ref(), corral_tls::Role::Master);
        node.observe(Arc::new(crate::metrics::LogMetrics::new(&metrics)));
        Ok(Master {
            inner: Arc::new(MasterInner {
                node,
                metrics,
                intervals,
                allocator_config,
                explain: Mutex::new(None),
                scheduler_streams: SchedulerStreams::default(),
                event_streams: crate::stream::OpenStreams::default(),
                allocation_wanted: Notify::new(),
                address,
                started_at: wall_clock(),
                service_offers: crate::service_scheduler::OfferReports::default(),
                agent_http,
                leader_http,
                basic_cache: crate::auth::BasicCache::default(),
                serving,
                client_streams: crate::stream::ClientStreams::default(),
                dns: crate::dns::Dns::default(),
                catalog: crate::catalog::CatalogCache::default(),
                autoscaler: Default::default(),
                usage: Default::default(),
                agent_beat: std::sync::OnceLock::new(),
            }),
        })
    }

    pub fn node(&self) -> &LogNode {
        &self.inner.node
    }

    /// What the request middleware hands the streaming routes for `client`.
    pub(crate) fn stream_client(&self, client: String) -> crate::stream::StreamClient {
        crate::stream::StreamClient {
            client,
            limit: self.inner.serving.max_client_streams,
            streams: self.inner.client_streams.clone(),
            denied: self.inner.metrics.http_auth_denied.clone(),
        }
    }

    /// Proposes a command and waits for its outcome; on a follower, a redirect to the leader.
    pub async fn propose(
        &self,
        request_id: RequestId,
        actor: Actor,
        command: Command,
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
        let (actor, command) = self.signed(actor, command).await?;
        let committed = self
            .inner
            .node
            .propose(request_id, actor, command)
            .await
            .map_err(|error| self.log_error(error))?;
        if wakes_allocator {
            self.inner.allocation_wanted.notify_one();
        }
        Ok(committed)
    }

    /// Signs a client's command with the identity the request authenticated (when access
    /// control is on) and answers early with the refusal `apply` would give on the state this
    /// master has; `apply` decides again at the command's log position.
    async fn signed(
        &self,
        actor: Actor,
        mut command: Command,
    ) -> Result<(Actor, Command), ApiError> {
        let Some(caller) = crate::auth::current_caller() else {
            return Ok((actor, command));
        };
        if caller.mode == AuthMode::Off && (caller.identity.is_none() || !command.administers_acl())
        {
            return Ok((actor, command));
        }
        // Mesos fills an unset FrameworkInfo.principal with the authenticated one.
        if let (Command::Subscribe { info, .. }, Some(principal)) =
            (&mut command, &caller.principal)
        {
            if info.principal.is_none() {
                info.principal = Some(principal.clone());
            }
        }
        let Some(identity) = caller.identity.clone() else {
            return Ok((actor, command));
        };
        // A new framework or agent has no id yet; it acts as an operator until it has.
        let acting = match actor {
            Actor::Leader => Actor::Operator { principal: caller.principal.clone() },
            Actor::Operator { .. } => Actor::Operator { principal: caller.principal.clone() },
            other => other,
        };
        let actor = Actor::Client { identity: identity.clone(), acting: Box::new(acting) };
        let probe = Entry {
            request_id: RequestId::new(String::new()),
            actor: actor.clone(),
            at: Timestamp::default(),
            command,
        };
        let (probe, verdict) = self
            .read_state(ReadConsistency::Local, move |state| {
                let verdict = state.check_client_command(&probe, Some(&identity));
                // `run_tasks` refuses tasks, not the ACCEPT: `apply` decides each; in
                // permissive mode a task that would be refused is counted here.
                let verdict = verdict.and_then(|()| match state.check_run_tasks(&probe) {
                    Some(denial) if state.auth().mode() == AuthMode::Permissive => Err(denial),
                    _ => Ok(()),
                });
                (probe, verdict)
            })
            .await?;
        if let Err(denial) = verdict {
            self.inner.metrics.http_auth_denied.with_label_values(&["denied", &caller.route]).inc();
            if caller.mode == AuthMode::Enforce || probe.command.administers_acl() {
                return Err(ApiError::Rejected(Rejection::Unauthorized(denial)));
            }
        }
        Ok((probe.actor, probe.command))
    }

    /// Turns a log error into what the client should see: "not leader" becomes a redirect.
    pub fn log_error(&self, error: LogError) -> ApiError {
        match error {
            LogError::NotLeader { leader_hint: Some((_, address)) } if !address.is_empty() => {
                ApiError::NotLeader { leader_address: address }
            }
            LogError::NotLeader { .. } => ApiError::NoLeader,
            LogError::OutcomeUnknown => ApiError::OutcomeUnknown,
            other => ApiError::Internal(other.to_string()),
        }
    }

    /// Reads the state; a read that needs the leader and is made on a follower becomes a
    /// redirect to the leader.
    pub async fn read_state<T>(
        &self,
        consistency: ReadConsistency,
        reader: impl FnOnce(&ClusterState) -> T,
    ) -> Result<T, ApiError> {
        self.inner.node.read(consistency, reader).await.map_err(|error| self.log_error(error))
    }

    /// For answers of megabytes: copies the state without its request ids (tasks are shared,
    /// so the copy is cheap) and renders the copy on a blocking thread, so applying never
    /// waits for the answer to be built. `views` says which `view_*` rules filter the copy.
    pub(crate) async fn render_off_lock<T: Send + 'static>(
        &self,
        consistency: ReadConsistency,
        views: Views,
        render: impl FnOnce(&ClusterState) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let copy = self.visible_copy(consistency, views).await?;
        tokio::task::spawn_blocking(move || render(&copy))
            .await
            .map_err(|error| ApiError::Internal(error.to_string()))
    }

    /// For answers that grow with the cluster: copies the state as `render_off_lock` does and
    /// writes the answer from the copy straight into the response body, so the client gets
    /// its first bytes while the rest is written.
    pub(crate) async fn respond_off_lock(
        &self,
        consistency: ReadConsistency,
        what: &'static str,
        write: impl FnOnce(&ClusterState, &mut BodyWriter) -> serde_json::Result<()> + Send + 'static,
    ) -> Result<axum::response::Response, ApiError> {
        let copy = self.visible_copy(consistency, Views::Mesos).await?;
        let metrics = &self.inner.metrics;
        let timers = crate::written::BodyTimers {
            write: metrics.http_body_write_seconds.with_label_values(&[what]),
            client_wait: metrics.http_body_client_wait_seconds.with_label_values(&[what]),
        };
        Ok(crate::written::json_response(what, timers, copy, write))
    }

    /// A copy of the state as `render_off_lock` makes it, without what the caller may not
    /// view when access control is enforced (`view_*` filter, never refuse); decided and
    /// filtered on the copy, which carries the ACLs, after the lock is released.
    async fn visible_copy(
        &self,
        consistency: ReadConsistency,
        views: Views,
    ) -> Result<ClusterState, ApiError> {
        let caller = crate::auth::current_caller();
        let identity = caller.as_ref().and_then(|caller| caller.identity.clone());
        let mut copy = self.read_state(consistency, ClusterState::without_bookkeeping).await?;
        let (mode, mut hidden) = hidden_from(&copy, identity.as_deref());
        if views == Views::Apps {
            hidden = Hidden { apps: hidden.apps, ..Hidden::default() };
        }
        let hidden = self.count_hidden(caller.as_ref(), (mode, hidden));
        copy.retain_visible(&hidden);
        Ok(copy)
    }

    /// A state of the past without what the caller may not view under today's ACLs (not
    /// the past state's own: a view revoked is revoked for the past too), decided and
    /// filtered on a blocking thread as `visible_copy` does.
    pub(crate) async fn visible_past(&self, past: ClusterState) -> Result<ClusterState, ApiError> {
        let caller = crate::auth::current_caller();
        let (mode, auth) = self
            .read_state(ReadConsistency::Local, |state| (state.auth().mode(), state.auth().clone()))
            .await?;
        if mode == AuthMode::Off {
            return Ok(past);
        }
        let master = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut past = past;
            let identity = caller.as_ref().and_then(|caller| caller.identity.as_deref());
            let hidden = past.hidden_by(&auth, identity);
            let hidden = master.count_hidden(caller.as_ref(), (mode, hidden));
            past.retain_visible(&hidden);
            past
        })
        .await
        .map_err(|error| ApiError::Internal(format!("filtering a past state stopped: {error}")))
    }

    /// Decides, event by event, what the caller of the request being served may be shown on
    /// the stream it opens (`view_*` as for reads; the identity is the one it opened with).
    pub(crate) fn event_viewer(&self, views: Views) -> EventViewer {
        let caller = crate::auth::current_caller();
        EventViewer {
            master: self.clone(),
            identity: caller.as_ref().and_then(|caller| caller.identity.clone()),
            route: caller.map_or_else(|| "in-process".to_owned(), |caller| caller.route),
            views,
        }
    }

    /// Reads for the caller of the request being served, with a test of which apps it may
    /// view (`view_apps`; always true unless enforcing), for Marathon's answers about apps
    /// that are not drawn from the apps themselves (deployments, the launch queue).
    pub(crate) async fn read_apps_visible<T>(
        &self,
        reader: impl FnOnce(&ClusterState, &dyn Fn(&corral_state::AppId) -> bool) -> T,
    ) -> Result<T, ApiError> {
        let caller = crate::auth::current_caller();
        let identity = caller.as_ref().and_then(|caller| caller.identity.clone());
        let (answer, any_hidden) = self
            .read_state(ReadConsistency::Local, move |state| {
                let mode = state.auth().mode();
                let any_hidden = std::cell::Cell::new(false);
                let shown = |app_id: &corral_state::AppId| {
                    if mode == AuthMode::Off || !state.app_hidden_from(identity.as_deref(), app_id)
                    {
                        return true;
                    }
                    any_hidden.set(true);
                    mode != AuthMode::Enforce
                };
                let answer = reader(state, &shown);
                (answer, any_hidden.get())
            })
            .await?;
        if any_hidden {
            let route = caller.as_ref().map_or("in-process", |caller| caller.route.as_str());
            self.inner.metrics.http_auth_denied.with_label_values(&["hidden", route]).inc();
        }
        Ok(answer)
    }

    /// `read_visible` for a stream's first message: also the cursor the state stands at, so
    /// the events after it follow with none missed and none twice.
    pub(crate) async fn read_visible_with_cursor<T>(
        &self,
        reader: impl FnOnce(&ClusterState) -> T,
    ) -> Result<(T, corral_state::Cursor), ApiError> {
        let caller = crate::auth::current_caller();
        let identity = caller.as_ref().and_then(|caller| caller.identity.clone());
        let ((answer, hidden), cursor) = self
            .inner
            .node
            .read_with_cursor(ReadConsistency::Local, move |state| {
                let (mode, hidden) = hidden_from(state, identity.as_deref());
                if mode != AuthMode::Enforce || hidden.is_empty() {
                    return (reader(state), (mode, hidden));
                }
                let mut copy = state.without_bookkeeping();
                copy.retain_visible(&hidden);
                (reader(&copy), (mode, hidden))
            })
            .await
            .map_err(|error| self.log_error(error))?;
        self.count_hidden(caller.as_ref(), hidden);
        Ok((answer, cursor))
    }

    /// Reads for the caller of the request being served: `reader` gets the state or, when
    /// access control is enforced and the caller may not view everything, a copy without
    /// what it may not view, and what was left out (for answers drawn from more than the
    /// state's objects, such as role names).
    pub(crate) async fn read_visible<T>(
        &self,
        consistency: ReadConsistency,
        reader: impl FnOnce(&ClusterState, &Hidden) -> T,
    ) -> Result<T, ApiError> {
        let caller = crate::auth::current_caller();
        let identity = caller.as_ref().and_then(|caller| caller.identity.clone());
        let (answer, hidden) = self
            .read_state(consistency, move |state| {
                let (mode, hidden) = hidden_from(state, identity.as_deref());
                if mode != AuthMode::Enforce || hidden.is_empty() {
                    return (reader(state, &Hidden::default()), (mode, hidden));
                }
                let mut copy = state.without_bookkeeping();
                copy.retain_visible(&hidden);
                (reader(&copy, &hidden), (mode, hidden))
            })
            .await?;
        self.count_hidden(caller.as_ref(), hidden);
        Ok(answer)
    }

    /// Counts a read that left something out (or would have, with `permissive`); returns
    /// what to leave out: nothing unless enforcing.
    fn count_hidden(
        &self,
        caller: Option<&crate::auth::Caller>,
        hidden: (AuthMode, Hidden),
    ) -> Hidden {
        let (mode, hidden) = hidden;
        if hidden.is_empty() {
            return hidden;
        }
        let route = caller.map_or("in-process", |caller| caller.route.as_str());
        self.inner.metrics.http_auth_denied.with_label_values(&["hidden", route]).inc();
        if mode == AuthMode::Enforce {
            return hidden;
        }
        Hidden::default()
    }

    /// The flags a master reports (`/master/flags`, `GET_FLAGS`), as Mesos does: by name,
    /// values as text.
    pub(crate) fn flags(&self) -> Vec<(&'static str, String)> {
        let intervals = &self.inner.intervals;
        vec![
            ("allocation_interval", format!("{}secs", intervals.allocation.as_secs_f64())),
            ("hostname", self.inner.address.clone()),
            ("port", self.port().to_string()),
            ("tick_interval", format!("{}secs", intervals.tick.as_secs_f64())),
            ("version", corral_mesos::operator::MESOS_API_VERSION.to_owned()),
        ]
    }

    fn port(&self) -> u32 {
        self.inner.address.rsplit_once(':').and_then(|(_, port)| port.parse().ok()).unwrap_or(5050)
    }

    /// A redirect to the leader, when this master is not the leader.
    pub fn redirect_if_follower(&self) -> Result<(), ApiError> {
        match self.leader_elsewhere()? {
            None => Ok(()),
            Some(address) => Err(ApiError::NotLeader { leader_address: address }),
        }
    }

    /// The leader's address (its `--listen`) when another master leads; `None` when this
    /// one does; `NoLeader` when no leader is known.
    pub(crate) fn leader_elsewhere(&self) -> Result<Option<String>, ApiError> {
        if self.inner.node.is_leader() {
            return Ok(None);
        }
        self.inner.node.status().leader_address.map(Some).ok_or(ApiError::NoLeader)
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
            "version": corral_mesos::operator::MESOS_API_VERSION,
            "address": {"ip": ip, "port": port.parse::<u32>().unwrap_or(5050)},
        })
    }
}
