//! Per-task usage: the cgroup and `/proc` readers against exact kernel texts, then
//! `/monitor/statistics` and `/metrics` for real process and Docker tasks.

use std::io::Write;
use std::process::Stdio;

use corral_agent::daemon::OnStop;
use std::os::unix::process::CommandExt;

use corral_agent::usage::{
    cpu_stat_v2, cpuacct_stat_v1, keyed_value, memory_limit, read_process_groups, CpuTimes, Reading,
};
use corral_state::model::{
    CommandInfo, ContainerInfo, ContainerType, DockerInfo, DockerNetwork, HealthCheck,
    HealthCheckKind, TaskState,
};
use serde_json::Value;

use crate::running::TestAgent;
use crate::support::{ensure_test_image, shell_task, TEST_IMAGE};

const BURN: &str = "while true; do :; done";
const MIB: u64 = 1024 * 1024;

#[test]
fn cgroup_v2_cpu_stat_gives_user_and_system_seconds() {
    let text = "usage_usec 3500000\nuser_usec 2500000\nsystem_usec 1000000\nnr_periods 0\n";
    assert_eq!(cpu_stat_v2(text), Some(CpuTimes { user_secs: 2.5, system_secs: 1.0 }));
    assert_eq!(cpu_stat_v2("usage_usec 1\n"), None);
}

#[test]
fn cgroup_v1_cpuacct_stat_is_in_user_hz_ticks() {
    assert_eq!(
        cpuacct_stat_v1("user 250\nsystem 75\n"),
        Some(CpuTimes { user_secs: 2.5, system_secs: 0.75 })
    );
}

#[test]
fn memory_stat_keys_and_limits_read_as_the_kernel_writes_them() {
    let stat = "cache 4096\nrss 12288\nrss_huge 0\ntotal_rss 16384\n";
    assert_eq!(keyed_value(stat, "rss"), Some(12288));
    assert_eq!(keyed_value(stat, "total_rss"), Some(16384));
    assert_eq!(keyed_value(stat, "anon"), None);
    assert_eq!(memory_limit("67108864\n"), Some(64 * MIB));
    assert_eq!(memory_limit("max\n"), None);
    assert_eq!(memory_limit("9223372036854771712\n"), None);
}

/// Under rlimits a task's usage is its process group's, summed over `/proc`: children
/// included, and the CPU of children that already ended (reaped by the group) too.
#[tokio::test]
async fn a_process_groups_usage_is_read_from_proc() {
    let mut child = std::process::Command::new("/bin/sh")
        .args(["-c", "while true; do :; done & while true; do /bin/true; done"])
        .process_group(0)
        .spawn()
        .expect("spawn a burner");
    let group = child.id() as i32;
    let groups = std::collections::BTreeSet::from([group]);
    let read = || read_process_groups(&groups).get(&group).copied().expect("the group is found");
    let first = read();
    let deadline = tokio::time::Instant::now() + crate::support::DEADLINE;
    let total = |reading: &Reading| {
        let cpu = reading.cpu.expect("CPU from /proc");
        cpu.user_secs + cpu.system_secs
    };
    while total(&read()) < total(&first) + 0.2 {
        assert!(tokio::time::Instant::now() < deadline, "the group's CPU time did not grow");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(read().rss_bytes > 0);
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(group),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = child.wait();
    // The background loop dies a moment after the signal; a dead group reads as nothing.
    crate::support::eventually("the killed group to vanish", || {
        !read_process_groups(&groups).contains_key(&group)
    })
    .await;
}

/// Polls `/monitor/statistics` until `task`'s entry satisfies `accept`; that entry.
pub async fn statistics_of(
    agent: &TestAgent,
    task: &str,
    accept: impl Fn(&Value) -> bool,
) -> Value {
    let entries = agent
        .poll_json("/monitor/statistics", |entries| entry(entries, task).is_some_and(&accept))
        .await;
    entry(&entries, task).cloned().expect("found above")
}

fn entry<'a>(entries: &'a Value, task: &str) -> Option<&'a Value> {
    entries.as_array()?.iter().find(|entry| entry["executor_id"] == task)
}

fn cpu_seconds(entry: &Value) -> f64 {
    let statistics = &entry["statistics"];
    statistics["cpus_user_time_secs"].as_f64().unwrap()
        + statistics["cpus_system_time_secs"].as_f64().unwrap()
}

/// CPU time grows between two samples, and memory is reported with its limit.
async fn assert_usage_grows(agent: &TestAgent, task: &str, cpus: f64, mem_mib: u64) -> f64 {
    let first = statistics_of(agent, task, |entry| cpu_seconds(entry) > 0.0).await;
    let first_cpu = cpu_seconds(&first);
    let first_time = first["statistics"]["timestamp"].as_f64().unwrap();
    // The kernel folds a cgroup's memory counters in every few seconds: a small task's RSS
    // may read 0 at first.
    let second = statistics_of(agent, task, |entry| {
        cpu_seconds(entry) > first_cpu + 0.05 && entry["statistics"]["mem_rss_bytes"] != 0
    })
    .await;
    assert!(second["statistics"]["timestamp"].as_f64().unwrap() > first_time, "{second}");
    let statistics = &second["statistics"];
    assert_eq!(statistics["mem_limit_bytes"].as_u64(), Some(mem_mib * MIB), "{statistics}");
    assert_eq!(statistics["cpus_limit"].as_f64(), Some(cpus), "{statistics}");
    cpu_seconds(&second)
}

fn promtool_check(text: &str) {
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (./scripts/test.sh installs Debian's prometheus package)");
    promtool.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write");
    let output = promtool.wait_with_output().expect("promtool ends");
    let complaints = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success() && complaints.trim().is_empty(), "promtool: {complaints}");
}

/// The value of the one sample `name{labels}` (labels as written, in order).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpu_burning_process_task_shows_growing_cpu_time_and_its_memory() {
    let agent = TestAgent::start("usage-process", OnStop::KillTasks).await;
    agent.launch(shell_task("usage-burner", "cpus:0.5;mem:64", BURN));
    agent.master.wait_for_state("usage-burner", TaskState::Running).await;

    let cpu = assert_usage_grows(&agent, "usage-burner", 0.5, 64).await;

    let (_, body) = agent.get("/metrics").await;
    let text = String::from_utf8(body).expect("text");
    let labels = format!("{{framework_id=\"{}\",task_id=\"usage-burner\"}}", agent.framework_id());
    let exported = sample(&text, &format!("corral_task_cpu_seconds_total{labels}"))
        .unwrap_or_else(|| panic!("no CPU series:\n{text}"));
    assert!(exported >= cpu, "{exported} < {cpu}");
    assert!(sample(&text, &format!("corral_task_memory_rss_bytes{labels}")).unwrap() > 0.0);
    assert_eq!(
        sample(&text, &format!("corral_task_memory_limit_bytes{labels}")),
        Some((64 * MIB) as f64)
    );
    assert_eq!(sample(&text, "corral_agent_task_usage_dropped_tasks"), Some(0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_docker_tasks_statistics_come_from_the_engine() {
    ensure_test_image();
    let agent = TestAgent::start("usage-docker", OnStop::KillTasks).await;
    let mut task = shell_task("usage-container", "cpus:0.5;mem:64", BURN);
    task.container = Some(ContainerInfo {
        kind: ContainerType::Docker,
        docker: Some(DockerInfo {
            image: TEST_IMAGE.to_owned(),
            network: DockerNetwork::None,
            port_mappings: Vec::new(),
            privileged: false,
            parameters: Vec::new(),
            force_pull_image: false,
        }),
        hostname: None,
    });
    agent.launch(task);
    agent.master.wait_for_state("usage-container", TaskState::Running).await;

    assert_usage_grows(&agent, "usage-container", 0.5, 64).await;

    let (_, body) = agent.get("/metrics").await;
    let text = String::from_utf8(body).expect("text");
    assert_eq!(
        sample(&text, "corral_agent_tasks{containerizer=\"docker\",state=\"TASK_RUNNING\"}"),
        Some(1.0),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool_and_count_launches_failures_and_health_checks() {
    let agent = TestAgent::start("usage-metrics", OnStop::KillTasks).await;
    let mut checked =
        shell_task("metrics-checked", "cpus:0.2;mem:32", "while true; do sleep 0.1; done");
    checked.health_check = Some(HealthCheck {
        command: Some(CommandInfo { value: Some("true".to_owned()), ..CommandInfo::default() }),
        delay: std::time::Duration::ZERO,
        interval: std::time::Duration::from_millis(100),
        ..HealthCheck::new(HealthCheckKind::Command)
    });
    agent.launch(checked);
    let mut missing = shell_task("metrics-missing", "cpus:0.1;mem:32", "/no/such/program");
    if let Some(command) = missing.command.as_mut() {
        command.shell = false;
    }
    agent.launch(missing);
    agent.master.wait_for_state("metrics-checked", TaskState::Running).await;
    agent.master.wait_for_state("metrics-missing", TaskState::Failed).await;

    agent.get("/health").await;
    agent.get("/no/such/route").await;
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + crate::support::DEADLINE;
    while sample(&text, "corral_agent_health_checks_total{kind=\"COMMAND\",outcome=\"passed\"}")
        .is_none_or(|passed| passed < 2.0)
        || !text.contains("corral_task_cpu_seconds_total{")
    {
        assert!(tokio::time::Instant::now() < deadline, "metrics never filled:\n{text}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let (_, body) = agent.get("/metrics").await;
        text = String::from_utf8(body).expect("text");
    }
    promtool_check(&text);

    assert_eq!(
        sample(&text, "corral_agent_task_launches_total{containerizer=\"process\"}"),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            "corral_agent_task_launch_failures_total{containerizer=\"process\",reason=\"REASON_CONTAINER_LAUNCH_FAILED\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "corral_agent_task_launch_duration_seconds_count{containerizer=\"process\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "corral_agent_tasks_completed_total{state=\"TASK_FAILED\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "corral_agent_tasks{containerizer=\"process\",state=\"TASK_RUNNING\"}"),
        Some(1.0)
    );
    assert_eq!(sample(&text, "corral_agent_registered"), Some(1.0));
    assert_eq!(
        sample(&text, &format!("corral_build_info{{version=\"{}\"}}", env!("CARGO_PKG_VERSION"))),
        Some(1.0)
    );
    assert!(sample(&text, "process_resident_memory_bytes").is_some_and(|bytes| bytes > 0.0));
    assert!(sample(&text, "process_open_fds").is_some_and(|fds| fds > 0.0));
    assert!(text.contains("process_cpu_seconds_total "), "{text}");
    assert!(text.contains("corral_agent_status_updates_pending "), "{text}");
    // By matched route, never by raw path.
    assert_eq!(
        sample(
            &text,
            "corral_http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "corral_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"}"
        ),
        Some(1.0),
        "{text}"
    );
}
