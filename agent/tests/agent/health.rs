use std::time::Duration;

use corral_agent::containerizer::{TaskEvent, UnhealthyPolicy};
use corral_agent::health::{CheckOutcome, HealthChecker, HealthEvent, HealthState, HealthTarget};
use corral_agent::limits::LimitMode;
use corral_agent::transition::TaskTransition;
use corral_state::model::{CommandInfo, HealthCheck, HealthCheckKind, HttpCheck, TcpCheck};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{
    events_until, framework, free_port, run_to_end, shell_task, terminal, ProcessAgent,
};

fn quick_check(kind: HealthCheckKind) -> HealthCheck {
    HealthCheck {
        delay: Duration::ZERO,
        interval: Duration::from_millis(100),
        timeout: Duration::from_secs(2),
        consecutive_failures: 2,
        grace_period: Duration::ZERO,
        ..HealthCheck::new(kind)
    }
}

fn failed() -> CheckOutcome {
    CheckOutcome::Failed { message: "no".to_owned() }
}

#[test]
fn failures_inside_the_grace_period_are_ignored_until_a_first_success() {
    let check = HealthCheck {
        grace_period: Duration::from_secs(10),
        consecutive_failures: 2,
        ..quick_check(HealthCheckKind::Tcp)
    };
    let mut state = HealthState::new(&check);

    assert_eq!(state.observe(failed(), Duration::from_secs(1)), vec![]);
    assert_eq!(state.observe(failed(), Duration::from_secs(2)), vec![]);
    assert_eq!(state.healthy(), None);

    let passed = state.observe(CheckOutcome::Passed, Duration::from_secs(3));
    assert!(matches!(passed[..], [HealthEvent::Changed { healthy: true, .. }]), "{passed:?}");

    // After a success, failures count even inside the grace period.
    let first = state.observe(failed(), Duration::from_secs(4));
    assert!(matches!(first[..], [HealthEvent::Changed { healthy: false, .. }]), "{first:?}");
    let second = state.observe(failed(), Duration::from_secs(5));
    assert!(
        matches!(second[..], [HealthEvent::FailureLimitReached { failures: 2, .. }]),
        "{second:?}"
    );
}

#[test]
fn failures_after_the_grace_period_count_and_a_success_resets_them() {
    let check = HealthCheck {
        grace_period: Duration::from_secs(10),
        consecutive_failures: 3,
        ..quick_check(HealthCheckKind::Tcp)
    };
    let mut state = HealthState::new(&check);

    let first = state.observe(failed(), Duration::from_secs(11));
    assert!(matches!(first[..], [HealthEvent::Changed { healthy: false, .. }]));
    assert_eq!(state.observe(failed(), Duration::from_secs(12)), vec![]);
    let back = state.observe(CheckOutcome::Passed, Duration::from_secs(13));
    assert!(matches!(back[..], [HealthEvent::Changed { healthy: true, .. }]));
    // The count started over: two more failures are not yet three.
    state.observe(failed(), Duration::from_secs(14));
    assert_eq!(state.observe(failed(), Duration::from_secs(15)), vec![]);
    let third = state.observe(failed(), Duration::from_secs(16));
    assert!(
        matches!(third[..], [HealthEvent::FailureLimitReached { failures: 3, .. }]),
        "{third:?}"
    );
}

/// Answers 200 on `/ok` and 500 elsewhere, for as long as the test runs.
async fn http_server() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0u8; 1024];
                let read = stream.read(&mut buffer).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buffer[..read]);
                let status = if request.starts_with("GET /ok ") {
                    "200 OK"
                } else {
                    "500 Internal Server Error"
                };
                let answer =
                    format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    port
}

fn host_target() -> HealthTarget {
    HealthTarget::Process {
        sandbox: std::env::temp_dir(),
        environment: Vec::new(),
        user: None,
        port_mappings: Vec::new(),
    }
}

#[tokio::test]
async fn http_checks_pass_on_2xx_and_fail_on_5xx_and_refused_connections() {
    let port = http_server().await;
    let http = |path: &str, port: u16| {
        let check = HealthCheck {
            http: Some(HttpCheck {
                scheme: None,
                port: u32::from(port),
                path: Some(path.to_owned()),
            }),
            ..quick_check(HealthCheckKind::Http)
        };
        HealthChecker::new(check, host_target())
    };

    assert_eq!(http("/ok", port).check_once().await, CheckOutcome::Passed);
    let server_error = http("/broken", port).check_once().await;
    assert!(
        matches!(&server_error, CheckOutcome::Failed { message } if message.contains("500")),
        "{server_error:?}"
    );
    let refused = http("/ok", free_port()).check_once().await;
    assert!(matches!(refused, CheckOutcome::Failed { .. }), "{refused:?}");
}

#[tokio::test]
async fn tcp_checks_pass_on_a_listening_port_and_fail_on_a_closed_one() {
    let port = http_server().await;
    let tcp = |port: u16| {
        let check = HealthCheck {
            tcp: Some(TcpCheck { port: u32::from(port) }),
            ..quick_check(HealthCheckKind::Tcp)
        };
        HealthChecker::new(check, host_target())
    };

    assert_eq!(tcp(port).check_once().await, CheckOutcome::Passed);
    assert!(matches!(tcp(free_port()).check_once().await, CheckOutcome::Failed { .. }));
}

#[tokio::test]
async fn a_command_check_that_times_out_fails() {
    let check = HealthCheck {
        command: Some(CommandInfo { value: Some("sleep 5".to_owned()), ..CommandInfo::default() }),
        timeout: Duration::from_millis(200),
        ..quick_check(HealthCheckKind::Command)
    };
    let outcome = HealthChecker::new(check, host_target()).check_once().await;
    assert!(
        matches!(&outcome, CheckOutcome::Failed { message } if message.contains("timed out")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_passing_command_check_reports_the_task_healthy() {
    let agent = ProcessAgent::new("healthy", LimitMode::Rlimit, UnhealthyPolicy::KillTask);
    let mut task =
        shell_task("healthy", "cpus:0.1;mem:32", "touch alive; while true; do sleep 0.1; done");
    task.health_check = Some(HealthCheck {
        // Runs in the sandbox with the task's environment.
        command: Some(CommandInfo {
            value: Some("test -e alive && test \"$MESOS_TASK_ID\" = healthy".to_owned()),
            ..CommandInfo::default()
        }),
        grace_period: Duration::from_secs(20),
        ..quick_check(HealthCheckKind::Command)
    });
    let mut handle = agent.runner.launch(task, framework());

    events_until(&mut handle, |event| *event == TaskEvent::Health { healthy: true }).await;

    handle.kill(None);
    let events = run_to_end(&mut handle).await;
    assert!(!events.contains(&TaskEvent::Health { healthy: false }), "{events:?}");
}

#[tokio::test]
async fn a_failing_command_check_makes_the_task_unhealthy_and_killed() {
    let agent = ProcessAgent::new("unhealthy", LimitMode::Rlimit, UnhealthyPolicy::KillTask);
    let mut task = shell_task("unhealthy", "cpus:0.1;mem:32", "while true; do sleep 0.1; done");
    task.health_check = Some(HealthCheck {
        command: Some(CommandInfo { value: Some("exit 1".to_owned()), ..CommandInfo::default() }),
        ..quick_check(HealthCheckKind::Command)
    });
    let mut handle = agent.runner.launch(task, framework());

    let events = run_to_end(&mut handle).await;

    assert!(events.contains(&TaskEvent::Health { healthy: false }), "{events:?}");
    assert!(events.contains(&TaskEvent::Transition(TaskTransition::Killing)), "{events:?}");
    let ended = terminal(&events);
    assert!(
        matches!(&ended, TaskTransition::Killed { message } if message.contains("2 times")),
        "{ended:?}"
    );
}

#[tokio::test]
async fn report_only_keeps_an_unhealthy_task_running() {
    let agent = ProcessAgent::new("report-only", LimitMode::Rlimit, UnhealthyPolicy::ReportOnly);
    let mut task =
        shell_task("report", "cpus:0.1;mem:32", "while [ ! -e stop ]; do sleep 0.1; done");
    task.health_check = Some(HealthCheck {
        command: Some(CommandInfo { value: Some("exit 1".to_owned()), ..CommandInfo::default() }),
        consecutive_failures: 1,
        ..quick_check(HealthCheckKind::Command)
    });
    let mut handle = agent.runner.launch(task, framework());
    events_until(&mut handle, |event| *event == TaskEvent::Health { healthy: false }).await;

    std::fs::write(agent.sandbox("report").join("stop"), "").expect("write stop file");
    assert_eq!(terminal(&run_to_end(&mut handle).await), TaskTransition::Finished);
}
