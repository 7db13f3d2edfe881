use corral_agent::daemon::PendingStore;
use corral_agent::transition::TaskTransition;
use corral_state::{AgentId, FrameworkId, TaskId, Timestamp, UpdateUuid};

fn status(task: &str, transition: TaskTransition, uuid: &str) -> corral_state::model::TaskStatus {
    transition.to_status(
        TaskId::new(task),
        AgentId::new("corral-S1"),
        Timestamp::from_secs(1),
        UpdateUuid::new(uuid),
        None,
    )
}

#[test]
fn pending_updates_survive_in_order_until_delivered() {
    let directory = tempfile::tempdir().expect("temp dir");
    let store = PendingStore::new(directory.path());
    let framework = FrameworkId::new("framework/with odd:chars");
    let running = status("web", TaskTransition::Running, "AAAA");
    let finished = status("web", TaskTransition::Finished, "BBBB");
    let other = status("db", TaskTransition::Starting, "CCCC");
    store.push(&framework, &running).expect("push");
    store.push(&framework, &finished).expect("push");
    store.push(&framework, &other).expect("push");

    // What a restarted agent finds: the same uuids, in the order they were made.
    let reopened = PendingStore::new(directory.path());
    let web = reopened.load(&framework, &TaskId::new("web")).expect("load");
    assert_eq!(web, vec![running.clone(), finished.clone()]);
    assert_eq!(reopened.load_all().expect("load all").len(), 2);

    reopened.remove(&framework, &running).expect("remove");
    let replacement = status("web", TaskTransition::Finished, "DDDD");
    reopened.replace(&framework, &UpdateUuid::new("BBBB"), &replacement).expect("replace");
    assert_eq!(
        reopened.load(&framework, &TaskId::new("web")).expect("load"),
        vec![replacement.clone()]
    );

    reopened.remove(&framework, &replacement).expect("remove");
    reopened.remove(&framework, &other).expect("remove");
    assert!(reopened.load_all().expect("load all").is_empty());
}
