//! A framework over the raw Mesos v1 scheduler HTTP API: it subscribes, keeps every offer
//! and every status update it is sent (acknowledging each), and launches and kills tasks.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use corral_api::mesos::recordio::decode_records;
use futures::StreamExt;
use serde_json::{json, Value};

use super::eventually;

const LONG: Duration = Duration::from_secs(60);

pub struct RawFramework {
    http: reqwest::Client,
    url: String,
    pub stream_id: String,
    pub framework_id: String,
    offers: Arc<Mutex<VecDeque<Value>>>,
    /// Every status the framework was sent, in stream order.
    updates: Arc<Mutex<Vec<Value>>>,
    reader: tokio::task::JoinHandle<()>,
}

impl RawFramework {
    /// Subscribes to the scheduler API at `master` (the leader).
    pub async fn subscribe(http: &reqwest::Client, master: &str, name: &str) -> RawFramework {
        let url = format!("http://{master}/api/v1/scheduler");
        let call = json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": {
            "user": "root", "name": name, "failover_timeout": 60.0
        }}});
        let response = http.post(&url).json(&call).send().await.expect("subscribe");
        assert_eq!(response.status(), 200, "SUBSCRIBE");
        let stream_id =
            response.headers()["mesos-stream-id"].to_str().expect("stream id").to_owned();
        let offers: Arc<Mutex<VecDeque<Value>>> = Arc::default();
        let updates: Arc<Mutex<Vec<Value>>> = Arc::default();
        let (subscribed_sender, subscribed) = tokio::sync::oneshot::channel();
        let reader = tokio::spawn(read_stream(
            response,
            http.clone(),
            url.clone(),
            stream_id.clone(),
            offers.clone(),
            updates.clone(),
            subscribed_sender,
        ));
        let framework_id = tokio::time::timeout(LONG, subscribed)
            .await
            .expect("SUBSCRIBED in time")
            .expect("SUBSCRIBED");
        RawFramework { http: http.clone(), url, stream_id, framework_id, offers, updates, reader }
    }

    async fn call(&self, body: Value) {
        let response = self
            .http
            .post(&self.url)
            .header("Mesos-Stream-Id", &self.stream_id)
            .json(&body)
            .send()
            .await
            .expect("scheduler call");
        assert_eq!(response.status(), 202, "{body}");
    }

    /// Launches `tasks` (each `{id, command, ...extra TaskInfo fields}`, `cpus:0.1;mem:32`
    /// unless they name their own `resources`) on the next offer,
    /// declining nothing: the other offers stay outstanding.
    pub async fn launch(&self, tasks: Vec<Value>) -> String {
        let offer = eventually(LONG, "an offer", || async {
            self.offers.lock().expect("offers").pop_front()
        })
        .await;
        let agent_id = offer["agent_id"].clone();
        let task_infos: Vec<Value> = tasks
            .into_iter()
            .map(|mut task| {
                let id = task["id"].as_str().expect("task id").to_owned();
                let object = task.as_object_mut().expect("task object");
                object.remove("id");
                object.insert("name".to_owned(), json!(id));
                object.insert("task_id".to_owned(), json!({"value": id}));
                object.insert("agent_id".to_owned(), agent_id.clone());
                // Tasks that name their own resources (ports, more memory) keep them.
                object.entry("resources").or_insert_with(|| {
                    json!([{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                           {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}])
                });
                task
            })
            .collect();
        self.call(
            json!({"type": "ACCEPT", "framework_id": {"value": self.framework_id}, "accept": {
            "offer_ids": [offer["id"]],
            "operations": [{"type": "LAUNCH", "launch": {"task_infos": task_infos}}],
            "filters": {"refuse_seconds": 0}}}),
        )
        .await;
        agent_id["value"].as_str().expect("agent id").to_owned()
    }

    pub async fn kill(&self, task_id: &str, agent_id: &str, grace: Duration) {
        self.call(json!({"type": "KILL", "framework_id": {"value": self.framework_id}, "kill": {
            "task_id": {"value": task_id}, "agent_id": {"value": agent_id},
            "kill_policy": {"grace_period": {"nanoseconds": grace.as_nanos() as u64}}}}))
            .await;
    }

    /// The first status of `task_id` in `state` (`TASK_RUNNING`, …), waiting for it.
    pub async fn wait_for(&self, task_id: &str, state: &str) -> Value {
        eventually(LONG, &format!("{task_id} {state}"), || async {
            let updates = self.updates.lock().expect("updates");
            updates
                .iter()
                .find(|status| status["task_id"]["value"] == task_id && status["state"] == state)
                .cloned()
        })
        .await
    }

    /// The first status `wanted` accepts, waiting for it.
    pub async fn wait_for_status(&self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        eventually(LONG, what, || async {
            let updates = self.updates.lock().expect("updates");
            updates.iter().find(|status| wanted(status)).cloned()
        })
        .await
    }

    /// `(task, state)` of every update so far, in the order the stream sent them.
    pub fn received(&self) -> Vec<(String, String)> {
        self.updates
            .lock()
            .expect("updates")
            .iter()
            .map(|status| {
                (
                    status["task_id"]["value"].as_str().unwrap_or_default().to_owned(),
                    status["state"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }
}

impl Drop for RawFramework {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

async fn read_stream(
    response: reqwest::Response,
    http: reqwest::Client,
    url: String,
    stream_id: String,
    offers: Arc<Mutex<VecDeque<Value>>>,
    updates: Arc<Mutex<Vec<Value>>>,
    subscribed: tokio::sync::oneshot::Sender<String>,
) {
    let mut subscribed = Some(subscribed);
    let mut framework_id = Value::Null;
    let mut body = response.bytes_stream();
    let mut buffer = Vec::new();
    while let Some(Ok(chunk)) = body.next().await {
        buffer.extend_from_slice(&chunk);
        for record in decode_records(&mut buffer).expect("RecordIO") {
            let event: Value = serde_json::from_slice(&record).expect("JSON event");
            match event["type"].as_str() {
                Some("SUBSCRIBED") => {
                    framework_id = event["subscribed"]["framework_id"].clone();
                    if let Some(sender) = subscribed.take() {
                        let id = framework_id["value"].as_str().expect("id").to_owned();
                        let _ = sender.send(id);
                    }
                }
                Some("OFFERS") => {
                    let mut queue = offers.lock().expect("offers");
                    for offer in event["offers"]["offers"].as_array().into_iter().flatten() {
                        queue.push_back(offer.clone());
                    }
                }
                Some("RESCIND") => {
                    let rescinded = &event["rescind"]["offer_id"];
                    offers.lock().expect("offers").retain(|offer| &offer["id"] != rescinded);
                }
                Some("UPDATE") => {
                    let status = event["update"]["status"].clone();
                    updates.lock().expect("updates").push(status.clone());
                    if status["uuid"].is_string() {
                        let acknowledge = json!({"type": "ACKNOWLEDGE", "framework_id": framework_id,
                            "acknowledge": {"agent_id": status["agent_id"], "task_id": status["task_id"], "uuid": status["uuid"]}});
                        let _ = http
                            .post(&url)
                            .header("Mesos-Stream-Id", &stream_id)
                            .json(&acknowledge)
                            .send()
                            .await;
                    }
                }
                _ => {}
            }
        }
    }
}
