//! The real agent as a `corral agent` child process, killed with SIGKILL and restarted on the
//! same work dir as a crash and a restart would be.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct AgentProcess {
    pub work_dir: PathBuf,
    masters: Vec<String>,
    extra_args: Vec<String>,
    child: Option<Child>,
    /// How many times it was started; each start writes its own log.
    starts: u32,
}

impl AgentProcess {
    /// Starts `corral agent` against `masters` with its work dir under `parent`.
    pub fn start(
        parent: &Path,
        name: &str,
        masters: &[String],
        extra_args: &[&str],
    ) -> AgentProcess {
        let mut agent = AgentProcess {
            work_dir: parent.join(name),
            masters: masters.to_vec(),
            extra_args: extra_args.iter().map(|arg| (*arg).to_owned()).collect(),
            child: None,
            starts: 0,
        };
        agent.spawn();
        agent
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let log_path = self.work_dir.with_extension(format!("{}.log", self.starts));
        let log = std::fs::File::create(&log_path).expect("agent log file");
        let child = Command::new(crate::corral_bin())
            .arg("agent")
            .args(["--master", &self.masters.join(",")])
            .arg("--work-dir")
            .arg(&self.work_dir)
            .args(["--heartbeat-interval", "1"])
            // Each agent serves its API on a port of its own: tests run many at once.
            .args(["--listen", "127.0.0.1:0"])
            // So that a test's tasks end with it (see `Drop`).
            .args(["--on-stop", "kill-tasks"])
            .args(&self.extra_args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("corral agent starts");
        self.child = Some(child);
    }

    /// SIGKILL: the agent gets no chance to clean up; its tasks must not notice.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP: the agent stops answering, as behind a network partition, while its tasks
    /// (its children, not stopped) keep running.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT: the partition heals.
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("the agent runs");
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} {}", child.id());
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Everything every start of this agent logged, for assertion messages.
    pub fn logs(&self) -> String {
        (1..=self.starts)
            .map(|start| {
                std::fs::read_to_string(self.work_dir.with_extension(format!("{start}.log")))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n--- restart ---\n")
    }
}

impl Drop for AgentProcess {
    /// A graceful stop: started with `--on-stop kill-tasks`, the agent kills its tasks (and
    /// containers) before it exits, so no test leaves them running. One that does not exit
    /// in time is killed.
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let pid = child.id().to_string();
        // A paused agent handles SIGTERM only once it runs again.
        for signal in ["-CONT", "-TERM"] {
            let _ = Command::new("kill").args([signal, &pid]).status();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}
