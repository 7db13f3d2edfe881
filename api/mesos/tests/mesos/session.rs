use corral_mesos::session::{FrameworkSession, SessionStep};
use corral_state::model::{RemovalReason, RescindReason};
use corral_state::Event;
use serde_json::json;

use corral_testkit::state::StateBuilder;

/// A framework with one RUNNING update it never acknowledged and one outstanding offer.
fn cluster_with_history() -> StateBuilder {
    let mut cluster = StateBuilder::default();
    cluster.agent("h", "", "cpus:4;mem:512").framework("f", "*");
    cluster.launch("t1", "cpus:1;mem:64").running("t1", "dTE=");
    cluster.offer("*", "cpus:2;mem:64");
    cluster
}

#[test]
fn a_resubscribed_framework_gets_its_unacknowledged_updates_and_outstanding_offers() {
    let cluster = cluster_with_history();
    let (_, first) =
        FrameworkSession::open("corral-0001".into(), &cluster.state, json!({"id": "m1"}));
    let kinds: Vec<&str> = first.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, vec!["SUBSCRIBED", "UPDATE", "OFFERS"]);
    assert_eq!(first[0]["subscribed"]["framework_id"]["value"], "corral-0001");
    assert_eq!(first[0]["subscribed"]["heartbeat_interval_seconds"], 15.0);
    assert_eq!(first[1]["update"]["status"]["uuid"], "dTE=");
    assert_eq!(first[2]["offers"]["offers"][0]["id"]["value"], "corral-O2");
}

#[test]
fn live_events_repeating_the_snapshot_are_dropped_and_new_ones_pass() {
    let mut cluster = cluster_with_history();
    let (mut session, _) = FrameworkSession::open("corral-0001".into(), &cluster.state, json!({}));
    let offer = cluster.state.offer(&"corral-O2".into()).unwrap().clone();
    assert_eq!(session.on_event(&Event::OfferCreated { offer }), SessionStep::Send(vec![]));

    let events = cluster.offer("*", "cpus:1");
    let SessionStep::Send(sent) = session.on_event(&events[0]) else { panic!() };
    assert_eq!(sent[0]["type"], "OFFERS");
    assert_eq!(sent[0]["offers"]["offers"][0]["id"]["value"], "corral-O3");

    let other = Event::OfferRescinded {
        offer_id: "x".into(),
        framework_id: "someone-else".into(),
        agent_id: "a".into(),
        reason: RescindReason::Expired,
    };
    assert_eq!(session.on_event(&other), SessionStep::Send(vec![]));

    let removed = Event::FrameworkRemoved {
        framework_id: "corral-0001".into(),
        reason: RemovalReason::OperatorTeardown,
    };
    let SessionStep::SendAndClose(last) = session.on_event(&removed) else { panic!() };
    assert_eq!(
        last[0],
        json!({"type": "ERROR", "error": {"message": "Framework has been removed"}})
    );
}
