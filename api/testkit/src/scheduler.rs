//! A framework over the raw Mesos v1 scheduler HTTP API (`corral_client::SchedulerClient`)
//! that keeps every offer and every status update it is sent (acknowledging each), for tests
//! to launch, kill and wait on. Failures panic: this is for tests.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use corral_client::{SchedulerClient, SchedulerEvents};
use serde_json::{json, Value};

use crate::eventually;

const LONG: Duration = Duration::from_secs(60);

pub struct RawFramework {
    client: SchedulerClient,
    http: reqwest::Client,
    master: String,
    pub stream_id: String,
    pub framework_id: String,
    offers: Arc<Mutex<VecDeque<Value>>>,
    /// Every status the framework was sent, in stream order.
    updates: Arc<Mutex<Vec<Value>>>,
    /// How the stream ended, once it has: a test waiting for a status can say so.
    ended: Arc<Mutex<Option<String>>>,
    reader: tokio::task::JoinHandle<()>,
}

impl RawFramework {
    /// Subscribes to the scheduler API at `master` (the leader).
    pub async fn subscribe(http: &reqwest::Client, master: &str, name: &str) -> RawFramework {
        let info = json!({"user": "root", "name": name, "failover_timeout": 60.0});
        RawFramework::subscribe_with(http, master, info).await
    }

    /// Subscribes with this `FrameworkInfo` (another user, roles, a principal).
    pub async fn subscribe_with(http: &reqwest::Client, master: &str, info: Value) -> RawFramework {
        let (client, events) =
            tokio::time::timeout(LONG, SchedulerClient::subscribe(http, master, info))
                .await
                .expect("SUBSCRIBED in time")
                .expect("SUBSCRIBE");
        let offers: Arc<Mutex<VecDeque<Value>>> = Arc::default();
        let updates: Arc<Mutex<Vec<Value>>> = Arc::default();
        let ended: Arc<Mutex<Option<String>>> = Arc::default();
        let reader = tokio::spawn(read_stream(
            events,
            client.clone(),
            offers.clone(),
            updates.clone(),
            ended.clone(),
        ));
        RawFramework {
            http: http.clone(),
            master: master.to_owned(),
            stream_id: client.stream_id().to_owned(),
            framework_id: client.framework_id().to_owned(),
            client,
            offers,
            updates,
            ended,
            reader,
        }
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
        self.client.launch(&offer, task_infos).await.expect("ACCEPT answered 202");
        agent_id["value"].as_str().expect("agent id").to_owned()
    }

    /// Leaves the cluster's resources to other frameworks, as a well-behaved one does once
    /// it has launched what it wanted: SUPPRESS, then DECLINE (for an hour) every offer it
    /// holds until the master says it holds none (an offer made before the SUPPRESS may
    /// still be on its way).
    pub async fn step_aside(&self) {
        self.client.call(json!({"type": "SUPPRESS", "suppress": {}})).await.expect("SUPPRESS");
        let frameworks = format!("http://{}/master/frameworks", self.master);
        eventually(LONG, "no offer held by the master for this framework", || async {
            let held: Vec<Value> = self
                .offers
                .lock()
                .expect("offers")
                .drain(..)
                .map(|offer| offer["id"].clone())
                .collect();
            if !held.is_empty() {
                self.client
                    .call(json!({"type": "DECLINE", "decline": {"offer_ids": held,
                                 "filters": {"refuse_seconds": 3600}}}))
                    .await
                    .expect("DECLINE");
            }
            let answer: Value = self.http.get(&frameworks).send().await.ok()?.json().await.ok()?;
            let this = answer["frameworks"]
                .as_array()?
                .iter()
                .find(|framework| framework["id"] == self.framework_id.as_str())?;
            this["offers"].as_array()?.is_empty().then_some(())
        })
        .await;
    }

    pub async fn kill(&self, task_id: &str, agent_id: &str, grace: Duration) {
        self.client.kill(task_id, agent_id, grace).await.expect("KILL answered 202");
    }

    /// The first status of `task_id` in `state` (`TASK_RUNNING`, …), waiting for it.
    pub async fn wait_for(&self, task_id: &str, state: &str) -> Value {
        self.wait_for_status(&format!("{task_id} {state}"), |status| {
            status["task_id"]["value"] == task_id && status["state"] == state
        })
        .await
    }

    /// The first status `wanted` accepts, waiting for it. A timeout names every update
    /// received, so a missing status can be told from a different one.
    pub async fn wait_for_status(&self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + LONG;
        loop {
            let found = self.updates.lock().expect("updates").iter().find(|s| wanted(s)).cloned();
            if let Some(status) = found {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out after {LONG:?} waiting for {what}; received {:?}; stream {}",
                self.received(),
                self.ended.lock().expect("ended").as_deref().unwrap_or("still open")
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
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
    mut events: SchedulerEvents,
    client: SchedulerClient,
    offers: Arc<Mutex<VecDeque<Value>>>,
    updates: Arc<Mutex<Vec<Value>>>,
    ended: Arc<Mutex<Option<String>>>,
) {
    let end = loop {
        let event = match events.next().await {
            Some(Ok(event)) => event,
            Some(Err(error)) => break format!("broke: {error}"),
            None => break "ended by the master".to_owned(),
        };
        match event["type"].as_str() {
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
                // A lost acknowledgement is re-sent by the master, and the tests wait on
                // what they need, so a failed one is not this reader's to report.
                let _ = client.acknowledge(&status).await;
            }
            _ => {}
        }
    };
    *ended.lock().expect("ended") = Some(end);
}
