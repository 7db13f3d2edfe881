use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use corral_agent::checkpoint::CheckpointStore;
use corral_agent::containerizer::{
    Containerizer, TaskEvent, TaskHandle, TaskRunner, UnhealthyPolicy,
};
use corral_agent::docker::{DockerContainerizer, LABEL_AGENT_ID};
use corral_agent::limits::LimitMode;
use corral_agent::process::ProcessContainerizer;
use corral_agent::transition::TaskTransition;
use corral_state::model::TaskInfo;
use corral_state::{parse_resources, AgentId, FrameworkId, TaskId};
use tokio::time::Instant;

pub const TEST_IMAGE: &str = "corral-test-busybox:latest";
pub const DEADLINE: Duration = Duration::from_secs(30);

pub fn framework() -> FrameworkId {
    FrameworkId::new("test-framework")
}

/// A unique agent id per test keeps cgroups, containers and checkpoints apart.
pub fn agent_id(test: &str) -> AgentId {
    AgentId::from(format!("{test}-{}", std::process::id()))
}

pub fn shell_task(task_id: &str, resources: &str, command: &str) -> TaskInfo {
    let resources = parse_resources(resources).expect("test resources parse");
    TaskInfo::shell(TaskId::new(task_id), AgentId::new("unused"), resources, command)
}

pub struct ProcessAgent {
    pub work_dir: tempfile::TempDir,
    pub agent_id: AgentId,
    pub containerizer: Arc<Containerizer>,
    pub runner: TaskRunner,
}

impl ProcessAgent {
    pub fn new(
        test: &str,
        limit_mode: LimitMode,
        unhealthy_policy: UnhealthyPolicy,
    ) -> ProcessAgent {
        let work_dir = tempfile::tempdir().expect("temp dir");
        let agent_id = agent_id(test);
        let process =
            ProcessContainerizer::new(work_dir.path().to_owned(), agent_id.clone(), limit_mode);
        let containerizer = Arc::new(Containerizer::new(process, None));
        let runner = TaskRunner::new(
            containerizer.clone(),
            CheckpointStore::new(work_dir.path()),
            unhealthy_policy,
        );
        ProcessAgent { work_dir, agent_id, containerizer, runner }
    }

    pub fn sandbox(&self, task_id: &str) -> PathBuf {
        corral_agent::environment::sandbox_dir(
            self.work_dir.path(),
            &framework(),
            &TaskId::new(task_id),
        )
    }
}

/// Every event up to and including the terminal transition.
pub async fn run_to_end(handle: &mut TaskHandle) -> Vec<TaskEvent> {
    let mut events = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    loop {
        let event = tokio::time::timeout_at(deadline, handle.next_event())
            .await
            .unwrap_or_else(|_| {
                panic!("task did not end in {DEADLINE:?}; events so far: {events:?}")
            })
            .unwrap_or_else(|| {
                panic!("event stream closed before a terminal transition: {events:?}")
            });
        let terminal =
            matches!(&event, TaskEvent::Transition(transition) if transition.is_terminal());
        events.push(event);
        if terminal {
            return events;
        }
    }
}

/// Reads events until `wanted` matches one; returns everything read.
pub async fn events_until(
    handle: &mut TaskHandle,
    wanted: impl Fn(&TaskEvent) -> bool,
) -> Vec<TaskEvent> {
    let mut events = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    loop {
        let event = tokio::time::timeout_at(deadline, handle.next_event())
            .await
            .unwrap_or_else(|_| panic!("wanted event did not come; events so far: {events:?}"))
            .unwrap_or_else(|| panic!("event stream closed: {events:?}"));
        let found = wanted(&event);
        events.push(event);
        if found {
            return events;
        }
    }
}

pub fn transitions(events: &[TaskEvent]) -> Vec<TaskTransition> {
    events
        .iter()
        .filter_map(|event| match event {
            TaskEvent::Transition(transition) => Some(transition.clone()),
            _ => None,
        })
        .collect()
}

pub fn terminal(events: &[TaskEvent]) -> TaskTransition {
    transitions(events).last().cloned().expect("a transition")
}

/// Polls `condition` until it holds or the deadline passes.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    corral_testkit::eventually(DEADLINE, what, || {
        let met = condition();
        async move { met.then_some(()) }
    })
    .await
}

pub fn file_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

pub use corral_testkit::free_port;

/// Builds the test image once per test run, from `tests/images/build.sh`.
pub fn ensure_test_image() {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let result = BUILT.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/images/build.sh");
        let output = std::process::Command::new("sh")
            .arg(&script)
            .output()
            .map_err(|error| format!("cannot run {}: {error}", script.display()))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} failed: {}{}",
                script.display(),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    });
    if let Err(error) = result {
        panic!("{error}");
    }
}

pub struct DockerAgent {
    pub work_dir: tempfile::TempDir,
    pub agent_id: AgentId,
    pub containerizer: Arc<Containerizer>,
    pub runner: TaskRunner,
}

impl DockerAgent {
    pub async fn new(test: &str) -> DockerAgent {
        ensure_test_image();
        let work_dir = tempfile::tempdir().expect("temp dir");
        let agent_id = agent_id(test);
        let process = ProcessContainerizer::new(
            work_dir.path().to_owned(),
            agent_id.clone(),
            LimitMode::Rlimit,
        );
        let docker = DockerContainerizer::connect(work_dir.path().to_owned(), agent_id.clone())
            .await
            .expect("the Docker engine answers");
        let containerizer = Arc::new(Containerizer::new(process, Some(docker)));
        let runner = TaskRunner::new(
            containerizer.clone(),
            CheckpointStore::new(work_dir.path()),
            UnhealthyPolicy::KillTask,
        );
        DockerAgent { work_dir, agent_id, containerizer, runner }
    }
}

impl Drop for DockerAgent {
    /// Containers this test made go, whatever happened to the test.
    fn drop(&mut self) {
        let filter = format!("label={LABEL_AGENT_ID}={}", self.agent_id);
        let Ok(output) =
            std::process::Command::new("docker").args(["ps", "-aq", "--filter", &filter]).output()
        else {
            return;
        };
        let ids = String::from_utf8_lossy(&output.stdout);
        for id in ids.split_whitespace() {
            let _ = std::process::Command::new("docker").args(["rm", "-f", id]).output();
        }
    }
}
