//! The proxy's IO: the catalog follower, the listeners and the admin listener.
//!
//! The table lives in a `watch` channel, as a [`Routing`]: the table with each pool's
//! round-robin turn and each backend's in-flight counter and metric handles resolved when the
//! table is swapped, so a request or a connection takes no lock and formats no label. Every
//! new connection (L4) and every request (L7) reads the current table, so a swap takes
//! effect at once and nothing is reloaded or closed. An open L4 connection whose backend left
//! the table keeps going for the instance's kill grace when it is being killed and the
//! catalog gives one (`Table::drain_grace`), else for `drain_grace`, and is closed then; an
//! L7 request already sent finishes, and later requests on the same client connection go to
//! the new backends.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::Context;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http::header::HeaderName;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{header, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Incoming};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};
use serde_json::json;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::table::{Balance, CatalogAnswer, Groups, Mode, Pool, Table};

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
    /// How long an open connection to a backend that left the table may go on when the
    /// catalog gives no kill grace for it.
    pub drain_grace: Duration,
    /// Threads serving `http_listen`, each with its own listener on the address
    /// (`SO_REUSEPORT`), its own single-threaded runtime and its own upstream pool.
    pub http_threads: NonZeroUsize,
}

/// How long one catalog long poll waits on the master before it answers unchanged.
const POLL_WAIT: &str = "55s";
const POLL_TIMEOUT: Duration = Duration::from_secs(70);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Backends tried for one connection or idempotent request before giving up.
const ATTEMPTS: usize = 3;
/// Each direction's buffer of an L4 connection: tokio's default is 8 KiB, HAProxy's 16 KiB;
/// bulk transfers take fewer reads and writes with more.
const L4_BUFFER: usize = 32 * 1024;

/// Runs the proxy until `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    if config.masters.is_empty() {
        anyhow::bail!("--master names no master");
    }
    let (table_tx, table_rx) = watch::channel(Arc::new(Routing::default()));
    let metrics = Metrics::new().context("registering the proxy's metrics")?;
    let shared = Arc::new(Shared {
        config: config.clone(),
        table: table_rx,
        metrics,
        listeners: Mutex::new(BTreeMap::new()),
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
    let (stop, stopped) = watch::channel(());
    let http_workers = match config.http_listen {
        Some(address) => HttpWorkers::start(&shared, address, config.http_threads, stopped)?,
        None => HttpWorkers::default(),
    };
    tasks.push(tokio::spawn(follow_catalog(config.clone(), table_tx, shared.clone())));
    tasks.push(tokio::spawn(manage_port_listeners(shared.clone())));
    shutdown.await;
    for task in tasks {
        task.abort();
    }
    drop(stop);
    http_workers.join().await;
    Ok(())
}

/// The threads serving `--http-listen`.
///
/// One thread per core, each accepting on its own `SO_REUSEPORT` listener and serving its
/// connections on a single-threaded runtime with its own upstream pool, as HAProxy's
/// threads do: a request and the pooled upstream connection it is handed to are tasks of
/// one thread, so the hand-over wakes no other thread and takes no cross-core lock.
#[derive(Default)]
struct HttpWorkers {
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl HttpWorkers {
    fn start(
        shared: &Arc<Shared>,
        address: SocketAddr,
        count: NonZeroUsize,
        stopped: watch::Receiver<()>,
    ) -> anyhow::Result<HttpWorkers> {
        let context = || format!("--http-listen {address}");
        // Bound here, not in the threads, so a taken address fails the start and port 0
        // resolves to one port that every thread's listener then shares.
        let first = reusable_socket(address).with_context(context)?;
        let bound = first.local_addr().with_context(context)?;
        let mut sockets = vec![first];
        for _ in 1..count.get() {
            sockets.push(reusable_socket(bound).with_context(context)?);
        }
        let mut workers = HttpWorkers::default();
        for (n, socket) in sockets.into_iter().enumerate() {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("building an HTTP worker's runtime")?;
            let shared = shared.clone();
            let mut stopped = stopped.clone();
            let thread = std::thread::Builder::new()
                .name(format!("proxy-http-{n}"))
                .spawn(move || {
                    runtime.block_on(async move {
                        let listener = match socket.listen(LISTEN_BACKLOG) {
                            Ok(listener) => listener,
                            Err(error) => {
                                tracing::error!(%bound, %error, "an HTTP worker cannot listen");
                                return;
                            }
                        };
                        tokio::select! {
                            () = accept_loop(shared, upstream_client(), listener, Listener::Http) => {}
                            _ = stopped.changed() => {}
                        }
                    });
                })
                .context("starting an HTTP worker thread")?;
            workers.threads.push(thread);
        }
        tracing::info!(address = %bound, threads = count.get(), "proxy HTTP listening");
        Ok(workers)
    }

    /// Waits for every thread to have closed its listener and dropped its connections.
    async fn join(self) {
        let joined = tokio::task::spawn_blocking(move || {
            for thread in self.threads {
                if thread.join().is_err() {
                    tracing::error!("an HTTP worker thread panicked");
                }
            }
        });
        if let Err(error) = joined.await {
            tracing::error!(%error, "waiting for the HTTP workers failed");
        }
    }
}

/// Connections waiting to be accepted, per listener: HAProxy's default `maxconn`-derived
/// backlog is larger than tokio's 1,024 only on machines with many more cores.
const LISTEN_BACKLOG: u32 = 1024;

fn reusable_socket(address: SocketAddr) -> std::io::Result<TcpSocket> {
    let socket = match address {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(address)?;
    Ok(socket)
}

/// A pool of upstream connections, used only from the runtime that made it: the pool's
/// connections are tasks of that runtime.
fn upstream_client() -> Upstream {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).build(connector)
}

type Upstream = Client<HttpConnector, ProxyBody>;

struct Shared {
    config: Config,
    table: watch::Receiver<Arc<Routing>>,
    metrics: Metrics,
    /// Per service port, whether it listens or why not.
    listeners: Mutex<BTreeMap<u16, String>>,
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
    fn routing(&self) -> Arc<Routing> {
        self.table.borrow().clone()
    }
}

/// The table and, for each of its pools and backends, what the hot path needs.
#[derive(Default)]
struct Routing {
    table: Table,
    /// By service port.
    ports: HashMap<u16, Arc<LivePool>>,
    /// In the order of `table.http`.
    http: Vec<Arc<LivePool>>,
    /// Every pool, by app and port index: where the next table takes its turns from.
    pools: HashMap<(String, usize), Arc<LivePool>>,
}

/// One pool of the table with its round-robin turn.
struct LivePool {
    app_id: String,
    port_index: usize,
    balance: Balance,
    turn: AtomicUsize,
    backends: Vec<Arc<LiveBackend>>,
}

/// One backend of one pool with its in-flight counter and its metrics.
struct LiveBackend {
    addr: SocketAddr,
    authority: Authority,
    /// Open connections (L4) and requests in flight (L7) to this address from every pool,
    /// for `leastconn`; kept across tables while the address is in one or still in use.
    active: Arc<AtomicUsize>,
    metrics: BackendMetrics,
}

impl Routing {
    /// The routing for `table`, keeping from `previous` the turns of pools still there and
    /// the handles of backends still there, so a swap resets no rotation and no counter.
    fn build(
        table: Table,
        previous: &Routing,
        active: &mut HashMap<SocketAddr, Arc<AtomicUsize>>,
    ) -> Routing {
        active.retain(|_, count| count.load(Ordering::Relaxed) > 0 || Arc::strong_count(count) > 1);
        let mut pools: HashMap<(String, usize), Arc<LivePool>> = HashMap::new();
        let mut live = |pool: &Pool| -> Arc<LivePool> {
            let key = (pool.app_id.clone(), pool.port_index);
            if let Some(done) = pools.get(&key) {
                return done.clone();
            }
            let before = previous.pools.get(&key);
            let backends = pool
                .backends
                .iter()
                .map(|backend| {
                    let kept = before.and_then(|before| {
                        before.backends.iter().find(|live| live.addr == backend.addr)
                    });
                    match kept {
                        Some(kept) => kept.clone(),
                        None => Arc::new(LiveBackend {
                            addr: backend.addr,
                            authority: Authority::try_from(backend.addr.to_string().as_str())
                                .expect("a socket address is an authority"),
                            active: active.entry(backend.addr).or_default().clone(),
                            metrics: BackendMetrics::new(pool, backend.addr),
                        }),
                    }
                })
                .collect();
            let turn = before.map_or(0, |before| before.turn.load(Ordering::Relaxed));
            let live = Arc::new(LivePool {
                app_id: pool.app_id.clone(),
                port_index: pool.port_index,
                balance: pool.balance,
                turn: AtomicUsize::new(turn),
                backends,
            });
            pools.insert(key, live.clone());
            live
        };
        let ports = table.ports.iter().map(|(port, route)| (*port, live(&route.pool))).collect();
        let http = table.http.iter().map(|route| live(&route.pool)).collect();
        Routing { table, ports, http, pools }
    }
}

impl LivePool {
    /// A backend not in `tried`, by the pool's balance.
    fn pick(&self, tried: &[SocketAddr]) -> Option<&Arc<LiveBackend>> {
        let untried = |backend: &&Arc<LiveBackend>| !tried.contains(&backend.addr);
        let count = self.backends.iter().filter(untried).count();
        if count == 0 {
            return None;
        }
        let start = self.turn.fetch_add(1, Ordering::Relaxed);
        let mut candidates = self.backends.iter().filter(untried).cycle().skip(start % count);
        match self.balance {
            Balance::RoundRobin => candidates.next(),
            Balance::LeastConn => {
                candidates.take(count).min_by_key(|backend| backend.active.load(Ordering::Relaxed))
            }
        }
    }
}

/// One backend's Prometheus series, looked up once each: a series appears in `/metrics`
/// when it is first counted, as with `with_label_values` on every use.
struct BackendMetrics {
    /// app, port index, address.
    labels: [String; 3],
    connections: OnceLock<IntCounter>,
    /// By status class, 1xx to 5xx.
    requests: [OnceLock<IntCounter>; 5],
    bytes_out: OnceLock<IntCounter>,
    bytes_in: OnceLock<IntCounter>,
    errors_connect: OnceLock<IntCounter>,
    errors_request: OnceLock<IntCounter>,
    errors_io: OnceLock<IntCounter>,
    errors_drain_cut: OnceLock<IntCounter>,
    active: OnceLock<IntGauge>,
}

/// A `kind` of `corral_proxy_backend_errors_total`.
#[derive(Clone, Copy)]
enum ErrorKind {
    Connect,
    Request,
    Io,
    DrainCut,
}

impl BackendMetrics {
    fn new(pool: &Pool, addr: SocketAddr) -> BackendMetrics {
        BackendMetrics {
            labels: [pool.app_id.clone(), pool.port_index.to_string(), addr.to_string()],
            connections: OnceLock::new(),
            requests: Default::default(),
            bytes_out: OnceLock::new(),
            bytes_in: OnceLock::new(),
            errors_connect: OnceLock::new(),
            errors_request: OnceLock::new(),
            errors_io: OnceLock::new(),
            errors_drain_cut: OnceLock::new(),
            active: OnceLock::new(),
        }
    }

    fn with<'a>(
        &self,
        cell: &'a OnceLock<IntCounter>,
        vec: &IntCounterVec,
        extra: &[&str],
    ) -> &'a IntCounter {
        cell.get_or_init(|| {
            let [app, port_index, addr] = &self.labels;
            let mut labels = vec![app.as_str(), port_index.as_str(), addr.as_str()];
            labels.extend_from_slice(extra);
            vec.with_label_values(&labels)
        })
    }

    fn connections(&self, metrics: &Metrics) -> &IntCounter {
        self.with(&self.connections, &metrics.connections, &[])
    }

    fn request(&self, metrics: &Metrics, status: StatusCode) {
        let class = usize::from(status.as_u16() / 100);
        match self.requests.get(class.wrapping_sub(1)) {
            Some(cell) => {
                let name = ["1xx", "2xx", "3xx", "4xx", "5xx"][class - 1];
                self.with(cell, &metrics.requests, &[name]).inc();
            }
            // 6xx to 9xx parse as status codes but are no class of RFC 9110.
            None => {
                let [app, port_index, addr] = &self.labels;
                metrics
                    .requests
                    .with_label_values(&[app, port_index, addr, &format!("{class}xx")])
                    .inc();
            }
        }
    }

    fn bytes(&self, metrics: &Metrics, to_backend: u64, from_backend: u64) {
        self.with(&self.bytes_out, &metrics.bytes, &["out"]).inc_by(to_backend);
        self.with(&self.bytes_in, &metrics.bytes, &["in"]).inc_by(from_backend);
    }

    fn error(&self, metrics: &Metrics, kind: ErrorKind) {
        let (cell, name) = match kind {
            ErrorKind::Connect => (&self.errors_connect, "connect"),
            ErrorKind::Request => (&self.errors_request, "request"),
            ErrorKind::Io => (&self.errors_io, "io"),
            ErrorKind::DrainCut => (&self.errors_drain_cut, "drain_cut"),
        };
        self.with(cell, &metrics.errors, &[name]).inc();
    }

    fn active(&self, metrics: &Metrics) -> &IntGauge {
        self.active.get_or_init(|| {
            let [app, port_index, addr] = &self.labels;
            metrics.active.with_label_values(&[app, port_index, addr])
        })
    }
}

/// Counts a backend's open connection or request while it lives, in both the `leastconn`
/// counter and the `corral_proxy_backend_active` gauge.
struct InFlight<'a> {
    counter: &'a AtomicUsize,
    gauge: &'a IntGauge,
}

impl InFlight<'_> {
    fn start<'a>(metrics: &Metrics, backend: &'a LiveBackend) -> InFlight<'a> {
        backend.active.fetch_add(1, Ordering::Relaxed);
        let gauge = backend.metrics.active(metrics);
        gauge.inc();
        InFlight { counter: &backend.active, gauge }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::Relaxed);
        self.gauge.dec();
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

/// Follows the catalog by long polls, from one master until it fails, then the next.
async fn follow_catalog(config: Config, table: watch::Sender<Arc<Routing>>, shared: Arc<Shared>) {
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
    let mut active = HashMap::new();
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
                    if current.table == next {
                        return false;
                    }
                    tracing::debug!(index = answer.index, "routing table swapped");
                    *current = Arc::new(Routing::build(next, current, &mut active));
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
    let upstream = upstream_client();
    let mut accepting: HashMap<u16, JoinHandle<()>> = HashMap::new();
    loop {
        let wanted: Vec<u16> = table.borrow_and_update().table.ports.keys().copied().collect();
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
                    let task = tokio::spawn(accept_loop(
                        shared.clone(),
                        upstream.clone(),
                        listener,
                        Listener::Port(port),
                    ));
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

async fn accept_loop(
    shared: Arc<Shared>,
    upstream: Upstream,
    listener: TcpListener,
    which: Listener,
) {
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
        let upstream = upstream.clone();
        tokio::spawn(async move {
            match which {
                Listener::Http => serve_http(shared, upstream, stream, peer, which).await,
                Listener::Port(port) => {
                    let mode = shared.routing().table.ports.get(&port).map(|route| route.mode);
                    match mode {
                        Some(Mode::Http) => serve_http(shared, upstream, stream, peer, which).await,
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
/// drain grace after the backend left the table (its kill grace when it is being killed).
async fn serve_tcp(shared: Arc<Shared>, client: TcpStream, port: u16) {
    let routing = shared.routing();
    let Some(pool) = routing.ports.get(&port) else { return };
    let mut tried = Vec::new();
    let (backend, upstream) = loop {
        let Some(backend) = pool.pick(&tried) else {
            shared.metrics.unrouted.with_label_values(&[&port.to_string()]).inc();
            tracing::warn!(port, app = %pool.app_id, "no backend to connect to");
            return;
        };
        backend.metrics.connections(&shared.metrics).inc();
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(backend.addr)).await {
            Ok(Ok(stream)) => break (backend.clone(), stream),
            Ok(Err(error)) => {
                tracing::warn!(backend = %backend.addr, %error, "backend refused; trying another");
                backend.metrics.error(&shared.metrics, ErrorKind::Connect);
            }
            Err(_) => {
                tracing::warn!(backend = %backend.addr, "backend connect timed out; trying another");
                backend.metrics.error(&shared.metrics, ErrorKind::Connect);
            }
        }
        tried.push(backend.addr);
        if tried.len() >= ATTEMPTS {
            shared.metrics.unrouted.with_label_values(&[&port.to_string()]).inc();
            return;
        }
    };
    // An open connection must not keep a whole old table alive.
    drop(routing);
    let _ = upstream.set_nodelay(true);
    let _in_flight = InFlight::start(&shared.metrics, &backend);

    // The copy is a task of its own so that it runs woken by its sockets only; this one
    // wakes on table swaps, to cut the connection at the end of its drain grace.
    let mut copy = tokio::spawn(async move {
        let (mut client, mut upstream) = (client, upstream);
        tokio::io::copy_bidirectional_with_sizes(&mut client, &mut upstream, L4_BUFFER, L4_BUFFER)
            .await
    });
    let mut changes = shared.table.clone();
    let mut watching = true;
    let mut cut_at: Option<Instant> = None;
    loop {
        tokio::select! {
            copied = &mut copy => {
                match copied {
                    Ok(Ok((to_backend, from_backend))) => {
                        backend.metrics.bytes(&shared.metrics, to_backend, from_backend);
                    }
                    Ok(Err(error)) => {
                        tracing::debug!(backend = %backend.addr, %error, "connection ended with an error");
                        backend.metrics.error(&shared.metrics, ErrorKind::Io);
                    }
                    Err(error) => {
                        tracing::error!(backend = %backend.addr, %error, "the copy task failed");
                        backend.metrics.error(&shared.metrics, ErrorKind::Io);
                    }
                }
                break;
            }
            changed = changes.changed(), if watching => {
                if changed.is_err() {
                    watching = false;
                    continue;
                }
                let routing = changes.borrow_and_update().clone();
                let present = routing.ports.get(&port).is_some_and(|pool| {
                    pool.backends.iter().any(|b| b.addr == backend.addr)
                });
                cut_at = match (present, cut_at) {
                    (true, _) => None,
                    (false, Some(at)) => Some(at),
                    (false, None) => {
                        let grace = routing.table.drain_grace(
                            port,
                            backend.addr,
                            shared.config.drain_grace,
                        );
                        tracing::debug!(backend = %backend.addr, ?grace, "backend left the table; draining the connection");
                        Some(Instant::now() + grace)
                    }
                };
            }
            () = sleep_until(cut_at), if cut_at.is_some() => {
                tracing::info!(backend = %backend.addr, "drain grace over; closing the connection");
                copy.abort();
                backend.metrics.error(&shared.metrics, ErrorKind::DrainCut);
                break;
            }
        }
    }
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
async fn serve_http(
    shared: Arc<Shared>,
    upstream: Upstream,
    stream: TcpStream,
    peer: SocketAddr,
    which: Listener,
) {
    let client = Arc::new(ClientSide {
        peer,
        forwarded: HeaderValue::try_from(peer.ip().to_string())
            .expect("an IP address is a header value"),
    });
    let service = hyper::service::service_fn(move |request| {
        let shared = shared.clone();
        let upstream = upstream.clone();
        let client = client.clone();
        async move {
            Ok::<_, Infallible>(proxy_request(&shared, &upstream, request, &client, which).await)
        }
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    if let Err(error) = builder.serve_connection(TokioIo::new(stream), service).await {
        tracing::debug!(%peer, error = %error, "client connection ended with an error");
    }
}

/// What every request of one client connection shares.
struct ClientSide {
    peer: SocketAddr,
    /// The peer's address as an `X-Forwarded-For` value.
    forwarded: HeaderValue,
}

/// Headers that describe one hop, not the request (RFC 9110 §7.6.1).
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::UPGRADE,
    header::TRANSFER_ENCODING,
];

async fn proxy_request(
    shared: &Shared,
    upstream: &Upstream,
    request: Request<Incoming>,
    client: &ClientSide,
    which: Listener,
) -> Response<ProxyBody> {
    let routing = shared.routing();
    let host_header = request.headers().get(header::HOST).and_then(|value| value.to_str().ok());
    // HTTP/2 names the host in the URI's authority only.
    let authority = match host_header {
        Some(_) => None,
        None => request.uri().authority().map(|a| a.as_str().to_owned()),
    };
    let host = host_header.or(authority.as_deref());
    let pool = match which {
        Listener::Http => {
            routing.table.route_http_index(host, request.uri().path()).map(|at| &routing.http[at])
        }
        Listener::Port(port) => routing.ports.get(&port),
    };
    let Some(pool) = pool else {
        let listener = match which {
            Listener::Http => "http".to_owned(),
            Listener::Port(port) => port.to_string(),
        };
        shared.metrics.unrouted.with_label_values(&[&listener]).inc();
        return problem(
            StatusCode::NOT_FOUND,
            json!({"message": "no route", "host": host, "path": request.uri().path()}),
        );
    };
    let (mut parts, body) = request.into_parts();
    let path_and_query =
        parts.uri.path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
    for name in &HOP_BY_HOP {
        parts.headers.remove(name);
    }
    if let Some(authority) = &authority {
        if let Ok(value) = HeaderValue::from_str(authority) {
            parts.headers.insert(header::HOST, value);
        }
    }
    let forwarded = match parts.headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(earlier) => HeaderValue::try_from(format!("{earlier}, {}", client.peer.ip())).ok(),
        None => Some(client.forwarded.clone()),
    };
    if let Some(value) = forwarded {
        parts.headers.insert("x-forwarded-for", value);
    }
    parts.version = http::Version::HTTP_11;
    // A request without a body can be sent again to another backend; a safe one even after
    // a backend closed on it mid-way (a drained instance exiting).
    let replayable = body.is_end_stream();
    let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    let mut body = Some(body);
    let mut tried = Vec::new();
    loop {
        let Some(backend) = pool.pick(&tried) else {
            let listener = match which {
                Listener::Http => "http".to_owned(),
                Listener::Port(port) => port.to_string(),
            };
            shared.metrics.unrouted.with_label_values(&[&listener]).inc();
            tracing::warn!(app = %pool.app_id, "no backend left to send the request to");
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"message": "no backend", "app": pool.app_id, "portIndex": pool.port_index}),
            );
        };
        tried.push(backend.addr);
        let mut uri = http::uri::Parts::default();
        uri.scheme = Some(Scheme::HTTP);
        uri.authority = Some(backend.authority.clone());
        uri.path_and_query = Some(path_and_query.clone());
        let uri = Uri::from_parts(uri).expect("a scheme, an authority and a path make a URI");
        let mut outgoing = Request::from_parts(parts.clone(), ());
        *outgoing.uri_mut() = uri;
        let outgoing_body: ProxyBody = match (replayable, body.take()) {
            (false, Some(body)) => body.boxed(),
            _ => Empty::<Bytes>::new().map_err(|never| match never {}).boxed(),
        };
        let outgoing = outgoing.map(|()| outgoing_body);
        let answered = {
            let _in_flight = InFlight::start(&shared.metrics, backend);
            upstream.request(outgoing).await
        };
        match answered {
            Ok(response) => {
                backend.metrics.request(&shared.metrics, response.status());
                let (mut parts, body) = response.into_parts();
                for name in &HOP_BY_HOP {
                    parts.headers.remove(name);
                }
                return Response::from_parts(parts, body.boxed());
            }
            Err(error) => {
                let kind = if error.is_connect() { ErrorKind::Connect } else { ErrorKind::Request };
                backend.metrics.error(&shared.metrics, kind);
                let again = replayable && (error.is_connect() || safe) && tried.len() < ATTEMPTS;
                tracing::warn!(backend = %backend.addr, error = format!("{error:#}"), retry = again, "backend request failed");
                if again {
                    continue;
                }
                tracing::error!(app = %pool.app_id, backend = %backend.addr, "answering 502: the backend failed");
                return problem(
                    StatusCode::BAD_GATEWAY,
                    json!({"message": format!("backend {} failed: {error}", backend.addr), "app": pool.app_id}),
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
                    let routing = shared.routing();
                    let listeners =
                        shared.listeners.lock().expect("no holder of the lock panics").clone();
                    axum::Json(json!({
                        "masters": shared.config.masters,
                        "httpListen": shared.config.http_listen,
                        "bindIp": shared.config.bind_ip,
                        "drainGraceSeconds": shared.config.drain_grace.as_secs_f64(),
                        "listeners": listeners,
                        "table": routing.table,
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
