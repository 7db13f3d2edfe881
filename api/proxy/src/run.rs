//! The proxy's IO: the catalog follower, the listeners and the admin listener.
//!
//! The table lives in a `watch` channel. Every new connection (L4) and every request (L7)
//! reads the current table, so a swap takes effect at once and nothing is reloaded or
//! closed. An open L4 connection whose backend left the table (killed, unhealthy, scaled
//! away) keeps going for `drain_grace` and is closed then; an L7 request already sent
//! finishes, and later requests on the same client connection go to the new backends.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Incoming};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::table::{Backend, Balance, CatalogAnswer, Groups, Mode, Pool, Table};

/// What `corral proxy` was started with.
#[derive(Clone, Debug)]
pub struct Config {
    /// Base URLs of the masters (`http://host:port`), tried in turn.
    pub masters: Vec<String>,
    pub groups: Groups,
    /// The shared HTTP listener for `HAPROXY_{n}_VHOST` and `_PATH` routes.
    pub http_listen: Option<SocketAddr>,
    /// The address service ports listen on.
    pub bind_ip: IpAddr,
    /// `/_corral/proxy/config` and `/metrics`.
    pub admin_listen: Option<SocketAddr>,
    /// How long an open connection to a backend that left the table may go on.
    pub drain_grace: Duration,
}

/// How long one catalog long poll waits on the master before it answers unchanged.
const POLL_WAIT: &str = "55s";
const POLL_TIMEOUT: Duration = Duration::from_secs(70);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Backends tried for one connection or idempotent request before giving up.
const ATTEMPTS: usize = 3;

/// Runs the proxy until `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    if config.masters.is_empty() {
        anyhow::bail!("--master names no master");
    }
    let (table_tx, table_rx) = watch::channel(Arc::new(Table::default()));
    let metrics = Metrics::new().context("registering the proxy's metrics")?;
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    connector.set_nodelay(true);
    let shared = Arc::new(Shared {
        config: config.clone(),
        table: table_rx,
        metrics,
        active: Mutex::new(HashMap::new()),
        turns: Mutex::new(HashMap::new()),
        listeners: Mutex::new(BTreeMap::new()),
        client: Client::builder(TokioExecutor::new()).build(connector),
    });

    let mut tasks: Vec<JoinHandle<()>> = Vec::new();
    if let Some(address) = config.admin_listen {
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("--admin-listen {address}"))?;
        tracing::info!(%address, "proxy admin listening");
        let router = admin_router(shared.clone());
        tasks.push(tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                tracing::error!(%error, "the admin listener stopped");
            }
        }));
    }
    if let Some(address) = config.http_listen {
        let listener =
            TcpListener::bind(address).await.with_context(|| format!("--http-listen {address}"))?;
        tracing::info!(%address, "proxy HTTP listening");
        tasks.push(tokio::spawn(accept_loop(shared.clone(), listener, Listener::Http)));
    }
    tasks.push(tokio::spawn(follow_catalog(config.clone(), table_tx, shared.clone())));
    tasks.push(tokio::spawn(manage_port_listeners(shared.clone())));
    shutdown.await;
    for task in tasks {
        task.abort();
    }
    Ok(())
}

struct Shared {
    config: Config,
    table: watch::Receiver<Arc<Table>>,
    metrics: Metrics,
    /// Open connections (L4) and requests in flight (L7) per backend, for `leastconn`.
    active: Mutex<HashMap<SocketAddr, Arc<AtomicUsize>>>,
    /// The round-robin turn of each pool, by app and port index.
    turns: Mutex<HashMap<(String, usize), Arc<AtomicUsize>>>,
    /// Per service port, whether it listens or why not.
    listeners: Mutex<BTreeMap<u16, String>>,
    client: Client<HttpConnector, BoxBody<Bytes, hyper::Error>>,
}

/// Which routes a listener serves.
#[derive(Clone, Copy, Debug)]
enum Listener {
    /// `--http-listen`: by `Host` and path.
    Http,
    /// A service port.
    Port(u16),
}

impl Shared {
    fn table(&self) -> Arc<Table> {
        self.table.borrow().clone()
    }

    fn active(&self, addr: SocketAddr) -> Arc<AtomicUsize> {
        let mut active = self.active.lock().expect("no holder of the lock panics");
        active.entry(addr).or_default().clone()
    }

    /// A backend of `pool` not in `tried`, by the pool's balance.
    fn pick(&self, pool: &Pool, tried: &[SocketAddr]) -> Option<Backend> {
        let candidates: Vec<&Backend> =
            pool.backends.iter().filter(|backend| !tried.contains(&backend.addr)).collect();
        if candidates.is_empty() {
            return None;
        }
        let turn = {
            let mut turns = self.turns.lock().expect("no holder of the lock panics");
            turns.entry((pool.app_id.clone(), pool.port_index)).or_default().clone()
        };
        let start = turn.fetch_add(1, Ordering::Relaxed);
        let chosen = match pool.balance {
            Balance::RoundRobin => candidates[start % candidates.len()],
            Balance::LeastConn => (0..candidates.len())
                .map(|offset| candidates[(start + offset) % candidates.len()])
                .min_by_key(|backend| self.active(backend.addr).load(Ordering::Relaxed))
                .expect("candidates is not empty"),
        };
        Some(chosen.clone())
    }
}

/// Counts a backend's open connection or request while it lives.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn start(shared: &Shared, addr: SocketAddr) -> InFlight {
        let counter = shared.active(addr);
        counter.fetch_add(1, Ordering::Relaxed);
        InFlight(counter)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

struct Metrics {
    registry: Registry,
    connections: IntCounterVec,
    requests: IntCounterVec,
    bytes: IntCounterVec,
    errors: IntCounterVec,
    active: IntGaugeVec,
    unrouted: IntCounterVec,
    catalog_index: IntGauge,
    catalog_errors: IntCounterVec,
}

impl Metrics {
    fn new() -> prometheus::Result<Metrics> {
        let registry = Registry::new();
        let backend = ["app", "port_index", "backend"];
        let connections = IntCounterVec::new(
            Opts::new(
                "corral_proxy_backend_connections_total",
                "TCP connections opened to a backend (L4 and L7)",
            ),
            &backend,
        )?;
        let requests = IntCounterVec::new(
            Opts::new(
                "corral_proxy_backend_requests_total",
                "HTTP requests answered by a backend, by status class",
            ),
            &["app", "port_index", "backend", "class"],
        )?;
        let bytes = IntCounterVec::new(
            Opts::new(
                "corral_proxy_backend_bytes_total",
                "Bytes copied on L4 connections, to (out) and from (in) the backend",
            ),
            &["app", "port_index", "backend", "direction"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new("corral_proxy_backend_errors_total", "Failed connects and requests to a backend, and connections cut at the end of their drain grace"),
            &["app", "port_index", "backend", "kind"],
        )?;
        let active = IntGaugeVec::new(
            Opts::new(
                "corral_proxy_backend_active",
                "Open L4 connections and L7 requests in flight to a backend",
            ),
            &backend,
        )?;
        let unrouted = IntCounterVec::new(
            Opts::new(
                "corral_proxy_unrouted_total",
                "Connections and requests with no route or no backend left to try",
            ),
            &["listener"],
        )?;
        let catalog_index = IntGauge::new(
            "corral_proxy_catalog_index",
            "The catalog index of the routing table in use",
        )?;
        let catalog_errors = IntCounterVec::new(
            Opts::new("corral_proxy_catalog_errors_total", "Failed catalog polls, by master"),
            &["master"],
        )?;
        registry.register(Box::new(connections.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(bytes.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(active.clone()))?;
        registry.register(Box::new(unrouted.clone()))?;
        registry.register(Box::new(catalog_index.clone()))?;
        registry.register(Box::new(catalog_errors.clone()))?;
        Ok(Metrics {
            registry,
            connections,
            requests,
            bytes,
            errors,
            active,
            unrouted,
            catalog_index,
            catalog_errors,
        })
    }
}

/// The labels of one backend of one pool.
fn backend_labels<'a>(pool: &'a Pool, port_index: &'a str, addr: &'a str) -> [&'a str; 3] {
    [pool.app_id.as_str(), port_index, addr]
}

/// Follows the catalog by long polls, from one master until it fails, then the next.
async fn follow_catalog(config: Config, table: watch::Sender<Arc<Table>>, shared: Arc<Shared>) {
    let client = match reqwest::Client::builder().timeout(POLL_TIMEOUT).build() {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "cannot build the catalog client; the proxy routes nothing");
            return;
        }
    };
    let mut index: Option<u64> = None;
    let mut master = 0;
    let mut failures: u32 = 0;
    loop {
        let base = &config.masters[master];
        let mut url = format!("{base}/corral/v1/services?wait={POLL_WAIT}");
        if let Some(index) = index {
            url.push_str(&format!("&index={index}"));
        }
        match poll(&client, &url).await {
            Ok(answer) => {
                failures = 0;
                index = Some(answer.index);
                let next = Table::build(&answer, &config.groups);
                shared.metrics.catalog_index.set(i64::try_from(answer.index).unwrap_or(i64::MAX));
                table.send_if_modified(|current| {
                    if **current == next {
                        return false;
                    }
                    tracing::debug!(index = answer.index, "routing table swapped");
                    *current = Arc::new(next);
                    true
                });
            }
            Err(error) => {
                tracing::warn!(master = %base, error = format!("{error:#}"), "catalog poll failed; trying the next master");
                shared.metrics.catalog_errors.with_label_values(&[base.as_str()]).inc();
                master = (master + 1) % config.masters.len();
                failures = failures.saturating_add(1);
                // Once round every master, then back off, at most 2 s: a master that
                // restarts is followed again within that.
                if usize::try_from(failures).unwrap_or(usize::MAX) >= config.masters.len() {
                    let exponent = failures.min(5);
                    tokio::time::sleep(Duration::from_millis(62 << exponent)).await;
                }
            }
        }
    }
}

async fn poll(client: &reqwest::Client, url: &str) -> anyhow::Result<CatalogAnswer> {
    let response = client.get(url).send().await.context("no answer")?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_else(|error| format!("(unreadable: {error})"));
        anyhow::bail!("answered {status}: {body}");
    }
    response.json::<CatalogAnswer>().await.context("the answer is not a catalog")
}

/// Binds a listener for every service port in the table and stops accepting on ports that
/// left it; connections already accepted are their own tasks and go on.
async fn manage_port_listeners(shared: Arc<Shared>) {
    let mut table = shared.table.clone();
    let mut accepting: HashMap<u16, JoinHandle<()>> = HashMap::new();
    loop {
        let wanted: Vec<u16> = table.borrow_and_update().ports.keys().copied().collect();
        accepting.retain(|port, task| {
            if wanted.contains(port) {
                return true;
            }
            task.abort();
            shared.listeners.lock().expect("no holder of the lock panics").remove(port);
            tracing::info!(port, "service port left the table; no longer accepting");
            false
        });
        for port in wanted {
            if accepting.contains_key(&port) {
                continue;
            }
            let address = SocketAddr::new(shared.config.bind_ip, port);
            let status = match TcpListener::bind(address).await {
                Ok(listener) => {
                    tracing::info!(%address, "service port listening");
                    let task =
                        tokio::spawn(accept_loop(shared.clone(), listener, Listener::Port(port)));
                    accepting.insert(port, task);
                    "listening".to_owned()
                }
                // Tried again at the next table change.
                Err(error) => {
                    tracing::error!(%address, %error, "cannot listen on a service port");
                    format!("cannot listen on {address}: {error}")
                }
            };
            shared.listeners.lock().expect("no holder of the lock panics").insert(port, status);
        }
        if table.changed().await.is_err() {
            return;
        }
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, which: Listener) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: wait for some to be freed.
                tracing::warn!(?which, %error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            match which {
                Listener::Http => serve_http(shared, stream, peer, which).await,
                Listener::Port(port) => {
                    let mode = shared.table().ports.get(&port).map(|route| route.mode);
                    match mode {
                        Some(Mode::Http) => serve_http(shared, stream, peer, which).await,
                        Some(Mode::Tcp) => serve_tcp(shared, stream, port).await,
                        None => {
                            shared.metrics.unrouted.with_label_values(&[&port.to_string()]).inc();
                        }
                    }
                }
            }
        });
    }
}

/// L4: copy bytes between the client and one backend until either side closes, or until the
/// drain grace after the backend left the table.
async fn serve_tcp(shared: Arc<Shared>, mut client: TcpStream, port: u16) {
    let table = shared.table();
    let Some(route) = table.ports.get(&port) else { return };
    let pool = &route.pool;
    let port_index = pool.port_index.to_string();
    let mut tried = Vec::new();
    let (backend, mut upstream) = loop {
        let Some(backend) = shared.pick(pool, &tried) else {
            shared.metrics.unrouted.with_label_values(&[&port.to_string()]).inc();
            tracing::warn!(port, app = %pool.app_id, "no backend to connect to");
            return;
        };
        let addr = backend.addr.to_string();
        let labels = backend_labels(pool, &port_index, &addr);
        shared.metrics.connections.with_label_values(&labels).inc();
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(backend.addr)).await {
            Ok(Ok(stream)) => break (backend, stream),
            Ok(Err(error)) => {
                tracing::warn!(backend = %addr, %error, "backend refused; trying another");
                shared
                    .metrics
                    .errors
                    .with_label_values(&[labels[0], labels[1], labels[2], "connect"])
                    .inc();
            }
            Err(_) => {
                tracing::warn!(backend = %addr, "backend connect timed out; trying another");
                shared
                    .metrics
                    .errors
                    .with_label_values(&[labels[0], labels[1], labels[2], "connect"])
                    .inc();
            }
        }
        tried.push(backend.addr);
        if tried.len() >= ATTEMPTS {
            shared.metrics.unrouted.with_label_values(&[&port.to_string()]).inc();
            return;
        }
    };
    let _ = upstream.set_nodelay(true);
    let addr = backend.addr.to_string();
    let labels = backend_labels(pool, &port_index, &addr);
    let _in_flight = InFlight::start(&shared, backend.addr);
    let gauge = shared.metrics.active.with_label_values(&labels);
    gauge.inc();

    let mut changes = shared.table.clone();
    let mut watching = true;
    let mut cut_at: Option<Instant> = None;
    let copy = tokio::io::copy_bidirectional(&mut client, &mut upstream);
    tokio::pin!(copy);
    loop {
        tokio::select! {
            copied = &mut copy => {
                match copied {
                    Ok((to_backend, from_backend)) => {
                        shared.metrics.bytes.with_label_values(&[labels[0], labels[1], labels[2], "out"]).inc_by(to_backend);
                        shared.metrics.bytes.with_label_values(&[labels[0], labels[1], labels[2], "in"]).inc_by(from_backend);
                    }
                    Err(error) => {
                        tracing::debug!(backend = %addr, %error, "connection ended with an error");
                        shared.metrics.errors.with_label_values(&[labels[0], labels[1], labels[2], "io"]).inc();
                    }
                }
                break;
            }
            changed = changes.changed(), if watching => {
                if changed.is_err() {
                    watching = false;
                    continue;
                }
                let present = changes.borrow_and_update().ports.get(&port).is_some_and(|route| {
                    route.pool.backends.iter().any(|b| b.addr == backend.addr)
                });
                cut_at = match (present, cut_at) {
                    (true, _) => None,
                    (false, Some(at)) => Some(at),
                    (false, None) => Some(Instant::now() + shared.config.drain_grace),
                };
            }
            () = sleep_until(cut_at), if cut_at.is_some() => {
                tracing::info!(backend = %addr, "drain grace over; closing the connection");
                shared.metrics.errors.with_label_values(&[labels[0], labels[1], labels[2], "drain_cut"]).inc();
                break;
            }
        }
    }
    gauge.dec();
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// L7: HTTP/1.1 and HTTP/2 cleartext from the client; every request picks its backend from
/// the table of that moment.
async fn serve_http(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr, which: Listener) {
    let service = hyper::service::service_fn(move |request| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(proxy_request(&shared, request, peer, which).await) }
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    if let Err(error) = builder.serve_connection(TokioIo::new(stream), service).await {
        tracing::debug!(%peer, error = %error, "client connection ended with an error");
    }
}

/// Headers that describe one hop, not the request (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "transfer-encoding",
];

async fn proxy_request(
    shared: &Shared,
    request: Request<Incoming>,
    peer: SocketAddr,
    which: Listener,
) -> Response<ProxyBody> {
    let table = shared.table();
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .or_else(|| request.uri().authority().map(|a| a.to_string()));
    let (pool, listener) = match which {
        Listener::Http => (
            table.route_http(host.as_deref(), request.uri().path()).map(|route| &route.pool),
            "http".to_owned(),
        ),
        Listener::Port(port) => (table.ports.get(&port).map(|route| &route.pool), port.to_string()),
    };
    let Some(pool) = pool else {
        shared.metrics.unrouted.with_label_values(&[&listener]).inc();
        return problem(
            StatusCode::NOT_FOUND,
            json!({"message": "no route", "host": host, "path": request.uri().path()}),
        );
    };
    let (mut parts, body) = request.into_parts();
    let path_and_query = parts.uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/").to_owned();
    for name in HOP_BY_HOP {
        parts.headers.remove(name);
    }
    if let Some(host) = &host {
        if let Ok(value) = HeaderValue::from_str(host) {
            parts.headers.insert(header::HOST, value);
        }
    }
    let forwarded = match parts.headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(earlier) => format!("{earlier}, {}", peer.ip()),
        None => peer.ip().to_string(),
    };
    if let Ok(value) = HeaderValue::from_str(&forwarded) {
        parts.headers.insert("x-forwarded-for", value);
    }
    parts.version = http::Version::HTTP_11;
    // A request without a body can be sent again to another backend; a safe one even after
    // a backend closed on it mid-way (a drained instance exiting).
    let replayable = body.is_end_stream();
    let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    let mut body = Some(body);
    let port_index = pool.port_index.to_string();
    let mut tried = Vec::new();
    loop {
        let Some(backend) = shared.pick(pool, &tried) else {
            shared.metrics.unrouted.with_label_values(&[&listener]).inc();
            tracing::warn!(app = %pool.app_id, "no backend left to send the request to");
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"message": "no backend", "app": pool.app_id, "portIndex": pool.port_index}),
            );
        };
        tried.push(backend.addr);
        let addr = backend.addr.to_string();
        let labels = backend_labels(pool, &port_index, &addr);
        let uri: Uri = match format!("http://{addr}{path_and_query}").parse() {
            Ok(uri) => uri,
            Err(_) => {
                return problem(
                    StatusCode::BAD_REQUEST,
                    json!({"message": "the request target does not parse", "field": "path"}),
                )
            }
        };
        let mut outgoing = Request::from_parts(parts.clone(), ());
        *outgoing.uri_mut() = uri;
        let outgoing_body: ProxyBody = match (replayable, body.take()) {
            (false, Some(body)) => body.boxed(),
            _ => Empty::<Bytes>::new().map_err(|never| match never {}).boxed(),
        };
        let outgoing = outgoing.map(|()| outgoing_body);
        let _in_flight = InFlight::start(shared, backend.addr);
        let gauge = shared.metrics.active.with_label_values(&labels);
        gauge.inc();
        let answered = shared.client.request(outgoing).await;
        gauge.dec();
        match answered {
            Ok(response) => {
                let class = format!("{}xx", response.status().as_u16() / 100);
                shared
                    .metrics
                    .requests
                    .with_label_values(&[labels[0], labels[1], labels[2], &class])
                    .inc();
                let (mut parts, body) = response.into_parts();
                for name in HOP_BY_HOP {
                    parts.headers.remove(name);
                }
                return Response::from_parts(parts, body.boxed());
            }
            Err(error) => {
                let kind = if error.is_connect() { "connect" } else { "request" };
                shared
                    .metrics
                    .errors
                    .with_label_values(&[labels[0], labels[1], labels[2], kind])
                    .inc();
                let again = replayable && (error.is_connect() || safe) && tried.len() < ATTEMPTS;
                tracing::warn!(backend = %addr, error = format!("{error:#}"), retry = again, "backend request failed");
                if again {
                    continue;
                }
                tracing::error!(app = %pool.app_id, backend = %addr, "answering 502: the backend failed");
                return problem(
                    StatusCode::BAD_GATEWAY,
                    json!({"message": format!("backend {addr} failed: {error}"), "app": pool.app_id}),
                );
            }
        }
    }
}

fn problem(status: StatusCode, body: serde_json::Value) -> Response<ProxyBody> {
    let mut response = Response::new(
        Full::new(Bytes::from(body.to_string())).map_err(|never| match never {}).boxed(),
    );
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn admin_router(shared: Arc<Shared>) -> Router {
    let config_shared = shared.clone();
    Router::new()
        .route(
            "/_corral/proxy/config",
            get(move || {
                let shared = config_shared.clone();
                async move {
                    let table = shared.table();
                    let listeners =
                        shared.listeners.lock().expect("no holder of the lock panics").clone();
                    axum::Json(json!({
                        "masters": shared.config.masters,
                        "httpListen": shared.config.http_listen,
                        "bindIp": shared.config.bind_ip,
                        "drainGraceSeconds": shared.config.drain_grace.as_secs(),
                        "listeners": listeners,
                        "table": *table,
                    }))
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let shared = shared.clone();
                async move {
                    match TextEncoder::new().encode_to_string(&shared.metrics.registry.gather()) {
                        Ok(text) => (StatusCode::OK, text),
                        Err(error) => {
                            tracing::error!(%error, "answering 500: cannot encode the metrics");
                            (
                                StatusCode::INTERNAL_SERVER_ERROR,
                                format!("cannot encode the metrics: {error}"),
                            )
                        }
                    }
                }
            }),
        )
}
