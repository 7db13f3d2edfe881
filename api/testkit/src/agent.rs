//! A minimal in-test agent: it registers, follows its own events from a cursor (switching
//! masters when one goes away) and reports every task it is given as RUNNING, and every kill
//! as KILLED. It runs no processes; the real agent replaces it in the agent's own tests.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use corral_state::model::{AgentInfo, Attributes, TaskSource, TaskState, TaskStatus};
use corral_state::{AgentId, Command, Event, FrameworkId, TaskId, Timestamp, UpdateUuid};
use futures::StreamExt;
use serde_json::{json, Value};

#[derive(Clone)]
pub struct TestAgent {
    pub agent_id: AgentId,
    pub reports: Arc<Mutex<Vec<(TaskId, TaskState)>>>,
}

/// Posts an agent command to whichever master leads, following redirects and retrying
/// through elections, until it is committed.
pub async fn send_command(http: &reqwest::Client, masters: &[String], body: &Value) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut attempt = 0usize;
    loop {
        let mut url =
            format!("http://{}/corral/v1/agent/commands", masters[attempt % masters.len()]);
        attempt += 1;
        for _ in 0..3 {
            let Ok(response) = http.post(&url).json(body).send().await else { break };
            if response.status() == reqwest::StatusCode::TEMPORARY_REDIRECT {
                match response.headers().get("location").and_then(|l| l.to_str().ok()) {
                    Some(location) => url = location.to_owned(),
                    None => break,
                }
                continue;
            }
            if response.status().is_success() || response.status() == reqwest::StatusCode::CONFLICT
            {
                return response.json().await.expect("command result is JSON");
            }
            break;
        }
        assert!(Instant::now() < deadline, "no master accepted the agent command {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl TestAgent {
    pub async fn start(
        http: reqwest::Client,
        masters: Vec<String>,
        hostname: &str,
        resources: &str,
    ) -> TestAgent {
        let info = AgentInfo {
            hostname: hostname.to_owned(),
            address: "127.0.0.1:5051".to_owned(),
            attributes: Attributes::default(),
        };
        let command =
            Command::RegisterAgent { info, resources: resources.parse().expect("agent resources") };
        let body = json!({"request_id": format!("register-{hostname}"), "command": command});
        let result = send_command(&http, &masters, &body).await;
        let agent_id: AgentId = serde_json::from_value(
            result["outcome"]["Accepted"][0]["AgentAdded"]["agent_id"].clone(),
        )
        .unwrap_or_else(|_| panic!("registration failed: {result}"));
        let agent = TestAgent { agent_id: agent_id.clone(), reports: Arc::default() };
        tokio::spawn(agent.clone().follow(http.clone(), masters.clone()));
        tokio::spawn(heartbeats(http, masters, agent_id));
        agent
    }

    async fn report(
        &self,
        http: &reqwest::Client,
        masters: &[String],
        framework_id: &FrameworkId,
        task_id: &TaskId,
        state: TaskState,
    ) {
        let uuid =
            base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::new_v4().as_bytes());
        let status = TaskStatus {
            task_id: task_id.clone(),
            state,
            message: None,
            source: TaskSource::Executor,
            reason: None,
            healthy: None,
            agent_id: Some(self.agent_id.clone()),
            executor_id: None,
            timestamp: Timestamp::default(),
            uuid: Some(UpdateUuid::new(uuid.clone())),
            exit_code: None,
        };
        let command = Command::UpdateStatus { framework_id: framework_id.clone(), status };
        send_command(
            http,
            masters,
            &json!({"request_id": uuid, "agent_id": self.agent_id, "command": command}),
        )
        .await;
        self.reports.lock().expect("reports").push((task_id.clone(), state));
    }

    /// Follows the agent's events from the last cursor seen, on any master.
    async fn follow(self, http: reqwest::Client, masters: Vec<String>) {
        let mut cursor = "0-0".to_owned();
        let mut attempt = 0usize;
        loop {
            let master = &masters[attempt % masters.len()];
            attempt += 1;
            let url =
                format!("http://{master}/corral/v1/agent/{}/events?from={cursor}", self.agent_id);
            let streaming = reqwest::Client::new();
            let Ok(response) = streaming.get(&url).send().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            if !response.status().is_success() {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            let mut body = response.bytes_stream();
            let mut pending = Vec::new();
            while let Some(Ok(chunk)) = body.next().await {
                pending.extend_from_slice(&chunk);
                while let Some(newline) = pending.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=newline).collect();
                    let Ok(value) = serde_json::from_slice::<Value>(&line) else { continue };
                    let Some(at) = value["cursor"].as_str() else { continue };
                    cursor = at.to_owned();
                    let Ok(event) = serde_json::from_value::<Event>(value["event"].clone()) else {
                        continue;
                    };
                    match event {
                        Event::TaskAdded { task } => {
                            self.report(
                                &http,
                                &masters,
                                &task.framework_id,
                                task.id(),
                                TaskState::Running,
                            )
                            .await;
                        }
                        Event::TaskKillRequested { framework_id, task_id, .. } => {
                            self.report(
                                &http,
                                &masters,
                                &framework_id,
                                &task_id,
                                TaskState::Killed,
                            )
                            .await;
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

async fn heartbeats(http: reqwest::Client, masters: Vec<String>, agent_id: AgentId) {
    let mut beat = 0u64;
    loop {
        beat += 1;
        let command = Command::AgentHeartbeat { agent_id: agent_id.clone() };
        send_command(&http, &masters, &json!({"request_id": format!("heartbeat-{agent_id}-{beat}"), "agent_id": agent_id, "command": command})).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
