//! Masters as real `corral master` processes with real sled directories.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{eventually, free_port};

pub struct MasterProcess {
    pub node_id: u64,
    pub address: String,
    /// With TLS: where it also serves plain HTTP (`--plain-listen`).
    pub plain_address: Option<String>,
    /// With TLS: the directory `corral certs` wrote (this master uses `master-<id>.pem`).
    tls: Option<std::path::PathBuf>,
    /// `--plain-peers` for masters started with `--peers`.
    plain_peers: String,
    data_dir: std::path::PathBuf,
    peers: String,
    cluster_id: String,
    /// `--cluster-secret-file`.
    secret_file: std::path::PathBuf,
    extra_args: Vec<String>,
    child: Option<Child>,
}

impl MasterProcess {
    fn spawn(&mut self) {
        let log = std::fs::File::create(self.log_path()).expect("master log file");
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
            .args(self.tls_args())
            .arg("--cluster-secret-file")
            .arg(&self.secret_file)
            .args(&self.extra_args)
            .env("RUST_LOG", "info,openraft=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("corral master starts");
        self.child = Some(child);
    }

    fn tls_args(&self) -> Vec<String> {
        let Some(certs) = &self.tls else { return Vec::new() };
        let file = |name: String| certs.join(name).display().to_string();
        let mut args = vec![
            "--tls-cert".to_owned(),
            file(format!("master-{}.pem", self.node_id)),
            "--tls-key".to_owned(),
            file(format!("master-{}-key.pem", self.node_id)),
            "--tls-ca".to_owned(),
            file("ca.pem".to_owned()),
        ];
        if let Some(plain) = &self.plain_address {
            args.extend(["--plain-listen".to_owned(), plain.clone()]);
            if !self.peers.is_empty() {
                args.extend(["--plain-peers".to_owned(), self.plain_peers.clone()]);
            }
        }
        args
    }

    /// SIGKILL: no graceful shutdown, as a crash would be.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, as an operator stops a master: it finishes serving and flushes its journal.
    /// Panics if it has not exited within 30 s.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill(1) runs");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                assert!(status.success(), "master {} stopped with {status}", self.node_id);
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("master {} did not stop within 30 s of SIGTERM", self.node_id);
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

    /// Where the process's stderr goes: beside its data directory.
    pub fn log_path(&self) -> std::path::PathBuf {
        self.data_dir.with_extension("log")
    }

    /// `https` with TLS.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.address)
    }
}

impl Drop for MasterProcess {
    fn drop(&mut self) {
        self.kill();
        // The log lives in the cluster's temporary directory: a failed test shows it now
        // or never.
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.log_path())
                .unwrap_or_else(|error| format!("(unreadable: {error})"));
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
            eprintln!("--- last lines of master {}'s log ---\n{}", self.node_id, tail.join("\n"));
        }
    }
}

/// How much of each master's log a failed test prints.
const LOG_TAIL_LINES: usize = 40;

enum Transport {
    Plain,
    Tls { agents: u32 },
}

/// Which cluster secret each master is given.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Secrets {
    /// One for all, as a cluster is run.
    Shared,
    /// Each its own: masters that must not form a cluster.
    OnePerMaster,
}

/// Writes a new random cluster secret to `path` (mode 0600).
fn write_secret(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let text = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    std::fs::write(path, text).expect("a cluster secret file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .expect("a cluster secret file's mode");
}

pub struct Cluster {
    pub masters: Vec<MasterProcess>,
    /// Unique to this cluster: agent, framework and offer ids start with it.
    pub cluster_id: String,
    /// Trusts the cluster's CA when the cluster has one; presents no certificate.
    pub http: reqwest::Client,
    /// The directory `corral certs` wrote, for a cluster with TLS.
    pub certs: Option<std::path::PathBuf>,
    _directory: tempfile::TempDir,
}

impl Cluster {
    pub fn start(size: u64) -> Cluster {
        Cluster::start_with(size, &[])
    }

    /// Masters started with extra `corral master` flags.
    pub fn start_with(size: u64, extra_args: &[&str]) -> Cluster {
        Cluster::start_configured(size, extra_args, Transport::Plain, Secrets::Shared)
    }

    /// Masters listing each other as peers but each given its own cluster secret: none
    /// takes another's Raft requests.
    pub fn start_with_different_secrets(size: u64) -> Cluster {
        Cluster::start_configured(size, &[], Transport::Plain, Secrets::OnePerMaster)
    }

    /// Masters with mutual TLS, from a CA and certificates `corral certs` makes for `size`
    /// masters and `agents` agents; each also serves plain HTTP on its `plain_address`, and
    /// is told the others' (`--plain-peers`).
    pub fn start_tls(size: u64, agents: u32, extra_args: &[&str]) -> Cluster {
        Cluster::start_configured(size, extra_args, Transport::Tls { agents }, Secrets::Shared)
    }

    fn start_configured(
        size: u64,
        extra_args: &[&str],
        transport: Transport,
        secrets: Secrets,
    ) -> Cluster {
        let directory = tempfile::tempdir().expect("temp dir");
        let shared_secret = directory.path().join("cluster-secret");
        write_secret(&shared_secret);
        let cluster_id = crate::unique_cluster_id();
        let certs = match transport {
            Transport::Plain => None,
            Transport::Tls { agents } => {
                let certs = directory.path().join("certs");
                crate::make_certs(&cluster_id, &certs, size, agents);
                Some(certs)
            }
        };
        let plain_addresses: Vec<Option<String>> = (0..size)
            .map(|_| certs.as_ref().map(|_| format!("127.0.0.1:{}", free_port())))
            .collect();
        let extra_args: Vec<String> = extra_args.iter().map(|arg| (*arg).to_owned()).collect();
        let plain_peers = plain_addresses
            .iter()
            .enumerate()
            .filter_map(|(index, plain)| Some(format!("{}={}", index + 1, plain.as_ref()?)))
            .collect::<Vec<_>>()
            .join(",");
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
                let secret_file = match secrets {
                    Secrets::Shared => shared_secret.clone(),
                    Secrets::OnePerMaster => {
                        let own = directory.path().join(format!("cluster-secret-{}", index + 1));
                        write_secret(&own);
                        own
                    }
                };
                let mut master = MasterProcess {
                    node_id: index as u64 + 1,
                    address,
                    plain_address: plain_addresses[index].clone(),
                    tls: certs.clone(),
                    plain_peers: plain_peers.clone(),
                    data_dir: directory.path().join(format!("master-{}", index + 1)),
                    peers: peers.clone(),
                    cluster_id: cluster_id.clone(),
                    secret_file,
                    extra_args: extra_args.clone(),
                    child: None,
                };
                master.spawn();
                master
            })
            .collect();
        let mut http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10));
        if let Some(certs) = &certs {
            http = http.tls_built_in_root_certs(false).add_root_certificate(crate::ca(certs));
        }
        let http = http.build().expect("client");
        Cluster { masters, cluster_id, http, certs, _directory: directory }
    }

    /// `corral agent` flags for agent certificate `number` of a TLS cluster.
    pub fn agent_tls_args(&self, number: u32) -> Vec<String> {
        let certs = self.certs.as_ref().expect("a cluster started with TLS");
        let file = |name: String| certs.join(name).display().to_string();
        vec![
            "--cluster-id".to_owned(),
            self.cluster_id.clone(),
            "--tls-cert".to_owned(),
            file(format!("agent-{number}.pem")),
            "--tls-key".to_owned(),
            file(format!("agent-{number}-key.pem")),
            "--tls-ca".to_owned(),
            file("ca.pem".to_owned()),
        ]
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
        let secret_file = self.secret_file();
        let mut master = MasterProcess {
            node_id,
            address,
            plain_address: None,
            tls: self.certs.clone(),
            plain_peers: String::new(),
            data_dir,
            peers: String::new(),
            cluster_id: self.cluster_id.clone(),
            secret_file,
            extra_args,
            child: None,
        };
        master.spawn();
        self.masters.push(master);
        self.masters.len() - 1
    }

    /// The file holding the secret the cluster's masters share (`--cluster-secret-file`).
    pub fn secret_file(&self) -> std::path::PathBuf {
        self._directory.path().join("cluster-secret")
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

    /// `POST /v2/apps` on `master`, which must create the app (201); its answer, with the
    /// deployment.
    pub async fn create_app(&self, master: usize, app: &serde_json::Value) -> serde_json::Value {
        let response = self
            .http
            .post(self.masters[master].url("/v2/apps"))
            .json(app)
            .send()
            .await
            .expect("POST /v2/apps");
        let status = response.status();
        let body = response.text().await.expect("the answer's body");
        assert_eq!(status, 201, "{body}");
        serde_json::from_str(&body).expect("the created app as JSON")
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
