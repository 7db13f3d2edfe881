//! A master's standing (`standing.rs`): a leader cut off from its quorum and a follower cut
//! off from every leader know it, and know again when the link heals.

use corral_log::Standing;

use super::support::{eventually, TestCluster};

/// Waits until `node_id` reports `wanted`.
async fn standing_becomes(cluster: &TestCluster, node_id: u64, wanted: Standing) {
    let node = cluster.node(node_id);
    eventually(&format!("node {node_id} to be {wanted:?}"), || async {
        (node.standing() == wanted).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_is_adrift_and_everyone_follows_the_new_leader_after_healing() {
    let cluster = TestCluster::start(3).await;
    let old_leader = cluster.leader().await;
    let rest: Vec<u64> = cluster.nodes.keys().copied().filter(|id| *id != old_leader).collect();
    standing_becomes(&cluster, old_leader, Standing::Leading).await;
    for follower in &rest {
        standing_becomes(&cluster, *follower, Standing::Following { leader: old_leader }).await;
    }

    cluster.network.isolate(old_leader);
    // Raft still calls it the leader; only its standing says it no longer speaks for anyone.
    standing_becomes(&cluster, old_leader, Standing::Adrift).await;
    assert!(cluster.node(old_leader).is_leader(), "a cut-off leader keeps its role until told");
    cluster.propose_among(&rest, 1).await;
    let new_leader = cluster.leader_among(&rest).await;
    standing_becomes(&cluster, new_leader, Standing::Leading).await;
    let other = *rest.iter().find(|id| **id != new_leader).expect("two followers");
    standing_becomes(&cluster, other, Standing::Following { leader: new_leader }).await;

    cluster.network.heal();
    standing_becomes(&cluster, old_leader, Standing::Following { leader: new_leader }).await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_cut_off_is_adrift_while_the_leader_keeps_its_quorum() {
    let cluster = TestCluster::start(3).await;
    let leader = cluster.leader().await;
    let follower = *cluster.nodes.keys().find(|id| **id != leader).expect("a follower");
    standing_becomes(&cluster, follower, Standing::Following { leader }).await;

    cluster.network.isolate(follower);
    standing_becomes(&cluster, follower, Standing::Adrift).await;
    // One follower still answers: with it the leader has its quorum.
    cluster.propose(1).await;
    assert_eq!(cluster.node(leader).standing(), Standing::Leading);

    cluster.network.heal();
    standing_becomes(&cluster, follower, Standing::Following { leader }).await;
    cluster.shutdown().await;
}

/// Five masters split two against three, the leader on the side of two: its follower there
/// still hears it, so Raft keeps it following, yet neither can commit anything. The leader's
/// appends say it lost its quorum, and its follower is adrift as soon as it says so (agents
/// reading events from it go to the majority); after healing both follow the new leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_cut_off_with_a_leader_that_lost_its_quorum_is_adrift_too() {
    let cluster = TestCluster::start(5).await;
    let old_leader = cluster.leader().await;
    let companion = *cluster.nodes.keys().find(|id| **id != old_leader).expect("a follower");
    let rest: Vec<u64> =
        cluster.nodes.keys().copied().filter(|id| *id != old_leader && *id != companion).collect();
    standing_becomes(&cluster, companion, Standing::Following { leader: old_leader }).await;

    cluster.network.partition(&[old_leader, companion], &rest);
    standing_becomes(&cluster, old_leader, Standing::Adrift).await;
    standing_becomes(&cluster, companion, Standing::Adrift).await;
    // Still named leader by Raft on that side: only the leader's word told the follower.
    assert!(cluster.node(old_leader).is_leader(), "a cut-off leader keeps its role until told");
    cluster.propose_among(&rest, 1).await;
    let new_leader = cluster.leader_among(&rest).await;

    cluster.network.heal();
    for node in [old_leader, companion] {
        standing_becomes(&cluster, node, Standing::Following { leader: new_leader }).await;
    }
    cluster.shutdown().await;
}
