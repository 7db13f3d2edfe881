//! The loop around the planner, on a real one-member log.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use corral_allocator::AllocatorConfig;
use corral_log::{LogConfig, LogNode, ReadConsistency};
use corral_marathon::parse_app;
use corral_state::model::{AgentInfo, Attributes};
use corral_state::{Actor, AppId, ClusterState, Command, DeploymentId, Force, PutMode};
use corral_testkit::eventually;
use serde_json::{json, Value};

use crate::master::{new_request_id, LoopIntervals, Master};

const AGENT_RESOURCES: &str = "cpus:4;mem:4096;disk:1000;ports:[31000-31009]";

fn operator() -> Actor {
    Actor::Operator { principal: Some("ops".to_owned()) }
}

fn web(instances: u32, extra: Value) -> Value {
    let mut app = json!({"id": "/web", "cmd": "serve", "cpus": 1, "mem": 128, "disk": 0, "instances": instances});
    for (key, value) in extra.as_object().expect("extra is an object") {
        app[key] = value.clone();
    }
    app
}

async fn propose(master: &Master, actor: Actor, command: Command) {
    let committed =
        master.propose(new_request_id(), actor, command).await.expect("command committed");
    assert!(!committed.outcome.is_rejected(), "{:?}", committed.outcome);
}

fn put_command(app: Value, deployment: &str) -> Command {
    let definition = parse_app(app.to_string().as_bytes()).expect("test app is valid");
    Command::PutApp {
        app_id: AppId::new(&definition.id),
        spec: definition.spec(),
        definition: definition.stored_definition(),
        mode: PutMode::CreateOrReplace,
        force: Force::Yes,
        deployment_id: DeploymentId::new(deployment),
    }
}

async fn read<T>(master: &Master, read: impl FnOnce(&ClusterState) -> T) -> T {
    master.node().read(ReadConsistency::Local, read).await.expect("state read")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_launches_and_kills_instances_through_the_log() {
    let directory = tempfile::tempdir().expect("temp dir");
    let address = "127.0.0.1:9";
    let mut config = LogConfig::new(1, address, directory.path());
    config.peers = BTreeMap::from([(1, address.to_owned())]);
    let node = LogNode::open(config).await.expect("log opens");
    let intervals = LoopIntervals {
        allocation: Duration::from_millis(50),
        tick: Duration::from_secs(1),
        stream_heartbeat: Duration::from_secs(15),
        usage: Duration::from_secs(1),
    };
    let master = Master::new(node, address.to_owned(), intervals, AllocatorConfig::default())
        .expect("master");
    let leading = tokio::spawn(crate::leader::run(master.clone()));
    eventually(Duration::from_secs(20), "leadership", || async {
        master.node().is_leader().then_some(())
    })
    .await;

    for hostname in ["host-a", "host-b"] {
        let info = AgentInfo {
            hostname: hostname.to_owned(),
            address: format!("{hostname}:5051"),
            attributes: Attributes::default(),
        };
        let resources = AGENT_RESOURCES.parse().expect("resources");
        propose(&master, Actor::Leader, Command::RegisterAgent { info, resources }).await;
    }
    let unique = json!({"constraints": [["hostname", "UNIQUE"]]});
    propose(&master, operator(), put_command(web(2, unique.clone()), "d1")).await;

    let web_id = AppId::new("/web");
    let hosts = eventually(Duration::from_secs(20), "two instances launched", || async {
        read(&master, |state| {
            let hosts: BTreeSet<String> = state
                .services()
                .instances_of(&web_id)
                .filter_map(|(_, instance)| state.agent(&instance.agent_id))
                .map(|agent| agent.info.hostname.clone())
                .collect();
            (hosts.len() == 2).then_some(hosts)
        })
        .await
    })
    .await;
    assert_eq!(hosts, BTreeSet::from(["host-a".to_owned(), "host-b".to_owned()]));
    let report = master.inner.service_offers.of(&web_id).expect("offers reported for /web");
    assert!(report.last_used_at.is_some(), "{report:?}");

    propose(&master, operator(), put_command(web(0, unique), "d2")).await;
    eventually(Duration::from_secs(20), "both instances asked to stop", || async {
        read(&master, |state| {
            let framework_id = state.service_framework_id();
            let mut instances = state.services().instances_of(&web_id);
            instances
                .all(|(task_id, _)| {
                    state.task(&framework_id, task_id).is_some_and(|t| t.kill_requested.is_some())
                })
                .then_some(())
        })
        .await
    })
    .await;
    leading.abort();
    master.node().shutdown().await.expect("log shuts down");
}
