use corral_agent::checkpoint::{
    boot_id, AgentCheckpoint, CheckpointStore, RuntimeCheckpoint, TaskCheckpoint,
};
use corral_state::{AgentId, Cursor, FrameworkId};

use crate::support::shell_task;

#[test]
fn checkpoints_round_trip_and_odd_ids_do_not_collide() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = CheckpointStore::new(dir.path());
    assert_eq!(store.load_agent().expect("empty store"), None);
    assert!(store.load_tasks().expect("empty store").is_empty());

    let agent = AgentCheckpoint {
        agent_id: AgentId::new("a1"),
        boot_id: boot_id(),
        cursor: Some(Cursor::new(7, 2)),
    };
    store.save_agent(&agent).expect("save agent");
    assert_eq!(store.load_agent().expect("load"), Some(agent));

    let checkpoint = |task_id: &str| TaskCheckpoint {
        agent_id: AgentId::new("a1"),
        framework_id: FrameworkId::new("fw/1"),
        task: shell_task(task_id, "cpus:1", "true"),
        sandbox: dir.path().join("sandbox"),
        boot_id: boot_id(),
        runtime: RuntimeCheckpoint::Docker {
            container_id: "abc".to_owned(),
            container_name: "n".to_owned(),
        },
        last_reported: None,
    };
    // `a/b` and `a%2Fb` must be two files.
    store.save_task(&checkpoint("a/b")).expect("save");
    store.save_task(&checkpoint("a%2Fb")).expect("save");
    store.save_task(&checkpoint("..")).expect("save");
    let loaded = store.load_tasks().expect("load");
    let mut ids: Vec<String> = loaded.iter().map(|c| c.task_id().to_string()).collect();
    ids.sort();
    assert_eq!(ids, vec!["..", "a%2Fb", "a/b"]);
    assert_eq!(loaded.iter().find(|c| c.task_id().as_str() == "a/b"), Some(&checkpoint("a/b")));

    store.remove_task(&FrameworkId::new("fw/1"), &"a/b".into()).expect("remove");
    assert_eq!(store.load_tasks().expect("load").len(), 2);
    // No temp file is left behind by the atomic writes.
    let leftovers =
        walk(store.meta_dir()).into_iter().filter(|path| path.ends_with(".tmp")).count();
    assert_eq!(leftovers, 0);
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            paths.extend(walk(&path));
        } else {
            paths.push(path.display().to_string());
        }
    }
    paths
}
