use corral_api::mesos::session::{FrameworkSession, SessionStep};
use corral_state::model::{
    AgentInfo, Attributes, CommandInfo, Filters, FrameworkInfo, RemovalReason, TaskInfo,
    TaskSource, TaskState, TaskStatus,
};
use corral_state::{
    Actor, ClusterState, Command, Entry, Event, OfferSpec, Operation, Outcome, RequestId, Role,
    Timestamp,
};
use serde_json::json;

struct Cluster {
    state: ClusterState,
    request: u64,
}

impl Cluster {
    fn apply(&mut self, actor: Actor, command: Command) -> Outcome {
        self.request += 1;
        self.state.apply(&Entry {
            request_id: RequestId::new(format!("r{}", self.request)),
            actor,
            at: Timestamp::from_secs(9),
            command,
        })
    }

    fn offer(&mut self, resources: &str) -> Vec<Event> {
        let spec = OfferSpec {
            framework_id: "corral-0001".into(),
            agent_id: "corral-S1".into(),
            role: Role::default_role(),
            resources: resources.parse().unwrap(),
        };
        self.apply(Actor::Leader, Command::OfferResources { offers: vec![spec] }).into_events()
    }
}

/// A framework with one RUNNING update it never acknowledged and one outstanding offer.
fn cluster_with_history() -> Cluster {
    let mut cluster = Cluster { state: ClusterState::default(), request: 0 };
    let info = AgentInfo {
        hostname: "h".into(),
        address: "127.0.0.1:5051".into(),
        attributes: Attributes::default(),
    };
    cluster.apply(
        Actor::Leader,
        Command::RegisterAgent { info, resources: "cpus:4;mem:512".parse().unwrap() },
    );
    let info = FrameworkInfo {
        user: "u".into(),
        name: "f".into(),
        roles: vec![Role::default_role()],
        failover_timeout: std::time::Duration::from_secs(60),
        checkpoint: false,
        hostname: None,
        principal: None,
        webui_url: None,
        capabilities: Default::default(),
        labels: vec![],
    };
    cluster.apply(Actor::Leader, Command::Subscribe { framework_id: None, info });
    cluster.offer("cpus:1;mem:64");
    let task = TaskInfo {
        name: "t".into(),
        task_id: "t1".into(),
        agent_id: "corral-S1".into(),
        resources: "cpus:1;mem:64".parse().unwrap(),
        executor: None,
        command: Some(CommandInfo { value: Some("true".into()), ..CommandInfo::default() }),
        container: None,
        health_check: None,
        kill_policy: None,
        labels: vec![],
    };
    cluster.apply(
        Actor::Framework("corral-0001".into()),
        Command::Accept {
            framework_id: "corral-0001".into(),
            offer_ids: vec!["corral-O1".into()],
            operations: vec![Operation::Launch { task_infos: vec![task] }],
            filters: Filters { refuse: std::time::Duration::ZERO },
        },
    );
    let status = TaskStatus {
        task_id: "t1".into(),
        state: TaskState::Running,
        message: None,
        source: TaskSource::Executor,
        reason: None,
        healthy: None,
        agent_id: Some("corral-S1".into()),
        executor_id: None,
        timestamp: Timestamp::default(),
        uuid: Some("dTE=".into()),
        exit_code: None,
    };
    cluster.apply(
        Actor::Agent("corral-S1".into()),
        Command::UpdateStatus { framework_id: "corral-0001".into(), status },
    );
    cluster.offer("cpus:2;mem:64");
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

    let events = cluster.offer("cpus:1");
    let SessionStep::Send(sent) = session.on_event(&events[0]) else { panic!() };
    assert_eq!(sent[0]["type"], "OFFERS");
    assert_eq!(sent[0]["offers"]["offers"][0]["id"]["value"], "corral-O3");

    let other = Event::OfferRescinded {
        offer_id: "x".into(),
        framework_id: "someone-else".into(),
        agent_id: "a".into(),
        reason: corral_state::model::RescindReason::Expired,
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
