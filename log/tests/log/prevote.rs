//! Elections with a pre-vote: a follower cut off from the leader does not raise the term,
//! and healing it does not cost the leader its leadership.

use std::time::Duration;

use corral_log::election::{PreVoteAnswer, PreVoteRequest};
use tokio::time::Instant;

use super::support::{eventually, TestCluster};

/// Long enough for many election timeouts of the test tuning (300–600 ms): without a
/// pre-vote the cut-off follower would stand several times.
const CUT_OFF_FOR: Duration = Duration::from_secs(4);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_follower_keeps_its_term_and_healing_it_keeps_the_leader() {
    let cluster = TestCluster::start(3).await;
    cluster.propose(1).await;
    let leader = cluster.leader().await;
    let term = cluster.node(leader).status().term;
    let follower = *cluster.nodes.keys().find(|id| **id != leader).unwrap();
    cluster.network.isolate(follower);

    // The rest keep committing while the follower is away; the follower's term must not move.
    let rest: Vec<u64> = cluster.nodes.keys().copied().filter(|id| *id != follower).collect();
    let until = Instant::now() + CUT_OFF_FOR;
    let mut number = 2;
    while Instant::now() < until {
        cluster.propose_among(&rest, number).await;
        number += 1;
        let status = cluster.node(follower).status();
        assert_eq!(status.term, term, "the cut-off follower raised its term");
        assert_ne!(status.role, "leader");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    cluster.network.heal();
    let all: Vec<u64> = cluster.nodes.keys().copied().collect();
    cluster.propose(number).await;
    cluster.converged(&all).await;
    for node_id in &all {
        let status = cluster.node(*node_id).status();
        assert_eq!(status.term, term, "node {node_id} is in another term after healing");
        assert_eq!(status.leader, Some(leader), "node {node_id} follows another leader");
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_that_hears_the_leader_refuses_a_pre_vote_and_one_that_does_not_grants_it() {
    let cluster = TestCluster::start(3).await;
    cluster.propose(1).await;
    let leader = cluster.leader().await;
    let follower = *cluster.nodes.keys().find(|id| **id != leader).unwrap();
    let candidate = *cluster.nodes.keys().find(|id| **id != leader && **id != follower).unwrap();
    // Once every node has applied everything, the applied log id is every node's last one.
    let all: Vec<u64> = cluster.nodes.keys().copied().collect();
    cluster.converged(&all).await;
    let up_to_date = cluster.node(candidate).raft().metrics().borrow().last_applied;
    let request = |last_log_id| PreVoteRequest { candidate, term: 99, last_log_id };

    let answer = |node_id: u64, request: PreVoteRequest| {
        let endpoint = cluster.node(node_id).endpoint();
        async move { endpoint.answer_pre_vote(&request).await.answer }
    };
    assert_eq!(answer(leader, request(up_to_date)).await, PreVoteAnswer::IAmLeader);
    assert_eq!(answer(follower, request(up_to_date)).await, PreVoteAnswer::LeaderAlive);

    // Once the follower stops hearing from the leader it would vote, but only for a log at
    // least as long as its own.
    cluster.network.cut(leader, follower);
    cluster.network.cut(candidate, follower);
    eventually("the cut-off follower to grant a pre-vote", || async {
        (answer(follower, request(up_to_date)).await == PreVoteAnswer::Granted).then_some(())
    })
    .await;
    assert_eq!(answer(follower, request(None)).await, PreVoteAnswer::LogBehind);
    // A pre-vote is only a question: granting it changed nothing.
    let status = cluster.node(follower).status();
    assert_eq!(status.leader, Some(leader));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_behind_the_others_does_not_become_leader() {
    let cluster = TestCluster::start(3).await;
    cluster.propose(1).await;
    let leader = cluster.leader().await;
    let behind = *cluster.nodes.keys().find(|id| **id != leader).unwrap();
    let other = *cluster.nodes.keys().find(|id| **id != leader && **id != behind).unwrap();
    cluster.network.isolate(behind);
    for number in 2..12 {
        cluster.propose_among(&[leader, other], number).await;
    }
    let term = cluster.node(leader).status().term;
    // The leader goes away as the lagging follower comes back: only `other` may win.
    cluster.network.heal();
    cluster.network.isolate(leader);
    let new_leader = cluster.leader_among(&[behind, other]).await;
    assert_eq!(new_leader, other, "a follower missing committed entries became leader");
    assert!(cluster.node(other).status().term > term);
    cluster.propose_among(&[behind, other], 12).await;
    cluster.network.heal();
    let all: Vec<u64> = cluster.nodes.keys().copied().collect();
    cluster.converged(&all).await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leader_is_replaced_by_the_pre_vote_timer() {
    let mut cluster = TestCluster::start(3).await;
    cluster.propose(1).await;
    let leader = cluster.leader().await;
    let term = cluster.node(leader).status().term;
    cluster.network.unregister(leader);
    cluster.node(leader).shutdown().await.unwrap();
    cluster.nodes.remove(&leader);
    let rest: Vec<u64> = cluster.nodes.keys().copied().collect();
    let new_leader = cluster.leader_among(&rest).await;
    assert_ne!(new_leader, leader);
    // One election, not a string of them: the pre-vote keeps the others from standing
    // while a candidate's election is under way.
    let new_term = cluster.node(new_leader).status().term;
    assert!(new_term > term);
    cluster.propose_among(&rest, 2).await;
    cluster.converged(&rest).await;
    cluster.shutdown().await;
}
