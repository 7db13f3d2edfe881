//! Three `corral master` processes on loopback, a minimal in-test agent, and real clients:
//! the unmodified pymesos library, raw Mesos v1 HTTP, and the native event stream.

use std::collections::BTreeSet;
use std::time::Duration;

use corral_mesos::recordio::decode_records;
use futures::StreamExt;
use serde_json::{json, Value};

use corral_testkit::agent::{send_command, TestAgent};
use corral_testkit::agent_process::AgentProcess;
use corral_testkit::cluster::Cluster;
use corral_testkit::eventually;
use corral_testkit::framework::Framework;

const LONG: Duration = Duration::from_secs(60);

fn blocking<T>(work: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(work)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pymesos_framework_runs_tasks_and_survives_a_leader_failover() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.leader().await;
    // The real agent: the tasks are real processes that must outlive the master failover.
    let directory = tempfile::tempdir().expect("temp dir");
    let mut agent = AgentProcess::start(
        directory.path(),
        "agent-1",
        &cluster.addresses(),
        &["--resources=cpus:4;mem:4096;ports:[31000-32000]"],
    );

    // Pointed at a follower, the framework follows the 307 to the leader.
    let follower = cluster.follower_of(leader);
    let mut framework = Framework::start(&cluster.masters[follower].address, 3, &["--hold-acks"]);
    let mut held = BTreeSet::new();
    blocking(|| {
        framework.wait_for(LONG, "registration", |e| e["kind"] == "registered");
        // Every update (STARTING, then RUNNING) is held unacknowledged until all three tasks
        // are RUNNING.
        let mut running = BTreeSet::new();
        while running.len() < 3 {
            let held_ack =
                framework.wait_for(LONG, "three RUNNING updates", |e| e["kind"] == "held_ack");
            held.insert(held_ack["uuid"].as_str().expect("uuid").to_owned());
            let update = framework
                .seen
                .iter()
                .rev()
                .find(|e| e["kind"] == "update" && e["uuid"] == held_ack["uuid"])
                .cloned()
                .expect("the update before its held acknowledgement");
            if update["state"] == "TASK_RUNNING" {
                running.insert(update["task_id"].as_str().expect("task id").to_owned());
            }
        }
    });

    cluster.masters[leader].kill();
    let new_leader = cluster.leader().await;
    assert_ne!(new_leader, leader);
    // The framework keeps dialling the address it was redirected to; bring that master back
    // (as a follower now) so it can redirect again.
    cluster.masters[leader].restart();

    blocking(|| {
        framework
            .wait_for(LONG, "re-registration with the new leader", |e| e["kind"] == "reregistered");
        let mut redelivered = BTreeSet::new();
        while redelivered.len() < held.len() {
            let acknowledged =
                framework.wait_for(LONG, "the held updates again", |e| e["kind"] == "acknowledged");
            let uuid = acknowledged["uuid"].as_str().expect("uuid").to_owned();
            assert!(held.contains(&uuid), "acknowledged an update that was never held: {uuid}");
            redelivered.insert(uuid);
        }
        framework.wait_for(LONG, "offers from the new leader", |e| e["kind"] == "offer");
        framework.tell("reconcile");
        let mut reconciled = BTreeSet::new();
        while reconciled.len() < 3 {
            let update = framework.wait_for(LONG, "reconciliation answers", |e| {
                e["kind"] == "update" && e["reason"] == "REASON_RECONCILIATION"
            });
            assert_eq!(update["state"], "TASK_RUNNING", "{update}");
            assert_eq!(update["uuid"], Value::Null);
            reconciled.insert(update["task_id"].as_str().expect("task id").to_owned());
        }
    });

    let state: Value = eventually(LONG, "the leader's view of the tasks", || async {
        let url = cluster.masters[new_leader].url("/master/state");
        let state: Value = cluster.http.get(url).send().await.ok()?.json().await.ok()?;
        let tasks = state["frameworks"][0]["tasks"].as_array()?;
        (tasks.len() == 3).then_some(state)
    })
    .await;
    for task in state["frameworks"][0]["tasks"].as_array().expect("tasks") {
        assert_eq!(task["state"], "TASK_RUNNING");
    }
    assert_eq!(state["frameworks"][0]["connected"], true);
    // The tasks kept running as processes through the failover.
    let running = std::process::Command::new("pgrep")
        .args(["-f", "corral-pymesos-test"])
        .output()
        .expect("pgrep");
    assert!(!running.stdout.is_empty(), "the tasks' processes are alive");

    // Stopping the framework tears it down; the agent kills its tasks.
    blocking(|| framework.tell("stop"));
    eventually(LONG, "the agent to kill the framework's tasks", || async {
        let running = std::process::Command::new("pgrep")
            .args(["-f", "corral-pymesos-test"])
            .output()
            .ok()?;
        running.stdout.is_empty().then_some(())
    })
    .await;
    agent.kill();
}

/// A RecordIO stream (scheduler or operator) read with raw HTTP, one event at a time.
struct RecordStream {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: Vec<u8>,
    ready: std::collections::VecDeque<Value>,
}

impl RecordStream {
    fn new(response: reqwest::Response) -> RecordStream {
        RecordStream {
            body: response.bytes_stream().boxed(),
            buffer: Vec::new(),
            ready: Default::default(),
        }
    }

    /// The next event `wanted` accepts; events before it are skipped.
    async fn next_event(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + LONG;
        loop {
            while let Some(event) = self.ready.pop_front() {
                if wanted(&event) {
                    return event;
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .expect("event in time")
                .expect("stream open")
                .expect("chunk");
            self.buffer.extend_from_slice(&chunk);
            for record in decode_records(&mut self.buffer).expect("RecordIO") {
                self.ready.push_back(serde_json::from_slice(&record).expect("JSON event"));
            }
        }
    }
}

/// A framework's scheduler stream, subscribed with the raw HTTP API.
struct RawStream {
    events: RecordStream,
    pub stream_id: String,
    pub framework_id: String,
}

impl RawStream {
    async fn subscribe(http: &reqwest::Client, url: &str, name: &str) -> RawStream {
        let call = json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": {
            "user": "root", "name": name, "failover_timeout": 60.0, "capabilities": [{"type": "PARTITION_AWARE"}]
        }}});
        let response = http.post(url).json(&call).send().await.expect("subscribe");
        assert_eq!(response.status(), 200);
        let stream_id =
            response.headers()["mesos-stream-id"].to_str().expect("stream id").to_owned();
        let mut events = RecordStream::new(response);
        let subscribed = events.next_event(|e| e["type"] == "SUBSCRIBED").await;
        let framework_id =
            subscribed["subscribed"]["framework_id"]["value"].as_str().expect("id").to_owned();
        RawStream { events, stream_id, framework_id }
    }

    async fn next_event(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        self.events.next_event(wanted).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_scheduler_calls_get_mesos_answers_and_change_nothing() {
    let cluster = Cluster::start(1);
    cluster.leader().await;
    let url = cluster.masters[0].url("/api/v1/scheduler");
    let http = &cluster.http;

    let response = http.post(&url).body("{not json").send().await.unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["field"], "body");

    let mut first = RawStream::subscribe(http, &url, "first").await;
    TestAgent::start(http.clone(), cluster.addresses(), "agent-1", "cpus:2;mem:1024").await;
    let offers = first.next_event(|e| e["type"] == "OFFERS").await;
    let offer = offers["offers"]["offers"][0].clone();
    let framework = json!({"value": first.framework_id});

    // No Mesos-Stream-Id.
    let decline = json!({"type": "DECLINE", "framework_id": framework, "decline": {"offer_ids": [offer["id"]]}});
    let response = http.post(&url).json(&decline).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["field"], "Mesos-Stream-Id");

    let task = |id: &str, cpus: f64| {
        json!({"name": id, "task_id": {"value": id}, "agent_id": offer["agent_id"], "command": {"value": "sleep 60"},
               "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}}, {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}]})
    };
    let accept = |offer_id: Value, tasks: Vec<Value>| {
        json!({"type": "ACCEPT", "framework_id": framework, "accept": {
            "offer_ids": [offer_id], "operations": [{"type": "LAUNCH", "launch": {"task_infos": tasks}}], "filters": {"refuse_seconds": 0}
        }})
    };
    let post = |body: Value, stream_id: String| {
        let http = http.clone();
        let url = url.clone();
        async move {
            http.post(&url).header("Mesos-Stream-Id", stream_id).json(&body).send().await.unwrap()
        }
    };

    // An unknown offer: accepted as Mesos does, and the task is reported TASK_DROPPED.
    let response = post(
        accept(json!({"value": "corral-O999"}), vec![task("ghost", 0.1)]),
        first.stream_id.clone(),
    )
    .await;
    assert_eq!(response.status(), 202);
    assert!(response.headers()["corral-rejected"]
        .to_str()
        .unwrap()
        .contains("unknown offer corral-O999"));
    let dropped = first
        .next_event(|e| {
            e["type"] == "UPDATE" && e["update"]["status"]["task_id"]["value"] == "ghost"
        })
        .await;
    assert_eq!(dropped["update"]["status"]["state"], "TASK_DROPPED");
    assert_eq!(dropped["update"]["status"]["reason"], "REASON_INVALID_OFFERS");

    // A launch bigger than the offer: TASK_ERROR, and the agent's resources are untouched.
    let response =
        post(accept(offer["id"].clone(), vec![task("too-big", 64.0)]), first.stream_id.clone())
            .await;
    assert_eq!(response.status(), 202);
    let error = first
        .next_event(|e| {
            e["type"] == "UPDATE" && e["update"]["status"]["task_id"]["value"] == "too-big"
        })
        .await;
    assert_eq!(error["update"]["status"]["state"], "TASK_ERROR");
    assert!(
        error["update"]["status"]["message"].as_str().unwrap().contains("not enough cpus"),
        "{error}"
    );

    // A second framework cannot act for the first, nor kill its tasks.
    let second = RawStream::subscribe(http, &url, "second").await;
    let offers = first.next_event(|e| e["type"] == "OFFERS").await;
    let response = post(
        accept(offers["offers"]["offers"][0]["id"].clone(), vec![task("real", 0.5)]),
        first.stream_id.clone(),
    )
    .await;
    assert_eq!(response.status(), 202);
    first
        .next_event(|e| e["type"] == "UPDATE" && e["update"]["status"]["state"] == "TASK_RUNNING")
        .await;

    let kill = |framework_id: &str| json!({"type": "KILL", "framework_id": {"value": framework_id}, "kill": {"task_id": {"value": "real"}}});
    let response = post(kill(&first.framework_id), second.stream_id.clone()).await;
    assert_eq!(
        response.status(),
        400,
        "the second framework's stream id with the first's framework id"
    );
    let response = post(kill(&second.framework_id), second.stream_id.clone()).await;
    assert_eq!(response.status(), 202);
    assert!(response.headers()["corral-rejected"].to_str().unwrap().contains("unknown task real"));

    let state: Value = http
        .get(cluster.masters[0].url("/master/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let first_framework =
        state["frameworks"].as_array().unwrap().iter().find(|f| f["name"] == "first").unwrap();
    let tasks: Vec<(&str, &str)> = first_framework["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["id"].as_str().unwrap(), t["state"].as_str().unwrap()))
        .collect();
    assert_eq!(tasks, vec![("real", "TASK_RUNNING")]);
    assert_eq!(state["slaves"][0]["used_resources"]["cpus"], 0.5);
}

/// Reads NDJSON events from `url` until one with cursor `until`; returns (cursor, kind) pairs.
async fn read_events(url: &str, until: &str) -> Vec<(String, String)> {
    let response = reqwest::get(url).await.expect("events");
    assert_eq!(response.status(), 200, "{url}");
    let mut body = response.bytes_stream();
    let mut buffer = Vec::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        while let Some(newline) = buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=newline).collect();
            let value: Value = serde_json::from_slice(&line).expect("NDJSON");
            let cursor = value["cursor"].as_str().expect("cursor").to_owned();
            events.push((cursor.clone(), value["kind"].as_str().unwrap_or_default().to_owned()));
            if cursor == until {
                return events;
            }
        }
        let chunk = tokio::time::timeout_at(deadline, body.next())
            .await
            .expect("events in time")
            .expect("open")
            .expect("chunk");
        buffer.extend_from_slice(&chunk);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn event_streams_resume_on_another_master_without_gap_or_duplicate() {
    let cluster = Cluster::start(3);
    cluster.leader().await;
    let masters = cluster.addresses();
    let register = |name: String| {
        let http = cluster.http.clone();
        let masters = masters.clone();
        async move {
            let command = json!({"RegisterAgent": {"info": {"hostname": name, "address": "127.0.0.1:1", "attributes": []},
                                  "resources": [{"name": "cpus", "reservation": "Unreserved", "value": {"Scalar": 1000}}]}});
            let result =
                send_command(&http, &masters, &json!({"request_id": name, "command": command}))
                    .await;
            result["first_event"].as_str().expect("cursor").to_owned()
        }
    };
    let mut middle = String::new();
    for index in 0..5 {
        middle = register(format!("early-{index}")).await;
    }
    let mut last = String::new();
    for index in 0..5 {
        last = register(format!("late-{index}")).await;
    }

    let events_url = |master: &str, from: &str| {
        format!("http://{master}/corral/v1/events?format=ndjson&topic=agent&from={from}")
    };
    let before = read_events(&events_url(&masters[0], "0-0"), &middle).await;
    let after = read_events(&events_url(&masters[1], &middle), &last).await;
    let whole = read_events(&events_url(&masters[2], "0-0"), &last).await;
    let joined: Vec<_> = before.iter().chain(after.iter()).cloned().collect();
    assert_eq!(joined, whole, "resuming on another master must give exactly the missed events");
    assert_eq!(whole.iter().filter(|(_, kind)| kind == "agent_added").count(), 10);

    // Server-Sent Events resume from Last-Event-ID, as EventSource does.
    let response = cluster
        .http
        .get(format!("http://{}/corral/v1/events?topic=agent", masters[2]))
        .header("Accept", "text/event-stream")
        .header("Last-Event-ID", &middle)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.bytes_stream();
    let first = tokio::time::timeout(LONG, body.next()).await.unwrap().unwrap().unwrap();
    let text = String::from_utf8_lossy(&first);
    assert!(text.starts_with(&format!("id: {}\n", after[0].0)), "{text}");

    let bad = cluster
        .http
        .get(format!("http://{}/corral/v1/events?from=yesterday", masters[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operators_read_state_subscribe_scrape_metrics_and_ask_why() {
    let cluster = Cluster::start(1);
    cluster.leader().await;
    let http = &cluster.http;
    let operator = cluster.masters[0].url("/api/v1");

    // An operator stream sees the agent arrive after its SUBSCRIBED snapshot.
    let response = http.post(&operator).json(&json!({"type": "SUBSCRIBE"})).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut operator_stream = RecordStream::new(response);
    let subscribed = operator_stream.next_event(|_| true).await;
    assert_eq!(subscribed["type"], "SUBSCRIBED");
    assert!(subscribed["subscribed"]["get_state"]["get_agents"]["agents"]
        .as_array()
        .unwrap()
        .is_empty());
    let agent =
        TestAgent::start(http.clone(), cluster.addresses(), "agent-1", "cpus:2;mem:1024").await;
    let added = operator_stream.next_event(|e| e["type"] != "HEARTBEAT").await;
    assert_eq!(added["type"], "AGENT_ADDED");
    assert_eq!(added["agent_added"]["agent"]["agent_info"]["id"]["value"], agent.agent_id.as_str());

    let response = http.post(&operator).json(&json!({"type": "GET_STATE"})).send().await.unwrap();
    let state: Value = response.json().await.unwrap();
    assert_eq!(state["get_state"]["get_agents"]["agents"][0]["agent_info"]["hostname"], "agent-1");
    let response = http
        .post(&operator)
        .json(&json!({"type": "UPDATE_WEIGHTS", "update_weights": {"weight_infos": [{"role": "eng", "weight": 0}]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = http
        .post(&operator)
        .json(&json!({"type": "DEACTIVATE_AGENT", "deactivate_agent": {"agent_id": {"value": "nobody"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.json::<Value>().await.unwrap()["message"], "unknown agent nobody");

    // The allocator explains a framework it has seen.
    let mut framework =
        RawStream::subscribe(http, &cluster.masters[0].url("/api/v1/scheduler"), "curious").await;
    framework.next_event(|e| e["type"] == "OFFERS").await;
    let explanation: Value = eventually(LONG, "an explanation", || async {
        let url = cluster.masters[0]
            .url(&format!("/corral/v1/allocation/explain?framework_id={}", framework.framework_id));
        let response = http.get(url).send().await.ok()?;
        (response.status() == 200).then_some(())?;
        response.json().await.ok()
    })
    .await;
    assert!(explanation.is_object(), "{explanation}");
    let missing =
        http.get(cluster.masters[0].url("/corral/v1/allocation/explain")).send().await.unwrap();
    assert_eq!(missing.status(), 400);

    // A real scrape passes promtool.
    let text =
        http.get(cluster.masters[0].url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("corral_raft_is_leader 1"), "{text}");
    let flushes: f64 = text
        .lines()
        .find_map(|line| line.strip_prefix("corral_raft_flush_duration_seconds_count "))
        .and_then(|value| value.trim().parse().ok())
        .expect("flush latency is exported");
    assert!(flushes > 0.0, "every append is fsynced and timed");
    assert!(text.contains("corral_agents{state=\"active\"} 1"));
    assert!(text
        .contains("corral_http_requests_total{method=\"POST\",route=\"/api/v1\",status=\"200\"}"));
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is installed by ./scripts/test.sh");
    std::io::Write::write_all(&mut promtool.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let output = promtool.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cursor_older_than_the_journal_gets_410_naming_the_oldest() {
    let cluster = Cluster::start_with(1, &["--journal-max-entries", "5"]);
    cluster.leader().await;
    let masters = cluster.addresses();
    for index in 0..30 {
        let command = json!({"RegisterAgent": {"info": {"hostname": format!("h{index}"), "address": "127.0.0.1:1", "attributes": []},
                              "resources": [{"name": "cpus", "reservation": "Unreserved", "value": {"Scalar": 1000}}]}});
        send_command(
            &cluster.http,
            &masters,
            &json!({"request_id": format!("r{index}"), "command": command}),
        )
        .await;
    }
    let gone: Value = eventually(LONG, "the journal to drop old entries", || async {
        let response = cluster
            .http
            .get(format!("http://{}/corral/v1/events?from=0-0", masters[0]))
            .send()
            .await
            .ok()?;
        (response.status() == 410).then_some(())?;
        response.json().await.ok()
    })
    .await;
    assert_eq!(gone["error"], "gone");
    let oldest = gone["oldest"].as_str().expect("oldest cursor");
    assert!(gone["message"].as_str().unwrap().contains(oldest));
    let resumed = cluster
        .http
        .get(format!("http://{}/corral/v1/events?from={oldest}&format=ndjson", masters[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), 200, "resuming from the oldest retained cursor works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopped_masters_journal_replays_to_the_state_it_had() {
    let mut cluster = Cluster::start(1);
    cluster.leader().await;
    let masters = cluster.addresses();
    let mut cursors = Vec::new();
    for index in 0..5 {
        let command = json!({"RegisterAgent": {"info": {"hostname": format!("h{index}"), "address": "127.0.0.1:1", "attributes": []},
                              "resources": [{"name": "cpus", "reservation": "Unreserved", "value": {"Scalar": 1000}}]}});
        let result = send_command(
            &cluster.http,
            &masters,
            &json!({"request_id": format!("r{index}"), "command": command}),
        )
        .await;
        cursors.push(result["first_event"].as_str().expect("cursor").to_owned());
    }
    let status: Value = cluster
        .http
        .get(cluster.masters[0].url("/corral/v1/cluster?digest=true"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    cluster.masters[0].stop();
    let applied = status["state_digest"]["index"].as_u64().expect("digest index");
    let digest = status["state_digest"]["digest"].as_str().expect("digest").to_owned();

    let replay = |extra: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_corral"))
            .arg("replay")
            .arg("--data-dir")
            .arg(cluster.masters[0].data_dir())
            .args(extra)
            .output()
            .expect("corral replay runs");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).expect("utf-8")
    };
    let to_applied = replay(&["--to", &applied.to_string(), "--verify"]);
    assert!(
        to_applied.contains(&format!("digest {digest}")),
        "replaying to index {applied} gives the digest the master reported:\n{to_applied}"
    );
    assert!(to_applied.contains("5 agents"), "{to_applied}");
    assert!(to_applied.contains("verified:"), "{to_applied}");
    // Replaying only up to the third registration gives the cluster as it was then.
    let third: u64 = cursors[2].split('-').next().unwrap().parse().unwrap();
    let earlier = replay(&["--to", &third.to_string()]);
    assert!(earlier.contains("3 agents"), "{earlier}");
}

#[test]
fn an_election_timeout_a_heartbeat_could_not_meet_stops_the_master_at_start_up() {
    let directory = tempfile::tempdir().expect("temp dir");
    for (timeout, problem) in
        [("0.05", "must exceed 1.5 × heartbeat_interval"), ("0", "positive number")]
    {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_corral"))
            .args(["master", "--node-id", "1", "--listen", "127.0.0.1:0"])
            .args(["--election-timeout", timeout])
            .arg("--data-dir")
            .arg(directory.path())
            .output()
            .expect("corral master runs");
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--election-timeout") && stderr.contains(problem), "{stderr}");
    }
}
