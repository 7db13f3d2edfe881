//! The clients: a linearizable register (role weights), a set (Marathon apps), subscribers to
//! the native event stream that hop between masters, and a Mesos v1 framework launching
//! tasks through offers. Each records what it did in the [`History`] (or its own record) and
//! stops when `stop` is set.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use corral_state::Cursor;
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::check::stream::{Segment, Subscriber};
use crate::check::tasks::Received;
use crate::client::{self, send, write_outcome, Reply};
use crate::history::{History, Outcome};
use crate::journal::event_hash;
use crate::rng::Rng;

/// What every client shares.
#[derive(Clone)]
pub struct Shared {
    pub masters: Vec<String>,
    pub history: History,
    /// Set when the workloads stop (the framework then only launches no more).
    pub stop: watch::Receiver<bool>,
    /// Unique process ids (a fresh one after every `info`).
    pub processes: Arc<AtomicU64>,
    pub redirects: Redirects,
}

/// How the register client follows a follower's 307.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Redirects {
    /// To the `Location` as given, as HTTP client libraries do.
    AsGiven,
    /// Puts back a query string the `Location` lost (`?consistency=linearizable`): works
    /// around a master that drops it, to look for other bugs past that one.
    KeepQuery,
}

/// Sends a POST, following up to four 307s by hand so the path it took is known (recorded
/// as `first→…→last`).
async fn post_following(
    http: &reqwest::Client,
    master: &str,
    path_and_query: &str,
    body: &Value,
    redirects: Redirects,
) -> (Reply, String) {
    let query = path_and_query.split_once('?').map(|(_, query)| query.to_owned());
    let mut url = format!("http://{master}{path_and_query}");
    let mut hops = vec![master.to_owned()];
    for _ in 0..4 {
        let response = match http.post(&url).json(body).send().await {
            Ok(response) => response,
            Err(error) => {
                let reply = if error.is_connect() && hops.len() == 1 {
                    Reply::NotSent(error.to_string())
                } else if error.is_connect() {
                    // A master answers 307 also after proposing, when leadership moved while
                    // the command was in flight (`LogError::NotLeader` with a hint): the
                    // command may still commit, so a redirect that leads nowhere is unknown.
                    Reply::Unknown(format!("redirected, then: {error}"))
                } else {
                    Reply::Unknown(error.to_string())
                };
                return (reply, hops.join("→"));
            }
        };
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        match (response.status().as_u16(), location) {
            (307, Some(location)) => {
                url = match (&query, redirects) {
                    (Some(query), Redirects::KeepQuery) if !location.contains('?') => {
                        format!("{location}?{query}")
                    }
                    _ => location,
                };
                let host = url.trim_start_matches("http://").split('/').next().unwrap_or_default();
                hops.push(host.to_owned());
            }
            (status, _) => {
                let bytes = response.bytes().await.unwrap_or_default();
                let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                    Value::String(String::from_utf8_lossy(&bytes).into_owned())
                });
                return (Reply::Status(status, body), hops.join("→"));
            }
        }
    }
    (Reply::Status(307, Value::String("too many redirects".to_owned())), hops.join("→"))
}

impl Shared {
    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    fn next_process(&self) -> u64 {
        self.processes.fetch_add(1, Ordering::Relaxed)
    }
}

/// Prefixes of what the workloads create, so the checkers find only theirs.
pub const REGISTER_ROLE_PREFIX: &str = "chaos-r";
pub const SET_PREFIX: &str = "/chaos-set/";
/// Register keys change every this many seconds, which keeps each key's history short
/// enough for an exhaustive linearizability search.
const KEY_EPOCH: Duration = Duration::from_secs(4);
const KEYS_PER_EPOCH: u64 = 2;

pub fn register_key(epoch: u64, key: u64) -> String {
    format!("{REGISTER_ROLE_PREFIX}{epoch}-{key}")
}

/// Writes unique weights and reads them back with `?consistency=linearizable`, on masters
/// picked at random.
pub async fn register_client(shared: Shared, mut rng: Rng, values: Arc<AtomicU64>) {
    let http = client::direct(Duration::from_secs(1));
    let started = Instant::now();
    let mut process = shared.next_process();
    while !shared.stopped() {
        let epoch = started.elapsed().as_secs() / KEY_EPOCH.as_secs();
        let key = register_key(epoch, rng.below(KEYS_PER_EPOCH));
        let master = rng.pick(&shared.masters).clone();
        if rng.chance(50) {
            let value = values.fetch_add(1, Ordering::Relaxed);
            let pending =
                shared.history.invoke(process, "register", "write", &key, json!(value), &master);
            let body = json!({"type": "UPDATE_WEIGHTS", "update_weights": {"weight_infos": [
                {"role": key, "weight": value as f64}]}});
            let (reply, path) =
                post_following(&http, &master, "/api/v1", &body, shared.redirects).await;
            let (outcome, error) = write_outcome(&reply);
            shared.history.complete_via(pending, outcome, None, error, path);
            if outcome == Outcome::Info {
                process = shared.next_process();
            }
        } else {
            let pending =
                shared.history.invoke(process, "register", "read", &key, Value::Null, &master);
            let body = json!({"type": "GET_WEIGHTS"});
            let (reply, path) = post_following(
                &http,
                &master,
                "/api/v1?consistency=linearizable",
                &body,
                shared.redirects,
            )
            .await;
            match reply {
                Reply::Status(200, answer) => {
                    let weight = answer["get_weights"]["weight_infos"]
                        .as_array()
                        .and_then(|infos| infos.iter().find(|info| info["role"] == key.as_str()))
                        .and_then(|info| info["weight"].as_f64())
                        .map_or(0, |weight| weight.round() as u64);
                    shared.history.complete_via(
                        pending,
                        Outcome::Ok,
                        Some(json!(weight)),
                        None,
                        path,
                    );
                }
                other => {
                    // A read has no effect: one that did not answer is simply dropped.
                    let error = format!("{other:?}");
                    shared.history.complete_via(
                        pending,
                        Outcome::Fail,
                        Some(Value::Null),
                        Some(error),
                        path,
                    );
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.between(0, 20))).await;
    }
}

/// Creates Marathon apps with unique ids (no instances: only the set matters here).
pub async fn set_client(shared: Shared, mut rng: Rng, client: u64) {
    let http = client::following(Duration::from_secs(2));
    let mut process = shared.next_process();
    let mut number = 0u64;
    while !shared.stopped() {
        number += 1;
        let id = format!("{SET_PREFIX}c{client}-app-{number}");
        let master = rng.pick(&shared.masters).clone();
        let pending = shared.history.invoke(process, "set", "create", &id, Value::Null, &master);
        let body = json!({"id": id, "cmd": "sleep 3600", "instances": 0, "cpus": 0.01, "mem": 8});
        let reply = send(http.post(format!("http://{master}/v2/apps")).json(&body)).await;
        let (outcome, error) = write_outcome(&reply);
        shared.history.complete(pending, outcome, None, error);
        if outcome == Outcome::Info {
            process = shared.next_process();
        }
        tokio::time::sleep(Duration::from_millis(rng.between(50, 150))).await;
    }
}

/// Follows `GET /corral/v1/events?format=ndjson&from=CURSOR`, moving to another master
/// every few seconds (and whenever a stream ends or goes quiet), from its last cursor.
pub async fn stream_subscriber(shared: Shared, mut rng: Rng, name: String) -> Subscriber {
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_millis(500))
        .build()
        .expect("a reqwest client with fixed settings builds");
    let mut subscriber = Subscriber { name, start: Cursor::START, segments: Vec::new() };
    let mut cursor = Cursor::START;
    while !shared.stopped() {
        let master = rng.pick(&shared.masters).clone();
        let url = format!("http://{master}/corral/v1/events?format=ndjson&from={cursor}");
        let stay = Duration::from_millis(rng.between(1_500, 6_000));
        let mut segment = Segment {
            master: master.clone(),
            from: cursor.to_string(),
            events: Vec::new(),
            count: 0,
            ended: String::new(),
        };
        segment.ended = follow(&http, &url, stay, &shared, &mut segment.events, &mut cursor).await;
        segment.count = segment.events.len();
        if segment.count > 0 || !segment.ended.starts_with("connect") {
            subscriber.segments.push(segment);
        }
        if subscriber.segments.last().is_none_or(|segment| segment.count == 0) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    subscriber
}

/// Reads one connection; returns why it ended.
async fn follow(
    http: &reqwest::Client,
    url: &str,
    stay: Duration,
    shared: &Shared,
    events: &mut Vec<(Cursor, u64)>,
    cursor: &mut Cursor,
) -> String {
    let connected = tokio::time::timeout(Duration::from_secs(2), http.get(url).send()).await;
    let response = match connected {
        Err(_) => return "connect: no answer".to_owned(),
        Ok(Err(error)) => return format!("connect: {error}"),
        Ok(Ok(response)) if !response.status().is_success() => {
            let status = response.status();
            let text =
                response.text().await.unwrap_or_else(|error| format!("(unreadable: {error})"));
            return format!("answered {status}: {text}");
        }
        Ok(Ok(response)) => response,
    };
    let until = Instant::now() + stay;
    let mut body = response.bytes_stream();
    let mut buffer: Vec<u8> = Vec::new();
    let mut stop = shared.stop.clone();
    loop {
        let chunk = tokio::select! {
            chunk = tokio::time::timeout(Duration::from_secs(3), body.next()) => chunk,
            () = tokio::time::sleep_until(until) => return "moved on".to_owned(),
            _ = stop.changed() => return "run over".to_owned(),
        };
        let chunk = match chunk {
            Err(_) => return "quiet for 3 s".to_owned(),
            Ok(None) => return "closed by the master".to_owned(),
            Ok(Some(Err(error))) => return format!("broke: {error}"),
            Ok(Some(Ok(chunk))) => chunk,
        };
        buffer.extend_from_slice(&chunk);
        while let Some(end) = buffer.iter().position(|byte| *byte == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            let Ok(value) = serde_json::from_slice::<Value>(&line) else {
                return format!("a line that is not JSON: {}", String::from_utf8_lossy(&line));
            };
            if let Some(reason) = value.get("disconnected") {
                return format!("disconnected: {reason}");
            }
            // Anything else without a cursor (a heartbeat line) is not an event.
            let Some(text) = value["cursor"].as_str() else { continue };
            let Ok(at) = text.parse::<Cursor>() else {
                return format!("a cursor that does not parse: {text}");
            };
            events.push((at, event_hash(&value["event"])));
            *cursor = at;
        }
    }
}

/// What the framework saw and did.
#[derive(Debug, Default)]
pub struct FrameworkRecord {
    pub framework_id: Option<String>,
    pub received: Vec<Received>,
    pub subscriptions: u64,
    /// Time from losing a stream to being subscribed again, per resubscription.
    pub resubscribe_millis: Vec<u64>,
}

/// Tasks this framework keeps running at once.
const LIVE_TASKS: usize = 4;

/// A Mesos v1 scheduler: subscribes through any master (following the 307), launches short
/// tasks on offers, acknowledges every update, and resubscribes elsewhere when its stream
/// ends.
///
/// After `shared.stop` it launches nothing more but stays subscribed, acknowledging, until
/// `finish`: every status update the log accepted must reach it.
pub async fn framework(
    shared: Shared,
    mut rng: Rng,
    finish: watch::Receiver<bool>,
) -> FrameworkRecord {
    let record = Arc::new(Mutex::new(FrameworkRecord::default()));
    let http = client::following(Duration::from_secs(2));
    let mut process = shared.next_process();
    let mut task_number = 0u64;
    let mut live: BTreeMap<String, Instant> = BTreeMap::new();
    let mut lost_at: Option<Instant> = None;
    let draining = shared.stop.clone();
    let mut finish = finish;
    loop {
        if *finish.borrow() {
            break;
        }
        let framework_id =
            record.lock().unwrap_or_else(PoisonError::into_inner).framework_id.clone();
        let mut info = json!({"user": "root", "name": "corral-chaos", "failover_timeout": 3600.0,
                              "capabilities": [{"type": "PARTITION_AWARE"}]});
        if let Some(id) = &framework_id {
            info["id"] = json!({"value": id});
        }
        let mut subscribe = json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": info}});
        if let Some(id) = &framework_id {
            subscribe["framework_id"] = json!({"value": id});
        }
        let master = rng.pick(&shared.masters).clone();
        let streaming = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(500))
            .build()
            .expect("a reqwest client with fixed settings builds");
        let connected = tokio::time::timeout(
            Duration::from_secs(2),
            streaming.post(format!("http://{master}/api/v1/scheduler")).json(&subscribe).send(),
        )
        .await;
        let response = match connected {
            Ok(Ok(response)) if response.status().is_success() => response,
            _ => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let url = response.url().clone();
        let Some(stream_id) = response
            .headers()
            .get("mesos-stream-id")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
        else {
            continue;
        };
        let mut body = response.bytes_stream();
        let mut buffer = Vec::new();
        loop {
            let chunk = tokio::select! {
                chunk = tokio::time::timeout(Duration::from_secs(6), body.next()) => chunk,
                _ = finish.changed() => break,
            };
            let Ok(Some(Ok(chunk))) = chunk else { break };
            buffer.extend_from_slice(&chunk);
            for record_bytes in decode_records(&mut buffer) {
                let Ok(event) = serde_json::from_slice::<Value>(&record_bytes) else { continue };
                match event["type"].as_str() {
                    Some("SUBSCRIBED") => {
                        let id = event["subscribed"]["framework_id"]["value"]
                            .as_str()
                            .map(str::to_owned);
                        let mut record = record.lock().unwrap_or_else(PoisonError::into_inner);
                        record.framework_id = id.or(record.framework_id.take());
                        record.subscriptions += 1;
                        if let Some(lost) = lost_at.take() {
                            record.resubscribe_millis.push(lost.elapsed().as_millis() as u64);
                        }
                    }
                    Some("OFFERS") => {
                        let Some(framework_id) = record
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .framework_id
                            .clone()
                        else {
                            continue;
                        };
                        live.retain(|_, since| since.elapsed() < Duration::from_secs(40));
                        let offers =
                            event["offers"]["offers"].as_array().cloned().unwrap_or_default();
                        for offer in offers {
                            let launch = !*draining.borrow() && live.len() < LIVE_TASKS;
                            let call = if launch {
                                task_number += 1;
                                let task_id =
                                    format!("chaos-task-{}-{task_number}", rng.below(1 << 20));
                                live.insert(task_id.clone(), Instant::now());
                                let seconds = rng.between(3, 12);
                                let task = json!({"name": task_id, "task_id": {"value": task_id},
                                    "agent_id": offer["agent_id"],
                                    "command": {"value": format!("sleep {seconds}")},
                                    "resources": [
                                        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                                        {"name": "mem", "type": "SCALAR", "scalar": {"value": 16}}]});
                                let pending = shared.history.invoke(
                                    process,
                                    "tasks",
                                    "launch",
                                    &task_id,
                                    Value::Null,
                                    url.as_str(),
                                );
                                let accept = json!({"type": "ACCEPT", "framework_id": {"value": framework_id},
                                    "accept": {"offer_ids": [offer["id"]], "operations": [
                                        {"type": "LAUNCH", "launch": {"task_infos": [task]}}],
                                        "filters": {"refuse_seconds": 1.0}}});
                                let reply = send(
                                    http.post(url.clone())
                                        .header("Mesos-Stream-Id", &stream_id)
                                        .json(&accept),
                                )
                                .await;
                                let (outcome, error) = write_outcome(&reply);
                                shared.history.complete(pending, outcome, None, error);
                                if outcome == Outcome::Info {
                                    process = shared.next_process();
                                }
                                continue;
                            } else {
                                json!({"type": "DECLINE", "framework_id": {"value": framework_id},
                                       "decline": {"offer_ids": [offer["id"]], "filters": {"refuse_seconds": 1.0}}})
                            };
                            let _ = send(
                                http.post(url.clone())
                                    .header("Mesos-Stream-Id", &stream_id)
                                    .json(&call),
                            )
                            .await;
                        }
                    }
                    Some("UPDATE") => {
                        let status = &event["update"]["status"];
                        let task_id =
                            status["task_id"]["value"].as_str().unwrap_or_default().to_owned();
                        let state = status["state"].as_str().unwrap_or_default().to_owned();
                        let uuid = status["uuid"].as_str().map(str::to_owned);
                        let agent_id =
                            status["agent_id"]["value"].as_str().unwrap_or_default().to_owned();
                        if crate::check::tasks::ends(&state) {
                            live.remove(&task_id);
                        }
                        let framework_id = {
                            let mut record = record.lock().unwrap_or_else(PoisonError::into_inner);
                            record.received.push(Received {
                                task_id: task_id.clone(),
                                state,
                                agent_id: agent_id.clone(),
                                uuid: uuid.clone(),
                            });
                            record.framework_id.clone()
                        };
                        if let (Some(uuid), Some(framework_id)) = (uuid, framework_id) {
                            let acknowledge = json!({"type": "ACKNOWLEDGE", "framework_id": {"value": framework_id},
                                "acknowledge": {"agent_id": {"value": agent_id}, "task_id": {"value": task_id}, "uuid": uuid}});
                            let _ = send(
                                http.post(url.clone())
                                    .header("Mesos-Stream-Id", &stream_id)
                                    .json(&acknowledge),
                            )
                            .await;
                        }
                    }
                    Some("ERROR") => break,
                    _ => {}
                }
            }
            if *finish.borrow() {
                break;
            }
        }
        lost_at.get_or_insert_with(Instant::now);
    }
    let mut record = record.lock().unwrap_or_else(PoisonError::into_inner);
    std::mem::take(&mut *record)
}

/// Splits complete RecordIO records (`<length>\n<bytes>`) off the front of `buffer`.
pub fn decode_records(buffer: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut records = Vec::new();
    while let Some(newline) = buffer.iter().position(|byte| *byte == b'\n') {
        let Ok(length) =
            std::str::from_utf8(&buffer[..newline]).unwrap_or("x").trim().parse::<usize>()
        else {
            // Not RecordIO: drop what cannot be parsed rather than loop forever.
            buffer.clear();
            break;
        };
        if buffer.len() < newline + 1 + length {
            break;
        }
        let record = buffer[newline + 1..newline + 1 + length].to_vec();
        buffer.drain(..newline + 1 + length);
        records.push(record);
    }
    records
}

#[cfg(test)]
mod tests {
    use super::decode_records;

    #[test]
    fn recordio_records_are_split_and_partial_ones_kept() {
        let mut buffer = b"5\nhello3\nabc4\nxy".to_vec();
        assert_eq!(decode_records(&mut buffer), vec![b"hello".to_vec(), b"abc".to_vec()]);
        assert_eq!(buffer, b"4\nxy");
        buffer.extend_from_slice(b"zw");
        assert_eq!(decode_records(&mut buffer), vec![b"xyzw".to_vec()]);
        assert!(buffer.is_empty());
    }
}
