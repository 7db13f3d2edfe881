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
