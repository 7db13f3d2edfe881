//! Membership changes under load: a new master catches up from a snapshot, one is removed.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use corral_log::{ChangeError, LogError, LogTuning, ReadConsistency, Refusal, TransferOutcome};

use super::support::{address_of, eventually, test_tuning, TestCluster};

fn snapshotting_tuning() -> LogTuning {
    LogTuning {
        snapshot_every_entries: 20,
        entries_kept_after_snapshot: 0,
        purge_batch_size: 1,
        ..test_tuning()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fourth_master_joins_from_a_snapshot_under_load_and_one_leaves() {
    let mut cluster = TestCluster::start_with(3, snapshotting_tuning(), |_| {}).await;
    for number in 0..60 {
        cluster.propose(number).await;
    }
    let leader = cluster.leader().await;
    eventually("the leader to snapshot and purge its log", || async {
        cluster.node(leader).status().purged_index.filter(|purged| *purged > 0)
    })
    .await;

    // Load keeps flowing while the membership changes.
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(AtomicU64::new(0));
    let load = {
        let leader_node = cluster.node(leader).clone();
        let (stop, acknowledged) = (stop.clone(), acknowledged.clone());
        tokio::spawn(async move {
            let mut number = 1_000;
            while !stop.load(Ordering::Relaxed) {
                let (request_id, actor, command) = super::support::register_agent(number);
                match leader_node.propose(request_id, actor, command).await {
                    Ok(_) => {
                        acknowledged.fetch_add(1, Ordering::Relaxed);
                        number += 1;
                    }
                    Err(LogError::NotLeader { .. }) => return,
                    Err(error) => panic!("load failed: {error}"),
                }
            }
        })
    };

    let config = cluster.config(4);
    let newcomer = cluster.open(config).await;
    cluster.node(leader).add_member(4, address_of(4)).await.unwrap();
    let status = cluster.node(leader).status();
    assert!(status.members.iter().any(|member| member.node_id == 4 && member.voter));
    // It caught up from a snapshot: its journal starts after one. The install may finish
    // just after the leader counts the learner as caught up.
    eventually("the new master to install a snapshot", || async {
        newcomer.journal().lost_through().map(drop)
    })
    .await;

    let removed = *cluster.nodes.keys().find(|id| **id != leader && **id != 4).unwrap();
    cluster.node(leader).remove_member(removed).await.unwrap();
    let members: BTreeSet<u64> =
        cluster.node(leader).status().members.iter().map(|member| member.node_id).collect();
    assert!(!members.contains(&removed));
    eventually("more load after the removal", || async {
        (acknowledged.load(Ordering::Relaxed) >= 20).then_some(())
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    cluster.node(removed).shutdown().await.unwrap();
    cluster.network.unregister(removed);

    let remaining: Vec<u64> = cluster.nodes.keys().copied().filter(|id| *id != removed).collect();
    let final_number = 5_000;
    cluster.propose_among(&remaining, final_number).await;
    cluster.converged(&remaining).await;
    let expected = 60 + acknowledged.load(Ordering::Relaxed) as usize + 1;
    for node_id in &remaining {
        let agents = cluster
            .node(*node_id)
            .read(ReadConsistency::Local, |state| state.agents().len())
            .await
            .unwrap();
        assert_eq!(agents, expected, "node {node_id}");
    }
    cluster.shutdown().await;
}

/// A master serving Raft over real HTTP on loopback.
async fn start_http_master(
    node_id: u64,
    listener: tokio::net::TcpListener,
    directory: &std::path::Path,
    peers: &std::collections::BTreeMap<u64, String>,
) -> corral_log::LogNode {
    let address = listener.local_addr().unwrap().to_string();
    let mut config = corral_log::LogConfig::new(node_id, address, directory);
    config.peers = peers.clone();
    config.tuning = LogTuning { snapshot_chunk_bytes: 1024 * 1024, ..snapshotting_tuning() };
    let node = corral_log::LogNode::open(config).await.unwrap();
    let router = node.raft_router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    node
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http_a_new_master_is_sent_a_snapshot() {
    let directories: Vec<tempfile::TempDir> =
        (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut listeners = Vec::new();
    for _ in 0..4 {
        listeners.push(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap());
    }
    let addresses: Vec<String> =
        listeners.iter().map(|listener| listener.local_addr().unwrap().to_string()).collect();
    let peers: std::collections::BTreeMap<u64, String> =
        (1..=3).map(|id| (id, addresses[id as usize - 1].clone())).collect();
    let mut nodes = Vec::new();
    for (index, listener) in listeners.into_iter().enumerate() {
        let node_id = index as u64 + 1;
        // The fourth master is not in the initial peers: it waits to be added.
        let initial_peers = if node_id <= 3 { peers.clone() } else { Default::default() };
        nodes.push(
            start_http_master(node_id, listener, directories[index].path(), &initial_peers).await,
        );
    }
    for number in 0..60 {
        let (request_id, actor, mut command) = super::support::register_agent(number);
        // One command and the snapshot holding it are larger than axum's default body
        // limit (2 MB) and than one snapshot chunk.
        if let (0, corral_state::Command::RegisterAgent { info, .. }) = (number, &mut command) {
            info.attributes.0.push(("blob".to_owned(), "x".repeat(3 * 1024 * 1024)));
        }
        eventually("the command to be acknowledged", || async {
            let leader = nodes[..3].iter().find(|node| node.is_leader())?;
            match leader.propose(request_id.clone(), actor.clone(), command.clone()).await {
                Ok(_) => Some(()),
                Err(corral_log::LogError::NotLeader { .. }) => None,
                Err(error) => panic!("proposal failed: {error}"),
            }
        })
        .await;
    }
    eventually("a purged log", || async {
        let leader = nodes[..3].iter().find(|node| node.is_leader())?;
        leader.status().purged_index.filter(|purged| *purged > 0)
    })
    .await;
    // Asked of whichever master leads: on a loaded machine leadership may move meanwhile,
    // and a change asked of a deposed leader is refused (adding a learner twice is not).
    let leader = eventually("the new master added as a voter", || async {
        let leader = nodes[..3].iter().find(|node| node.is_leader())?;
        match leader.add_member(4, addresses[3].clone()).await {
            Ok(()) => Some(leader.clone()),
            // Deposed, or a change the previous leader began is still being committed.
            Err(corral_log::LogError::NotLeader { .. } | corral_log::LogError::Membership(_)) => {
                None
            }
            Err(error) => panic!("adding the new master failed: {error}"),
        }
    })
    .await;
    // The install may finish just after the leader counts the learner as caught up.
    eventually("the new master to install a snapshot", || async {
        nodes[3].journal().lost_through().map(drop)
    })
    .await;
    eventually("the new master to converge", || async {
        (nodes[3].applied_index() == leader.applied_index() && nodes[3].digest() == leader.digest())
            .then_some(())
    })
    .await;
    let agents = nodes[3].read(ReadConsistency::Local, |state| state.agents().len()).await.unwrap();
    assert_eq!(agents, 60);
    for node in &nodes {
        node.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_moves_to_the_master_asked_for_and_writes_go_on() {
    let cluster = TestCluster::start(3).await;
    cluster.propose(1).await;
    let leader = cluster.leader().await;
    let target = *cluster.nodes.keys().find(|id| **id != leader).unwrap();
    let stranger = 9;
    assert!(matches!(
        cluster.node(leader).transfer_leadership(stranger).await,
        Err(ChangeError::Refused(Refusal::UnknownMember(9)))
    ));
    let follower = cluster.node(target);
    assert!(matches!(
        follower.transfer_leadership(leader).await,
        Err(ChangeError::Log(LogError::NotLeader { leader_hint: Some(_) }))
    ));
    // The leader must have heard from the target before it hands over.
    eventually("the leader to hear from the target", || async {
        cluster
            .node(leader)
            .members()
            .iter()
            .find(|member| member.node_id == target)
            .filter(|member| member.up)
            .map(drop)
    })
    .await;
    let outcome = cluster.node(leader).transfer_leadership(target).await.unwrap();
    let TransferOutcome::Transferred { from, to, .. } = outcome else {
        panic!("three masters cannot elect a third one: {outcome:?}")
    };
    assert_eq!((from, to), (leader, target));
    assert_eq!(cluster.leader().await, target);
    cluster.propose(2).await;
    cluster.converged(&cluster.nodes.keys().copied().collect::<Vec<_>>()).await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removals_that_would_lose_the_quorum_are_refused() {
    let cluster = TestCluster::start(3).await;
    cluster.propose(1).await;
    let leader = cluster.leader().await;
    let others: Vec<u64> = cluster.nodes.keys().copied().filter(|id| *id != leader).collect();
    let node = cluster.node(leader);
    assert!(matches!(
        node.leave(leader).await,
        Err(ChangeError::Refused(Refusal::RemovingLeader(_)))
    ));
    assert!(matches!(node.leave(42).await, Err(ChangeError::Refused(Refusal::UnknownMember(42)))));
    cluster.network.isolate(others[0]);
    eventually("the leader to see the isolated master down", || async {
        node.members()
            .iter()
            .find(|member| member.node_id == others[0])
            .filter(|member| !member.up)
            .map(drop)
    })
    .await;
    // Leadership is not handed to a master the leader cannot hear.
    assert!(matches!(
        node.transfer_leadership(others[0]).await,
        Err(ChangeError::Refused(Refusal::Unreachable(id))) if id == others[0]
    ));
    // Removing the other live voter would leave one of two up.
    assert!(matches!(
        node.leave(others[1]).await,
        Err(ChangeError::Refused(Refusal::QuorumLost { which: "new", up: 1, voters: 2, .. }))
    ));
    // Removing the dead one is what an operator replacing it does.
    node.leave(others[0]).await.unwrap();
    let members: Vec<u64> = node.members().iter().map(|member| member.node_id).collect();
    assert_eq!(members.len(), 2);
    assert!(!members.contains(&others[0]));
    cluster.propose_among(&[leader, others[1]], 2).await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_five_masters_leadership_moves_where_asked_every_time() {
    let cluster = TestCluster::start(5).await;
    cluster.propose(1).await;
    // The voters held back stand aside for the target, so none of them wins the election
    // the hand-over opens (without that, two in six rounds went elsewhere).
    for round in 0..6 {
        let leader = cluster.leader().await;
        let target = *cluster.nodes.keys().find(|id| **id != leader).unwrap();
        eventually("the leader to hear from the target", || async {
            cluster.node(leader).members().iter().find(|m| m.node_id == target && m.up).map(drop)
        })
        .await;
        let outcome = cluster.node(leader).transfer_leadership(target).await.unwrap();
        assert!(
            matches!(outcome, TransferOutcome::Transferred { to, .. } if to == target),
            "round {round}: {outcome:?}"
        );
        cluster.propose(10 + round).await;
    }
    cluster.shutdown().await;
}
