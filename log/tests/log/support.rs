//! Helpers shared by the test modules: commands, polling with deadlines, in-process clusters.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use corral_log::network::LocalNetwork;
use corral_log::{Committed, LogConfig, LogError, LogNode, LogTuning};
use corral_state::model::{AgentInfo, Attributes};
use corral_state::{Actor, Command, RequestId};
use tokio::time::Instant;

/// Generous: CI machines are shared and tests run in debug builds.
pub const DEADLINE: Duration = Duration::from_secs(30);

pub fn register_agent(number: u64) -> (RequestId, Actor, Command) {
    let command = Command::RegisterAgent {
        info: AgentInfo {
            hostname: format!("agent-{number}"),
            address: format!("10.0.{}.{}:5051", number / 256, number % 256),
            attributes: Attributes::default(),
        },
        resources: "cpus:1;mem:128".parse().unwrap(),
    };
    (RequestId::new(format!("register-{number}")), Actor::Leader, command)
}

/// Polls `probe` until it returns `Some`, failing the test at the deadline.
pub async fn eventually<T, F, Fut>(what: &str, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    corral_testkit::eventually(DEADLINE, what, probe).await
}

pub fn test_tuning() -> LogTuning {
    LogTuning {
        heartbeat_interval: Duration::from_millis(50),
        election_timeout_min: Duration::from_millis(300),
        election_timeout_max: Duration::from_millis(600),
        ..LogTuning::default()
    }
}

/// Masters in one process, connected by a [`LocalNetwork`] the test controls.
pub struct TestCluster {
    pub network: LocalNetwork,
    pub nodes: BTreeMap<u64, LogNode>,
    pub directories: BTreeMap<u64, tempfile::TempDir>,
    pub tuning: LogTuning,
}

impl TestCluster {
    pub async fn start(size: u64) -> TestCluster {
        TestCluster::start_with(size, test_tuning(), |_| {}).await
    }

    pub async fn start_with(
        size: u64,
        tuning: LogTuning,
        adjust: impl Fn(&mut LogConfig),
    ) -> TestCluster {
        let mut cluster = TestCluster {
            network: LocalNetwork::new(),
            nodes: BTreeMap::new(),
            directories: BTreeMap::new(),
            tuning,
        };
        let peers: BTreeMap<u64, String> =
            (1..=size).map(|node_id| (node_id, address_of(node_id))).collect();
        for node_id in 1..=size {
            let mut config = cluster.config(node_id);
            config.peers = peers.clone();
            adjust(&mut config);
            cluster.open(config).await;
        }
        cluster
    }

    pub fn config(&mut self, node_id: u64) -> LogConfig {
        let directory =
            self.directories.entry(node_id).or_insert_with(|| tempfile::tempdir().unwrap());
        let mut config = LogConfig::new(node_id, address_of(node_id), directory.path());
        config.tuning = self.tuning.clone();
        config
    }

    pub async fn open(&mut self, config: LogConfig) -> LogNode {
        let node_id = config.node_id;
        let node = LogNode::open_with_network(config, self.network.factory(node_id)).await.unwrap();
        self.network.register(node_id, node.endpoint());
        self.nodes.insert(node_id, node.clone());
        node
    }

    pub fn node(&self, node_id: u64) -> &LogNode {
        &self.nodes[&node_id]
    }

    /// The one node among `among` that believes it leads and that the others follow.
    pub async fn leader_among(&self, among: &[u64]) -> u64 {
        eventually("a leader", || async {
            let leaders: Vec<u64> =
                among.iter().copied().filter(|id| self.node(*id).is_leader()).collect();
            let [leader] = leaders[..] else { return None };
            let term = self.node(leader).status().term;
            let followed = among.iter().all(|id| {
                let status = self.node(*id).status();
                status.leader == Some(leader) && status.term == term
            });
            followed.then_some(leader)
        })
        .await
    }

    pub async fn leader(&self) -> u64 {
        let all: Vec<u64> = self.nodes.keys().copied().collect();
        self.leader_among(&all).await
    }

    /// Proposes through whichever of `among` leads, retrying (same request id) until
    /// acknowledged.
    pub async fn propose_among(&self, among: &[u64], number: u64) -> Committed {
        self.propose_command_among(among, register_agent(number)).await
    }

    /// [`TestCluster::propose_among`] for any command.
    pub async fn propose_command_among(
        &self,
        among: &[u64],
        (request_id, actor, command): (RequestId, Actor, Command),
    ) -> Committed {
        let leader = self.leader_among(among).await;
        let deadline = Instant::now() + DEADLINE;
        let mut target = leader;
        loop {
            let attempt = tokio::time::timeout(
                Duration::from_secs(2),
                self.node(target).propose(request_id.clone(), actor.clone(), command.clone()),
            )
            .await;
            match attempt {
                Ok(Ok(committed)) => return committed,
                Ok(Err(LogError::NotLeader { .. })) | Err(_) => {}
                Ok(Err(error)) => panic!("proposal {request_id:?} failed: {error}"),
            }
            assert!(Instant::now() < deadline, "proposal {request_id:?} never acknowledged");
            target = self.leader_among(among).await;
        }
    }

    pub async fn propose(&self, number: u64) -> Committed {
        let all: Vec<u64> = self.nodes.keys().copied().collect();
        self.propose_among(&all, number).await
    }

    /// Waits until every node in `among` has applied the same log prefix and has the same
    /// state digest.
    pub async fn converged(&self, among: &[u64]) {
        eventually("replicas to converge", || async {
            let applied: Vec<u64> = among.iter().map(|id| self.node(*id).applied_index()).collect();
            let digests: Vec<_> = among.iter().map(|id| self.node(*id).digest()).collect();
            let same_index = applied.windows(2).all(|pair| pair[0] == pair[1]);
            let same_digest = digests.windows(2).all(|pair| pair[0] == pair[1]);
            (same_index && same_digest).then_some(())
        })
        .await
    }

    pub async fn shutdown(&self) {
        for node in self.nodes.values() {
            let _ = node.shutdown().await;
        }
    }
}

pub fn address_of(node_id: u64) -> String {
    format!("local-{node_id}")
}
