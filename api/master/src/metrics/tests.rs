//! The exposition's content and promtool's verdict on it.

use std::io::Write;
use std::process::{Command as Process, Stdio};

use corral_testkit::state::StateBuilder;

use std::time::Duration;

use corral_log::{LogObserver, Observation};

use super::{EventMetrics, LogMetrics, Metrics, StateGauges};

fn state() -> corral_state::ClusterState {
    let mut cluster = StateBuilder::default();
    cluster.agent("h", "", "cpus:4;mem:1024;disk:2048").framework("f", "eng");
    cluster.offer("eng", "cpus:2;mem:256");
    cluster.state
}

#[test]
fn cluster_gauges_follow_the_state() {
    let metrics = Metrics::new().unwrap();
    metrics.set_state(&StateGauges::compute(&state()));
    let text = metrics.render().unwrap();
    for expected in [
        "corral_agents{state=\"active\"} 1",
        "corral_frameworks{state=\"connected\"} 1",
        "corral_tasks{state=\"TASK_RUNNING\"} 0",
        "corral_resource_cpus{kind=\"total\",role=\"*\"} 4",
        "corral_resource_cpus{kind=\"offered\",role=\"eng\"} 2",
        "corral_resource_memory_bytes{kind=\"total\",role=\"*\"} 1073741824",
        "corral_role_dominant_share{role=\"eng\"} 0.5",
        "corral_offers_outstanding 1",
        ",name=\"f\"} 0.5",
        "corral_frameworks_without_offers 0",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
}

/// Ages are at the state's clock: the agent heard from 30 s before the latest entry is 30 s
/// old (read from a copy without the clock, every age read 0).
#[test]
fn heartbeat_age_is_at_the_state_clock() {
    let mut cluster = StateBuilder::default();
    cluster.agent("a", "", "cpus:1;mem:64");
    cluster.advance(Duration::from_secs(30));
    cluster.agent("b", "", "cpus:1;mem:64");
    let metrics = Metrics::new().unwrap();
    metrics.set_state(&StateGauges::compute(&cluster.state));
    let text = metrics.render().unwrap();
    assert!(text.contains("corral_agent_heartbeat_age_max_seconds 30\n"), "{text}");
    assert!(text.contains("corral_resource_cpus{kind=\"total\",role=\"*\"} 2\n"), "{text}");
}

/// promtool (Debian's `prometheus` package, installed by ./scripts/test.sh) finds nothing
/// wrong with the exposition.
#[test]
fn promtool_finds_no_problem() {
    let metrics = Metrics::new().unwrap();
    metrics.set_state(&StateGauges::compute(&state()));
    metrics.http_requests.with_label_values(&["/api/v1/scheduler", "POST", "202"]).inc();
    metrics.http_request_seconds.with_label_values(&["/api/v1/scheduler", "POST"]).observe(0.003);
    // Every log observation and the leader's event metrics, so every family has samples.
    let log = LogMetrics::new(&metrics);
    let took = Duration::from_micros(300);
    for observation in [
        Observation::Append { took },
        Observation::Flush { took },
        Observation::Apply { entries: 3, took },
        Observation::Commit { commands: 17, took },
        Observation::SnapshotBuild { bytes: 4096, took },
        Observation::SnapshotInstall { bytes: 4096, took },
    ] {
        log.observe(observation);
    }
    let mut events = EventMetrics::default();
    let mut cluster = StateBuilder::default();
    cluster.agent("h", "", "cpus:4;mem:1024;disk:2048").framework("f", "eng");
    for event in cluster.offer("eng", "cpus:2;mem:256") {
        events.observe(&metrics, &event, cluster.state.now());
    }
    metrics.stream_disconnects.with_label_values(&["too_slow"]).inc();
    metrics.stream_subscribers.with_label_values(&["framework"]).set(1);
    let mut promtool = Process::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (./scripts/test.sh installs Debian's prometheus package)");
    promtool.stdin.take().unwrap().write_all(metrics.render().unwrap().as_bytes()).unwrap();
    let output = promtool.wait_with_output().unwrap();
    let complaints = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success() && complaints.trim().is_empty(), "promtool: {complaints}");
}

/// The leader's event metrics: a task from ACCEPT applied (its `launched_at`) to RUNNING 2.5 s
/// later is one launch of 2.5 s, and each new state counts once.
#[test]
fn launch_latency_runs_from_the_accept_to_running() {
    use corral_state::model::{TaskSource, TaskState, TaskStatus};
    use corral_state::{Event, FrameworkId};
    use corral_testkit::state::{AGENT, FRAMEWORK};

    let mut cluster = StateBuilder::default();
    cluster.agent("h", "", "cpus:4;mem:1024").framework("f", "*");
    cluster.launch("web", "cpus:1;mem:128");
    let framework_id = FrameworkId::from(FRAMEWORK);
    let task = cluster.state.task(&framework_id, &"web".into()).expect("launched").clone();
    let running = TaskStatus {
        task_id: "web".into(),
        state: TaskState::Running,
        message: None,
        source: TaskSource::Executor,
        reason: None,
        healthy: None,
        agent_id: Some(AGENT.into()),
        executor_id: None,
        timestamp: task.launched_at.plus(Duration::from_millis(2500)),
        uuid: None,
        exit_code: None,
    };
    let metrics = Metrics::new().unwrap();
    let mut events = EventMetrics::default();
    let now = task.launched_at;
    events.observe(&metrics, &Event::TaskAdded { task: std::sync::Arc::new(task) }, now);
    let update = |previous: TaskState| Event::TaskUpdated {
        framework_id: framework_id.clone(),
        agent_id: AGENT.into(),
        status: running.clone(),
        previous,
    };
    events.observe(&metrics, &update(TaskState::Staging), now);
    // The same state again (a repeated update) is not a transition.
    events.observe(&metrics, &update(TaskState::Running), now);
    assert_eq!(metrics.task_launch_seconds.get_sample_count(), 1);
    assert_eq!(metrics.task_launch_seconds.get_sample_sum(), 2.5);
    let transitions = |state: &str| metrics.task_transitions.with_label_values(&[state]).get();
    assert_eq!(transitions("TASK_STAGING"), 1);
    assert_eq!(transitions("TASK_RUNNING"), 1);
}
