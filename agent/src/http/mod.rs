//! The agent's own HTTP server on `--listen`: the Mesos agent's endpoints (`/state`,
//! `/files/*`, `/monitor/statistics`, `/metrics/snapshot`), Prometheus `/metrics`,
//! `/health` and `/version`. [`router`] is the whole API (tests call it in-process);
//! [`serve`] runs it on a listener until its shutdown future resolves. With access control
//! on in the cluster, the masters decide who may call what (`access`).

mod access;
mod error;
mod files;
mod metrics;
mod monitor;
mod state;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use corral_state::model::Attributes;
use corral_state::{AgentId, Resources};

use crate::daemon::MasterClient;
use crate::metrics::AgentMetrics;
use crate::tasks::TaskTable;

pub use error::ApiError;
pub use files::MAX_READ_LENGTH;
pub use state::resource_map;

/// The Mesos version whose agent endpoints these answer like.
pub const MESOS_VERSION: &str = "1.11.0";

/// What the agent is, as its endpoints show it.
#[derive(Clone, Debug)]
pub struct AgentIdentity {
    pub hostname: String,
    /// The address the masters are told (`--advertise`, else the address listened on).
    pub address: String,
    pub resources: Resources,
    pub attributes: Attributes,
    /// Mesos's `flags` object: the agent's flags as text.
    pub flags: BTreeMap<String, String>,
}

/// Everything the handlers read; cheap to clone.
#[derive(Clone)]
pub struct AgentApi {
    inner: Arc<ApiInner>,
}

struct ApiInner {
    identity: AgentIdentity,
    agent_id: OnceLock<AgentId>,
    tasks: Arc<TaskTable>,
    metrics: Arc<AgentMetrics>,
    masters: Arc<MasterClient>,
    started: Instant,
    started_at: SystemTime,
    /// The masters' recent answers on who may use this API (`access`).
    verdicts: Mutex<access::Verdicts>,
}

impl AgentApi {
    pub fn new(
        identity: AgentIdentity,
        tasks: Arc<TaskTable>,
        metrics: Arc<AgentMetrics>,
        masters: Arc<MasterClient>,
    ) -> AgentApi {
        AgentApi {
            inner: Arc::new(ApiInner {
                identity,
                agent_id: OnceLock::new(),
                tasks,
                metrics,
                masters,
                started: Instant::now(),
                started_at: SystemTime::now(),
                verdicts: Mutex::new(access::Verdicts::default()),
            }),
        }
    }

    /// Called once the masters gave the agent its id (or it was recovered).
    pub fn set_agent_id(&self, agent_id: AgentId) {
        if self.inner.agent_id.set(agent_id).is_ok() {
            self.inner.metrics.registered.set(1);
        }
    }

    pub fn agent_id(&self) -> Option<&AgentId> {
        self.inner.agent_id.get()
    }

    pub fn identity(&self) -> &AgentIdentity {
        &self.inner.identity
    }

    pub fn tasks(&self) -> &TaskTable {
        &self.inner.tasks
    }

    pub fn metrics(&self) -> &AgentMetrics {
        &self.inner.metrics
    }

    fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }

    fn started_at_secs(&self) -> f64 {
        self.inner.started_at.duration_since(UNIX_EPOCH).map_or(0.0, |since| since.as_secs_f64())
    }

    /// The host of the master that last answered the agent.
    fn master_hostname(&self) -> Option<String> {
        let master = self.inner.masters.current_master()?;
        let host = match master.rsplit_once(':') {
            Some((host, port)) if port.parse::<u16>().is_ok() => host,
            _ => master,
        };
        Some(host.trim_start_matches('[').trim_end_matches(']').to_owned())
    }
}

/// Every route the agent serves.
pub fn router(api: AgentApi) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/version", get(version))
        .route("/metrics", get(metrics::prometheus))
        .route("/metrics/snapshot", get(metrics::snapshot))
        .route("/state", get(state::state))
        .route("/state.json", get(state::state))
        .route("/files/browse", get(files::browse))
        .route("/files/browse.json", get(files::browse))
        .route("/files/read", get(files::read))
        .route("/files/read.json", get(files::read))
        .route("/files/download", get(files::download))
        .route("/files/download.json", get(files::download))
        .route("/monitor/statistics", get(monitor::statistics))
        .route("/monitor/statistics.json", get(monitor::statistics))
        .fallback(unknown_route)
        // Inside the metrics: refusals are counted by route and status.
        .layer(axum::middleware::from_fn_with_state(api.clone(), access::guard))
        .layer(axum::middleware::from_fn_with_state(api.clone(), track))
        .with_state(api)
}

/// Serves the API on `listener` (over TLS when given) until `shutdown` resolves, then lets
/// requests in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    api: AgentApi,
    tls: Option<corral_tls::Tls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    match tls {
        Some(tls) => tls.serve(listener, router(api), shutdown).await,
        None => axum::serve(listener, router(api)).with_graceful_shutdown(shutdown).await,
    }
}

/// Counts and times every request by its matched route, never by its raw path, so paths
/// do not explode the label set.
async fn track(
    State(api): State<AgentApi>,
    matched: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let route = matched.map(|m| m.as_str().to_owned()).unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let metrics = api.metrics();
    metrics.http_requests.with_label_values(&[&route, &method, response.status().as_str()]).inc();
    metrics
        .http_request_seconds
        .with_label_values(&[&route, &method])
        .observe(started.elapsed().as_secs_f64());
    response
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"healthy": true}))
}

async fn version() -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "version": MESOS_VERSION,
        "corral_version": env!("CARGO_PKG_VERSION"),
        "build_user": "corral",
    }))
}

async fn unknown_route(request: Request) -> ApiError {
    ApiError::NotFound {
        field: None,
        problem: format!("this agent serves no {} {}", request.method(), request.uri().path()),
    }
}
