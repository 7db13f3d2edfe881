//! Masters killed with SIGKILL while writing, restarted from their sled directories, many
//! times over: nothing acknowledged is lost, the stores reopen, the digests agree.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use corral_log::network::LocalNetwork;
use corral_log::{LogConfig, LogError, LogNode, ReadConsistency};

use corral_testkit::free_port;

use super::support::{eventually, register_agent};

const BINARY: &str = env!("CARGO_BIN_EXE_corral-log-node");
const ROUNDS: usize = 4;
const ACKS_BEFORE_FIRST_KILL: usize = 150;
const ACKS_BEFORE_SECOND_KILL: usize = 100;

struct Master {
    process: Child,
    stdout_reader: JoinHandle<()>,
}

fn start_master(
    node_id: u64,
    address: &str,
    directory: &std::path::Path,
    peers: &str,
    round: usize,
    acknowledged: &Arc<Mutex<Vec<String>>>,
) -> Master {
    let mut process = Command::new(BINARY)
        .args(["--node-id", &node_id.to_string(), "--listen", address, "--peers", peers])
        .arg("--data-dir")
        .arg(directory)
        .args(["--write", &format!("round{round}"), "--writers", "32"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = process.stdout.take().unwrap();
    let acknowledged = acknowledged.clone();
    // Reads until the process dies: every line printed before the kill is collected.
    let stdout_reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if let Some(hostname) = line.strip_prefix("acked ") {
                acknowledged.lock().unwrap().push(hostname.to_owned());
            }
        }
    });
    Master { process, stdout_reader }
}

fn kill(mut master: Master) {
    master.process.kill().unwrap();
    master.process.wait().unwrap();
    master.stdout_reader.join().unwrap();
}

async fn wait_for_acks(acknowledged: &Arc<Mutex<Vec<String>>>, at_least: usize) {
    eventually("acknowledged commands", || async {
        (acknowledged.lock().unwrap().len() >= at_least).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn masters_killed_while_writing_lose_nothing_acknowledged() {
    let directories: Vec<tempfile::TempDir> =
        (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let addresses: Vec<String> = (0..3).map(|_| format!("127.0.0.1:{}", free_port())).collect();
    let peers = (1..=3)
        .zip(&addresses)
        .map(|(id, address)| format!("{id}={address}"))
        .collect::<Vec<_>>()
        .join(",");
    let acknowledged = Arc::new(Mutex::new(Vec::new()));

    for round in 0..ROUNDS {
        let mut masters: Vec<Option<Master>> = (0..3)
            .map(|index| {
                let node_id = index as u64 + 1;
                Some(start_master(
                    node_id,
                    &addresses[index],
                    directories[index].path(),
                    &peers,
                    round,
                    &acknowledged,
                ))
            })
            .collect();
        let before = acknowledged.lock().unwrap().len();
        wait_for_acks(&acknowledged, before + ACKS_BEFORE_FIRST_KILL).await;
        // One master dies first (a different one each round, the leader in some), the other
        // two keep writing, then they die too, mid-write.
        kill(masters[round % 3].take().unwrap());
        let before = acknowledged.lock().unwrap().len();
        wait_for_acks(&acknowledged, before + ACKS_BEFORE_SECOND_KILL).await;
        for master in masters.iter_mut().filter_map(Option::take) {
            kill(master);
        }
    }

    // Reopen every directory and check the acknowledged commands are all there.
    let acknowledged: BTreeSet<String> = acknowledged.lock().unwrap().iter().cloned().collect();
    let network = LocalNetwork::new();
    let mut nodes = Vec::new();
    for (index, directory) in directories.iter().enumerate() {
        let node_id = index as u64 + 1;
        let config = LogConfig::new(node_id, addresses[index].clone(), directory.path());
        let node = LogNode::open_with_network(config, network.factory(node_id)).await.unwrap();
        network.register(node_id, node.endpoint());
        nodes.push(node);
    }
    let marker = register_agent(u64::MAX);
    // Leadership may still move while the restarted masters settle: retry, same request id.
    eventually("a write after the crashes", || async {
        let leader = nodes.iter().find(|node| node.is_leader())?;
        let attempt = leader.propose(marker.0.clone(), marker.1.clone(), marker.2.clone());
        match tokio::time::timeout(std::time::Duration::from_secs(2), attempt).await {
            Ok(Ok(_)) => Some(()),
            Ok(Err(LogError::NotLeader { .. })) | Err(_) => None,
            Ok(Err(error)) => panic!("write after the crashes failed: {error}"),
        }
    })
    .await;
    eventually("replicas to converge after the crashes", || async {
        let applied: BTreeSet<u64> = nodes.iter().map(LogNode::applied_index).collect();
        let digests: BTreeSet<_> = nodes.iter().map(LogNode::digest).collect();
        (applied.len() == 1 && digests.len() == 1).then_some(())
    })
    .await;
    for node in &nodes {
        let hostnames: BTreeSet<String> = node
            .read(ReadConsistency::Local, |state| {
                state.agents().values().map(|agent| agent.info.hostname.clone()).collect()
            })
            .await
            .unwrap();
        let lost: Vec<&String> = acknowledged.difference(&hostnames).collect();
        assert!(
            lost.is_empty(),
            "master {} lost {} acknowledged commands: {:?}",
            node.node_id(),
            lost.len(),
            &lost[..lost.len().min(5)]
        );
    }
    assert!(acknowledged.len() >= ROUNDS * (ACKS_BEFORE_FIRST_KILL + ACKS_BEFORE_SECOND_KILL));
    for node in &nodes {
        node.shutdown().await.unwrap();
    }
}
