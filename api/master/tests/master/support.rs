//! Masters in this process: real sled directories, a real replicated log over an in-process
//! network, the real router, called with `oneshot` (no socket, no child process).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use corral_allocator::AllocatorConfig;
use corral_log::network::LocalNetwork;
use corral_log::{LogConfig, LogNode, LogTuning};
use corral_master::{router, run_leader_loops, serve, Listeners, LoopIntervals, Master, Serving};
use corral_testkit::eventually;
use futures::StreamExt;
use serde_json::Value;
use tower::ServiceExt;

pub const LONG: Duration = Duration::from_secs(30);

/// The allocation interval of test masters unless a test asks for another.
const ALLOCATION: Duration = Duration::from_millis(100);

/// What a request was answered with.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The body as JSON, or as a JSON string when it is not JSON.
    pub body: Value,
}

pub struct TestMaster {
    pub master: Master,
    pub router: Router,
    pub address: String,
    leading: tokio::task::JoinHandle<()>,
}

/// One, three or five masters of one cluster, in this process.
pub struct TestMasters {
    pub masters: Vec<TestMaster>,
    /// With `start_bound`, each master's loopback socket until `serve` takes it.
    pub listeners: Vec<Option<tokio::net::TcpListener>>,
    servers: Vec<tokio::task::JoinHandle<()>>,
    /// The in-process network the masters' log runs over (delays, partitions).
    pub network: LocalNetwork,
    _directory: tempfile::TempDir,
}

impl TestMasters {
    pub async fn start(size: u64) -> TestMasters {
        TestMasters::start_allocating_every(size, ALLOCATION).await
    }

    /// Masters whose allocator runs this often, besides when something wakes it.
    pub async fn start_allocating_every(size: u64, allocation: Duration) -> TestMasters {
        let addresses = (1..=size).map(|node_id| format!("master-{node_id}:5050")).collect();
        TestMasters::open(addresses, Serving::default(), Vec::new(), allocation).await
    }

    /// Masters known to each other (and to the log) by real loopback sockets, bound but not
    /// yet served (`serve` does, one master at a time): for what a master sends another
    /// over HTTP. The log itself still runs over the in-process network.
    pub async fn start_bound(size: u64, serving: Serving) -> TestMasters {
        let mut listeners = Vec::new();
        let mut addresses = Vec::new();
        for _ in 0..size {
            let listener =
                tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
            addresses.push(listener.local_addr().expect("a bound address").to_string());
            listeners.push(Some(listener));
        }
        TestMasters::open(addresses, serving, listeners, ALLOCATION).await
    }

    /// Serves master `index` on its socket until the masters are dropped.
    pub fn serve(&mut self, index: usize) {
        let listener = self.listeners[index].take().expect("a socket not served yet");
        let master = self.masters[index].master.clone();
        let listeners = Listeners { main: listener, plain: None };
        self.servers.push(tokio::spawn(async move {
            serve(master, listeners, std::future::pending()).await.expect("the master serves");
        }));
    }

    async fn open(
        addresses: Vec<String>,
        serving: Serving,
        listeners: Vec<Option<tokio::net::TcpListener>>,
        allocation: Duration,
    ) -> TestMasters {
        let size = u64::try_from(addresses.len()).expect("a few masters");
        let directory = tempfile::tempdir().expect("temp dir");
        let network = LocalNetwork::new();
        let address =
            |node_id: u64| addresses[usize::try_from(node_id - 1).expect("small")].clone();
        let peers: BTreeMap<u64, String> = (1..=size).map(|id| (id, address(id))).collect();
        let cluster_id = corral_testkit::unique_cluster_id();
        let mut masters = Vec::new();
        for node_id in 1..=size {
            let mut config = LogConfig::new(
                node_id,
                address(node_id),
                directory.path().join(node_id.to_string()),
            );
            config.peers = peers.clone();
            config.settings.cluster_id = cluster_id.clone();
            config.tuning = LogTuning {
                heartbeat_interval: Duration::from_millis(50),
                election_timeout_min: Duration::from_millis(300),
                election_timeout_max: Duration::from_millis(600),
                ..LogTuning::default()
            };
            let node = LogNode::open_with_network(config, network.factory(node_id))
                .await
                .expect("log opens");
            network.register(node_id, node.endpoint());
            let intervals = LoopIntervals {
                allocation,
                tick: Duration::from_secs(1),
                stream_heartbeat: Duration::from_secs(1),
                usage: Duration::from_secs(1),
            };
            let master = Master::serving(
                node,
                address(node_id),
                intervals,
                AllocatorConfig::default(),
                serving.clone(),
            )
            .expect("master");
            let leading = tokio::spawn(run_leader_loops(master.clone()));
            masters.push(TestMaster {
                router: router(master.clone()),
                master,
                address: address(node_id),
                leading,
            });
        }
        let masters =
            TestMasters { masters, listeners, servers: Vec::new(), network, _directory: directory };
        masters.leader().await;
        masters
    }

    /// The index of the master every master agrees leads.
    pub async fn leader(&self) -> usize {
        eventually(LONG, "a leader every master follows", || async {
            let leaders: Vec<usize> = (0..self.masters.len())
                .filter(|index| self.masters[*index].master.node().is_leader())
                .collect();
            let [leader] = leaders[..] else { return None };
            let leader_id = self.masters[leader].master.node().node_id();
            let followed = self
                .masters
                .iter()
                .all(|test| test.master.node().status().leader == Some(leader_id));
            followed.then_some(leader)
        })
        .await
    }

    pub fn follower_of(&self, leader: usize) -> usize {
        (leader + 1) % self.masters.len()
    }

    /// Sends a request to master `index` and reads the whole answer.
    pub async fn send(
        &self,
        index: usize,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Answer {
        self.send_with(index, method, path, body, &[]).await
    }

    /// `send` with these headers.
    /// Registers an agent on `hostname` advertising `address` through the agent-facing
    /// API, with `headers` (its credentials, if any); its id as `/master/slaves` lists it.
    pub async fn register_agent_with(
        &self,
        leader: usize,
        hostname: &str,
        address: &str,
        headers: &[(&str, &str)],
    ) -> String {
        let command = corral_state::Command::RegisterAgent {
            info: corral_state::model::AgentInfo {
                hostname: hostname.to_owned(),
                address: address.to_owned(),
                attributes: corral_state::model::Attributes::default(),
            },
            resources: "cpus:2;mem:256".parse().expect("resources"),
        };
        let body =
            serde_json::json!({"request_id": format!("register-{hostname}"), "command": command});
        let path = "/corral/v1/agent/commands";
        let answer = self.send_with(leader, Method::POST, path, Some(&body), headers).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        let slaves = self.send_with(leader, Method::GET, "/master/slaves", None, headers).await;
        slaves.body["slaves"]
            .as_array()
            .expect("slaves")
            .iter()
            .find(|agent| agent["hostname"] == hostname)
            .and_then(|agent| agent["id"].as_str())
            .expect("the agent is listed")
            .to_owned()
    }

    pub async fn send_with(
        &self,
        index: usize,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let response = self.respond(index, request(method, path, body, headers)).await;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer { status, headers, body }
    }

    /// Sends a request and returns the response as it starts (for streams).
    pub async fn respond(&self, index: usize, request: Request<Body>) -> axum::response::Response {
        self.masters[index].router.clone().oneshot(request).await.expect("routers are infallible")
    }
}

impl Drop for TestMasters {
    fn drop(&mut self) {
        for test in &self.masters {
            test.leading.abort();
        }
        for server in &self.servers {
            server.abort();
        }
    }
}

/// A request with a JSON body when given and extra headers.
pub fn request(
    method: Method,
    path: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let body = match body {
        Some(json) => {
            builder = builder.header("content-type", "application/json");
            Body::from(json.to_string())
        }
        None => Body::empty(),
    };
    builder.body(body).expect("a well-formed request")
}

/// Reads a streaming body until `enough` says so, splitting it with `split` into items.
pub async fn read_stream<T>(
    response: axum::response::Response,
    split: impl Fn(&mut String) -> Option<T>,
    mut enough: impl FnMut(&[T]) -> bool,
) -> Vec<T> {
    let mut items = Vec::new();
    let mut buffer = String::new();
    let mut stream = response.into_body().into_data_stream();
    let deadline = tokio::time::Instant::now() + LONG;
    while !enough(&items) {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("the stream sends in time")
            .expect("the stream stays open")
            .expect("a chunk");
        buffer.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
        while let Some(item) = split(&mut buffer) {
            items.push(item);
        }
    }
    items
}

/// One RecordIO record (`<length>\n<json>`) off the front of `buffer`, parsed.
pub fn recordio_event(buffer: &mut String) -> Option<Value> {
    let newline = buffer.find('\n')?;
    let length: usize = buffer[..newline].parse().expect("a RecordIO length");
    if buffer.len() < newline + 1 + length {
        return None;
    }
    let record: String = buffer.drain(..newline + 1 + length).collect();
    Some(serde_json::from_str(&record[newline + 1..]).expect("a JSON event"))
}

/// One NDJSON line off the front of `buffer`, parsed.
pub fn ndjson_line(buffer: &mut String) -> Option<Value> {
    let end = buffer.find('\n')?;
    let line: String = buffer.drain(..=end).collect();
    Some(serde_json::from_str(line.trim_end()).expect("each line is JSON"))
}
