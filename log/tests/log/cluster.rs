//! In-process clusters under faults the test injects: isolation, partitions, drops, delays.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use corral_log::{LogError, LogNode, ReadConsistency};
use corral_state::{Outcome, RequestId};
use openraft::ServerState;

use super::support::{register_agent, TestCluster};

/// Records every (term, leader) any node reports, to check there is one leader per term.
#[derive(Clone, Default)]
struct LeaderLog(Arc<Mutex<BTreeMap<u64, BTreeSet<u64>>>>);

impl LeaderLog {
    fn watch(&self, node: &LogNode) {
        let mut metrics = node.metrics();
        let leaders = Arc::clone(&self.0);
        tokio::spawn(async move {
            loop {
                {
                    let current = metrics.borrow_and_update();
                    if current.state == ServerState::Leader {
                        leaders
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .entry(current.current_term)
                            .or_default()
                            .insert(current.id);
                    }
                }
                if metrics.changed().await.is_err() {
                    return;
                }
            }
        });
    }

    fn assert_one_leader_per_term(&self) {
        let leaders = self.0.lock().unwrap();
        assert!(!leaders.is_empty(), "no leader was ever observed");
        for (term, nodes) in leaders.iter() {
            assert_eq!(nodes.len(), 1, "term {term} had leaders {nodes:?}");
        }
    }
}

fn assert_all_acknowledged_present(cluster: &TestCluster, node_ids: &[u64], acknowledged: &[u64]) {
    for node_id in node_ids {
        let state_has = |number: &u64| {
            let request_id = RequestId::new(format!("register-{number}"));
            let node = cluster.node(*node_id);
            futures::executor::block_on(
                node.read(ReadConsistency::Local, |state| state.outcome_of(&request_id).is_some()),
            )
            .unwrap()
        };
        let missing: Vec<u64> =
            acknowledged.iter().copied().filter(|number| !state_has(number)).collect();
        assert!(missing.is_empty(), "node {node_id} lost acknowledged commands {missing:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolated_leader_is_replaced_and_nothing_acknowledged_is_lost() {
    let cluster = TestCluster::start(3).await;
    let leaders = LeaderLog::default();
    cluster.nodes.values().for_each(|node| leaders.watch(node));
    let mut acknowledged = Vec::new();
    for number in 0..20 {
        cluster.propose(number).await;
        acknowledged.push(number);
    }

    let old_leader = cluster.leader().await;
    cluster.network.isolate(old_leader);
    let rest: Vec<u64> = cluster.nodes.keys().copied().filter(|id| *id != old_leader).collect();
    // A command sent to the isolated leader cannot be committed; it must not be acknowledged.
    let stranded = {
        let node = cluster.node(old_leader).clone();
        let (request_id, actor, command) = register_agent(1_000);
        tokio::spawn(async move { node.propose(request_id, actor, command).await })
    };
    for number in 20..40 {
        cluster.propose_among(&rest, number).await;
        acknowledged.push(number);
    }
    assert!(!stranded.is_finished(), "the isolated leader acknowledged a command");

    cluster.network.heal();
    let all: Vec<u64> = cluster.nodes.keys().copied().collect();
    cluster.propose(40).await;
    acknowledged.push(40);
    cluster.converged(&all).await;
    match stranded.await.unwrap() {
        Err(LogError::NotLeader { .. }) => {}
        other => panic!("the stranded command should fail with not leader, got {other:?}"),
    }
    assert_all_acknowledged_present(&cluster, &all, &acknowledged);
    leaders.assert_one_leader_per_term();
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_in_a_five_node_minority_loses_to_the_majority() {
    let cluster = TestCluster::start(5).await;
    let leaders = LeaderLog::default();
    cluster.nodes.values().for_each(|node| leaders.watch(node));
    let mut acknowledged = Vec::new();
    for number in 0..10 {
        cluster.propose(number).await;
        acknowledged.push(number);
    }
    let old_leader = cluster.leader().await;
    let buddy = *cluster.nodes.keys().find(|id| **id != old_leader).unwrap();
    let minority = [old_leader, buddy];
    let majority: Vec<u64> =
        cluster.nodes.keys().copied().filter(|id| !minority.contains(id)).collect();
    cluster.network.partition(&minority, &majority);
    for number in 10..30 {
        cluster.propose_among(&majority, number).await;
        acknowledged.push(number);
    }
    // The old leader cannot prove it still leads.
    match cluster.node(old_leader).ensure_linearizable().await {
        Err(LogError::NotLeader { .. }) => {}
        other => panic!("a minority leader served a linearizable read: {other:?}"),
    }
    cluster.network.heal();
    let all: Vec<u64> = cluster.nodes.keys().copied().collect();
    cluster.propose(30).await;
    acknowledged.push(30);
    cluster.converged(&all).await;
    assert_all_acknowledged_present(&cluster, &all, &acknowledged);
    leaders.assert_one_leader_per_term();
    let agents =
        cluster.node(1).read(ReadConsistency::Local, |state| state.agents().len()).await.unwrap();
    assert_eq!(agents, acknowledged.len());
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_and_delayed_messages_delay_but_do_not_lose_commands() {
    let cluster = TestCluster::start(3).await;
    cluster.leader().await;
    cluster.network.drop_every(5);
    cluster.network.set_delay(Duration::from_millis(2));
    let numbers: Vec<u64> = (0..100).collect();
    let committed =
        futures::future::join_all(numbers.iter().map(|number| cluster.propose(*number))).await;
    assert_eq!(committed.len(), 100);
    cluster.network.heal();
    let all: Vec<u64> = cluster.nodes.keys().copied().collect();
    cluster.converged(&all).await;
    assert_all_acknowledged_present(&cluster, &all, &numbers);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commands_share_entries_and_each_caller_gets_its_outcome() {
    let cluster = TestCluster::start(3).await;
    let leader = cluster.node(cluster.leader().await).clone();
    let results = futures::future::join_all((0..300).map(|number| {
        let (request_id, actor, command) = register_agent(number);
        let leader = leader.clone();
        async move { leader.propose(request_id, actor, command).await.unwrap() }
    }))
    .await;
    let counters = leader.proposer_counters();
    assert_eq!(counters.commands, 300);
    assert!(counters.batches < 300, "no batching happened: {counters:?}");
    let mut agent_ids = BTreeSet::new();
    for (number, committed) in results.iter().enumerate() {
        let Outcome::Accepted(events) = &committed.outcome else {
            panic!("command {number} was not accepted")
        };
        let agent_id = events[0].agent_id().unwrap().clone();
        let hostname = leader
            .read(ReadConsistency::Local, |state| {
                state.agent(&agent_id).unwrap().info.hostname.clone()
            })
            .await
            .unwrap();
        assert_eq!(hostname, format!("agent-{number}"), "a caller got another command's outcome");
        agent_ids.insert(agent_id);
    }
    assert_eq!(agent_ids.len(), 300);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_request_is_applied_once() {
    let cluster = TestCluster::start(3).await;
    let first = cluster.propose(7).await;
    let second = cluster.propose(7).await;
    assert!(matches!(first.outcome, Outcome::Accepted(_)));
    assert!(matches!(second.outcome, Outcome::Duplicate(_)), "got {:?}", second.outcome);
    let all: Vec<u64> = cluster.nodes.keys().copied().collect();
    cluster.converged(&all).await;
    let agents =
        cluster.node(1).read(ReadConsistency::Local, |state| state.agents().len()).await.unwrap();
    assert_eq!(agents, 1);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_refuse_writes_and_linearizable_reads_with_a_leader_hint() {
    let cluster = TestCluster::start(3).await;
    let leader = cluster.leader().await;
    cluster.propose(1).await;
    let follower = *cluster.nodes.keys().find(|id| **id != leader).unwrap();
    let (request_id, actor, command) = register_agent(2);
    let expected_hint = Some((leader, super::support::address_of(leader)));
    match cluster.node(follower).propose(request_id, actor, command).await {
        Err(LogError::NotLeader { leader_hint }) => assert_eq!(leader_hint, expected_hint),
        other => panic!("follower accepted a write: {other:?}"),
    }
    match cluster
        .node(follower)
        .read(ReadConsistency::Linearizable, |state| state.agents().len())
        .await
    {
        Err(LogError::NotLeader { leader_hint }) => assert_eq!(leader_hint, expected_hint),
        other => panic!("follower served a linearizable read: {other:?}"),
    }
    let agents = cluster
        .node(leader)
        .read(ReadConsistency::Linearizable, |state| state.agents().len())
        .await
        .unwrap();
    assert_eq!(agents, 1);
    let status = cluster.node(leader).status();
    assert_eq!(status.leader, Some(leader));
    assert_eq!(status.members.len(), 3);
    assert!(status.members.iter().all(|member| member.voter && member.lag.is_some()));
    cluster.shutdown().await;
}

/// A proposal refused with "not leader" is answered with "ask the leader" only once this
/// master knows the command is not in the log: had it been committed (a leader that lost
/// the lead with the command in flight), redirecting would have a client apply it twice.
/// Here the command is committed through the leader, then proposed again with its request
/// id on a follower: the follower answers with the first outcome, not a redirect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_proposal_already_in_the_log_answers_with_its_outcome() {
    let cluster = TestCluster::start(3).await;
    let committed = cluster.propose(7).await;
    assert!(!committed.outcome.is_rejected());
    let leader = cluster.leader().await;
    let follower = if leader == 1 { 2 } else { 1 };
    cluster.converged(&[leader, follower]).await;
    let (request_id, actor, command) = register_agent(7);
    let again = cluster.node(follower).propose(request_id, actor, command).await;
    match again {
        Ok(answer) => assert_eq!(
            answer.outcome,
            corral_state::Outcome::Duplicate(Box::new(committed.outcome.original().clone()))
        ),
        Err(error) => panic!("the follower should have found the command in its log: {error}"),
    }
    let (request_id, actor, command) = register_agent(8);
    let fresh = cluster.node(follower).propose(request_id, actor, command).await;
    assert!(
        matches!(fresh, Err(corral_log::LogError::NotLeader { leader_hint: Some(_) })),
        "a command not in the log is sent to the leader: {fresh:?}"
    );
    cluster.shutdown().await;
}
