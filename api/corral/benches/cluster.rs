//! Load generator for a 3-master cluster on loopback, through the replicated log:
//!
//! 1. launch throughput: 1,000 simulated agents (they report RUNNING as soon as a task is
//!    theirs), one framework accepting every offer; tasks from first ACCEPT to RUNNING;
//! 2. state reads: `/master/state` and operator `GET_STATE` at 10,000 agents and 100,000
//!    running tasks;
//! 3. one real `corral agent` with the process containerizer: `sleep 600` tasks launched per
//!    second, the agent's memory per 1,000 running tasks, and the time from a SIGKILLed agent's
//!    restart to all its tasks recovered.
//!
//! 4. Marathon `/v2`: one app of 1,000 instances deployed on simulated agents (POST to the
//!    deployment's success), then `GET /v2/apps` with 1,000 apps and 10,000 tasks.
//!
//! 5. TLS and tokens (`tls`, not in the default set): the heartbeat commit latency (p50,
//!    p99) and the launch rate of 1 on a fresh cluster with plain HTTP, with mutual TLS
//!    between the masters and from the (simulated) agents, and with plain HTTP and access
//!    control enforced (a bearer token on every request), alternating,
//!    `CORRAL_BENCH_TLS_RUNS` times.
//!
//! `CORRAL_BENCH_PHASES=launch,state,agent,marathon` picks phases (all by default);
//! `CORRAL_BENCH_AGENT_TASKS` sizes the third.
//!
//! `cargo bench -p corral --bench cluster` (builds `corral` in release and runs it).
//! Sizes can be lowered for a quick look: `CORRAL_BENCH_AGENTS`, `CORRAL_BENCH_TASKS`,
//! `CORRAL_BENCH_STATE_AGENTS`, `CORRAL_BENCH_STATE_TASKS`.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use corral_mesos::recordio::decode_records;
use corral_testkit::free_port;
use futures::StreamExt;
use serde_json::{json, Value};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Masters {
    children: Vec<Child>,
    addresses: Vec<String>,
    /// What goes before an address in a URL: nothing (plain HTTP) or `https://`.
    prefix: &'static str,
    _directory: tempfile::TempDir,
}

impl Drop for Masters {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn start_masters() -> Masters {
    start_masters_of(3)
}

fn start_masters_of(count: usize) -> Masters {
    start_masters_with(count, tempfile::tempdir().expect("temp dir"), |_| Vec::new())
}

/// `count` masters, each also given `extra(index)`.
fn start_masters_with(
    count: usize,
    directory: tempfile::TempDir,
    extra: impl Fn(usize) -> Vec<String>,
) -> Masters {
    let addresses: Vec<String> = (0..count).map(|_| format!("127.0.0.1:{}", free_port())).collect();
    let peers = addresses
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{}={a}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    let children = addresses
        .iter()
        .enumerate()
        .map(|(index, address)| {
            Command::new(env!("CARGO_BIN_EXE_corral"))
                .args([
                    "master",
                    "--node-id",
                    &(index + 1).to_string(),
                    "--listen",
                    address,
                    "--peers",
                    &peers,
                ])
                .arg("--data-dir")
                .arg(directory.path().join(format!("m{index}")))
                .args(["--allocation-interval", "0.1"])
                // etcd's default: three masters, 10,000 simulated agents and the load
                // generator share two cores, where 0.3 s elected a new leader every few
                // seconds while the agents registered.
                .args(["--election-timeout", "1"])
                .args(extra(index))
                .env(
                    "RUST_LOG",
                    std::env::var("CORRAL_BENCH_MASTER_LOG").unwrap_or_else(|_| "warn".to_owned()),
                )
                .stdout(Stdio::null())
                .stderr(master_log(index))
                .spawn()
                .expect("corral master")
        })
        .collect();
    Masters { children, addresses, prefix: "", _directory: directory }
}

/// `base` is `host:port` (plain HTTP) or a prefix with its scheme (`https://host:port`).
fn url(base: &str, path: &str) -> String {
    if base.contains("://") {
        return format!("{base}{path}");
    }
    format!("http://{base}{path}")
}

async fn leader(http: &reqwest::Client, masters: &Masters) -> String {
    find_leader(http, &masters.addresses, masters.prefix).await
}

async fn find_leader(http: &reqwest::Client, addresses: &[String], prefix: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for address in addresses {
            let base = format!("{prefix}{address}");
            if let Ok(response) = http.get(url(&base, "/corral/v1/cluster")).send().await {
                if let Ok(status) = response.json::<Value>().await {
                    if status["role"] == "leader" {
                        return base;
                    }
                }
            }
        }
        assert!(Instant::now() < deadline, "no leader");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The leader as last found, and how to find it again: the load (10,000 registrations, 100,000
/// launches) can outlast a leader on two shared cores, and a phase that kept talking to the
/// old one would stall instead of measuring.
#[derive(Clone)]
struct Leader {
    addresses: Vec<String>,
    prefix: &'static str,
    current: Arc<std::sync::Mutex<String>>,
}

impl Leader {
    async fn of(http: &reqwest::Client, masters: &Masters) -> Leader {
        let current = leader(http, masters).await;
        Leader {
            addresses: masters.addresses.clone(),
            prefix: masters.prefix,
            current: Arc::new(std::sync::Mutex::new(current)),
        }
    }

    fn get(&self) -> String {
        self.current.lock().expect("no holder panics").clone()
    }

    /// Finds the leader again after `stale` stopped answering as one.
    async fn moved_from(&self, http: &reqwest::Client, stale: &str) -> String {
        if self.get() != stale {
            return self.get();
        }
        let found = find_leader(http, &self.addresses, self.prefix).await;
        if found != stale {
            eprintln!("the leader moved from {stale} to {found}");
        }
        *self.current.lock().expect("no holder panics") = found.clone();
        found
    }
}

impl std::fmt::Display for Leader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.get())
    }
}

/// An agent-facing command, sent again (same request id, so applied once) to a new leader
/// when the one asked is no longer leading.
async fn agent_command(http: &reqwest::Client, leader: &Leader, body: Value) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let asked = leader.get();
        let sent = http.post(url(&asked, "/corral/v1/agent/commands")).json(&body).send().await;
        match sent {
            // 409 is a rejected command's answer, not a refusal to take it.
            Ok(response)
                if response.status().is_success()
                    || response.status() == reqwest::StatusCode::CONFLICT =>
            {
                return response.json().await.expect("command result")
            }
            Ok(response) if Instant::now() >= deadline => {
                panic!("agent command refused: {}", response.status())
            }
            Err(error) if Instant::now() >= deadline => panic!("agent command: {error}"),
            _ => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                leader.moved_from(http, &asked).await;
            }
        }
    }
}

/// Registers `count` agents, `concurrency` at a time; returns their ids.
async fn register_agents(
    http: &reqwest::Client,
    leader: &Leader,
    count: u64,
    resources: Value,
) -> Vec<String> {
    futures::stream::iter(0..count)
        .map(|index| {
            let body = json!({"request_id": format!("register-{index}"), "command": {"RegisterAgent": {
                "info": {"hostname": format!("agent-{index:05}"), "address": format!("10.0.{}.{}:5051", index / 256, index % 256), "attributes": []},
                "resources": resources.clone()
            }}});
            async move {
                let result = agent_command(http, leader, body).await;
                result["outcome"]["Accepted"][0]["AgentAdded"]["agent_id"].as_str().expect("agent id").to_owned()
            }
        })
        .buffer_unordered(64)
        .collect()
        .await
}

fn scalar_resources(cpus: u64, mem: u64) -> Value {
    json!([
        {"name": "cpus", "reservation": "Unreserved", "value": {"Scalar": cpus * 1000}},
        {"name": "mem", "reservation": "Unreserved", "value": {"Scalar": mem * 1000}}
    ])
}

/// The next chunk of a stream, or None at its end; an error ends it too, said out loud, since a
/// phase whose stream died silently would otherwise just stall.
async fn next_chunk(
    body: &mut (impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    name: &str,
) -> Option<bytes::Bytes> {
    match body.next().await {
        Some(Ok(chunk)) => Some(chunk),
        Some(Err(error)) => {
            eprintln!("{name} failed: {error:?}");
            None
        }
        None => {
            eprintln!("{name} ended");
            None
        }
    }
}

/// Registers `agents` simulated agents of 64 CPUs and 256 GiB. They never heartbeat: on a
/// loaded machine, registering 10,000 and launching 100,000 tasks can outlast the default
/// timeout, which would mark them unreachable and their tasks lost half-way, so the timeout
/// goes to a day first.
async fn register_simulated_agents(
    http: &reqwest::Client,
    leader: &Leader,
    agents: u64,
) -> Vec<String> {
    let response = http
        .patch(url(&leader.get(), "/corral/v1/settings"))
        .json(&json!({"agent_heartbeat_timeout_seconds": 86_400}))
        .send()
        .await
        .expect("settings");
    assert!(response.status().is_success(), "settings: {}", response.status());
    register_agents(http, leader, agents, scalar_resources(64, 262_144)).await
}

/// Simulated agents: every task added to the log is reported RUNNING by its agent at once.
/// When the leader moves, the stream resumes on the new one after the last event seen.
fn spawn_agent_simulator(http: reqwest::Client, leader: Leader, running: Arc<AtomicU64>) {
    tokio::spawn(async move {
        let reports = Arc::new(tokio::sync::Semaphore::new(512));
        let mut cursor: Option<String> = None;
        loop {
            let asked = leader.get();
            let from = cursor.as_ref().map(|cursor| format!("&from={cursor}")).unwrap_or_default();
            let path = format!("/corral/v1/events?topic=task&format=ndjson{from}");
            let response = match http.get(url(&asked, &path)).timeout(STREAM_TIMEOUT).send().await {
                Ok(response) if response.status().is_success() => response,
                _ => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    leader.moved_from(&http, &asked).await;
                    continue;
                }
            };
            let mut body = response.bytes_stream();
            let mut buffer = Vec::new();
            while let Some(chunk) =
                next_chunk(&mut body, "the simulated agents' event stream").await
            {
                buffer.extend_from_slice(&chunk);
                while let Some(newline) = buffer.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = buffer.drain(..=newline).collect();
                    let Ok(value) = serde_json::from_slice::<Value>(&line) else { continue };
                    if let Some(at) = value["cursor"].as_str() {
                        cursor = Some(at.to_owned());
                    }
                    let Some(body) = status_for(&value["event"]) else { continue };
                    let permit = reports.clone().acquire_owned().await.expect("semaphore");
                    let (http, leader, running) = (http.clone(), leader.clone(), running.clone());
                    tokio::spawn(async move {
                        let running_now =
                            body["command"]["UpdateStatus"]["status"]["state"] == "Running";
                        let result = agent_command(&http, &leader, body).await;
                        if running_now && result["outcome"].get("Accepted").is_some() {
                            running.fetch_add(1, Ordering::Relaxed);
                        }
                        drop(permit);
                    });
                }
            }
            leader.moved_from(&http, &asked).await;
        }
    });
}

/// What a simulated agent reports for an event: a new task runs at once; a task asked to stop
/// (a deleted or scaled-down service) is killed at once.
fn status_for(event: &Value) -> Option<Value> {
    let (framework_id, agent_id, task_id, state) = if let Some(task) =
        event["TaskAdded"]["task"].as_object()
    {
        let info = &task["info"];
        (task["framework_id"].clone(), info["agent_id"].clone(), info["task_id"].clone(), "Running")
    } else if let Some(kill) = event["TaskKillRequested"].as_object() {
        (kill["framework_id"].clone(), kill["agent_id"].clone(), kill["task_id"].clone(), "Killed")
    } else {
        return None;
    };
    // The request id is the task's and the state's, so a report sent again after the leader
    // moved (or an event seen twice across streams) is applied once.
    let text = |id: &Value| id.as_str().or(id["value"].as_str()).unwrap_or("").to_owned();
    let request_id = format!("sim-{}-{}-{state}", text(&framework_id), text(&task_id));
    let uuid = base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::new_v4().as_bytes());
    Some(json!({"request_id": request_id, "agent_id": agent_id, "command": {"UpdateStatus": {
        "framework_id": framework_id,
        "status": {"task_id": task_id, "state": state, "message": null, "source": "Executor", "reason": null,
                   "healthy": null, "agent_id": agent_id, "executor_id": null, "timestamp": 0, "uuid": uuid, "exit_code": null}
    }}}))
}

/// A framework that accepts every offer with as many small tasks as fit, until `target`.
/// Streams that must outlive a whole phase: the client's 120 s timeout covers a whole
/// request, body included, and a loaded machine can take longer than that to launch.
const STREAM_TIMEOUT: Duration = Duration::from_secs(3600);

/// When the leader moves, it subscribes again to the new one with the framework id it was given,
/// as a Mesos scheduler driver does.
async fn run_framework(
    http: reqwest::Client,
    leader: Leader,
    target: u64,
    counts: Counts,
    first_accept: Arc<tokio::sync::OnceCell<Instant>>,
) {
    let launched = counts.launched;
    let mut framework_id = String::new();
    let accepts = Arc::new(tokio::sync::Semaphore::new(128));
    loop {
        let asked = leader.get();
        let url = url(&asked, "/api/v1/scheduler");
        let mut info = json!({"user": "bench", "name": "bench", "failover_timeout": 600.0});
        if !framework_id.is_empty() {
            info["id"] = json!({"value": framework_id});
        }
        let call = json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": info}});
        let response = match http.post(&url).json(&call).timeout(STREAM_TIMEOUT).send().await {
            Ok(response) if response.status().is_success() => response,
            _ => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                leader.moved_from(&http, &asked).await;
                continue;
            }
        };
        if !framework_id.is_empty() {
            // ACCEPTs of offers the old leader made may never have applied: count again
            // from the tasks the new leader knows (an ACCEPT still in flight may launch a few
            // more than asked). Counting from RUNNING reports, which lag far behind, launched
            // up to twice the tasks asked for.
            let known = known_tasks(&http, &asked, &framework_id).await;
            launched.store(
                known.unwrap_or_else(|| counts.running.load(Ordering::Relaxed)),
                Ordering::Relaxed,
            );
        }
        framework_id = follow_offers(
            &http,
            response,
            &url,
            target,
            &launched,
            &first_accept,
            &accepts,
            framework_id,
        )
        .await;
        leader.moved_from(&http, &asked).await;
    }
}

/// The tasks of `framework_id` in any state, as `master` counts them in its state summary.
async fn known_tasks(http: &reqwest::Client, master: &str, framework_id: &str) -> Option<u64> {
    let summary: Value =
        http.get(url(master, "/master/state-summary")).send().await.ok()?.json().await.ok()?;
    let frameworks = summary["frameworks"].as_array()?;
    let framework = frameworks.iter().find(|framework| framework["id"] == framework_id)?;
    let counts = framework.as_object()?.iter().filter(|(key, _)| key.starts_with("TASK_"));
    Some(counts.filter_map(|(_, count)| count.as_u64()).sum())
}

/// Answers the offers of one SUBSCRIBE stream until it ends; returns the framework's id.
#[allow(clippy::too_many_arguments)]
async fn follow_offers(
    http: &reqwest::Client,
    response: reqwest::Response,
    url: &str,
    target: u64,
    launched: &Arc<AtomicU64>,
    first_accept: &Arc<tokio::sync::OnceCell<Instant>>,
    accepts: &Arc<tokio::sync::Semaphore>,
    mut framework_id: String,
) -> String {
    let stream_id = response.headers()["mesos-stream-id"].to_str().expect("stream id").to_owned();
    let mut body = response.bytes_stream();
    let mut buffer = Vec::new();
    while let Some(chunk) = next_chunk(&mut body, "the framework's SUBSCRIBE stream").await {
        buffer.extend_from_slice(&chunk);
        for record in decode_records(&mut buffer).expect("RecordIO") {
            let event: Value = serde_json::from_slice(&record).expect("event");
            match event["type"].as_str() {
                Some("SUBSCRIBED") => {
                    framework_id = event["subscribed"]["framework_id"]["value"]
                        .as_str()
                        .expect("id")
                        .to_owned()
                }
                Some("OFFERS") => {
                    for offer in event["offers"]["offers"].as_array().expect("offers") {
                        let cpus: f64 = offer["resources"]
                            .as_array()
                            .expect("resources")
                            .iter()
                            .filter(|r| r["name"] == "cpus")
                            .map(|r| r["scalar"]["value"].as_f64().unwrap_or(0.0))
                            .sum();
                        let wanted = ((cpus / 0.1).floor() as u64)
                            .min(target.saturating_sub(launched.load(Ordering::Relaxed)));
                        let tasks: Vec<Value> = (0..wanted)
                            .map(|n| {
                                let id = format!("t-{}-{n}", offer["id"]["value"].as_str().unwrap_or("o"));
                                json!({"name": id, "task_id": {"value": id}, "agent_id": offer["agent_id"], "command": {"value": "sleep 600"},
                                       "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}}, {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}]})
                            })
                            .collect();
                        launched.fetch_add(tasks.len() as u64, Ordering::Relaxed);
                        let body = if tasks.is_empty() {
                            json!({"type": "DECLINE", "framework_id": {"value": framework_id}, "decline": {"offer_ids": [offer["id"]], "filters": {"refuse_seconds": 600}}})
                        } else {
                            let _ = first_accept.set(Instant::now());
                            json!({"type": "ACCEPT", "framework_id": {"value": framework_id}, "accept": {"offer_ids": [offer["id"]],
                                   "operations": [{"type": "LAUNCH", "launch": {"task_infos": tasks}}], "filters": {"refuse_seconds": 0}}})
                        };
                        let permit = accepts.clone().acquire_owned().await.expect("semaphore");
                        let http = http.clone();
                        let url = url.to_owned();
                        let stream_id = stream_id.clone();
                        tokio::spawn(async move {
                            let _ = http
                                .post(&url)
                                .header("Mesos-Stream-Id", stream_id)
                                .json(&body)
                                .send()
                                .await;
                            drop(permit);
                        });
                    }
                }
                _ => {}
            }
        }
    }
    framework_id
}

/// Tasks the framework asked for, and tasks the simulated agents reported RUNNING.
struct Counts {
    launched: Arc<AtomicU64>,
    running: Arc<AtomicU64>,
}

/// Three masters, `agents` simulated agents, one framework launching `tasks` tasks; returns
/// once all are RUNNING, with the time since the framework's first ACCEPT.
async fn launch_on_simulated_agents(
    http: &reqwest::Client,
    agents: u64,
    tasks: u64,
) -> (Masters, Leader, Duration) {
    let masters = start_masters();
    let leader = Leader::of(http, &masters).await;
    register_simulated_agents(http, &leader, agents).await;
    let elapsed = launch_on(http, &leader, tasks).await;
    (masters, leader, elapsed)
}

/// Launches `tasks` tasks on the simulated agents registered at `leader`; the time from the
/// framework's first ACCEPT to the last RUNNING.
async fn launch_on(http: &reqwest::Client, leader: &Leader, tasks: u64) -> Duration {
    let running = Arc::new(AtomicU64::new(0));
    spawn_agent_simulator(http.clone(), leader.clone(), running.clone());
    let counts = Counts { launched: Arc::new(AtomicU64::new(0)), running: running.clone() };
    let first_accept = Arc::new(tokio::sync::OnceCell::new());
    tokio::spawn(run_framework(http.clone(), leader.clone(), tasks, counts, first_accept.clone()));
    wait_until(&format!("{tasks} tasks RUNNING"), Duration::from_secs(900), || {
        running.load(Ordering::Relaxed) >= tasks
    })
    .await;
    first_accept.get().expect("an ACCEPT was sent").elapsed()
}

async fn launch_throughput(http: &reqwest::Client) {
    let agents = env_or("CORRAL_BENCH_AGENTS", 1_000);
    let target = env_or("CORRAL_BENCH_TASKS", 50_000);
    let (_masters, _, elapsed) = launch_on_simulated_agents(http, agents, target).await;
    println!(
        "launch: {target} tasks on {agents} agents, first ACCEPT to last RUNNING in {:.2} s = {:.0} tasks/s (3 masters, every command fsynced on a quorum)",
        elapsed.as_secs_f64(),
        target as f64 / elapsed.as_secs_f64()
    );
}

async fn state_reads(http: &reqwest::Client) {
    let agents = env_or("CORRAL_BENCH_STATE_AGENTS", 10_000);
    let tasks = env_or("CORRAL_BENCH_STATE_TASKS", 100_000);
    let (masters, leader, _) = launch_on_simulated_agents(http, agents, tasks).await;
    println!("CPU of each master while idle: {}", idle_cpu(&masters).await);
    let some_task: Value = http
        .get(format!("http://{leader}/master/tasks?limit=1"))
        .send()
        .await
        .expect("a task")
        .json()
        .await
        .expect("tasks json");
    let agent_id = some_task["tasks"][0]["slave_id"].as_str().expect("an agent id").to_owned();
    let idle =
        heartbeats_while(http, &leader, &agent_id, tokio::time::sleep(Duration::from_secs(3)))
            .await;
    println!("heartbeat commit latency, no reads: {idle}");
    for (name, request) in [
        ("/master/state", http.get(format!("http://{leader}/master/state"))),
        (
            "GET_STATE",
            http.post(format!("http://{leader}/api/v1")).json(&json!({"type": "GET_STATE"})),
        ),
        ("/master/tasks?limit=100", http.get(format!("http://{leader}/master/tasks?limit=100"))),
        ("/master/tasks?limit=-1", http.get(format!("http://{leader}/master/tasks?limit=-1"))),
    ] {
        let alone = time_read(request.try_clone().expect("clonable")).await;
        println!("{name}: {agents} agents, {tasks} tasks, nothing else running: {alone}");
        let reading = time_read(request);
        let mut reading = std::pin::pin!(reading);
        let mut read = None;
        let during = heartbeats_while(http, &leader, &agent_id, async {
            read = Some((&mut reading).await);
        })
        .await;
        let read = read.expect("the reads finished");
        println!("{name}: {agents} agents, {tasks} tasks, with heartbeats sent back to back: {read}; heartbeats meanwhile: {during}");
    }
    leader_timers(http, &leader).await;
    scrapes(http, &leader, agents, tasks).await;
}

/// The CPU time each master spends over `CORRAL_BENCH_IDLE_SECONDS` (3) in which nobody
/// sends it anything: what is left of the cores for a read. A longer window leaves time to
/// attach a profiler.
async fn idle_cpu(masters: &Masters) -> String {
    let seconds = env_or("CORRAL_BENCH_IDLE_SECONDS", 3);
    let ticks = |pid: u32| -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // utime and stime, fields 14 and 15, after the command name in parentheses.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        after.split_whitespace().skip(11).take(2).filter_map(|f| f.parse::<u64>().ok()).sum()
    };
    println!("the cluster is ready; idle for {seconds} s");
    let before: Vec<u64> = masters.children.iter().map(|child| ticks(child.id())).collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let used: Vec<String> = masters
        .children
        .iter()
        .zip(before)
        .map(|(child, before)| {
            format!("{}% (pid {})", (ticks(child.id()) - before) / seconds, child.id())
        })
        .collect();
    format!("{} of a core (clock ticks at 100 Hz)", used.join(", "))
}

/// The leader's own account of the big reads: how long each body took to write, and how much
/// of that it waited for the connection to take its chunks (the rest is rendering); and of
/// its allocation cycles, which run meanwhile.
async fn leader_timers(http: &reqwest::Client, leader: &Leader) {
    let metrics = http
        .get(format!("http://{leader}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    for line in metrics.lines() {
        let timed = line.starts_with("corral_http_body_write_duration_seconds_")
            || line.starts_with("corral_http_body_client_wait_seconds_")
            || line.starts_with("corral_allocator_cycle_duration_seconds_");
        if timed && (line.contains("_sum") || line.contains("_count")) {
            println!("leader: {line}");
        }
    }
}

/// A Prometheus scrape of the leader at this size, and what scraping does to writes: the
/// latency of agent heartbeats (one command each through the log) while nothing else runs,
/// and while `/metrics` is scraped back to back.
async fn scrapes(http: &reqwest::Client, leader: &Leader, agents: u64, tasks: u64) {
    for path in ["/metrics", "/metrics/snapshot"] {
        let read = time_read(http.get(format!("http://{leader}{path}"))).await;
        println!("{path}: {agents} agents, {tasks} tasks, {read}");
    }
    let body = json!({"request_id": "register-heartbeat-bench", "command": {"RegisterAgent": {
        "info": {"hostname": "heartbeat-bench", "address": "10.1.0.1:5051", "attributes": []},
        "resources": scalar_resources(1, 1024)
    }}});
    let registered = agent_command(http, leader, body).await;
    let agent_id = registered["outcome"]["Accepted"][0]["AgentAdded"]["agent_id"]
        .as_str()
        .unwrap_or_else(|| panic!("agent registered: {registered}"))
        .to_owned();
    let quiet = heartbeat_latencies(http, leader, &agent_id, "quiet").await;
    let scraper = {
        let http = http.clone();
        let url = format!("http://{leader}/metrics");
        tokio::spawn(async move {
            loop {
                let _ = http.get(&url).send().await.expect("scrape").bytes().await;
            }
        })
    };
    let scraped = heartbeat_latencies(http, leader, &agent_id, "scraped").await;
    scraper.abort();
    println!("heartbeat commands, nothing else running: {quiet}");
    println!("heartbeat commands, /metrics scraped back to back: {scraped}");
}

/// 50 heartbeats of `agent_id`, one after the other.
async fn heartbeat_latencies(
    http: &reqwest::Client,
    leader: &Leader,
    agent_id: &str,
    run: &str,
) -> Latencies {
    let mut timings = Vec::new();
    for number in 0..50 {
        let body = json!({"request_id": format!("heartbeat-{run}-{number}"),
                          "command": {"AgentHeartbeat": {"agent_id": agent_id}}});
        let started = Instant::now();
        let answer = agent_command(http, leader, body).await;
        assert!(answer["outcome"].get("Accepted").is_some(), "heartbeat: {answer}");
        timings.push(started.elapsed());
    }
    timings.sort();
    Latencies(timings)
}

/// Commit latencies of agent heartbeats: their count, median and maximum.
struct Latencies(Vec<Duration>);

impl std::fmt::Display for Latencies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut sorted = self.0.clone();
        sorted.sort();
        let millis = |d: Duration| d.as_secs_f64() * 1000.0;
        match (sorted.get(sorted.len() / 2), sorted.last()) {
            (Some(median), Some(max)) => write!(
                f,
                "{} commits, median {:.1} ms, max {:.1} ms",
                sorted.len(),
                millis(*median),
                millis(*max)
            ),
            _ => write!(f, "no commits"),
        }
    }
}

/// Heartbeats sent one after another while `until` runs: whether a read holds up applying.
async fn heartbeats_while(
    http: &reqwest::Client,
    leader: &Leader,
    agent_id: &str,
    until: impl std::future::Future<Output = ()>,
) -> Latencies {
    let mut latencies = Vec::new();
    let mut until = std::pin::pin!(until);
    let mut number = 0u64;
    loop {
        number += 1;
        let body = json!({"request_id": format!("bench-heartbeat-{}-{number}", std::process::id()),
                          "agent_id": agent_id, "command": {"AgentHeartbeat": {"agent_id": agent_id}}});
        let started = Instant::now();
        tokio::select! {
            () = &mut until => return Latencies(latencies),
            _ = agent_command(http, leader, body) => latencies.push(started.elapsed()),
        }
    }
}

/// Five reads of one request: its size, the median, fastest and slowest time to the whole
/// body, and the median time to its first byte.
struct TimedRead {
    bytes: usize,
    timings: Vec<Duration>,
    first_bytes: Vec<Duration>,
}

async fn time_read(request: reqwest::RequestBuilder) -> TimedRead {
    let mut timings = Vec::new();
    let mut first_bytes = Vec::new();
    let mut bytes = 0;
    for _ in 0..5 {
        let started = Instant::now();
        let mut response = request.try_clone().expect("clonable").send().await.expect("read");
        assert!(response.status().is_success(), "{}", response.status());
        let mut first = None;
        let mut size = 0;
        while let Some(chunk) = response.chunk().await.expect("body") {
            first.get_or_insert_with(|| started.elapsed());
            size += chunk.len();
        }
        timings.push(started.elapsed());
        first_bytes.push(first.expect("a body"));
        bytes = size;
    }
    timings.sort();
    first_bytes.sort();
    TimedRead { bytes, timings, first_bytes }
}

impl std::fmt::Display for TimedRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let millis = |d: Duration| d.as_secs_f64() * 1000.0;
        write!(
            f,
            "{:.1} MiB: median {:.0} ms, min {:.0} ms, max {:.0} ms, first byte median {:.1} ms",
            self.bytes as f64 / 1048576.0,
            millis(self.timings[2]),
            millis(self.timings[0]),
            millis(self.timings[4]),
            millis(self.first_bytes[2]),
        )
    }
}

async fn wait_for_no_deployments(http: &reqwest::Client, leader: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let deployments: Value = http
            .get(format!("http://{leader}/v2/deployments"))
            .send()
            .await
            .expect("deployments")
            .json()
            .await
            .expect("deployments json");
        if deployments.as_array().is_some_and(Vec::is_empty) {
            return;
        }
        assert!(Instant::now() < deadline, "deployments still running: {deployments}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn bench_app(id: &str, instances: u64) -> Value {
    // No ports: the simulated agents offer only cpus and mem.
    json!({"id": id, "cmd": "sleep 600", "cpus": 0.01, "mem": 1, "instances": instances,
           "portDefinitions": []})
}

async fn marathon(http: &reqwest::Client) {
    let agents = env_or("CORRAL_BENCH_MARATHON_AGENTS", 100);
    let instances = env_or("CORRAL_BENCH_MARATHON_INSTANCES", 1_000);
    let apps = env_or("CORRAL_BENCH_MARATHON_APPS", 1_000);
    let per_app = env_or("CORRAL_BENCH_MARATHON_APP_INSTANCES", 10);
    let masters = start_masters();
    let leader = Leader::of(http, &masters).await;
    register_simulated_agents(http, &leader, agents).await;
    let running = Arc::new(AtomicU64::new(0));
    spawn_agent_simulator(http.clone(), leader.clone(), running.clone());

    let started = Instant::now();
    let response = http
        .post(format!("http://{leader}/v2/apps"))
        .json(&bench_app("/bench/big", instances))
        .send()
        .await
        .expect("create");
    assert_eq!(response.status().as_u16(), 201, "{}", response.text().await.unwrap_or_default());
    wait_for_no_deployments(http, &leader.get(), Duration::from_secs(600)).await;
    let deployed = started.elapsed();
    println!(
        "marathon deploy: 1 app of {instances} instances on {agents} simulated agents, POST to deployment success in {:.2} s = {:.0} instances/s",
        deployed.as_secs_f64(),
        instances as f64 / deployed.as_secs_f64()
    );
    let response = http
        .delete(format!("http://{leader}/v2/apps/bench/big?force=true"))
        .send()
        .await
        .expect("delete");
    assert!(response.status().is_success(), "{}", response.status());
    wait_for_no_deployments(http, &leader.get(), Duration::from_secs(600)).await;

    let leader_address = leader.get();
    let started = Instant::now();
    futures::stream::iter(0..apps)
        .map(|index| {
            let body = bench_app(&format!("/bench/app-{index:04}"), per_app);
            let leader = leader_address.clone();
            async move {
                let response = http
                    .post(format!("http://{leader}/v2/apps"))
                    .json(&body)
                    .send()
                    .await
                    .expect("create");
                assert_eq!(response.status().as_u16(), 201);
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
    wait_for_no_deployments(http, &leader.get(), Duration::from_secs(900)).await;
    let deployed = started.elapsed();
    println!(
        "marathon deploy: {apps} apps of {per_app} instances (32 POSTs in flight), first POST to the last deployment's success in {:.2} s = {:.0} instances/s",
        deployed.as_secs_f64(),
        (apps * per_app) as f64 / deployed.as_secs_f64()
    );
    for (name, path) in [
        ("GET /v2/apps", "/v2/apps"),
        ("GET /v2/apps?embed=apps.tasks", "/v2/apps?embed=apps.tasks&embed=apps.counts"),
        ("GET /v2/tasks", "/v2/tasks"),
    ] {
        let read = time_read(http.get(format!("http://{leader}{path}"))).await;
        println!("{name}: {apps} apps, {} tasks, {read}", apps * per_app);
    }
    drop(masters);
}

fn spawn_agent(master: &str, work_dir: &std::path::Path, resources: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_corral"))
        .args(["agent", "--master", master, "--listen", "127.0.0.1:5051", "--resources", resources])
        .args(["--hostname", "bench-agent"])
        .arg("--work-dir")
        .arg(work_dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("corral agent")
}

/// Masters log to `CORRAL_BENCH_LOG_DIR/master-N.log` when it is set, for looking into a run.
fn master_log(index: usize) -> Stdio {
    let Ok(directory) = std::env::var("CORRAL_BENCH_LOG_DIR") else { return Stdio::null() };
    match std::fs::File::create(format!("{directory}/master-{index}.log")) {
        Ok(file) => Stdio::from(file),
        Err(_) => Stdio::null(),
    }
}

fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Counts RUNNING updates and agent re-registrations on the master's native stream.
fn count_events(
    http: reqwest::Client,
    master: String,
    running: Arc<AtomicU64>,
    reregistered: Arc<AtomicU64>,
) {
    tokio::spawn(async move {
        let url = format!("http://{master}/corral/v1/events?topic=task,agent&format=ndjson");
        let response = http.get(url).send().await.expect("events");
        let mut body = response.bytes_stream();
        let mut buffer = Vec::new();
        while let Some(chunk) = next_chunk(&mut body, "the event counter's stream").await {
            buffer.extend_from_slice(&chunk);
            while let Some(newline) = buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=newline).collect();
                let Ok(value) = serde_json::from_slice::<Value>(&line) else { continue };
                if value["event"]["TaskUpdated"]["status"]["state"] == "Running" {
                    running.fetch_add(1, Ordering::Relaxed);
                }
                if value["kind"] == "agent_reregistered" {
                    reregistered.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
}

async fn wait_until(what: &str, timeout: Duration, done: impl Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn one_agent(http: &reqwest::Client) {
    let tasks = env_or("CORRAL_BENCH_AGENT_TASKS", 1_000);
    let masters = start_masters_of(1);
    let leader = Leader::of(http, &masters).await;
    let work_dir = masters._directory.path().join("agent");
    let cpus = (tasks as f64 * 0.1).ceil() as u64 + 1;
    let resources = format!("cpus:{cpus};mem:{};disk:10000;ports:[31000-32000]", tasks * 32 + 1024);
    let mut agent = spawn_agent(&leader.get(), &work_dir, &resources);
    let running = Arc::new(AtomicU64::new(0));
    let reregistered = Arc::new(AtomicU64::new(0));
    count_events(http.clone(), leader.get(), running.clone(), reregistered.clone());
    wait_until("the agent to register", Duration::from_secs(60), || {
        std::fs::read_dir(work_dir.join("meta")).map(|mut d| d.next().is_some()).unwrap_or(false)
    })
    .await;
    let idle_kib = resident_kib(agent.id());
    let counts = Counts { launched: Arc::new(AtomicU64::new(0)), running: running.clone() };
    let first_accept = Arc::new(tokio::sync::OnceCell::new());
    tokio::spawn(run_framework(http.clone(), leader.clone(), tasks, counts, first_accept.clone()));
    wait_until("every task RUNNING", Duration::from_secs(600), || {
        running.load(Ordering::Relaxed) >= tasks
    })
    .await;
    let elapsed = first_accept.get().expect("an ACCEPT was sent").elapsed();
    let busy_kib = resident_kib(agent.id());
    println!(
        "agent: {tasks} `sleep 600` tasks on one agent (process containerizer), first ACCEPT to last RUNNING in {:.2} s = {:.0} launches/s",
        elapsed.as_secs_f64(),
        tasks as f64 / elapsed.as_secs_f64()
    );
    println!(
        "agent: resident memory {:.1} MiB idle, {:.1} MiB with {tasks} tasks = {:.1} MiB per 1,000 running tasks",
        idle_kib as f64 / 1024.0,
        busy_kib as f64 / 1024.0,
        busy_kib.saturating_sub(idle_kib) as f64 / 1024.0 * 1000.0 / tasks as f64
    );
    let _ = agent.kill();
    let _ = agent.wait();
    let restarted = Instant::now();
    let mut agent = spawn_agent(&leader.get(), &work_dir, &resources);
    wait_until(
        "the restarted agent to re-register with its tasks",
        Duration::from_secs(300),
        || reregistered.load(Ordering::Relaxed) >= 1,
    )
    .await;
    println!(
        "agent: SIGKILLed and restarted with {tasks} running tasks, recovered and re-registered in {:.2} s",
        restarted.elapsed().as_secs_f64()
    );
    // The tasks outlive the agent by design: tear the framework down so the agent kills them
    // (and cleans up after them), then stop the agent.
    let teardown =
        json!({"type": "TEARDOWN", "teardown": {"framework_id": {"value": "corral-0001"}}});
    let _ = http.post(format!("http://{leader}/api/v1")).json(&teardown).send().await;
    let sleeping = || {
        Command::new("pgrep")
            .args(["-f", "^sleep 600$"])
            .output()
            .map(|o| !o.stdout.is_empty())
            .unwrap_or(false)
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while sleeping() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = agent.kill();
    let _ = agent.wait();
    let _ = Command::new("pkill").args(["-KILL", "-f", "^sleep 600$"]).status();
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; this is not a criterion harness, so it is ignored.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .timeout(Duration::from_secs(120))
        .build()
        .expect("client");
    let phases = std::env::var("CORRAL_BENCH_PHASES")
        .unwrap_or_else(|_| "launch,state,agent,marathon".to_owned());
    if phases.contains("launch") {
        launch_throughput(&http).await;
    }
    if phases.contains("state") {
        state_reads(&http).await;
    }
    if phases.contains("agent") {
        one_agent(&http).await;
    }
    if phases.contains("marathon") {
        marathon(&http).await;
    }
    if phases.contains("tls") {
        tls_cost().await;
    }
}

/// Three masters with mutual TLS (certificates from `corral certs`), and a client that
/// trusts their CA and presents an agent's certificate (the agent-facing API needs one).
fn start_tls_masters() -> (Masters, reqwest::Client) {
    let directory = tempfile::tempdir().expect("temp dir");
    let certs = directory.path().join("certs");
    let status = Command::new(env!("CARGO_BIN_EXE_corral"))
        .args(["certs", "--cluster", "corral", "--masters", "3", "--agents", "1", "--out"])
        .arg(&certs)
        .stdout(Stdio::null())
        .status()
        .expect("corral certs");
    assert!(status.success(), "corral certs failed");
    let file = |name: &str| certs.join(name).display().to_string();
    let mut masters = start_masters_with(3, directory, |index| {
        let node = index + 1;
        vec![
            "--tls-cert".to_owned(),
            file(&format!("master-{node}.pem")),
            "--tls-key".to_owned(),
            file(&format!("master-{node}-key.pem")),
            "--tls-ca".to_owned(),
            file("ca.pem"),
        ]
    });
    masters.prefix = "https://";
    let ca = std::fs::read(certs.join("ca.pem")).expect("ca.pem");
    let mut identity = std::fs::read(certs.join("agent-1.pem")).expect("agent-1.pem");
    identity.extend(std::fs::read(certs.join("agent-1-key.pem")).expect("agent-1-key.pem"));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .timeout(Duration::from_secs(120))
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA"))
        .identity(reqwest::Identity::from_pem(&identity).expect("identity"))
        .build()
        .expect("client");
    (masters, http)
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index]
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// What the `tls` phase compares: plain HTTP, mutual TLS, and plain HTTP with access control
/// enforced (every request carries a bearer token, checked at the API and again at apply).
const MODES: [&str; 3] = ["plain", "mutual TLS", "tokens"];

fn plain_client(token: Option<&str>) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = token {
        let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
            .expect("a token is a valid header value");
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .timeout(Duration::from_secs(120))
        .default_headers(headers)
        .build()
        .expect("client")
}

/// Bootstraps access control and enforces it; returns the management token.
async fn enforce_access_control(http: &reqwest::Client, leader: &str) -> String {
    let answer: Value = http
        .post(url(leader, "/corral/v1/acl/bootstrap"))
        .send()
        .await
        .expect("bootstrap")
        .json()
        .await
        .expect("bootstrap answer");
    let token = answer["token"].as_str().expect("a management token").to_owned();
    let enforced = http
        .put(url(leader, "/corral/v1/acl/mode"))
        .bearer_auth(&token)
        .json(&json!({"mode": "enforce"}))
        .send()
        .await
        .expect("mode");
    assert!(enforced.status().is_success(), "enforce: {}", enforced.status());
    token
}

/// Plain HTTP, mutual TLS and tokens on fresh clusters, alternating so that the machine's
/// load falls on each alike.
async fn tls_cost() {
    let runs = env_or("CORRAL_BENCH_TLS_RUNS", 3);
    let agents = env_or("CORRAL_BENCH_TLS_AGENTS", 100);
    let tasks = env_or("CORRAL_BENCH_TLS_TASKS", 20_000);
    let heartbeats = env_or("CORRAL_BENCH_TLS_COMMITS", 300);
    let mut results: Vec<(&str, f64, f64, f64)> = Vec::new();
    for run in 1..=runs {
        for mode in MODES {
            let (masters, http) = match mode {
                "plain" | "tokens" => (start_masters(), plain_client(None)),
                _ => start_tls_masters(),
            };
            let mut leader = Leader::of(&http, &masters).await;
            let http = match mode {
                "tokens" => {
                    let token = enforce_access_control(&http, &leader.get()).await;
                    // The mode change may have moved nothing, but read the leader again
                    // with the token's client to be sure every call carries it.
                    let http = plain_client(Some(&token));
                    leader = Leader::of(&http, &masters).await;
                    http
                }
                _ => http,
            };
            let agent_ids = register_simulated_agents(&http, &leader, agents).await;
            // One command at a time on a kept-alive connection: what each commit costs.
            let mut timings = Vec::new();
            for number in 0..heartbeats {
                let body = json!({"request_id": format!("tls-heartbeat-{run}-{number}"), "agent_id": agent_ids[0],
                                  "command": {"AgentHeartbeat": {"agent_id": agent_ids[0]}}});
                let started = Instant::now();
                let answer = agent_command(&http, &leader, body).await;
                assert!(answer["outcome"].get("Accepted").is_some(), "heartbeat: {answer}");
                timings.push(started.elapsed());
            }
            timings.sort();
            let millis = |d: Duration| d.as_secs_f64() * 1000.0;
            let (p50, p99) =
                (millis(percentile(&timings, 0.5)), millis(percentile(&timings, 0.99)));
            let elapsed = launch_on(&http, &leader, tasks).await;
            let rate = tasks as f64 / elapsed.as_secs_f64();
            println!(
                "tls: run {run} {mode}: {heartbeats} heartbeat commits one at a time p50 {p50:.2} ms p99 {p99:.2} ms; {tasks} tasks on {agents} agents in {:.2} s = {rate:.0} tasks/s",
                elapsed.as_secs_f64()
            );
            results.push((mode, p50, p99, rate));
            drop(masters);
        }
    }
    for mode in MODES {
        let of = |pick: fn(&(&str, f64, f64, f64)) -> f64| {
            median(results.iter().filter(|r| r.0 == mode).map(pick).collect())
        };
        println!(
            "tls: {mode}, median of {runs} runs: commit p50 {:.2} ms, p99 {:.2} ms; launch {:.0} tasks/s",
            of(|r| r.1),
            of(|r| r.2),
            of(|r| r.3)
        );
    }
}
