//! `corral proxy` end to end: three real masters, a real agent running an HTTP app with three
//! instances and a health check, and the proxy following the catalog from the masters. The
//! app is served on its service port (L4) and by virtual host (L7); a rolling restart and a
//! scale-down under constant load through both fail no request. A killed instance's open L4
//! connections go on for the app's kill grace period, not the proxy's `--drain-grace`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use corral_testkit::agent_process::AgentProcess;
use corral_testkit::cluster::Cluster;
use corral_testkit::eventually;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const VHOST: &str = "web.example.test";

/// Answers every GET with its task id; on SIGTERM keeps answering for two seconds and exits,
/// as a graceful server does within its kill grace period.
const SERVER: &str = r#"
import http.server, os, signal, socketserver, threading
name = os.environ.get("MESOS_TASK_ID", "unknown").encode()
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(name)))
        self.end_headers()
        self.wfile.write(name)
    def log_message(self, *args):
        pass
class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
server = Server(("127.0.0.1", int(os.environ["PORT0"])), Handler)
signal.signal(signal.SIGTERM, lambda *_: threading.Timer(2.0, lambda: os._exit(0)).start())
server.serve_forever()
"#;

/// The `corral proxy` child, killed with the test.
struct ProxyProcess {
    child: std::process::Child,
    log: std::path::PathBuf,
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ProxyProcess {
    /// `corral proxy` for the `external` group, asking `masters` in that order, logging
    /// into `directory`.
    fn start(
        directory: &std::path::Path,
        masters: &[String],
        http_listen: &str,
        admin: &str,
        drain_grace: &str,
    ) -> ProxyProcess {
        let log = directory.join("proxy.log");
        let child = std::process::Command::new(corral_testkit::corral_bin())
            .args(["proxy", "--master", &masters.join(","), "--group", "external"])
            .args(["--http-listen", http_listen, "--bind-ip", "127.0.0.1"])
            .args(["--admin-listen", admin, "--drain-grace", drain_grace])
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).expect("proxy log"))
            .spawn()
            .expect("corral proxy starts");
        ProxyProcess { child, log }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A service port no process on this machine listens on, so the proxy can bind it.
fn free_service_port() -> u16 {
    let start = 10_000 + u16::try_from(std::process::id() % 9_000).expect("below 9000");
    (start..20_000)
        .find(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .expect("a free port in 10000-20000")
}

async fn get(cluster: &Cluster, master: usize, path: &str) -> Option<Value> {
    let response = cluster.http.get(cluster.masters[master].url(path)).send().await.ok()?;
    response.status().is_success().then_some(())?;
    response.json().await.ok()
}

/// One request on a new connection through the service port: the task id that answered.
async fn through_port(port: u16) -> Result<String, String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|error| format!("connect: {error}"))?;
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: any\r\n\r\n")
        .await
        .map_err(|error| format!("write: {error}"))?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.map_err(|error| format!("read: {error}"))?;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    if !answer.starts_with("HTTP/1.1 200") && !answer.starts_with("HTTP/1.0 200") {
        return Err(format!("answer: {answer:?}"));
    }
    let (_, body) = answer.split_once("\r\n\r\n").ok_or(format!("no body: {answer:?}"))?;
    Ok(body.to_owned())
}

/// One request through the HTTP listener by virtual host, on a kept-alive connection.
async fn through_vhost(client: &reqwest::Client, http_listen: &str) -> Result<String, String> {
    let response = client
        .get(format!("http://{http_listen}/"))
        .header("host", VHOST)
        .send()
        .await
        .map_err(|error| format!("send: {error}"))?;
    let status = response.status();
    let body = response.text().await.map_err(|error| format!("body: {error}"))?;
    if status != 200 {
        return Err(format!("{status}: {body}"));
    }
    Ok(body)
}

/// Requests through the proxy in two loops (L4 and L7) until stopped, keeping every failure.
struct Load {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    failures: Arc<Mutex<Vec<String>>>,
    loops: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(service_port: u16, http_listen: String) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let mut loops = Vec::new();
        {
            let (stop, done, failures) = (stop.clone(), done.clone(), failures.clone());
            loops.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    match through_port(service_port).await {
                        Ok(_) => done.fetch_add(1, Ordering::Relaxed),
                        Err(error) => {
                            failures.lock().unwrap().push(format!("L4: {error}"));
                            0
                        }
                    };
                }
            }));
        }
        {
            let (stop, done, failures) = (stop.clone(), done.clone(), failures.clone());
            loops.push(tokio::spawn(async move {
                let client = reqwest::Client::new();
                while !stop.load(Ordering::Relaxed) {
                    match through_vhost(&client, &http_listen).await {
                        Ok(_) => done.fetch_add(1, Ordering::Relaxed),
                        Err(error) => {
                            failures.lock().unwrap().push(format!("L7: {error}"));
                            0
                        }
                    };
                }
            }));
        }
        Load { stop, done, failures, loops }
    }

    /// Stops the loops; how many requests succeeded, and every failure.
    async fn finish(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.loops {
            task.await.expect("a load loop does not panic");
        }
        let failures = self.failures.lock().unwrap().clone();
        (self.done.load(Ordering::Relaxed), failures)
    }
}

/// The backends the proxy routes the service port to, as its admin listener shows them.
async fn proxied_tasks(
    http: &reqwest::Client,
    admin: &str,
    service_port: u16,
) -> Option<Vec<String>> {
    let config: Value = http
        .get(format!("http://{admin}/_corral/proxy/config"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let backends =
        config["table"]["ports"][service_port.to_string()]["pool"]["backends"].as_array()?;
    let mut tasks: Vec<String> =
        backends.iter().filter_map(|b| b["taskId"].as_str().map(str::to_owned)).collect();
    tasks.sort();
    Some(tasks)
}

/// The app's ready task ids, as the masters see them.
async fn ready_tasks(cluster: &Cluster, master: usize) -> Option<Vec<String>> {
    let service = get(cluster, master, "/corral/v1/services/web").await?;
    let mut tasks: Vec<String> = service["service"]["instances"]
        .as_array()?
        .iter()
        .filter(|i| i["ready"] == true)
        .filter_map(|i| i["taskId"].as_str().map(str::to_owned))
        .collect();
    tasks.sort();
    Some(tasks)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_proxy_serves_by_port_and_vhost_and_fails_nothing_across_a_restart_and_a_scale_down() {
    let cluster = Cluster::start(3);
    let directory = tempfile::tempdir().expect("temp dir");
    let _agent = AgentProcess::start(
        directory.path(),
        "web-host",
        &cluster.addresses(),
        &["--resources", "cpus:4;mem:2048;disk:100;ports:[33400-33499]"],
    );
    let leader = cluster.leader().await;
    let follower = cluster.follower_of(leader);
    eventually(Duration::from_secs(60), "the agent registered", || async {
        let state = get(&cluster, leader, "/master/state").await?;
        (state["slaves"].as_array()?.len() == 1).then_some(())
    })
    .await;

    let script = directory.path().join("server.py");
    std::fs::write(&script, SERVER).expect("write the server script");
    let python = corral_testkit::framework::python();
    let service_port = free_service_port();
    let app = json!({
        "id": "/web",
        "cmd": format!("exec {python} {}", script.display()),
        "cpus": 0.1, "mem": 64, "instances": 3,
        "portDefinitions": [{"port": service_port, "name": "http"}],
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": VHOST, "HAPROXY_0_MODE": "tcp"},
        "healthChecks": [{"protocol": "HTTP", "path": "/", "portIndex": 0, "gracePeriodSeconds": 15,
                          "intervalSeconds": 1, "timeoutSeconds": 1, "maxConsecutiveFailures": 3}],
        "taskKillGracePeriodSeconds": 5,
        "upgradeStrategy": {"minimumHealthCapacity": 1, "maximumOverCapacity": 1},
    });
    cluster.create_app(leader, &app).await;
    // An app whose label is wrong: only it is left out, and the proxy says why.
    let bad = json!({"id": "/bad", "cmd": "sleep 600", "cpus": 0.1, "mem": 16, "instances": 0,
        "portDefinitions": [{"port": 0}],
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_BALANCE": "source"}});
    cluster.create_app(leader, &bad).await;

    // The proxy asks a follower first: the catalog is valid on any master.
    let http_listen = Cluster::free_address();
    let admin = Cluster::free_address();
    let first_asked = cluster.masters[follower].address.clone();
    let mut masters = vec![first_asked.clone()];
    masters.extend(cluster.addresses().into_iter().filter(|a| *a != first_asked));
    let _proxy = ProxyProcess::start(directory.path(), &masters, &http_listen, &admin, "10");
    let http = reqwest::Client::new();

    let first =
        eventually(Duration::from_secs(90), "three healthy instances behind the proxy", || async {
            let ready = ready_tasks(&cluster, leader).await?;
            (ready.len() == 3 && proxied_tasks(&http, &admin, service_port).await? == ready)
                .then_some(ready)
        })
        .await;

    // Served on the service port and by virtual host, spread over every instance.
    let client = reqwest::Client::new();
    let mut seen_l4 = std::collections::BTreeSet::new();
    let mut seen_l7 = std::collections::BTreeSet::new();
    for _ in 0..12 {
        seen_l4.insert(through_port(service_port).await.expect("served on the service port"));
        seen_l7.insert(through_vhost(&client, &http_listen).await.expect("served by virtual host"));
    }
    assert_eq!(
        seen_l4.into_iter().collect::<Vec<_>>(),
        first,
        "round robin over every instance (L4)"
    );
    assert_eq!(
        seen_l7.into_iter().collect::<Vec<_>>(),
        first,
        "round robin over every instance (L7)"
    );
    let unknown = client
        .get(format!("http://{http_listen}/"))
        .header("host", "nobody.test")
        .send()
        .await
        .expect("send");
    assert_eq!(unknown.status(), 404);

    let config: Value = http
        .get(format!("http://{admin}/_corral/proxy/config"))
        .send()
        .await
        .expect("config")
        .json()
        .await
        .expect("json");
    assert_eq!(
        config["table"]["errors"]["/bad"],
        json!(["HAPROXY_0_BALANCE: 'source' is not roundrobin or leastconn"]),
        "{config}"
    );
    assert_eq!(config["table"]["http"][0]["hosts"], json!([VHOST]), "{config}");
    assert_eq!(config["listeners"][service_port.to_string()], "listening", "{config}");

    // A rolling restart under load: every instance is replaced, no request fails.
    let load = Load::start(service_port, http_listen.clone());
    let restart = cluster
        .http
        .post(cluster.masters[leader].url("/v2/apps/web/restart"))
        .send()
        .await
        .expect("restart");
    assert_eq!(restart.status(), 200, "{}", restart.text().await.unwrap_or_default());
    let replaced = eventually(
        Duration::from_secs(120),
        "three new instances behind the proxy, none of the old",
        || async {
            let deployments = get(&cluster, leader, "/v2/deployments").await?;
            if !deployments.as_array()?.is_empty() {
                return None;
            }
            let ready = ready_tasks(&cluster, leader).await?;
            let fresh = ready.len() == 3 && ready.iter().all(|task| !first.contains(task));
            (fresh && proxied_tasks(&http, &admin, service_port).await? == ready).then_some(ready)
        },
    )
    .await;
    let (served, failures) = load.finish().await;
    assert!(
        failures.is_empty(),
        "{} of {} requests failed during the restart: {failures:?}\nproxy log:\n{}",
        failures.len(),
        served + failures.len() as u64,
        _proxy.logs()
    );
    assert!(served > 0, "the load loops made no request");
    println!("rolling restart: {served} requests through the proxy, 0 failed");

    // A scale-down under load: the killed instances are drained, no request fails.
    let load = Load::start(service_port, http_listen.clone());
    let scale = cluster
        .http
        .put(cluster.masters[leader].url("/v2/apps/web"))
        .json(&json!({"instances": 1}))
        .send()
        .await
        .expect("scale");
    assert_eq!(scale.status(), 200, "{}", scale.text().await.unwrap_or_default());
    let left = eventually(Duration::from_secs(60), "one instance behind the proxy", || async {
        let tasks = proxied_tasks(&http, &admin, service_port).await?;
        (tasks.len() == 1 && replaced.contains(&tasks[0])).then_some(tasks)
    })
    .await;
    // The killed instances end; requests go on to the one left meanwhile.
    eventually(Duration::from_secs(30), "the scaled-away instances ended", || async {
        let service = get(&cluster, leader, "/corral/v1/services/web").await?;
        (service["service"]["instances"].as_array()?.len() == 1).then_some(())
    })
    .await;
    let (served, failures) = load.finish().await;
    assert!(
        failures.is_empty(),
        "{} of {} requests failed during the scale-down: {failures:?}\nproxy log:\n{}",
        failures.len(),
        served + failures.len() as u64,
        _proxy.logs()
    );
    assert_eq!(through_port(service_port).await.expect("served"), left[0]);
    println!("scale-down: {served} requests through the proxy, 0 failed");

    // Per-backend metrics.
    let metrics = http
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("corral_proxy_backend_connections_total{app=\"/web\""), "{metrics}");
    assert!(metrics.contains("corral_proxy_backend_requests_total{app=\"/web\""), "{metrics}");
    assert!(metrics.contains("corral_proxy_backend_bytes_total{app=\"/web\""), "{metrics}");
}

/// Requests one after another on one kept-alive connection through a service port.
struct KeptAlive {
    stream: tokio::net::TcpStream,
    buffer: Vec<u8>,
}

impl KeptAlive {
    async fn open(port: u16) -> KeptAlive {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect to the proxy");
        KeptAlive { stream, buffer: Vec::new() }
    }

    /// The task id that answered, or how the connection failed.
    async fn request(&mut self) -> Result<String, String> {
        self.stream
            .write_all(b"GET / HTTP/1.1\r\nHost: any\r\n\r\n")
            .await
            .map_err(|error| format!("write: {error}"))?;
        loop {
            if let Some(end) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buffer[..end]).into_owned();
                let length: usize = head
                    .lines()
                    .find_map(|line| {
                        let (name, value) = line.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse())
                    })
                    .ok_or(format!("no Content-Length: {head:?}"))?
                    .map_err(|error| format!("Content-Length: {error}"))?;
                if self.buffer.len() >= end + 4 + length {
                    let body = String::from_utf8_lossy(&self.buffer[end + 4..end + 4 + length])
                        .into_owned();
                    self.buffer.drain(..end + 4 + length);
                    return Ok(body);
                }
            }
            let mut chunk = [0u8; 4096];
            let read =
                self.stream.read(&mut chunk).await.map_err(|error| format!("read: {error}"))?;
            if read == 0 {
                return Err("closed".to_owned());
            }
            self.buffer.extend_from_slice(&chunk[..read]);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_instance_is_drained_for_its_apps_kill_grace_not_the_proxys_default() {
    const KILL_GRACE: f64 = 4.0;
    const DRAIN_GRACE: &str = "0.5";
    let cluster = Cluster::start(3);
    let directory = tempfile::tempdir().expect("temp dir");
    let _agent = AgentProcess::start(
        directory.path(),
        "web-host",
        &cluster.addresses(),
        &["--resources", "cpus:4;mem:2048;disk:100;ports:[33500-33599]"],
    );
    let leader = cluster.leader().await;
    eventually(Duration::from_secs(60), "the agent registered", || async {
        let state = get(&cluster, leader, "/master/state").await?;
        (state["slaves"].as_array()?.len() == 1).then_some(())
    })
    .await;

    // A server that ignores SIGTERM: it serves until the agent's SIGKILL at the end of the
    // kill grace, so the connection lives that long unless the proxy cuts it earlier.
    let graceful = "signal.signal(signal.SIGTERM, lambda *_: threading.Timer(2.0, lambda: os._exit(0)).start())";
    assert!(SERVER.contains(graceful));
    let stubborn = SERVER.replace(graceful, "signal.signal(signal.SIGTERM, signal.SIG_IGN)");
    let script = directory.path().join("server.py");
    std::fs::write(&script, stubborn).expect("write the server script");
    let python = corral_testkit::framework::python();
    let service_port = free_service_port();
    let app = json!({
        "id": "/web",
        "cmd": format!("exec {python} {}", script.display()),
        "cpus": 0.1, "mem": 64, "instances": 1,
        "portDefinitions": [{"port": service_port, "name": "http"}],
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_MODE": "tcp"},
        "taskKillGracePeriodSeconds": KILL_GRACE,
    });
    cluster.create_app(leader, &app).await;

    let admin = Cluster::free_address();
    let http_listen = Cluster::free_address();
    let proxy = ProxyProcess::start(
        directory.path(),
        &cluster.addresses(),
        &http_listen,
        &admin,
        DRAIN_GRACE,
    );
    let http = reqwest::Client::new();
    let task = eventually(Duration::from_secs(90), "the instance behind the proxy", || async {
        let ready = ready_tasks(&cluster, leader).await?;
        (ready.len() == 1 && proxied_tasks(&http, &admin, service_port).await? == ready)
            .then(|| ready[0].clone())
    })
    .await;
    let service = get(&cluster, leader, "/corral/v1/services/web").await.expect("the service");
    assert_eq!(service["service"]["instances"][0]["killGraceSeconds"], KILL_GRACE, "{service}");

    // Without a health check the instance is ready once running, maybe before it listens.
    eventually(Duration::from_secs(30), "the instance answers through the proxy", || async {
        through_port(service_port).await.ok()
    })
    .await;
    let mut connection = KeptAlive::open(service_port).await;
    let first = connection.request().await;
    assert_eq!(first.as_deref(), Ok(task.as_str()), "proxy log:\n{}", proxy.logs());
    let kill = cluster
        .http
        .delete(cluster.masters[leader].url(&format!("/v2/apps/web/tasks/{task}?scale=true")))
        .send()
        .await
        .expect("kill");
    assert_eq!(kill.status(), 200, "{}", kill.text().await.unwrap_or_default());
    let draining_seen =
        eventually(Duration::from_secs(30), "the proxy drains the instance", || async {
            let config: Value = http
                .get(format!("http://{admin}/_corral/proxy/config"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            let pool = &config["table"]["ports"][service_port.to_string()]["pool"];
            let draining = pool["draining"].as_array()?.first()?.clone();
            (draining["taskId"] == task.as_str()).then_some((Instant::now(), draining))
        })
        .await;
    let (seen_at, draining) = draining_seen;
    assert_eq!(draining["killGraceSeconds"], KILL_GRACE, "{draining}");

    // The open connection goes on past `--drain-grace`, to about the kill grace, and ends.
    let mut pace = tokio::time::interval(Duration::from_millis(100));
    let mut last_answer = seen_at;
    let ended = loop {
        pace.tick().await;
        match connection.request().await {
            Ok(answer) => {
                assert_eq!(answer, task);
                last_answer = Instant::now();
            }
            Err(error) => break error,
        }
        assert!(
            seen_at.elapsed() < Duration::from_secs(30),
            "the connection outlived the kill grace by far\nproxy log:\n{}",
            proxy.logs()
        );
    };
    let lived = last_answer - seen_at;
    assert!(
        lived >= Duration::from_secs_f64(KILL_GRACE / 2.0),
        "the connection ended ({ended}) {lived:?} into the drain, before the kill grace\nproxy log:\n{}",
        proxy.logs()
    );
}
