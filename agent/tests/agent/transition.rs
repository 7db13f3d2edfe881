use corral_agent::transition::{KillRequested, TaskTransition, Termination};
use corral_state::model::{TaskReason, TaskSource, TaskState};
use corral_state::{AgentId, TaskId, Timestamp, UpdateUuid};

#[test]
fn terminations_become_the_mesos_states_and_reasons() {
    let judged = |termination: Termination| termination.into_transition(KillRequested::No);
    assert_eq!(judged(Termination::Exited { code: 0 }), TaskTransition::Finished);
    assert_eq!(judged(Termination::Exited { code: 2 }).exit_code(), Some(2));
    assert!(matches!(
        judged(Termination::OutOfMemory { limit_mib: Some(64) }),
        TaskTransition::Failed { reason: Some(TaskReason::ContainerLimitationMemory), .. }
    ));
    assert!(matches!(
        judged(Termination::LaunchFailed { message: "x".to_owned() }),
        TaskTransition::Failed { reason: Some(TaskReason::ContainerLaunchFailed), .. }
    ));
    assert_eq!(judged(Termination::Invalid { message: "x".to_owned() }).state(), TaskState::Error);
    // A kill the agent asked for ends KILLED, however the process ended.
    assert!(matches!(
        Termination::Exited { code: 0 }.into_transition(KillRequested::Yes),
        TaskTransition::Killed { .. }
    ));
}

#[test]
fn a_transition_becomes_a_status_update_with_its_uuid_and_exit_code() {
    let transition = TaskTransition::Failed {
        exit_code: Some(3),
        reason: None,
        message: "Command exited with status 3".to_owned(),
    };
    let status = transition.to_status(
        TaskId::new("t"),
        AgentId::new("a"),
        Timestamp::from_secs(5),
        UpdateUuid::new("u-1"),
        Some(false),
    );
    assert_eq!(status.state, TaskState::Failed);
    assert_eq!(status.exit_code, Some(3));
    assert_eq!(status.uuid, Some(UpdateUuid::new("u-1")));
    assert_eq!(status.healthy, Some(false));
    assert_eq!(status.source, TaskSource::Executor);
    assert_eq!(status.agent_id, Some(AgentId::new("a")));
    assert_eq!(status.message.as_deref(), Some("Command exited with status 3"));
}
