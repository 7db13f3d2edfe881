//! The real agent daemon, started in-process against the test master: its HTTP API is
//! called in-process through `router` (and over loopback where a test is about listening).

use std::path::PathBuf;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use corral_agent::checkpoint::{CheckpointStore, ProcessStat, RuntimeCheckpoint};
use corral_agent::daemon::{AgentConfig, OnStop, RunningAgent};
use corral_agent::docker::LABEL_AGENT_ID;
use corral_agent::limits::TaskCgroup;
use corral_state::model::TaskInfo;
use corral_state::{AgentId, FrameworkId, TaskId};
use serde_json::Value;
use tower::ServiceExt;

use crate::master::TestMaster;

pub const RESOURCES: &str = "cpus:4;mem:4096;disk:10000;ports:[31000-32000]";

pub struct TestAgent {
    pub master: TestMaster,
    pub work_dir: tempfile::TempDir,
    pub agent_id: AgentId,
    agent: Option<RunningAgent>,
    router: axum::Router,
}

impl TestAgent {
    pub async fn start(name: &str, on_stop: OnStop) -> TestAgent {
        let master = TestMaster::start(name).await;
        let work_dir = tempfile::tempdir().expect("temp dir");
        let mut config = AgentConfig::new(vec![master.address.clone()], work_dir.path().to_owned());
        config.listen = "127.0.0.1:0".to_owned();
        config.resources = Some(RESOURCES.to_owned());
        config.attributes = Some("rack:r1;zone:2".to_owned());
        config.hostname = Some(format!("{name}.test"));
        config.heartbeat_interval = Duration::from_secs(1);
        config.usage_interval = Duration::from_millis(200);
        config.on_stop = on_stop;
        let agent = corral_agent::daemon::start(config).await.expect("the agent starts");
        let router = corral_agent::http::router(agent.api().clone());
        TestAgent {
            agent_id: agent.agent_id().clone(),
            master,
            work_dir,
            agent: Some(agent),
            router,
        }
    }

    pub fn running(&self) -> &RunningAgent {
        self.agent.as_ref().expect("the agent has not been stopped")
    }

    /// Stops the agent as its `OnStop` says and waits for that to finish.
    pub async fn stop(&mut self) {
        let agent = self.agent.take().expect("the agent runs");
        agent.stop().await;
    }

    pub fn framework_id(&self) -> FrameworkId {
        self.master.framework_id()
    }

    pub fn sandbox(&self, task_id: &str) -> PathBuf {
        // The agent reports absolute sandboxes; the temp dir may be reached through a link.
        corral_agent::environment::sandbox_dir(
            &std::path::absolute(self.work_dir.path()).expect("absolute"),
            &self.framework_id(),
            &TaskId::new(task_id),
        )
    }

    pub fn launch(&self, task: TaskInfo) {
        self.master.launch(task);
    }

    /// GET in-process; the status and the raw body.
    pub async fn get(&self, uri: &str) -> (StatusCode, Vec<u8>) {
        self.request(Request::get(uri).body(Body::empty()).expect("request")).await
    }

    pub async fn request(&self, request: Request<Body>) -> (StatusCode, Vec<u8>) {
        let response =
            self.router.clone().oneshot(request).await.expect("the router always answers");
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
        (status, body.to_vec())
    }

    /// GET in-process; the status and the body as JSON.
    pub async fn get_json(&self, uri: &str) -> (StatusCode, Value) {
        let (status, body) = self.get(uri).await;
        let json = serde_json::from_slice(&body).unwrap_or_else(|error| {
            panic!(
                "{uri} answered {status} with no JSON ({error}): {}",
                String::from_utf8_lossy(&body)
            )
        });
        (status, json)
    }

    /// GETs `uri` until it answers 2xx with a body `accept` takes; that body.
    pub async fn poll_json(&self, uri: &str, accept: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + crate::support::DEADLINE;
        loop {
            let (status, body) = self.get_json(uri).await;
            if status.is_success() && accept(&body) {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{uri} never answered as wanted; last {status}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The wrapper pid and start time of a process task, from its checkpoint.
    pub fn process_of(&self, task_id: &str) -> (u32, u64) {
        let checkpoint = CheckpointStore::new(self.work_dir.path())
            .load_task(&self.framework_id(), &TaskId::new(task_id))
            .expect("checkpoint readable")
            .expect("the task is checkpointed");
        match checkpoint.runtime {
            RuntimeCheckpoint::Process { pid, start_time, .. } => (pid, start_time),
            other => panic!("not a process task: {other:?}"),
        }
    }
}

/// Whether the process `pid` started at `start_time` still runs.
pub fn is_running(pid: u32, start_time: u64) -> bool {
    ProcessStat::read(pid).is_some_and(|stat| stat.is_alive() && stat.start_time == start_time)
}

/// URL-encodes a query value.
pub fn encode(value: &str) -> String {
    let mut encoded = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~/".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

impl Drop for TestAgent {
    /// Whatever the test left running goes: process groups still checkpointed (checked by
    /// start time, so no stranger is signalled), their cgroups, and the agent's containers.
    fn drop(&mut self) {
        drop(self.agent.take());
        let store = CheckpointStore::new(self.work_dir.path());
        for checkpoint in store.load_tasks().unwrap_or_default() {
            let RuntimeCheckpoint::Process { pid, start_time, cgroup, .. } = checkpoint.runtime
            else {
                continue;
            };
            if is_running(pid, start_time) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            if let Some(cgroup) = cgroup {
                cgroup.kill_all();
                remove_cgroup(&cgroup);
            }
        }
        let filter = format!("label={LABEL_AGENT_ID}={}", self.agent_id);
        let Ok(output) =
            std::process::Command::new("docker").args(["ps", "-aq", "--filter", &filter]).output()
        else {
            return;
        };
        for id in String::from_utf8_lossy(&output.stdout).split_whitespace() {
            let _ = std::process::Command::new("docker").args(["rm", "-f", id]).output();
        }
    }
}

fn remove_cgroup(cgroup: &TaskCgroup) {
    let dirs: Vec<PathBuf> = match cgroup {
        TaskCgroup::V2 { dir } => vec![dir.clone()],
        TaskCgroup::V1 { memory_dir, cpu_dir, cpuacct_dir } => {
            let mut dirs = vec![memory_dir.clone(), cpu_dir.clone()];
            dirs.extend(cpuacct_dir.clone());
            dirs
        }
    };
    for dir in dirs {
        for _ in 0..50 {
            match std::fs::remove_dir(&dir) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => break,
            }
        }
    }
}
