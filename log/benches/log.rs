//! The cluster benchmark: three masters on loopback, real sled directories, Raft over HTTP.
//!
//! ```text
//! cargo bench -p corral-log --bench log
//! ```
//!
//! Then the audit benchmark (`log/audit.rs`); `CORRAL_BENCH_ONLY=audit` runs it alone.
//!
//! Environment: `CORRAL_BENCH_SECONDS` (each load phase, default 5), `CORRAL_BENCH_COMMANDS`
//! (journal size before the replay and restart phases, default 1,000,000),
//! `CORRAL_BENCH_DIR` (where the sled directories go; default the system temp dir — it must
//! be a real disk, not tmpfs, for the fsyncs to mean anything).
//!
//! Workload: 1,000 agents registered, then agent heartbeats (each a command with its own
//! request id, validated and applied like any other) from 1, 64 and 1,000 concurrent
//! proposers on the leader.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use corral_log::{LogConfig, LogNode, ReadConsistency};
use corral_state::model::{AgentInfo, Attributes, Settings};
use corral_state::{Actor, AgentId, ClusterState, Command, RequestId};
use tokio::sync::oneshot;

struct Master {
    node: LogNode,
    stop_server: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

async fn start_master(config: LogConfig, listener: tokio::net::TcpListener) -> Master {
    let node = LogNode::open(config).await.expect("open master");
    let router = node.raft_router();
    let (stop_server, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
    });
    Master { node, stop_server, server }
}

async fn leader_of(masters: &BTreeMap<u64, Master>) -> LogNode {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(master) = masters.values().find(|master| master.node.is_leader()) {
            return master.node.clone();
        }
        assert!(Instant::now() < deadline, "no leader");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

struct LoadResult {
    commands: u64,
    elapsed: Duration,
    latencies_micros: Vec<u32>,
}

impl LoadResult {
    fn percentile(&self, fraction: f64) -> f64 {
        if self.latencies_micros.is_empty() {
            return 0.0;
        }
        let rank = ((self.latencies_micros.len() as f64 - 1.0) * fraction).round() as usize;
        f64::from(self.latencies_micros[rank]) / 1000.0
    }

    fn mean(&self) -> f64 {
        let total: u64 = self.latencies_micros.iter().map(|micros| u64::from(*micros)).sum();
        total as f64 / self.latencies_micros.len().max(1) as f64 / 1000.0
    }

    fn per_second(&self) -> f64 {
        self.commands as f64 / self.elapsed.as_secs_f64()
    }
}

async fn run_load(
    leader: &LogNode,
    agents: &Arc<Vec<AgentId>>,
    proposers: usize,
    duration: Duration,
    phase: &str,
) -> LoadResult {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks: Vec<_> = (0..proposers)
        .map(|proposer| {
            let (leader, agents, stop, phase) =
                (leader.clone(), agents.clone(), stop.clone(), phase.to_owned());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut number = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let agent_id = agents[(proposer + number * 7) % agents.len()].clone();
                    let request_id = RequestId::new(format!("{phase}-{proposer}-{number}"));
                    let command = Command::AgentHeartbeat { agent_id: agent_id.clone() };
                    let sent = Instant::now();
                    leader
                        .propose(request_id, Actor::Agent(agent_id), command)
                        .await
                        .expect("propose");
                    latencies.push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
                    number += 1;
                }
                latencies
            })
        })
        .collect();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies_micros = Vec::new();
    for task in tasks {
        latencies_micros.extend(task.await.expect("proposer"));
    }
    let elapsed = started.elapsed();
    latencies_micros.sort_unstable();
    LoadResult { commands: latencies_micros.len() as u64, elapsed, latencies_micros }
}

#[path = "log/audit.rs"]
mod audit;

fn main() {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    // `CORRAL_BENCH_ONLY=audit` runs only the audit benchmark (log/audit.rs).
    match std::env::var("CORRAL_BENCH_ONLY").as_deref() {
        Ok("audit") => runtime.block_on(audit::benchmark()),
        _ => {
            runtime.block_on(benchmark());
            runtime.block_on(audit::benchmark());
        }
    }
}

async fn benchmark() {
    let seconds = env_number("CORRAL_BENCH_SECONDS", 5);
    let target_commands = env_number("CORRAL_BENCH_COMMANDS", 1_000_000);
    let base = match std::env::var("CORRAL_BENCH_DIR") {
        Ok(directory) => tempfile::tempdir_in(directory),
        Err(_) => tempfile::tempdir(),
    }
    .expect("bench directory");
    println!(
        "corral-log cluster benchmark: 3 masters on loopback, sled in {}",
        base.path().display()
    );

    let mut listeners = Vec::new();
    let mut peers = BTreeMap::new();
    for node_id in 1..=3u64 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        peers.insert(node_id, listener.local_addr().expect("address").to_string());
        listeners.push((node_id, listener));
    }
    let config_of = |node_id: u64| {
        let mut config = LogConfig::new(
            node_id,
            peers[&node_id].clone(),
            base.path().join(format!("master-{node_id}")),
        );
        config.peers = peers.clone();
        config
    };
    let mut masters = BTreeMap::new();
    for (node_id, listener) in listeners {
        masters.insert(node_id, start_master(config_of(node_id), listener).await);
    }
    let leader = leader_of(&masters).await;

    let registrations = (0..1000).map(|number| {
        let leader = leader.clone();
        async move {
            let command = Command::RegisterAgent {
                info: AgentInfo {
                    hostname: format!("agent-{number}"),
                    address: format!("10.0.{}.{}:5051", number / 256, number % 256),
                    attributes: Attributes::default(),
                },
                resources: "cpus:8;mem:32768;disk:100000;ports:[31000-32000]"
                    .parse()
                    .expect("resources"),
            };
            let committed = leader
                .propose(RequestId::new(format!("register-{number}")), Actor::Leader, command)
                .await
                .expect("register");
            committed.outcome.events()[0].agent_id().expect("agent id").clone()
        }
    });
    let agents = Arc::new(futures::future::join_all(registrations).await);

    println!();
    println!("| concurrent proposers | commands/s | p50 ms | p99 ms | mean ms | commands per Raft entry |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for proposers in [1usize, 64, 1000] {
        let before = leader.proposer_counters();
        let result = run_load(
            &leader,
            &agents,
            proposers,
            Duration::from_secs(seconds),
            &format!("load{proposers}"),
        )
        .await;
        let after = leader.proposer_counters();
        let per_entry = (after.commands - before.commands) as f64
            / (after.batches - before.batches).max(1) as f64;
        println!(
            "| {proposers} | {:.0} | {:.2} | {:.2} | {:.2} | {per_entry:.1} |",
            result.per_second(),
            result.percentile(0.50),
            result.percentile(0.99),
            result.mean()
        );
    }

    // Fill the journal up to the target for the replay and restart phases.
    let mut round = 0;
    while leader.proposer_counters().commands < target_commands {
        run_load(&leader, &agents, 1000, Duration::from_secs(2), &format!("fill{round}")).await;
        round += 1;
    }
    let journaled = leader.proposer_counters().commands;

    // What reading and decoding alone costs, to tell storage from applying in the replay.
    let decode_started = Instant::now();
    let mut decoded = 0u64;
    for row in leader.journal().commands(0..=u64::MAX) {
        decoded += row.expect("journal row").2.len() as u64;
    }
    let decode_elapsed = decode_started.elapsed();

    // Replay: rebuild the state from the journal alone.
    let replay_started = Instant::now();
    let mut replayed_state = ClusterState::new(Settings::default());
    let replayed = leader.journal().replay(&mut replayed_state, 0..=u64::MAX).expect("replay");
    let replay_elapsed = replay_started.elapsed();
    let leader_digest =
        leader.read(ReadConsistency::Linearizable, ClusterState::digest).await.expect("read");
    let replay_matches = replayed_state.digest() == leader_digest;

    // Restart: a follower is stopped and opened again from its directory, first with only
    // the snapshots the policy made (so the log after the last one is applied again), then
    // right after a fresh snapshot.
    let follower_id =
        *masters.iter().find(|(_, master)| !master.node.is_leader()).expect("a follower").0;
    let mut restarts = Vec::new();
    for fresh_snapshot in [false, true] {
        let follower = masters.remove(&follower_id).expect("follower");
        if fresh_snapshot {
            follower.node.trigger_snapshot().await.expect("snapshot");
            let deadline = Instant::now() + Duration::from_secs(120);
            while follower.node.status().snapshot_index < follower.node.status().applied_index {
                assert!(Instant::now() < deadline, "snapshot never finished");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        let status = follower.node.status();
        let (snapshot_index, applied_index) =
            (status.snapshot_index.unwrap_or(0), status.applied_index.unwrap_or(0));
        let commands_after_snapshot: u64 = follower
            .node
            .journal()
            .commands(snapshot_index + 1..=applied_index)
            .map(|row| row.expect("journal row").2.len() as u64)
            .sum();
        let Master { node, stop_server, server } = follower;
        node.shutdown().await.expect("shutdown");
        let _ = stop_server.send(());
        let _ = server.await;
        drop(node);
        let leader_committed = leader.ensure_linearizable().await.expect("commit index");
        let restart_started = Instant::now();
        let listener = tokio::net::TcpListener::bind(&peers[&follower_id]).await.expect("rebind");
        let restarted = start_master(config_of(follower_id), listener).await;
        let opened = restart_started.elapsed();
        while restarted.node.applied_index() < leader_committed {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let caught_up = restart_started.elapsed();
        restarts.push((snapshot_index, applied_index, commands_after_snapshot, opened, caught_up));
        masters.insert(follower_id, restarted);
    }

    println!();
    println!("| phase | result |");
    println!("| --- | --- |");
    println!(
        "| replay from the journal | {replayed} commands in {:.2} s = {:.0} commands/s (digest matches the leader: {replay_matches}) |",
        replay_elapsed.as_secs_f64(),
        replayed as f64 / replay_elapsed.as_secs_f64()
    );
    println!(
        "| reading and decoding the journal only | {decoded} commands in {:.2} s = {:.0} commands/s |",
        decode_elapsed.as_secs_f64(),
        decoded as f64 / decode_elapsed.as_secs_f64()
    );
    for (snapshot_index, applied_index, commands_after_snapshot, opened, caught_up) in restarts {
        println!(
            "| restart of a master with {journaled} journaled commands, snapshot at entry {snapshot_index} of {applied_index} ({commands_after_snapshot} commands to apply again) | opened in {:.2} s, serving (caught up with the leader) in {:.2} s |",
            opened.as_secs_f64(),
            caught_up.as_secs_f64()
        );
    }

    // A new master joins: the leader's log behind its snapshot is purged, so it is sent the
    // snapshot (in chunks, over HTTP) and then the log after it.
    leader.trigger_snapshot().await.expect("leader snapshot");
    let deadline = Instant::now() + Duration::from_secs(120);
    while leader.status().purged_index.is_none() {
        assert!(Instant::now() < deadline, "the leader never purged its log");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let state_bytes = leader
        .read(ReadConsistency::Local, |state| state.snapshot().expect("the state encodes").len())
        .await
        .expect("read");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let newcomer_address = listener.local_addr().expect("address").to_string();
    let newcomer_config = LogConfig::new(4, newcomer_address.clone(), base.path().join("master-4"));
    let newcomer = start_master(newcomer_config, listener).await;
    let join_started = Instant::now();
    leader.add_learner(4, newcomer_address).await.expect("add learner");
    let joined = join_started.elapsed();
    let installed_from_snapshot = newcomer.node.journal().lost_through().is_some();
    println!(
        "| a new master joins ({:.1} MB state, sent as a snapshot: {installed_from_snapshot}) | caught up in {:.2} s |",
        state_bytes as f64 / 1e6,
        joined.as_secs_f64()
    );
    newcomer.node.shutdown().await.expect("shutdown");
    for master in masters.values() {
        let _ = master.node.shutdown().await;
    }
}
