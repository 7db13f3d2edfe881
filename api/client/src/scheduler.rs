//! A framework over the raw Mesos v1 scheduler HTTP API: SUBSCRIBE, then calls carrying the
//! stream id, and the RecordIO event stream decoded into JSON events.

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use corral_mesos::recordio::decode_records;
use futures::{Stream, StreamExt};
use serde_json::{json, Value};

use crate::Error;

type Body = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// Calls on behalf of one subscribed framework.
#[derive(Clone)]
pub struct SchedulerClient {
    http: reqwest::Client,
    url: String,
    stream_id: String,
    framework_id: String,
}

/// The events of a framework's stream, SUBSCRIBED already consumed.
pub struct SchedulerEvents {
    url: String,
    body: Body,
    buffer: Vec<u8>,
    decoded: std::collections::VecDeque<Value>,
    /// How long the stream may stay silent before it counts as dead: a few of the
    /// heartbeat intervals SUBSCRIBED announced (Mesos's advice to schedulers).
    silence_limit: Duration,
}

/// Heartbeats a stream may miss before `next` gives up on it.
const MISSED_HEARTBEATS: f64 = 3.0;

/// The silence allowed before SUBSCRIBED says the heartbeat interval (Mesos's default
/// interval is 15 s).
const SILENCE_BEFORE_SUBSCRIBED: Duration = Duration::from_secs(45);

impl SchedulerClient {
    /// Subscribes with `framework_info` (Mesos v1 JSON) to the scheduler API at `master`
    /// and waits for SUBSCRIBED. A follower answers 307, which this does not follow: the
    /// caller decides which master to ask next.
    ///
    /// The stream outlives `http`'s whole-request timeout, if it has one (a stream has no
    /// end to wait for): it is judged by its heartbeats instead, and `next` ends it with
    /// an error after `MISSED_HEARTBEATS` silent intervals.
    pub async fn subscribe(
        http: &reqwest::Client,
        master: &str,
        framework_info: Value,
    ) -> Result<(SchedulerClient, SchedulerEvents), Error> {
        let url = format!("http://{master}/api/v1/scheduler");
        let call = json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": framework_info}});
        // tokio clamps the far deadline (to 30 years), so MAX means "no whole-request limit".
        let answer = http.post(&url).json(&call).timeout(Duration::MAX).send();
        let response = tokio::time::timeout(SILENCE_BEFORE_SUBSCRIBED, answer)
            .await
            .map_err(|_| Error::Protocol {
                url: url.clone(),
                problem: format!("no answer to SUBSCRIBE within {SILENCE_BEFORE_SUBSCRIBED:?}"),
            })?
            .map_err(|source| Error::Unreachable { url: url.clone(), source })?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(Error::from_response(&url, response).await);
        }
        let stream_id = response
            .headers()
            .get("mesos-stream-id")
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| Error::Protocol {
                url: url.clone(),
                problem: "SUBSCRIBE answered without a Mesos-Stream-Id".to_owned(),
            })?
            .to_owned();
        let mut events = SchedulerEvents {
            url: url.clone(),
            body: Box::pin(response.bytes_stream()),
            buffer: Vec::new(),
            decoded: Default::default(),
            silence_limit: SILENCE_BEFORE_SUBSCRIBED,
        };
        let subscribed = events.next().await.ok_or_else(|| Error::Protocol {
            url: url.clone(),
            problem: "the stream ended before SUBSCRIBED".to_owned(),
        })??;
        let framework_id = match (
            subscribed["type"].as_str(),
            subscribed["subscribed"]["framework_id"]["value"].as_str(),
        ) {
            (Some("SUBSCRIBED"), Some(id)) => id.to_owned(),
            _ => {
                return Err(Error::Protocol {
                    url,
                    problem: format!("expected SUBSCRIBED first, got {subscribed}"),
                })
            }
        };
        if let Some(interval) = subscribed["subscribed"]["heartbeat_interval_seconds"]
            .as_f64()
            .and_then(|seconds| Duration::try_from_secs_f64(seconds * MISSED_HEARTBEATS).ok())
        {
            events.silence_limit = interval;
        }
        let client = SchedulerClient { http: http.clone(), url, stream_id, framework_id };
        Ok((client, events))
    }

    pub fn framework_id(&self) -> &str {
        &self.framework_id
    }

    pub fn stream_id(&self) -> &str {
        &self.stream_id
    }

    /// Sends a call (the framework id is filled in) and requires Mesos's 202.
    pub async fn call(&self, mut call: Value) -> Result<(), Error> {
        call["framework_id"] = json!({"value": self.framework_id});
        let response = self
            .http
            .post(&self.url)
            .header("Mesos-Stream-Id", &self.stream_id)
            .json(&call)
            .send()
            .await
            .map_err(|source| Error::Unreachable { url: self.url.clone(), source })?;
        if response.status() != reqwest::StatusCode::ACCEPTED {
            return Err(Error::from_response(&self.url, response).await);
        }
        Ok(())
    }

    /// Launches `task_infos` (complete Mesos TaskInfos) on `offer`.
    pub async fn launch(&self, offer: &Value, task_infos: Vec<Value>) -> Result<(), Error> {
        self.call(json!({"type": "ACCEPT", "accept": {
            "offer_ids": [offer["id"]],
            "operations": [{"type": "LAUNCH", "launch": {"task_infos": task_infos}}],
            "filters": {"refuse_seconds": 0}}}))
            .await
    }

    /// Acknowledges a status update that carries a uuid; one without needs none.
    pub async fn acknowledge(&self, status: &Value) -> Result<(), Error> {
        if !status["uuid"].is_string() {
            return Ok(());
        }
        self.call(json!({"type": "ACKNOWLEDGE", "acknowledge": {
            "agent_id": status["agent_id"], "task_id": status["task_id"], "uuid": status["uuid"]}}))
            .await
    }

    pub async fn kill(&self, task_id: &str, agent_id: &str, grace: Duration) -> Result<(), Error> {
        let nanoseconds = u64::try_from(grace.as_nanos()).unwrap_or(u64::MAX);
        self.call(json!({"type": "KILL", "kill": {
            "task_id": {"value": task_id}, "agent_id": {"value": agent_id},
            "kill_policy": {"grace_period": {"nanoseconds": nanoseconds}}}}))
            .await
    }
}

impl SchedulerEvents {
    /// The next event, `None` when the master ended the stream, an error when it broke or
    /// went silent for longer than its heartbeats allow.
    pub async fn next(&mut self) -> Option<Result<Value, Error>> {
        loop {
            if let Some(event) = self.decoded.pop_front() {
                return Some(Ok(event));
            }
            let Ok(chunk) = tokio::time::timeout(self.silence_limit, self.body.next()).await else {
                let problem = format!("the stream was silent for {:?}", self.silence_limit);
                return Some(Err(self.protocol(problem)));
            };
            let chunk = match chunk? {
                Ok(chunk) => chunk,
                Err(error) => {
                    return Some(Err(self.protocol(format!("the stream broke: {error}"))))
                }
            };
            self.buffer.extend_from_slice(&chunk);
            let records = match decode_records(&mut self.buffer) {
                Ok(records) => records,
                Err(problem) => {
                    return Some(Err(self.protocol(format!("bad RecordIO: {problem}"))))
                }
            };
            for record in records {
                match serde_json::from_slice(&record) {
                    Ok(event) => self.decoded.push_back(event),
                    Err(error) => {
                        return Some(Err(self.protocol(format!("an event is not JSON: {error}"))))
                    }
                }
            }
        }
    }

    fn protocol(&self, problem: String) -> Error {
        Error::Protocol { url: self.url.clone(), problem }
    }
}
