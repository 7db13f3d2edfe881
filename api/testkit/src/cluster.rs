//! Masters as real `corral master` processes with real sled directories.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::eventually;

pub struct MasterProcess {
    pub node_id: u64,
    pub address: String,
    data_dir: std::path::PathBuf,
    peers: String,
    cluster_id: String,
    extra_args: Vec<String>,
    child: Option<Child>,
}

impl MasterProcess {
    fn spawn(&mut self) {
        let log =
            std::fs::File::create(self.data_dir.with_extension("log")).expect("master log file");
        let child = Command::new(crate::corral_bin())
            .args(["master", "--node-id", &self.node_id.to_string(), "--listen", &self.address])
            .arg("--data-dir")
            .arg(&self.data_dir)
            // A master that joins a running cluster, or seeded from a backup, has no peers.
            .args(if self.peers.is_empty() { vec![] } else { vec!["--peers", &self.peers] })
            .args([
                "--cluster-id",
                &self.cluster_id,
                "--heartbeat-interval",
                "1",
                "--allocation-interval",
                "0.2",
            ])
            .args(&self.extra_args)
            .env("RUST_LOG", "info,openraft=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("corral master starts");
        self.child = Some(child);
    }

    /// SIGKILL: no graceful shutdown, as a crash would be.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts again from the same directory and address.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }
}

impl Drop for MasterProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port()
}

pub struct Cluster {
    pub masters: Vec<MasterProcess>,
    /// Unique to this cluster: agent, framework and offer ids start with it.
    pub cluster_id: String,
    pub http: reqwest::Client,
    _directory: tempfile::TempDir,
}

impl Cluster {
    pub fn start(size: u64) -> Cluster {
        Cluster::start_with(size, &[])
    }

    /// Masters started with extra `corral master` flags.
    pub fn start_with(size: u64, extra_args: &[&str]) -> Cluster {
        let directory = tempfile::tempdir().expect("temp dir");
        let cluster_id = crate::unique_cluster_id();
        let addresses: Vec<String> =
            (0..size).map(|_| format!("127.0.0.1:{}", free_port())).collect();
        let peers = addresses
            .iter()
            .enumerate()
            .map(|(index, address)| format!("{}={address}", index + 1))
            .collect::<Vec<_>>()
            .join(",");
        let masters = addresses
            .into_iter()
            .enumerate()
            .map(|(index, address)| {
                let mut master = MasterProcess {
                    node_id: index as u64 + 1,
                    address,
                    data_dir: directory.path().join(format!("master-{}", index + 1)),
                    peers: peers.clone(),
                    cluster_id: cluster_id.clone(),
                    extra_args: extra_args.iter().map(|arg| (*arg).to_owned()).collect(),
                    child: None,
                };
                master.spawn();
                master
            })
            .collect();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        Cluster { masters, cluster_id, http, _directory: directory }
    }

    /// Starts master `node_id` on a new address with an empty data directory and no
    /// `--peers`: it waits to be added (`corral members add`). Returns its index.
    pub fn start_joining(&mut self, node_id: u64) -> usize {
        let data_dir =
            self._directory.path().join(format!("master-{node_id}-{}", self.masters.len()));
        self.start_from(node_id, format!("127.0.0.1:{}", free_port()), data_dir)
    }

    /// Starts master `node_id` at `address` on an existing data directory (one seeded by
    /// `corral snapshot restore`, say), without `--peers`. Returns its index.
    pub fn start_from(
        &mut self,
        node_id: u64,
        address: String,
        data_dir: std::path::PathBuf,
    ) -> usize {
        let extra_args =
            self.masters.first().map(|first| first.extra_args.clone()).unwrap_or_default();
        let mut master = MasterProcess {
            node_id,
            address,
            data_dir,
            peers: String::new(),
            cluster_id: self.cluster_id.clone(),
            extra_args,
            child: None,
        };
        master.spawn();
        self.masters.push(master);
        self.masters.len() - 1
    }

    /// A fresh directory inside the cluster's own temporary one.
    pub fn new_directory(&self, name: &str) -> std::path::PathBuf {
        self._directory.path().join(name)
    }

    /// A free loopback address.
    pub fn free_address() -> String {
        format!("127.0.0.1:{}", free_port())
    }

    /// Addresses of the masters whose processes run.
    pub fn live_addresses(&self) -> Vec<String> {
        self.masters.iter().filter(|m| m.is_running()).map(|m| m.address.clone()).collect()
    }

    pub fn addresses(&self) -> Vec<String> {
        self.masters.iter().map(|m| m.address.clone()).collect()
    }

    /// The index of the master every live master agrees leads, once they do.
    pub async fn leader(&self) -> usize {
        eventually(Duration::from_secs(30), "a leader all live masters agree on", || async {
            let mut leader = None;
            for master in self.masters.iter().filter(|m| m.child.is_some()) {
                let status: serde_json::Value = self
                    .http
                    .get(master.url("/corral/v1/cluster"))
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                let said = status["leader"].as_u64()?;
                if leader.is_some_and(|known| known != said) {
                    return None;
                }
                leader = Some(said);
            }
            let leader = leader?;
            // A replaced master's old process may share the node id; the live one counts.
            self.masters.iter().position(|m| m.node_id == leader && m.child.is_some())
        })
        .await
    }

    pub fn follower_of(&self, leader: usize) -> usize {
        (leader + 1) % self.masters.len()
    }
}
