//! Membership changes under load: a new master catches up from a snapshot, one is removed.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use corral_log::{LogError, LogTuning, ReadConsistency};

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
    // It caught up from a snapshot: its journal starts after one.
    assert!(
        newcomer.journal().lost_through().is_some(),
        "the new master replayed the whole log instead"
    );

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
