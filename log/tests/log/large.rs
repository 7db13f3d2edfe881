//! Entries too large to ship within openraft's append deadline (the heartbeat interval) still
//! commit: a follower that takes longer than that to receive one must not stall the log.

use std::time::Duration;

use corral_state::model::{AgentInfo, Attributes};
use corral_state::{Actor, Command, RequestId};

use super::support::TestCluster;

const COMMAND_BYTES: usize = 3 * 1024 * 1024;

/// A command of about `COMMAND_BYTES`: an agent with one huge attribute, as big as the
/// allocator's offers to thousands of agents at once.
fn huge_command(number: u64) -> (RequestId, Actor, Command) {
    let command = Command::RegisterAgent {
        info: AgentInfo {
            hostname: format!("huge-{number}"),
            address: format!("10.1.0.{number}:5051"),
            attributes: Attributes(vec![("blob".to_owned(), "x".repeat(COMMAND_BYTES))]),
        },
        resources: "cpus:1;mem:128".parse().unwrap(),
    };
    (RequestId::new(format!("huge-{number}")), Actor::Leader, command)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_slower_to_ship_than_the_heartbeat_interval_commit() {
    let cluster = TestCluster::start(3).await;
    cluster.propose(0).await;
    // Every append to a follower takes 40 ms per MiB on the way, whatever the load: one
    // 3 MiB entry alone takes 120 ms, more than openraft allows any append (the heartbeat
    // interval), and a range of several takes a multiple of it.
    let per_mib = Duration::from_millis(40);
    let one_entry = per_mib.mul_f64(COMMAND_BYTES as f64 / (1024.0 * 1024.0));
    assert!(one_entry > 2 * cluster.tuning.heartbeat_interval, "one entry must not fit");
    cluster.network.set_append_delay_per_mib(per_mib);

    let all: Vec<u64> = cluster.nodes.keys().copied().collect();
    let proposals = (1..=4).map(|number| cluster.propose_command_among(&all, huge_command(number)));
    let committed = futures::future::join_all(proposals).await;
    assert_eq!(committed.len(), 4);

    // Every master, not just a quorum, gets the entries: each follower is as slow.
    cluster.converged(&all).await;
    for node_id in &all {
        for number in 1..=4 {
            let request_id = RequestId::new(format!("huge-{number}"));
            let applied = cluster
                .node(*node_id)
                .read(corral_log::ReadConsistency::Local, |state| {
                    state.outcome_of(&request_id).is_some()
                })
                .await
                .unwrap();
            assert!(applied, "node {node_id} lacks huge-{number}");
        }
    }
    cluster.shutdown().await;
}

/// Every message takes longer than openraft's heartbeat deadline (50 ms) to arrive, as on a
/// machine too loaded to answer in time. A heartbeat cut short at the deadline never reached
/// the followers, so they elected another leader over and over although the leader was alive;
/// heartbeats that arrive late keep the leader for as long as the delay lasts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_slower_than_the_heartbeat_interval_keep_the_leader() {
    let cluster = TestCluster::start(3).await;
    let leader = cluster.leader().await;
    let term = cluster.node(leader).status().term;
    cluster.network.set_delay(Duration::from_millis(80));
    cluster.propose(1).await;
    // Several election timeouts (300–600 ms) with nothing but heartbeats to keep the leader.
    let watched = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < watched {
        for (node_id, node) in &cluster.nodes {
            let status = node.status();
            assert_eq!(
                (status.term, status.leader),
                (term, Some(leader)),
                "master {node_id} saw another election with 80 ms links"
            );
        }
        // Observing that nothing changes over a span, not waiting for something to happen.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.shutdown().await;
}
