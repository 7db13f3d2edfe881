use corral_state::codec::{
    decode_entries, decode_entry, decode_events, encode_entries, encode_entry, encode_events,
};
use corral_state::model::TaskState;
use corral_state::{
    Actor, ClusterState, CodecError, Command, Cursor, Entry, RequestId, Timestamp, FORMAT_VERSION,
};

use super::support::World;

fn busy_world() -> World {
    let mut world = World::new();
    let agent_id = world.add_agent("h1", "cpus:4;mem:1024;ports:[31000-32000]");
    let framework_id = world.subscribe("f", &["*"]);
    world.launch(&framework_id, &agent_id, "t1", "cpus:1;mem:128");
    world.report(&framework_id, &agent_id, "t1", TaskState::Running, "u1");
    world
}

#[test]
fn a_snapshot_decodes_to_an_equal_state_with_an_equal_digest() {
    let world = busy_world();
    let bytes = world.state.snapshot().expect("the state encodes");
    assert_eq!(u16::from_le_bytes([bytes[0], bytes[1]]), FORMAT_VERSION);
    let restored = ClusterState::from_snapshot(&bytes).unwrap();
    assert_eq!(restored, world.state);
    assert_eq!(restored.digest(), world.state.digest());
    assert_ne!(ClusterState::default().digest(), world.state.digest());
    assert_eq!(world.state.digest().to_string().len(), 64);
}

#[test]
fn entries_and_events_round_trip() {
    let entry = Entry {
        request_id: RequestId::new("r"),
        actor: Actor::Leader,
        at: Timestamp::from_secs(5),
        command: Command::Tick,
    };
    assert_eq!(decode_entry(&encode_entry(&entry).unwrap()).unwrap(), entry);
    let batch = vec![entry.clone(), entry];
    assert_eq!(decode_entries(&encode_entries(&batch).unwrap()).unwrap(), batch);
    let mut world = World::new();
    let events = world.leader(Command::RegisterAgent {
        info: corral_state::model::AgentInfo {
            hostname: "h".into(),
            address: "a:1".into(),
            attributes: Default::default(),
        },
        resources: "cpus:1".parse().unwrap(),
    });
    assert_eq!(decode_events(&encode_events(&events).unwrap()).unwrap(), events);
}

#[test]
fn bad_bytes_get_precise_errors() {
    assert!(matches!(ClusterState::from_snapshot(&[]), Err(CodecError::Truncated)));
    let mut future = busy_world().state.snapshot().expect("the state encodes");
    future[0..2].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    let error = ClusterState::from_snapshot(&future).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "format version {} is newer than this build understands (up to {FORMAT_VERSION})",
            FORMAT_VERSION + 1
        )
    );
    let mut garbage = FORMAT_VERSION.to_le_bytes().to_vec();
    garbage.extend_from_slice(&[0xff; 7]);
    assert!(matches!(decode_entry(&garbage), Err(CodecError::Malformed(_))));
}

#[test]
fn cursors_order_and_parse() {
    let a = Cursor::new(5, 2);
    assert!(Cursor::new(5, 1) < a && a < Cursor::new(6, 0));
    assert_eq!(a.to_string(), "5-2");
    assert_eq!("5-2".parse::<Cursor>().unwrap(), a);
    assert_eq!("7".parse::<Cursor>().unwrap(), Cursor::new(7, 0));
    assert!("x-1".parse::<Cursor>().is_err());
}

/// A world with something in every map the encoding covers: agents, frameworks with tasks
/// (one with an executor), unacknowledged updates, open offers and a completed framework.
fn world_with_everything() -> World {
    let mut world = World::new();
    let first = world.add_agent("h1", "cpus:8;mem:4096;ports:[31000-32000]");
    let second = world.add_agent("h2", "cpus:4;mem:2048");
    let framework_id = world.subscribe("f", &["*"]);
    world.launch(&framework_id, &first, "t1", "cpus:1;mem:128");
    world.report(&framework_id, &first, "t1", TaskState::Running, "u1");
    world.launch(&framework_id, &second, "t2", "cpus:1;mem:128");
    world.report(&framework_id, &second, "t2", TaskState::Running, "u2");
    world.ack(&framework_id, &second, "t2", "u2");
    world.report(&framework_id, &second, "t2", TaskState::Finished, "u3");
    world.ack(&framework_id, &second, "t2", "u3");
    let offer_id = world.offer(&framework_id, &first, "*", "cpus:1;mem:256");
    let mut with_executor = super::support::task_info("t3", &first, "cpus:0.5;mem:64");
    with_executor.executor = Some(corral_state::model::ExecutorInfo {
        executor_id: "e1".into(),
        name: Some("executor".to_owned()),
        command: None,
        container: None,
        resources: "cpus:0.5;mem:64".parse().expect("resources"),
    });
    world.as_framework(
        &framework_id,
        Command::Accept {
            framework_id: framework_id.clone(),
            offer_ids: vec![offer_id],
            operations: vec![corral_state::Operation::Launch { task_infos: vec![with_executor] }],
            filters: corral_state::model::Filters::default(),
        },
    );
    world.offer(&framework_id, &second, "*", "cpus:1;mem:256");
    let gone = world.subscribe("g", &["*"]);
    world.launch(&gone, &second, "t4", "cpus:1;mem:64");
    world.as_framework(&gone, Command::Teardown { framework_id: gone.clone() });
    world
}

/// Snapshots on disk, the digests replicas and `corral replay` compare, and the chaos checks
/// all depend on the encoding staying byte for byte what it was. The figure was taken before
/// the state's maps became persistent (structurally shared) maps: they must encode as the
/// `BTreeMap`s they replaced, in key order.
#[test]
fn the_encoding_of_a_populated_state_has_not_changed() {
    let state = world_with_everything().state;
    assert_eq!(state.executors().len(), 1);
    assert_eq!(state.completed_frameworks().len(), 1);
    assert_eq!(state.offers().len(), 1);
    let bytes = state.snapshot().expect("the state encodes");
    assert_eq!(
        blake3::hash(&bytes).to_hex().to_string(),
        "106d8199cf3df461361f7f39ba41500fb4f2f579705c77ce1f0ed5f8f35464ae"
    );
    assert_eq!(
        state.digest().to_string(),
        "106d8199cf3df461361f7f39ba41500fb4f2f579705c77ce1f0ed5f8f35464ae"
    );
    assert_eq!(
        state.without_bookkeeping().digest().to_string(),
        "116cf9a1c2946e3d207a1ced915461e16d256586761f5ae885200af4da3f5865"
    );
}
