//! Health checks with Mesos's semantics: COMMAND, HTTP and TCP; `delay` before the first,
//! one every `interval`, each bounded by `timeout`; failures inside `grace_period` count
//! only once a check has passed; `consecutive_failures` failures make the task unhealthy
//! for good. Verdicts come out as data; the task runner decides what to do with them.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use corral_state::model::{HealthCheck, HealthCheckKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::docker::DockerExec;

/// What health checks report, only when something changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HealthEvent {
    /// The verdict flipped (or was reached for the first time).
    Changed { healthy: bool, message: String },
    /// `consecutive_failures` failures in a row: Mesos kills the task here.
    FailureLimitReached { failures: u32, message: String },
}

/// The outcome of one check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckOutcome {
    Passed,
    Failed { message: String },
}

/// The rules, separate from time and IO so they can be checked exactly.
#[derive(Clone, Debug)]
pub struct HealthState {
    consecutive_failures_allowed: u32,
    grace_period: Duration,
    passed_once: bool,
    consecutive_failures: u32,
    healthy: Option<bool>,
    limit_reported: bool,
}

impl HealthState {
    pub fn new(check: &HealthCheck) -> HealthState {
        HealthState {
            consecutive_failures_allowed: check.consecutive_failures.max(1),
            grace_period: check.grace_period,
            passed_once: false,
            consecutive_failures: 0,
            healthy: None,
            limit_reported: false,
        }
    }

    pub fn healthy(&self) -> Option<bool> {
        self.healthy
    }

    /// Folds one check result in; `since_launch` is how long the task has been running.
    pub fn observe(&mut self, outcome: CheckOutcome, since_launch: Duration) -> Vec<HealthEvent> {
        let mut events = Vec::new();
        match outcome {
            CheckOutcome::Passed => {
                self.passed_once = true;
                self.consecutive_failures = 0;
                if self.healthy != Some(true) {
                    self.healthy = Some(true);
                    events.push(HealthEvent::Changed {
                        healthy: true,
                        message: "health check passed".to_owned(),
                    });
                }
            }
            CheckOutcome::Failed { message } => {
                if !self.passed_once && since_launch < self.grace_period {
                    tracing::debug!(%message, "health check failed inside the grace period");
                    return events;
                }
                self.consecutive_failures += 1;
                if self.healthy != Some(false) {
                    self.healthy = Some(false);
                    events.push(HealthEvent::Changed { healthy: false, message: message.clone() });
                }
                if self.consecutive_failures >= self.consecutive_failures_allowed
                    && !self.limit_reported
                {
                    self.limit_reported = true;
                    events.push(HealthEvent::FailureLimitReached {
                        failures: self.consecutive_failures,
                        message: format!(
                            "health check failed {} times in a row: {message}",
                            self.consecutive_failures
                        ),
                    });
                }
            }
        }
        events
    }
}

/// Where checks run.
#[derive(Clone, Debug)]
pub enum HealthTarget {
    Process {
        sandbox: PathBuf,
        environment: Vec<(String, String)>,
        user: Option<(u32, u32)>,
        /// Empty: the check's port is a host port.
        port_mappings: Vec<(u32, u32)>,
    },
    Docker {
        exec: DockerExec,
        /// `(container_port, host_port)`: a bridge container's check names its own port.
        port_mappings: Vec<(u32, u32)>,
    },
}

impl HealthTarget {
    fn host_port(&self, port: u32) -> u32 {
        let mappings = match self {
            HealthTarget::Process { port_mappings, .. }
            | HealthTarget::Docker { port_mappings, .. } => port_mappings,
        };
        mappings
            .iter()
            .find(|(container_port, _)| *container_port == port)
            .map(|(_, host_port)| *host_port)
            .unwrap_or(port)
    }
}

pub struct HealthChecker {
    check: HealthCheck,
    target: HealthTarget,
    /// Counts every result by check kind and outcome, when the agent exports metrics.
    results: Option<prometheus::IntCounterVec>,
}

impl HealthChecker {
    pub fn new(check: HealthCheck, target: HealthTarget) -> HealthChecker {
        HealthChecker { check, target, results: None }
    }

    /// Counts each result in `results` (labels: kind, outcome).
    pub fn counting(self, results: prometheus::IntCounterVec) -> HealthChecker {
        HealthChecker { results: Some(results), ..self }
    }

    fn count(&self, outcome: &CheckOutcome, timed_out: bool) {
        let Some(results) = &self.results else { return };
        let kind = match self.check.kind {
            HealthCheckKind::Command => "COMMAND",
            HealthCheckKind::Http => "HTTP",
            HealthCheckKind::Tcp => "TCP",
        };
        let label = match outcome {
            CheckOutcome::Passed => "passed",
            CheckOutcome::Failed { .. } if timed_out => "timed_out",
            CheckOutcome::Failed { .. } => "failed",
        };
        results.with_label_values(&[kind, label]).inc();
    }

    /// Checks until the receiver goes away; `launched_at` starts the grace period.
    pub async fn run(self, launched_at: Instant, events: mpsc::UnboundedSender<HealthEvent>) {
        let mut state = HealthState::new(&self.check);
        tokio::time::sleep(self.check.delay).await;
        let mut ticks = tokio::time::interval(self.check.interval.max(Duration::from_millis(10)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let outcome = self.check_once().await;
            for event in state.observe(outcome, launched_at.elapsed()) {
                if events.send(event).is_err() {
                    return;
                }
            }
        }
    }

    /// One check, bounded by the check's timeout.
    pub async fn check_once(&self) -> CheckOutcome {
        let timeout = self.check.timeout;
        let (outcome, timed_out) = match tokio::time::timeout(timeout, self.perform()).await {
            Ok(outcome) => (outcome, false),
            Err(_) => (
                CheckOutcome::Failed {
                    message: format!("health check timed out after {timeout:?}"),
                },
                true,
            ),
        };
        self.count(&outcome, timed_out);
        outcome
    }

    async fn perform(&self) -> CheckOutcome {
        match self.check.kind {
            HealthCheckKind::Command => self.command_check().await,
            HealthCheckKind::Http => self.http_check().await,
            HealthCheckKind::Tcp => self.tcp_check().await,
        }
    }

    async fn command_check(&self) -> CheckOutcome {
        let Some(value) = self.check.command.as_ref().and_then(|command| command.value.clone())
        else {
            return CheckOutcome::Failed {
                message: "COMMAND health check has no command".to_owned(),
            };
        };
        let extra_environment = self
            .check
            .command
            .as_ref()
            .map(|command| command.environment.clone())
            .unwrap_or_default();
        let exit_code = match &self.target {
            HealthTarget::Process { sandbox, environment, user, .. } => {
                let mut command = tokio::process::Command::new("/bin/sh");
                command
                    .arg("-c")
                    .arg(&value)
                    .current_dir(sandbox)
                    .envs(environment.iter().chain(&extra_environment).map(|(k, v)| (k, v)))
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .process_group(0)
                    .kill_on_drop(true);
                if let Some((uid, gid)) = user {
                    command.uid(*uid).gid(*gid);
                }
                match command.status().await {
                    Ok(status) => status.code().map(i64::from).unwrap_or(-1),
                    Err(error) => {
                        return CheckOutcome::Failed {
                            message: format!("cannot run health check command: {error}"),
                        }
                    }
                }
            }
            HealthTarget::Docker { exec, .. } => match exec.exec(&value).await {
                Ok(code) => code,
                Err(error) => return CheckOutcome::Failed { message: error.to_string() },
            },
        };
        if exit_code == 0 {
            CheckOutcome::Passed
        } else {
            CheckOutcome::Failed {
                message: format!("health check command exited with status {exit_code}"),
            }
        }
    }

    async fn http_check(&self) -> CheckOutcome {
        let Some(http) = &self.check.http else {
            return CheckOutcome::Failed { message: "HTTP health check has no port".to_owned() };
        };
        let scheme = http.scheme.as_deref().unwrap_or("http");
        if scheme != "http" {
            return CheckOutcome::Failed {
                message: format!("{scheme} health checks are not supported"),
            };
        }
        let port = self.target.host_port(http.port);
        let path = http.path.as_deref().unwrap_or("/");
        match http_status(port, path).await {
            Ok(status) if (200..400).contains(&status) => CheckOutcome::Passed,
            Ok(status) => CheckOutcome::Failed {
                message: format!("GET http://127.0.0.1:{port}{path} answered {status}"),
            },
            Err(error) => CheckOutcome::Failed {
                message: format!("GET http://127.0.0.1:{port}{path} failed: {error}"),
            },
        }
    }

    async fn tcp_check(&self) -> CheckOutcome {
        let Some(tcp) = &self.check.tcp else {
            return CheckOutcome::Failed { message: "TCP health check has no port".to_owned() };
        };
        let port = self.target.host_port(tcp.port);
        match TcpStream::connect(("127.0.0.1", port as u16)).await {
            Ok(_) => CheckOutcome::Passed,
            Err(error) => CheckOutcome::Failed {
                message: format!("connect to 127.0.0.1:{port} failed: {error}"),
            },
        }
    }
}

/// The status code of `GET path`: an HTTP/1.1 request small enough not to need a client
/// library, reading only the status line.
async fn http_status(port: u32, path: &str) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port as u16)).await?;
    let path = if path.starts_with('/') { path.to_owned() } else { format!("/{path}") };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: corral-agent\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::new();
    let mut buffer = [0u8; 512];
    while !head.windows(2).any(|window| window == b"\r\n") && head.len() < 8192 {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&buffer[..read]);
    }
    let status_line = String::from_utf8_lossy(&head);
    status_line.split_whitespace().nth(1).and_then(|code| code.parse().ok()).ok_or_else(|| {
        std::io::Error::other(format!("not an HTTP answer: {:?}", status_line.lines().next()))
    })
}
