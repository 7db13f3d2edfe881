use std::time::Duration;

use corral_agent::containerizer::{TaskEvent, UnhealthyPolicy};
use corral_agent::limits::LimitMode;
use corral_agent::transition::{TaskTransition, Termination};
use corral_state::model::{CommandInfo, KillPolicy, TaskReason};
use tokio::time::Instant;

use crate::support::{
    eventually, file_text, framework, run_to_end, shell_task, terminal, transitions, ProcessAgent,
};

#[tokio::test]
async fn a_task_that_exits_zero_finishes_and_keeps_its_output() {
    let agent = ProcessAgent::new("finish", LimitMode::Rlimit, UnhealthyPolicy::KillTask);
    let task = shell_task("hello", "cpus:0.1;mem:32", "echo to-stdout; echo to-stderr >&2");
    let mut handle = agent.runner.launch(task, framework());

    let events = run_to_end(&mut handle).await;

    assert_eq!(
        transitions(&events),
        vec![TaskTransition::Starting, TaskTransition::Running, TaskTransition::Finished]
    );
    let sandbox = agent.sandbox("hello");
    assert_eq!(file_text(&sandbox.join("stdout")), "to-stdout\n");
    assert_eq!(file_text(&sandbox.join("stderr")), "to-stderr\n");
}

#[tokio::test]
async fn a_failing_task_keeps_its_exit_code_and_last_error_line() {
    let agent = ProcessAgent::new("fail", LimitMode::Rlimit, UnhealthyPolicy::KillTask);
    let task = shell_task("fails", "cpus:0.1;mem:32", "echo something broke >&2; exit 3");
    let mut handle = agent.runner.launch(task, framework());

    let ended = terminal(&run_to_end(&mut handle).await);

    let TaskTransition::Failed { exit_code, reason, message } = ended else {
        panic!("expected Failed, got {ended:?}");
    };
    assert_eq!(exit_code, Some(3));
    assert_eq!(reason, None);
    assert!(message.contains("status 3") && message.contains("something broke"), "{message}");
}

#[tokio::test]
async fn the_task_sees_the_mesos_environment() {
    let agent = ProcessAgent::new("environment", LimitMode::Rlimit, UnhealthyPolicy::KillTask);
    let mut task = shell_task(
        "env",
        "cpus:0.1;mem:32;ports:[31100-31101]",
        "echo \"$PORT0 $PORT1 $PORT $PORTS|$MESOS_TASK_ID|$MESOS_FRAMEWORK_ID|$MESOS_AGENT_ID|$MESOS_SANDBOX|$CUSTOM|$(pwd)\"",
    );
    if let Some(command) = task.command.as_mut() {
        command.environment.push(("CUSTOM".to_owned(), "custom-value".to_owned()));
    }
    let mut handle = agent.runner.launch(task, framework());

    assert_eq!(terminal(&run_to_end(&mut handle).await), TaskTransition::Finished);

    let sandbox = agent.sandbox("env");
    let sandbox_text = sandbox.display().to_string();
    let expected = format!(
        "31100 31101 31100 31100,31101|env|test-framework|{}|{sandbox_text}|custom-value|{sandbox_text}\n",
        agent.agent_id
    );
    assert_eq!(file_text(&sandbox.join("stdout")), expected);
}

#[tokio::test]
async fn a_task_that_handles_sigterm_ends_killed_within_the_grace_period() {
    let agent = ProcessAgent::new("graceful", LimitMode::Rlimit, UnhealthyPolicy::KillTask);
    let task = shell_task(
        "graceful",
        "cpus:0.1;mem:32",
        "trap 'echo got-sigterm; exit 0' TERM; echo ready; while true; do sleep 0.1; done",
    );
    let mut handle = agent.runner.launch(task, framework());
    let stdout = agent.sandbox("graceful").join("stdout");
    eventually("the task to be ready", || file_text(&stdout).contains("ready")).await;

    let started = Instant::now();
    handle.kill(Some(KillPolicy { grace_period: Some(Duration::from_secs(20)) }));
    let events = run_to_end(&mut handle).await;

    let states = transitions(&events);
    assert_eq!(
        states[..3],
        [TaskTransition::Starting, TaskTransition::Running, TaskTransition::Killing]
    );
    assert!(matches!(states[3], TaskTransition::Killed { .. }), "{states:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "SIGTERM was not enough: {:?}",
        started.elapsed()
    );
    assert!(file_text(&stdout).contains("got-sigterm"));
}

#[tokio::test]
async fn a_task_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let agent = ProcessAgent::new("stubborn", LimitMode::Rlimit, UnhealthyPolicy::KillTask);
    let mut task = shell_task(
        "stubborn",
        "cpus:0.1;mem:32",
        "trap '' TERM; echo ready; while true; do sleep 0.1; done",
    );
    task.kill_policy = Some(KillPolicy { grace_period: Some(Duration::from_millis(1500)) });
    let mut handle = agent.runner.launch(task, framework());
    let stdout = agent.sandbox("stubborn").join("stdout");
    eventually("the task to be ready", || file_text(&stdout).contains("ready")).await;

    let started = Instant::now();
    handle.kill(None);
    let ended = terminal(&run_to_end(&mut handle).await);

    assert!(matches!(ended, TaskTransition::Killed { .. }), "{ended:?}");
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(1500), "killed before the grace period: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(10), "SIGKILL came late: {elapsed:?}");
}

#[tokio::test]
async fn an_executable_that_does_not_exist_fails_with_a_message() {
    let agent = ProcessAgent::new("missing-exe", LimitMode::Rlimit, UnhealthyPolicy::KillTask);
    let mut task = shell_task("missing", "cpus:0.1;mem:32", "unused");
    task.command = Some(CommandInfo {
        value: Some("/nonexistent/corral-binary".to_owned()),
        shell: false,
        arguments: vec!["corral-binary".to_owned(), "--flag".to_owned()],
        ..CommandInfo::default()
    });
    let mut handle = agent.runner.launch(task, framework());

    let events = run_to_end(&mut handle).await;

    let ended = terminal(&events);
    let TaskTransition::Failed { reason, message, exit_code } = ended else {
        panic!("expected Failed, got {ended:?}");
    };
    assert_eq!(reason, Some(TaskReason::ContainerLaunchFailed));
    assert_eq!(exit_code, None);
    assert!(
        message.contains("/nonexistent/corral-binary") && message.contains("not found"),
        "{message}"
    );
    assert!(!transitions(&events).contains(&TaskTransition::Running));
}

#[tokio::test]
async fn a_shell_command_that_does_not_exist_fails_with_the_shells_message() {
    let agent = ProcessAgent::new("missing-cmd", LimitMode::Rlimit, UnhealthyPolicy::KillTask);
    let task = shell_task("missing", "cpus:0.1;mem:32", "corral-no-such-command --now");
    let mut handle = agent.runner.launch(task, framework());

    let ended = terminal(&run_to_end(&mut handle).await);

    let TaskTransition::Failed { exit_code, message, .. } = ended else {
        panic!("expected Failed, got {ended:?}");
    };
    assert_eq!(exit_code, Some(127));
    assert!(
        message.contains("corral-no-such-command") && message.contains("not found"),
        "{message}"
    );
}

#[tokio::test]
async fn a_task_for_a_user_that_does_not_exist_fails_when_the_agent_is_root() {
    if !nix::unistd::geteuid().is_root() {
        // Without root the agent never switches users (as Mesos with --switch_user=false),
        // so the check below would not apply; the root case is what CI runs.
        let agent = ProcessAgent::new("user-nonroot", LimitMode::Rlimit, UnhealthyPolicy::KillTask);
        let mut task = shell_task("user", "cpus:0.1;mem:32", "id -u");
        if let Some(command) = task.command.as_mut() {
            command.user = Some("corral-no-such-user".to_owned());
        }
        let mut handle = agent.runner.launch(task, framework());
        assert_eq!(terminal(&run_to_end(&mut handle).await), TaskTransition::Finished);
        return;
    }
    let agent = ProcessAgent::new("user", LimitMode::Rlimit, UnhealthyPolicy::KillTask);
    let mut task = shell_task("user", "cpus:0.1;mem:32", "id -u");
    if let Some(command) = task.command.as_mut() {
        command.user = Some("corral-no-such-user".to_owned());
    }
    let mut handle = agent.runner.launch(task, framework());

    let ended = terminal(&run_to_end(&mut handle).await);

    assert!(
        matches!(&ended, TaskTransition::Failed { message, .. } if message.contains("corral-no-such-user")),
        "{ended:?}"
    );
}

#[tokio::test]
async fn a_task_runs_as_the_requested_user_when_the_agent_is_root() {
    let agent = ProcessAgent::new("as-user", LimitMode::Rlimit, UnhealthyPolicy::KillTask);
    let mut task = shell_task("as-user", "cpus:0.1;mem:32", "id -u; touch written-by-task");
    if let Some(command) = task.command.as_mut() {
        command.user = Some("nobody".to_owned());
    }
    let mut handle = agent.runner.launch(task, framework());

    assert_eq!(terminal(&run_to_end(&mut handle).await), TaskTransition::Finished);

    let expected_uid = if nix::unistd::geteuid().is_root() {
        nix::unistd::User::from_name("nobody").expect("passwd").expect("user nobody").uid.as_raw()
    } else {
        nix::unistd::geteuid().as_raw()
    };
    assert_eq!(
        file_text(&agent.sandbox("as-user").join("stdout")).trim(),
        expected_uid.to_string()
    );
}

#[tokio::test]
async fn rlimit_mode_applies_the_memory_limit_as_address_space() {
    let agent = ProcessAgent::new("rlimit", LimitMode::Rlimit, UnhealthyPolicy::KillTask);
    let task = shell_task("rlimit", "cpus:0.1;mem:48", "ulimit -v");
    let mut handle = agent.runner.launch(task, framework());

    assert_eq!(terminal(&run_to_end(&mut handle).await), TaskTransition::Finished);
    assert_eq!(file_text(&agent.sandbox("rlimit").join("stdout")).trim(), (48 * 1024).to_string());
}

#[tokio::test]
async fn cgroup_limits_are_applied_and_a_memory_hog_fails_with_the_memory_reason() {
    let mode = LimitMode::detect();
    eprintln!("limit mode on this machine: {mode}");
    let agent = ProcessAgent::new("memory", mode.clone(), UnhealthyPolicy::KillTask);

    // The limit read back from the kernel while the task runs.
    let probe = shell_task("limits", "cpus:0.5;mem:40", "while true; do sleep 0.1; done");
    let mut container = agent
        .containerizer
        .launch(&probe, &framework())
        .await
        .unwrap_or_else(|termination| panic!("launch failed: {termination:?}"));
    if let corral_agent::containerizer::Container::Process(process) = &container {
        match process.cgroup() {
            Some(cgroup) => {
                assert_eq!(cgroup.memory_limit_bytes(), Some(40 * 1024 * 1024));
                assert_eq!(cgroup.cpu_quota(), Some((50_000, 100_000)));
                assert!(cgroup.pids().contains(&process.pid()), "the task is not in its cgroup");
            }
            None => assert!(!mode.uses_cgroups(), "cgroup mode without a task cgroup"),
        }
    }
    let killed = container.kill(Duration::from_millis(500)).await;
    assert!(
        matches!(killed, Termination::Signalled { .. } | Termination::Exited { .. }),
        "{killed:?}"
    );

    // The shell holds the whole 200 MB command output in one variable.
    let hog = shell_task(
        "hog",
        "cpus:0.5;mem:40",
        "hog=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ${#hog}",
    );
    let mut handle = agent.runner.launch(hog, framework());
    let ended = terminal(&run_to_end(&mut handle).await);

    let TaskTransition::Failed { reason, .. } = &ended else {
        panic!("a 200 MB task under a 40 MiB limit must fail, got {ended:?}");
    };
    if mode.uses_cgroups() {
        assert_eq!(*reason, Some(TaskReason::ContainerLimitationMemory), "{ended:?}");
    }
}

#[tokio::test]
async fn a_task_killed_before_it_ran_is_not_lost() {
    // The kill arrives while the launch is in flight: the task still ends exactly once.
    let agent = ProcessAgent::new("early-kill", LimitMode::Rlimit, UnhealthyPolicy::KillTask);
    let task = shell_task("early", "cpus:0.1;mem:32", "while true; do sleep 0.1; done");
    let mut handle = agent.runner.launch(task, framework());
    handle.kill(Some(KillPolicy { grace_period: Some(Duration::from_secs(1)) }));

    let events = run_to_end(&mut handle).await;

    let ends = transitions(&events).iter().filter(|transition| transition.is_terminal()).count();
    assert_eq!(ends, 1, "{events:?}");
    assert!(matches!(terminal(&events), TaskTransition::Killed { .. }), "{events:?}");
    assert!(!events.iter().any(|event| matches!(event, TaskEvent::CheckpointFailed { .. })));
}

#[tokio::test]
async fn a_task_with_nothing_to_run_ends_in_error() {
    let agent = ProcessAgent::new("nothing", LimitMode::Rlimit, UnhealthyPolicy::KillTask);
    let mut task = shell_task("nothing", "cpus:0.1;mem:32", "unused");
    task.command = None;
    let mut handle = agent.runner.launch(task, framework());

    let ended = terminal(&run_to_end(&mut handle).await);

    assert!(
        matches!(&ended, TaskTransition::Error { message } if message.contains("neither a command")),
        "{ended:?}"
    );
    assert_eq!(ended.state(), corral_state::model::TaskState::Error);
}
