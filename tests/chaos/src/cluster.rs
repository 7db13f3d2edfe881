//! The real processes: `corral master`s and `corral agent`s, each in its namespace, started,
//! killed, paused and restarted by the driver.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use tokio::process::Child;

use crate::netns::Net;

pub struct Process {
    pub name: String,
    /// `ip:port` it listens on.
    pub address: String,
    pub dir: PathBuf,
    child: Option<Child>,
    pub paused: bool,
}

impl Process {
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    fn pid(&self) -> Option<Pid> {
        self.child.as_ref().and_then(Child::id).map(|pid| Pid::from_raw(pid as i32))
    }
}

pub struct Cluster {
    pub net: Net,
    corral: PathBuf,
    run_dir: PathBuf,
    pub masters: Vec<Process>,
    pub agents: Vec<Process>,
    peers: String,
}

/// What a master says on `GET /corral/v1/cluster`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasterView {
    pub role: String,
    pub term: u64,
    pub leader: Option<u64>,
    pub applied: u64,
    pub digest_index: u64,
    pub digest: String,
}

impl MasterView {
    pub fn parse(body: &Value) -> Option<MasterView> {
        Some(MasterView {
            role: body["role"].as_str()?.to_owned(),
            term: body["term"].as_u64()?,
            leader: body["leader"].as_u64(),
            applied: body["applied_index"].as_u64().unwrap_or(0),
            digest_index: body["state_digest"]["index"].as_u64().unwrap_or(0),
            digest: body["state_digest"]["digest"].as_str().unwrap_or_default().to_owned(),
        })
    }
}

const MASTER_PORT: u16 = 5050;
const AGENT_PORT: u16 = 5051;

impl Cluster {
    pub fn new(
        net: Net,
        corral: PathBuf,
        run_dir: PathBuf,
        masters: usize,
        agents: usize,
    ) -> Cluster {
        let masters: Vec<Process> = (1..=masters)
            .map(|number| {
                let name = format!("m{number}");
                Process {
                    address: format!("{}:{MASTER_PORT}", net.host(&name).ip),
                    dir: run_dir.join(&name),
                    name,
                    child: None,
                    paused: false,
                }
            })
            .collect();
        let peers = masters
            .iter()
            .enumerate()
            .map(|(index, master)| format!("{}={}", index + 1, master.address))
            .collect::<Vec<_>>()
            .join(",");
        let agents = (1..=agents)
            .map(|number| {
                let name = format!("a{number}");
                Process {
                    address: format!("{}:{AGENT_PORT}", net.host(&name).ip),
                    dir: run_dir.join(&name),
                    name,
                    child: None,
                    paused: false,
                }
            })
            .collect();
        Cluster { net, corral, run_dir, masters, agents, peers }
    }

    pub fn master_addresses(&self) -> Vec<String> {
        self.masters.iter().map(|master| master.address.clone()).collect()
    }

    fn log_file(&self, name: &str) -> anyhow::Result<std::fs::File> {
        let path = self.run_dir.join(format!("{name}.log"));
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))
    }

    fn spawn(&self, name: &str, args: &[String]) -> anyhow::Result<Child> {
        let log = self.log_file(name)?;
        let mut command = self.net.command(name, &self.corral);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        command.spawn().with_context(|| format!("cannot start {name} ({})", self.corral.display()))
    }

    /// The masters' shared `--cluster-secret-file`, made (from /dev/urandom) on first use.
    fn cluster_secret(&self) -> anyhow::Result<PathBuf> {
        use std::io::Read as _;
        use std::os::unix::fs::PermissionsExt as _;
        let path = self.run_dir.join("cluster-secret");
        if !path.exists() {
            let mut bytes = [0u8; 32];
            std::fs::File::open("/dev/urandom")
                .and_then(|mut random| random.read_exact(&mut bytes))
                .context("cannot read /dev/urandom")?;
            let text: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
            std::fs::create_dir_all(&self.run_dir)?;
            std::fs::write(&path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(path)
    }

    pub fn start_master(&mut self, index: usize) -> anyhow::Result<()> {
        let master = &self.masters[index];
        std::fs::create_dir_all(&master.dir)?;
        let args: Vec<String> = vec![
            "master".into(),
            "--node-id".into(),
            (index + 1).to_string(),
            "--listen".into(),
            master.address.clone(),
            "--data-dir".into(),
            master.dir.display().to_string(),
            "--peers".into(),
            self.peers.clone(),
            // Scheduler streams say HEARTBEAT often, so a framework notices a dead master soon.
            "--heartbeat-interval".into(),
            "2".into(),
            // As a cluster is run: Raft answers only masters given the same secret.
            "--cluster-secret-file".into(),
            self.cluster_secret()?.display().to_string(),
        ];
        let child = self.spawn(&master.name.clone(), &args)?;
        self.masters[index].child = Some(child);
        self.masters[index].paused = false;
        Ok(())
    }

    pub fn start_agent(&mut self, index: usize) -> anyhow::Result<()> {
        let agent = &self.agents[index];
        std::fs::create_dir_all(&agent.dir)?;
        let args: Vec<String> = vec![
            "agent".into(),
            "--master".into(),
            self.master_addresses().join(","),
            "--listen".into(),
            agent.address.clone(),
            "--work-dir".into(),
            agent.dir.display().to_string(),
            "--resources".into(),
            "cpus:2;mem:1024;disk:1000;ports:[31000-31100]".into(),
            "--hostname".into(),
            agent.name.clone(),
            "--heartbeat-interval".into(),
            "1".into(),
        ];
        let child = self.spawn(&agent.name.clone(), &args)?;
        self.agents[index].child = Some(child);
        Ok(())
    }

    fn signal(process: &Process, signal: Signal) -> anyhow::Result<()> {
        let pid = process.pid().with_context(|| format!("{} is not running", process.name))?;
        kill(pid, signal).with_context(|| format!("cannot send {signal} to {}", process.name))
    }

    async fn reap(process: &mut Process) {
        if let Some(mut child) = process.child.take() {
            let _ = child.wait().await;
        }
        process.paused = false;
    }

    pub async fn kill_master(&mut self, index: usize) -> anyhow::Result<()> {
        let master = &mut self.masters[index];
        Cluster::signal(master, Signal::SIGKILL)?;
        Cluster::reap(master).await;
        Ok(())
    }

    pub async fn kill_agent(&mut self, index: usize) -> anyhow::Result<()> {
        let agent = &mut self.agents[index];
        Cluster::signal(agent, Signal::SIGKILL)?;
        Cluster::reap(agent).await;
        Ok(())
    }

    pub fn pause_master(&mut self, index: usize) -> anyhow::Result<()> {
        Cluster::signal(&self.masters[index], Signal::SIGSTOP)?;
        self.masters[index].paused = true;
        Ok(())
    }

    pub fn resume_master(&mut self, index: usize) -> anyhow::Result<()> {
        Cluster::signal(&self.masters[index], Signal::SIGCONT)?;
        self.masters[index].paused = false;
        Ok(())
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`.
    async fn stop(process: &mut Process, grace: Duration) {
        if process.paused {
            let _ = Cluster::signal(process, Signal::SIGCONT);
        }
        if Cluster::signal(process, Signal::SIGTERM).is_err() {
            return;
        }
        if let Some(child) = process.child.as_mut() {
            if tokio::time::timeout(grace, child.wait()).await.is_err() {
                let _ = child.start_kill();
            }
        }
        Cluster::reap(process).await;
    }

    pub async fn stop_masters(&mut self) {
        for master in &mut self.masters {
            Cluster::stop(master, Duration::from_secs(8)).await;
        }
    }

    pub async fn stop_agents(&mut self) {
        for agent in &mut self.agents {
            Cluster::stop(agent, Duration::from_secs(5)).await;
        }
    }

    /// Restarts every master and agent that is down and wakes every paused master.
    pub fn revive_all(&mut self) -> anyhow::Result<()> {
        for index in 0..self.masters.len() {
            if self.masters[index].paused {
                self.resume_master(index)?;
            }
            if !self.masters[index].is_running() {
                self.start_master(index)?;
            }
        }
        for index in 0..self.agents.len() {
            if !self.agents[index].is_running() {
                self.start_agent(index)?;
            }
        }
        Ok(())
    }

    pub fn data_dir(&self, index: usize) -> &Path {
        &self.masters[index].dir
    }

    pub fn corral(&self) -> &Path {
        &self.corral
    }

    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }
}
